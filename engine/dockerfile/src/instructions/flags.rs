//! Leading `--name=value` flags of an instruction, checked against the set
//! the instruction accepts (BuildKit's `BFlags`).

use super::InstructionError;
use std::collections::BTreeMap;

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`; a repeat is an error.
    String,
    /// `--exclude=x`, repeatable.
    List,
}

/// Flags of one instruction after validation, by name without dashes.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    /// Parses `words` against `allowed`, rejecting unknown, duplicated and
    /// malformed flags.
    pub(crate) fn parse(
        keyword: &str,
        words: &[String],
        allowed: &[(&'static str, FlagKind)],
        line: usize,
    ) -> Result<Flags, InstructionError> {
        let mut flags = Flags::default();
        for word in words {
            let text = word.strip_prefix("--").unwrap_or(word);
            let (name, value) = match text.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (text, None),
            };
            let Some(&(name, kind)) = allowed.iter().find(|(known, _)| *known == name) else {
                return Err(unknown_flag(keyword, name, allowed, line));
            };
            let value = match (kind, value) {
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) if v.eq_ignore_ascii_case("true") => "true".into(),
                (FlagKind::Bool, Some(v)) if v.eq_ignore_ascii_case("false") => "false".into(),
                (FlagKind::Bool, Some(v)) => {
                    return Err(InstructionError::new(
                        line,
                        format!("Invalid value `{v}` for `--{name}`: expected `true` or `false`"),
                    ));
                }
                (_, None) => {
                    return Err(InstructionError::new(
                        line,
                        format!("Missing a value on flag `--{name}`: write `--{name}=VALUE`"),
                    ));
                }
                (_, Some(v)) => v.to_string(),
            };
            let entry = flags.values.entry(name).or_default();
            if kind != FlagKind::List && !entry.is_empty() {
                return Err(InstructionError::new(
                    line,
                    format!("Duplicate flag specified: `--{name}`; give it once"),
                ));
            }
            entry.push(value);
        }
        Ok(flags)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.first()).cloned()
    }

    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }

    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

fn unknown_flag(
    keyword: &str,
    name: &str,
    allowed: &[(&'static str, FlagKind)],
    line: usize,
) -> InstructionError {
    let upper = keyword.to_ascii_uppercase();
    let message = if allowed.is_empty() {
        format!("Unknown flag: `--{name}`; {upper} takes no flags")
    } else {
        let valid: Vec<String> = allowed.iter().map(|(n, _)| format!("`--{n}`")).collect();
        let names = allowed.iter().map(|(n, _)| *n);
        let hint = match crate::checks::closest(name, names) {
            Some(close) => format!("did you mean `--{close}`? "),
            None => String::new(),
        };
        format!(
            "Unknown flag: `--{name}`; {hint}valid flags for {upper} are {}",
            valid.join(", ")
        )
    };
    InstructionError::new(line, message)
}
