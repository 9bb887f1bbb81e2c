//! The runc executor against a busybox rootfs: real containers, as root.

mod common;

use common::{build_busybox_rootfs, runc_path};
use std::time::{Duration, Instant};
use strata_llb::{ExecMeta, NetMode, SecurityMode};
use strata_solver::LogStream;
use strata_worker::{ExecRequest, RuncExecutor};
use tokio_util::sync::CancellationToken;

struct Fixture {
    _dir: tempfile::TempDir,
    rootfs: std::path::PathBuf,
    executor: RuncExecutor,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    build_busybox_rootfs(&rootfs);
    let executor = RuncExecutor {
        runc: runc_path(),
        state_root: dir.path().join("state"),
    };
    Fixture {
        _dir: dir,
        rootfs,
        executor,
    }
}

fn shell(script: &str) -> ExecMeta {
    ExecMeta {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..ExecMeta::default()
    }
}

/// Output of one run: stdout, stderr and the result.
struct Output {
    stdout: String,
    stderr: String,
    result: anyhow::Result<()>,
}

async fn run(fixture: &Fixture, meta: &ExecMeta, net: NetMode) -> Output {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut logs = |stream: LogStream, data: &[u8]| match stream {
        LogStream::Stdout => stdout.extend_from_slice(data),
        LogStream::Stderr => stderr.extend_from_slice(data),
    };
    let request = ExecRequest {
        rootfs: &fixture.rootfs,
        meta,
        net,
        security: SecurityMode::Sandbox,
        binds: &[],
        tmpfs: &[],
    };
    let result = fixture
        .executor
        .run(request, &mut logs, &CancellationToken::new())
        .await;
    Output {
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
        result,
    }
}

#[tokio::test]
async fn streams_stdout_and_stderr() {
    require_root!();
    let fixture = fixture();
    let output = run(&fixture, &shell("echo out; echo err >&2"), NetMode::Host).await;
    if let Err(error) = &output.result {
        panic!("{error}\nstderr: {}", output.stderr);
    }
    assert_eq!(output.stdout, "out\n");
    assert_eq!(output.stderr, "err\n");
}

#[tokio::test]
async fn exit_code_error_text() {
    require_root!();
    let fixture = fixture();
    let output = run(&fixture, &shell("exit 3"), NetMode::Host).await;
    let error = output.result.unwrap_err().to_string();
    assert_eq!(
        error,
        "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3"
    );
}

#[tokio::test]
async fn resolves_user_forms() {
    require_root!();
    let fixture = fixture();
    let cases = [
        ("", "0 0"),
        ("app", "1000 1000"),
        ("nobody", "65534 65534"),
        ("app:staff", "1000 50"),
        ("1234:99", "1234 99"),
    ];
    for (user, expected) in cases {
        let mut meta = shell("echo $(id -u) $(id -g)");
        meta.user = user.into();
        let output = run(&fixture, &meta, NetMode::Host).await;
        if let Err(error) = &output.result {
            panic!("{error}\nstderr: {}", output.stderr);
        }
        assert_eq!(output.stdout.trim(), expected, "user `{user}`");
    }

    let mut meta = shell("id -G");
    meta.user = "app".into();
    let output = run(&fixture, &meta, NetMode::Host).await;
    if let Err(error) = &output.result {
        panic!("{error}\nstderr: {}", output.stderr);
    }
    assert_eq!(output.stdout.trim(), "1000 50");
}

#[tokio::test]
async fn missing_user_is_error() {
    require_root!();
    let fixture = fixture();
    let mut meta = shell("true");
    meta.user = "ghost".into();
    let error = run(&fixture, &meta, NetMode::Host)
        .await
        .result
        .unwrap_err();
    assert!(
        error.to_string().contains("User `ghost` not found"),
        "{error}"
    );
}

#[tokio::test]
async fn env_and_cwd() {
    require_root!();
    let fixture = fixture();
    let mut meta = shell("echo $GREETING; pwd; echo $PATH");
    meta.env = vec!["GREETING=hello world".into()];
    meta.cwd = "/work/dir".into();
    meta.user = "app".into();
    let output = run(&fixture, &meta, NetMode::Host).await;
    if let Err(error) = &output.result {
        panic!("{error}\nstderr: {}", output.stderr);
    }
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines[0], "hello world");
    assert_eq!(lines[1], "/work/dir");
    assert!(lines[2].contains("/usr/bin"), "{}", lines[2]);

    let created = std::fs::metadata(fixture.rootfs.join("work/dir")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(created.uid(), 1000);
}

#[tokio::test]
async fn hostname_and_hosts() {
    require_root!();
    let fixture = fixture();
    let mut meta = shell("hostname; cat /etc/hosts");
    meta.hostname = Some("builder".into());
    meta.extra_hosts = vec![("db".into(), "10.1.2.3".into())];
    let output = run(&fixture, &meta, NetMode::Host).await;
    if let Err(error) = &output.result {
        panic!("{error}\nstderr: {}", output.stderr);
    }
    assert!(output.stdout.starts_with("builder\n"), "{}", output.stdout);
    assert!(output.stdout.contains("10.1.2.3\tdb"), "{}", output.stdout);
}

#[tokio::test]
async fn network_none_has_only_lo() {
    require_root!();
    let fixture = fixture();
    let output = run(&fixture, &shell("ls /sys/class/net"), NetMode::None).await;
    if let Err(error) = &output.result {
        panic!("{error}\nstderr: {}", output.stderr);
    }
    assert_eq!(
        output.stdout.split_whitespace().collect::<Vec<_>>(),
        vec!["lo"]
    );
}

#[tokio::test]
async fn cancellation_kills_sleep() {
    require_root!();
    let fixture = fixture();
    let meta = ExecMeta {
        args: vec!["/bin/sleep".into(), "1000".into()],
        ..ExecMeta::default()
    };
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });

    let started = Instant::now();
    let request = ExecRequest {
        rootfs: &fixture.rootfs,
        meta: &meta,
        net: NetMode::Host,
        security: SecurityMode::Sandbox,
        binds: &[],
        tmpfs: &[],
    };
    let result = fixture.executor.run(request, &mut |_, _| {}, &cancel).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let error = result.unwrap_err().to_string();
    assert!(error.contains("cancelled"), "{error}");

    let state = fixture.executor.state_root.clone();
    let leftovers: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "bundles")
        .collect();
    assert!(leftovers.is_empty(), "container state left: {leftovers:?}");
    let bundles = std::fs::read_dir(state.join("bundles")).unwrap().count();
    assert_eq!(bundles, 0);
}

#[tokio::test]
async fn bind_mount_readonly() {
    require_root!();
    let fixture = fixture();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("data.txt"), "shared").unwrap();
    let binds = [strata_worker::BindMount {
        source: host.path().to_path_buf(),
        dest: "/mnt/data".into(),
        readonly: true,
    }];
    let meta = shell("cat /mnt/data/data.txt; touch /mnt/data/new 2>/dev/null || echo readonly");
    let request = ExecRequest {
        rootfs: &fixture.rootfs,
        meta: &meta,
        net: NetMode::Host,
        security: SecurityMode::Sandbox,
        binds: &binds,
        tmpfs: &[],
    };
    let mut stdout = Vec::new();
    let mut logs = |stream: LogStream, data: &[u8]| {
        if stream == LogStream::Stdout {
            stdout.extend_from_slice(data)
        }
    };
    fixture
        .executor
        .run(request, &mut logs, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(String::from_utf8(stdout).unwrap(), "sharedreadonly\n");
}
