//! Layer compression options and reproducible images.

mod common;
mod registry_support;

use common::{TestStore, assert_success, context, stderr};
use registry_support::TestRegistry;
use std::collections::HashMap;
use std::io::Read;

const APP: &str = "FROM busybox\nRUN echo built > /built && mkdir /dir\n";

/// Reads every file of a tar into memory, by path.
fn tar_files(path: &std::path::Path) -> HashMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut files = HashMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(name, bytes);
    }
    files
}

/// Returns the manifest of the single image in an OCI archive.
fn oci_manifest(files: &HashMap<String, Vec<u8>>) -> (String, serde_json::Value) {
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = &files[&format!("blobs/sha256/{}", &digest[7..])];
    (digest, serde_json::from_slice(blob).unwrap())
}

fn export_oci(
    store: &TestStore,
    ctx: &std::path::Path,
    keys: &str,
    envs: &[(&str, &str)],
) -> std::path::PathBuf {
    let out = ctx.join(format!("out-{}.tar", keys.len()));
    let spec = format!("type=oci,dest={}{keys}", out.display());
    let mut command = store.command();
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command
        .args(["build", "--progress", "plain", "--output", &spec])
        .arg(ctx)
        .output()
        .unwrap();
    assert_success(&output);
    out
}

#[test]
fn zstd_applies_to_new_layers() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", APP)]);
    let files = tar_files(&export_oci(
        &store,
        ctx.path(),
        ",compression=zstd,compression-level=19",
        &[],
    ));
    let (_, manifest) = oci_manifest(&files);
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd"
        ],
        "the base layer keeps gzip without force-compression"
    );
    let top = manifest["layers"][1]["digest"].as_str().unwrap();
    let blob = &files[&format!("blobs/sha256/{}", &top[7..])];
    assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic number");
    let tar = zstd::decode_all(blob.as_slice()).unwrap();
    let names: Vec<String> = tar::Archive::new(tar.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"built".to_string()), "{names:?}");

    let forced = tar_files(&export_oci(
        &store,
        ctx.path(),
        ",compression=zstd,force-compression=true",
        &[],
    ));
    let (_, manifest) = oci_manifest(&forced);
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
}

#[test]
fn reproducible_across_stores() {
    let ctx = context(&[("Dockerfile", APP)]);
    let envs = [("SOURCE_DATE_EPOCH", "1700000000")];
    let keys = ",rewrite-timestamp=true";
    let first = TestStore::new();
    let (first_digest, _) = oci_manifest(&tar_files(&export_oci(&first, ctx.path(), keys, &envs)));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = TestStore::new();
    let (second_digest, _) =
        oci_manifest(&tar_files(&export_oci(&second, ctx.path(), keys, &envs)));
    assert_eq!(first_digest, second_digest);
}

#[test]
fn rewrite_timestamp_needs_epoch() {
    let store = TestStore::new();
    let ctx = context(&[("Dockerfile", APP)]);
    let dest = ctx.path().join("x.tar");
    let spec = format!("type=oci,dest={},rewrite-timestamp=true", dest.display());
    let out = store
        .command()
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["build", "--progress", "plain", "--output", &spec])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("needs `SOURCE_DATE_EPOCH`"),
        "{}",
        stderr(&out)
    );
    assert!(!dest.exists(), "a failed export left `{}`", dest.display());
}

#[test]
fn zstd_image_pushes_and_pulls() {
    let registry = TestRegistry::plain();
    let pusher = TestStore::new();
    let ctx = context(&[("Dockerfile", APP)]);
    let output = format!(
        "type=image,name={}/zstd/app:v1,push=true,compression=zstd,force-compression=true",
        registry.host
    );
    assert_success(&pusher.build(
        ctx.path(),
        &[
            "--output",
            &output,
            "--allow-insecure-registry",
            &registry.host,
        ],
    ));
    let manifest = registry.raw_manifest("zstd/app:v1");
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    let puller = TestStore::new();
    let user = context(&[(
        "Dockerfile",
        &format!(
            "FROM {}/zstd/app:v1\nRUN test -d /dir && cat /built\n",
            registry.host
        ),
    )]);
    assert_success(&puller.build(user.path(), &["--allow-insecure-registry", &registry.host]));
}
