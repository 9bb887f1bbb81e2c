//! Tar archives of whole images: the OCI image layout and the `docker save`
//! format, and the destinations they stream into.

use crate::image::{
    CONTAINERD_NAME_ANNOTATION, INDEX_MEDIA_TYPE, ImageBlobs, Index, REF_NAME_ANNOTATION,
};
use crate::output::{Dest, normalize_name, tag_of};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use strata_llb::Digest;
use tar::{EntryType, Header};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes an OCI image layout tar of `image`. With a `name`, the index
/// entry carries it as `io.containerd.image.name` and its tag as
/// `org.opencontainers.image.ref.name`, as BuildKit writes them.
pub fn write_oci_archive(out: impl Write, image: &ImageBlobs, name: Option<&str>) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    append_bytes(&mut builder, "oci-layout", OCI_LAYOUT)?;
    append_blobs(&mut builder, image)?;

    let mut annotations = BTreeMap::new();
    if let Some(name) = name {
        let full = normalize_name(name)?;
        annotations.insert(REF_NAME_ANNOTATION.to_string(), tag_of(&full).to_string());
        annotations.insert(CONTAINERD_NAME_ANNOTATION.to_string(), full);
    }
    append_bytes(&mut builder, "index.json", &index_json(image, annotations)?)?;

    builder
        .into_inner()
        .context("Failed to finish the OCI archive")?
        .flush()?;
    Ok(())
}

/// One image of a `docker save` archive's `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Writes a `docker save` tar of `image` tagged with `names`.
///
/// The archive contains both `manifest.json`, which every `docker load` reads,
/// and an OCI layout (`index.json`, `oci-layout`, `blobs/sha256/`), as
/// Docker 25 and later write it. Layers stay gzip-compressed, which both
/// loaders detect and accept.
pub fn write_docker_archive(out: impl Write, image: &ImageBlobs, names: &[String]) -> Result<()> {
    let mut repo_tags = Vec::new();
    for name in names {
        repo_tags.push(normalize_name(name)?);
    }

    let mut builder = tar::Builder::new(out);
    append_blobs(&mut builder, image)?;

    let entry = DockerManifestEntry {
        config: blob_path(&image.config_digest),
        repo_tags: repo_tags.clone(),
        layers: image.layers.iter().map(|l| blob_path(&l.digest)).collect(),
    };
    let manifest = serde_json::to_vec(&[entry])?;
    append_bytes(&mut builder, "manifest.json", &manifest)?;

    // One index entry per name, the way Docker 25 lists tags.
    let mut descriptors = Vec::new();
    for full in &repo_tags {
        let mut annotations = BTreeMap::new();
        annotations.insert(CONTAINERD_NAME_ANNOTATION.to_string(), full.clone());
        annotations.insert(REF_NAME_ANNOTATION.to_string(), tag_of(full).to_string());
        descriptors.push(image.manifest_descriptor(annotations));
    }
    if descriptors.is_empty() {
        descriptors.push(image.manifest_descriptor(BTreeMap::new()));
    }
    let index = Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE.to_string(),
        manifests: descriptors,
    };
    append_bytes(&mut builder, "index.json", &serde_json::to_vec(&index)?)?;
    append_bytes(&mut builder, "oci-layout", OCI_LAYOUT)?;

    builder
        .into_inner()
        .context("Failed to finish the docker archive")?
        .flush()?;
    Ok(())
}

fn index_json(image: &ImageBlobs, annotations: BTreeMap<String, String>) -> Result<Vec<u8>> {
    let index = Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE.to_string(),
        manifests: vec![image.manifest_descriptor(annotations)],
    };
    Ok(serde_json::to_vec(&index)?)
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Appends the `blobs/sha256/` directories, the layers, the config and the
/// manifest, each blob once.
fn append_blobs<W: Write>(builder: &mut tar::Builder<W>, image: &ImageBlobs) -> Result<()> {
    append_dir(builder, "blobs")?;
    append_dir(builder, "blobs/sha256")?;

    let mut written = std::collections::HashSet::new();
    for layer in &image.layers {
        if !written.insert(layer.digest.clone()) {
            continue;
        }
        let file = File::open(&layer.path)
            .with_context(|| format!("Failed to open layer blob `{}`", layer.path.display()))?;
        let actual = file.metadata()?.len();
        if actual != layer.size {
            bail!(
                "Layer blob `{}` has {actual} bytes but its descriptor says {}: the store is \
                 corrupt, remove the blob and export again",
                layer.path.display(),
                layer.size
            );
        }
        let mut header = file_header(layer.size);
        builder.append_data(&mut header, blob_path(&layer.digest), file)?;
    }

    append_bytes(
        builder,
        &blob_path(&image.config_digest),
        &image.config_json,
    )?;
    append_bytes(
        builder,
        &blob_path(&image.manifest_digest),
        &image.manifest_json,
    )?;
    Ok(())
}

fn file_header(size: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(size);
    header.set_mtime(0);
    header
}

fn append_bytes<W: Write>(builder: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut header = file_header(data.len() as u64);
    builder.append_data(&mut header, path, data)?;
    Ok(())
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut header = Header::new_ustar();
    header.set_entry_type(EntryType::Directory);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header.set_mtime(0);
    builder.append_data(&mut header, path, io::empty())?;
    Ok(())
}

/// A writer into an export destination. A file destination is written to
/// a temporary file beside it and renamed into place by
/// [`DestWriter::commit`], so readers never see a partial archive.
pub struct DestWriter {
    target: Target,
    bytes: u64,
}

enum Target {
    Stdout(BufWriter<io::Stdout>),
    File {
        temp: BufWriter<tempfile::NamedTempFile>,
        path: std::path::PathBuf,
    },
}

impl DestWriter {
    pub fn create(dest: &Dest) -> Result<DestWriter> {
        let target = match dest {
            Dest::Stdout => Target::Stdout(BufWriter::new(io::stdout())),
            Dest::Path(path) => {
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let temp = tempfile::Builder::new()
                    .prefix(".strata-export-")
                    .tempfile_in(parent)
                    .with_context(|| {
                        format!(
                            "Failed to create a temporary file in `{}`: check that the \
                             directory exists and is writable",
                            parent.display()
                        )
                    })?;
                Target::File {
                    temp: BufWriter::new(temp),
                    path: path.clone(),
                }
            }
        };
        Ok(DestWriter { target, bytes: 0 })
    }

    /// Flushes the output, renames a file into place and returns the number
    /// of bytes written.
    pub fn commit(self) -> Result<u64> {
        match self.target {
            Target::Stdout(mut out) => out.flush().context("Failed to write to stdout")?,
            Target::File { temp, path } => {
                let temp = temp.into_inner().map_err(|e| e.into_error())?;
                // Temporary files are created 0600; an export is an ordinary file.
                let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
                temp.as_file().set_permissions(mode)?;
                temp.as_file().sync_all()?;
                temp.persist(&path)
                    .with_context(|| format!("Failed to write `{}`", path.display()))?;
            }
        }
        Ok(self.bytes)
    }
}

impl Write for DestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = match &mut self.target {
            Target::Stdout(out) => out.write(buf)?,
            Target::File { temp, .. } => temp.write(buf)?,
        };
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.target {
            Target::Stdout(out) => out.flush(),
            Target::File { temp, .. } => temp.flush(),
        }
    }
}
