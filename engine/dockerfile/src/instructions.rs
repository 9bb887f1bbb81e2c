//! Typed Dockerfile instructions built from parse-tree nodes, with the
//! argument checks of BuildKit's `instructions` package.
//!
//! Values stay as written: variables are expanded later by the converter,
//! which knows the ENV and ARG scope of each instruction.

mod flags;
mod healthcheck;
mod mount;
mod parse;

pub use healthcheck::parse_duration;
pub use mount::{MountType, RunMount, parse_mount};
pub(crate) use parse::heredoc_word;
pub use parse::parse;

use crate::ast::Heredoc;
use strata_llb::image::Healthcheck;

/// Every instruction keyword, uppercase, in the order the reference lists
/// them.
pub const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// One Dockerfile instruction with its arguments unexpanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    From(From),
    Arg(Vec<ArgDeclaration>),
    Env(Vec<KeyValue>),
    Run(Run),
    Copy(Copy),
    Workdir(String),
    User(String),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Label(Vec<KeyValue>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Shell(Vec<String>),
    Healthcheck(Healthcheck),
    /// The trigger text, such as `RUN make`, stored verbatim in the image.
    OnBuild(String),
    Maintainer(String),
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From {
    pub image: String,
    /// The stage name, lowercased as BuildKit stores it.
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// One `name[=default]` word of an ARG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgDeclaration {
    pub key: String,
    pub value: Option<String>,
}

/// One `key=value` pair of ENV or LABEL, both sides still quoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// The command of RUN, CMD or ENTRYPOINT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandLine {
    /// Text run through the SHELL, as written.
    Shell(String),
    /// JSON form: the arguments exactly as given.
    Exec(Vec<String>),
}

/// `RUN [--mount=...] [--network=...] [--security=...] COMMAND`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

/// COPY or ADD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// True for ADD, which also unpacks archives and fetches URLs.
    pub add: bool,
    pub sources: Vec<CopySource>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub unpack: Option<bool>,
}

/// A COPY or ADD source: a path (or URL) or an inline here-document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopySource {
    Path(String),
    Heredoc(Heredoc),
}

/// A rejected instruction: the message and the node's first line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InstructionError {
    pub message: String,
    pub line: usize,
}

impl InstructionError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> InstructionError {
        InstructionError {
            message: message.into(),
            line,
        }
    }
}
