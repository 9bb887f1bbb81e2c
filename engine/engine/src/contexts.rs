//! Named build contexts (`--build-context NAME=VALUE`): a directory served
//! as a `local://` source, or an image reference.

use crate::backend::LocalDir;
use crate::build::{BuildError, read_ignore_file};
use std::collections::BTreeMap;
use std::path::PathBuf;
use strata_dockerfile::convert::NamedContext;

/// What one `--build-context` value stands for.
enum Value {
    Dir(PathBuf),
    Image(String),
}

/// The `local://` source name of the directory context `name`; it cannot
/// clash with the main context, which is `local://context`.
fn source_name(name: &str) -> String {
    format!("named-context/{name}")
}

fn parse(name: &str, value: &str) -> Result<Value, BuildError> {
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c));
    if !valid_name {
        return Err(BuildError::Input(format!(
            "Invalid build context name `{name}`: use letters, digits, `-`, `_`, `.`, `/` and `:`"
        )));
    }
    if let Some(reference) = value.strip_prefix("docker-image://") {
        if reference.is_empty() {
            return Err(BuildError::Input(format!(
                "Invalid build context `{name}={value}`: write an image reference after `docker-image://`"
            )));
        }
        return Ok(Value::Image(reference.to_string()));
    }
    if let Some((scheme, _)) = value.split_once("://") {
        return Err(BuildError::Input(format!(
            "Build context `{name}={value}` uses `{scheme}://`, which Strata does not read: \
             pass a directory or `docker-image://REF`"
        )));
    }
    let dir = PathBuf::from(value);
    if !dir.is_dir() {
        return Err(BuildError::Input(format!(
            "Build context `{name}` names `{value}`, which is not a directory: pass an existing \
             directory or `docker-image://REF`"
        )));
    }
    Ok(Value::Dir(dir))
}

/// The named contexts as the Dockerfile conversion takes them.
pub(crate) fn parse_all(
    contexts: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, NamedContext>, BuildError> {
    contexts
        .iter()
        .map(|(name, value)| {
            let context = match parse(name, value)? {
                Value::Dir(_) => NamedContext::Local {
                    source: source_name(name),
                },
                Value::Image(reference) => NamedContext::Image(reference),
            };
            Ok((name.clone(), context))
        })
        .collect()
}

/// The directories of named contexts, each with its own `.dockerignore`.
pub(crate) fn local_dirs(contexts: &BTreeMap<String, String>) -> Result<Vec<LocalDir>, BuildError> {
    let mut dirs = Vec::new();
    for (name, value) in contexts {
        if let Value::Dir(dir) = parse(name, value)? {
            let ignore = read_ignore_file(&dir.join(".dockerignore"))?.unwrap_or_default();
            dirs.push(LocalDir {
                name: source_name(name),
                dir,
                ignore,
                changes: None,
            });
        }
    }
    Ok(dirs)
}
