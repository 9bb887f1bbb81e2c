//! Opening a project folder: its Dockerfiles, their stages with the
//! comments that describe them, build arguments with defaults, and parser
//! warnings on their lines.

use crate::error::ApiError;
use serde::Serialize;
use std::path::{Path, PathBuf};
use strata_dockerfile::instructions::{self, Instruction};

#[derive(Debug, Serialize)]
pub struct Project {
    pub path: String,
    pub name: String,
    pub dockerfiles: Vec<DockerfileInfo>,
}

#[derive(Debug, Serialize)]
pub struct DockerfileInfo {
    /// Path relative to the project folder.
    pub path: String,
    pub text: String,
    pub stages: Vec<StageInfo>,
    pub args: Vec<ArgInfo>,
    pub warnings: Vec<LineWarning>,
    /// Set when the file does not parse; stages and args are then empty.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StageInfo {
    pub index: usize,
    pub name: Option<String>,
    pub base: String,
    pub line: usize,
    /// The comment lines right above the `FROM`, without `#`.
    pub description: String,
}

#[derive(Debug, Serialize)]
pub struct ArgInfo {
    pub name: String,
    pub default: Option<String>,
    /// The stage declaring it, or `None` for an ARG before the first FROM.
    pub stage: Option<usize>,
    pub line: usize,
}

#[derive(Debug, Serialize)]
pub struct LineWarning {
    pub line: usize,
    pub message: String,
}

/// Most Dockerfiles a project lists; deeper trees are cut off here.
const MAX_DOCKERFILES: usize = 50;

/// Reads a project folder.
pub fn open(path: &Path) -> Result<Project, ApiError> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        ApiError::not_found(format!("Cannot open folder `{}`: {e}", path.display()))
    })?;
    if !metadata.is_dir() {
        return Err(ApiError::bad_request(format!(
            "`{}` is not a folder: choose the folder that contains the Dockerfile",
            path.display()
        )));
    }
    let mut files = Vec::new();
    find_dockerfiles(path, path, 0, &mut files);
    files.sort();
    files.truncate(MAX_DOCKERFILES);
    let dockerfiles = files
        .iter()
        .map(|file| describe(path, file))
        .collect::<Vec<_>>();
    Ok(Project {
        path: path.display().to_string(),
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        dockerfiles,
    })
}

fn is_dockerfile(name: &str) -> bool {
    name == "Dockerfile"
        || name == "Containerfile"
        || name.starts_with("Dockerfile.")
        || name.ends_with(".Dockerfile")
}

/// Looks two folder levels deep, skipping hidden folders and `node_modules`.
fn find_dockerfiles(root: &Path, dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_file() && is_dockerfile(&name) {
            if let Ok(relative) = entry.path().strip_prefix(root) {
                found.push(relative.to_path_buf());
            }
        } else if kind.is_dir() && depth < 2 && !name.starts_with('.') && name != "node_modules" {
            find_dockerfiles(root, &entry.path(), depth + 1, found);
        }
    }
}

fn describe(root: &Path, relative: &Path) -> DockerfileInfo {
    let mut info = DockerfileInfo {
        path: relative.display().to_string(),
        text: String::new(),
        stages: Vec::new(),
        args: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    match std::fs::read_to_string(root.join(relative)) {
        Ok(text) => info.text = text,
        Err(error) => {
            info.error = Some(format!("Cannot read `{}`: {error}", relative.display()));
            return info;
        }
    }
    let ast = match strata_dockerfile::parser::parse(&info.text) {
        Ok(ast) => ast,
        Err(error) => {
            info.error = Some(error.to_string());
            return info;
        }
    };
    let lines: Vec<&str> = info.text.lines().collect();
    for warning in &ast.warnings {
        info.warnings.push(LineWarning {
            line: warning.line,
            message: format!("{} {}", warning.message, warning.detail)
                .trim()
                .to_string(),
        });
    }
    for node in &ast.children {
        match instructions::parse(node) {
            Ok(Instruction::From(from)) => info.stages.push(StageInfo {
                index: info.stages.len(),
                name: from.name,
                base: from.image,
                line: node.start_line,
                description: comment_above(&lines, node.start_line),
            }),
            Ok(Instruction::Arg(declarations)) => {
                let stage = info.stages.len().checked_sub(1);
                for declaration in declarations {
                    info.args.push(ArgInfo {
                        name: declaration.key,
                        default: declaration.value,
                        stage,
                        line: node.start_line,
                    });
                }
            }
            Ok(_) => {}
            Err(error) => info.warnings.push(LineWarning {
                line: error.line,
                message: error.message,
            }),
        }
    }
    info
}

/// The block of `#` lines directly above 1-based `line`, parser
/// directives excluded.
fn comment_above(lines: &[&str], line: usize) -> String {
    let mut collected = Vec::new();
    let mut index = line.saturating_sub(1);
    while index > 0 {
        let text = lines[index - 1].trim();
        let Some(comment) = text.strip_prefix('#') else {
            break;
        };
        let comment = comment.trim();
        if comment.starts_with("syntax=") || comment.starts_with("escape=") {
            break;
        }
        collected.push(comment.to_string());
        index -= 1;
    }
    collected.reverse();
    collected.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_args_descriptions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "# syntax=docker/dockerfile:1\nARG BASE=busybox\n# Compiles it.\n# Twice.\nFROM $BASE AS build\nARG MODE\nRUN true\nFROM build\n",
        )
        .unwrap();
        let project = open(dir.path()).unwrap();
        let file = &project.dockerfiles[0];
        assert_eq!(file.path, "Dockerfile");
        assert_eq!(file.stages.len(), 2);
        assert_eq!(file.stages[0].name.as_deref(), Some("build"));
        assert_eq!(file.stages[0].description, "Compiles it. Twice.");
        assert_eq!(file.stages[0].line, 5);
        assert_eq!(file.stages[1].description, "");
        assert_eq!(file.args[0].name, "BASE");
        assert_eq!(file.args[0].default.as_deref(), Some("busybox"));
        assert_eq!(file.args[0].stage, None);
        assert_eq!(file.args[1].stage, Some(0));
    }

    #[test]
    fn missing_folder_is_not_found() {
        let error = open(Path::new("/nonexistent/strata-project")).unwrap_err();
        assert_eq!(error.code, "not_found");
        assert!(error.message.contains("/nonexistent/strata-project"));
    }

    #[test]
    fn broken_dockerfile_reports_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM\n").unwrap();
        let project = open(dir.path()).unwrap();
        let file = &project.dockerfiles[0];
        assert!(file.error.is_some() || !file.warnings.is_empty());
    }
}
