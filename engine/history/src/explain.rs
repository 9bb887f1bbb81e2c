//! Why steps re-ran: each step that ran in a build is matched with its
//! counterpart in the most recent earlier build of the same Dockerfile and
//! target, and the parts of their cache keys are compared.

use crate::record::BuildRecord;
use crate::steps::{Step, StepState, steps_from_events};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use strata_llb::{Digest, Op, Vertex};
use strata_solver::{Event, KeyInput, StampedEvent};

/// One reason a step missed the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    NoEarlierBuild,
    /// The earlier build had no matching step.
    NewStep,
    InstructionChanged {
        old: String,
        new: String,
    },
    BuildArgChanged {
        name: String,
        old: Option<String>,
        new: Option<String>,
    },
    EnvChanged {
        name: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// The op changed in a way other than its text or environment.
    OptionsChanged,
    BaseImageChanged {
        image: String,
        old: String,
        new: String,
    },
    FilesChanged {
        path: String,
        added: Vec<String>,
        removed: Vec<String>,
        modified: Vec<String>,
    },
    ParentReran {
        parent: String,
        because: Vec<Reason>,
    },
    /// A copy reads `path` from the output of a step, and that content
    /// changed.
    CopiedContentChanged {
        path: String,
        parent: String,
    },
    /// The key was the same as before, but its cache record was gone.
    CacheRecordMissing,
    NoCache,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let optional = |value: &Option<String>| value.clone().unwrap_or_else(|| "(unset)".into());
        match self {
            Reason::NoEarlierBuild => write!(f, "no earlier build of this Dockerfile and target"),
            Reason::NewStep => write!(f, "new step: the earlier build had no such step"),
            Reason::InstructionChanged { old, new } => {
                write!(f, "instruction changed: `{old}` → `{new}`")
            }
            Reason::BuildArgChanged { name, old, new } => {
                write!(
                    f,
                    "build arg {name} changed: {} → {}",
                    optional(old),
                    optional(new)
                )
            }
            Reason::EnvChanged { name, old, new } => {
                write!(
                    f,
                    "environment variable {name} changed: {} → {}",
                    optional(old),
                    optional(new)
                )
            }
            Reason::OptionsChanged => write!(f, "step options changed"),
            Reason::BaseImageChanged { image, old, new } => {
                write!(
                    f,
                    "base image {image} changed: {} → {}",
                    short(old),
                    short(new)
                )
            }
            Reason::FilesChanged {
                path,
                added,
                removed,
                modified,
            } => {
                write!(f, "files under `{path}` changed:")?;
                let mut parts = Vec::new();
                for (label, list) in [
                    ("added", added),
                    ("removed", removed),
                    ("modified", modified),
                ] {
                    if !list.is_empty() {
                        parts.push(format!("{label} {}", shorten_list(list)));
                    }
                }
                write!(
                    f,
                    " {}",
                    if parts.is_empty() {
                        "metadata only".to_string()
                    } else {
                        parts.join("; ")
                    }
                )
            }
            Reason::ParentReran { parent, because } => {
                write!(f, "parent step `{parent}` re-ran")?;
                if let Some(first) = because.first() {
                    write!(f, " ({first})")?;
                }
                Ok(())
            }
            Reason::CopiedContentChanged { path, parent } => {
                write!(f, "the content of `{path}` from `{parent}` changed")
            }
            Reason::CacheRecordMissing => {
                write!(f, "same cache key as before, but its record was pruned")
            }
            Reason::NoCache => write!(f, "the build ran with --no-cache"),
        }
    }
}

fn short(digest: &str) -> &str {
    digest
        .strip_prefix("sha256:")
        .map_or(digest, |hex| &hex[..hex.len().min(12)])
}

/// The reasons for one step that ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub vertex: Digest,
    pub step: String,
    pub reasons: Vec<Reason>,
}

/// A build as the explainer needs it.
pub struct BuildView<'a> {
    pub record: &'a BuildRecord,
    pub steps: Vec<Step>,
    keys: HashMap<Digest, (Digest, Vec<KeyInput>)>,
    vertices: BTreeMap<Digest, Vertex>,
}

impl<'a> BuildView<'a> {
    pub fn new(record: &'a BuildRecord, events: &[StampedEvent]) -> BuildView<'a> {
        let keys = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::CacheKey {
                    vertex, op, inputs, ..
                } => Some((vertex.clone(), (op.clone(), inputs.clone()))),
                _ => None,
            })
            .collect();
        let vertices = record
            .definition
            .as_ref()
            .and_then(|d| d.get("vertices"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        BuildView {
            record,
            steps: steps_from_events(events),
            keys,
            vertices,
        }
    }

    fn step(&self, vertex: &Digest) -> Option<&Step> {
        self.steps.iter().find(|s| &s.vertex == vertex)
    }
}

/// Strips the `[stage i/n] ` progress prefix from a step name.
pub(crate) fn instruction_text(name: &str) -> &str {
    match (name.starts_with('['), name.find("] ")) {
        (true, Some(end)) => &name[end + 2..],
        _ => name,
    }
}

/// Position `i` of `[stage i/n]`, with the stage name.
pub(crate) fn stage_position(step: &Step) -> Option<(String, String)> {
    let inner = step.name.strip_prefix('[')?.split("] ").next()?;
    let (stage, counter) = inner.rsplit_once(' ')?;
    Some((stage.to_string(), counter.split('/').next()?.to_string()))
}

fn find_counterpart<'b>(
    step: &Step,
    op: Option<&Digest>,
    earlier: &'b BuildView<'_>,
) -> Option<&'b Step> {
    if let Some(op) = op {
        let same_op = earlier
            .steps
            .iter()
            .find(|s| earlier.keys.get(&s.vertex).is_some_and(|(o, _)| o == op));
        if same_op.is_some() {
            return same_op;
        }
    }
    let text = instruction_text(&step.name);
    let same_text = earlier
        .steps
        .iter()
        .find(|s| s.stage == step.stage && instruction_text(&s.name) == text);
    if same_text.is_some() {
        return same_text;
    }
    let position = stage_position(step)?;
    earlier
        .steps
        .iter()
        .find(|s| stage_position(s).as_ref() == Some(&position))
}

/// Explains every step of `current` that ran, against `earlier`.
pub fn explain(current: &BuildView<'_>, earlier: Option<&BuildView<'_>>) -> Vec<Explanation> {
    let mut explained: HashMap<Digest, Vec<Reason>> = HashMap::new();
    let mut result = Vec::new();
    for step in &current.steps {
        let is_source = current
            .vertices
            .get(&step.vertex)
            .is_some_and(|v| matches!(v.op, Op::Source(_)));
        if is_source || !matches!(step.state, StepState::Done | StepState::Failed) {
            continue;
        }
        let reasons = match earlier {
            None => vec![Reason::NoEarlierBuild],
            Some(earlier) => reasons_for(step, current, earlier, &explained),
        };
        explained.insert(step.vertex.clone(), reasons.clone());
        result.push(Explanation {
            vertex: step.vertex.clone(),
            step: step.name.clone(),
            reasons,
        });
    }
    result
}

fn reasons_for(
    step: &Step,
    current: &BuildView<'_>,
    earlier: &BuildView<'_>,
    explained: &HashMap<Digest, Vec<Reason>>,
) -> Vec<Reason> {
    let Some((op, inputs)) = current.keys.get(&step.vertex) else {
        return vec![Reason::OptionsChanged];
    };
    let Some(previous) = find_counterpart(step, Some(op), earlier) else {
        return vec![Reason::NewStep];
    };
    let Some((previous_op, previous_inputs)) = earlier.keys.get(&previous.vertex) else {
        return vec![Reason::NewStep];
    };

    let mut reasons = Vec::new();
    if op != previous_op {
        reasons.extend(op_differences(step, previous, current, earlier));
    }
    // Key inputs are listed in the vertex's input order.
    for (position, (input, previous_input)) in inputs.iter().zip(previous_inputs).enumerate() {
        let parent = step.inputs.get(position).and_then(|d| current.step(d));
        reasons.extend(input_differences(
            parent,
            input,
            previous_input,
            current,
            earlier,
            explained,
        ));
    }
    if reasons.is_empty() {
        reasons.push(if current.record.request.no_cache {
            Reason::NoCache
        } else {
            Reason::CacheRecordMissing
        });
    }
    reasons
}

fn op_differences(
    step: &Step,
    previous: &Step,
    current: &BuildView<'_>,
    earlier: &BuildView<'_>,
) -> Vec<Reason> {
    let (new_text, old_text) = (
        instruction_text(&step.name),
        instruction_text(&previous.name),
    );
    if new_text != old_text {
        return vec![Reason::InstructionChanged {
            old: old_text.to_string(),
            new: new_text.to_string(),
        }];
    }
    let new_env = exec_env(current.vertices.get(&step.vertex));
    let old_env = exec_env(earlier.vertices.get(&previous.vertex));
    let mut reasons = Vec::new();
    let names: std::collections::BTreeSet<&String> = new_env.keys().chain(old_env.keys()).collect();
    for name in names {
        let (old, new) = (old_env.get(name).cloned(), new_env.get(name).cloned());
        if old == new {
            continue;
        }
        let is_arg = current.record.request.build_args.contains_key(name)
            || earlier.record.request.build_args.contains_key(name);
        reasons.push(if is_arg {
            Reason::BuildArgChanged {
                name: name.clone(),
                old,
                new,
            }
        } else {
            Reason::EnvChanged {
                name: name.clone(),
                old,
                new,
            }
        });
    }
    if reasons.is_empty() {
        reasons.push(Reason::OptionsChanged);
    }
    reasons
}

fn exec_env(vertex: Option<&Vertex>) -> BTreeMap<String, String> {
    match vertex.map(|v| &v.op) {
        Some(Op::Exec(exec)) => exec
            .meta
            .env
            .iter()
            .map(|entry| {
                let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
                (key.to_string(), value.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn input_differences(
    parent: Option<&Step>,
    input: &KeyInput,
    previous: &KeyInput,
    current: &BuildView<'_>,
    earlier: &BuildView<'_>,
    explained: &HashMap<Digest, Vec<Reason>>,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if input.key != previous.key {
        if let Some(parent) = parent {
            match current.vertices.get(&parent.vertex).map(|v| &v.op) {
                Some(Op::Source(source)) if source.identifier.starts_with("docker-image://") => {
                    let image = source.identifier.trim_start_matches("docker-image://");
                    let (name, new) = image.rsplit_once('@').unwrap_or((image, ""));
                    let old = earlier_image_digest(earlier, name).unwrap_or_default();
                    reasons.push(Reason::BaseImageChanged {
                        image: name.to_string(),
                        old,
                        new: new.to_string(),
                    });
                }
                Some(Op::Source(_)) => {
                    reasons.push(files_changed(".", current.record, earlier.record))
                }
                _ => reasons.push(Reason::ParentReran {
                    parent: parent.name.clone(),
                    because: explained.get(&parent.vertex).cloned().unwrap_or_default(),
                }),
            }
        }
    }
    for content in &input.content {
        let before = previous.content.iter().find(|c| c.path == content.path);
        if before.is_some_and(|b| b.checksum == content.checksum) {
            continue;
        }
        let from_context = parent.is_none_or(|p| {
            matches!(current.vertices.get(&p.vertex).map(|v| &v.op), Some(Op::Source(s)) if s.identifier.starts_with("local://"))
        });
        if from_context {
            reasons.push(files_changed(&content.path, current.record, earlier.record));
        } else {
            let parent = parent.map_or_else(String::new, |p| p.name.clone());
            reasons.push(Reason::CopiedContentChanged {
                path: content.path.clone(),
                parent,
            });
        }
    }
    reasons
}

fn earlier_image_digest(earlier: &BuildView<'_>, name: &str) -> Option<String> {
    earlier
        .vertices
        .values()
        .find_map(|vertex| match &vertex.op {
            Op::Source(source) => {
                let image = source.identifier.strip_prefix("docker-image://")?;
                let (source_name, digest) = image.rsplit_once('@')?;
                (source_name == name).then(|| digest.to_string())
            }
            _ => None,
        })
}

/// Lists context files under `path` that differ between two builds.
/// Paths named in one reason before the rest are only counted, so a
/// change to thousands of files stays one readable line.
const LISTED_PATHS: usize = 10;

/// Joins the first [`LISTED_PATHS`] paths and counts the others.
fn shorten_list(list: &[String]) -> String {
    if list.len() <= LISTED_PATHS {
        return list.join(", ");
    }
    format!(
        "{} and {} more",
        list[..LISTED_PATHS].join(", "),
        list.len() - LISTED_PATHS
    )
}

pub fn files_changed(path: &str, current: &BuildRecord, earlier: &BuildRecord) -> Reason {
    let prefix = path
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/');
    let prefix = prefix
        .split(['*', '?', '['])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    let prefix = if prefix == "." { "" } else { prefix };
    let under = |file: &&String| {
        prefix.is_empty() || *file == prefix || file.starts_with(&format!("{prefix}/"))
    };
    let is_file = |digest: &String| digest != "dir";

    let mut added = Vec::new();
    let mut modified = Vec::new();
    for (file, digest) in current.context_files.iter().filter(|(f, _)| under(f)) {
        match earlier.context_files.get(file) {
            None if is_file(digest) => added.push(file.clone()),
            Some(old) if old != digest => modified.push(file.clone()),
            _ => {}
        }
    }
    let removed = earlier
        .context_files
        .iter()
        .filter(|(f, d)| under(f) && is_file(d) && !current.context_files.contains_key(*f))
        .map(|(f, _)| f.clone())
        .collect();
    Reason::FilesChanged {
        path: path.to_string(),
        added,
        removed,
        modified,
    }
}

#[cfg(test)]
mod tests;
