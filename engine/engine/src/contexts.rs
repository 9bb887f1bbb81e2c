//! Named build contexts (`--build-context NAME=VALUE`): a directory served
//! as a `local://` source, an image reference, or an image of an OCI image
//! layout directory, which is read into the store before conversion.

use crate::backend::LocalDir;
use crate::build::{BuildError, read_ignore_file};
use std::collections::BTreeMap;
use std::path::PathBuf;
use strata_dockerfile::convert::NamedContext;
use strata_llb::{Digest, Platform};
use strata_registry::layout::{LayoutSelector, import_layout};
use strata_store::Store;

/// What one `--build-context` value stands for.
enum Value {
    Dir(PathBuf),
    Image(String),
    OciLayout(PathBuf, LayoutSelector),
}

/// Splits `DIR[:TAG][@sha256:DIGEST]` of an `oci-layout://` value. A colon
/// counts as a tag only in the last path component.
fn parse_layout(name: &str, value: &str, rest: &str) -> Result<Value, BuildError> {
    let invalid = |why: &str| {
        BuildError::Input(format!(
            "Invalid build context `{name}={value}`: {why}; write `oci-layout://DIR[:TAG][@sha256:DIGEST]`"
        ))
    };
    let (path, selector) = match rest.rsplit_once('@') {
        Some((path, digest)) => {
            let digest: Digest = digest
                .parse()
                .map_err(|_| invalid(&format!("`{digest}` is not a sha256 digest")))?;
            (path, LayoutSelector::Digest(digest))
        }
        None => {
            let last = rest.rsplit('/').next().unwrap_or(rest);
            match last.rsplit_once(':') {
                Some((_, tag)) if !tag.is_empty() => (
                    &rest[..rest.len() - tag.len() - 1],
                    LayoutSelector::Tag(tag.to_string()),
                ),
                _ => (rest, LayoutSelector::Only),
            }
        }
    };
    if path.is_empty() {
        return Err(invalid("the directory is missing"));
    }
    let dir = PathBuf::from(path);
    if !dir.is_dir() {
        return Err(BuildError::Input(format!(
            "Build context `{name}` names `{path}`, which is not a directory: pass the directory \
             of an OCI image layout"
        )));
    }
    Ok(Value::OciLayout(dir, selector))
}

/// Returns the store name of a layout context's image: one per directory
/// and selector, so two layouts never replace each other.
fn layout_image_name(dir: &std::path::Path, selector: &LayoutSelector) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let key = format!("{}\0{selector:?}", dir.display());
    let hash = Digest::of_bytes(key.as_bytes());
    // Stored under its normalized name, which the image resolver looks up.
    let name = format!("strata-oci-layout/{}:latest", &hash.hex()[..24]);
    strata_dockerfile::convert::normalize_reference(&name).unwrap_or(name)
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
    if let Some(rest) = value.strip_prefix("oci-layout://") {
        return parse_layout(name, value, rest);
    }
    if let Some((scheme, _)) = value.split_once("://") {
        return Err(BuildError::Input(format!(
            "Build context `{name}={value}` uses `{scheme}://`, which Strata does not read: \
             pass a directory, `docker-image://REF` or `oci-layout://DIR`"
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

/// The named contexts as the Dockerfile conversion takes them. Images of
/// OCI layouts are read into `store` for `platform` here.
pub(crate) fn parse_all(
    contexts: &BTreeMap<String, String>,
    store: &Store,
    platform: &Platform,
) -> Result<BTreeMap<String, NamedContext>, BuildError> {
    contexts
        .iter()
        .map(|(name, value)| {
            let context = match parse(name, value)? {
                Value::Dir(_) => NamedContext::Local {
                    source: source_name(name),
                },
                Value::Image(reference) => NamedContext::Image(reference),
                Value::OciLayout(dir, selector) => {
                    let image = layout_image_name(&dir, &selector);
                    import_layout(store, &dir, &selector, platform, &image)
                        .map_err(|e| BuildError::Input(format!("Build context `{name}`: {e:#}")))?;
                    NamedContext::Image(image)
                }
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
