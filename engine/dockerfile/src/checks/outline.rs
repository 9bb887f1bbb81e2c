//! `--call targets` and `--call outline`: the stages of a Dockerfile with
//! their descriptions, and the build args, secrets and SSH sockets a target
//! uses.
//!
//! A description is the block of comment lines directly above a FROM or ARG
//! line, joined with spaces. As in BuildKit, a leading word equal to the
//! stage or ARG name is dropped, so `# build compiles the app` above
//! `FROM ... AS build` describes it as `compiles the app`.

use super::{StageView, split};
use crate::ast::{Ast, Node};
use crate::instructions::{self, Instruction};
use serde::Serialize;
use std::collections::BTreeSet;

/// One stage, as `--call targets` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The stage name, or its index for an unnamed stage.
    pub name: String,
    pub description: String,
    pub base: String,
    /// True for the stage a build without `--target` builds: the last one.
    pub default: bool,
    pub line: usize,
}

/// The build args, secrets and SSH sockets one target reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outline {
    pub name: String,
    pub description: String,
    pub args: Vec<OutlineArg>,
    pub secrets: Vec<OutlineMount>,
    pub ssh: Vec<OutlineMount>,
}

/// A build arg the target reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutlineArg {
    pub name: String,
    /// The default as written, unexpanded.
    pub value: Option<String>,
    pub description: String,
    pub line: usize,
}

/// A secret or SSH socket a `RUN --mount` of the target reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutlineMount {
    pub name: String,
    pub required: bool,
}

/// Lists every stage with its description. `text` is the Dockerfile the
/// tree was parsed from.
pub fn targets(ast: &Ast, text: &str) -> Vec<Target> {
    let source = Source::new(ast, text);
    let (_, stages) = split(ast);
    let count = stages.len();
    stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            let name = stage_name(stage, index);
            Target {
                description: description(&source, stage.from.start_line, &name),
                name,
                base: stage.image.clone(),
                default: index + 1 == count,
                line: stage.from.start_line,
            }
        })
        .collect()
}

/// Describes what `target` (the last stage when `None`) needs. Fails when
/// no stage has that name.
pub fn outline(ast: &Ast, text: &str, target: Option<&str>) -> Result<Outline, String> {
    let source = Source::new(ast, text);
    let (globals, stages) = split(ast);
    if stages.is_empty() {
        return Err("Dockerfile contains no stages: add a `FROM` instruction".into());
    }
    let index = match target {
        None => stages.len() - 1,
        Some(name) => find(&stages, name).ok_or_else(|| {
            let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
            let mut message = format!("Target stage `{name}` could not be found");
            if let Some(close) = super::closest(name, names.iter().copied()) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            message
        })?,
    };
    let reachable = reachable(&stages, index);

    let mut args = Vec::new();
    let mut seen = BTreeSet::new();
    let used_in_from: BTreeSet<&str> = reachable
        .iter()
        .flat_map(|&i| {
            [stages[i].image.as_str()]
                .into_iter()
                .chain(stages[i].platform.as_deref())
        })
        .collect();
    for node in &globals {
        for (name, value) in arg_declarations(node) {
            let used = used_in_from.iter().any(|word| mentions(word, &name))
                || reachable.iter().any(|&i| declares(&stages[i], &name));
            if used && seen.insert(name.clone()) {
                args.push(arg(&source, node, name, value));
            }
        }
    }
    let mut secrets = Vec::new();
    let mut ssh = Vec::new();
    for &i in &reachable {
        for (node, instruction) in &stages[i].commands {
            if let Some(Instruction::Run(run)) = instruction {
                collect_mounts(&run.mounts, &mut secrets, &mut ssh);
            }
            for (name, value) in arg_declarations(node) {
                if seen.insert(name.clone()) {
                    args.push(arg(&source, node, name, value));
                }
            }
        }
    }
    let name = stage_name(&stages[index], index);
    Ok(Outline {
        description: description(&source, stages[index].from.start_line, &name),
        name,
        args,
        secrets,
        ssh,
    })
}

fn stage_name(stage: &StageView<'_>, index: usize) -> String {
    stage
        .name
        .clone()
        .map_or_else(|| index.to_string(), |n| n.to_ascii_lowercase())
}

fn find(stages: &[StageView<'_>], name: &str) -> Option<usize> {
    stages.iter().position(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Returns the indexes of `target` and every stage it reads through FROM
/// or `COPY --from`, in file order.
fn reachable(stages: &[StageView<'_>], target: usize) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![target];
    while let Some(index) = stack.pop() {
        if !seen.insert(index) {
            continue;
        }
        let stage = &stages[index];
        let copies = stage.commands.iter().filter_map(|(_, i)| match i {
            Some(Instruction::Copy(copy)) => copy.from.clone(),
            _ => None,
        });
        for reference in std::iter::once(stage.image.clone()).chain(copies) {
            let found = find(&stages[..index], &reference)
                .or_else(|| reference.parse::<usize>().ok().filter(|i| *i < index));
            stack.extend(found);
        }
    }
    seen.into_iter().collect()
}

fn arg_declarations(node: &Node) -> Vec<(String, Option<String>)> {
    match instructions::parse(node) {
        Ok(Instruction::Arg(declarations)) => {
            declarations.into_iter().map(|d| (d.key, d.value)).collect()
        }
        _ => Vec::new(),
    }
}

fn declares(stage: &StageView<'_>, name: &str) -> bool {
    stage
        .commands
        .iter()
        .any(|(node, _)| arg_declarations(node).iter().any(|(n, _)| n == name))
}

/// Reports whether `word` refers to variable `name` as `$name` or `${name…`.
fn mentions(word: &str, name: &str) -> bool {
    let braced = format!("${{{name}");
    let plain = format!("${name}");
    word.contains(&braced)
        || word.match_indices(&plain).any(|(at, _)| {
            let next = word[at + plain.len()..].chars().next();
            !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn arg(source: &Source<'_>, node: &Node, name: String, value: Option<String>) -> OutlineArg {
    OutlineArg {
        description: description(source, node.start_line, &name),
        name,
        value,
        line: node.start_line,
    }
}

/// Reads the comment block directly above 1-based `line`, not counting
/// parser directives.
fn description(source: &Source<'_>, line: usize, name: &str) -> String {
    let mut block = Vec::new();
    for index in (0..line.saturating_sub(1)).rev() {
        if source.directives.contains(&(index + 1)) {
            break;
        }
        let Some(comment) = source.lines[index].trim().strip_prefix('#') else {
            break;
        };
        block.push(comment.trim());
    }
    block.reverse();
    let text = block.join(" ");
    match text.split_once(' ') {
        Some((first, rest)) if first == name => rest.trim().to_string(),
        None if text == name => String::new(),
        _ => text,
    }
}

/// The Dockerfile text by line, with the lines that contain parser directives.
struct Source<'a> {
    lines: Vec<&'a str>,
    directives: BTreeSet<usize>,
}

impl<'a> Source<'a> {
    fn new(ast: &Ast, text: &'a str) -> Self {
        Source {
            lines: text.lines().collect(),
            directives: ast.directives.lines.iter().map(|(_, line)| *line).collect(),
        }
    }
}

/// Adds the secrets and SSH sockets of `RUN --mount` values.
fn collect_mounts(mounts: &[String], secrets: &mut Vec<OutlineMount>, ssh: &mut Vec<OutlineMount>) {
    for mount in mounts {
        let mut kind = "";
        let mut id = None;
        let mut target = None;
        let mut required = false;
        for field in mount.split(',') {
            let (key, value) = field.split_once('=').unwrap_or((field, "true"));
            match key.trim().to_ascii_lowercase().as_str() {
                "type" => {
                    kind = if value == "secret" {
                        "secret"
                    } else if value == "ssh" {
                        "ssh"
                    } else {
                        ""
                    }
                }
                "id" => id = Some(value.to_string()),
                "target" | "dst" | "destination" => target = Some(value.to_string()),
                "required" => required = value.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        let (list, default) = match kind {
            // A secret without `id` takes the base name of its target.
            "secret" => (
                &mut *secrets,
                target
                    .as_deref()
                    .and_then(|t| t.rsplit('/').next())
                    .map(str::to_string),
            ),
            "ssh" => (&mut *ssh, Some("default".to_string())),
            _ => continue,
        };
        let Some(name) = id.or(default) else { continue };
        if !list.iter().any(|m| m.name == name) {
            list.push(OutlineMount { name, required });
        }
    }
}
