//! Recovery on open: removes what processes killed mid-write left behind.
//!
//! Other live processes may be using the store at the same time, so only
//! files and rows owned by dead pids, or never visible as committed, are
//! touched:
//! - temp files under `tmp/` whose writer pid is dead,
//! - leases whose owner pid is dead,
//! - active snapshots whose owner pid is dead,
//! - snapshot directories without a row (rows are written first),
//! - committed snapshots whose `fs` directory is gone, with their
//!   descendants and the cache records and images that use them,
//! - cache records that point at no committed snapshot.

use crate::snapshot::remove_dir_if_present;
use crate::{Result, Store, content, pid_alive};
use anyhow::Context;
use rusqlite::{Connection, TransactionBehavior};
use std::collections::{HashMap, HashSet};

impl Store {
    pub(crate) fn recover(&self) -> Result<()> {
        self.remove_stale_tmp()?;
        self.remove_dead_leases()?;
        self.remove_dead_active_snapshots()?;
        self.remove_orphan_snapshot_dirs()?;
        self.remove_broken_snapshots()?;
        let removed = self.db().execute(
            "DELETE FROM cache_records WHERE snapshot IS NOT NULL
             AND snapshot NOT IN (SELECT id FROM snapshots WHERE state = 'committed')",
            [],
        )?;
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed cache records without a committed snapshot"
            );
        }
        Ok(())
    }

    fn remove_stale_tmp(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        let entries = std::fs::read_dir(&tmp)
            .with_context(|| format!("Failed to list `{}`", tmp.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let owner = content::tmp_owner(&name.to_string_lossy());
            if owner.is_some_and(pid_alive) {
                continue;
            }
            let path = entry.path();
            let removed = if entry.file_type()?.is_dir() {
                remove_dir_if_present(&path)
            } else {
                std::fs::remove_file(&path)
                    .or_else(ignore_not_found)
                    .map_err(Into::into)
            };
            match removed {
                Ok(()) => tracing::info!(path = %path.display(), "removed stale temp file"),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "failed to remove stale temp file")
                }
            }
        }
        Ok(())
    }

    fn remove_dead_active_snapshots(&self) -> Result<()> {
        let active: Vec<(String, Option<i64>)> = {
            let db = self.db();
            let mut stmt =
                db.prepare("SELECT id, owner_pid FROM snapshots WHERE state = 'active'")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        // Garbage collection marks a whole chain active before deleting it,
        // so a killed collector leaves parents and children here together.
        // Their rows go in one transaction, children never outliving parents.
        let mut dead = HashSet::new();
        for (id, owner) in active {
            if owner.is_some_and(pid_alive) {
                continue;
            }
            remove_dir_if_present(&self.snapshot_dir(&id))?;
            tracing::info!(snapshot = %id, pid = owner, "removed active snapshot of a dead process");
            dead.insert(id);
        }
        if dead.is_empty() {
            return Ok(());
        }
        delete_snapshots(&mut self.db(), &dead)
    }

    fn remove_orphan_snapshot_dirs(&self) -> Result<()> {
        let dir = self.root().join("snapshots");
        // List the directories before reading the rows. A process writes a
        // snapshot's row before creating its directory, so every directory
        // listed here already has its row unless it is garbage.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .with_context(|| format!("Failed to list `{}`", dir.display()))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        let known = self.snapshot_rows()?;
        for name in names.into_iter().filter(|name| !known.contains_key(name)) {
            remove_dir_if_present(&self.snapshot_dir(&name))?;
            tracing::info!(snapshot = %name, "removed snapshot directory without a record");
        }
        Ok(())
    }

    fn remove_broken_snapshots(&self) -> Result<()> {
        let rows = self.snapshot_rows()?;
        let mut broken: HashSet<String> = rows
            .iter()
            .filter(|(id, (_, state))| {
                state == "committed" && !self.snapshot_dir(id).join("fs").is_dir()
            })
            .map(|(id, _)| id.clone())
            .collect();
        if broken.is_empty() {
            return Ok(());
        }
        // A snapshot on top of a broken one is broken too.
        loop {
            let before = broken.len();
            for (id, (parent, _)) in &rows {
                if parent.as_ref().is_some_and(|p| broken.contains(p)) {
                    broken.insert(id.clone());
                }
            }
            if broken.len() == before {
                break;
            }
        }
        for id in &broken {
            remove_dir_if_present(&self.snapshot_dir(id))?;
            tracing::warn!(snapshot = %id, "removed snapshot whose files are missing");
        }
        delete_snapshots(&mut self.db(), &broken)
    }

    /// Returns every snapshot row as id → (parent, state).
    fn snapshot_rows(&self) -> Result<HashMap<String, (Option<String>, String)>> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT id, parent, state FROM snapshots")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Deletes the rows of `ids` and every row that refers to them, in one
/// transaction. Images on these snapshots are deleted, since their files
/// are gone; importing or pulling them again restores them.
pub(crate) fn delete_snapshots(db: &mut Connection, ids: &HashSet<String>) -> Result<()> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // The rows refer to each other through `parent`; check the foreign keys
    // once, at commit, rather than after each delete.
    tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
    for id in ids {
        let images: Vec<String> = {
            let mut stmt = tx.prepare("SELECT name FROM images WHERE snapshot = ?1")?;
            stmt.query_map([id], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for name in images {
            tracing::warn!(image = %name, snapshot = %id, "removed image whose snapshot is missing");
            crate::image::delete_image_rows(&tx, &name)?;
        }
        tx.execute(
            "DELETE FROM blob_refs WHERE owner_kind = 'layer' AND owner = ?1",
            [id],
        )?;
        tx.execute("DELETE FROM snapshots WHERE id = ?1", [id])?;
    }
    tx.commit()?;
    Ok(())
}

fn ignore_not_found(error: std::io::Error) -> std::io::Result<()> {
    if error.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(error)
    }
}
