//! Conversion of a parsed Dockerfile into an LLB definition and the image
//! config of the target stage, following BuildKit's `dockerfile2llb`.

mod args;
mod config;
mod copy;
mod dispatch;
mod graph;
mod mounts;
mod reference;
mod stages;
pub(crate) use stages::named_context;

pub use reference::normalize_reference;

use crate::ast;
use async_trait::async_trait;
use std::collections::BTreeMap;
use strata_llb::image::ImageConfig;
use strata_llb::{Definition, Digest, Platform};

/// Looks up base images for `FROM` and `COPY --from`.
#[async_trait]
pub trait ImageResolver: Send + Sync {
    /// Resolves a reference (as written after expansion, e.g. `busybox` or
    /// `debian:bookworm`) for a platform.
    async fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String>;
}

/// A base image as the resolver found it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedImage {
    /// The normalised name, such as `docker.io/library/busybox:latest`.
    pub name: String,
    /// Digest of the image manifest.
    pub digest: Digest,
    pub config: ImageConfig,
}

/// Inputs of a conversion besides the Dockerfile itself.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// File name used in errors and op locations.
    pub dockerfile_name: String,
    pub build_args: BTreeMap<String, String>,
    /// Stage to build; the last stage when `None`.
    pub target: Option<String>,
    /// Target platform (`TARGETPLATFORM`).
    pub platform: Platform,
    /// Name of the build context's `local://` source, normally `context`.
    pub context_name: String,
    /// `.dockerignore` patterns, passed on to the context source.
    pub excludes: Vec<String>,
    /// Mark every op to run even when its cache key is known.
    pub no_cache: bool,
    /// Stages (by name or index) whose steps run even when their cache
    /// keys are known (`--no-cache-filter`).
    pub no_cache_filter: Vec<String>,
    /// Named contexts (`--build-context NAME=VALUE`) by name. A named
    /// context replaces a stage or image of the same name in `FROM` and
    /// `COPY --from`.
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// What a named build context stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedContext {
    /// A directory the engine serves as the `local://SOURCE` source.
    Local { source: String },
    /// An image reference, resolved like the base of a `FROM`.
    Image(String),
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            dockerfile_name: "Dockerfile".into(),
            build_args: BTreeMap::new(),
            target: None,
            platform: Platform::host(),
            context_name: "context".into(),
            excludes: Vec::new(),
            no_cache: false,
            no_cache_filter: Vec::new(),
            named_contexts: BTreeMap::new(),
        }
    }
}

/// The result of a conversion.
#[derive(Clone, Debug)]
pub struct Conversion {
    pub definition: Definition,
    /// Config of the target stage.
    pub image_config: ImageConfig,
    /// Every stage of the Dockerfile, converted or not.
    pub stages: Vec<StageInfo>,
    pub warnings: Vec<Warning>,
}

/// One `FROM` section of the Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageInfo {
    pub name: Option<String>,
    pub index: usize,
    /// The base after expansion: an image reference, a stage name or
    /// `scratch`.
    pub base: String,
    /// Line of the stage's FROM.
    pub line: usize,
}

/// A problem that does not stop the conversion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub line: Option<usize>,
    /// The build check rule, such as `StageNameCasing`, for check warnings.
    pub rule: Option<String>,
    /// The rule's documentation page.
    pub url: Option<String>,
}

impl std::fmt::Display for Warning {
    /// Formats the warning as BuildKit lists it after a build, such as
    /// `StageNameCasing: Stage name 'Build' should be lowercase`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "{rule}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A conversion failure, located at Dockerfile lines when it comes from an
/// instruction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConvertError {
    pub file: String,
    pub message: String,
    /// First and last line of the instruction at fault.
    pub lines: Option<(usize, usize)>,
    /// A suggested fix, such as the stage name closest to a misspelt one.
    pub help: Option<String>,
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.lines {
            Some((start, _)) => write!(f, "{}:{}: {}", self.file, start, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        match &self.help {
            Some(help) => write!(f, "; {help}"),
            None => Ok(()),
        }
    }
}

/// An error before the file name is attached.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub lines: Option<(usize, usize)>,
}

impl Failure {
    pub(crate) fn at(node: &ast::Node, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            lines: Some((node.start_line, node.end_line)),
        }
    }

    pub(crate) fn general(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            lines: None,
        }
    }
}

/// Converts `ast` into the definition of the target stage and its image
/// config, and runs the build checks, whose warnings join the
/// conversion's. Only stages the target depends on are converted, and only
/// their base images are resolved.
///
/// Fails on a conversion error, an invalid `check` configuration, or any
/// check warning when the configuration says `error=true`.
pub async fn convert(
    ast: &ast::Ast,
    options: &ConvertOptions,
    resolver: &dyn ImageResolver,
) -> Result<Conversion, ConvertError> {
    let recording = crate::checks::RecordingResolver::new(resolver);
    let mut conversion = convert_stages(ast, options, &recording).await?;
    let report = crate::checks::run(ast, options, &recording.recorded()).await?;
    if let Some(error) = report.violation_error(&options.dockerfile_name) {
        return Err(error);
    }
    conversion
        .warnings
        .extend(report.warnings.into_iter().map(Warning::from));
    Ok(conversion)
}

/// Converts `ast` for its conversion errors and runs the build checks,
/// returning every check warning even when the configuration says
/// `error=true`. This is `strata build --check`.
pub async fn check(
    ast: &ast::Ast,
    options: &ConvertOptions,
    resolver: &dyn ImageResolver,
) -> Result<crate::checks::CheckReport, ConvertError> {
    let recording = crate::checks::RecordingResolver::new(resolver);
    convert_stages(ast, options, &recording).await?;
    crate::checks::run(ast, options, &recording.recorded()).await
}

async fn convert_stages(
    ast: &ast::Ast,
    options: &ConvertOptions,
    resolver: &dyn ImageResolver,
) -> Result<Conversion, ConvertError> {
    stages::convert(ast, options, resolver)
        .await
        .map_err(|failure| {
            let help =
                crate::checks::help_for_failure(ast, options, &failure.message, failure.lines);
            ConvertError {
                file: options.dockerfile_name.clone(),
                message: failure.message,
                lines: failure.lines,
                help,
            }
        })
}
