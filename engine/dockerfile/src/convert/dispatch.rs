//! Converts the instructions of one stage: the base, RUN, and the
//! instructions that change only the image config.

use super::args::{GlobalArgs, StageArgs};
use super::graph::{Graph, PendingInput, State};
use super::stages::{Base, Stage, classify_base, state_of};
use super::{ConvertOptions, Failure, ImageResolver, ResolvedImage, Warning, normalize_reference};
use crate::ast::Node;
use crate::instructions::{CommandLine, Instruction, Run};
use crate::shell::Lexer;
use std::collections::BTreeMap;
use strata_llb::image::{EmptyObject, History, ImageConfig};
use strata_llb::{
    ExecMeta, ExecOp, FileAction, FileOp, Mount, MountKind, NetMode, Op, OpMetadata, Platform,
    SecurityMode, SourceLocation, SourceOp,
};

pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// A stage's filesystem and config as its instructions change them.
pub(crate) struct StageState {
    pub fs: State,
    pub config: ImageConfig,
    pub args: StageArgs,
    pub platform: Platform,
    /// Whether this stage set CMD, so a later ENTRYPOINT keeps it.
    pub cmd_set: bool,
    pub display_name: Option<String>,
    pub step: usize,
    pub steps: usize,
    pub stage_name: String,
}

pub(crate) struct Dispatcher<'a> {
    pub options: &'a ConvertOptions,
    pub resolver: &'a dyn ImageResolver,
    pub lexer: &'a Lexer,
    pub globals: &'a GlobalArgs,
    pub stages: &'a [Stage<'a>],
    resolved: BTreeMap<(String, Platform), ResolvedImage>,
}

impl<'a> Dispatcher<'a> {
    pub(crate) fn new(
        options: &'a ConvertOptions,
        resolver: &'a dyn ImageResolver,
        lexer: &'a Lexer,
        globals: &'a GlobalArgs,
        stages: &'a [Stage<'a>],
    ) -> Self {
        Dispatcher {
            options,
            resolver,
            lexer,
            globals,
            stages,
            resolved: BTreeMap::new(),
        }
    }

    pub(crate) async fn dispatch_stage(
        &mut self,
        stage: &Stage<'_>,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
        warnings: &mut Vec<Warning>,
    ) -> Result<StageState, Failure> {
        let mut state = self.start_stage(stage, states, graph).await?;
        self.run_onbuild_triggers(&mut state, stage, states, graph, warnings)
            .await?;
        for (node, instruction) in &stage.commands {
            self.dispatch(&mut state, node, instruction, states, graph, warnings)
                .await?;
        }
        Ok(state)
    }

    /// Sets up the base filesystem and config of `stage`.
    async fn start_stage(
        &mut self,
        stage: &Stage<'_>,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
    ) -> Result<StageState, Failure> {
        let node = stage.from_node;
        let platform = match &stage.platform {
            Some(text) => Platform::parse(text).ok_or_else(|| {
                Failure::at(
                    node,
                    format!("Invalid platform `{text}`: write it like `linux/amd64`"),
                )
            })?,
            None => self.options.platform.clone(),
        };
        let display_name = stage.display_name(self.stages.len());
        let mut state = StageState {
            fs: State::Scratch,
            config: ImageConfig::default(),
            args: StageArgs::default(),
            platform: platform.clone(),
            cmd_set: false,
            display_name,
            step: 0,
            steps: stage.commands.len() + 1,
            stage_name: stage
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{}", stage.index)),
        };
        match classify_base(self.stages, stage) {
            Base::Scratch => {
                state.config.config.env = Some(vec![format!("PATH={DEFAULT_PATH}")]);
                state.step += 1;
            }
            Base::Context(name) => self.start_from_context(&mut state, node, &name, graph),
            Base::Stage(index) => {
                let parent = states.get(&index).expect("stages convert in order");
                state.fs = state_of(states, index);
                state.config = parent.config.clone();
                state.step += 1;
            }
            Base::Image(reference) => {
                let image = self.resolve(node, &reference, &platform).await?;
                let description =
                    self.describe(&mut state, &format!("FROM {}@{}", image.name, image.digest));
                let source = SourceOp {
                    identifier: format!("docker-image://{}@{}", image.name, image.digest),
                    attrs: BTreeMap::new(),
                };
                let metadata = self.metadata(&state, node, description);
                state.fs = graph.add(
                    Op::Source(source),
                    Vec::new(),
                    metadata,
                    Some(platform.clone()),
                );
                state.config = image.config.clone();
                state.config.created = None;
                state.config.rootfs.diff_ids.clear();
            }
        }
        state.config.os = platform.os.clone();
        state.config.architecture = platform.architecture.clone();
        state.config.variant = platform.variant.clone();
        Ok(state)
    }

    pub(crate) async fn resolve(
        &mut self,
        node: &Node,
        reference: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, Failure> {
        normalize_reference(reference).map_err(|e| Failure::at(node, e))?;
        let key = (reference.to_string(), platform.clone());
        if let Some(image) = self.resolved.get(&key) {
            return Ok(image.clone());
        }
        let image = self
            .resolver
            .resolve(reference, platform)
            .await
            .map_err(|e| {
                Failure::at(
                    node,
                    format!("Failed to resolve image `{reference}` for `{platform}`: {e}"),
                )
            })?;
        self.resolved.insert(key, image.clone());
        Ok(image)
    }

    /// Returns the progress name of the next step: `[NAME i/n] TEXT`.
    pub(crate) fn describe(&self, state: &mut StageState, text: &str) -> String {
        state.step += 1;
        let width = state.steps.to_string().len();
        let prefix = match &state.display_name {
            Some(name) => format!("{name} "),
            None => String::new(),
        };
        format!("[{prefix}{:>width$}/{}] {text}", state.step, state.steps)
    }

    pub(crate) fn metadata(
        &self,
        state: &StageState,
        node: &Node,
        description: String,
    ) -> OpMetadata {
        OpMetadata {
            description,
            ignore_cache: self.ignores_cache(state),
            stage: Some(state.stage_name.clone()),
            location: Some(SourceLocation {
                file: self.options.dockerfile_name.clone(),
                start_line: node.start_line,
                end_line: node.end_line,
            }),
        }
    }

    /// Expands one word with the stage's ENV and ARGs.
    pub(crate) fn expand(
        &self,
        state: &StageState,
        node: &Node,
        word: &str,
    ) -> Result<String, Failure> {
        let env = state
            .args
            .expansion_env(state.config.config.env.as_deref().unwrap_or_default());
        self.lexer
            .process_word(word, &env)
            .map(|e| e.value)
            .map_err(|e| Failure::at(node, e.to_string()))
    }

    pub(crate) async fn dispatch(
        &mut self,
        state: &mut StageState,
        node: &Node,
        instruction: &Instruction,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
        // No instruction warns here since RUN --mount is converted, but
        // ONBUILD triggers dispatch through this signature with one.
        _warnings: &mut Vec<Warning>,
    ) -> Result<(), Failure> {
        match instruction {
            Instruction::Run(run) => self.dispatch_run(state, node, run, states, graph).await,
            Instruction::Copy(copy) => self.dispatch_copy(state, node, copy, states, graph).await,
            Instruction::Workdir(path) => self.dispatch_workdir(state, node, path, graph),
            Instruction::Arg(declarations) => {
                let mut committed = Vec::new();
                for declaration in declarations {
                    let default = match &declaration.value {
                        Some(value) => Some(self.expand(state, node, value)?),
                        None => None,
                    };
                    let value = state.args.declare(
                        &declaration.key,
                        default,
                        self.globals,
                        &self.options.build_args,
                    );
                    committed.push(match value {
                        Some(value) => format!("{}={value}", declaration.key),
                        None => declaration.key.clone(),
                    });
                }
                self.config_step(state, format!("ARG {}", committed.join(" ")));
                Ok(())
            }
            other => {
                let created_by = super::config::apply(self, state, node, other)?;
                self.config_step(state, created_by);
                Ok(())
            }
        }
    }

    /// Records a config-only step in the history.
    fn config_step(&self, state: &mut StageState, created_by: String) {
        state.step += 1;
        state.config.history.push(History {
            created_by: Some(created_by),
            empty_layer: true,
            ..Default::default()
        });
    }

    pub(crate) fn shell(state: &StageState) -> Vec<String> {
        match &state.config.config.shell {
            Some(shell) if !shell.is_empty() => shell.clone(),
            _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
        }
    }

    async fn dispatch_run(
        &mut self,
        state: &mut StageState,
        node: &Node,
        run: &Run,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
    ) -> Result<(), Failure> {
        let network = match run.network.as_deref() {
            None | Some("default") | Some("host") => NetMode::Host,
            Some("none") => NetMode::None,
            Some(other) => {
                return Err(Failure::at(
                    node,
                    format!(
                        "Invalid `--network` value `{other}`: expected `default`, `none` or `host`"
                    ),
                ));
            }
        };
        let security = match run.security.as_deref() {
            None | Some("sandbox") => SecurityMode::Sandbox,
            Some("insecure") => SecurityMode::Insecure,
            Some(other) => {
                return Err(Failure::at(
                    node,
                    format!(
                        "Invalid `--security` value `{other}`: expected `sandbox` or `insecure`"
                    ),
                ));
            }
        };

        let mut inputs = Vec::new();
        let mut mounts = vec![Mount {
            input: None,
            selector: String::new(),
            dest: "/".into(),
            output: Some(0),
            readonly: false,
            kind: MountKind::Bind,
        }];
        if let State::Vertex(i) = state.fs {
            inputs.push(PendingInput::Vertex(i));
            mounts[0].input = Some(0);
        }
        let args = self.run_args(state, node, run, graph, &mut inputs, &mut mounts)?;
        let extras = self
            .run_mounts(
                state,
                node,
                &run.mounts,
                states,
                graph,
                &mut inputs,
                &mut mounts,
            )
            .await?;

        let config_env = state.config.config.env.clone().unwrap_or_default();
        let arg_env = state.args.run_env(&config_env);
        let mut env = config_env.clone();
        env.extend(arg_env.iter().cloned());
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        env.extend(extras.env);
        let meta = ExecMeta {
            args: args.clone(),
            env,
            cwd: state
                .config
                .config
                .working_dir
                .clone()
                .unwrap_or_else(|| "/".into()),
            user: state.config.config.user.clone().unwrap_or_default(),
            hostname: None,
            extra_hosts: Vec::new(),
            proxy_env: state.args.proxy_env(&self.options.build_args),
        };
        let text = instruction_text(node);
        let description = self.describe(state, &text);
        let metadata = self.metadata(state, node, description);
        let op = Op::Exec(ExecOp {
            meta,
            mounts,
            network,
            security,
            secret_env: extras.secret_env,
        });
        state.fs = graph.add(op, inputs, metadata, Some(state.platform.clone()));

        let mut history_words = Vec::new();
        if !arg_env.is_empty() {
            history_words.push(format!("|{}", arg_env.len()));
            history_words.extend(arg_env);
        }
        history_words.extend(args);
        state.config.history.push(History {
            created_by: Some(format!("RUN {} # buildkit", history_words.join(" "))),
            ..Default::default()
        });
        Ok(())
    }

    /// Returns the process arguments of a RUN, adding the script mount a
    /// heredoc with a shebang needs.
    fn run_args(
        &self,
        state: &StageState,
        node: &Node,
        run: &Run,
        graph: &mut Graph,
        inputs: &mut Vec<PendingInput>,
        mounts: &mut Vec<Mount>,
    ) -> Result<Vec<String>, Failure> {
        let text = match &run.command {
            CommandLine::Exec(args) => return Ok(args.clone()),
            CommandLine::Shell(text) => text,
        };
        let Some(first) = run.heredocs.first() else {
            return Ok(with_shell(state, text));
        };
        let single =
            crate::instructions::heredoc_word(text.trim()).is_some_and(|n| n == first.name);
        if !single {
            // Several heredocs or a command around them: the shell reads
            // the bodies itself, so hand it the whole text.
            let mut full = text.clone();
            for heredoc in &run.heredocs {
                full.push('\n');
                full.push_str(&heredoc.content);
                full.push_str(&heredoc.name);
            }
            return Ok(with_shell(state, &full));
        }
        let body = if first.chomp {
            chomp(&first.content)
        } else {
            first.content.clone()
        };
        if !body.starts_with("#!") {
            return Ok(with_shell(state, &body));
        }

        // A script with a shebang runs as a file, mounted read-only at
        // `/dev/pipes/NAME`, as BuildKit does.
        let mkfile = FileAction::Mkfile {
            path: format!("/{}", first.name),
            mode: 0o755,
            data: body.into_bytes(),
            owner: None,
            timestamp: None,
        };
        let metadata = OpMetadata {
            description: "preparing inline document".into(),
            stage: Some(state.stage_name.clone()),
            location: self.metadata(state, node, String::new()).location,
            ..Default::default()
        };
        let file = graph.add(
            Op::File(FileOp {
                base: None,
                actions: vec![mkfile],
            }),
            Vec::new(),
            metadata,
            Some(state.platform.clone()),
        );
        let State::Vertex(index) = file else {
            unreachable!("graph.add returns a vertex")
        };
        inputs.push(PendingInput::Vertex(index));
        mounts.push(Mount {
            input: Some(inputs.len() as u32 - 1),
            selector: "/".into(),
            dest: "/dev/pipes/".into(),
            output: None,
            readonly: true,
            kind: MountKind::Bind,
        });
        Ok(vec![format!("/dev/pipes/{}", first.name)])
    }
}

pub(crate) fn with_shell(state: &StageState, text: &str) -> Vec<String> {
    let mut args = Dispatcher::shell(state);
    args.push(text.to_string());
    args
}

/// Removes leading tabs from every line, as `<<-` requires.
pub(crate) fn chomp(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

/// Returns the instruction as written, keyword uppercased, for progress
/// output.
pub(crate) fn instruction_text(node: &Node) -> String {
    let original = node.original.trim();
    match original.split_once(char::is_whitespace) {
        Some((keyword, rest)) => format!("{} {}", keyword.to_ascii_uppercase(), rest.trim_start()),
        None => original.to_ascii_uppercase(),
    }
}

pub(crate) fn exposed_ports(
    node: &Node,
    ports: &[String],
) -> Result<BTreeMap<String, EmptyObject>, Failure> {
    let mut out = BTreeMap::new();
    for spec in ports {
        let (range, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let protocol = protocol.to_ascii_lowercase();
        let invalid = || {
            Failure::at(
                node,
                format!("Invalid containerPort: `{spec}`; write it like `80` or `53/udp`"),
            )
        };
        if !["tcp", "udp", "sctp"].contains(&protocol.as_str()) {
            return Err(Failure::at(
                node,
                format!("Invalid proto: `{protocol}` in `{spec}`; use `tcp`, `udp` or `sctp`"),
            ));
        }
        let (start, end) = match range.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| invalid())?,
                b.parse::<u16>().map_err(|_| invalid())?,
            ),
            None => {
                let port = range.parse::<u16>().map_err(|_| invalid())?;
                (port, port)
            }
        };
        if end < start {
            return Err(invalid());
        }
        for port in start..=end {
            out.insert(format!("{port}/{protocol}"), EmptyObject {});
        }
    }
    Ok(out)
}
