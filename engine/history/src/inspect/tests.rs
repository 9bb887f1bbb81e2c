use super::*;
use chrono::TimeZone;
use strata_solver::EVENT_FORMAT_VERSION;

fn stamped(ms: i64, event: Event) -> StampedEvent {
    StampedEvent {
        v: EVENT_FORMAT_VERSION,
        time: Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap(),
        event,
    }
}

fn digest(name: &str) -> Digest {
    Digest::of_bytes(name.as_bytes())
}

fn queued(name: &str) -> StampedEvent {
    stamped(
        0,
        Event::VertexQueued {
            vertex: digest(name),
            name: name.into(),
            stage: None,
            location: None,
            inputs: Vec::new(),
        },
    )
}

fn keyed(ms: i64, name: &str) -> StampedEvent {
    stamped(
        ms,
        Event::CacheKey {
            vertex: digest(name),
            key: digest(&format!("key {name}")),
            op: digest(name),
            inputs: Vec::new(),
        },
    )
}

/// A source, a cached step, a step that ran and a step that never finished.
fn events() -> Vec<StampedEvent> {
    let mut events = vec![
        queued("image"),
        queued("cached"),
        queued("ran"),
        queued("waiting"),
    ];
    events.push(stamped(
        0,
        Event::VertexCompleted {
            vertex: digest("image"),
            key: None,
            duration_ms: 0,
        },
    ));
    events.push(stamped(
        10,
        Event::VertexStarted {
            vertex: digest("cached"),
        },
    ));
    events.push(keyed(30, "cached"));
    events.push(stamped(
        40,
        Event::VertexCached {
            vertex: digest("cached"),
            key: digest("key cached"),
        },
    ));
    events.push(stamped(
        50,
        Event::VertexStarted {
            vertex: digest("ran"),
        },
    ));
    events.push(keyed(60, "ran"));
    events.push(keyed(60, "waiting"));
    events.push(stamped(
        260,
        Event::VertexCompleted {
            vertex: digest("ran"),
            key: None,
            duration_ms: 210,
        },
    ));
    events
}

#[test]
fn step_counts_skip_sources() {
    let counts = StepCounts::from_events(&events());
    assert_eq!(counts.total, 3);
    assert_eq!(counts.done, 2);
    assert_eq!(counts.cached, 1);
    assert!((counts.cached_share - 1.0 / 3.0).abs() < 1e-9);
}

#[test]
fn step_counts_of_empty_build() {
    let counts = StepCounts::from_events(&[]);
    assert_eq!(counts.total, 0);
    assert_eq!(counts.cached_share, 0.0);
}

#[test]
fn critical_path_splits_lookup_and_run() {
    let mut record = BuildRecord::new("id", RequestSummary::default());
    record.status = BuildStatus::Succeeded;
    let inspection = Inspection::new(&record, &events());
    let last = inspection.critical_path.last().unwrap();
    assert_eq!(last.name, "ran");
    assert_eq!(last.queued_ms, 50);
    assert_eq!(last.cache_lookup_ms, 10);
    assert_eq!(last.run_ms, 200);
}

#[test]
fn export_phases_keep_final_duration() {
    let mut events = events();
    for duration_ms in [None, Some(120)] {
        events.push(stamped(
            300,
            Event::Phase {
                id: "export-0".into(),
                name: "exporting to type=local,dest=out".into(),
                duration_ms,
            },
        ));
    }
    events.push(stamped(
        400,
        Event::Phase {
            id: "tag-app".into(),
            name: "naming to app".into(),
            duration_ms: None,
        },
    ));
    let record = BuildRecord::new("id", RequestSummary::default());
    let exports = Inspection::new(&record, &events).exports;
    assert_eq!(
        exports,
        [
            ExportResult {
                name: "exporting to type=local,dest=out".into(),
                duration_ms: Some(120),
            },
            ExportResult {
                name: "naming to app".into(),
                duration_ms: None,
            },
        ]
    );
}
