//! Overlay snapshots: `snapshots/<id>/fs` is a snapshot's own files, an
//! overlayfs upper dir, so whiteouts are character devices 0/0 and opaque
//! directories carry `trusted.overlay.opaque=y`.
//!
//! A snapshot's row is written before its directory is created and deleted
//! after its directory is removed, so a directory without a row is always
//! garbage left by a killed process.

use crate::db::{kind_name, parse_kind};
use crate::{ActiveSnapshot, Result, SnapshotInfo, SnapshotKind, Store, from_millis, now_millis};
use anyhow::{Context, anyhow, bail};
use rusqlite::{OptionalExtension, params};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Maximum parent chain length that `lowers` follows. Linux overlayfs
/// accepts at most 500 lower dirs (`OVL_MAX_STACK`), so a longer chain can
/// only be a cycle in a damaged database.
const MAX_CHAIN: usize = 500;

/// How long `context_snapshot` waits for garbage collection to finish
/// deleting the mirror it wants.
const CONTEXT_DELETE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Store {
    /// Starts a new snapshot on top of `parent`.
    pub fn prepare(&self, parent: Option<&str>, kind: SnapshotKind) -> Result<ActiveSnapshot> {
        let lowers = match parent {
            Some(parent) => self.lowers(parent)?,
            None => Vec::new(),
        };
        let id = new_snapshot_id();
        self.db()
            .execute(
                "INSERT INTO snapshots (id, parent, kind, state, owner_pid, created)
                 VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
                params![
                    id,
                    parent,
                    kind_name(kind),
                    std::process::id(),
                    now_millis()
                ],
            )
            .with_context(|| format!("Failed to record snapshot `{id}`"))?;

        let dir = self.snapshot_dir(&id);
        let (upper, work) = (dir.join("fs"), dir.join("work"));
        let created = std::fs::create_dir_all(&upper).and_then(|()| std::fs::create_dir(&work));
        if let Err(e) = created {
            let _ = self.delete_snapshot(&id);
            bail!(
                "Failed to create snapshot directory `{}`: {e}",
                dir.display()
            );
        }
        Ok(ActiveSnapshot {
            id,
            parent: parent.map(str::to_string),
            kind,
            upper,
            work,
            lowers,
        })
    }

    /// Makes an active snapshot permanent and returns its id.
    pub fn commit(&self, active: ActiveSnapshot) -> Result<String> {
        let dir = self.snapshot_dir(&active.id);
        // overlayfs leaves a root-only `work/work` dir behind; the work dir
        // is of no use once nothing mounts the snapshot.
        match std::fs::remove_dir_all(&active.work) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("Failed to remove `{}`: {e}", active.work.display()),
        }
        let size = dir_size(&dir.join("fs"))?;
        // NOTE: snapshot files are not fsynced. A killed process loses
        // nothing, but a power cut can leave a committed snapshot with
        // truncated files.
        // The row keeps `owner_pid`: until a lease takes the snapshot, this
        // process's claim keeps garbage collection away from it.
        // NOTE: a snapshot that no lease ever takes (its step failed after
        // the commit) stays in use until this process exits.
        let updated = self.db().execute(
            "UPDATE snapshots SET state = 'committed', size = ?2
             WHERE id = ?1 AND state = 'active'",
            params![active.id, size],
        )?;
        if updated != 1 {
            bail!(
                "Snapshot `{}` is not active: it was committed, aborted or removed by recovery",
                active.id
            );
        }
        Ok(active.id)
    }

    /// Returns the id and files directory of the build-context mirror
    /// identified by `key` (hex), creating it on first use.
    ///
    /// Unlike other snapshots a context mirror is committed from the start
    /// and updated in place by the context sync, which serialises its
    /// writers with a lock file next to the `fs` directory.
    ///
    /// The mirror is claimed by this process, so it stays in use until a
    /// lease takes it. When garbage collection is deleting the mirror, this
    /// waits for the deletion to finish and creates it again.
    pub fn context_snapshot(&self, key: &str) -> Result<(String, PathBuf)> {
        let id: String = key
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(32)
            .collect();
        if id.len() != 32 {
            bail!("Invalid context key `{key}`: expected at least 32 hex digits");
        }
        let started = std::time::Instant::now();
        while !self.claim_context_snapshot(&id)? {
            if started.elapsed() > CONTEXT_DELETE_WAIT {
                bail!(
                    "Context mirror `{id}` is still being deleted by another process after \
                     {}s: run the build again",
                    CONTEXT_DELETE_WAIT.as_secs()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let files = self.snapshot_dir(&id).join("fs");
        std::fs::create_dir_all(&files)
            .with_context(|| format!("Failed to create `{}`", files.display()))?;
        Ok((id, files))
    }

    /// Creates or claims the mirror row; returns false while garbage
    /// collection holds it as an active snapshot to delete it.
    fn claim_context_snapshot(&self, id: &str) -> Result<bool> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO snapshots (id, parent, kind, state, owner_pid, created)
             VALUES (?1, NULL, ?2, 'committed', NULL, ?3)",
            params![id, kind_name(SnapshotKind::SourceLocal), now_millis()],
        )?;
        let claimed = tx.execute(
            "UPDATE snapshots SET owner_pid = ?2 WHERE id = ?1 AND state = 'committed'",
            params![id, std::process::id()],
        )?;
        tx.commit()?;
        Ok(claimed == 1)
    }

    /// Measures a context mirror after a sync changed it in place.
    pub fn update_context_size(&self, id: &str) -> Result<u64> {
        let size = dir_size(&self.snapshot_dir(id).join("fs"))?;
        self.db().execute(
            "UPDATE snapshots SET size = ?2 WHERE id = ?1",
            params![id, size],
        )?;
        Ok(size)
    }

    /// Deletes an active snapshot.
    pub fn abort(&self, active: ActiveSnapshot) -> Result<()> {
        self.delete_snapshot(&active.id)
    }

    /// Returns the directories of a committed snapshot's chain, its own
    /// first, for overlayfs `lowerdir`.
    pub fn lowers(&self, id: &str) -> Result<Vec<PathBuf>> {
        let db = self.db();
        let mut lowers = Vec::new();
        let mut next = Some(id.to_string());
        while let Some(current) = next {
            if lowers.len() == MAX_CHAIN {
                bail!("Snapshot `{id}` has a parent chain longer than {MAX_CHAIN}");
            }
            let (parent, state): (Option<String>, String) = db
                .query_row(
                    "SELECT parent, state FROM snapshots WHERE id = ?1",
                    [&current],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| anyhow!("Snapshot `{current}` not found"))?;
            if state != "committed" {
                bail!("Snapshot `{current}` is still active: commit it before building on it");
            }
            lowers.push(self.snapshot_dir(&current).join("fs"));
            next = parent;
        }
        Ok(lowers)
    }

    pub fn snapshot(&self, id: &str) -> Result<SnapshotInfo> {
        let db = self.db();
        db.query_row(
            "SELECT id, parent, kind, created, size FROM snapshots
             WHERE id = ?1 AND state = 'committed'",
            [id],
            snapshot_row,
        )
        .optional()?
        .ok_or_else(|| anyhow!("Snapshot `{id}` not found"))?
    }

    /// Lists committed snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id, parent, kind, created, size FROM snapshots
             WHERE state = 'committed' ORDER BY created, id",
        )?;
        let rows = stmt.query_map([], snapshot_row)?;
        rows.map(|row| row?).collect()
    }

    pub(crate) fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.root().join("snapshots").join(id)
    }

    /// Removes a snapshot's directory, then its row.
    pub(crate) fn delete_snapshot(&self, id: &str) -> Result<()> {
        remove_dir_if_present(&self.snapshot_dir(id))?;
        crate::recover::delete_snapshots(&mut self.db(), &HashSet::from([id.to_string()]))
            .with_context(|| format!("Failed to delete snapshot `{id}`"))
    }
}

pub(crate) fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("Failed to remove `{}`: {e}", dir.display())),
    }
}

fn snapshot_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SnapshotInfo>> {
    let kind: String = row.get(2)?;
    let info = SnapshotInfo {
        id: row.get(0)?,
        parent: row.get(1)?,
        kind: SnapshotKind::Layer,
        created: from_millis(row.get(3)?),
        size: row.get::<_, i64>(4)? as u64,
    };
    Ok(parse_kind(&kind).map(|kind| SnapshotInfo { kind, ..info }))
}

/// Returns 32 random hex digits.
fn new_snapshot_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Sums the apparent size of the non-directory entries under `dir`,
/// counting each hard linked inode once. Directory sizes depend on the
/// filesystem, so they are left out.
fn dir_size(dir: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.with_context(|| format!("Failed to measure `{}`", dir.display()))?;
        let meta = entry.metadata()?;
        if meta.is_dir() || (meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino()))) {
            continue;
        }
        total += meta.len();
    }
    Ok(total)
}
