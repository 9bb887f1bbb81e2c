//! The `# check=` directive and the `BUILDKIT_DOCKERFILE_CHECK` build arg:
//! `skip=Rule1,Rule2` or `skip=all`, `error=true`, and
//! `experimental=Rule1` or `experimental=all`, separated by `;`.

use super::Rule;
use crate::ast::Ast;
use crate::convert::{ConvertError, ConvertOptions};
use std::collections::BTreeSet;

/// The build arg that replaces the `check` directive, as in BuildKit.
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// The enabled rules and whether a violation fails the build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip: BTreeSet<String>,
    pub skip_all: bool,
    pub error: bool,
    /// Experimental rules turned on by name.
    pub experimental: BTreeSet<String>,
    pub experimental_all: bool,
}

impl CheckConfig {
    /// Parses a directive value such as `skip=StageNameCasing;error=true`.
    /// Unknown rule names in `skip` are kept and ignored, as BuildKit does.
    pub fn parse(value: &str) -> Result<CheckConfig, String> {
        let mut config = CheckConfig::default();
        let value = value.trim();
        if value.is_empty() {
            return Ok(config);
        }
        for part in value.split(';').filter(|p| !p.trim().is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "Invalid check option `{}`: expected `skip=RULES`, `error=BOOL` or `experimental=RULES`",
                    part.trim()
                ));
            };
            let value = value.trim();
            match key.trim() {
                "skip" if value == "all" => config.skip_all = true,
                "skip" => config.skip.extend(rule_list(value)),
                "experimental" if value == "all" => config.experimental_all = true,
                "experimental" => config.experimental.extend(rule_list(value)),
                "error" => {
                    config.error = parse_bool(value).ok_or_else(|| {
                        format!("Invalid check option `error={value}`: expected `true` or `false`")
                    })?;
                }
                other => {
                    return Err(format!(
                        "Invalid check option `{other}`: expected `skip`, `error` or `experimental`"
                    ));
                }
            }
        }
        Ok(config)
    }

    /// Reads the configuration of a build: the build arg when given,
    /// otherwise the directive.
    pub fn for_build(ast: &Ast, options: &ConvertOptions) -> Result<CheckConfig, ConvertError> {
        let directive_line = ast
            .directives
            .lines
            .iter()
            .find(|(name, _)| name == "check")
            .map(|(_, line)| *line);
        let (value, lines, origin) = match options.build_args.get(CHECK_BUILD_ARG) {
            Some(value) => (
                value.as_str(),
                None,
                format!("build arg `{CHECK_BUILD_ARG}`"),
            ),
            None => match &ast.directives.check {
                Some(value) => (
                    value.as_str(),
                    directive_line.map(|l| (l, l)),
                    "`check` directive".to_string(),
                ),
                None => return Ok(CheckConfig::default()),
            },
        };
        CheckConfig::parse(value).map_err(|message| ConvertError {
            file: options.dockerfile_name.clone(),
            message: format!("{message} in the {origin}"),
            lines,
            help: None,
        })
    }

    /// Reports whether violations of `rule` are reported.
    pub fn is_enabled(&self, rule: Rule) -> bool {
        if self.skip_all || self.skip.contains(rule.name()) {
            return false;
        }
        !rule.is_experimental() || self.experimental_all || self.experimental.contains(rule.name())
    }
}

fn rule_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// Parses a boolean the way Go's `strconv.ParseBool` does.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
