//! Rules that need only the parse tree: casing, stage names, deprecated
//! and legacy forms, EXPOSE formats and secret-looking names.

use super::{CheckWarning, Rule, StageView};
use crate::ast::{Ast, Node};
use crate::convert::ConvertOptions;
use crate::dockerignore::DockerIgnore;
use crate::instructions::{CopySource, Instruction};
use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// Stage names BuildKit reserves.
const RESERVED_STAGE_NAMES: [&str; 2] = ["context", "scratch"];

// BuildKit's patterns for names that look like secrets, and for the
// `public` part that clears them (frontend/dockerfile/dockerfile2llb).
static SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pass|pword|passwd|secret|token)(?:_|$)",
    )
    .expect("secret name regex is valid")
});
static PUBLIC_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:_|^)(?:public)(?:_|$)").expect("public regex is valid"));

pub(super) fn check_file(
    ast: &Ast,
    stages: &[StageView<'_>],
    options: &ConvertOptions,
    warnings: &mut Vec<CheckWarning>,
) {
    for warning in &ast.warnings {
        warnings.push(CheckWarning::at_line(
            Rule::NoEmptyContinuation,
            warning.line,
            warning.message.clone(),
        ));
    }
    check_instruction_casing(ast, warnings);
    check_stage_names(stages, warnings);
    let ignore = DockerIgnore::parse(&options.excludes.join("\n")).ok();
    for stage in stages {
        check_from(stage, warnings);
        check_commands(stage, stages, ignore.as_ref(), warnings);
    }
    for node in &ast.children {
        check_secret_names(node, warnings);
    }
}

/// Returns the keyword as written, such as `From`.
pub(super) fn written_keyword(node: &Node) -> &str {
    node.original
        .split_whitespace()
        .next()
        .unwrap_or(&node.keyword)
}

fn is_upper(word: &str) -> bool {
    word == word.to_ascii_uppercase()
}

fn is_lower(word: &str) -> bool {
    word == word.to_ascii_lowercase()
}

/// ConsistentInstructionCasing: every keyword should follow the casing most
/// keywords of the file use; a tie counts as uppercase.
fn check_instruction_casing(ast: &Ast, warnings: &mut Vec<CheckWarning>) {
    let keywords: Vec<(&Node, &str)> = ast
        .children
        .iter()
        .map(|n| (n, written_keyword(n)))
        .collect();
    let lower = keywords.iter().filter(|(_, k)| is_lower(k)).count();
    let upper = keywords.iter().filter(|(_, k)| is_upper(k)).count();
    let majority_upper = upper >= lower;
    for (node, keyword) in keywords {
        if !is_lower(keyword) && !is_upper(keyword) {
            let message = format!("Command '{keyword}' should be consistently cased");
            warnings.push(CheckWarning::at(
                Rule::ConsistentInstructionCasing,
                node,
                message,
            ));
        } else if majority_upper != is_upper(keyword) {
            let majority = if majority_upper {
                "uppercase"
            } else {
                "lowercase"
            };
            let message = format!(
                "Command '{keyword}' should match the case of the command majority ({majority})"
            );
            warnings.push(CheckWarning::at(
                Rule::ConsistentInstructionCasing,
                node,
                message,
            ));
        }
    }
}

fn check_stage_names(stages: &[StageView<'_>], warnings: &mut Vec<CheckWarning>) {
    let mut seen = BTreeSet::new();
    for stage in stages {
        let Some(name) = &stage.name else { continue };
        if !is_lower(name) {
            let message = format!("Stage name '{name}' should be lowercase");
            warnings.push(CheckWarning::at(Rule::StageNameCasing, stage.from, message));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_STAGE_NAMES.contains(&lower.as_str()) {
            let message = format!("'{lower}' is reserved and should not be used as a stage name");
            warnings.push(CheckWarning::at(
                Rule::ReservedStageName,
                stage.from,
                message,
            ));
        }
        if !seen.insert(lower.clone()) {
            let message = format!("Duplicate stage name '{lower}', stage names should be unique");
            warnings.push(CheckWarning::at(
                Rule::DuplicateStageName,
                stage.from,
                message,
            ));
        }
    }
}

/// FromAsCasing and FromPlatformFlagConstDisallowed.
fn check_from(stage: &StageView<'_>, warnings: &mut Vec<CheckWarning>) {
    let from = written_keyword(stage.from);
    if let Some(as_word) = stage.from.args.get(1) {
        let mismatch =
            (is_upper(from) && !is_upper(as_word)) || (is_lower(from) && !is_lower(as_word));
        if mismatch {
            let message = format!("'{as_word}' and '{from}' keywords' casing do not match");
            warnings.push(CheckWarning::at(Rule::FromAsCasing, stage.from, message));
        }
    }
    if let Some(platform) = &stage.platform {
        // A stage named after the platform, such as `build_arm64`, exists to
        // pin it, so BuildKit allows the constant there.
        let named_for_platform = stage.name.as_deref().is_some_and(|name| {
            let name = name.to_ascii_lowercase();
            platform
                .split('/')
                .skip(1)
                .any(|part| !part.is_empty() && name.contains(&part.to_ascii_lowercase()))
        });
        if !platform.contains('$') && !named_for_platform {
            let message =
                format!("FROM --platform flag should not use constant value \"{platform}\"");
            warnings.push(CheckWarning::at(
                Rule::FromPlatformFlagConstDisallowed,
                stage.from,
                message,
            ));
        }
    }
}

fn check_commands(
    stage: &StageView<'_>,
    stages: &[StageView<'_>],
    ignore: Option<&DockerIgnore>,
    warnings: &mut Vec<CheckWarning>,
) {
    let mut shell_set = false;
    let mut absolute_workdir = inherits_absolute_workdir(stage, stages);
    let mut last_of_kind: [Option<&Node>; 3] = [None; 3];
    for (node, instruction) in &stage.commands {
        let Some(instruction) = instruction else {
            continue;
        };
        let keyword = node.keyword.to_ascii_uppercase();
        match instruction {
            Instruction::Shell(_) => shell_set = true,
            Instruction::Cmd(_) | Instruction::Entrypoint(_) if !node.json && !shell_set => {
                let message = format!(
                    "JSON arguments recommended for {keyword} to prevent unintended behavior related to OS signals"
                );
                warnings.push(CheckWarning::at(Rule::JsonArgsRecommended, node, message));
            }
            Instruction::Maintainer(_) => warnings.push(CheckWarning::at(
                Rule::MaintainerDeprecated,
                node,
                "Maintainer instruction is deprecated in favor of using label",
            )),
            Instruction::Workdir(dir) => {
                if dir.starts_with('/') || dir.starts_with('$') {
                    absolute_workdir = true;
                } else if !absolute_workdir {
                    let message = format!(
                        "Relative workdir '{dir}' can have unexpected results if the base image changes"
                    );
                    warnings.push(CheckWarning::at(Rule::WorkdirRelativePath, node, message));
                }
            }
            Instruction::Env(_) | Instruction::Label(_) => check_legacy_key_value(node, warnings),
            Instruction::Expose(ports) => check_expose(node, ports, warnings),
            Instruction::Copy(copy) if copy.from.is_none() => {
                if let Some(ignore) = ignore {
                    check_copy_ignored(node, copy.add, &copy.sources, ignore, warnings);
                }
            }
            _ => {}
        }
        let slot = match instruction {
            Instruction::Cmd(_) => Some(0),
            Instruction::Entrypoint(_) => Some(1),
            Instruction::Healthcheck(_) => Some(2),
            _ => None,
        };
        if let Some(slot) = slot {
            if let Some(previous) = last_of_kind[slot].replace(node) {
                let message = format!(
                    "Multiple {keyword} instructions should not be used in the same stage because only the last one will be used"
                );
                warnings.push(CheckWarning::at(
                    Rule::MultipleInstructionsDisallowed,
                    previous,
                    message,
                ));
            }
        }
    }
}

/// Reports whether a stage built on another stage starts with an absolute
/// WORKDIR that stage (or its own base) set.
fn inherits_absolute_workdir(stage: &StageView<'_>, stages: &[StageView<'_>]) -> bool {
    let mut current = stage;
    // Bounded by the stage count, so a self-referencing FROM cannot loop.
    for _ in 0..stages.len() {
        let base = current.image.to_ascii_lowercase();
        let Some(parent) = stages
            .iter()
            .take_while(|s| !std::ptr::eq(*s, current))
            .find(|s| s.name.as_deref().map(str::to_ascii_lowercase) == Some(base.clone()))
        else {
            return false;
        };
        let absolute = parent.commands.iter().any(|(_, i)| {
            matches!(i, Some(Instruction::Workdir(dir)) if dir.starts_with('/') || dir.starts_with('$'))
        });
        if absolute {
            return true;
        }
        current = parent;
    }
    false
}

/// LegacyKeyValueFormat: `ENV key value` instead of `ENV key=value`.
fn check_legacy_key_value(node: &Node, warnings: &mut Vec<CheckWarning>) {
    let mut words = node.original.split_whitespace();
    let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
    let legacy = words.next().is_some_and(|first| !first.contains('='));
    if legacy {
        let message = format!(
            "\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"
        );
        warnings.push(CheckWarning::at(Rule::LegacyKeyValueFormat, node, message));
    }
}

/// ExposeInvalidFormat and ExposeProtoCasing.
fn check_expose(node: &Node, ports: &[String], warnings: &mut Vec<CheckWarning>) {
    for port in ports {
        if port.contains(':') {
            let message = format!(
                "EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"
            );
            warnings.push(CheckWarning::at(Rule::ExposeInvalidFormat, node, message));
        }
        if let Some((_, protocol)) = port.rsplit_once('/') {
            if !is_lower(protocol) {
                let message =
                    format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase");
                warnings.push(CheckWarning::at(Rule::ExposeProtoCasing, node, message));
            }
        }
    }
}

/// CopyIgnoredFile: a COPY or ADD source from the context that
/// `.dockerignore` leaves out. Sources with variables or URLs are skipped.
fn check_copy_ignored(
    node: &Node,
    add: bool,
    sources: &[CopySource],
    ignore: &DockerIgnore,
    warnings: &mut Vec<CheckWarning>,
) {
    let verb = if add { "Add" } else { "Copy" };
    for source in sources {
        let CopySource::Path(path) = source else {
            continue;
        };
        if path.contains('$') || path.contains("://") {
            continue;
        }
        let cleaned = path.trim_start_matches("./").trim_start_matches('/');
        if ignore.is_excluded(cleaned) {
            let message =
                format!("Attempting to {verb} file \"{path}\" that is excluded by .dockerignore");
            warnings.push(CheckWarning::at(Rule::CopyIgnoredFile, node, message));
        }
    }
}

/// SecretsUsedInArgOrEnv: an ARG or ENV name that looks like a secret.
fn check_secret_names(node: &Node, warnings: &mut Vec<CheckWarning>) {
    let keyword = node.keyword.to_ascii_uppercase();
    let names: Vec<String> = match crate::instructions::parse(node) {
        Ok(Instruction::Arg(declarations)) => declarations.into_iter().map(|d| d.key).collect(),
        Ok(Instruction::Env(pairs)) => pairs.into_iter().map(|p| p.key).collect(),
        _ => return,
    };
    for name in names {
        if SECRET_NAME.is_match(&name) && !PUBLIC_NAME.is_match(&name) {
            let message = format!(
                "Do not use ARG or ENV instructions for sensitive data ({keyword} \"{name}\")"
            );
            warnings.push(CheckWarning::at(Rule::SecretsUsedInArgOrEnv, node, message));
        }
    }
}
