use super::*;
use chrono::{TimeZone, Utc};
use strata_solver::{Event, StampedEvent, TransferStats};

fn digest(name: &str) -> Digest {
    Digest::of_bytes(name.as_bytes())
}

fn stamp(event: Event) -> StampedEvent {
    let time = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    StampedEvent { v: 1, time, event }
}

/// A started build with one local-source vertex, `context`.
fn model() -> DagModel {
    let mut model = DagModel::default();
    model.apply(&stamp(Event::BuildStarted {
        build_id: "b".into(),
    }));
    model.apply(&stamp(Event::VertexQueued {
        vertex: digest("context"),
        name: "load build context".into(),
        stage: None,
        location: None,
        inputs: Vec::new(),
    }));
    model.apply(&stamp(Event::VertexStarted {
        vertex: digest("context"),
    }));
    model
}

fn progress(vertex: Option<&str>, id: &str, current: u64, total: Option<u64>) -> StampedEvent {
    stamp(Event::Progress {
        vertex: vertex.map(digest),
        id: id.into(),
        current,
        total,
        unit: "bytes".into(),
    })
}

fn phase(id: &str, duration_ms: Option<u64>) -> StampedEvent {
    stamp(Event::Phase {
        id: id.into(),
        name: format!("phase {id}"),
        duration_ms,
    })
}

fn layer(status: LayerStatus, current: u64) -> StampedEvent {
    stamp(Event::LayerProgress {
        phase: "pull-alpine".into(),
        layer: digest("layer"),
        status,
        current,
        total: 1000,
    })
}

#[test]
fn context_transfer_folds_into_node_and_build() {
    let mut model = model();
    let change = model.apply_change(&progress(Some("context"), "transfer", 4096, None));
    assert_eq!(change.node, Some(0));
    assert!(change.progress_only);
    assert_eq!(change.transfers, [0]);

    let node = &model.nodes[0];
    assert_eq!(node.progress.len(), 1);
    assert_eq!(node.progress[0].label, "context");
    assert_eq!(node.progress[0].current, 4096);
    assert_eq!(node.progress[0].total, None);
    assert_eq!(node.progress[0].unit, "B");
    assert!(!node.progress[0].done);

    let transfer = &model.transfers[0];
    assert_eq!(transfer.kind, TransferKind::Context);
    assert_eq!(transfer.vertex.as_deref(), Some(node.id.as_str()));
    assert_eq!(transfer.phase, None);
    assert_eq!(transfer.item.fraction(), None);
}

#[test]
fn context_transfer_done_on_counters() {
    let mut model = model();
    model.apply(&progress(Some("context"), "transfer", 10, None));
    let change = model.apply_change(&stamp(Event::ContextTransfer {
        vertex: digest("context"),
        stats: TransferStats::default(),
    }));
    assert_eq!(change.node, Some(0));
    assert_eq!(change.transfers, [0]);
    assert!(model.nodes[0].progress[0].done);
    assert!(model.transfers[0].item.done);
    assert_eq!(model.transfers[0].item.total, None);
}

#[test]
fn vertex_completion_finishes_progress() {
    let mut model = model();
    model.apply(&progress(Some("context"), "transfer", 10, None));
    let change = model.apply_change(&stamp(Event::VertexCompleted {
        vertex: digest("context"),
        key: None,
        duration_ms: 5,
    }));
    assert_eq!(change.node, Some(0));
    assert!(!change.progress_only);
    assert_eq!(change.transfers, [0]);
    assert!(model.nodes[0].progress[0].done);
    assert!(model.transfers[0].item.done);
}

#[test]
fn vertex_failure_keeps_progress_unfinished() {
    let mut model = model();
    model.apply(&progress(Some("context"), "transfer", 10, None));
    let change = model.apply_change(&stamp(Event::VertexFailed {
        vertex: digest("context"),
        error: "disk full".into(),
        duration_ms: 5,
    }));
    assert!(change.transfers.is_empty());
    assert!(!model.nodes[0].progress[0].done);
    assert!(!model.transfers[0].item.done);
}

#[test]
fn repeated_updates_replace_one_item() {
    let mut model = model();
    for current in [10, 20, 20, 35] {
        model.apply(&progress(Some("context"), "transfer", current, None));
    }
    assert_eq!(model.nodes[0].progress.len(), 1);
    assert_eq!(model.nodes[0].progress[0].current, 35);
    assert_eq!(model.transfers.len(), 1);
    assert_eq!(model.transfers[0].item.current, 35);
}

#[test]
fn vertexless_progress_joins_open_export_phase() {
    let mut model = model();
    model.apply(&phase("export-0", None));
    let change = model.apply_change(&progress(None, "compressing layer abc", 300, None));
    assert_eq!(change.node, None);
    assert_eq!(change.transfers, [0]);

    let transfer = &model.transfers[0];
    assert_eq!(transfer.kind, TransferKind::Export);
    assert_eq!(transfer.key, "export-0/compressing layer abc");
    assert_eq!(transfer.phase.as_deref(), Some("export-0"));
    assert_eq!(transfer.phase_name.as_deref(), Some("phase export-0"));
    assert_eq!(transfer.item.total, None);
    assert!(!transfer.item.done);

    // The exporter sends the size once the layer is written.
    model.apply(&progress(None, "compressing layer abc", 512, Some(512)));
    let transfer = &model.transfers[0];
    assert_eq!(transfer.item.total, Some(512));
    assert!(transfer.item.done);
    assert_eq!(transfer.item.fraction(), Some(1.0));
}

#[test]
fn finished_phase_finishes_its_transfers() {
    let mut model = model();
    model.apply(&phase("export-0", None));
    model.apply(&progress(None, "compressing layer abc", 300, None));
    let change = model.apply_change(&phase("export-0", Some(40)));
    assert_eq!(change.transfers, [0]);
    assert!(model.transfers[0].item.done);

    // Progress after the phase ended no longer joins it.
    model.apply(&progress(None, "late", 1, None));
    assert_eq!(model.transfers[1].phase.as_deref(), Some("late"));
    assert_eq!(model.transfers[1].kind, TransferKind::Other);
}

#[test]
fn layer_download_then_extract() {
    let mut model = model();
    model.apply(&phase("pull-alpine", None));
    model.apply(&layer(LayerStatus::Downloading, 0));
    model.apply(&layer(LayerStatus::Downloading, 400));
    assert_eq!(model.transfers.len(), 1);
    let download = &model.transfers[0];
    assert_eq!(download.kind, TransferKind::Pull);
    assert_eq!(download.item.label, digest("layer").short());
    assert_eq!(download.item.fraction(), Some(0.4));
    assert!(!download.item.done);

    // A download that reached its size is done only once verified.
    model.apply(&layer(LayerStatus::Downloading, 1000));
    assert!(!model.transfers[0].item.done);
    model.apply(&layer(LayerStatus::Verified, 1000));
    assert!(model.transfers[0].item.done);

    model.apply(&layer(LayerStatus::Extracting, 200));
    assert_eq!(model.transfers.len(), 2);
    let extract = &model.transfers[1];
    assert_eq!(
        extract.item.label,
        format!("extracting {}", digest("layer").short())
    );
    assert!(!extract.item.done);
    model.apply(&layer(LayerStatus::Extracted, 1000));
    assert!(model.transfers[1].item.done);
    assert_eq!(model.nodes[0].progress, []);
}

#[test]
fn zero_total_counts_as_done() {
    let item = ProgressItem {
        id: "empty".into(),
        label: "empty".into(),
        current: 0,
        total: Some(0),
        unit: "B".into(),
        done: true,
    };
    assert_eq!(item.fraction(), Some(1.0));
}

#[test]
fn new_build_clears_transfers() {
    let mut model = model();
    model.apply(&progress(Some("context"), "transfer", 10, None));
    model.apply(&stamp(Event::BuildStarted {
        build_id: "c".into(),
    }));
    assert!(model.transfers.is_empty());
    assert!(model.transfer("x").is_none());
}

#[test]
fn transfers_serialize_flat() {
    let mut model = model();
    model.apply(&progress(Some("context"), "transfer", 10, None));
    let json = serde_json::to_value(&model.transfers[0]).unwrap();
    assert_eq!(json["kind"], "context");
    assert_eq!(json["current"], 10);
    assert_eq!(json["total"], serde_json::Value::Null);
    assert_eq!(json["done"], false);
    let node = serde_json::to_value(&model.nodes[0]).unwrap();
    assert_eq!(node["progress"][0]["id"], "transfer");
}
