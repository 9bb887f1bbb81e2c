//! Steps on a time axis, one row per parallel lane, with the critical path
//! marked and the build's time split by kind of work.

use serde::Serialize;
use strata_history::{StepState, critical_path, steps::lanes, steps_from_events};
use strata_solver::{Event, StampedEvent};

/// What kind of work a bar is, for colours and the time split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    ContextTransfer,
    Pull,
    Run,
    FileOp,
    Export,
}

impl WorkKind {
    /// Classifies a step by its progress name, which the Dockerfile
    /// frontend writes as `[stage i/n] INSTRUCTION …` or `[internal] …`.
    fn of_step(name: &str) -> WorkKind {
        let instruction = match (name.starts_with('['), name.find("] ")) {
            (true, Some(end)) => &name[end + 2..],
            _ => name,
        };
        if name.starts_with("[internal] load build context") {
            WorkKind::ContextTransfer
        } else if instruction.starts_with("FROM ") || name.starts_with("docker-image://") {
            WorkKind::Pull
        } else if instruction.starts_with("RUN ") {
            WorkKind::Run
        } else {
            WorkKind::FileOp
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bar {
    pub id: String,
    pub name: String,
    pub lane: usize,
    pub start_ms: u64,
    pub end_ms: u64,
    pub kind: WorkKind,
    pub cached: bool,
    pub failed: bool,
    pub critical: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Waterfall {
    pub bars: Vec<Bar>,
    pub lanes: usize,
    pub total_ms: u64,
    /// Milliseconds of work per kind (bars overlap, so the sum can exceed
    /// `total_ms`).
    pub split: Vec<(WorkKind, u64)>,
}

/// Builds the waterfall from a build's events.
pub fn waterfall(events: &[StampedEvent]) -> Waterfall {
    let Some(origin) = events.first().map(|e| e.time) else {
        return Waterfall::default();
    };
    let offset =
        |time: chrono::DateTime<chrono::Utc>| (time - origin).num_milliseconds().max(0) as u64;
    let steps = steps_from_events(events);
    let critical: Vec<&str> = critical_path(&steps)
        .iter()
        .map(|s| s.vertex.as_str())
        .collect();
    let lane_of = lanes(&steps);
    let mut bars = Vec::new();
    for (step, lane) in steps.iter().zip(&lane_of) {
        let (Some(lane), Some(started)) = (lane, step.started) else {
            continue;
        };
        bars.push(Bar {
            id: step.vertex.to_string(),
            name: step.name.clone(),
            lane: *lane,
            start_ms: offset(started),
            end_ms: offset(step.finished.unwrap_or(started)),
            kind: WorkKind::of_step(&step.name),
            cached: step.state == StepState::Cached,
            failed: step.state == StepState::Failed,
            critical: critical.contains(&step.vertex.as_str()),
        });
    }
    add_export_bars(events, &mut bars, offset);
    let lanes = bars.iter().map(|b| b.lane + 1).max().unwrap_or(0);
    let total_ms = events.last().map_or(0, |e| offset(e.time));
    let mut split: Vec<(WorkKind, u64)> = Vec::new();
    for bar in &bars {
        let length = bar.end_ms - bar.start_ms;
        match split.iter_mut().find(|(kind, _)| *kind == bar.kind) {
            Some((_, total)) => *total += length,
            None => split.push((bar.kind, length)),
        }
    }
    Waterfall {
        bars,
        lanes,
        total_ms,
        split,
    }
}

/// Export phases run after the graph, in a lane of their own.
fn add_export_bars(
    events: &[StampedEvent],
    bars: &mut Vec<Bar>,
    offset: impl Fn(chrono::DateTime<chrono::Utc>) -> u64,
) {
    let lane = bars.iter().map(|b| b.lane + 1).max().unwrap_or(0);
    for stamped in events {
        let Event::Phase {
            id,
            name,
            duration_ms: Some(duration),
        } = &stamped.event
        else {
            continue;
        };
        let end = offset(stamped.time);
        bars.push(Bar {
            id: id.clone(),
            name: name.clone(),
            lane,
            start_ms: end.saturating_sub(*duration),
            end_ms: end,
            kind: WorkKind::Export,
            cached: false,
            failed: false,
            critical: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use strata_llb::Digest;

    fn at(ms: i64, event: Event) -> StampedEvent {
        StampedEvent {
            v: 1,
            time: Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap(),
            event,
        }
    }

    fn step(name: &str, inputs: &[&str], start: i64, end: i64) -> Vec<StampedEvent> {
        let vertex = Digest::of_bytes(name.as_bytes());
        vec![
            at(
                0,
                Event::VertexQueued {
                    vertex: vertex.clone(),
                    name: name.into(),
                    stage: None,
                    location: None,
                    inputs: inputs
                        .iter()
                        .map(|i| Digest::of_bytes(i.as_bytes()))
                        .collect(),
                },
            ),
            at(
                start,
                Event::VertexStarted {
                    vertex: vertex.clone(),
                },
            ),
            at(
                end,
                Event::VertexCompleted {
                    vertex,
                    key: None,
                    duration_ms: (end - start) as u64,
                },
            ),
        ]
    }

    #[test]
    fn waterfall_marks_critical_path_and_splits_time() {
        let mut events = vec![at(
            0,
            Event::BuildStarted {
                build_id: "b".into(),
            },
        )];
        events.extend(step("[a 1/2] FROM busybox", &[], 0, 100));
        events.extend(step("[internal] load build context", &[], 0, 50));
        events.extend(step(
            "[a 2/2] RUN make",
            &["[a 1/2] FROM busybox"],
            100,
            900,
        ));
        events.push(at(
            1000,
            Event::Phase {
                id: "export".into(),
                name: "exporting".into(),
                duration_ms: Some(100),
            },
        ));
        events.sort_by_key(|e| e.time);
        let waterfall = waterfall(&events);
        assert_eq!(waterfall.bars.len(), 4);
        assert_eq!(waterfall.lanes, 3);
        let run = waterfall
            .bars
            .iter()
            .find(|b| b.name.contains("RUN"))
            .unwrap();
        assert!(run.critical);
        assert_eq!(run.kind, WorkKind::Run);
        assert!(
            !waterfall
                .bars
                .iter()
                .find(|b| b.name.contains("context"))
                .unwrap()
                .critical
        );
        assert!(waterfall.split.contains(&(WorkKind::Run, 800)));
        assert!(waterfall.split.contains(&(WorkKind::Export, 100)));
    }
}
