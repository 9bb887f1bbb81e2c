//! Images and layer records. Callers normalise image names; the store
//! compares them as plain strings.

use crate::db::parse_digest;
use crate::layer::{apply_layer, decompress_layer};
use crate::{ImageRecord, LayerRecord, Result, SnapshotKind, Store, from_millis};
use anyhow::{Context, anyhow};
use flate2::write::GzEncoder;
use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use strata_llb::Digest;
use strata_llb::image::ImageConfig;

/// Media type of the layers `import_rootfs` writes.
pub const LAYER_MEDIA_TYPE_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

impl Store {
    pub fn layer_of(&self, snapshot: &str) -> Result<Option<LayerRecord>> {
        let db = self.db();
        let row = db
            .query_row(
                "SELECT blob, diff_id, media_type, size FROM layers WHERE snapshot = ?1",
                [snapshot],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get::<_, i64>(3)?)),
            )
            .optional()?;
        row.map(|(blob, diff_id, media_type, size)| layer_record(blob, diff_id, media_type, size))
            .transpose()
    }

    /// Records that `snapshot` holds the unpacked files of `layer`, and
    /// references the layer's blob so it is kept while the snapshot exists.
    pub fn set_layer(&self, snapshot: &str, layer: &LayerRecord) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO layers (snapshot, blob, diff_id, media_type, size)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (snapshot) DO UPDATE SET blob = excluded.blob,
                 diff_id = excluded.diff_id, media_type = excluded.media_type,
                 size = excluded.size",
            params![
                snapshot,
                layer.blob.as_str(),
                layer.diff_id.as_str(),
                layer.media_type,
                layer.size
            ],
        )
        .with_context(|| format!("Failed to record the layer of snapshot `{snapshot}`"))?;
        tx.execute(
            "DELETE FROM blob_refs WHERE owner_kind = 'layer' AND owner = ?1",
            [snapshot],
        )?;
        add_blob_ref(&tx, &layer.blob, "layer", snapshot)?;
        tx.commit()?;
        Ok(())
    }

    /// Records `image`, replacing an image of the same name, and references
    /// its manifest, config and layer blobs.
    pub fn put_image(&self, image: &ImageRecord) -> Result<()> {
        let config = serde_json::to_string(&image.config)?;
        let mut blobs = BTreeSet::from([image.manifest.clone()]);
        blobs.extend(image.layers.iter().map(|layer| layer.blob.clone()));
        if let Ok(manifest) = self.read_blob(&image.manifest) {
            blobs.extend(manifest_blobs(&manifest));
        }

        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        delete_image_rows(&tx, &image.name)?;
        tx.execute(
            "INSERT INTO images (name, manifest, config, snapshot, created)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                image.name,
                image.manifest.as_str(),
                config,
                image.snapshot,
                image.created.timestamp_millis()
            ],
        )
        .with_context(|| format!("Failed to record image `{}`", image.name))?;
        for (position, layer) in image.layers.iter().enumerate() {
            tx.execute(
                "INSERT INTO image_layers (image, position, blob, diff_id, media_type, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    image.name,
                    position,
                    layer.blob.as_str(),
                    layer.diff_id.as_str(),
                    layer.media_type,
                    layer.size
                ],
            )?;
        }
        for blob in &blobs {
            add_blob_ref(&tx, blob, "image", &image.name)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>> {
        read_image(&self.db(), name)
    }

    /// Lists images sorted by name.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let db = self.db();
        let names: Vec<String> = {
            let mut stmt = db.prepare("SELECT name FROM images ORDER BY name")?;
            stmt.query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut images = Vec::with_capacity(names.len());
        for name in names {
            images.extend(read_image(&db, &name)?);
        }
        Ok(images)
    }

    /// Deletes an image record and its blob references; returns whether it
    /// existed. Blobs and snapshots stay until garbage collection.
    pub fn remove_image(&self, name: &str) -> Result<bool> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = delete_image_rows(&tx, name)?;
        tx.commit()?;
        Ok(removed)
    }

    /// Imports a root filesystem tar (plain, gzip or zstd) as a one-layer
    /// image named `name`. The layer is stored gzip-compressed and unpacked
    /// into a `Layer` snapshot; importing the same tar again reuses both.
    pub fn import_rootfs(
        self: &Arc<Self>,
        tar: &Path,
        name: &str,
        config: ImageConfig,
    ) -> Result<ImageRecord> {
        // Keeps the new blobs and snapshot from garbage collection until
        // the image references them.
        let lease = self.lease(None)?;
        let layer = self
            .store_layer_blob(tar)
            .with_context(|| format!("Failed to import `{}`", tar.display()))?;
        let snapshot = match self.layer_snapshot(&layer.diff_id)? {
            Some(id) => id,
            None => self.unpack_layer(tar, &layer)?,
        };

        let mut config = config;
        config.rootfs.kind = "layers".into();
        config.rootfs.diff_ids = vec![layer.diff_id.to_string()];
        let config_json = serde_json::to_vec(&config)?;
        let (config_digest, config_size) = self.write_blob(&mut config_json.as_slice())?;

        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                config_size,
                oci_digest(&config_digest)?,
            ))
            .layers(vec![Descriptor::new(
                MediaType::ImageLayerGzip,
                layer.size,
                oci_digest(&layer.blob)?,
            )])
            .build()?;
        let manifest_json = serde_json::to_vec(&manifest)?;
        let (manifest_digest, _) = self.write_blob(&mut manifest_json.as_slice())?;

        let record = ImageRecord {
            name: name.to_string(),
            manifest: manifest_digest,
            config,
            layers: vec![layer],
            snapshot: Some(snapshot),
            created: chrono::Utc::now(),
        };
        self.put_image(&record)?;
        // Taking the snapshot into the lease ends this process's claim on
        // it; the image keeps it from now on.
        if let Some(snapshot) = &record.snapshot {
            lease.add(snapshot)?;
        }
        lease.release()?;
        Ok(record)
    }

    /// Gzips `tar` into the content store, hashing the uncompressed bytes
    /// for the diff id on the way.
    fn store_layer_blob(&self, tar: &Path) -> Result<LayerRecord> {
        let file =
            File::open(tar).with_context(|| format!("Failed to open `{}`", tar.display()))?;
        let mut reader = decompress_layer(BufReader::new(file))?;
        let mut encoder = GzEncoder::new(self.blob_writer()?, flate2::Compression::default());
        let mut hasher = Sha256::new();
        let mut buf = vec![0; 256 * 1024];
        loop {
            let read = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            hasher.update(&buf[..read]);
            encoder.write_all(&buf[..read])?;
        }
        let (blob, size) = encoder.finish()?.commit()?;
        Ok(LayerRecord {
            blob,
            diff_id: Digest::from_sha256(hasher.finalize().into()),
            media_type: LAYER_MEDIA_TYPE_GZIP.to_string(),
            size,
        })
    }

    /// Finds a committed base-layer snapshot holding `diff_id`.
    fn layer_snapshot(&self, diff_id: &Digest) -> Result<Option<String>> {
        let db = self.db();
        let id = db
            .query_row(
                "SELECT s.id FROM layers l JOIN snapshots s ON s.id = l.snapshot
                 WHERE l.diff_id = ?1 AND s.parent IS NULL AND s.state = 'committed'
                 ORDER BY s.created LIMIT 1",
                [diff_id.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        Ok(id)
    }

    fn unpack_layer(&self, tar: &Path, layer: &LayerRecord) -> Result<String> {
        let active = self.prepare(None, SnapshotKind::Layer)?;
        let unpacked = File::open(tar)
            .map_err(anyhow::Error::from)
            .and_then(|file| decompress_layer(BufReader::new(file)))
            .and_then(|reader| apply_layer(reader, &active.upper));
        match unpacked {
            Ok(stats) => {
                if stats.skipped_devices > 0 {
                    tracing::warn!(tar = %tar.display(), count = stats.skipped_devices, "skipped device nodes");
                }
            }
            Err(e) => {
                let _ = self.abort(active);
                return Err(e.context(format!("Failed to unpack `{}`", tar.display())));
            }
        }
        let id = self.commit(active)?;
        self.set_layer(&id, layer)?;
        Ok(id)
    }
}

/// Deletes an image's rows and blob references; returns whether it existed.
pub(crate) fn delete_image_rows(tx: &Connection, name: &str) -> Result<bool> {
    tx.execute(
        "DELETE FROM blob_refs WHERE owner_kind = 'image' AND owner = ?1",
        [name],
    )?;
    tx.execute("DELETE FROM image_layers WHERE image = ?1", [name])?;
    Ok(tx.execute("DELETE FROM images WHERE name = ?1", [name])? > 0)
}

fn add_blob_ref(tx: &Connection, blob: &Digest, kind: &str, owner: &str) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO blob_refs (blob, owner_kind, owner) VALUES (?1, ?2, ?3)",
        params![blob.as_str(), kind, owner],
    )?;
    Ok(())
}

/// Returns the config and layer digests a manifest names; an unreadable
/// manifest names none.
fn manifest_blobs(manifest: &[u8]) -> Vec<Digest> {
    let Ok(manifest) = serde_json::from_slice::<oci_spec::image::ImageManifest>(manifest) else {
        return Vec::new();
    };
    std::iter::once(manifest.config())
        .chain(manifest.layers())
        .filter_map(|descriptor| descriptor.digest().to_string().parse().ok())
        .collect()
}

fn oci_digest(digest: &Digest) -> Result<oci_spec::image::Digest> {
    digest
        .as_str()
        .parse()
        .map_err(|e| anyhow!("Invalid digest `{digest}`: {e}"))
}

fn layer_record(
    blob: String,
    diff_id: String,
    media_type: String,
    size: i64,
) -> Result<LayerRecord> {
    Ok(LayerRecord {
        blob: parse_digest(blob)?,
        diff_id: parse_digest(diff_id)?,
        media_type,
        size: size as u64,
    })
}

fn read_image(db: &Connection, name: &str) -> Result<Option<ImageRecord>> {
    let row: Option<(String, String, Option<String>, i64)> = db
        .query_row(
            "SELECT manifest, config, snapshot, created FROM images WHERE name = ?1",
            [name],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    let Some((manifest, config, snapshot, created)) = row else {
        return Ok(None);
    };
    let config: ImageConfig = serde_json::from_str(&config)
        .map_err(|e| anyhow!("Invalid config of image `{name}` in the metadata database: {e}"))?;

    let mut stmt = db.prepare(
        "SELECT blob, diff_id, media_type, size FROM image_layers
         WHERE image = ?1 ORDER BY position",
    )?;
    let layers = stmt
        .query_map([name], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .map(|row| {
            let (blob, diff_id, media_type, size) = row?;
            layer_record(blob, diff_id, media_type, size)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(ImageRecord {
        name: name.to_string(),
        manifest: parse_digest(manifest)?,
        config,
        layers,
        snapshot,
        created: from_millis(created),
    }))
}
