//! Cache records: a cache key maps to the snapshot its op produced, or to
//! nothing for ops without a filesystem result. `last_used` and
//! `use_count` feed garbage collection.

use crate::{Result, Store, now_millis};
use anyhow::{Context, bail};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use strata_llb::Digest;

impl Store {
    /// Looks up the result of a cache key and marks it used.
    pub fn cache_get(&self, key: &Digest) -> Result<Option<Option<String>>> {
        let mut db = self.db();
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
        tx.commit()?;
        Ok(found)
    }

    /// Records `snapshot` (a committed snapshot, or `None` for an empty
    /// result) as the result of `key`, replacing an earlier result.
    pub fn cache_put(&self, key: &Digest, snapshot: Option<&str>) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(id) = snapshot {
            let state: Option<String> = tx
                .query_row("SELECT state FROM snapshots WHERE id = ?1", [id], |row| {
                    row.get(0)
                })
                .optional()?;
            match state.as_deref() {
                Some("committed") => {}
                Some(_) => bail!("Cannot cache snapshot `{id}` for `{key}`: it is still active"),
                None => bail!("Cannot cache snapshot `{id}` for `{key}`: snapshot not found"),
            }
        }
        let now = now_millis();
        tx.execute(
            "INSERT INTO cache_records (key, snapshot, created, last_used, use_count)
             VALUES (?1, ?2, ?3, ?3, 0)
             ON CONFLICT (key) DO UPDATE SET snapshot = excluded.snapshot,
                 last_used = excluded.last_used",
            params![key.as_str(), snapshot, now],
        )
        .with_context(|| format!("Failed to record cache key `{key}`"))?;
        tx.commit()?;
        Ok(())
    }
}
