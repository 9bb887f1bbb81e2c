//! Exported images load into a real Docker Engine and read with skopeo.

mod common;

use common::*;

const APP: &str = r#"FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY message.txt .
RUN echo "$GREETING from $(cat message.txt)" > out.txt
LABEL org.example.demo=yes
EXPOSE 8080
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s CMD true
USER nobody
ENTRYPOINT ["cat"]
CMD ["/app/out.txt"]
"#;

#[test]
fn docker_tarball_loads_and_runs() {
    let Some(host) = docker_host() else {
        eprintln!("skipped: no private dockerd (start it with tests/support/dockerd.sh start)");
        return;
    };
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", APP), ("message.txt", "strata")]);
    let tarball = store.root().join("app.tar");
    let name = format!("strata-e2e/app:{}", std::process::id());
    let spec = format!("type=docker,dest={},name={name}", tarball.display());
    assert_success(&store.build(ctx.path(), &["--output", &spec]));

    let load = docker(&host, &["load", "-i", tarball.to_str().unwrap()]);
    assert_success(&load);
    let run = docker(&host, &["run", "--rm", "--network", "none", &name]);
    assert_success(&run);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello from strata\n");

    let inspect = docker(&host, &["image", "inspect", &name]);
    assert_success(&inspect);
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(config["User"], "nobody");
    assert_eq!(config["Entrypoint"], serde_json::json!(["cat"]));
    assert_eq!(config["Cmd"], serde_json::json!(["/app/out.txt"]));
    assert_eq!(config["Labels"]["org.example.demo"], "yes");
    assert!(config["ExposedPorts"].get("8080/tcp").is_some(), "{config}");
    assert!(config["Volumes"].get("/data").is_some(), "{config}");
    assert_eq!(config["StopSignal"], "SIGTERM");
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hello")
    );
    let _ = docker(&host, &["image", "rm", "-f", &name]);
}

#[test]
fn oci_tarball_reads_with_skopeo() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", APP), ("message.txt", "strata")]);
    let tarball = store.root().join("app-oci.tar");
    let spec = format!("type=oci,dest={}", tarball.display());
    assert_success(&store.build(ctx.path(), &["--output", &spec]));
    let output = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            &format!("oci-archive:{}", tarball.display()),
        ])
        .output()
        .unwrap();
    assert_success(&output);
    let config: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(config["config"]["WorkingDir"], "/app");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
}

#[test]
fn tag_stores_image_usable_as_base() {
    let store = TestStore::new();
    let base = context(&[("Dockerfile", "FROM busybox\nRUN echo base > /base.txt\n")]);
    assert_success(&store.build(base.path(), &["-t", "e2e-base:1"]));
    let listing = store.strata(&["image", "ls", "--format", "json"]);
    assert_success(&listing);
    assert!(String::from_utf8_lossy(&listing.stdout).contains("docker.io/library/e2e-base:1"));

    let child = context(&[(
        "Dockerfile",
        "FROM e2e-base:1\nRUN cat /base.txt > /child.txt\n",
    )]);
    let out = tempfile::tempdir().unwrap();
    let spec = format!("type=local,dest={}", out.path().display());
    assert_success(&store.build(child.path(), &["--output", &spec]));
    assert_eq!(
        std::fs::read_to_string(out.path().join("child.txt")).unwrap(),
        "base\n"
    );

    assert_success(&store.strata(&["image", "rm", "e2e-base:1"]));
    let again = store.strata(&["image", "rm", "e2e-base:1"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("e2e-base:1"));
}

#[test]
fn invalid_output_spec_is_rejected() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\n")]);
    let output = store.build(ctx.path(), &["--output", "type=nosuch,dest=x"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("nosuch"), "{}", stderr(&output));
}
