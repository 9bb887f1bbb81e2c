//! `RUN --mount`, `--network` and `--security` conversion to exec ops.

mod common;

use common::*;
use strata_llb::{CacheSharing, ExecOp, Mount, MountKind, NetMode, Op, SecurityMode};

/// Returns the exec op of the target.
fn target_exec(text: &str) -> ExecOp {
    let conversion = convert_text(text).unwrap_or_else(|e| panic!("{e}"));
    let target = conversion.definition.target.unwrap();
    match &conversion.definition.vertices[&target.digest].op {
        Op::Exec(exec) => exec.clone(),
        other => panic!("the target is a {} op", other.kind()),
    }
}

fn mount_at<'a>(exec: &'a ExecOp, dest: &str) -> &'a Mount {
    exec.mounts
        .iter()
        .find(|m| m.dest == dest)
        .unwrap_or_else(|| panic!("no mount at `{dest}` in {:?}", exec.mounts))
}

#[test]
fn cache_mount_defaults() {
    let exec = target_exec(
        "FROM busybox\nWORKDIR /app\nRUN --mount=type=cache,target=node_modules npm ci\n",
    );
    let mount = mount_at(&exec, "/app/node_modules");
    assert_eq!(
        mount.kind,
        MountKind::Cache {
            id: "/app/node_modules".into(),
            sharing: CacheSharing::Shared
        }
    );
    assert_eq!(mount.input, None);
    assert_eq!(mount.output, None);
    assert!(!mount.readonly);
}

#[test]
fn cache_mount_owner_uses_base_dir() {
    let exec = target_exec(
        "FROM busybox\nRUN --mount=type=cache,target=/c,id=x,uid=10,sharing=locked true\n",
    );
    let mount = mount_at(&exec, "/c");
    assert_eq!(mount.selector, "/cache");
    assert_eq!(mount.input, Some(1));
    assert!(matches!(
        mount.kind,
        MountKind::Cache { ref id, sharing: CacheSharing::Locked } if id == "x"
    ));
}

#[test]
fn secret_and_ssh_defaults() {
    let exec = target_exec(
        "FROM busybox\n\
         RUN --mount=type=secret,id=aws --mount=type=secret,id=tok,env=TOKEN \
         --mount=type=ssh --mount=type=ssh,id=git,target=/agent true\n",
    );
    let secret = mount_at(&exec, "/run/secrets/aws");
    assert_eq!(
        secret.kind,
        MountKind::Secret {
            id: "aws".into(),
            optional: true,
            uid: 0,
            gid: 0,
            mode: 0o400
        }
    );
    assert!(
        !exec.mounts.iter().any(|m| m.dest == "/run/secrets/tok"),
        "an env-only secret got a file"
    );
    assert_eq!(exec.secret_env.len(), 1);
    assert_eq!(exec.secret_env[0].name, "TOKEN");
    assert_eq!(exec.secret_env[0].id, "tok");
    let first = mount_at(&exec, "/run/buildkit/ssh_agent.0");
    assert!(matches!(&first.kind, MountKind::Ssh { id, mode: 0o600, .. } if id == "default"));
    assert!(matches!(&mount_at(&exec, "/agent").kind, MountKind::Ssh { id, .. } if id == "git"));
    assert!(
        exec.meta
            .env
            .contains(&"SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0".to_string())
    );
}

#[test]
fn bind_mount_from_stage_and_context() {
    let text = "FROM busybox AS tools\nRUN echo > /tool\n\
                FROM busybox\nRUN --mount=from=tools,source=/tool,target=/t /t\n";
    let exec = target_exec(text);
    let mount = mount_at(&exec, "/t");
    assert_eq!(mount.selector, "/tool");
    assert!(mount.readonly);
    assert_eq!(mount.input, Some(1));

    let context = target_exec("FROM busybox\nRUN --mount=source=src,target=/src,rw make\n");
    let mount = mount_at(&context, "/src");
    assert!(!mount.readonly);
    assert_eq!(mount.selector, "/src");
}

#[test]
fn mount_values_expand_args() {
    let exec = target_exec(
        "FROM busybox\nARG DIR=/deps\nRUN --mount=type=cache,target=$DIR,id=${DIR}-cache true\n",
    );
    let mount = mount_at(&exec, "/deps");
    assert!(matches!(&mount.kind, MountKind::Cache { id, .. } if id == "/deps-cache"));
}

#[test]
fn network_and_security_modes() {
    let exec = target_exec("FROM busybox\nRUN --network=none --security=insecure true\n");
    assert_eq!(exec.network, NetMode::None);
    assert_eq!(exec.security, SecurityMode::Insecure);
}

#[test]
fn invalid_mounts_name_the_line() {
    for (text, expected) in [
        (
            "FROM busybox\nRUN --mount=type=nfs,target=/x true\n",
            "Dockerfile:2: Unsupported mount type `nfs`",
        ),
        (
            "FROM busybox\nRUN --mount=type=tmpfs,target=/x --mount=type=cache,target=/x true\n",
            "Mount target `/x` is used twice",
        ),
        (
            "FROM busybox\nARG S=base\nRUN --mount=from=$S,target=/x true\n",
            "Variable expansion is not supported for `from`",
        ),
        (
            "FROM busybox\nRUN --network=bridge true\n",
            "Invalid `--network` value `bridge`",
        ),
    ] {
        let error = convert_text(text).unwrap_err().to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
}
