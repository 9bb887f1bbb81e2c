//! Image archives read by the real consumers: `skopeo` for the OCI layout
//! and a private `dockerd` for the `docker save` format.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use strata_exporter::image::{ImageBlobs, LAYER_GZIP_MEDIA_TYPE, LayerBlob, build_image};
use strata_exporter::{Dest, DestWriter, write_docker_archive, write_layer, write_oci_archive};
use strata_llb::image::{ContainerConfig, EmptyObject, Healthcheck, ImageConfig};

const TEST_ROOT: &str = "/tmp/strata-exporter-test";

/// Returns a config that sets every field `docker image inspect` reports.
fn full_config() -> ImageConfig {
    let set = |keys: &[&str]| -> Option<BTreeMap<String, EmptyObject>> {
        Some(
            keys.iter()
                .map(|k| (k.to_string(), EmptyObject {}))
                .collect(),
        )
    };
    ImageConfig {
        config: ContainerConfig {
            user: Some("0:0".into()),
            exposed_ports: set(&["8080/tcp"]),
            env: Some(vec!["PATH=/bin".into(), "GREETING=hello".into()]),
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["echo $GREETING from $(pwd)".into()]),
            volumes: set(&["/data"]),
            working_dir: Some("/work".into()),
            labels: Some([("org.example.kind".to_string(), "test".to_string())].into()),
            stop_signal: Some("SIGTERM".into()),
            healthcheck: Some(Healthcheck {
                test: Some(vec!["CMD".into(), "true".into()]),
                interval: Some(30_000_000_000),
                retries: Some(3),
                ..Healthcheck::default()
            }),
            on_build: Some(vec!["RUN echo child".into()]),
            ..ContainerConfig::default()
        },
        ..ImageConfig::default()
    }
}

/// Builds a one-layer busybox image whose layer blob lives in `dir`.
fn busybox_image(dir: &Path) -> ImageBlobs {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::create_dir_all(rootfs.join("work")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "pwd", "true"] {
        symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }

    let blob_path = dir.join("layer.tar.gz");
    let digests = write_layer(&rootfs, File::create(&blob_path).unwrap()).unwrap();
    let layer = LayerBlob {
        digest: digests.blob,
        diff_id: digests.diff_id,
        size: digests.size,
        media_type: LAYER_GZIP_MEDIA_TYPE.into(),
        path: blob_path,
    };
    let created = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    build_image(&full_config(), vec![layer], created).unwrap()
}

fn write_archive(path: &Path, write: impl FnOnce(&mut DestWriter)) -> u64 {
    let mut out = DestWriter::create(&Dest::Path(path.to_path_buf())).unwrap();
    write(&mut out);
    out.commit().unwrap()
}

#[test]
fn oci_archive_reads_with_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let image = busybox_image(dir.path());
    let archive = dir.path().join("image.oci.tar");
    let bytes = write_archive(&archive, |out| {
        write_oci_archive(out, &image, Some("hello:v1")).unwrap();
    });
    assert_eq!(bytes, fs::metadata(&archive).unwrap().len());

    let target = format!("oci-archive:{}", archive.display());
    let inspect: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &target]))).unwrap();
    assert_eq!(inspect["Digest"], image.manifest_digest.to_string());
    assert_eq!(inspect["Layers"][0], image.layers[0].digest.to_string());
    assert_eq!(inspect["Labels"]["org.example.kind"], "test");

    let raw = run(Command::new("skopeo").args(["inspect", "--raw", &target]));
    assert_eq!(raw.as_bytes(), image.manifest_json.as_slice());

    let entries = read_tar(&fs::read(&archive).unwrap(), false);
    let index: Value = serde_json::from_slice(&find(&entries, "index.json").data).unwrap();
    let annotations = &index["manifests"][0]["annotations"];
    assert_eq!(annotations["org.opencontainers.image.ref.name"], "v1");
    assert_eq!(
        annotations["io.containerd.image.name"],
        "docker.io/library/hello:v1"
    );
    assert_eq!(
        find(&entries, "oci-layout").data,
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
}

#[test]
fn docker_archive_lists_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let image = busybox_image(dir.path());
    let archive = dir.path().join("image.tar");
    write_archive(&archive, |out| {
        write_docker_archive(out, &image, &["hello".to_string()]).unwrap();
    });

    let entries = read_tar(&fs::read(&archive).unwrap(), false);
    let manifest: Value = serde_json::from_slice(&find(&entries, "manifest.json").data).unwrap();
    let config_path = format!("blobs/sha256/{}", image.config_digest.hex());
    assert_eq!(manifest[0]["Config"], config_path);
    assert_eq!(manifest[0]["RepoTags"][0], "docker.io/library/hello:latest");
    assert_eq!(
        manifest[0]["Layers"][0],
        format!("blobs/sha256/{}", image.layers[0].digest.hex())
    );
    assert_eq!(find(&entries, &config_path).data, image.config_json);
}

#[test]
fn dest_writer_leaves_no_file_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tar");
    let mut out = DestWriter::create(&Dest::Path(path.clone())).unwrap();
    std::io::Write::write_all(&mut out, b"partial").unwrap();
    drop(out);
    assert!(!path.exists());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary file left behind"
    );
}

/// A `dockerd` on a private socket, stopped on drop.
struct Dockerd {
    child: Child,
    socket: String,
}

impl Dockerd {
    /// Starts dockerd, or returns why it could not.
    fn start() -> Result<Dockerd, String> {
        let root = PathBuf::from(TEST_ROOT);
        fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let socket = format!("unix://{TEST_ROOT}/docker.sock");
        let log = File::create(root.join("dockerd.log")).map_err(|e| e.to_string())?;
        // Debian's docker.io installs dockerd in /usr/sbin.
        let binary = ["/usr/bin/dockerd", "/usr/sbin/dockerd"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .ok_or("no dockerd in /usr/bin or /usr/sbin")?;
        let child = Command::new(binary)
            .arg(format!("--host={socket}"))
            .arg(format!("--data-root={TEST_ROOT}/data"))
            .arg(format!("--exec-root={TEST_ROOT}/exec"))
            .arg(format!("--pidfile={TEST_ROOT}/dockerd.pid"))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {binary}: {e}"))?;
        let mut dockerd = Dockerd { child, socket };

        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = dockerd.child.try_wait() {
                let log = fs::read_to_string(root.join("dockerd.log")).unwrap_or_default();
                return Err(format!("dockerd exited with {status}: {log}"));
            }
            if dockerd
                .docker()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Ok(dockerd);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err("dockerd did not answer on its socket within 60 s".into())
    }

    fn docker(&self) -> Command {
        let mut command = Command::new("/usr/bin/docker");
        command.args(["-H", &self.socket]);
        command
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

#[test]
fn docker_archive_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let image = busybox_image(dir.path());
    let archive = dir.path().join("image.tar");
    write_archive(&archive, |out| {
        write_docker_archive(out, &image, &["strata-test/hello:v1".to_string()]).unwrap();
    });

    let dockerd = match Dockerd::start() {
        Ok(dockerd) => dockerd,
        Err(reason) => {
            println!("skipping docker_archive_loads_and_runs: {reason}");
            return;
        }
    };
    let name = "strata-test/hello:v1";
    let _ = dockerd.docker().args(["image", "rm", "-f", name]).output();

    let loaded = run(dockerd.docker().arg("load").arg("-i").arg(&archive));
    assert!(loaded.contains(name), "docker load printed: {loaded}");

    let inspect: Value =
        serde_json::from_str(&run(dockerd.docker().args(["image", "inspect", name]))).unwrap();
    let image_info = &inspect[0];
    assert_eq!(image_info["Id"], image.config_digest.to_string());
    let config = &image_info["Config"];
    assert_eq!(
        config["Env"],
        serde_json::json!(["PATH=/bin", "GREETING=hello"])
    );
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["echo $GREETING from $(pwd)"])
    );
    assert_eq!(config["WorkingDir"], "/work");
    assert_eq!(config["User"], "0:0");
    assert_eq!(config["Labels"]["org.example.kind"], "test");
    assert_eq!(config["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(config["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(config["StopSignal"], "SIGTERM");
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "true"])
    );
    assert_eq!(config["Healthcheck"]["Retries"], 3);
    assert_eq!(config["OnBuild"], serde_json::json!(["RUN echo child"]));
    assert_eq!(
        image_info["RootFS"]["Layers"][0],
        image.layers[0].diff_id.to_string()
    );

    let output = run(dockerd
        .docker()
        .args(["run", "--rm", "--network", "none", name]));
    assert_eq!(output.trim(), "hello from /work");

    let _ = dockerd.docker().args(["image", "rm", "-f", name]).output();
}
