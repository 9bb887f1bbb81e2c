//! Exports that read snapshots and blobs from the store.

use crate::archive::{DestWriter, write_docker_archive, write_oci_archive};
use crate::image::{ConfigExtras, ImageBlobs, LayerBlob, build_image_with_extras};
use crate::layer::{LayerOptions, map_parallel, write_layer_with, write_rootfs_tar};
use crate::local::materialize;
use crate::output::{Compression, Dest, OutputKind, OutputSpec, normalize_name};
use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use strata_llb::Digest;
use strata_llb::image::ImageConfig;
use strata_store::{ImageRecord, LayerRecord, SnapshotKind, Store};

/// The shortest time between two byte counts of one layer being written.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Progress of an export, for the build event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportProgress {
    /// A snapshot without a cached layer is being compressed.
    LayerStarted { snapshot: String },
    /// Compressed bytes of a new layer written so far, sent at most every
    /// [`PROGRESS_INTERVAL`] per layer.
    LayerWritten { snapshot: String, bytes: u64 },
    /// A snapshot's layer is ready. `cached` is set when it came from the store.
    LayerDone {
        snapshot: String,
        layer: LayerRecord,
        cached: bool,
    },
    /// The output is complete.
    Written { bytes: u64 },
}

/// The result of an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// Digest of the image manifest; `None` for `local` and `tar`.
    pub manifest: Option<Digest>,
    /// Digest of the image config; `None` for `local` and `tar`.
    pub config: Option<Digest>,
    /// Layers in the image, or snapshots in the chain for `local` and `tar`.
    pub layers: usize,
    /// Bytes written to `dest`; 0 for `local` and `image`.
    pub bytes: u64,
}

/// Returns one layer per snapshot in the chain of `snapshot`, bottom first,
/// compressing and caching the layers the store does not have yet.
pub fn image_layers(store: &Store, snapshot: Option<&str>) -> Result<Vec<LayerRecord>> {
    image_layers_with(store, snapshot, &LayerOptions::default(), &mut |_| {})
}

/// Like [`image_layers`], with tar options and progress.
///
/// A stored layer is reused when it matches `options`: a base image layer
/// keeps its compression unless `force_compression` requests another, a
/// built layer is reused only for the default encoding (gzip at the
/// default level, mtimes unclamped), and `rewrite_timestamp` recompresses
/// every layer. Only default encodings are recorded as a snapshot's
/// layer, so a zstd or clamped export never replaces the stored gzip one.
pub fn image_layers_with(
    store: &Store,
    snapshot: Option<&str>,
    options: &LayerOptions,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<Vec<LayerRecord>> {
    let chain = chain_ids(store, snapshot)?;

    let mut layers: Vec<Option<LayerRecord>> = Vec::with_capacity(chain.len());
    let mut missing: Vec<(usize, String, PathBuf)> = Vec::new();
    for (index, id) in chain.iter().enumerate() {
        let cached = store.layer_of(id)?;
        let usable = match &cached {
            None => false,
            Some(_) if options.rewrite_timestamp => false,
            Some(layer) => {
                let same = Compression::of_media_type(&layer.media_type) == options.compression;
                if store.snapshot(id)?.kind == SnapshotKind::Layer {
                    same || !options.force_compression
                } else {
                    options.is_default_encoding()
                }
            }
        };
        if usable {
            let layer = cached.expect("usable implies a record");
            progress(ExportProgress::LayerDone {
                snapshot: id.clone(),
                layer: layer.clone(),
                cached: true,
            });
            layers.push(Some(layer));
        } else {
            let own_dir = store
                .lowers(id)?
                .into_iter()
                .next()
                .expect("a chain includes itself");
            progress(ExportProgress::LayerStarted {
                snapshot: id.clone(),
            });
            missing.push((index, id.clone(), own_dir));
            layers.push(None);
        }
    }

    // Layers compress on worker threads, and `progress` is called only
    // here, so their byte counts come back through a channel.
    let (sender, receiver) = mpsc::channel::<(String, u64)>();
    let jobs = &missing;
    let computed = std::thread::scope(|scope| {
        let workers = scope.spawn(move || {
            map_parallel(jobs, |(_, id, dir)| {
                let sender = sender.clone();
                let mut report = |bytes| {
                    let _ = sender.send((id.clone(), bytes));
                };
                compress_snapshot(store, dir, options, &mut report)
                    .with_context(|| format!("Failed to compress the layer of snapshot `{id}`"))
            })
        });
        for (snapshot, bytes) in receiver {
            progress(ExportProgress::LayerWritten { snapshot, bytes });
        }
        workers
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    for ((index, id, _), result) in missing.iter().zip(computed) {
        let layer = result?;
        if options.is_default_encoding() {
            store.set_layer(id, &layer)?;
        }
        progress(ExportProgress::LayerDone {
            snapshot: id.clone(),
            layer: layer.clone(),
            cached: false,
        });
        layers[*index] = Some(layer);
    }
    Ok(layers
        .into_iter()
        .map(|l| l.expect("every layer is cached or computed"))
        .collect())
}

/// Compresses one upper dir straight into the content store, calling
/// `report` with the compressed bytes written so far.
fn compress_snapshot(
    store: &Store,
    dir: &std::path::Path,
    options: &LayerOptions,
    report: &mut dyn FnMut(u64),
) -> Result<LayerRecord> {
    let mut writer = store.blob_writer()?;
    let counting = ReportingWriter {
        inner: &mut writer,
        bytes: 0,
        last: None,
        report,
    };
    let digests = write_layer_with(dir, counting, options)?;
    let (blob, size) = writer.commit()?;
    if blob != digests.blob || size != digests.size {
        bail!(
            "Layer blob stored as `{blob}` ({size} bytes) but written as `{}` ({} bytes): this is a bug in Strata",
            digests.blob,
            digests.size
        );
    }
    Ok(LayerRecord {
        blob,
        diff_id: digests.diff_id,
        media_type: options.compression.media_type().to_string(),
        size,
    })
}

/// A writer that reports the bytes written through it, at most every
/// [`PROGRESS_INTERVAL`] and once more when it is flushed at the end.
struct ReportingWriter<'a, W> {
    inner: W,
    bytes: u64,
    last: Option<Instant>,
    report: &'a mut dyn FnMut(u64),
}

impl<W: Write> Write for ReportingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        if self
            .last
            .is_none_or(|last| last.elapsed() >= PROGRESS_INTERVAL)
        {
            self.last = Some(Instant::now());
            (self.report)(self.bytes);
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (self.report)(self.bytes);
        self.inner.flush()
    }
}

/// Returns the ids of a snapshot's chain, bottom first.
fn chain_ids(store: &Store, snapshot: Option<&str>) -> Result<Vec<String>> {
    let mut chain = Vec::new();
    let mut next = snapshot.map(str::to_string);
    while let Some(id) = next {
        let info = store.snapshot(&id)?;
        chain.push(id);
        next = info.parent;
    }
    chain.reverse();
    Ok(chain)
}

/// Writes the image or root filesystem of `snapshot` as `output` requests.
///
/// `SOURCE_DATE_EPOCH`, when set in the environment, becomes the image's
/// `created` time and the upper bound of every file mtime in new layers.
pub fn export(
    store: &Store,
    snapshot: Option<&str>,
    config: &ImageConfig,
    output: &OutputSpec,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<ExportReport> {
    export_with_extras(
        store,
        snapshot,
        config,
        &ConfigExtras::new(),
        output,
        progress,
    )
}

/// Like [`export`], adding `extras` to the image config of `docker`, `oci`
/// and `image` outputs. `local` and `tar` outputs have no config.
pub fn export_with_extras(
    store: &Store,
    snapshot: Option<&str>,
    config: &ImageConfig,
    extras: &ConfigExtras,
    output: &OutputSpec,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<ExportReport> {
    let options = output_layer_options(output)?;
    let report = match output.kind {
        OutputKind::Image => {
            let name = output
                .name
                .as_deref()
                .ok_or_else(|| anyhow!("Output type `image` needs `name`"))?;
            let image = ImageInput { config, extras };
            let (record, config_digest) =
                store_image_with(store, snapshot, &image, name, &options, progress)?;
            ExportReport {
                manifest: Some(record.manifest),
                config: Some(config_digest),
                layers: record.layers.len(),
                bytes: 0,
            }
        }
        OutputKind::Docker | OutputKind::Oci => {
            let input = ImageInput { config, extras };
            let image = build_stored_image(store, snapshot, &input, &options, progress)?;
            let mut out = DestWriter::create(required_dest(output)?)?;
            let names: Vec<String> = output.name.iter().cloned().collect();
            if output.kind == OutputKind::Docker {
                write_docker_archive(&mut out, &image, &names)?;
            } else {
                write_oci_archive(&mut out, &image, output.name.as_deref())?;
            }
            let bytes = out.commit()?;
            ExportReport {
                manifest: Some(image.manifest_digest),
                config: Some(image.config_digest),
                layers: image.layers.len(),
                bytes,
            }
        }
        OutputKind::Local => {
            let Dest::Path(dest) = required_dest(output)? else {
                bail!("Output type `local` cannot write to stdout: give a directory as `dest`");
            };
            let lowers = chain_lowers(store, snapshot)?;
            materialize(&lowers, dest)?;
            ExportReport {
                manifest: None,
                config: None,
                layers: lowers.len(),
                bytes: 0,
            }
        }
        OutputKind::Tar => {
            let lowers = chain_lowers(store, snapshot)?;
            let rootfs = tempfile::Builder::new()
                .prefix("export-rootfs-")
                .tempdir_in(store.root().join("tmp"))
                .context("Failed to create a directory in the store's `tmp`")?;
            materialize(&lowers, rootfs.path())?;
            let mut out = DestWriter::create(required_dest(output)?)?;
            write_rootfs_tar(rootfs.path(), &mut out, &options)?;
            let bytes = out.commit()?;
            ExportReport {
                manifest: None,
                config: None,
                layers: lowers.len(),
                bytes,
            }
        }
    };
    progress(ExportProgress::Written {
        bytes: report.bytes,
    });
    Ok(report)
}

/// Returns the layer options of `output`: `SOURCE_DATE_EPOCH` from the
/// environment plus the output's compression and timestamp keys.
pub fn output_layer_options(output: &OutputSpec) -> Result<LayerOptions> {
    let mut options = LayerOptions::from_env()?;
    options.compression = output.compression.unwrap_or_default();
    options.compression_level = output.compression_level;
    options.force_compression = output.force_compression;
    options.rewrite_timestamp = output.rewrite_timestamp;
    if options.rewrite_timestamp && options.source_date_epoch.is_none() {
        bail!(
            "Output key `rewrite-timestamp=true` needs `SOURCE_DATE_EPOCH`: set it to the seconds since 1970 to clamp file times to"
        );
    }
    Ok(options)
}

/// Records the image of `snapshot` in the store under `name`, as `-t NAME`
/// does, and writes its config and manifest blobs.
pub fn store_image(
    store: &Store,
    snapshot: Option<&str>,
    config: &ImageConfig,
    name: &str,
) -> Result<ImageRecord> {
    store_image_with_extras(store, snapshot, config, &ConfigExtras::new(), name)
}

/// Like [`store_image`], adding `extras` to the image config blob.
pub fn store_image_with_extras(
    store: &Store,
    snapshot: Option<&str>,
    config: &ImageConfig,
    extras: &ConfigExtras,
    name: &str,
) -> Result<ImageRecord> {
    let options = LayerOptions::from_env()?;
    let image = ImageInput { config, extras };
    let (record, _) = store_image_with(store, snapshot, &image, name, &options, &mut |_| {})?;
    Ok(record)
}

/// The config an exported image starts from.
struct ImageInput<'a> {
    config: &'a ImageConfig,
    extras: &'a ConfigExtras,
}

/// Stores the image and returns its record and config digest.
fn store_image_with(
    store: &Store,
    snapshot: Option<&str>,
    input: &ImageInput,
    name: &str,
    options: &LayerOptions,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<(ImageRecord, Digest)> {
    let name = normalize_name(name)?;
    let layers = image_layers_with(store, snapshot, options, progress)?;
    let image = build_image_with_extras(
        input.config,
        input.extras,
        layer_blobs(store, &layers),
        created_time(options),
    )?;

    // put_image reads the manifest blob to reference the config blob, so
    // both are written first.
    let (config_digest, _) = store.write_blob(&mut image.config_json.as_slice())?;
    store.write_blob(&mut image.manifest_json.as_slice())?;

    let created = image
        .config
        .created
        .as_deref()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok());
    let record = ImageRecord {
        name,
        manifest: image.manifest_digest,
        config: image.config,
        layers,
        snapshot: snapshot.map(str::to_string),
        created: created.map_or_else(Utc::now, |c| c.with_timezone(&Utc)),
    };
    store.put_image(&record)?;
    Ok((record, config_digest))
}

fn build_stored_image(
    store: &Store,
    snapshot: Option<&str>,
    input: &ImageInput,
    options: &LayerOptions,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<ImageBlobs> {
    let layers = image_layers_with(store, snapshot, options, progress)?;
    build_image_with_extras(
        input.config,
        input.extras,
        layer_blobs(store, &layers),
        created_time(options),
    )
}

fn layer_blobs(store: &Store, layers: &[LayerRecord]) -> Vec<LayerBlob> {
    layers
        .iter()
        .map(|layer| LayerBlob {
            digest: layer.blob.clone(),
            diff_id: layer.diff_id.clone(),
            size: layer.size,
            media_type: layer.media_type.clone(),
            path: store.blob_path(&layer.blob),
        })
        .collect()
}

fn chain_lowers(store: &Store, snapshot: Option<&str>) -> Result<Vec<PathBuf>> {
    match snapshot {
        Some(id) => store.lowers(id),
        None => Ok(Vec::new()),
    }
}

fn required_dest(output: &OutputSpec) -> Result<&Dest> {
    output.dest.as_ref().ok_or_else(|| {
        anyhow!(
            "Output type `{}` needs `dest`: add `dest=PATH`, or `dest=-` for stdout",
            output.kind
        )
    })
}

/// Returns `SOURCE_DATE_EPOCH` when set, so that rebuilds give equal
/// configs, and the current time otherwise.
fn created_time(options: &LayerOptions) -> DateTime<Utc> {
    options
        .source_date_epoch
        .and_then(|epoch| DateTime::from_timestamp(epoch, 0))
        .unwrap_or_else(Utc::now)
}
