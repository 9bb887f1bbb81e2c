//! Opening a project folder: its Dockerfiles, their stages with the
//! comments above them, build arguments with defaults, and parser warnings.
//! The shapes match `ui/server`'s `/api/projects/open`.
//!
//! NOTE: this module repeats `ui/server`'s code for the same job; both
//! should move into one shared crate so the two front ends cannot drift.

use crate::error::{CommandError, CommandResult};
use serde::Serialize;
use std::path::{Path, PathBuf};
use strata_dockerfile::instructions::{self, Instruction};

#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub path: String,
    pub name: String,
    pub dockerfiles: Vec<DockerfileInfo>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DockerfileInfo {
    /// Path relative to the project folder.
    pub path: String,
    pub text: String,
    pub stages: Vec<StageInfo>,
    pub args: Vec<ArgInfo>,
    pub warnings: Vec<LineWarning>,
    /// Set when the file cannot be read or parsed; stages and args are
    /// then empty.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StageInfo {
    pub index: usize,
    pub name: Option<String>,
    pub base: String,
    pub line: usize,
    /// The comment lines right above the `FROM`, without `#`.
    pub description: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ArgInfo {
    pub name: String,
    pub default: Option<String>,
    /// Index of the declaring stage, or `None` for an ARG before the first
    /// FROM.
    pub stage: Option<usize>,
    pub line: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct LineWarning {
    pub line: usize,
    pub message: String,
}

/// Maximum number of Dockerfiles listed for one project.
const MAX_DOCKERFILES: usize = 50;
/// Folder levels below the project searched for Dockerfiles.
const MAX_DEPTH: usize = 2;

/// Reads a project folder, which must be an absolute path.
pub fn open(path: &Path) -> CommandResult<Project> {
    if !path.is_absolute() {
        return Err(CommandError::user_input(format!(
            "Folder path `{}` is not absolute: give the full path",
            path.display()
        )));
    }
    let path = path.canonicalize().map_err(|e| {
        CommandError::user_input(format!("Cannot open folder `{}`: {e}", path.display()))
    })?;
    if !path.is_dir() {
        return Err(CommandError::user_input(format!(
            "`{}` is not a folder: choose the folder that contains the Dockerfile",
            path.display()
        )));
    }

    let mut files = Vec::new();
    find_dockerfiles(&path, &path, 0, &mut files);
    files.sort();
    files.truncate(MAX_DOCKERFILES);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(Project {
        path: path.display().to_string(),
        name,
        dockerfiles: files.iter().map(|file| describe(&path, file)).collect(),
    })
}

fn is_dockerfile(name: &str) -> bool {
    name == "Dockerfile"
        || name == "Containerfile"
        || name.starts_with("Dockerfile.")
        || name.ends_with(".Dockerfile")
}

/// Collects Dockerfiles, skipping hidden folders and `node_modules`.
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
        } else if kind.is_dir()
            && depth < MAX_DEPTH
            && !name.starts_with('.')
            && name != "node_modules"
        {
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

    for warning in &ast.warnings {
        let message = format!("{} {}", warning.message, warning.detail);
        info.warnings.push(LineWarning {
            line: warning.line,
            message: message.trim().to_string(),
        });
    }
    let lines: Vec<&str> = info.text.lines().collect();
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

/// Returns the block of `#` lines directly above 1-based `line`, without
/// parser directives.
fn comment_above(lines: &[&str], line: usize) -> String {
    let mut collected = Vec::new();
    let mut index = line.saturating_sub(1);
    while index > 0 {
        let Some(comment) = lines[index - 1].trim().strip_prefix('#') else {
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
