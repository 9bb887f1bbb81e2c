use super::*;
use chrono::TimeZone;
use strata_solver::EVENT_FORMAT_VERSION;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap()
}

fn digest(name: &str) -> Digest {
    Digest::of_bytes(name.as_bytes())
}

fn stamped(ms: i64, event: Event) -> StampedEvent {
    StampedEvent {
        v: EVENT_FORMAT_VERSION,
        time: at(ms),
        event,
    }
}

fn queued(name: &str, inputs: &[&str]) -> StampedEvent {
    stamped(
        0,
        Event::VertexQueued {
            vertex: digest(name),
            name: name.into(),
            stage: None,
            location: None,
            inputs: inputs.iter().map(|i| digest(i)).collect(),
        },
    )
}

fn ran(name: &str, start: i64, end: i64) -> [StampedEvent; 2] {
    [
        stamped(
            start,
            Event::VertexStarted {
                vertex: digest(name),
            },
        ),
        stamped(
            end,
            Event::VertexCompleted {
                vertex: digest(name),
                key: None,
                duration_ms: (end - start) as u64,
            },
        ),
    ]
}

/// base ─┬─ short ─┐
///       └─ long ──┴─ final
fn diamond() -> Vec<StampedEvent> {
    let mut events = vec![
        queued("base", &[]),
        queued("short", &["base"]),
        queued("long", &["base"]),
        queued("final", &["short", "long"]),
    ];
    events.extend(ran("base", 0, 100));
    events.extend(ran("short", 100, 200));
    events.extend(ran("long", 100, 900));
    events.extend(ran("final", 900, 1000));
    events
}

#[test]
fn critical_path_follows_latest_input() {
    let steps = steps_from_events(&diamond());
    let path: Vec<&str> = critical_path(&steps)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(path, ["base", "long", "final"]);
}

#[test]
fn parallel_steps_get_separate_lanes() {
    let steps = steps_from_events(&diamond());
    let lanes = lanes(&steps);
    assert_eq!(lanes, vec![Some(0), Some(0), Some(1), Some(0)]);
}

#[test]
fn chrome_trace_has_one_event_per_step() {
    let steps = steps_from_events(&diamond());
    let trace = to_chrome_trace(&steps);
    let spans: Vec<_> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .collect();
    assert_eq!(spans.len(), 4);
    assert_eq!(spans[2]["dur"], 800_000);
}

#[test]
fn cached_step_state_and_lookup_time() {
    let mut events = vec![queued("base", &[])];
    events.push(stamped(
        10,
        Event::VertexStarted {
            vertex: digest("base"),
        },
    ));
    events.push(stamped(
        25,
        Event::VertexCached {
            vertex: digest("base"),
            key: digest("key"),
        },
    ));
    let steps = steps_from_events(&events);
    assert_eq!(steps[0].state, StepState::Cached);
    assert_eq!(steps[0].cache_lookup_ms(), 15);
    assert_eq!(steps[0].queued_ms(), 10);
}
