//! Splits a Dockerfile into stages, picks the target, checks stage
//! references and converts the stages the target needs, in order.

use super::args::GlobalArgs;
use super::dispatch::{Dispatcher, StageState};
use super::graph::{Graph, State};
use super::{Conversion, ConvertOptions, Failure, ImageResolver, NamedContext, StageInfo, Warning};
use crate::ast::{Ast, Node};
use crate::convert::graph::PendingInput;
use crate::instructions::{self, Instruction};
use crate::shell::Lexer;
use std::collections::{BTreeMap, BTreeSet};
use strata_llb::{Op, Platform, SourceOp};

/// One `FROM` section with its instructions.
pub(crate) struct Stage<'a> {
    pub index: usize,
    pub name: Option<String>,
    pub from_node: &'a Node,
    /// The base after expansion with the global ARGs.
    pub base: String,
    pub platform: Option<String>,
    pub commands: Vec<(&'a Node, Instruction)>,
    /// The named context that replaces the base, when one has its name.
    pub context: Option<NamedContext>,
}

impl Stage<'_> {
    /// Returns the name progress output uses: the stage name, `stage-N`
    /// in a multi-stage file, or nothing in a single-stage file, as
    /// BuildKit prints it.
    pub(crate) fn display_name(&self, stage_count: usize) -> Option<String> {
        match &self.name {
            Some(name) => Some(name.clone()),
            None if stage_count > 1 => Some(format!("stage-{}", self.index)),
            None => None,
        }
    }
}

pub(crate) async fn convert(
    ast: &Ast,
    options: &ConvertOptions,
    resolver: &dyn ImageResolver,
) -> Result<Conversion, Failure> {
    let escape = if ast.directives.escape == '\0' {
        '\\'
    } else {
        ast.directives.escape
    };
    let lexer = Lexer::new(escape);
    let build_platform = Platform::host();
    let mut globals =
        GlobalArgs::predefined(&options.platform, &build_platform, &options.build_args);
    let stages = split_stages(ast, &lexer, &mut globals, options)?;
    if stages.is_empty() {
        return Err(Failure::general(
            "Dockerfile contains no stages to build: add a `FROM` instruction",
        ));
    }

    let target = select_target(&stages, options.target.as_deref())?;
    let dependencies = stage_dependencies(&stages, options)?;
    check_cycles(&stages, &dependencies)?;
    let needed = reachable(target, &dependencies);
    check_order(&stages, &dependencies, &needed)?;

    let mut graph = Graph::default();
    let mut warnings = Vec::new();
    let mut dispatcher = Dispatcher::new(options, resolver, &lexer, &globals, &stages);
    let mut states: BTreeMap<usize, StageState> = BTreeMap::new();
    for stage in stages.iter().filter(|s| needed.contains(&s.index)) {
        let state = dispatcher
            .dispatch_stage(stage, &states, &mut graph, &mut warnings)
            .await?;
        states.insert(stage.index, state);
    }
    warn_unused_build_args(ast, options, &mut warnings);

    let target_state = states
        .remove(&target)
        .expect("the target stage was converted");
    let definition = graph.finish(
        target_state.fs,
        &options.context_name,
        &options.excludes,
        options.no_cache,
    );
    let stages = stages
        .iter()
        .map(|s| StageInfo {
            name: s.name.clone(),
            index: s.index,
            base: s.base.clone(),
            line: s.from_node.start_line,
        })
        .collect();
    Ok(Conversion {
        definition,
        image_config: target_state.config,
        stages,
        warnings,
    })
}

/// Types every instruction, evaluates the global ARGs and expands each
/// FROM with them.
fn split_stages<'a>(
    ast: &'a Ast,
    lexer: &Lexer,
    globals: &mut GlobalArgs,
    options: &ConvertOptions,
) -> Result<Vec<Stage<'a>>, Failure> {
    let mut stages: Vec<Stage<'a>> = Vec::new();
    for node in &ast.children {
        let instruction = instructions::parse(node).map_err(|e| Failure::at(node, e.message))?;
        match instruction {
            Instruction::From(from) => {
                let expand = |word: &str| {
                    lexer
                        .process_word(word, &globals.values)
                        .map(|e| e.value)
                        .map_err(|e| Failure::at(node, e.to_string()))
                };
                let base = expand(&from.image)?;
                if base.is_empty() {
                    return Err(Failure::at(
                        node,
                        format!("Base name (`{}`) should not be blank", from.image),
                    ));
                }
                let platform = from.platform.as_deref().map(expand).transpose()?;
                let context = named_context(options, &base).cloned();
                stages.push(Stage {
                    index: stages.len(),
                    name: from.name,
                    from_node: node,
                    base,
                    platform,
                    commands: Vec::new(),
                    context,
                });
            }
            Instruction::Arg(declarations) if stages.is_empty() => {
                globals.declare(node, &declarations, lexer, &options.build_args)?;
            }
            other => match stages.last_mut() {
                Some(stage) => stage.commands.push((node, other)),
                None => {
                    return Err(Failure::at(
                        node,
                        format!(
                            "{} comes before the first FROM: only ARG may precede FROM",
                            node.keyword.to_ascii_uppercase()
                        ),
                    ));
                }
            },
        }
    }
    Ok(stages)
}

/// Finds a stage by name (case-insensitively) or by index.
pub(crate) fn find_stage(stages: &[Stage<'_>], reference: &str) -> Option<usize> {
    let lower = reference.to_ascii_lowercase();
    if let Some(stage) = stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(stage.index);
    }
    reference
        .parse::<usize>()
        .ok()
        .filter(|i| *i < stages.len())
}

fn select_target(stages: &[Stage<'_>], target: Option<&str>) -> Result<usize, Failure> {
    let Some(target) = target else {
        return Ok(stages.len() - 1);
    };
    let lower = target.to_ascii_lowercase();
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
        .ok_or_else(|| {
            let names: Vec<String> = stages
                .iter()
                .filter_map(|s| s.name.as_ref())
                .map(|n| format!("`{n}`"))
                .collect();
            let message = if names.is_empty() {
                format!(
                    "Target stage `{target}` could not be found: no stage is named; \
                     name one with `FROM IMAGE AS NAME`"
                )
            } else {
                format!(
                    "Target stage `{target}` could not be found: the stage names are {}",
                    names.join(", ")
                )
            };
            Failure::general(message)
        })
}

/// A stage's dependency on another: the stage index and the line that
/// creates it.
pub(crate) struct Dependency<'a> {
    pub stage: usize,
    pub node: &'a Node,
    /// True for `COPY --from`, false for `FROM`.
    pub copy: bool,
}

/// Lists, per stage, the stages it reads through FROM and COPY --from.
fn stage_dependencies<'a>(
    stages: &[Stage<'a>],
    options: &ConvertOptions,
) -> Result<Vec<Vec<Dependency<'a>>>, Failure> {
    let mut all = Vec::with_capacity(stages.len());
    for stage in stages {
        let mut dependencies = Vec::new();
        let earlier = &stages[..stage.index];
        let base = match stage.context {
            Some(_) => None,
            None => find_named(earlier, &stage.base),
        };
        if let Some(base) = base {
            dependencies.push(Dependency {
                stage: base,
                node: stage.from_node,
                copy: false,
            });
        }
        for (node, instruction) in &stage.commands {
            let from = match instruction {
                Instruction::Copy(copy) => copy.from.clone(),
                Instruction::Run(run) => {
                    dependencies.extend(mount_dependencies(stages, node, &run.mounts)?);
                    continue;
                }
                _ => continue,
            };
            let Some(from) = &from else { continue };
            if from.contains('$') {
                return Err(Failure::at(
                    node,
                    "Variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
                ));
            }
            if named_context(options, from).is_some() {
                continue;
            }
            if let Some(source) = find_stage(stages, from) {
                dependencies.push(Dependency {
                    stage: source,
                    node,
                    copy: true,
                });
            }
        }
        all.push(dependencies);
    }
    Ok(all)
}

/// Lists the stages that `RUN --mount=from=STAGE` reads.
fn mount_dependencies<'a>(
    stages: &[Stage<'a>],
    node: &'a Node,
    specs: &[String],
) -> Result<Vec<Dependency<'a>>, Failure> {
    let mut dependencies = Vec::new();
    for spec in specs {
        let mount = instructions::parse_mount(spec, &|value| Ok(value.to_string()))
            .map_err(|e| Failure::at(node, e))?;
        let Some(from) = &mount.from else { continue };
        if from.contains('$') {
            return Err(Failure::at(
                node,
                format!(
                    "Variable expansion is not supported for `from` in `--mount={spec}`: define a new stage with FROM using ARG from global scope as a workaround"
                ),
            ));
        }
        if let Some(stage) = find_stage(stages, from) {
            dependencies.push(Dependency {
                stage,
                node,
                copy: true,
            });
        }
    }
    Ok(dependencies)
}

/// FROM only names stages defined before it; a later name is an image.
fn find_named(earlier: &[Stage<'_>], base: &str) -> Option<usize> {
    let lower = base.to_ascii_lowercase();
    earlier
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
}

fn check_cycles(stages: &[Stage<'_>], dependencies: &[Vec<Dependency<'_>>]) -> Result<(), Failure> {
    fn visit(
        stage: usize,
        dependencies: &[Vec<Dependency<'_>>],
        path: &mut Vec<usize>,
        done: &mut BTreeSet<usize>,
    ) -> Option<usize> {
        if path.contains(&stage) {
            return Some(stage);
        }
        if done.contains(&stage) {
            return None;
        }
        path.push(stage);
        for dependency in &dependencies[stage] {
            if let Some(cycle) = visit(dependency.stage, dependencies, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(stage);
        None
    }
    let mut done = BTreeSet::new();
    for stage in stages {
        if let Some(cycle) = visit(stage.index, dependencies, &mut Vec::new(), &mut done) {
            let name = stages[cycle]
                .name
                .clone()
                .unwrap_or_else(|| cycle.to_string());
            return Err(Failure::general(format!(
                "Circular dependency detected on stage: {name}"
            )));
        }
    }
    Ok(())
}

fn reachable(target: usize, dependencies: &[Vec<Dependency<'_>>]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![target];
    while let Some(stage) = stack.pop() {
        if seen.insert(stage) {
            stack.extend(dependencies[stage].iter().map(|d| d.stage));
        }
    }
    seen
}

/// Rejects `COPY --from` of a stage that comes later in the file.
fn check_order(
    stages: &[Stage<'_>],
    dependencies: &[Vec<Dependency<'_>>],
    needed: &BTreeSet<usize>,
) -> Result<(), Failure> {
    for &index in needed {
        for dependency in &dependencies[index] {
            if dependency.copy && dependency.stage >= index {
                let name = |i: usize| stages[i].name.clone().unwrap_or_else(|| i.to_string());
                return Err(Failure::at(
                    dependency.node,
                    format!(
                        "Cannot copy from stage \"{}\", it needs to be defined before current stage \"{}\"",
                        name(dependency.stage),
                        name(index)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Warns about build args no ARG line declares, as BuildKit does.
fn warn_unused_build_args(ast: &Ast, options: &ConvertOptions, warnings: &mut Vec<Warning>) {
    let mut declared = BTreeSet::new();
    for node in &ast.children {
        if let Ok(Instruction::Arg(declarations)) = instructions::parse(node) {
            declared.extend(declarations.into_iter().map(|d| d.key));
        }
    }
    let unused: Vec<&String> = options
        .build_args
        .keys()
        .filter(|k| !declared.contains(*k) && !is_predefined(k))
        .collect();
    if !unused.is_empty() {
        let names: Vec<String> = unused.iter().map(|k| format!("`{k}`")).collect();
        warnings.push(Warning {
            message: format!(
                "Build args {} were not consumed by any ARG",
                names.join(", ")
            ),
            line: None,
            ..Warning::default()
        });
    }
}

/// Proxy variables, and `BUILDKIT_*` frontend options such as
/// `BUILDKIT_DOCKERFILE_CHECK`, are build args no ARG needs to consume.
fn is_predefined(key: &str) -> bool {
    const PROXIES: [&str; 4] = ["HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY"];
    let upper = key.to_ascii_uppercase();
    PROXIES.contains(&upper.as_str()) || upper == "ALL_PROXY" || key.starts_with("BUILDKIT_")
}

/// The state a stage starts from before its own instructions.
pub(crate) enum Base {
    Scratch,
    Stage(usize),
    Image(String),
    /// A named context that is a directory.
    Context(String),
}

pub(crate) fn classify_base(stages: &[Stage<'_>], stage: &Stage<'_>) -> Base {
    match &stage.context {
        Some(NamedContext::Local { source }) => return Base::Context(source.clone()),
        Some(NamedContext::Image(reference)) => return Base::Image(reference.clone()),
        None => {}
    }
    if stage.base.eq_ignore_ascii_case("scratch") {
        return Base::Scratch;
    }
    match find_named(&stages[..stage.index], &stage.base) {
        Some(index) => Base::Stage(index),
        None => Base::Image(stage.base.clone()),
    }
}

pub(crate) fn state_of(states: &BTreeMap<usize, StageState>, index: usize) -> State {
    states.get(&index).map_or(State::Scratch, |s| s.fs)
}

/// Finds the named context called `name`; like stage names, a lower-case
/// context name matches any case.
pub(crate) fn named_context<'a>(
    options: &'a ConvertOptions,
    name: &str,
) -> Option<&'a NamedContext> {
    options
        .named_contexts
        .get(name)
        .or_else(|| options.named_contexts.get(&name.to_ascii_lowercase()))
}

impl Dispatcher<'_> {
    /// Whether `--no-cache-filter` names the stage, by name or index.
    pub(crate) fn ignores_cache(&self, state: &StageState) -> bool {
        self.options.no_cache_filter.iter().any(|filter| {
            filter.eq_ignore_ascii_case(&state.stage_name)
                || format!("stage-{filter}") == state.stage_name
        })
    }

    /// Starts a stage from a named context that is a directory: its files
    /// are the root filesystem and the config is that of `scratch`.
    pub(crate) fn start_from_context(
        &self,
        state: &mut StageState,
        node: &Node,
        source: &str,
        graph: &mut Graph,
    ) {
        state.config.config.env = Some(vec![format!("PATH={}", super::dispatch::DEFAULT_PATH)]);
        let description = self.describe(state, node.original.trim());
        let metadata = self.metadata(state, node, description);
        state.fs = context_source(graph, source, metadata);
    }

    /// Returns the filesystem `COPY --from=NAME` reads when `NAME` is a
    /// named context.
    pub(crate) async fn named_context_state(
        &mut self,
        state: &StageState,
        node: &Node,
        context: &NamedContext,
        graph: &mut Graph,
    ) -> Result<State, Failure> {
        match context {
            NamedContext::Local { source } => {
                let metadata = self.metadata(
                    state,
                    node,
                    format!("[internal] load build context `{source}`"),
                );
                Ok(context_source(graph, source, metadata))
            }
            NamedContext::Image(reference) => {
                self.image_source(state, node, reference, graph).await
            }
        }
    }
}

/// Adds the `local://` source of a named context that is a directory.
fn context_source(graph: &mut Graph, source: &str, metadata: strata_llb::OpMetadata) -> State {
    let op = SourceOp {
        identifier: format!("local://{source}"),
        attrs: BTreeMap::from([(SourceOp::LOCAL_SHARED_KEY.to_string(), source.to_string())]),
    };
    let inputs: Vec<PendingInput> = Vec::new();
    graph.add(Op::Source(op), inputs, metadata, None)
}

impl Dispatcher<'_> {
    /// Runs the ONBUILD triggers of the stage's base image as the stage's
    /// first steps and clears them from its config, so a stage or image
    /// built on this one does not run them again. Triggers of a base that is
    /// an earlier stage are neither run nor cleared, as in BuildKit.
    pub(crate) async fn run_onbuild_triggers(
        &mut self,
        state: &mut StageState,
        stage: &Stage<'_>,
        states: &BTreeMap<usize, StageState>,
        graph: &mut Graph,
        warnings: &mut Vec<Warning>,
    ) -> Result<(), Failure> {
        if !matches!(classify_base(self.stages, stage), Base::Image(_)) {
            return Ok(());
        }
        let Some(triggers) = state.config.config.on_build.take() else {
            return Ok(());
        };
        let from = stage.from_node;
        let invalid = |message: &str| {
            Failure::at(
                from,
                format!(
                    "Invalid ONBUILD trigger in base image `{}`: {message}",
                    stage.base
                ),
            )
        };
        let mut text = triggers.join("\n");
        text.push('\n');
        let mut ast = crate::parser::parse(&text).map_err(|e| invalid(e.message()))?;
        // Errors and progress point at the FROM line that ran the trigger.
        for node in &mut ast.children {
            node.start_line = from.start_line;
            node.end_line = from.end_line;
        }
        state.steps += ast.children.len();
        for node in &ast.children {
            let instruction = instructions::parse(node).map_err(|e| invalid(&e.message))?;
            self.dispatch(state, node, &instruction, states, graph, warnings)
                .await?;
        }
        Ok(())
    }
}
