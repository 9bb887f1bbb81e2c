//! The op kinds of the graph, modelled on BuildKit's `pb.Op` with the same
//! option names so a reader who knows BuildKit finds each field.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a vertex computes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Source(SourceOp),
    Exec(ExecOp),
    File(FileOp),
    Merge(MergeOp),
}

impl Op {
    /// Returns a short kind name: `source`, `exec`, `file` or `merge`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Source(_) => "source",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
            Op::Merge(_) => "merge",
        }
    }
}

/// A filesystem that comes from outside the graph.
///
/// Identifiers use BuildKit's schemes: `docker-image://REF[@DIGEST]`,
/// `local://NAME` (a build context), `git://`, `https://`,
/// `oci-layout://`. Attributes carry scheme-specific options such as
/// `local.followpaths` (a JSON array of paths) and
/// `local.excludepatterns` (a JSON array of `.dockerignore` patterns).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceOp {
    pub identifier: String,
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

impl SourceOp {
    pub const LOCAL_FOLLOW_PATHS: &'static str = "local.followpaths";
    pub const LOCAL_EXCLUDE_PATTERNS: &'static str = "local.excludepatterns";
    pub const LOCAL_SHARED_KEY: &'static str = "local.sharedkeyhint";

    /// Splits the identifier into scheme and the rest.
    pub fn scheme(&self) -> (&str, &str) {
        self.identifier
            .split_once("://")
            .unwrap_or(("", &self.identifier))
    }
}

/// Runs a process in a container whose filesystems are given by `mounts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    pub meta: ExecMeta,
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub network: NetMode,
    #[serde(default)]
    pub security: SecurityMode,
    /// Secrets exposed as environment variables, BuildKit's `secretenv`.
    /// Only ids are stored: the worker reads values from the build request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<SecretEnv>,
}

/// An environment variable whose value is the secret `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEnv {
    pub id: String,
    pub name: String,
    /// Leave the variable unset, rather than fail, when no value is given.
    #[serde(default)]
    pub optional: bool,
}

/// The process an [`ExecOp`] runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecMeta {
    pub args: Vec<String>,
    /// `KEY=value` entries, in order.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default = "default_cwd")]
    pub cwd: String,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty means root.
    #[serde(default)]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Extra `/etc/hosts` entries as `(host, ip)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<(String, String)>,
    /// `KEY=value` proxy variables (`HTTP_PROXY` and friends) from build
    /// args, added to the environment. Like BuildKit's `ProxyEnv` they stay
    /// out of the digest, so a changed proxy does not change cache keys,
    /// and out of every serialised definition.
    #[serde(skip)]
    pub proxy_env: Vec<String>,
}

fn default_cwd() -> String {
    "/".into()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetMode {
    /// Share the host's network namespace (BuildKit's default when the
    /// daemon runs with host networking).
    #[default]
    Host,
    /// A fresh network namespace with only loopback.
    None,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityMode {
    #[default]
    Sandbox,
    Insecure,
}

/// A filesystem mounted into an exec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Index into the vertex's inputs, or `None` for an empty directory.
    pub input: Option<u32>,
    /// Path inside the input to mount instead of its root.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    pub dest: String,
    /// Which output of the vertex this mount's final state becomes, or
    /// `None` when changes are thrown away.
    pub output: Option<u32>,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default)]
    pub kind: MountKind,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum MountKind {
    #[default]
    Bind,
    Cache {
        id: String,
        sharing: CacheSharing,
    },
    Tmpfs {
        #[serde(default)]
        size: Option<u64>,
    },
    Secret {
        id: String,
        #[serde(default)]
        optional: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
    Ssh {
        id: String,
        #[serde(default)]
        optional: bool,
        uid: u32,
        gid: u32,
        mode: u32,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// A sequence of filesystem actions applied in order, starting from input
/// `base` (or an empty filesystem when `base` is `None`). Its single output
/// is the state after the last action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    pub base: Option<u32>,
    pub actions: Vec<FileAction>,
}

/// Owner of a created file: user and group as names or numeric ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChownOpt {
    pub user: UserOpt,
    #[serde(default)]
    pub group: Option<UserOpt>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserOpt {
    Id(u32),
    /// A name looked up in the destination's `/etc/passwd` or `/etc/group`.
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum FileAction {
    Mkdir {
        path: String,
        mode: u32,
        make_parents: bool,
        #[serde(default)]
        owner: Option<ChownOpt>,
        /// Modification time in seconds since the Unix epoch.
        #[serde(default)]
        timestamp: Option<i64>,
    },
    Mkfile {
        path: String,
        mode: u32,
        data: Vec<u8>,
        #[serde(default)]
        owner: Option<ChownOpt>,
        #[serde(default)]
        timestamp: Option<i64>,
    },
    Rm {
        path: String,
        allow_not_found: bool,
        allow_wildcard: bool,
    },
    Copy(CopyAction),
}

/// Copies `src` from input `src_input` to `dest` in the base, with
/// BuildKit's `FileActionCopy` options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Index into the vertex's inputs; `None` reads from an empty
    /// filesystem.
    pub src_input: Option<u32>,
    pub src: String,
    pub dest: String,
    #[serde(default)]
    pub owner: Option<ChownOpt>,
    /// Mode for every copied file, as octal bits; `None` keeps the source's.
    #[serde(default)]
    pub mode: Option<u32>,
    /// Symbolic or octal mode text such as `u+x` or `0755` applied per file
    /// when `mode` cannot express it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_text: Option<String>,
    #[serde(default)]
    pub follow_symlink: bool,
    /// Copy the contents of a source directory, not the directory itself.
    #[serde(default)]
    pub dir_contents_only: bool,
    /// Unpack a source that is a tar archive (Dockerfile `ADD`).
    #[serde(default)]
    pub attempt_unpack: bool,
    #[serde(default)]
    pub create_dest_path: bool,
    #[serde(default)]
    pub allow_wildcard: bool,
    #[serde(default)]
    pub allow_empty_wildcard: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_patterns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_patterns: Vec<String>,
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Keep the source's relative parent directories (`COPY --parents`).
    #[serde(default)]
    pub parents: bool,
}

impl CopyAction {
    /// A copy with every option at its default.
    pub fn new(src_input: Option<u32>, src: impl Into<String>, dest: impl Into<String>) -> Self {
        CopyAction {
            src_input,
            src: src.into(),
            dest: dest.into(),
            owner: None,
            mode: None,
            mode_text: None,
            follow_symlink: false,
            dir_contents_only: false,
            attempt_unpack: false,
            create_dest_path: false,
            allow_wildcard: false,
            allow_empty_wildcard: false,
            include_patterns: Vec::new(),
            exclude_patterns: Vec::new(),
            timestamp: None,
            parents: false,
        }
    }
}

/// Layers the inputs' filesystems on top of each other, later inputs
/// winning, as BuildKit's `MergeOp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeOp {
    /// Indexes into the vertex's inputs, bottom first.
    pub inputs: Vec<u32>,
}
