use super::*;
use crate::record::RequestSummary;
use chrono::{DateTime, TimeZone, Utc};
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

/// How one step of a test build ended.
#[derive(Clone, Copy)]
enum Outcome {
    Ran,
    Cached,
}

/// A step of a test build: name with its `[stage i/n]` prefix, op digest
/// seed, outcome and start and finish times in ms.
struct TestStep<'a> {
    name: &'a str,
    op: &'a str,
    outcome: Outcome,
    start: i64,
    end: i64,
}

fn step<'a>(name: &'a str, op: &'a str, outcome: Outcome, start: i64, end: i64) -> TestStep<'a> {
    TestStep {
        name,
        op,
        outcome,
        start,
        end,
    }
}

/// Events of a build whose steps run one after another; each vertex digest
/// comes from the name and the op, as a real vertex digest would change
/// with either.
fn build_events(steps: &[TestStep]) -> Vec<StampedEvent> {
    let vertex = |s: &TestStep| digest(&format!("{}|{}", s.name, s.op));
    let mut events = Vec::new();
    for s in steps {
        let stage = s
            .name
            .strip_prefix('[')
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string);
        events.push(stamped(
            0,
            Event::VertexQueued {
                vertex: vertex(s),
                name: s.name.into(),
                stage,
                location: None,
                inputs: vec![digest("base")],
            },
        ));
    }
    for s in steps {
        events.push(stamped(s.start, Event::VertexStarted { vertex: vertex(s) }));
        events.push(stamped(
            s.start,
            Event::CacheKey {
                vertex: vertex(s),
                key: digest(&format!("key {}", s.op)),
                op: digest(s.op),
                inputs: Vec::new(),
            },
        ));
        let finish = match s.outcome {
            Outcome::Cached => Event::VertexCached {
                vertex: vertex(s),
                key: digest(&format!("key {}", s.op)),
            },
            Outcome::Ran => Event::VertexCompleted {
                vertex: vertex(s),
                key: None,
                duration_ms: (s.end - s.start) as u64,
            },
        };
        events.push(stamped(s.end, finish));
    }
    events
}

fn record(id: &str, duration_ms: i64) -> BuildRecord {
    let mut record = BuildRecord::new(id, RequestSummary::default());
    record.started = at(0);
    record.finished = Some(at(duration_ms));
    record.status = BuildStatus::Succeeded;
    record
}

fn compare_steps(before: &[TestStep], after: &[TestStep]) -> Comparison {
    compare(
        &record("base", 1000),
        &build_events(before),
        &record("other", 1500),
        &build_events(after),
    )
}

#[test]
fn identical_builds_have_no_differences() {
    let steps = [
        step("[a 1/2] COPY . /src", "copy", Outcome::Ran, 0, 100),
        step("[a 2/2] RUN make", "make", Outcome::Ran, 100, 400),
    ];
    let comparison = compare_steps(&steps, &steps);
    assert!(comparison.added.is_empty());
    assert!(comparison.removed.is_empty());
    assert!(comparison.changed.is_empty());
    assert!(comparison.cache_flips.is_empty());
    assert_eq!(comparison.timing.len(), 2);
    assert!(comparison.timing.iter().all(|t| t.difference_ms == 0));
}

#[test]
fn inserted_step_is_added_not_shifted() {
    let before = [
        step("[a 1/2] COPY . /src", "copy", Outcome::Ran, 0, 100),
        step("[a 2/2] RUN make", "make", Outcome::Ran, 100, 400),
    ];
    let after = [
        step("[a 1/3] COPY . /src", "copy", Outcome::Cached, 0, 10),
        step("[a 2/3] RUN apk add gcc", "apk", Outcome::Ran, 10, 300),
        step("[a 3/3] RUN make", "make", Outcome::Ran, 300, 600),
    ];
    let comparison = compare_steps(&before, &after);
    let added: Vec<&str> = comparison.added.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(added, ["[a 2/3] RUN apk add gcc"]);
    assert!(comparison.removed.is_empty());
    assert!(comparison.changed.is_empty());
}

#[test]
fn removed_step_is_reported() {
    let before = [
        step("[a 1/2] COPY . /src", "copy", Outcome::Ran, 0, 100),
        step("[a 2/2] RUN make", "make", Outcome::Ran, 100, 400),
    ];
    let after = [step("[a 1/1] COPY . /src", "copy", Outcome::Ran, 0, 100)];
    let comparison = compare_steps(&before, &after);
    let removed: Vec<&str> = comparison.removed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(removed, ["[a 2/2] RUN make"]);
    assert!(comparison.added.is_empty());
}

#[test]
fn edited_instruction_is_changed() {
    let before = [step("[a 1/1] RUN echo one", "one", Outcome::Ran, 0, 100)];
    let after = [step("[a 1/1] RUN echo two", "two", Outcome::Ran, 0, 100)];
    let comparison = compare_steps(&before, &after);
    assert_eq!(
        comparison.changed,
        [ChangedStep {
            before: "[a 1/1] RUN echo one".into(),
            after: "[a 1/1] RUN echo two".into(),
            change: StepChange::Instruction,
        }]
    );
    assert!(comparison.added.is_empty());
    assert!(comparison.removed.is_empty());
}

#[test]
fn same_text_with_new_op_is_options_change() {
    let before = [step("[a 1/1] RUN make", "make env=1", Outcome::Ran, 0, 100)];
    let after = [step("[a 1/1] RUN make", "make env=2", Outcome::Ran, 0, 100)];
    let comparison = compare_steps(&before, &after);
    assert_eq!(comparison.changed.len(), 1);
    assert_eq!(comparison.changed[0].change, StepChange::Options);
}

#[test]
fn cache_flips_both_ways() {
    let before = [
        step("[a 1/2] COPY . /src", "copy", Outcome::Cached, 0, 10),
        step("[a 2/2] RUN make", "make", Outcome::Ran, 10, 400),
    ];
    let after = [
        step("[a 1/2] COPY . /src", "copy", Outcome::Ran, 0, 100),
        step("[a 2/2] RUN make", "make", Outcome::Cached, 100, 110),
    ];
    let comparison = compare_steps(&before, &after);
    assert_eq!(comparison.cache_flips.len(), 2);
    let copy = &comparison.cache_flips[0];
    assert_eq!(copy.step, "[a 1/2] COPY . /src");
    assert_eq!(copy.before, StepState::Cached);
    assert_eq!(copy.after, StepState::Done);
    let make = &comparison.cache_flips[1];
    assert_eq!(make.before, StepState::Done);
    assert_eq!(make.after, StepState::Cached);
}

#[test]
fn timing_sorted_by_absolute_difference() {
    let before = [
        step("[a 1/3] RUN one", "one", Outcome::Ran, 0, 100),
        step("[a 2/3] RUN two", "two", Outcome::Ran, 100, 1100),
        step("[a 3/3] RUN three", "three", Outcome::Ran, 1100, 1200),
    ];
    let after = [
        step("[a 1/3] RUN one", "one", Outcome::Ran, 0, 150),
        step("[a 2/3] RUN two", "two", Outcome::Ran, 150, 350),
        step("[a 3/3] RUN three", "three", Outcome::Ran, 350, 650),
    ];
    let comparison = compare_steps(&before, &after);
    let order: Vec<(&str, i64)> = comparison
        .timing
        .iter()
        .map(|t| (t.step.as_str(), t.difference_ms))
        .collect();
    assert_eq!(
        order,
        [
            ("[a 2/3] RUN two", -800),
            ("[a 3/3] RUN three", 200),
            ("[a 1/3] RUN one", 50),
        ]
    );
}

#[test]
fn totals_and_duration_difference() {
    let before = [
        step("[a 1/2] COPY . /src", "copy", Outcome::Cached, 0, 10),
        step("[a 2/2] RUN make", "make", Outcome::Ran, 10, 400),
    ];
    let comparison = compare_steps(&before, &before);
    assert_eq!(comparison.base.steps, 2);
    assert_eq!(comparison.base.cached, 1);
    assert_eq!(comparison.base.ran, 1);
    assert_eq!(comparison.base.step_time_ms, 400);
    assert_eq!(comparison.base.duration_ms, Some(1000));
    assert_eq!(comparison.other.duration_ms, Some(1500));
    assert_eq!(comparison.duration_difference_ms, Some(500));
}

#[test]
fn repeated_instructions_pair_in_order() {
    let before = [
        step("[a 1/2] RUN sleep 1", "sleep", Outcome::Ran, 0, 100),
        step("[a 2/2] RUN sleep 1", "sleep", Outcome::Ran, 100, 200),
    ];
    let after = [
        step("[a 1/2] RUN sleep 1", "sleep", Outcome::Cached, 0, 10),
        step("[a 2/2] RUN sleep 1", "sleep", Outcome::Ran, 10, 110),
    ];
    let comparison = compare_steps(&before, &after);
    assert!(comparison.added.is_empty());
    assert!(comparison.removed.is_empty());
    assert_eq!(comparison.cache_flips.len(), 1);
}

#[test]
fn comparison_serializes_change_kind() {
    let before = [step("[a 1/1] RUN echo one", "one", Outcome::Ran, 0, 100)];
    let after = [step("[a 1/1] RUN echo two", "two", Outcome::Ran, 0, 100)];
    let json = serde_json::to_value(compare_steps(&before, &after)).unwrap();
    assert_eq!(json["changed"][0]["change"], "instruction");
    assert_eq!(json["changed"][0]["after"], "[a 1/1] RUN echo two");
    assert_eq!(json["duration_difference_ms"], 500);
}
