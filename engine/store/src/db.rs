//! The metadata database: schema, migrations and the layout `VERSION` file.
//!
//! Times are integer milliseconds since the Unix epoch. Digests are stored
//! in their `sha256:<hex>` text form.

use crate::{LAYOUT_VERSION, Result};
use anyhow::{Context, anyhow, bail};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// How long a writer waits for another process's transaction to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Schema migrations; entry `n` moves the schema from version `n` to `n + 1`.
/// Append new entries, never edit old ones.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE snapshots (
    id        TEXT PRIMARY KEY,
    parent    TEXT REFERENCES snapshots(id),
    kind      TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('active', 'committed')),
    owner_pid INTEGER,
    created   INTEGER NOT NULL,
    size      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX snapshots_parent ON snapshots(parent);

CREATE TABLE cache_records (
    key       TEXT PRIMARY KEY,
    snapshot  TEXT REFERENCES snapshots(id) ON DELETE CASCADE,
    created   INTEGER NOT NULL,
    last_used INTEGER NOT NULL,
    use_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cache_records_snapshot ON cache_records(snapshot);

CREATE TABLE layers (
    snapshot   TEXT PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
    blob       TEXT NOT NULL,
    diff_id    TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL
);
CREATE INDEX layers_diff_id ON layers(diff_id);

CREATE TABLE images (
    name     TEXT PRIMARY KEY,
    manifest TEXT NOT NULL,
    config   TEXT NOT NULL,
    snapshot TEXT REFERENCES snapshots(id),
    created  INTEGER NOT NULL
);

CREATE TABLE image_layers (
    image      TEXT NOT NULL REFERENCES images(name) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    blob       TEXT NOT NULL,
    diff_id    TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (image, position)
);

-- Who holds each blob: ('image', name) or ('layer', snapshot id). Garbage
-- collection deletes only blobs without a row here.
CREATE TABLE blob_refs (
    blob       TEXT NOT NULL,
    owner_kind TEXT NOT NULL,
    owner      TEXT NOT NULL,
    PRIMARY KEY (blob, owner_kind, owner)
);
CREATE INDEX blob_refs_owner ON blob_refs(owner_kind, owner);
"#,
    r#"
-- Use and pinning of snapshots, for `du` and garbage collection. A
-- committed snapshot keeps the `owner_pid` that created or claimed it until
-- a lease takes it over, so it stays in use in between.
ALTER TABLE snapshots ADD COLUMN last_used INTEGER;
ALTER TABLE snapshots ADD COLUMN use_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE snapshots ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;

-- A lease keeps snapshots in use while its owner process lives, so garbage
-- collection skips them and their ancestors.
CREATE TABLE leases (
    id        TEXT PRIMARY KEY,
    owner_pid INTEGER NOT NULL,
    build_id  TEXT,
    created   INTEGER NOT NULL
);
CREATE TABLE lease_snapshots (
    lease    TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    snapshot TEXT NOT NULL,
    PRIMARY KEY (lease, snapshot)
);
CREATE INDEX lease_snapshots_snapshot ON lease_snapshots(snapshot);

-- The most recent builds that used each snapshot.
CREATE TABLE snapshot_builds (
    snapshot TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    build_id TEXT NOT NULL,
    used     INTEGER NOT NULL,
    PRIMARY KEY (snapshot, build_id)
);
"#,
];

/// Opens `path`, sets WAL mode and the busy timeout, and migrates the
/// schema to the newest version.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)
        .with_context(|| format!("Failed to open the metadata database `{}`", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets readers in other processes run while one process writes.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!(
            "Failed to put `{}` in WAL mode: SQLite kept `{mode}`",
            path.display()
        );
    }
    // NORMAL skips the fsync of every commit; in WAL mode the database
    // stays consistent after any crash, and a killed process loses nothing.
    // A power cut can lose the last commits, which costs cache hits only:
    // snapshot files are not fsynced either, so FULL would not make a
    // committed record safer than its files.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    migrate(&mut conn).with_context(|| format!("Failed to migrate `{}`", path.display()))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    // IMMEDIATE takes the write lock up front, so two processes opening a
    // new store do not both run the first migration.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        [],
    )?;
    let current: Option<i64> = tx
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .optional()?;
    let current = current.unwrap_or(0);
    let newest = MIGRATIONS.len() as i64;
    if current > newest {
        bail!(
            "Database schema version `{current}` is newer than this build's `{newest}`: \
             upgrade strata or point `STRATA_ROOT` at another directory"
        );
    }
    if current == newest {
        // Nothing to write, so a store on a full disk still opens and
        // `strata prune` can free space.
        tx.rollback()?;
        return Ok(());
    }
    for migration in &MIGRATIONS[current as usize..] {
        tx.execute_batch(migration)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [newest])?;
    tx.commit()?;
    Ok(())
}

/// Reads `VERSION` under `root`, writing it when missing, and rejects a
/// layout newer than [`LAYOUT_VERSION`].
pub(crate) fn check_layout_version(root: &Path) -> Result<()> {
    let path = root.join("VERSION");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let version: u32 = text.trim().parse().map_err(|_| {
                anyhow!(
                    "Invalid store layout version `{}` in `{}`: expected a number",
                    text.trim(),
                    path.display()
                )
            })?;
            if version > LAYOUT_VERSION {
                bail!(
                    "Store `{}` has layout version `{version}`, newer than this build's \
                     `{LAYOUT_VERSION}`: upgrade strata or point `STRATA_ROOT` at another directory",
                    root.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_layout_version(root, &path),
        Err(e) => Err(anyhow!("Failed to read `{}`: {e}", path.display())),
    }
}

/// Writes `VERSION` through a temp file so a reader never sees it empty.
fn write_layout_version(root: &Path, path: &Path) -> Result<()> {
    let tmp = crate::content::tmp_path(&root.join("tmp"));
    let mut file = std::fs::File::create(&tmp)
        .with_context(|| format!("Failed to create `{}`", tmp.display()))?;
    writeln!(file, "{LAYOUT_VERSION}")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("Failed to write `{}`", path.display()))?;
    Ok(())
}

pub(crate) fn kind_name(kind: crate::SnapshotKind) -> &'static str {
    use crate::SnapshotKind::*;
    match kind {
        Layer => "layer",
        Regular => "regular",
        SourceLocal => "source-local",
        CacheMount => "cache-mount",
    }
}

pub(crate) fn parse_kind(name: &str) -> Result<crate::SnapshotKind> {
    use crate::SnapshotKind::*;
    Ok(match name {
        "layer" => Layer,
        "regular" => Regular,
        "source-local" => SourceLocal,
        "cache-mount" => CacheMount,
        other => bail!("Invalid snapshot kind `{other}` in the metadata database"),
    })
}

pub(crate) fn parse_digest(text: String) -> Result<strata_llb::Digest> {
    text.parse()
        .map_err(|e| anyhow!("{e}, found in the metadata database"))
}
