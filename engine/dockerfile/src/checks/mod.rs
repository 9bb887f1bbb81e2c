//! Build checks: BuildKit's Dockerfile lint rules with their names,
//! messages and documentation links, the `# check=` directive that
//! configures them, `--call outline|targets`, and the rendering of
//! conversion errors as diagnostics.
//!
//! Rules read the parse tree and, for the rules that need them, the base
//! images' configs through the [`ImageResolver`]. Rules only report
//! warnings; [`crate::convert::convert`] fails on them when the check
//! configuration says `error=true`.

mod config;
pub mod diagnostic;
mod images;
pub mod outline;
mod rules;
mod suggest;
mod vars;

pub use config::{CHECK_BUILD_ARG, CheckConfig};
pub(crate) use images::RecordingResolver;
pub use suggest::closest;
pub(crate) use suggest::help_for_failure;

use crate::ast::{Ast, Node};
use crate::convert::{ConvertError, ConvertOptions, ImageResolver, Warning};
use crate::instructions::{self, Instruction};
use std::fmt;

/// One of BuildKit's build check rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    StageNameCasing,
    FromAsCasing,
    NoEmptyContinuation,
    ConsistentInstructionCasing,
    DuplicateStageName,
    ReservedStageName,
    JsonArgsRecommended,
    MaintainerDeprecated,
    UndefinedArgInFrom,
    WorkdirRelativePath,
    UndefinedVar,
    MultipleInstructionsDisallowed,
    LegacyKeyValueFormat,
    InvalidDefaultArgInFrom,
    FromPlatformFlagConstDisallowed,
    CopyIgnoredFile,
    InvalidBaseImagePlatform,
    SecretsUsedInArgOrEnv,
    ExposeProtoCasing,
    ExposeInvalidFormat,
}

impl Rule {
    pub const ALL: [Rule; 20] = [
        Rule::StageNameCasing,
        Rule::FromAsCasing,
        Rule::NoEmptyContinuation,
        Rule::ConsistentInstructionCasing,
        Rule::DuplicateStageName,
        Rule::ReservedStageName,
        Rule::JsonArgsRecommended,
        Rule::MaintainerDeprecated,
        Rule::UndefinedArgInFrom,
        Rule::WorkdirRelativePath,
        Rule::UndefinedVar,
        Rule::MultipleInstructionsDisallowed,
        Rule::LegacyKeyValueFormat,
        Rule::InvalidDefaultArgInFrom,
        Rule::FromPlatformFlagConstDisallowed,
        Rule::CopyIgnoredFile,
        Rule::InvalidBaseImagePlatform,
        Rule::SecretsUsedInArgOrEnv,
        Rule::ExposeProtoCasing,
        Rule::ExposeInvalidFormat,
    ];

    /// Returns the rule name as BuildKit spells it, such as `StageNameCasing`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "StageNameCasing",
            Rule::FromAsCasing => "FromAsCasing",
            Rule::NoEmptyContinuation => "NoEmptyContinuation",
            Rule::ConsistentInstructionCasing => "ConsistentInstructionCasing",
            Rule::DuplicateStageName => "DuplicateStageName",
            Rule::ReservedStageName => "ReservedStageName",
            Rule::JsonArgsRecommended => "JSONArgsRecommended",
            Rule::MaintainerDeprecated => "MaintainerDeprecated",
            Rule::UndefinedArgInFrom => "UndefinedArgInFrom",
            Rule::WorkdirRelativePath => "WorkdirRelativePath",
            Rule::UndefinedVar => "UndefinedVar",
            Rule::MultipleInstructionsDisallowed => "MultipleInstructionsDisallowed",
            Rule::LegacyKeyValueFormat => "LegacyKeyValueFormat",
            Rule::InvalidDefaultArgInFrom => "InvalidDefaultArgInFrom",
            Rule::FromPlatformFlagConstDisallowed => "FromPlatformFlagConstDisallowed",
            Rule::CopyIgnoredFile => "CopyIgnoredFile",
            Rule::InvalidBaseImagePlatform => "InvalidBaseImagePlatform",
            Rule::SecretsUsedInArgOrEnv => "SecretsUsedInArgOrEnv",
            Rule::ExposeProtoCasing => "ExposeProtoCasing",
            Rule::ExposeInvalidFormat => "ExposeInvalidFormat",
        }
    }

    /// Finds a rule by its exact BuildKit name.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }

    /// Returns the address of the rule's documentation on docs.docker.com.
    pub fn url(self) -> String {
        let mut slug = String::new();
        let name = match self {
            // BuildKit's page is `json-args-recommended`, not `j-s-o-n-...`.
            Rule::JsonArgsRecommended => "JsonArgsRecommended",
            other => other.name(),
        };
        for (index, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && index > 0 {
                slug.push('-');
            }
            slug.push(c.to_ascii_lowercase());
        }
        format!("https://docs.docker.com/go/dockerfile/rule/{slug}/")
    }

    /// Reports whether BuildKit runs the rule only when
    /// `# check=experimental=` names it.
    pub fn is_experimental(self) -> bool {
        matches!(self, Rule::CopyIgnoredFile)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One rule violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckWarning {
    pub rule: Rule,
    /// BuildKit's message for the case, such as
    /// `Stage name 'Build' should be lowercase`.
    pub message: String,
    /// First and last line of the instruction at fault; `None` for the file
    /// as a whole.
    pub lines: Option<(usize, usize)>,
}

impl CheckWarning {
    pub(crate) fn at(rule: Rule, node: &Node, message: impl Into<String>) -> CheckWarning {
        CheckWarning {
            rule,
            message: message.into(),
            lines: Some((node.start_line, node.end_line)),
        }
    }

    pub(crate) fn at_line(rule: Rule, line: usize, message: impl Into<String>) -> CheckWarning {
        CheckWarning {
            rule,
            message: message.into(),
            lines: Some((line, line)),
        }
    }
}

impl From<CheckWarning> for Warning {
    fn from(check: CheckWarning) -> Warning {
        Warning {
            message: check.message,
            line: check.lines.map(|(start, _)| start),
            rule: Some(check.rule.name().to_string()),
            url: Some(check.rule.url()),
        }
    }
}

/// The result of running the checks on one Dockerfile.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Violations of enabled rules, ordered by line.
    pub warnings: Vec<CheckWarning>,
    pub config: CheckConfig,
}

impl CheckReport {
    /// Returns the error `# check=error=true` requests when any rule was
    /// violated, listing every violation.
    pub fn violation_error(&self, file: &str) -> Option<ConvertError> {
        if !self.config.error || self.warnings.is_empty() {
            return None;
        }
        let mut rules: Vec<&str> = self.warnings.iter().map(|w| w.rule.name()).collect();
        rules.sort_unstable();
        rules.dedup();
        let mut message = format!(
            "Lint violation found for rules: {}; fix them or remove `error=true` from the `check` directive",
            rules.join(", ")
        );
        for warning in &self.warnings {
            let line = warning
                .lines
                .map_or(String::new(), |(start, _)| format!(" (line {start})"));
            message.push_str(&format!(
                "\n  {}: {}{line}",
                warning.rule.name(),
                warning.message
            ));
        }
        Some(ConvertError {
            file: file.to_string(),
            message,
            lines: None,
            help: None,
        })
    }
}

/// A stage as the rules see it: its FROM node and its other instructions,
/// typed where they parse.
pub(crate) struct StageView<'a> {
    pub from: &'a Node,
    /// The stage name as written, case kept.
    pub name: Option<String>,
    pub image: String,
    pub platform: Option<String>,
    pub commands: Vec<(&'a Node, Option<Instruction>)>,
}

/// Splits the parse tree into the global ARG lines and the stages.
pub(crate) fn split(ast: &Ast) -> (Vec<&Node>, Vec<StageView<'_>>) {
    let mut globals = Vec::new();
    let mut stages: Vec<StageView<'_>> = Vec::new();
    for node in &ast.children {
        let instruction = instructions::parse(node).ok();
        match (instruction, stages.last_mut()) {
            (Some(Instruction::From(from)), _) => stages.push(StageView {
                from: node,
                name: node.args.get(2).cloned().filter(|_| from.name.is_some()),
                image: from.image,
                platform: from.platform,
                commands: Vec::new(),
            }),
            (_, None) => globals.push(node),
            (instruction, Some(stage)) => stage.commands.push((node, instruction)),
        }
    }
    (globals, stages)
}

/// Runs every enabled rule. Fails only on an invalid `check` directive or
/// `BUILDKIT_DOCKERFILE_CHECK` value.
pub async fn run(
    ast: &Ast,
    options: &ConvertOptions,
    resolver: &dyn ImageResolver,
) -> Result<CheckReport, ConvertError> {
    let config = CheckConfig::for_build(ast, options)?;
    let mut warnings = Vec::new();
    if !config.skip_all {
        let (globals, stages) = split(ast);
        rules::check_file(ast, &stages, options, &mut warnings);
        let bases = images::resolve_bases(&globals, &stages, options, resolver).await;
        images::check_platforms(&stages, &bases, options, &mut warnings);
        vars::check(&globals, &stages, &bases, options, &mut warnings);
    }
    warnings.retain(|w| config.is_enabled(w.rule));
    warnings.sort_by_key(|w| w.lines.map_or(0, |(start, _)| start));
    Ok(CheckReport { warnings, config })
}

#[cfg(test)]
mod tests;
