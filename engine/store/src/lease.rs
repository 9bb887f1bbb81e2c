//! Leases: the snapshots a running build reads or produces.
//!
//! A lease is a row owned by a process. Every snapshot added to it, and
//! every ancestor of those, is in use until the lease is released or its
//! owner dies, so garbage collection never deletes it. Looking up a cache
//! record and leasing its snapshot happen in one transaction, and garbage
//! collection selects and marks its victims in one transaction too, so
//! the two cannot interleave.

use crate::{Result, Store, now_millis, pid_alive};
use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::sync::Arc;
use strata_llb::Digest;

/// How many builds `snapshot_builds` remembers per snapshot.
const BUILDS_PER_SNAPSHOT: i64 = 20;

/// Snapshots kept in use for one build; released on drop.
pub struct Lease {
    store: Arc<Store>,
    id: String,
    build_id: Option<String>,
}

impl Store {
    /// Creates a lease owned by this process. `build_id` is recorded on
    /// every snapshot the lease takes, for `du`.
    pub fn lease(self: &Arc<Self>, build_id: Option<&str>) -> Result<Lease> {
        let id = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        self.db()
            .execute(
                "INSERT INTO leases (id, owner_pid, build_id, created) VALUES (?1, ?2, ?3, ?4)",
                params![id, std::process::id(), build_id, now_millis()],
            )
            .with_context(|| format!("Failed to create lease `{id}`"))?;
        Ok(Lease {
            store: self.clone(),
            id,
            build_id: build_id.map(str::to_string),
        })
    }

    /// Deletes leases whose owner process is gone.
    pub(crate) fn remove_dead_leases(&self) -> Result<()> {
        let db = self.db();
        let owners: Vec<(String, i64)> = {
            let mut stmt = db.prepare("SELECT id, owner_pid FROM leases")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, pid) in owners.into_iter().filter(|(_, pid)| !pid_alive(*pid)) {
            db.execute("DELETE FROM leases WHERE id = ?1", [&id])?;
            tracing::info!(lease = %id, pid, "removed lease of a dead process");
        }
        Ok(())
    }
}

impl Lease {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds a committed snapshot (and so its ancestors) to the lease and
    /// counts it as used.
    pub fn add(&self, snapshot: &str) -> Result<()> {
        let mut db = self.store.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.add_in(&tx, snapshot)?;
        tx.commit()?;
        Ok(())
    }

    /// Looks up the result of a cache key, leases its snapshot and marks
    /// both used, in one transaction.
    pub fn cache_get(&self, key: &Digest) -> Result<Option<Option<String>>> {
        let mut db = self.store.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<Option<String>> = tx
            .query_row(
                "SELECT snapshot FROM cache_records WHERE key = ?1",
                [key.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        if found.is_some() {
            tx.execute(
                "UPDATE cache_records SET last_used = ?2, use_count = use_count + 1
                 WHERE key = ?1",
                params![key.as_str(), now_millis()],
            )?;
        }
        if let Some(Some(snapshot)) = &found {
            self.add_in(&tx, snapshot)?;
        }
        tx.commit()?;
        Ok(found)
    }

    /// Releases the lease; dropping it does the same but logs errors.
    pub fn release(mut self) -> Result<()> {
        let id = std::mem::take(&mut self.id);
        delete_lease(&self.store.db(), &id)
    }

    fn add_in(&self, tx: &Connection, snapshot: &str) -> Result<()> {
        let state: Option<String> = tx
            .query_row(
                "SELECT state FROM snapshots WHERE id = ?1",
                [snapshot],
                |row| row.get(0),
            )
            .optional()?;
        match state.as_deref() {
            Some("committed") => {}
            Some(_) => bail!(
                "Snapshot `{snapshot}` is being written or deleted by another process: \
                 run the build again"
            ),
            None => bail!("Snapshot `{snapshot}` not found: it was pruned; run the build again"),
        }
        let added = tx.execute(
            "INSERT OR IGNORE INTO lease_snapshots (lease, snapshot) VALUES (?1, ?2)",
            params![self.id, snapshot],
        )?;
        if added == 0 {
            return Ok(());
        }
        let now = now_millis();
        // The lease now keeps the snapshot in use, so this process's claim
        // from `commit` or `context_snapshot` is no longer needed.
        tx.execute(
            "UPDATE snapshots SET last_used = ?2, use_count = use_count + 1,
                 owner_pid = CASE WHEN owner_pid = ?3 THEN NULL ELSE owner_pid END
             WHERE id = ?1",
            params![snapshot, now, std::process::id()],
        )?;
        if let Some(build) = &self.build_id {
            record_build(tx, snapshot, build, now)?;
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        if let Err(error) = delete_lease(&self.store.db(), &self.id) {
            tracing::warn!(lease = %self.id, "failed to release a lease: {error:#}");
        }
    }
}

fn delete_lease(db: &Connection, id: &str) -> Result<()> {
    db.execute("DELETE FROM leases WHERE id = ?1", [id])
        .with_context(|| format!("Failed to release lease `{id}`"))?;
    Ok(())
}

/// Records that `build` used `snapshot`, keeping the newest
/// [`BUILDS_PER_SNAPSHOT`] builds.
fn record_build(tx: &Connection, snapshot: &str, build: &str, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO snapshot_builds (snapshot, build_id, used) VALUES (?1, ?2, ?3)
         ON CONFLICT (snapshot, build_id) DO UPDATE SET used = excluded.used",
        params![snapshot, build, now],
    )?;
    tx.execute(
        "DELETE FROM snapshot_builds WHERE snapshot = ?1 AND build_id NOT IN (
             SELECT build_id FROM snapshot_builds WHERE snapshot = ?1
             ORDER BY used DESC LIMIT ?2)",
        params![snapshot, BUILDS_PER_SNAPSHOT],
    )?;
    Ok(())
}
