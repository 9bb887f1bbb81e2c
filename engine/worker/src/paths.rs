//! Path resolution inside a root directory, wildcard expansion and
//! include/exclude patterns.
//!
//! Every path an op names is resolved as if `root` were `/`: symlinks are
//! followed, but an absolute target or a `..` that climbs past the top
//! lands back inside the root, as a chroot would resolve it.

use anyhow::{Result, bail};
use regex::Regex;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Maximum number of symlinks followed in one resolution, as Linux's
/// `MAXSYMLINKS`.
const MAX_SYMLINKS: usize = 40;

/// Resolves `path` inside `root` and returns the host path.
///
/// Symlinks in the parent components are always followed; the last
/// component is followed only when `follow_last` is set. Components that do
/// not exist are appended as they are.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    let mut pending: Vec<OsString> = components_of(Path::new(path));
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links_followed = 0;

    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = join_components(root, &resolved).join(&name);
        let is_last = pending.is_empty();
        let metadata = match std::fs::symlink_metadata(&candidate) {
            Ok(metadata) => metadata,
            Err(_) => {
                resolved.push(name);
                continue;
            }
        };
        if !metadata.file_type().is_symlink() || (is_last && !follow_last) {
            resolved.push(name);
            continue;
        }

        links_followed += 1;
        if links_followed > MAX_SYMLINKS {
            bail!(
                "Too many levels of symbolic links resolving `{path}` in `{}`",
                root.display()
            );
        }
        let target = std::fs::read_link(&candidate)?;
        if target.is_absolute() {
            resolved.clear();
        }
        let mut target_components = components_of(&target);
        target_components.reverse();
        pending.extend(target_components);
    }
    Ok(join_components(root, &resolved))
}

/// Splits a path into its normal and `..` components, dropping `/` and `.`.
fn components_of(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn join_components(root: &Path, components: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(components);
    path
}

/// Returns true when `text` contains a wildcard character of
/// `filepath.Match` syntax (`*`, `?` or `[`).
pub fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Expands a wildcard pattern such as `/src/*.txt` inside `root`, returning
/// the matching paths relative to the root with a leading `/`, sorted.
/// Parent components are resolved through symlinks inside the root.
pub fn expand_wildcard(root: &Path, pattern: &str) -> Result<Vec<String>> {
    let mut matches = vec![String::new()];
    for component in components_of(Path::new(pattern)) {
        let component = component.to_string_lossy().into_owned();
        let mut next = Vec::new();
        for base in &matches {
            if component == "**" {
                // `**` matches zero or more directories.
                next.push(base.clone());
                collect_dirs(root, base, &mut next)?;
                continue;
            }
            if component == ".." || !has_wildcard(&component) {
                next.push(format!("{base}/{component}"));
                continue;
            }
            let matcher = glob_regex(&component)?;
            let dir = resolve_in_root(root, base, true)?;
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| matcher.is_match(name))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|name| format!("{base}/{name}")));
        }
        matches = next;
    }
    matches.retain(|path| {
        resolve_in_root(root, path, false).is_ok_and(|p| p.symlink_metadata().is_ok())
    });
    matches.sort();
    matches.dedup();
    Ok(matches)
}

/// Compiles one path component of `filepath.Match` syntax to a regex.
fn glob_regex(pattern: &str) -> Result<Regex> {
    let body = glob_body(pattern, false)?;
    Ok(Regex::new(&format!("^{body}$"))?)
}

/// Translates glob syntax to regex syntax. With `across_slashes`, `**`
/// matches any number of path components, as in `.dockerignore`.
fn glob_body(pattern: &str, across_slashes: bool) -> Result<String> {
    let mut body = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if across_slashes && chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                    body.push_str("(?:.*/)?");
                } else {
                    body.push_str(".*");
                }
            }
            '*' => body.push_str("[^/]*"),
            '?' => body.push_str("[^/]"),
            '[' => {
                body.push('[');
                if chars.peek() == Some(&'^') || chars.peek() == Some(&'!') {
                    chars.next();
                    body.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        body.push('\\');
                    }
                    body.push(c);
                }
                if !closed {
                    bail!("Invalid pattern `{pattern}`: `[` has no closing `]`");
                }
                body.push(']');
            }
            '\\' => {
                let escaped = chars.next().unwrap_or('\\');
                body.push_str(&regex::escape(&escaped.to_string()));
            }
            c => body.push_str(&regex::escape(&c.to_string())),
        }
    }
    Ok(body)
}

/// Include and exclude patterns of `.dockerignore` syntax, matched against
/// paths relative to the copied source.
#[derive(Debug, Default)]
pub struct PathFilter {
    includes: Vec<Regex>,
    /// Include-pattern prefixes, so a directory that may hold a match is
    /// walked into.
    include_dirs: Vec<Regex>,
    excludes: Vec<(Regex, bool)>,
}

impl PathFilter {
    pub fn new(includes: &[String], excludes: &[String]) -> Result<PathFilter> {
        let mut filter = PathFilter::default();
        for pattern in includes {
            let pattern = clean_pattern(pattern);
            filter.includes.push(Regex::new(&format!(
                "^{}(?:/.*)?$",
                glob_body(&pattern, true)?
            ))?);
            let parts: Vec<&str> = pattern.split('/').collect();
            for end in 1..parts.len() {
                let prefix = parts[..end].join("/");
                filter
                    .include_dirs
                    .push(Regex::new(&format!("^{}$", glob_body(&prefix, true)?))?);
            }
        }
        for pattern in excludes {
            let (negated, pattern) = match pattern.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, pattern.as_str()),
            };
            let pattern = clean_pattern(pattern);
            let regex = Regex::new(&format!("^{}(?:/.*)?$", glob_body(&pattern, true)?))?;
            filter.excludes.push((regex, negated));
        }
        Ok(filter)
    }

    /// Returns whether the entry at `relative` (no leading `/`) is copied.
    pub fn includes(&self, relative: &str) -> bool {
        if !self.includes.is_empty() && !self.includes.iter().any(|r| r.is_match(relative)) {
            return false;
        }
        !self.is_excluded(relative)
    }

    /// Returns whether a directory must be walked because entries below it
    /// may be included, even when it is not included itself.
    pub fn may_contain_included(&self, relative: &str) -> bool {
        if self.includes(relative) {
            return true;
        }
        let include_ok = self.includes.is_empty()
            || self.includes.iter().any(|r| r.is_match(relative))
            || self.include_dirs.iter().any(|r| r.is_match(relative));
        // A later `!pattern` may re-include entries below an excluded
        // directory, so walk into it when any negation exists.
        include_ok && (!self.is_excluded(relative) || self.excludes.iter().any(|(_, neg)| *neg))
    }

    fn is_excluded(&self, relative: &str) -> bool {
        let mut excluded = false;
        for (regex, negated) in &self.excludes {
            if regex.is_match(relative) {
                excluded = !negated;
            }
        }
        excluded
    }
}

fn clean_pattern(pattern: &str) -> String {
    let components: Vec<&str> = pattern
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    components.join("/")
}

/// Returns the bytes of a path, for hashing.
pub fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_symlink_stays_in_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        symlink("/etc", root.path().join("link")).unwrap();
        let resolved = resolve_in_root(root.path(), "/link/passwd", true).unwrap();
        assert_eq!(resolved, root.path().join("etc/passwd"));
    }

    #[test]
    fn dotdot_stops_at_root() {
        let root = tempfile::tempdir().unwrap();
        symlink("../../../../tmp", root.path().join("up")).unwrap();
        let resolved = resolve_in_root(root.path(), "/up/x", true).unwrap();
        assert_eq!(resolved, root.path().join("tmp/x"));
        let resolved = resolve_in_root(root.path(), "../../a", true).unwrap();
        assert_eq!(resolved, root.path().join("a"));
    }

    #[test]
    fn last_link_kept_unless_followed() {
        let root = tempfile::tempdir().unwrap();
        symlink("/target", root.path().join("link")).unwrap();
        assert_eq!(
            resolve_in_root(root.path(), "link", false).unwrap(),
            root.path().join("link")
        );
        assert_eq!(
            resolve_in_root(root.path(), "link", true).unwrap(),
            root.path().join("target")
        );
    }

    #[test]
    fn symlink_loop_is_error() {
        let root = tempfile::tempdir().unwrap();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        let error = resolve_in_root(root.path(), "a/x", true).unwrap_err();
        assert!(error.to_string().contains("Too many levels"), "{error}");
    }

    #[test]
    fn wildcard_expands_sorted() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("src")).unwrap();
        for name in ["b.txt", "a.txt", "c.md"] {
            std::fs::write(root.path().join("src").join(name), "x").unwrap();
        }
        let matches = expand_wildcard(root.path(), "/src/*.txt").unwrap();
        assert_eq!(matches, vec!["/src/a.txt", "/src/b.txt"]);
        assert!(expand_wildcard(root.path(), "/nope/*").unwrap().is_empty());
    }

    #[test]
    fn filter_patterns() {
        let filter = PathFilter::new(&["src/**/*.rs".into()], &["src/gen".into()]).unwrap();
        assert!(filter.includes("src/main.rs"));
        assert!(filter.includes("src/a/b/lib.rs"));
        assert!(!filter.includes("src/gen/x.rs"));
        assert!(!filter.includes("README.md"));
        assert!(filter.may_contain_included("src"));
        assert!(!filter.may_contain_included("docs"));

        let filter = PathFilter::new(&[], &["*.log".into(), "!keep.log".into()]).unwrap();
        assert!(!filter.includes("a.log"));
        assert!(filter.includes("keep.log"));
        assert!(filter.includes("a.txt"));
    }
}

/// Appends every directory below `base` (resolved inside `root`), depth
/// first, without following symlinks to directories.
fn collect_dirs(root: &Path, base: &str, out: &mut Vec<String>) -> Result<()> {
    let dir = resolve_in_root(root, base, true)?;
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let path = format!("{base}/{name}");
        out.push(path.clone());
        collect_dirs(root, &path, out)?;
    }
    Ok(())
}

/// The part of a `COPY --parents` source before its `/./` pivot, cleaned,
/// or `/` when there is no pivot: the directories kept in the destination
/// are those below it.
pub fn parents_base(source: &str) -> String {
    // A leading `./` only marks the path as relative and is no pivot.
    let mut rest = source.trim_start_matches('/');
    while let Some(stripped) = rest.strip_prefix("./") {
        rest = stripped.trim_start_matches('/');
    }
    let source = format!("/{rest}");
    let Some(index) = source.find("/./") else {
        return "/".to_string();
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in source[..index].split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}
