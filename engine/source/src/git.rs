//! Git sources for `ADD REPO`: the repository cloned with the `git`
//! binary, checked out at a ref, and one directory of it stored as a
//! snapshot.
//!
//! The identifier is `git://REMOTE#REF:SUBDIR` as BuildKit writes it; the
//! `git.fullurl` attribute carries the remote exactly as the user wrote it
//! (`https://…`, `git@…`, `file://…`) and `git.keepgitdir` keeps `.git`.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use strata_llb::{Digest, SourceOp};
use strata_solver::{ResultRef, SourceResult};
use strata_store::{SnapshotKind, Store};

pub const GIT_FULL_URL: &str = "git.fullurl";
pub const GIT_KEEP_DIR: &str = "git.keepgitdir";

/// A parsed `REMOTE#REF:SUBDIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRef {
    pub remote: String,
    pub reference: Option<String>,
    pub subdir: Option<String>,
}

impl GitRef {
    /// Splits `REMOTE#REF:SUBDIR`; both parts after `#` are optional.
    pub fn parse(text: &str) -> GitRef {
        let (remote, fragment) = match text.split_once('#') {
            Some((remote, fragment)) => (remote, Some(fragment)),
            None => (text, None),
        };
        let (reference, subdir) = match fragment {
            Some(fragment) => match fragment.split_once(':') {
                Some((r, s)) => (r, Some(s)),
                None => (fragment, None),
            },
            None => ("", None),
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        GitRef {
            remote: remote.to_string(),
            reference: non_empty(reference),
            subdir: subdir.and_then(|s| non_empty(s.trim_matches('/'))),
        }
    }
}

/// Whether an ADD source names a git repository, as BuildKit decides:
/// `git://`, `git@host:`, or an `http(s)://` URL whose path ends in `.git`.
pub fn is_git_url(text: &str) -> bool {
    let remote = text.split('#').next().unwrap_or(text);
    if remote.starts_with("git://") || remote.starts_with("git@") {
        return true;
    }
    (remote.starts_with("https://") || remote.starts_with("http://"))
        && remote.trim_end_matches('/').ends_with(".git")
}

/// Clones the repository of `op` and stores the checked-out tree.
pub fn load_git(store: &Store, op: &SourceOp) -> Result<SourceResult> {
    let (_, rest) = op.scheme();
    let parsed = GitRef::parse(rest);
    let remote = op
        .attrs
        .get(GIT_FULL_URL)
        .cloned()
        .unwrap_or_else(|| parsed.remote.clone());
    let keep_git_dir = op.attrs.get(GIT_KEEP_DIR).is_some_and(|v| v == "true");
    let work = tempfile::Builder::new()
        .prefix("git-")
        .tempdir_in(store.root())
        .context("Failed to create a directory for a git clone")?;
    let checkout = work.path().join("repo");
    git(
        None,
        &["clone", "--quiet", "--no-checkout", "--", &remote],
        Some(&checkout),
    )
    .with_context(|| format!("Failed to clone `{remote}`"))?;
    let commit = resolve_ref(&checkout, parsed.reference.as_deref())
        .with_context(|| format!("Failed to find ref in `{remote}`"))?;
    git(
        Some(&checkout),
        &["checkout", "--quiet", "--detach", &commit],
        None,
    )?;
    git(
        Some(&checkout),
        &["submodule", "update", "--init", "--recursive", "--quiet"],
        None,
    )?;
    if !keep_git_dir {
        std::fs::remove_dir_all(checkout.join(".git"))?;
    }
    let tree = match &parsed.subdir {
        Some(subdir) => {
            let path = checkout.join(subdir);
            let inside = std::fs::canonicalize(&path)
                .ok()
                .filter(|p| p.starts_with(&checkout) && p.is_dir());
            match inside {
                Some(path) => path,
                None => bail!(
                    "Directory `{subdir}` does not exist in `{remote}` at `{commit}`: fix the part after `:` in the URL"
                ),
            }
        }
        None => checkout.clone(),
    };
    let active = store.prepare(None, SnapshotKind::Regular)?;
    let copied = Command::new("cp")
        .arg("-a")
        .arg(tree.join("."))
        .arg(&active.upper)
        .status();
    if !copied.is_ok_and(|s| s.success()) {
        let _ = store.abort(active);
        bail!("Failed to copy the checkout of `{remote}` into a snapshot");
    }
    let id = store.commit(active)?;
    let identity = serde_json::json!({
        "git": commit,
        "subdir": parsed.subdir,
        "keep_git_dir": keep_git_dir,
    });
    Ok(SourceResult {
        key: Digest::of_bytes(identity.to_string().as_bytes()),
        result: ResultRef::snapshot(id),
    })
}

/// Finds the commit a ref names: a commit id, tag, or branch of the
/// remote; `HEAD` when no ref is given.
fn resolve_ref(checkout: &Path, reference: Option<&str>) -> Result<String> {
    let reference = reference.unwrap_or("HEAD");
    let candidates = [
        format!("refs/remotes/origin/{reference}^{{commit}}"),
        format!("refs/tags/{reference}^{{commit}}"),
        format!("{reference}^{{commit}}"),
    ];
    for candidate in &candidates {
        if let Ok(commit) = git(
            Some(checkout),
            &["rev-parse", "--verify", "--quiet", candidate],
            None,
        ) {
            return Ok(commit.trim().to_string());
        }
    }
    bail!(
        "Ref `{reference}` is neither a branch, a tag nor a commit: fix the part after `#` in the URL"
    )
}

/// Runs `git` and returns its standard output; an error carries stderr.
fn git(dir: Option<&Path>, args: &[&str], last: Option<&Path>) -> Result<String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    command.args(args);
    if let Some(last) = last {
        command.arg(last);
    }
    // Never ask for credentials on a terminal the build does not own.
    command.env("GIT_TERMINAL_PROMPT", "0");
    let output = command
        .output()
        .context("Failed to run `git`: install git")?;
    if !output.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fragments() {
        let r = GitRef::parse("https://h/r.git#v1:sub/dir/");
        assert_eq!(r.remote, "https://h/r.git");
        assert_eq!(r.reference.as_deref(), Some("v1"));
        assert_eq!(r.subdir.as_deref(), Some("sub/dir"));
        let r = GitRef::parse("git@h:r.git");
        assert_eq!((r.reference, r.subdir), (None, None));
        let r = GitRef::parse("file:///r.git#:docs");
        assert_eq!(r.reference, None);
        assert_eq!(r.subdir.as_deref(), Some("docs"));
    }

    #[test]
    fn detects_git_urls() {
        assert!(is_git_url("https://example.com/repo.git#main"));
        assert!(is_git_url("git@example.com:repo.git"));
        assert!(is_git_url("git://example.com/repo"));
        assert!(!is_git_url("https://example.com/file.tar.gz"));
    }
}
