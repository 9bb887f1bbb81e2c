use super::*;
use crate::record::{BuildStatus, RequestSummary};
use chrono::Utc;
use strata_llb::{
    CopyAction, Definition, ExecMeta, ExecOp, FileAction, FileOp, Input, Mount, MountKind,
    OpMetadata, SourceOp,
};
use strata_solver::{PathChecksum, StampedEvent};

struct Fixture {
    definition: Definition,
    copy: Input,
    run: Input,
}

fn vertex(op: Op, inputs: Vec<Input>) -> Vertex {
    Vertex {
        op,
        inputs,
        platform: None,
    }
}

fn fixture(image_digest: &str, run_env: &str) -> Fixture {
    let mut definition = Definition::default();
    let image = SourceOp {
        identifier: format!("docker-image://docker.io/library/busybox:latest@{image_digest}"),
        attrs: Default::default(),
    };
    let base = definition.add(vertex(Op::Source(image), vec![]), OpMetadata::default(), 0);
    let local = SourceOp {
        identifier: "local://context".into(),
        attrs: Default::default(),
    };
    let context = definition.add(vertex(Op::Source(local), vec![]), OpMetadata::default(), 0);
    let copy_op = Op::File(FileOp {
        base: Some(0),
        actions: vec![FileAction::Copy(CopyAction::new(Some(1), ".", "/app"))],
    });
    let copy = definition.add(
        vertex(copy_op, vec![base, context]),
        OpMetadata::default(),
        0,
    );
    let exec = Op::Exec(ExecOp {
        meta: ExecMeta {
            args: vec!["/bin/sh".into(), "-c".into(), "make".into()],
            env: vec![run_env.into()],
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
    let run = definition.add(vertex(exec, vec![copy.clone()]), OpMetadata::default(), 0);
    definition.target = Some(run.clone());
    Fixture {
        definition,
        copy,
        run,
    }
}

fn stamped(event: Event) -> StampedEvent {
    StampedEvent {
        v: 1,
        time: Utc::now(),
        event,
    }
}

/// Events of one build where both the copy and the run ran, with cache
/// keys built from `files_checksum`.
fn events(fixture: &Fixture, files_checksum: &str) -> Vec<StampedEvent> {
    let names = [
        (&fixture.copy, "[stage-0 2/3] COPY . /app"),
        (&fixture.run, "[stage-0 3/3] RUN make"),
    ];
    let mut events = Vec::new();
    let order = fixture.definition.reachable(&fixture.run.digest);
    for digest in &order {
        let vertex = &fixture.definition.vertices[digest];
        let name = names
            .iter()
            .find(|(i, _)| &i.digest == digest)
            .map_or("source", |(_, n)| n);
        events.push(stamped(Event::VertexQueued {
            vertex: digest.clone(),
            name: name.into(),
            stage: Some("stage-0".into()),
            location: None,
            inputs: vertex.inputs.iter().map(|i| i.digest.clone()).collect(),
        }));
        events.push(stamped(Event::VertexStarted {
            vertex: digest.clone(),
        }));
    }
    let copy_key = Digest::of_bytes(files_checksum.as_bytes());
    let run_op = fixture.definition.vertices[&fixture.run.digest]
        .without_inputs()
        .digest();
    let copy_op = fixture.definition.vertices[&fixture.copy.digest]
        .without_inputs()
        .digest();
    events.push(stamped(Event::CacheKey {
        vertex: fixture.copy.digest.clone(),
        key: copy_key.clone(),
        op: copy_op,
        inputs: vec![
            KeyInput {
                index: 0,
                key: Some(Digest::of_bytes(b"base")),
                content: vec![],
            },
            KeyInput {
                index: 0,
                key: None,
                content: vec![PathChecksum {
                    path: ".".into(),
                    checksum: Digest::of_bytes(files_checksum.as_bytes()),
                }],
            },
        ],
    }));
    events.push(stamped(Event::CacheKey {
        vertex: fixture.run.digest.clone(),
        key: Digest::of_bytes(format!("run{files_checksum}").as_bytes()),
        op: run_op,
        inputs: vec![KeyInput {
            index: 0,
            key: Some(copy_key),
            content: vec![],
        }],
    }));
    for digest in fixture.definition.vertices.keys() {
        events.push(stamped(Event::VertexCompleted {
            vertex: digest.clone(),
            key: None,
            duration_ms: 1,
        }));
    }
    events
}

fn record(
    id: &str,
    fixture: &Fixture,
    files: &[(&str, &str)],
    args: &[(&str, &str)],
) -> BuildRecord {
    let mut request = RequestSummary {
        context: "/ctx".into(),
        dockerfile: "Dockerfile".into(),
        ..Default::default()
    };
    request.build_args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut record = BuildRecord::new(id, request);
    record.status = BuildStatus::Succeeded;
    record.definition = Some(serde_json::to_value(&fixture.definition).unwrap());
    record.context_files = std::sync::Arc::new(
        files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    record
}

#[test]
fn changed_file_is_named_for_copy_and_run() {
    let old_fixture = fixture("sha256:aaaa", "PATH=/bin");
    let old = record(
        "old",
        &old_fixture,
        &[("app/a.txt", "d1"), ("app/b.txt", "d2")],
        &[],
    );
    let old_events = events(&old_fixture, "one");
    let new_fixture = fixture("sha256:aaaa", "PATH=/bin");
    let new = record(
        "new",
        &new_fixture,
        &[("app/a.txt", "d1"), ("app/b.txt", "d3")],
        &[],
    );
    let new_events = events(&new_fixture, "two");

    let earlier = BuildView::new(&old, &old_events);
    let current = BuildView::new(&new, &new_events);
    let explanations = explain(&current, Some(&earlier));
    assert_eq!(explanations.len(), 2);

    let copy = &explanations[0];
    assert_eq!(copy.step, "[stage-0 2/3] COPY . /app");
    let Reason::FilesChanged {
        modified,
        added,
        removed,
        ..
    } = &copy.reasons[0]
    else {
        panic!("{:?}", copy.reasons)
    };
    assert_eq!(modified, &["app/b.txt"]);
    assert!(added.is_empty() && removed.is_empty());

    let run = &explanations[1];
    let Reason::ParentReran { parent, because } = &run.reasons[0] else {
        panic!("{:?}", run.reasons)
    };
    assert_eq!(parent, "[stage-0 2/3] COPY . /app");
    assert!(
        run.reasons[0].to_string().contains("app/b.txt"),
        "{}",
        run.reasons[0]
    );
    assert_eq!(because, &copy.reasons);
}

#[test]
fn changed_build_arg_is_named() {
    let old_fixture = fixture("sha256:aaaa", "VERSION=1");
    let old = record("old", &old_fixture, &[], &[("VERSION", "1")]);
    let new_fixture = fixture("sha256:aaaa", "VERSION=2");
    let new = record("new", &new_fixture, &[], &[("VERSION", "2")]);
    let (old_events, new_events) = (events(&old_fixture, "same"), events(&new_fixture, "same"));
    let explanations = explain(
        &BuildView::new(&new, &new_events),
        Some(&BuildView::new(&old, &old_events)),
    );
    let run = explanations
        .iter()
        .find(|e| e.step.contains("RUN"))
        .unwrap();
    assert_eq!(
        run.reasons,
        vec![Reason::BuildArgChanged {
            name: "VERSION".into(),
            old: Some("1".into()),
            new: Some("2".into())
        }]
    );
    assert_eq!(
        run.reasons[0].to_string(),
        "build arg VERSION changed: 1 → 2"
    );
}

#[test]
fn first_build_has_no_earlier_build() {
    let fixture = fixture("sha256:aaaa", "PATH=/bin");
    let current = record("only", &fixture, &[], &[]);
    let events = events(&fixture, "x");
    let explanations = explain(&BuildView::new(&current, &events), None);
    assert!(
        explanations
            .iter()
            .all(|e| e.reasons == vec![Reason::NoEarlierBuild])
    );
}

#[test]
fn files_changed_lists_added_and_removed() {
    let fixture = fixture("sha256:aaaa", "PATH=/bin");
    let old = record(
        "old",
        &fixture,
        &[("src/a", "1"), ("src/gone", "2"), ("other", "3")],
        &[],
    );
    let new = record(
        "new",
        &fixture,
        &[("src/a", "1"), ("src/new", "4"), ("other", "5")],
        &[],
    );
    let reason = files_changed("src/", &new, &old);
    assert_eq!(
        reason,
        Reason::FilesChanged {
            path: "src/".into(),
            added: vec!["src/new".into()],
            removed: vec!["src/gone".into()],
            modified: vec![]
        }
    );
}

#[test]
fn long_file_lists_are_counted() {
    let reason = Reason::FilesChanged {
        path: ".".into(),
        added: (0..25).map(|n| format!("f{n}")).collect(),
        removed: Vec::new(),
        modified: Vec::new(),
    };
    let text = reason.to_string();
    assert!(text.contains("f9 and 15 more"), "{text}");
    assert!(!text.contains("f10"), "{text}");
}
