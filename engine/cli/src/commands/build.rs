use super::check::{CallFormat, CallMethod};
use super::open_engine;
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_cli::progress::{ProgressMode, RenderSummary, render_failure, spawn_renderer};
use strata_engine::cache::{CacheExport, CacheImport};
use strata_engine::{
    BuildError, BuildRequest, DockerfileSource, SecretSpec, SshSpec, check_entitlement,
};
use strata_exporter::OutputSpec;
use strata_llb::Platform;
use strata_solver::EventSink;
use tokio_util::sync::CancellationToken;

/// Flags shared by `build` and `dump-llb`.
#[derive(Args, Clone)]
pub struct DefinitionArgs {
    /// Build context directory
    pub context: PathBuf,
    /// Dockerfile path (default: `CONTEXT/Dockerfile`; `-` reads standard input)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Stage to build (default: the last stage)
    #[arg(long)]
    pub target: Option<String>,
    /// Build-time variable `KEY=VALUE`, or `KEY` to take the value from the environment
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Target platform `os/arch[/variant]` (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Named context `NAME=DIR`, `NAME=docker-image://REF` or `NAME=oci-layout://DIR[:TAG]` for `FROM NAME` and `COPY --from=NAME` (repeatable)
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Run the steps of this stage even when cached (repeatable)
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
}

#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub definition: DefinitionArgs,
    /// Name the result in the local image store (repeatable)
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Output destination, such as `type=docker,dest=image.tar` (repeatable)
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Progress output: auto, tty, plain, rawjson or quiet
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Run every step, ignoring cached results
    #[arg(long)]
    pub no_cache: bool,
    /// Maximum number of steps running at once (default: 4 per CPU)
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Run the build checks only and exit non-zero on any warning
    #[arg(long)]
    pub check: bool,
    /// Print information about the build instead of building
    #[arg(long, value_enum, default_value = "build")]
    pub call: CallMethod,
    /// Output format of `--call targets|outline`
    #[arg(long, value_enum, default_value = "text")]
    pub format: CallFormat,
    /// Secret for `RUN --mount=type=secret`: `id=ID,src=FILE`, `id=ID,env=VAR` or `id=ID` (repeatable)
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,
    /// ssh agent for `RUN --mount=type=ssh`: `default` (`SSH_AUTH_SOCK`) or `ID=SOCKET` (repeatable)
    #[arg(long = "ssh", value_name = "ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// Grant an entitlement, such as `security.insecure` for `RUN --security=insecure` (repeatable)
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Reach registry `HOST[:PORT]` over plain HTTP; only loopback hosts are accepted (repeatable)
    #[arg(long = "allow-insecure-registry", value_name = "HOST")]
    pub allow_insecure_registry: Vec<String>,
    /// Cache export, such as `type=local,dest=DIR`, `type=registry,ref=REF,mode=max` or `type=inline`; `cache-mounts=true` adds the contents of cache mounts (repeatable)
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Cache import, such as `type=local,src=DIR`, `type=registry,ref=REF`, or an image REF built with `--cache-to type=inline` (repeatable)
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Show the build in a window (step graph, waterfall, logs); the command exits once the build has finished and the window is closed
    #[arg(long)]
    pub ui: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LlbFormat {
    Json,
    Dot,
}

#[derive(Args)]
pub struct DumpLlbArgs {
    #[command(flatten)]
    pub definition: DefinitionArgs,
    /// Output format
    #[arg(long, value_enum, default_value = "json")]
    pub format: LlbFormat,
}

impl DefinitionArgs {
    pub(super) fn request(&self) -> anyhow::Result<BuildRequest> {
        let mut request = BuildRequest::new(&self.context);
        request.dockerfile = match &self.file {
            None => DockerfileSource::Default,
            Some(path) if path.as_os_str() == "-" => DockerfileSource::Inline {
                name: "Dockerfile".into(),
                text: std::io::read_to_string(std::io::stdin())
                    .context("Failed to read the Dockerfile from standard input")?,
            },
            Some(path) => DockerfileSource::Path(path.clone()),
        };
        request.target = self.target.clone();
        request.build_args = parse_build_args(&self.build_args)?;
        request.named_contexts = parse_build_contexts(&self.build_contexts)?;
        request.no_cache_filter = self.no_cache_filter.clone();
        if let Some(platform) = &self.platform {
            request.platform = Some(Platform::parse(platform).with_context(|| {
                format!("Invalid `--platform` value `{platform}`: expected `os/arch[/variant]`, such as `linux/amd64`")
            })?);
        }
        Ok(request)
    }
}

fn parse_build_contexts(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut contexts = BTreeMap::new();
    for value in values {
        match value.split_once('=') {
            Some((name, target)) if !name.is_empty() && !target.is_empty() => {
                contexts.insert(name.to_string(), target.to_string());
            }
            _ => bail!(
                "Invalid `--build-context` value `{value}`: expected `NAME=DIR`, `NAME=docker-image://REF` or `NAME=oci-layout://DIR[:TAG]`"
            ),
        }
    }
    Ok(contexts)
}

fn parse_build_args(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for given in values {
        let (key, value) = match given.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            // Docker takes a bare name's value from the environment and
            // drops the argument when the variable is unset.
            None => match std::env::var(given) {
                Ok(from_env) => (given.clone(), from_env),
                Err(_) => continue,
            },
        };
        if key.is_empty() {
            bail!("Invalid `--build-arg` value `{given}`: expected `KEY=VALUE`");
        }
        args.insert(key, value);
    }
    Ok(args)
}

impl BuildArgs {
    /// Builds the engine request from every build flag.
    pub fn request(&self) -> anyhow::Result<BuildRequest> {
        let mut request = self.definition.request()?;
        request.tags = self.tags.clone();
        request.no_cache = self.no_cache;
        for spec in &self.secrets {
            request
                .secrets
                .push(SecretSpec::parse(spec).map_err(anyhow::Error::msg)?);
        }
        for spec in &self.ssh {
            request
                .ssh
                .push(SshSpec::parse(spec).map_err(anyhow::Error::msg)?);
        }
        for entitlement in &self.allow {
            check_entitlement(entitlement).map_err(anyhow::Error::msg)?;
            request.allow.push(entitlement.clone());
        }
        request.insecure_registries = self.allow_insecure_registry.clone();
        for spec in &self.cache_to {
            request
                .cache_to
                .push(CacheExport::parse(spec).map_err(anyhow::Error::msg)?);
        }
        for spec in &self.cache_from {
            request
                .cache_from
                .push(CacheImport::parse(spec).map_err(anyhow::Error::msg)?);
        }
        for spec in &self.outputs {
            request.outputs.push(
                OutputSpec::parse(spec)
                    .map_err(|e| anyhow::anyhow!("Invalid `--output` value `{spec}`: {e}"))?,
            );
        }
        Ok(request)
    }
}

pub async fn run(root: Option<PathBuf>, args: BuildArgs) -> anyhow::Result<ExitCode> {
    let method = if args.check {
        CallMethod::Check
    } else {
        args.call
    };
    if method != CallMethod::Build {
        return super::check::run(root, &args, method).await;
    }
    let mode: ProgressMode = args.progress.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let request = args.request()?;
    if args.ui {
        super::view::check_display("strata build --ui")?;
    }
    let engine = open_engine(root, args.max_parallel)?;

    let (events, receiver) = EventSink::channel();
    let (receiver, window) = if args.ui {
        let title = format!("build of {}", request.context.display());
        let (receiver, window) = super::view::open_build_window(title, receiver)?;
        (receiver, Some(window))
    } else {
        (receiver, None)
    };
    let renderer = spawn_renderer(mode, receiver, Box::new(std::io::stderr()));
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });

    let outcome = engine.build(&request, &events, &cancel).await;
    drop(events);
    let summary = renderer
        .await
        .context("The progress renderer stopped unexpectedly")?;
    if let Some(window) = window {
        window.wait().await;
    }
    match outcome {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            print_build_error(&request, &summary, error);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Prints a failed build's error: diagnostics with the Dockerfile source
/// for parse and conversion errors, and the failing step's Dockerfile
/// lines and log tail when a step failed.
pub fn print_build_error(request: &BuildRequest, summary: &RenderSummary, error: BuildError) {
    match error {
        BuildError::Parse(error) => eprintln!("{:?}", miette::Report::new(error)),
        BuildError::Convert(error) => {
            let text = strata_engine::read_dockerfile(request).map(|(_, text)| text);
            let text = text.unwrap_or_default();
            eprintln!("{:?}", miette::Report::new(error.to_diagnostic(&text)));
        }
        BuildError::Step(error) => {
            let source = match &request.dockerfile {
                DockerfileSource::Inline { text, .. } => Some(text.clone()),
                DockerfileSource::Default => {
                    std::fs::read_to_string(request.context.join("Dockerfile")).ok()
                }
                DockerfileSource::Path(path) => std::fs::read_to_string(path).ok(),
            };
            eprint!("{}", render_failure(summary, source.as_deref()));
            eprintln!("error: {error}");
        }
        error => eprintln!("error: {error}"),
    }
}

pub async fn dump_llb(root: Option<PathBuf>, args: DumpLlbArgs) -> anyhow::Result<ExitCode> {
    let request = args.definition.request()?;
    let engine = open_engine(root, None)?;
    let conversion = match engine
        .load_definition(&request, &EventSink::discard())
        .await
    {
        Ok(conversion) => conversion,
        Err(BuildError::Parse(error)) => {
            eprintln!("{:?}", miette::Report::new(error));
            return Ok(ExitCode::FAILURE);
        }
        Err(BuildError::Convert(error)) => {
            let text = strata_engine::read_dockerfile(&request).map(|(_, text)| text);
            let text = text.unwrap_or_default();
            eprintln!("{:?}", miette::Report::new(error.to_diagnostic(&text)));
            return Ok(ExitCode::FAILURE);
        }
        Err(error) => return Err(error.into()),
    };
    match args.format {
        LlbFormat::Json => println!("{}", conversion.definition.to_json()),
        LlbFormat::Dot => print!("{}", strata_llb::to_dot(&conversion.definition)),
    }
    Ok(ExitCode::SUCCESS)
}
