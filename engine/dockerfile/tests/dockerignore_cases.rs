//! `.dockerignore` tests: every row of `tests/cases/dockerignore/cases.tsv`
//! and the exclude-pattern tree cases of `context-cases.md`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use strata_dockerfile::dockerignore::DockerIgnore;

#[test]
fn cases_tsv_rows() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases/dockerignore/cases.tsv");
    let text = fs::read_to_string(&path).expect("cases.tsv is readable");
    let rows: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .skip(1)
        .collect();
    assert!(rows.len() > 100, "expected the cases.tsv rows");

    let mut failures = Vec::new();
    for row in rows {
        let fields: Vec<&str> = row.split('\t').collect();
        let (id, lines, path, expected) = (fields[0], fields[1], fields[2], fields[3]);
        let lines: Vec<String> = serde_json::from_str(lines).expect("lines column is JSON");
        let result = DockerIgnore::parse(&lines.join("\n"));
        let outcome = match &result {
            Err(_) => "error".to_string(),
            Ok(ignore) => ignore.is_excluded(path).to_string(),
        };
        if outcome != expected {
            failures.push(format!(
                "{id}: {lines:?} on `{path}`: got {outcome}, expected {expected}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn patterns_are_normalised() {
    let ignore = DockerIgnore::parse(
        "\u{feff}/foo/bar/\n# comment\n  #not/./comment  \n\n!  ./keep//me/\n**/\n",
    )
    .unwrap();
    assert_eq!(
        ignore.patterns(),
        ["foo/bar", "#not/comment", "!keep/me", "**"].map(String::from)
    );
}

#[test]
fn invalid_pattern_names_its_line() {
    let error = DockerIgnore::parse("ok\n\n# comment\na[\n").unwrap_err();
    assert_eq!(error.line, 4);
    assert_eq!(error.pattern, "a[");
    assert!(
        error
            .to_string()
            .starts_with(".dockerignore:4: invalid pattern `a[`"),
        "{error}"
    );
}

#[test]
fn lone_exception_is_rejected() {
    let error = DockerIgnore::parse("foo\n! \n").unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.to_string().contains("`!`"), "{error}");
}

#[test]
fn may_include_under_directories() {
    let ignore = DockerIgnore::parse("vendor\nnode_modules\n!vendor/keep/*.go\n!*.md\n").unwrap();
    assert!(ignore.may_include_under("vendor"));
    assert!(ignore.may_include_under("vendor/keep"));
    assert!(!ignore.may_include_under("vendor/other"));
    assert!(!ignore.may_include_under("node_modules"));

    let anywhere = DockerIgnore::parse("build\n!**/keep\n").unwrap();
    assert!(anywhere.may_include_under("build"));

    let scoped = DockerIgnore::parse("*\n!src/**/keep\n").unwrap();
    assert!(scoped.may_include_under("src"));
    assert!(!scoped.may_include_under("target"));
}

/// An in-memory context tree: path → (is a directory, readable).
struct Tree(BTreeMap<String, (bool, bool)>);

impl Tree {
    /// Builds a tree from `d path` / `f path` entries; `u path` is an
    /// unreadable directory.
    fn new(entries: &[&str]) -> Tree {
        let mut map = BTreeMap::new();
        for entry in entries {
            let (kind, path) = entry.split_once(' ').unwrap();
            map.insert(path.to_string(), (kind != "f", kind != "u"));
            // Parent directories are implied.
            let mut parent = path;
            while let Some((dir, _)) = parent.rsplit_once('/') {
                map.entry(dir.to_string()).or_insert((true, true));
                parent = dir;
            }
        }
        Tree(map)
    }

    fn children(&self, dir: &str) -> Result<Vec<(String, bool)>, String> {
        if !dir.is_empty() && !self.0[dir].1 {
            return Err(format!("open {dir}: permission denied"));
        }
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        Ok(self
            .0
            .iter()
            .filter(|(path, _)| path.starts_with(&prefix) && !path[prefix.len()..].contains('/'))
            .map(|(path, (is_dir, _))| (path.clone(), *is_dir))
            .collect())
    }
}

/// Walks `tree` the way a build-context walker should: excluded directories
/// are entered only when `may_include_under` reports that an exception could keep
/// something below them, and an excluded directory is emitted only when it
/// holds a kept entry.
///
/// NOTE: an excluded directory that cannot be read is treated as empty, as
/// fsutil's walker succeeds on it; only kept directories must be readable.
fn walk(tree: &Tree, ignore: &DockerIgnore) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    walk_dir(tree, ignore, "", &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn walk_dir(
    tree: &Tree,
    ignore: &DockerIgnore,
    dir: &str,
    pending: &mut Vec<String>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    for (path, is_dir) in tree.children(dir)? {
        let excluded = ignore.is_excluded(&path);
        if !excluded {
            out.append(pending);
        }
        if !is_dir {
            if !excluded {
                out.push(format!("file {path}"));
            }
            continue;
        }
        if excluded && !ignore.may_include_under(&path) {
            continue;
        }

        let depth = pending.len();
        if excluded {
            pending.push(format!("dir {path}"));
        } else {
            out.push(format!("dir {path}"));
        }
        match walk_dir(tree, ignore, &path, pending, out) {
            Err(_) if excluded => {}
            result => result?,
        }
        pending.truncate(depth);
    }
    Ok(())
}

fn walk_with(entries: &[&str], patterns: &str) -> Result<Vec<String>, String> {
    let ignore = DockerIgnore::parse(patterns).map_err(|e| e.to_string())?;
    walk(&Tree::new(entries), &ignore)
}

#[test]
fn ctx01_exclude_with_exception() {
    let tree = [
        "f Dockerfile",
        "f foo",
        "f bar",
        "f baz",
        "f bay",
        "f .dockerignore",
    ];
    let walked = walk_with(&tree, "\nba*\nDockerfile\n!bay\n.dockerignore\n").unwrap();
    assert_eq!(walked, ["file bay", "file foo"]);
}

#[test]
fn ctx02_lone_exception_fails() {
    assert!(DockerIgnore::parse("!").is_err());
}

#[test]
fn ctx04_reinclude_inside_excluded_dir() {
    let tree = ["f bar", "d foo", "f foo/bar2", "f foo2"];
    let walked = walk_with(&tree, "foo*\n!foo/bar2\n").unwrap();
    assert_eq!(walked, ["file bar", "dir foo", "file foo/bar2"]);
}

#[test]
fn ctx05_nested_exceptions() {
    let tree = ["f foo/bar/baz/x", "f foo/bar/baz/y"];
    let walked = walk_with(&tree, "foo\n!foo/bar\nfoo/bar/baz\n!foo/bar/baz/x\n").unwrap();
    assert!(
        walked.contains(&"file foo/bar/baz/x".to_string()),
        "{walked:?}"
    );
    assert!(
        !walked.contains(&"file foo/bar/baz/y".to_string()),
        "{walked:?}"
    );
}

#[test]
fn ctx06_exclude_dir_keep_child() {
    let walked = walk_with(&["d foo", "f foo/bar"], "foo\n!foo/bar\n").unwrap();
    assert_eq!(walked, ["dir foo", "file foo/bar"]);
}

#[test]
fn ctx09_unreadable_excluded_dir() {
    let tree = ["d foo", "u foo/bar"];

    let error = walk_with(&tree, "").unwrap_err();
    assert!(error.contains("permission denied"), "{error}");

    assert_eq!(walk_with(&tree, "**/bar\n").unwrap(), ["dir foo"]);
    assert_eq!(
        walk_with(&tree, "**/bar\n!foo/bar/baz\n").unwrap(),
        ["dir foo"]
    );

    let error = walk_with(&tree, "**/bar\n!foo/bar\n").unwrap_err();
    assert!(error.contains("permission denied"), "{error}");
}
