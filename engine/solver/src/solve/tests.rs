//! Scheduling tests against an in-memory backend. The real backend (runc,
//! overlayfs) is exercised by the engine's end-to-end tests.

use super::*;
use crate::backend::SourceResult;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata_llb::{CopyAction, ExecMeta, ExecOp, FileOp, Mount, MountKind, SourceOp};

/// A backend whose "snapshots" are names; a source's content is a map of
/// path to bytes so checksums can be computed per path.
#[derive(Default)]
struct MemoryBackend {
    sources: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    cache: Mutex<HashMap<Digest, ResultRef>>,
    executed: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    fail_on: Mutex<Option<String>>,
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn load_source(
        &self,
        op: &SourceOp,
        _cx: &VertexContext,
    ) -> anyhow::Result<SourceResult> {
        let files = self
            .sources
            .lock()
            .unwrap()
            .get(&op.identifier)
            .cloned()
            .unwrap_or_default();
        let key = Digest::of_bytes(format!("{files:?}").as_bytes());
        Ok(SourceResult {
            key,
            result: ResultRef::snapshot(op.identifier.clone()),
        })
    }

    async fn checksum(&self, input: &ResultRef, selector: &Selector) -> anyhow::Result<Digest> {
        let sources = self.sources.lock().unwrap();
        let files = &sources[input.snapshot.as_ref().unwrap()];
        let content = files.get(&selector.path).cloned().unwrap_or_default();
        Ok(Digest::of_bytes(content.as_bytes()))
    }

    async fn cache_lookup(&self, key: &Digest) -> anyhow::Result<Option<ResultRef>> {
        Ok(self.cache.lock().unwrap().get(key).cloned())
    }

    async fn cache_save(&self, key: &Digest, result: &ResultRef) -> anyhow::Result<()> {
        self.cache
            .lock()
            .unwrap()
            .insert(key.clone(), result.clone());
        Ok(())
    }

    async fn execute(
        &self,
        vertex: &Vertex,
        _inputs: &[ResultRef],
        _cx: &VertexContext,
    ) -> anyhow::Result<ResultRef> {
        let name = match &vertex.op {
            Op::Exec(exec) => exec.meta.args.join(" "),
            other => other.kind().to_string(),
        };
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.fail_on.lock().unwrap().as_deref() == Some(name.as_str()) {
            anyhow::bail!("process exited with code 1");
        }
        self.executed.lock().unwrap().push(name.clone());
        Ok(ResultRef::snapshot(name))
    }
}

fn source(definition: &mut Definition, identifier: &str) -> Input {
    let op = Op::Source(SourceOp {
        identifier: identifier.into(),
        attrs: BTreeMap::new(),
    });
    definition.add(
        Vertex {
            op,
            inputs: vec![],
            platform: None,
        },
        OpMetadata::default(),
        0,
    )
}

fn run(definition: &mut Definition, base: &Input, command: &str) -> Input {
    let op = Op::Exec(ExecOp {
        meta: ExecMeta {
            args: vec![command.into()],
            cwd: "/".into(),
            ..Default::default()
        },
        mounts: vec![Mount {
            input: Some(0),
            selector: String::new(),
            dest: "/".into(),
            output: Some(0),
            readonly: false,
            kind: MountKind::Bind,
        }],
        network: Default::default(),
        security: Default::default(),
        secret_env: Vec::new(),
    });
    let metadata = OpMetadata {
        description: format!("RUN {command}"),
        ..Default::default()
    };
    definition.add(
        Vertex {
            op,
            inputs: vec![base.clone()],
            platform: None,
        },
        metadata,
        0,
    )
}

fn copy(definition: &mut Definition, base: &Input, from: &Input, path: &str) -> Input {
    let op = Op::File(FileOp {
        base: Some(0),
        actions: vec![FileAction::Copy(CopyAction::new(Some(1), path, "/dst"))],
    });
    let inputs = vec![base.clone(), from.clone()];
    definition.add(
        Vertex {
            op,
            inputs,
            platform: None,
        },
        OpMetadata::default(),
        0,
    )
}

fn merge(definition: &mut Definition, inputs: &[Input]) -> Input {
    let op = Op::Merge(strata_llb::MergeOp {
        inputs: (0..inputs.len() as u32).collect(),
    });
    definition.add(
        Vertex {
            op,
            inputs: inputs.to_vec(),
            platform: None,
        },
        OpMetadata::default(),
        0,
    )
}

async fn solve(
    backend: &Arc<MemoryBackend>,
    definition: &Definition,
) -> Result<ResultRef, SolveError> {
    let solver = Solver::new(
        backend.clone(),
        SolveOptions {
            max_parallel: 4,
            no_cache: false,
        },
    );
    solver
        .solve(definition, &EventSink::discard(), &CancellationToken::new())
        .await
}

#[tokio::test]
async fn independent_vertices_run_in_parallel() {
    let backend = Arc::new(MemoryBackend::default());
    let mut definition = Definition::default();
    let base = source(&mut definition, "docker-image://busybox");
    let a = run(&mut definition, &base, "a");
    let b = run(&mut definition, &base, "b");
    let c = run(&mut definition, &base, "c");
    definition.target = Some(merge(&mut definition, &[a, b, c]));
    solve(&backend, &definition).await.unwrap();
    assert_eq!(backend.max_running.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn parallelism_is_bounded() {
    let backend = Arc::new(MemoryBackend::default());
    let mut definition = Definition::default();
    let base = source(&mut definition, "docker-image://busybox");
    let runs: Vec<Input> = (0..6)
        .map(|i| run(&mut definition, &base, &format!("step{i}")))
        .collect();
    definition.target = Some(merge(&mut definition, &runs));
    let solver = Solver::new(
        backend.clone(),
        SolveOptions {
            max_parallel: 2,
            no_cache: false,
        },
    );
    solver
        .solve(
            &definition,
            &EventSink::discard(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(backend.max_running.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unreachable_vertices_do_not_run() {
    let backend = Arc::new(MemoryBackend::default());
    let mut definition = Definition::default();
    let base = source(&mut definition, "docker-image://busybox");
    run(&mut definition, &base, "unused");
    definition.target = Some(run(&mut definition, &base, "used"));
    solve(&backend, &definition).await.unwrap();
    assert_eq!(*backend.executed.lock().unwrap(), vec!["used".to_string()]);
}

#[tokio::test]
async fn second_solve_hits_cache() {
    let backend = Arc::new(MemoryBackend::default());
    let mut definition = Definition::default();
    let base = source(&mut definition, "docker-image://busybox");
    let first = run(&mut definition, &base, "first");
    definition.target = Some(run(&mut definition, &first, "second"));
    solve(&backend, &definition).await.unwrap();
    solve(&backend, &definition).await.unwrap();
    assert_eq!(backend.executed.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn copy_key_ignores_unread_files() {
    let backend = Arc::new(MemoryBackend::default());
    let context = "local://context";
    let set_files = |files: &[(&str, &str)]| {
        let map = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        backend
            .sources
            .lock()
            .unwrap()
            .insert(context.to_string(), map);
    };
    let mut definition = Definition::default();
    let base = source(&mut definition, "docker-image://busybox");
    let ctx = source(&mut definition, context);
    definition.target = Some(copy(&mut definition, &base, &ctx, "src"));

    set_files(&[("src", "one"), ("README", "a")]);
    solve(&backend, &definition).await.unwrap();
    set_files(&[("src", "one"), ("README", "b")]);
    solve(&backend, &definition).await.unwrap();
    assert_eq!(
        backend.executed.lock().unwrap().len(),
        1,
        "an unread file changed the key"
    );

    set_files(&[("src", "two"), ("README", "b")]);
    solve(&backend, &definition).await.unwrap();
    assert_eq!(
        backend.executed.lock().unwrap().len(),
        2,
        "a read file did not change the key"
    );
}

#[tokio::test]
async fn failure_names_the_vertex() {
    let backend = Arc::new(MemoryBackend::default());
    *backend.fail_on.lock().unwrap() = Some("broken".into());
    let mut definition = Definition::default();
    let base = source(&mut definition, "docker-image://busybox");
    let broken = run(&mut definition, &base, "broken");
    definition.target = Some(run(&mut definition, &broken, "after"));
    let error = solve(&backend, &definition).await.unwrap_err();
    assert_eq!(error.to_string(), "RUN broken: process exited with code 1");
    assert!(backend.executed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_solves_share_execution() {
    let backend = Arc::new(MemoryBackend::default());
    let mut definition = Definition::default();
    let base = source(&mut definition, "docker-image://busybox");
    definition.target = Some(run(&mut definition, &base, "once"));
    let solver = Solver::new(backend.clone(), SolveOptions::default());
    let (sink, cancel) = (EventSink::discard(), CancellationToken::new());
    let (a, b) = tokio::join!(
        solver.solve(&definition, &sink, &cancel),
        solver.solve(&definition, &sink, &cancel)
    );
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(backend.executed.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn events_cover_every_vertex() {
    let backend = Arc::new(MemoryBackend::default());
    let mut definition = Definition::default();
    let base = source(&mut definition, "docker-image://busybox");
    definition.target = Some(run(&mut definition, &base, "x"));
    let (sink, mut receiver) = EventSink::channel();
    let solver = Solver::new(backend.clone(), SolveOptions::default());
    solver
        .solve(&definition, &sink, &CancellationToken::new())
        .await
        .unwrap();
    drop(sink);
    let mut kinds = Vec::new();
    while let Some(event) = receiver.recv().await {
        kinds.push(
            serde_json::to_value(&event.event).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(kinds.iter().filter(|k| *k == "vertex_queued").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "vertex_completed").count(), 2);
}
