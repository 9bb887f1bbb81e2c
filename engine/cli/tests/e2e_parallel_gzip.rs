//! A layer larger than one gzip block, compressed on several threads,
//! loads into Docker and runs.

mod common;

use common::{TestStore, assert_success, context, docker, docker_host};

#[test]
fn docker_loads_multi_block_layer() {
    let Some(host) = docker_host() else {
        eprintln!("skipped: no private dockerd (start it with tests/support/dockerd.sh start)");
        return;
    };
    // 5 MB of base64 text gzips to about 3.8 MB, several 1 MiB blocks.
    let dockerfile = "FROM busybox\n\
        RUN head -c 3750000 /dev/urandom | base64 > /big && md5sum /big > /big.md5\n\
        CMD [\"md5sum\", \"-c\", \"/big.md5\"]\n";
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let tarball = store.root().join("big.tar");
    let name = format!("strata-e2e/gzip-blocks:{}", std::process::id());
    let spec = format!("type=docker,dest={},name={name}", tarball.display());
    let mut command = store.command();
    command
        .env("STRATA_COMPRESSION_THREADS", "3")
        .args(["build", "--progress", "plain", "--output", &spec])
        .arg(ctx.path());
    assert_success(&command.output().unwrap());

    let load = docker(&host, &["load", "-i", tarball.to_str().unwrap()]);
    assert_success(&load);
    let run = docker(&host, &["run", "--rm", "--network", "none", &name]);
    assert_success(&run);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "/big: OK\n");
    let _ = docker(&host, &["rmi", &name]);
}
