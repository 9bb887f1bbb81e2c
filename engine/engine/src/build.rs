//! One build, from Dockerfile text to exported outputs.

use crate::Engine;
use crate::backend::{BuildBackend, LocalDir};
use crate::cache::inline::InlineCache;
use crate::cache::{CacheExport, CacheImport, CacheImports, CacheLocation};
use crate::session::{SecretSpec, SshSpec, check_entitlements, exec_session};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use strata_dockerfile::checks::CheckReport;
use strata_dockerfile::convert::{Conversion, ConvertOptions, convert};
use strata_dockerfile::dockerignore::DockerIgnore;
use strata_exporter::{ExportReport, OutputSpec};
use strata_history::explain::{BuildView, explain};
use strata_history::{
    BuildRecord, BuildStatus, HistoryDb, RecordedError, RequestSummary, Retention, StepState,
    steps_from_events,
};
use strata_llb::image::ImageConfig;
use strata_llb::{Definition, Platform};
use strata_solver::{
    Event, EventSink, ExplainedStep, ResultRef, SolveError, SolveOptions, Solver, StampedEvent,
};
use strata_source::StoreImageResolver;
use strata_source::watch::ContextChanges;
use strata_store::Store;
use tokio_util::sync::CancellationToken;

/// The source of the Dockerfile.
#[derive(Clone, Debug)]
pub enum DockerfileSource {
    /// `CONTEXT/Dockerfile`.
    Default,
    Path(PathBuf),
    /// Text given directly, with the name used in messages.
    Inline {
        name: String,
        text: String,
    },
}

/// Everything `strata build` accepts.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    pub context: PathBuf,
    pub dockerfile: DockerfileSource,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub platform: Option<Platform>,
    pub tags: Vec<String>,
    pub outputs: Vec<OutputSpec>,
    pub no_cache: bool,
    /// Secrets by id; values are read when the build starts.
    pub secrets: Vec<SecretSpec>,
    /// ssh agent sockets by id.
    pub ssh: Vec<SshSpec>,
    /// Granted entitlements, such as `security.insecure`.
    pub allow: Vec<String>,
    /// Registry hosts (`127.0.0.1:5000`) to reach over plain HTTP, for pulls
    /// and pushes; only loopback hosts are accepted.
    pub insecure_registries: Vec<String>,
    /// `--cache-to` destinations, written after the outputs.
    pub cache_to: Vec<CacheExport>,
    /// `--cache-from` sources, consulted when the local cache misses.
    pub cache_from: Vec<CacheImport>,
    /// Context changes recorded by a watcher since the last sync, so the
    /// sync reads only those paths; `None` walks the whole context.
    pub context_changes: Option<ContextChanges>,
    /// Stages whose steps ignore the cache (`--no-cache-filter`).
    pub no_cache_filter: Vec<String>,
    /// Named contexts (`--build-context NAME=VALUE`): a directory or
    /// `docker-image://REF`.
    pub named_contexts: BTreeMap<String, String>,
}

impl BuildRequest {
    pub fn new(context: impl Into<PathBuf>) -> BuildRequest {
        BuildRequest {
            context: context.into(),
            dockerfile: DockerfileSource::Default,
            target: None,
            build_args: BTreeMap::new(),
            platform: None,
            tags: Vec::new(),
            outputs: Vec::new(),
            no_cache: false,
            secrets: Vec::new(),
            ssh: Vec::new(),
            allow: Vec::new(),
            insecure_registries: Vec::new(),
            cache_to: Vec::new(),
            cache_from: Vec::new(),
            context_changes: None,
            no_cache_filter: Vec::new(),
            named_contexts: BTreeMap::new(),
        }
    }
}

#[derive(Debug)]
pub struct BuildResult {
    pub definition: Definition,
    pub image_config: ImageConfig,
    pub result: ResultRef,
    pub exports: Vec<ExportReport>,
}

/// A build failure, classified by who can fix it.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile, its arguments or the request are wrong.
    #[error("{0}")]
    Input(String),
    /// The Dockerfile could not be parsed; rendered with its source.
    #[error(transparent)]
    Parse(#[from] strata_dockerfile::parser::ParseError),
    /// The Dockerfile parsed but could not be converted, or a build check
    /// failed with `error=true`; the CLI renders it with its source.
    #[error(transparent)]
    Convert(#[from] strata_dockerfile::convert::ConvertError),
    /// A step failed.
    #[error(transparent)]
    Step(#[from] SolveError),
    /// Exporting the result failed.
    #[error("Failed to export the result: {0:#}")]
    Export(anyhow::Error),
    /// The machine or the store is not usable.
    #[error("{0:#}")]
    Environment(anyhow::Error),
}

/// The parts of a build produced so far, kept for its history record even
/// when a later phase fails.
#[derive(Default)]
struct Progress {
    definition: Option<Definition>,
    context_files: Arc<BTreeMap<String, String>>,
}

impl Engine {
    /// Runs a build, sending progress to `events` and recording it in the
    /// build history.
    pub async fn build(
        &self,
        request: &BuildRequest,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<BuildResult, BuildError> {
        let started = Instant::now();
        let (events, recorded) = events.with_recorder();
        let mut record = BuildRecord::new(new_build_id(), request.summary());
        events.emit(Event::BuildStarted {
            build_id: record.id.clone(),
        });
        let history = self.history();
        if let Ok(history) = &history {
            if let Err(error) = history.put(&record) {
                tracing::warn!(build = %record.id, "failed to record the build start: {error:#}");
            }
        }

        let mut progress = Progress::default();
        let outcome = match self.store.lease(Some(&record.id)) {
            Ok(lease) => {
                let lease = Arc::new(lease);
                let outcome = self
                    .build_inner(request, &events, cancel, &mut progress, &lease)
                    .await;
                // Every context lock is gone with the backend, so the lease
                // can go: nothing of this build is in use any more.
                drop(lease);
                outcome
            }
            Err(error) => Err(BuildError::Environment(error)),
        };

        record.finished = Some(chrono::Utc::now());
        record.status = match &outcome {
            Ok(_) => BuildStatus::Succeeded,
            Err(BuildError::Step(SolveError::Canceled)) => BuildStatus::Canceled,
            Err(_) => BuildStatus::Failed,
        };
        record.error = outcome.as_ref().err().map(recorded_error);
        record.definition = progress
            .definition
            .as_ref()
            .and_then(|d| serde_json::to_value(d).ok());
        record.context_files = progress.context_files;
        if let Ok(result) = &outcome {
            let exports: Vec<serde_json::Value> = request
                .outputs
                .iter()
                .zip(&result.exports)
                .map(|(output, report)| {
                    serde_json::json!({
                        "output": output.to_string(),
                        "manifest": report.manifest,
                        "config": report.config,
                        "layers": report.layers,
                        "bytes": report.bytes,
                    })
                })
                .collect();
            record.result =
                Some(serde_json::json!({ "snapshot": result.result.snapshot, "exports": exports }));
        }

        let snapshot = recorded.lock().expect("event recorder lock").clone();
        let (total, cached) = step_counts(&snapshot);
        record.steps_total = total;
        record.steps_cached = cached;
        match &history {
            // Only steps that ran get an explanation, so a build that took
            // every step from the cache needs no previous record.
            Ok(_) if outcome.is_ok() && total == cached => {
                events.emit(Event::Explanations { steps: Vec::new() })
            }
            Ok(history) => events.emit(Event::Explanations {
                steps: explain_against_previous(history, &record, &snapshot),
            }),
            Err(error) => tracing::warn!("build history unavailable: {error:#}"),
        }
        events.emit(Event::BuildFinished {
            success: outcome.is_ok(),
            error: outcome.as_ref().err().map(|e| e.to_string()),
            duration_ms: started.elapsed().as_millis() as u64,
        });

        if let Ok(mut history) = history {
            let all = recorded.lock().expect("event recorder lock").clone();
            if let Err(error) = history.finish(&record, &all) {
                tracing::warn!(build = %record.id, "failed to record the build: {error:#}");
            }
            if let Err(error) = history.apply_retention(Retention::default(), chrono::Utc::now()) {
                tracing::warn!("failed to apply history retention: {error:#}");
            }
        }
        self.collect_garbage().await;
        outcome
    }

    /// Opens the build history in the store's database.
    pub fn history(&self) -> anyhow::Result<HistoryDb> {
        HistoryDb::open(&self.store.root().join("metadata.db"))
    }

    async fn build_inner(
        &self,
        request: &BuildRequest,
        events: &EventSink,
        cancel: &CancellationToken,
        progress: &mut Progress,
        lease: &Arc<strata_store::Lease>,
    ) -> Result<BuildResult, BuildError> {
        let client = registry_client(request)?;
        let conversion = self
            .load_definition_with(request, events, client.clone())
            .await?;
        progress.definition = Some(conversion.definition.clone());
        check_entitlements(&conversion.definition, &request.allow)?;
        let session = Arc::new(exec_session(&request.secrets, &request.ssh)?);
        let ignore = read_dockerignore(request)?;
        crate::cache::inline::check_outputs(&request.cache_to, &request.outputs, &request.tags)
            .map_err(BuildError::Input)?;
        let imports = match request.cache_from.is_empty() {
            true => None,
            false => Some(Arc::new(
                CacheImports::load(&request.cache_from, client.clone(), events)
                    .await
                    .map_err(BuildError::Environment)?,
            )),
        };
        let mount_ids = crate::cache::mounts::mount_ids(&conversion.definition);
        if let Some(imports) = &imports {
            imports.seed_mounts(&self.store, &mount_ids, events).await;
        }
        let mut locals = vec![LocalDir {
            name: "context".into(),
            dir: request.context.clone(),
            ignore,
            changes: request.context_changes.clone(),
        }];
        locals.extend(crate::contexts::local_dirs(&request.named_contexts)?);
        let backend = Arc::new(BuildBackend {
            store: self.store.clone(),
            worker: self.worker.clone(),
            locals,
            leases: Mutex::new(Vec::new()),
            imports: imports.clone(),
            events: events.clone(),
            keys: Mutex::new(Vec::new()),
            lease: lease.clone(),
            session,
            context_monitor: self.context_monitor.clone(),
        });
        let options = SolveOptions {
            max_parallel: self.max_parallel,
            no_cache: request.no_cache,
        };
        let solver = Solver::new(backend.clone(), options);
        let solved = solver.solve(&conversion.definition, events, cancel).await;
        progress.context_files = match backend.leases.lock().expect("lease list lock").as_slice() {
            [lease] => lease.files.clone(),
            leases => Arc::new(
                leases
                    .iter()
                    .flat_map(|lease| lease.files.iter())
                    .map(|(path, digest)| (path.clone(), digest.clone()))
                    .collect(),
            ),
        };
        let result = solved?;

        let keys = backend.keys.lock().expect("key list lock").clone();
        let inline = self.inline_cache(request, &keys, &result).await?;
        let extras = match &inline {
            Some(inline) => inline.config_extras().map_err(BuildError::Export)?,
            None => strata_exporter::ConfigExtras::new(),
        };
        let exports = self
            .export(request, &result, &conversion.image_config, &extras, events)
            .await?;
        if let Some(imports) = &imports {
            imports.warn_unused(events);
        }
        let cache = ExportedCache {
            keys: &keys,
            result: &result,
            inline: inline.as_ref(),
            mount_ids: &mount_ids,
        };
        self.export_cache(request, &client, &cache, events).await?;
        Ok(BuildResult {
            definition: conversion.definition,
            image_config: conversion.image_config,
            result,
            exports,
        })
    }

    /// Reads, parses and converts the Dockerfile.
    pub async fn load_definition(
        &self,
        request: &BuildRequest,
        events: &EventSink,
    ) -> Result<Conversion, BuildError> {
        self.load_definition_with(request, events, registry_client(request)?)
            .await
    }

    /// Like [`Engine::load_definition`], with a registry client the caller
    /// reuses: setting one up reads every system CA certificate.
    async fn load_definition_with(
        &self,
        request: &BuildRequest,
        events: &EventSink,
        client: Arc<strata_registry::RegistryClient>,
    ) -> Result<Conversion, BuildError> {
        let (name, text) = read_dockerfile(request)?;
        let ast = strata_dockerfile::parser::parse(&text).map_err(|e| e.with_file_name(&name))?;
        let options_file = name.clone();
        let options = convert_options(request, name, &self.store)?;
        let resolver = StoreImageResolver {
            store: self.store.clone(),
            registry: Some(client),
            resolve_ttl: strata_registry::resolve_ttl_from_env()
                .map_err(|e| BuildError::Input(format!("{e:#}")))?,
            events: events.clone(),
        };
        let conversion = convert(&ast, &options, &resolver).await?;
        check_platform(&options.platform, &conversion.definition)?;
        for warning in &conversion.warnings {
            let location = warning.line.map(|line| strata_llb::SourceLocation {
                file: options_file.clone(),
                start_line: line,
                end_line: line,
            });
            events.emit(Event::Warning {
                // Check warnings carry their rule name: `Rule: message`.
                message: warning.to_string(),
                location,
            });
        }
        Ok(conversion)
    }

    /// Parses and converts the Dockerfile for its errors and runs the
    /// build checks, solving nothing: `strata build --check`. Unlike a
    /// build, it returns every warning even with `error=true`.
    pub async fn check_definition(
        &self,
        request: &BuildRequest,
    ) -> Result<CheckReport, BuildError> {
        let (name, text) = read_dockerfile(request)?;
        let ast = strata_dockerfile::parser::parse(&text).map_err(|e| e.with_file_name(&name))?;
        let options = convert_options(request, name, &self.store)?;
        let resolver = StoreImageResolver {
            store: self.store.clone(),
            registry: Some(registry_client(request)?),
            resolve_ttl: strata_registry::resolve_ttl_from_env()
                .map_err(|e| BuildError::Input(format!("{e:#}")))?,
            events: EventSink::discard(),
        };
        Ok(strata_dockerfile::convert::check(&ast, &options, &resolver).await?)
    }

    async fn export(
        &self,
        request: &BuildRequest,
        result: &ResultRef,
        config: &ImageConfig,
        extras: &strata_exporter::ConfigExtras,
        events: &EventSink,
    ) -> Result<Vec<ExportReport>, BuildError> {
        let mut reports = Vec::new();
        let snapshot = result.snapshot.clone();
        for (index, output) in request.outputs.iter().enumerate() {
            let started = Instant::now();
            let id = format!("export-{index}");
            events.emit(Event::Phase {
                id: id.clone(),
                name: format!("exporting to {output}"),
                duration_ms: None,
            });
            let name = format!("exporting to {output}");
            let (store, owned_output, config, extras, snapshot) = (
                self.store.clone(),
                output.clone(),
                config.clone(),
                extras.clone(),
                snapshot.clone(),
            );
            let layer_events = events.clone();
            let report = tokio::task::spawn_blocking(move || {
                let (output, snapshot) = (&owned_output, snapshot.as_deref());
                let mut progress = |update| export_progress(&layer_events, update);
                strata_exporter::export_with_extras(
                    &store,
                    snapshot,
                    &config,
                    &extras,
                    output,
                    &mut progress,
                )
            })
            .await
            .map_err(|e| BuildError::Export(e.into()))?
            .map_err(BuildError::Export)?;
            if output.push {
                self.push(request, output, events).await?;
            }
            let duration_ms = Some(started.elapsed().as_millis() as u64);
            events.emit(Event::Phase {
                id,
                name,
                duration_ms,
            });
            reports.push(report);
        }
        for tag in &request.tags {
            let started = Instant::now();
            let id = format!("tag-{tag}");
            events.emit(Event::Phase {
                id: id.clone(),
                name: format!("naming to {tag}"),
                duration_ms: None,
            });
            let name = strata_dockerfile::convert::normalize_reference(tag)
                .map_err(|e| BuildError::Input(format!("Invalid tag `{tag}`: {e}")))?;
            let (store, config, extras, snapshot) = (
                self.store.clone(),
                config.clone(),
                extras.clone(),
                snapshot.clone(),
            );
            tokio::task::spawn_blocking(move || {
                let snapshot = snapshot.as_deref();
                strata_exporter::store_image_with_extras(&store, snapshot, &config, &extras, &name)
            })
            .await
            .map_err(|e| BuildError::Export(e.into()))?
            .map_err(BuildError::Export)?;
            let duration_ms = Some(started.elapsed().as_millis() as u64);
            events.emit(Event::Phase {
                id,
                name: format!("naming to {tag}"),
                duration_ms,
            });
        }
        Ok(reports)
    }
}

/// Sends the bytes of each new layer as a `Progress` task of the open
/// export phase, complete once the layer is in the store.
fn export_progress(events: &EventSink, update: strata_exporter::ExportProgress) {
    let task = |snapshot: &str| {
        let short = &snapshot[..snapshot.len().min(12)];
        format!("compressing layer {short}")
    };
    let (id, current, total) = match update {
        strata_exporter::ExportProgress::LayerWritten { snapshot, bytes } => {
            (task(&snapshot), bytes, None)
        }
        strata_exporter::ExportProgress::LayerDone {
            snapshot,
            layer,
            cached: false,
        } => (task(&snapshot), layer.size, Some(layer.size)),
        _ => return,
    };
    events.emit(Event::Progress {
        vertex: None,
        id,
        current,
        total,
        unit: "B".into(),
    });
}

impl Engine {
    /// Pushes the image an `image` output stored under its name.
    async fn push(
        &self,
        request: &BuildRequest,
        output: &OutputSpec,
        events: &EventSink,
    ) -> Result<(), BuildError> {
        let name = output
            .name
            .as_deref()
            .ok_or_else(|| BuildError::Input("`push=true` needs `name`".into()))?;
        let started = Instant::now();
        let id = format!("push-{name}");
        events.emit(Event::Phase {
            id: id.clone(),
            name: format!("pushing {name}"),
            duration_ms: None,
        });
        let client = registry_client(request)?;
        let report = strata_exporter::push_image(&self.store, &client, name)
            .await
            .map_err(|e| BuildError::Export(e.context(format!("Failed to push `{name}`"))))?;
        events.emit(Event::Phase {
            id,
            name: format!(
                "pushing {name}: {} blobs uploaded, {} mounted, {} already present",
                report.uploaded.len(),
                report.mounted.len(),
                report.skipped.len()
            ),
            duration_ms: Some(started.elapsed().as_millis() as u64),
        });
        Ok(())
    }
}

/// The inputs of a build's cache exports.
struct ExportedCache<'a> {
    keys: &'a [strata_llb::Digest],
    result: &'a ResultRef,
    /// The records embedded in the image config, for `type=inline`.
    inline: Option<&'a InlineCache>,
    /// The ids of the build's cache mounts, for `cache-mounts=true`.
    mount_ids: &'a [String],
}

impl Engine {
    /// Collects the inline cache records when `--cache-to type=inline` is
    /// given, before the outputs write the image config that contains them.
    async fn inline_cache(
        &self,
        request: &BuildRequest,
        keys: &[strata_llb::Digest],
        result: &ResultRef,
    ) -> Result<Option<InlineCache>, BuildError> {
        if !request
            .cache_to
            .iter()
            .any(|c| c.location == CacheLocation::Inline)
        {
            return Ok(None);
        }
        let (store, keys, snapshot) = (self.store.clone(), keys.to_vec(), result.snapshot.clone());
        tokio::task::spawn_blocking(move || {
            crate::cache::inline::collect(&store, &keys, snapshot.as_deref())
        })
        .await
        .map_err(|e| BuildError::Export(e.into()))?
        .map(Some)
        .map_err(BuildError::Export)
    }

    /// Writes the cache records of this build to every `--cache-to`.
    async fn export_cache(
        &self,
        request: &BuildRequest,
        client: &strata_registry::RegistryClient,
        cache: &ExportedCache<'_>,
        events: &EventSink,
    ) -> Result<(), BuildError> {
        for (index, spec) in request.cache_to.iter().enumerate() {
            let started = Instant::now();
            let id = format!("cache-export-{index}");
            let name = format!("exporting cache to {}", spec.location);
            events.emit(Event::Phase {
                id: id.clone(),
                name: name.clone(),
                duration_ms: None,
            });
            if let (CacheLocation::Inline, Some(inline)) = (&spec.location, cache.inline) {
                events.emit(Event::Phase {
                    id,
                    name: format!(
                        "{name}: {} records in the image config",
                        inline.records.len()
                    ),
                    duration_ms: Some(started.elapsed().as_millis() as u64),
                });
                continue;
            }
            let (store, keys, mode, snapshot) = (
                self.store.clone(),
                cache.keys.to_vec(),
                spec.mode,
                cache.result.snapshot.clone(),
            );
            let mount_ids = match spec.cache_mounts {
                true => cache.mount_ids.to_vec(),
                false => Vec::new(),
            };
            let (config, mounts) = tokio::task::spawn_blocking(move || {
                let mut config =
                    crate::cache::collect_records(&store, &keys, mode, snapshot.as_deref())?;
                let mounts = crate::cache::mounts::export_mounts(&store, &mount_ids, &mut config)?;
                anyhow::Ok((config, mounts))
            })
            .await
            .map_err(|e| BuildError::Export(e.into()))?
            .map_err(BuildError::Export)?;
            crate::cache::export(&self.store, client, spec, &config)
                .await
                .map_err(|e| {
                    BuildError::Export(
                        e.context(format!("Failed to export cache to `{}`", spec.location)),
                    )
                })?;
            let mut summary = format!(
                "{name}: {} records, {} layers",
                config.records.len(),
                config.layers.len()
            );
            if spec.cache_mounts {
                summary.push_str(&format!(", cache mounts [{}]", mounts.join(", ")));
            }
            events.emit(Event::Phase {
                id,
                name: summary,
                duration_ms: Some(started.elapsed().as_millis() as u64),
            });
        }
        Ok(())
    }
}

/// Builds the registry client of a build: `--allow-insecure-registry`
/// hosts plus the hosts of outputs with `registry.insecure=true`.
fn registry_client(
    request: &BuildRequest,
) -> Result<Arc<strata_registry::RegistryClient>, BuildError> {
    let mut options = strata_registry::RegistryOptions::from_env();
    let output_hosts = request
        .outputs
        .iter()
        .filter(|o| o.insecure)
        .filter_map(|o| o.name.as_deref())
        .filter_map(|name| name.split_once('/').map(|(host, _)| host.to_string()));
    let cache_hosts = request
        .cache_to
        .iter()
        .filter(|c| c.insecure)
        .map(|c| &c.location)
        .chain(
            request
                .cache_from
                .iter()
                .filter(|c| c.insecure)
                .map(|c| &c.location),
        )
        .filter_map(|location| match location {
            CacheLocation::Registry(name) => name.split_once('/').map(|(host, _)| host.to_string()),
            _ => None,
        });
    for host in request
        .insecure_registries
        .iter()
        .cloned()
        .chain(output_hosts)
        .chain(cache_hosts)
    {
        options
            .allow_insecure(&host)
            .map_err(|e| BuildError::Input(format!("{e:#}")))?;
    }
    strata_registry::RegistryClient::new(options)
        .map(Arc::new)
        .map_err(BuildError::Environment)
}

impl BuildRequest {
    /// Returns the request as the build history records it.
    pub fn summary(&self) -> RequestSummary {
        let dockerfile = match &self.dockerfile {
            DockerfileSource::Default => {
                let path = self.context.join("Dockerfile");
                std::fs::canonicalize(&path)
                    .unwrap_or(path)
                    .display()
                    .to_string()
            }
            DockerfileSource::Path(path) => std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            DockerfileSource::Inline { name, .. } => name.clone(),
        };
        let context = std::fs::canonicalize(&self.context).unwrap_or_else(|_| self.context.clone());
        RequestSummary {
            context: context.display().to_string(),
            dockerfile,
            target: self.target.clone(),
            build_args: self.build_args.clone(),
            secrets: self.secrets.iter().map(|s| s.id.clone()).collect(),
            outputs: self.outputs.iter().map(|o| o.to_string()).collect(),
            tags: self.tags.clone(),
            no_cache: self.no_cache,
        }
    }
}

/// Rejects a build for another platform that runs commands: RUN steps
/// execute natively with runc, and Strata has no emulator, so the result
/// would claim one architecture and contain another's binaries. Builds
/// that only copy files work for any platform.
fn check_platform(platform: &Platform, definition: &Definition) -> Result<(), BuildError> {
    let host = Platform::host();
    // A stage `FROM --platform=$BUILDPLATFORM` runs on the machine's own
    // platform whatever the target, so each RUN is checked by its own.
    let foreign = definition.vertices.values().find_map(|vertex| {
        let strata_llb::Op::Exec(_) = vertex.op else {
            return None;
        };
        let runs_on = vertex.platform.as_ref().unwrap_or(platform);
        let native = runs_on.os == host.os && runs_on.architecture == host.architecture;
        (!native).then(|| runs_on.clone())
    });
    match foreign {
        None => Ok(()),
        Some(foreign) => Err(BuildError::Input(format!(
            "Cannot run steps for `{foreign}` on this `{host}` machine: RUN steps execute \
             natively and Strata has no emulator; drop `--platform`, use \
             `FROM --platform=$BUILDPLATFORM` for stages that run commands, or build on a \
             `{}` machine",
            foreign.architecture
        ))),
    }
}

fn recorded_error(error: &BuildError) -> RecordedError {
    match error {
        BuildError::Step(SolveError::Vertex {
            name,
            metadata,
            message,
            ..
        }) => RecordedError {
            message: message.clone(),
            step: Some(name.clone()),
            location: metadata.location.clone(),
        },
        other => RecordedError {
            message: other.to_string(),
            step: None,
            location: None,
        },
    }
}

/// Counts the steps that have a cache key (every vertex but sources) and
/// how many of them were cached.
fn step_counts(events: &[StampedEvent]) -> (u32, u32) {
    let keyed: std::collections::HashSet<&strata_llb::Digest> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::CacheKey { vertex, .. } => Some(vertex),
            _ => None,
        })
        .collect();
    let steps = steps_from_events(events);
    let cached = steps
        .iter()
        .filter(|s| keyed.contains(&s.vertex) && s.state == StepState::Cached)
        .count();
    (keyed.len() as u32, cached as u32)
}

/// Explains every step that ran against the previous build of the same
/// Dockerfile, context and target.
fn explain_against_previous(
    history: &HistoryDb,
    record: &BuildRecord,
    events: &[StampedEvent],
) -> Vec<ExplainedStep> {
    let previous = history.previous(record).ok().flatten();
    let previous_events = previous
        .as_ref()
        .map(|p| history.events(&p.id).unwrap_or_default())
        .unwrap_or_default();
    let current = BuildView::new(record, events);
    let earlier = previous
        .as_ref()
        .map(|p| BuildView::new(p, &previous_events));
    explain(&current, earlier.as_ref())
        .into_iter()
        .map(|e| ExplainedStep {
            vertex: e.vertex,
            step: e.step,
            reasons: e.reasons.iter().map(|r| r.to_string()).collect(),
        })
        .collect()
}

fn convert_options(
    request: &BuildRequest,
    name: String,
    store: &Store,
) -> Result<ConvertOptions, BuildError> {
    let platform = request.platform.clone().unwrap_or_else(Platform::host);
    Ok(ConvertOptions {
        dockerfile_name: name,
        build_args: request.build_args.clone(),
        target: request.target.clone(),
        named_contexts: crate::contexts::parse_all(&request.named_contexts, store, &platform)?,
        platform,
        context_name: "context".into(),
        excludes: read_dockerignore(request)?.patterns().to_vec(),
        no_cache: request.no_cache,
        no_cache_filter: request.no_cache_filter.clone(),
    })
}

/// Reads the request's Dockerfile. Returns its name for messages and its
/// text.
pub fn read_dockerfile(request: &BuildRequest) -> Result<(String, String), BuildError> {
    let path = match &request.dockerfile {
        DockerfileSource::Inline { name, text } => return Ok((name.clone(), text.clone())),
        DockerfileSource::Default => request.context.join("Dockerfile"),
        DockerfileSource::Path(path) => path.clone(),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        BuildError::Input(format!(
            "Failed to read the Dockerfile `{}`: {e}; pass its path with `-f`",
            path.display()
        ))
    })?;
    let name = path
        .file_name()
        .map_or("Dockerfile".into(), |n| n.to_string_lossy().into_owned());
    Ok((name, text))
}

/// Reads the ignore file of the build: `<Dockerfile>.dockerignore` next to
/// the Dockerfile when it exists, else the context's `.dockerignore`, as
/// BuildKit chooses.
pub fn read_dockerignore(request: &BuildRequest) -> Result<DockerIgnore, BuildError> {
    let dockerfile = match &request.dockerfile {
        DockerfileSource::Default => Some(request.context.join("Dockerfile")),
        DockerfileSource::Path(path) => Some(path.clone()),
        DockerfileSource::Inline { .. } => None,
    };
    let specific = dockerfile.map(|path| {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".dockerignore");
        path.with_file_name(name)
    });
    if let Some(path) = specific {
        if let Some(ignore) = read_ignore_file(&path)? {
            return Ok(ignore);
        }
    }
    let path = request.context.join(".dockerignore");
    Ok(read_ignore_file(&path)?.unwrap_or_default())
}

/// Parses one ignore file, or returns `None` when it does not exist.
pub(crate) fn read_ignore_file(path: &Path) -> Result<Option<DockerIgnore>, BuildError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(BuildError::Input(format!(
                "Failed to read `{}`: {error}",
                path.display()
            )));
        }
    };
    DockerIgnore::parse(&text)
        .map(Some)
        .map_err(|e| BuildError::Input(format!("Invalid `{}`: {e}", path.display())))
}

fn new_build_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:04x}", nanos, std::process::id() & 0xffff)
}
