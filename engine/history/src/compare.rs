//! Comparison of two builds step by step: which steps were added, removed
//! or changed, which flipped between cached and run, and how their times
//! differ.
//!
//! Steps are matched by stage and instruction text (without the
//! `[stage i/n]` prefix), so inserting a step does not shift the others. A
//! step whose text changed is matched by its position in the stage and
//! reported as changed.

use crate::explain::{instruction_text, stage_position};
use crate::record::{BuildRecord, BuildStatus};
use crate::steps::{Step, StepState, steps_from_events};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use strata_llb::Digest;
use strata_solver::{Event, StampedEvent};

/// Totals for one side of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BuildTotals {
    pub id: String,
    pub status: BuildStatus,
    /// Wall-clock duration of the build, when it finished.
    pub duration_ms: Option<i64>,
    /// Every step, sources (images, the build context) included, unlike
    /// [`crate::StepCounts`], which counts only steps with a cache key.
    pub steps: usize,
    pub cached: usize,
    /// Steps that ran rather than coming from the cache.
    pub ran: usize,
    /// Sum of the steps' start-to-finish times; parallel steps overlap, so
    /// this can exceed the build's duration.
    pub step_time_ms: i64,
}

/// A step that only one of the builds has.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepEntry {
    pub name: String,
    pub state: StepState,
    pub duration_ms: i64,
}

/// What differs in a matched step's own definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum StepChange {
    /// The instruction text differs.
    Instruction,
    /// Same text, but the op differs: its environment, build arguments,
    /// mounts or other options.
    Options,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangedStep {
    pub before: String,
    pub after: String,
    #[serde(flatten)]
    pub change: StepChange,
}

/// A matched step that came from the cache in one build and ran in the
/// other.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CacheFlip {
    pub step: String,
    pub before: StepState,
    pub after: StepState,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimingDifference {
    pub step: String,
    pub before_ms: i64,
    pub after_ms: i64,
    /// `after_ms - before_ms`: positive when the step got slower.
    pub difference_ms: i64,
}

/// The differences from `base` to `other`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub base: BuildTotals,
    pub other: BuildTotals,
    /// Steps only `other` has, in its order.
    pub added: Vec<StepEntry>,
    /// Steps only `base` has, in its order.
    pub removed: Vec<StepEntry>,
    pub changed: Vec<ChangedStep>,
    pub cache_flips: Vec<CacheFlip>,
    /// Matched steps that finished in both builds, largest absolute
    /// difference first.
    pub timing: Vec<TimingDifference>,
    /// `other`'s duration minus `base`'s, when both finished.
    pub duration_difference_ms: Option<i64>,
}

/// One build's steps with the op digest (the op without its inputs) of
/// every step that computed a cache key.
struct Side<'a> {
    record: &'a BuildRecord,
    steps: Vec<Step>,
    ops: HashMap<Digest, Digest>,
}

impl<'a> Side<'a> {
    fn new(record: &'a BuildRecord, events: &[StampedEvent]) -> Side<'a> {
        let ops = events
            .iter()
            .filter_map(|stamped| match &stamped.event {
                Event::CacheKey { vertex, op, .. } => Some((vertex.clone(), op.clone())),
                _ => None,
            })
            .collect();
        Side {
            record,
            steps: steps_from_events(events),
            ops,
        }
    }

    fn totals(&self) -> BuildTotals {
        let count = |state: StepState| self.steps.iter().filter(|s| s.state == state).count();
        BuildTotals {
            id: self.record.id.clone(),
            status: self.record.status,
            duration_ms: self.record.duration_ms(),
            steps: self.steps.len(),
            cached: count(StepState::Cached),
            ran: count(StepState::Done) + count(StepState::Failed),
            step_time_ms: self.steps.iter().map(Step::running_ms).sum(),
        }
    }
}

/// Compares two builds, `base` first.
pub fn compare(
    base: &BuildRecord,
    base_events: &[StampedEvent],
    other: &BuildRecord,
    other_events: &[StampedEvent],
) -> Comparison {
    let before = Side::new(base, base_events);
    let after = Side::new(other, other_events);
    let pairs = match_steps(&before.steps, &after.steps);
    let matched_before: HashSet<usize> = pairs.iter().map(|&(b, _)| b).collect();
    let matched_after: HashSet<usize> = pairs.iter().map(|&(_, a)| a).collect();

    let unmatched = |steps: &[Step], matched: &HashSet<usize>| -> Vec<StepEntry> {
        (0..steps.len())
            .filter(|i| !matched.contains(i))
            .map(|i| entry(&steps[i]))
            .collect()
    };
    let added = unmatched(&after.steps, &matched_after);
    let removed = unmatched(&before.steps, &matched_before);

    let mut changed = Vec::new();
    let mut cache_flips = Vec::new();
    let mut timing = Vec::new();
    for &(b, a) in &pairs {
        let (old, new) = (&before.steps[b], &after.steps[a]);
        if let Some(change) = step_change(old, new, &before, &after) {
            changed.push(ChangedStep {
                before: old.name.clone(),
                after: new.name.clone(),
                change,
            });
        }
        if is_flip(old.state, new.state) {
            cache_flips.push(CacheFlip {
                step: new.name.clone(),
                before: old.state,
                after: new.state,
            });
        }
        if old.finished.is_some() && new.finished.is_some() {
            timing.push(TimingDifference {
                step: new.name.clone(),
                before_ms: old.running_ms(),
                after_ms: new.running_ms(),
                difference_ms: new.running_ms() - old.running_ms(),
            });
        }
    }
    timing.sort_by(|x, y| {
        y.difference_ms
            .abs()
            .cmp(&x.difference_ms.abs())
            .then_with(|| x.step.cmp(&y.step))
    });

    let (base_totals, other_totals) = (before.totals(), after.totals());
    let duration_difference_ms = base_totals
        .duration_ms
        .zip(other_totals.duration_ms)
        .map(|(b, a)| a - b);
    Comparison {
        base: base_totals,
        other: other_totals,
        added,
        removed,
        changed,
        cache_flips,
        timing,
        duration_difference_ms,
    }
}

fn entry(step: &Step) -> StepEntry {
    StepEntry {
        name: step.name.clone(),
        state: step.state,
        duration_ms: step.running_ms(),
    }
}

fn is_flip(before: StepState, after: StepState) -> bool {
    let ran = |state| matches!(state, StepState::Done | StepState::Failed);
    (before == StepState::Cached && ran(after)) || (ran(before) && after == StepState::Cached)
}

fn step_change(old: &Step, new: &Step, before: &Side, after: &Side) -> Option<StepChange> {
    if instruction_text(&old.name) != instruction_text(&new.name) {
        return Some(StepChange::Instruction);
    }
    let options_differ = match (before.ops.get(&old.vertex), after.ops.get(&new.vertex)) {
        (Some(old_op), Some(new_op)) => old_op != new_op,
        // Sources have no cache key, so their vertex digest, which has no
        // inputs, is the op's identity.
        (None, None) => old.inputs.is_empty() && new.inputs.is_empty() && old.vertex != new.vertex,
        // One side never reached its cache key, so the ops cannot be told
        // apart.
        _ => false,
    };
    options_differ.then_some(StepChange::Options)
}

/// Pairs steps of two builds as `(before index, after index)`: first by
/// stage, instruction text and occurrence, then the rest by stage and
/// position.
fn match_steps(before: &[Step], after: &[Step]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    let mut taken_before = vec![false; before.len()];
    let mut taken_after = vec![false; after.len()];

    let by_text: HashMap<TextIdentity, usize> = text_identities(before)
        .into_iter()
        .enumerate()
        .map(|(b, identity)| (identity, b))
        .collect();
    for (a, identity) in text_identities(after).into_iter().enumerate() {
        if let Some(&b) = by_text.get(&identity) {
            pairs.push((b, a));
            taken_before[b] = true;
            taken_after[a] = true;
        }
    }

    let mut by_position: HashMap<(String, String), usize> = before
        .iter()
        .enumerate()
        .filter(|(b, _)| !taken_before[*b])
        .filter_map(|(b, step)| Some((stage_position(step)?, b)))
        .collect();
    for (a, step) in after.iter().enumerate() {
        if taken_after[a] {
            continue;
        }
        if let Some(b) = stage_position(step).and_then(|p| by_position.remove(&p)) {
            pairs.push((b, a));
        }
    }
    pairs.sort_by_key(|&(_, a)| a);
    pairs
}

/// Stage, instruction text and how many earlier steps of the same build
/// share both, so repeated instructions pair up in order.
type TextIdentity = (Option<String>, String, usize);

fn text_identities(steps: &[Step]) -> Vec<TextIdentity> {
    let mut seen: HashMap<(Option<String>, String), usize> = HashMap::new();
    steps
        .iter()
        .map(|step| {
            let text = instruction_text(&step.name).to_string();
            let count = seen.entry((step.stage.clone(), text.clone())).or_insert(0);
            let identity = (step.stage.clone(), text, *count);
            *count += 1;
            identity
        })
        .collect()
}

#[cfg(test)]
mod tests;
