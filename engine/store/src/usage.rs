//! Disk usage: every committed snapshot as a cache record, with what
//! keeps it in use, which images and builds use it, and its children.

use crate::db::parse_kind;
use crate::{Result, SnapshotKind, Store, from_millis, pid_alive};
use anyhow::{anyhow, bail};
use rusqlite::Connection;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;

/// One snapshot as `du` and `prune` see it.
#[derive(Clone, Debug, Serialize)]
pub struct CacheRecord {
    pub id: String,
    pub parent: Option<String>,
    #[serde(rename = "type", serialize_with = "serialize_kind")]
    pub kind: SnapshotKind,
    /// Bytes of the snapshot's own files, not its parents'.
    pub size: u64,
    /// Whether a child snapshot or an image uses this record.
    pub shared: bool,
    /// Why the record is in use right now, or `None`.
    pub in_use: Option<String>,
    pub pinned: bool,
    pub created: chrono::DateTime<chrono::Utc>,
    pub last_used: chrono::DateTime<chrono::Utc>,
    pub use_count: u64,
    /// Images whose snapshot chain contains this record.
    pub images: Vec<String>,
    /// The most recent builds that used this record, newest first.
    pub builds: Vec<String>,
    /// Committed and active snapshots on top of this one.
    #[serde(skip)]
    pub children: Vec<String>,
}

/// The type names BuildKit's `buildctl du` prints.
pub fn kind_type_name(kind: SnapshotKind) -> &'static str {
    match kind {
        SnapshotKind::Regular => "regular",
        SnapshotKind::SourceLocal => "source.local",
        SnapshotKind::CacheMount => "exec.cachemount",
        SnapshotKind::Layer => "layer",
    }
}

fn serialize_kind<S: serde::Serializer>(kind: &SnapshotKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind_type_name(*kind))
}

impl Store {
    /// Lists every committed snapshot as a cache record, oldest first.
    pub fn disk_usage(&self) -> Result<Vec<CacheRecord>> {
        self.remove_dead_leases()?;
        let db = self.db();
        load_records(&db, self)
    }

    /// Pins or unpins the record whose id starts with `prefix`; returns
    /// its full id. Garbage collection and prune never delete a pinned
    /// record or its parents.
    pub fn set_pinned(&self, prefix: &str, pinned: bool) -> Result<String> {
        let db = self.db();
        let id = resolve_id(&db, prefix)?;
        db.execute(
            "UPDATE snapshots SET pinned = ?2 WHERE id = ?1",
            rusqlite::params![id, pinned],
        )?;
        Ok(id)
    }
}

/// Finds the one committed snapshot whose id starts with `prefix`.
fn resolve_id(db: &Connection, prefix: &str) -> Result<String> {
    if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("Invalid record id `{prefix}`: expected hex digits from `strata du`");
    }
    let mut stmt = db.prepare(
        "SELECT id FROM snapshots WHERE state = 'committed' AND id LIKE ?1 || '%' LIMIT 2",
    )?;
    let ids: Vec<String> = stmt
        .query_map([prefix.to_ascii_lowercase()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    match ids.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(anyhow!(
            "No cache record `{prefix}`: list record ids with `strata du`"
        )),
        _ => Err(anyhow!(
            "Record id `{prefix}` is ambiguous: give more digits from `strata du --verbose`"
        )),
    }
}

/// Reads every committed snapshot with its use. Run inside the caller's
/// transaction when the result decides what to delete.
pub(crate) fn load_records(db: &Connection, store: &Store) -> Result<Vec<CacheRecord>> {
    let mut records = read_committed(db)?;
    let index: HashMap<String, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();

    for (child, parent, active_owner) in read_children(db)? {
        let Some(&i) = index.get(&parent) else {
            continue;
        };
        records[i].children.push(child.clone());
        if let Some(pid) = active_owner {
            records[i].in_use = Some(format!(
                "parent of snapshot `{child}` being written by pid {pid}"
            ));
        }
    }
    for (snapshot, reason) in read_leased(db)? {
        if let Some(&i) = index.get(&snapshot) {
            records[i].in_use = Some(reason);
        }
    }
    for (image, top) in read_image_tops(db)? {
        let mut next = Some(top);
        let mut seen = HashSet::new();
        while let Some(id) = next.take().filter(|id| seen.insert(id.clone())) {
            let Some(&i) = index.get(&id) else { break };
            records[i].images.push(image.clone());
            next = records[i].parent.clone();
        }
    }
    for (snapshot, build) in read_builds(db)? {
        if let Some(&i) = index.get(&snapshot) {
            records[i].builds.push(build);
        }
    }
    for record in &mut records {
        record.shared = !record.children.is_empty() || !record.images.is_empty();
        if record.in_use.is_none() && record.kind == SnapshotKind::SourceLocal {
            record.in_use = context_lock_holder(store, &record.id);
        }
    }
    Ok(records)
}

fn read_committed(db: &Connection) -> Result<Vec<CacheRecord>> {
    let mut stmt = db.prepare(
        "SELECT id, parent, kind, size, pinned, created, last_used, use_count, owner_pid
         FROM snapshots WHERE state = 'committed' ORDER BY created, id",
    )?;
    let rows = stmt.query_map([], |row| {
        let created: i64 = row.get(5)?;
        let last_used: Option<i64> = row.get(6)?;
        let owner: Option<i64> = row.get(8)?;
        let kind: String = row.get(2)?;
        let record = CacheRecord {
            id: row.get(0)?,
            parent: row.get(1)?,
            kind: SnapshotKind::Regular,
            size: row.get::<_, i64>(3)? as u64,
            shared: false,
            in_use: owner
                .filter(|pid| pid_alive(*pid))
                .map(|pid| format!("claimed by running process {pid}")),
            pinned: row.get(4)?,
            created: from_millis(created),
            last_used: from_millis(last_used.unwrap_or(created)),
            use_count: row.get::<_, i64>(7)? as u64,
            images: Vec::new(),
            builds: Vec::new(),
            children: Vec::new(),
        };
        Ok((record, kind))
    })?;
    let mut records = Vec::new();
    for row in rows {
        let (record, kind) = row?;
        records.push(CacheRecord {
            kind: parse_kind(&kind)?,
            ..record
        });
    }
    Ok(records)
}

/// Returns (child, parent, owner pid when the child is active and its
/// owner alive) for every snapshot with a parent.
fn read_children(db: &Connection) -> Result<Vec<(String, String, Option<i64>)>> {
    let mut stmt =
        db.prepare("SELECT id, parent, state, owner_pid FROM snapshots WHERE parent IS NOT NULL")?;
    let rows = stmt.query_map([], |row| {
        let state: String = row.get(2)?;
        let owner: Option<i64> = row.get(3)?;
        // An active child of a dead process is garbage that recovery
        // removes, but it still needs its parent until then.
        let active = (state == "active").then(|| owner.unwrap_or(0));
        Ok((row.get(0)?, row.get(1)?, active))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Returns (snapshot, reason) for snapshots in leases of live processes.
fn read_leased(db: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = db.prepare(
        "SELECT s.snapshot, l.owner_pid, l.build_id
         FROM lease_snapshots s JOIN leases l ON l.id = s.lease",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut leased = Vec::new();
    for row in rows {
        let (snapshot, pid, build) = row?;
        if !pid_alive(pid) {
            continue;
        }
        let reason = match build {
            Some(build) => format!("used by build `{build}` (pid {pid})"),
            None => format!("leased by pid {pid}"),
        };
        leased.push((snapshot, reason));
    }
    Ok(leased)
}

fn read_image_tops(db: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt =
        db.prepare("SELECT name, snapshot FROM images WHERE snapshot IS NOT NULL ORDER BY name")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn read_builds(db: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt =
        db.prepare("SELECT snapshot, build_id FROM snapshot_builds ORDER BY used DESC")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Returns a reason when a build holds the context mirror's lock. The
/// lock is taken and dropped at once, never held.
fn context_lock_holder(store: &Store, id: &str) -> Option<String> {
    let path = store.snapshot_dir(id).join("fs.lock");
    let file = File::options().write(true).open(&path).ok()?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(_lock) => None,
        Err(_) => Some("context mirror locked by a running build".to_string()),
    }
}

/// Groups records by id, for planners that walk parents and children.
pub(crate) fn by_id(records: &[CacheRecord]) -> BTreeMap<&str, &CacheRecord> {
    records.iter().map(|r| (r.id.as_str(), r)).collect()
}
