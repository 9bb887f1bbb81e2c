//! `RUN --mount`: turns each mount spec into an exec mount, as BuildKit's
//! `dispatchRunMounts` does.
//!
//! Secrets and ssh sockets appear in the graph only by id. Their values are
//! provided by the build request when the exec runs, so they never reach a
//! vertex digest or a cache key.

use super::Failure;
use super::dispatch::{Dispatcher, StageState};
use super::graph::{Graph, PendingInput, State};
use super::stages::{find_stage, state_of};
use crate::ast::Node;
use crate::instructions::{MountType, RunMount, parse_mount};
use std::collections::BTreeMap;
use strata_llb::{
    CacheSharing, ChownOpt, FileAction, FileOp, Mount, MountKind, Op, OpMetadata, SecretEnv,
    SourceOp, UserOpt,
};

/// Default permissions of a secret file, as BuildKit's.
const SECRET_MODE: u32 = 0o400;
/// Default permissions of a forwarded ssh agent socket, as BuildKit's.
const SSH_MODE: u32 = 0o600;
/// Directory a cache mount's base is created in when it has an owner or
/// mode, and no `from`.
const CACHE_BASE_DIR: &str = "/cache";

/// Additions of one RUN's mounts besides the mounts themselves.
#[derive(Default)]
pub(crate) struct MountExtras {
    pub secret_env: Vec<SecretEnv>,
    /// `SSH_AUTH_SOCK=PATH` for the first ssh mount.
    pub env: Vec<String>,
}

/// The filesystem a bind or cache mount reads.
enum MountOrigin {
    Context,
    State(State),
}

impl Dispatcher<'_> {
    /// Adds the mounts of `run_mounts` to `mounts`, and their inputs to
    /// `inputs`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the mount needs the dispatcher state and the pending graph"
    )]
    pub(crate) async fn run_mounts(
        &mut self,
        state: &StageState,
        node: &Node,
        run_mounts: &[String],
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
        inputs: &mut Vec<PendingInput>,
        mounts: &mut Vec<Mount>,
    ) -> Result<MountExtras, Failure> {
        let mut extras = MountExtras::default();
        let mut ssh_count = 0;
        for spec in run_mounts {
            let expand = |word: &str| {
                self.expand(state, node, word)
                    .map_err(|failure| failure.message)
            };
            let parsed = parse_mount(spec, &expand).map_err(|e| Failure::at(node, e))?;
            let target = parsed
                .target
                .as_deref()
                .map(|target| absolute_target(state, target));
            if let Some(target) = &target
                && mounts.iter().any(|m| &m.dest == target)
            {
                return Err(Failure::at(
                    node,
                    format!(
                        "Mount target `{target}` is used twice: give each mount its own target"
                    ),
                ));
            }
            let mount = match parsed.kind {
                MountType::Bind => {
                    let target = target.expect("bind mounts have a target");
                    self.bind_mount(state, node, &parsed, target, states, graph, inputs)
                        .await?
                }
                MountType::Cache => {
                    let target = target.expect("cache mounts have a target");
                    self.cache_mount(state, node, &parsed, target, states, graph, inputs)
                        .await?
                }
                MountType::Tmpfs => Mount {
                    input: None,
                    selector: String::new(),
                    dest: target.expect("tmpfs mounts have a target"),
                    output: None,
                    readonly: parsed.readonly,
                    kind: MountKind::Tmpfs { size: parsed.size },
                },
                MountType::Secret => match secret_mount(&parsed, target, &mut extras) {
                    Some(mount) => mount,
                    None => continue,
                },
                MountType::Ssh => {
                    let mount = ssh_mount(&parsed, target, ssh_count);
                    if ssh_count == 0 {
                        extras.env.push(format!("SSH_AUTH_SOCK={}", mount.dest));
                    }
                    ssh_count += 1;
                    mount
                }
            };
            mounts.push(mount);
        }
        Ok(extras)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the mount needs the dispatcher state and the pending graph"
    )]
    async fn bind_mount(
        &mut self,
        state: &StageState,
        node: &Node,
        parsed: &RunMount,
        target: String,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
        inputs: &mut Vec<PendingInput>,
    ) -> Result<Mount, Failure> {
        let origin = self
            .mount_origin(state, node, parsed.from.as_deref(), states, graph)
            .await?;
        let selector = source_selector(parsed.source.as_deref());
        let input = match origin {
            MountOrigin::Context => {
                graph.read_context_path(&selector);
                Some(input_index(PendingInput::Context, inputs))
            }
            MountOrigin::State(State::Vertex(index)) => {
                Some(input_index(PendingInput::Vertex(index), inputs))
            }
            MountOrigin::State(State::Scratch) => None,
        };
        Ok(Mount {
            input,
            selector,
            dest: target,
            output: None,
            readonly: parsed.readonly,
            kind: MountKind::Bind,
        })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the mount needs the dispatcher state and the pending graph"
    )]
    async fn cache_mount(
        &mut self,
        state: &StageState,
        node: &Node,
        parsed: &RunMount,
        target: String,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
        inputs: &mut Vec<PendingInput>,
    ) -> Result<Mount, Failure> {
        let sharing = match parsed.sharing.as_deref() {
            None | Some("shared") => CacheSharing::Shared,
            Some("private") => CacheSharing::Private,
            Some(_) => CacheSharing::Locked,
        };
        let id = parsed.id.clone().unwrap_or_else(|| target.clone());
        let owned = parsed.mode.is_some() || parsed.uid.is_some() || parsed.gid.is_some();
        let (input, selector) = match &parsed.from {
            Some(from) => {
                let origin = self
                    .mount_origin(state, node, Some(from), states, graph)
                    .await?;
                let selector = source_selector(parsed.source.as_deref());
                let input = match origin {
                    MountOrigin::State(State::Vertex(index)) => {
                        Some(input_index(PendingInput::Vertex(index), inputs))
                    }
                    _ => None,
                };
                (input, selector)
            }
            // The owner and mode go on a directory the cache starts from,
            // as BuildKit does, so they take effect when the cache is new.
            None if owned => {
                let base = cache_base(self, state, node, parsed, graph);
                let input = input_index(PendingInput::Vertex(base), inputs);
                (Some(input), CACHE_BASE_DIR.to_string())
            }
            None => (None, String::new()),
        };
        Ok(Mount {
            input,
            selector,
            dest: target,
            output: None,
            readonly: parsed.readonly,
            kind: MountKind::Cache { id, sharing },
        })
    }

    /// Resolves `from=`: a stage by name or index, else an image; no
    /// `from` means the build context.
    async fn mount_origin(
        &mut self,
        state: &StageState,
        node: &Node,
        from: Option<&str>,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
    ) -> Result<MountOrigin, Failure> {
        let Some(from) = from else {
            return Ok(MountOrigin::Context);
        };
        if let Some(index) = find_stage(self.stages, from) {
            return Ok(MountOrigin::State(state_of(states, index)));
        }
        let image = self.resolve(node, from, &state.platform).await?;
        let mut metadata = self.metadata(state, node, String::new());
        metadata.description = format!(
            "[{}] FROM {}@{}",
            state.stage_name, image.name, image.digest
        );
        let source = SourceOp {
            identifier: format!("docker-image://{}@{}", image.name, image.digest),
            attrs: BTreeMap::new(),
        };
        Ok(MountOrigin::State(graph.add(
            Op::Source(source),
            Vec::new(),
            metadata,
            Some(state.platform.clone()),
        )))
    }
}

/// Adds the file op that creates a cache's base directory with the
/// requested mode (default `0755`) and owner (default `0:0`).
fn cache_base(
    dispatcher: &Dispatcher<'_>,
    state: &StageState,
    node: &Node,
    parsed: &RunMount,
    graph: &mut Graph,
) -> usize {
    let mkdir = FileAction::Mkdir {
        path: CACHE_BASE_DIR.into(),
        mode: parsed.mode.unwrap_or(0o755),
        make_parents: true,
        owner: Some(ChownOpt {
            user: UserOpt::Id(parsed.uid.unwrap_or(0)),
            group: Some(UserOpt::Id(parsed.gid.unwrap_or(0))),
        }),
        timestamp: None,
    };
    let metadata = OpMetadata {
        description: "preparing cache mount".into(),
        stage: Some(state.stage_name.clone()),
        location: dispatcher.metadata(state, node, String::new()).location,
        ..Default::default()
    };
    let added = graph.add(
        Op::File(FileOp {
            base: None,
            actions: vec![mkdir],
        }),
        Vec::new(),
        metadata,
        Some(state.platform.clone()),
    );
    let State::Vertex(index) = added else {
        unreachable!("graph.add returns a vertex")
    };
    index
}

/// Returns the secret's mount, or `None` when it only sets a variable.
fn secret_mount(
    parsed: &RunMount,
    target: Option<String>,
    extras: &mut MountExtras,
) -> Option<Mount> {
    // BuildKit takes the id from `id`, else `source`, else the target's
    // file name.
    let id = parsed
        .id
        .clone()
        .or_else(|| parsed.source.clone())
        .or_else(|| {
            target
                .as_deref()
                .and_then(|t| t.rsplit('/').next())
                .map(str::to_string)
        })
        .unwrap_or_default();
    if let Some(name) = &parsed.env {
        extras.secret_env.push(SecretEnv {
            id: id.clone(),
            name: name.clone(),
            optional: !parsed.required,
        });
        // A secret with only `env` gets no file.
        target.as_ref()?;
    }
    let dest = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
    Some(Mount {
        input: None,
        selector: String::new(),
        dest,
        output: None,
        readonly: true,
        kind: MountKind::Secret {
            id,
            optional: !parsed.required,
            uid: parsed.uid.unwrap_or(0),
            gid: parsed.gid.unwrap_or(0),
            mode: parsed.mode.unwrap_or(SECRET_MODE),
        },
    })
}

fn ssh_mount(parsed: &RunMount, target: Option<String>, index: usize) -> Mount {
    Mount {
        input: None,
        selector: String::new(),
        dest: target.unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{index}")),
        output: None,
        readonly: true,
        kind: MountKind::Ssh {
            id: parsed.id.clone().unwrap_or_else(|| "default".into()),
            optional: !parsed.required,
            uid: parsed.uid.unwrap_or(0),
            gid: parsed.gid.unwrap_or(0),
            mode: parsed.mode.unwrap_or(SSH_MODE),
        },
    }
}

/// Makes a mount target absolute against the stage's working directory.
fn absolute_target(state: &StageState, target: &str) -> String {
    let joined = if target.starts_with('/') {
        target.to_string()
    } else {
        let workdir = state.config.config.working_dir.as_deref().unwrap_or("/");
        format!("{}/{target}", workdir.trim_end_matches('/'))
    };
    super::copy::clean_path(&joined)
}

/// Returns the path inside the mounted filesystem: `source`, or its root.
fn source_selector(source: Option<&str>) -> String {
    match source {
        Some(source) => super::copy::clean_path(&format!("/{source}")),
        None => "/".into(),
    }
}

fn input_index(input: PendingInput, inputs: &mut Vec<PendingInput>) -> u32 {
    match inputs.iter().position(|existing| *existing == input) {
        Some(index) => index as u32,
        None => {
            inputs.push(input);
            inputs.len() as u32 - 1
        }
    }
}
