//! The store-backed worker: overlay snapshots, runc and file ops, as root.

mod common;

use common::{build_busybox_rootfs, runc_path};
use std::path::PathBuf;
use std::sync::Arc;
use strata_llb::{
    CopyAction, ExecMeta, ExecOp, FileAction, FileOp, Mount, NetMode, Op, SecurityMode, Vertex,
};
use strata_solver::{EventSink, ResultRef, Selector, VertexContext};
use strata_store::{SnapshotKind, Store};
use strata_worker::{OverlayMount, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    worker: Worker,
    base: ResultRef,
}

/// A store holding a busybox rootfs as a committed snapshot.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let active = store.prepare(None, SnapshotKind::Layer).unwrap();
    build_busybox_rootfs(&active.upper);
    let base = ResultRef::snapshot(store.commit(active).unwrap());
    let mut config = WorkerConfig::for_store(&store);
    config.runc = runc_path();
    let worker = Worker::new(store.clone(), config);
    Fixture {
        _dir: dir,
        store,
        worker,
        base,
    }
}

fn context() -> VertexContext {
    VertexContext {
        vertex: strata_llb::Digest::of_bytes(b"test"),
        description: "test".into(),
        events: EventSink::discard(),
        cancel: CancellationToken::new(),
    }
}

fn exec_vertex(script: &str) -> Vertex {
    let meta = ExecMeta {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        cwd: "/".into(),
        ..ExecMeta::default()
    };
    let root = Mount {
        input: Some(0),
        selector: String::new(),
        dest: "/".into(),
        output: Some(0),
        readonly: false,
        kind: Default::default(),
    };
    Vertex {
        op: Op::Exec(ExecOp {
            meta,
            mounts: vec![root],
            network: NetMode::Host,
            security: SecurityMode::Sandbox,
            secret_env: Vec::new(),
        }),
        inputs: Vec::new(),
        platform: None,
    }
}

fn upper_of(store: &Store, result: &ResultRef) -> PathBuf {
    store
        .lowers(result.snapshot.as_deref().unwrap())
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn exec_commits_changes() {
    require_root!();
    let fixture = fixture();
    let vertex = exec_vertex("echo built > /out.txt && rm /bin/vi");
    let result = fixture
        .worker
        .execute(&vertex, std::slice::from_ref(&fixture.base), &context())
        .await
        .unwrap();
    let upper = upper_of(&fixture.store, &result);
    assert_eq!(
        std::fs::read_to_string(upper.join("out.txt")).unwrap(),
        "built\n"
    );
    // The removal is an overlayfs whiteout in the new snapshot only.
    assert!(
        fixture
            .store
            .lowers(fixture.base.snapshot.as_deref().unwrap())
            .unwrap()[0]
            .join("bin/vi")
            .symlink_metadata()
            .is_ok()
    );

    let selector = Selector {
        path: "/out.txt".into(),
        allow_wildcard: false,
        follow_symlink: false,
        include_patterns: vec![],
        exclude_patterns: vec![],
    };
    fixture.worker.checksum(&result, &selector).await.unwrap();
    let selector = Selector {
        path: "/bin/vi".into(),
        ..selector
    };
    assert!(fixture.worker.checksum(&result, &selector).await.is_err());
}

#[tokio::test]
async fn exec_failure_aborts() {
    require_root!();
    let fixture = fixture();
    let before = fixture.store.snapshots().unwrap().len();
    let error = fixture
        .worker
        .execute(
            &exec_vertex("false"),
            std::slice::from_ref(&fixture.base),
            &context(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "process \"/bin/sh -c false\" did not complete successfully: exit code: 1"
    );
    assert_eq!(fixture.store.snapshots().unwrap().len(), before);
}

#[tokio::test]
async fn file_op_copies_between_snapshots() {
    require_root!();
    let fixture = fixture();
    let made = fixture
        .worker
        .execute(
            &exec_vertex("mkdir -p /src && echo data > /src/f"),
            std::slice::from_ref(&fixture.base),
            &context(),
        )
        .await
        .unwrap();
    let mut copy = CopyAction::new(Some(1), "/src/f", "/dest/");
    copy.create_dest_path = true;
    let vertex = Vertex {
        op: Op::File(FileOp {
            base: Some(0),
            actions: vec![FileAction::Copy(copy)],
        }),
        inputs: Vec::new(),
        platform: None,
    };
    let result = fixture
        .worker
        .execute(&vertex, &[fixture.base.clone(), made], &context())
        .await
        .unwrap();
    let upper = upper_of(&fixture.store, &result);
    assert_eq!(
        std::fs::read_to_string(upper.join("dest/f")).unwrap(),
        "data\n"
    );
}

#[test]
fn overlay_mounts_long_chains() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    // Long lower paths push the options past one page, so the mount goes
    // through short links.
    let long = dir.path().join("l".repeat(100));
    let mut lowers = Vec::new();
    for index in 0..60 {
        let lower = long.join(format!("layer-{index:03}-{}", "x".repeat(40)));
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::write(lower.join(format!("f{index}")), "x").unwrap();
        lowers.push(lower);
    }
    let target = dir.path().join("merged");
    std::fs::create_dir(&target).unwrap();
    let mount = OverlayMount::mount(&lowers, None, &target).unwrap();
    assert!(target.join("f0").exists());
    assert!(target.join("f59").exists());
    mount.unmount().unwrap();
    assert!(!target.join("f0").exists());

    let error = OverlayMount::mount(&vec![lowers[0].clone(); 501], None, &target).unwrap_err();
    assert!(
        error.to_string().contains("chain of 501 snapshots"),
        "{error}"
    );
}
