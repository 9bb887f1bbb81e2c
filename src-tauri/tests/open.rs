//! Opening the engine as the app does at start, without a window.

use serde_json::json;
use std::path::PathBuf;
use strata_workbench::open_backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_backend_serves_requests() {
    let store = tempfile::tempdir().unwrap();
    let demos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/demos");
    let backend = open_backend(Some(store.path().to_path_buf()), Some(demos)).unwrap();

    let status = backend.request("GET", "/api/status", None).await.unwrap();
    assert_eq!(status["store_root"], json!(store.path()));
    let listed = backend.request("GET", "/api/demos", None).await.unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|demo| demo["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"hello"), "{names:?}");
}

#[test]
fn unwritable_store_is_environment_error() {
    let root = PathBuf::from("/proc/strata-workbench-test");
    let Err(error) = open_backend(Some(root), None) else {
        panic!("opened a store under /proc");
    };
    assert_eq!(error.code, "environment");
    assert_eq!(error.status, 500);
    assert!(
        error.message.contains("/proc/strata-workbench-test"),
        "{}",
        error.message
    );
    assert!(error.message.contains("STRATA_ROOT"), "{}", error.message);
}
