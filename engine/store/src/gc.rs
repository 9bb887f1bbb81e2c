//! Garbage collection: `prune` with BuildKit's options and the automatic
//! policy list that runs after each build.
//!
//! One prune runs in three steps. In one IMMEDIATE transaction it reads
//! every record, decides what to delete, deletes the victims' cache keys
//! and marks the victims active under this process's pid, so builds can
//! neither look them up nor lease them. It then removes their directories,
//! children before parents, and deletes their rows in one transaction. A
//! collector killed in between leaves active snapshots of a dead pid, which
//! recovery removes on the next open. Last, it deletes blobs that nothing
//! references.

use crate::filter::{Filter, matches_all};
use crate::usage::{CacheRecord, by_id, load_records};
use crate::{Result, SnapshotKind, Store, now_millis, pid_alive};
use anyhow::Context;
use rusqlite::{Connection, TransactionBehavior, params};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

pub use crate::filter::{parse_duration, parse_filter, parse_size};

/// Free space to keep on the store's filesystem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FreeSpace {
    Bytes(u64),
    /// Percent of the filesystem's size.
    Percent(f64),
}

/// What one prune deletes.
#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    /// Also delete `layer` records that no image uses.
    pub all: bool,
    /// Delete only records matching every filter key.
    pub filters: Vec<Filter>,
    /// Keep records used within this duration.
    pub keep_duration: Option<Duration>,
    /// Stop deleting once all records together take at most this many bytes.
    pub keep_storage: Option<u64>,
    /// Stop deleting once the filesystem has this much free space.
    pub min_free_space: Option<FreeSpace>,
    /// Decide, but delete nothing.
    pub dry_run: bool,
}

/// Why prune kept a record.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum KeepReason {
    InUse(String),
    Pinned,
    UsedByImage(String),
    NotMatched,
    LayerWithoutAll,
    WithinKeepDuration,
    UnderStorageLimit,
    ParentOf(String),
}

impl std::fmt::Display for KeepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepReason::InUse(why) => write!(f, "in use: {why}"),
            KeepReason::Pinned => write!(f, "pinned: `strata cache unpin` releases it"),
            KeepReason::UsedByImage(name) => write!(f, "used by image `{name}`"),
            KeepReason::NotMatched => write!(f, "does not match the filters"),
            KeepReason::LayerWithoutAll => write!(f, "image layer: pass `--all` to delete it"),
            KeepReason::WithinKeepDuration => write!(f, "used within the keep duration"),
            KeepReason::UnderStorageLimit => write!(f, "within the storage limit"),
            KeepReason::ParentOf(child) => write!(f, "parent of kept record `{child}`"),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct KeptRecord {
    #[serde(flatten)]
    pub record: CacheRecord,
    pub kept: KeepReason,
}

/// What a prune deleted, or would delete on a dry run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub deleted: Vec<CacheRecord>,
    pub kept: Vec<KeptRecord>,
    /// Bytes of the deleted records.
    pub reclaimed: u64,
    pub blobs_deleted: usize,
    pub blob_bytes: u64,
}

impl Store {
    /// Deletes the records `options` selects, then unreferenced blobs.
    pub fn prune(&self, options: &PruneOptions) -> Result<PruneReport> {
        self.remove_dead_leases()?;
        let mut report = self.select_and_mark(options)?;
        if options.dry_run {
            return Ok(report);
        }
        self.delete_marked(&report.deleted)?;
        let (count, bytes) = self.sweep_blobs()?;
        report.blobs_deleted = count;
        report.blob_bytes = bytes;
        Ok(report)
    }

    /// Runs the policies in order, as the automatic collection after each
    /// build does, and returns the combined report.
    pub fn gc(&self, policies: &[PruneOptions]) -> Result<PruneReport> {
        let mut total = PruneReport::default();
        for policy in policies {
            let report = self.prune(policy)?;
            total.reclaimed += report.reclaimed;
            total.blobs_deleted += report.blobs_deleted;
            total.blob_bytes += report.blob_bytes;
            total.deleted.extend(report.deleted);
            total.kept = report.kept;
        }
        Ok(total)
    }

    fn select_and_mark(&self, options: &PruneOptions) -> Result<PruneReport> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let records = load_records(&tx, self)?;
        let free = match options.min_free_space {
            Some(_) => Some(filesystem_space(self.root())?),
            None => None,
        };
        let plan = plan(&records, options, free, chrono::Utc::now());
        if !options.dry_run {
            mark_victims(&tx, &plan.deleted)?;
        }
        tx.commit()?;
        Ok(plan)
    }

    /// Removes marked snapshots' directories, children first, then their
    /// rows in one transaction.
    fn delete_marked(&self, victims: &[CacheRecord]) -> Result<()> {
        if victims.is_empty() {
            return Ok(());
        }
        for record in victims {
            crate::snapshot::remove_dir_if_present(&self.snapshot_dir(&record.id))?;
        }
        let ids: HashSet<String> = victims.iter().map(|r| r.id.clone()).collect();
        crate::recover::delete_snapshots(&mut self.db(), &ids)
            .context("Failed to delete pruned snapshots")?;
        for record in victims {
            tracing::info!(snapshot = %record.id, size = record.size, "pruned cache record");
        }
        Ok(())
    }

    /// Deletes blobs without a reference that are older than every live
    /// lease, so a running build's new blobs survive until it references
    /// them. Blob writers take the same lock shared while they install.
    fn sweep_blobs(&self) -> Result<(usize, u64)> {
        let _lock = crate::content::lock_content(self.root(), true)?;
        let (referenced, cutoff) = {
            let db = self.db();
            (referenced_blobs(&db)?, blob_cutoff(&db)?)
        };
        let dir = self.root().join("content/sha256");
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("Failed to list `{}`", dir.display()))?;
        let (mut count, mut bytes) = (0, 0);
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if referenced.contains(&name) {
                continue;
            }
            let meta = entry.metadata()?;
            let modified = filetime::FileTime::from_last_modification_time(&meta);
            let modified_ms =
                modified.unix_seconds() * 1000 + i64::from(modified.nanoseconds() / 1_000_000);
            if modified_ms >= cutoff {
                continue;
            }
            std::fs::remove_file(entry.path())
                .with_context(|| format!("Failed to remove `{}`", entry.path().display()))?;
            tracing::info!(blob = %name, "removed unreferenced blob");
            count += 1;
            bytes += meta.len();
        }
        Ok((count, bytes))
    }
}

/// Decides what to delete. Pure, so tests can call it with any records.
pub(crate) fn plan(
    records: &[CacheRecord],
    options: &PruneOptions,
    free: Option<(u64, u64)>,
    now: chrono::DateTime<chrono::Utc>,
) -> PruneReport {
    let mut reasons: HashMap<&str, KeepReason> = records
        .iter()
        .filter_map(|r| own_keep_reason(r, options, now).map(|k| (r.id.as_str(), k)))
        .collect();
    keep_parents_of_kept(records, &mut reasons);

    let candidates: Vec<&CacheRecord> = records
        .iter()
        .filter(|r| !reasons.contains_key(r.id.as_str()))
        .collect();
    let deleted = select_within_limits(records, &candidates, options, free);
    let chosen: HashSet<&str> = deleted.iter().map(|r| r.id.as_str()).collect();
    for record in candidates
        .iter()
        .filter(|r| !chosen.contains(r.id.as_str()))
    {
        reasons.insert(record.id.as_str(), KeepReason::UnderStorageLimit);
    }

    let kept = records
        .iter()
        .filter_map(|r| {
            reasons.get(r.id.as_str()).map(|kept| KeptRecord {
                record: r.clone(),
                kept: kept.clone(),
            })
        })
        .collect();
    PruneReport {
        reclaimed: deleted.iter().map(|r| r.size).sum(),
        deleted,
        kept,
        blobs_deleted: 0,
        blob_bytes: 0,
    }
}

/// The reason a record is kept for itself, before its children count.
fn own_keep_reason(
    record: &CacheRecord,
    options: &PruneOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<KeepReason> {
    if let Some(why) = &record.in_use {
        return Some(KeepReason::InUse(why.clone()));
    }
    if record.pinned {
        return Some(KeepReason::Pinned);
    }
    if let Some(image) = record.images.first() {
        return Some(KeepReason::UsedByImage(image.clone()));
    }
    if !matches_all(&options.filters, record, now) {
        return Some(KeepReason::NotMatched);
    }
    if record.kind == SnapshotKind::Layer && !options.all {
        return Some(KeepReason::LayerWithoutAll);
    }
    let recent = options.keep_duration.is_some_and(|keep| {
        let age = now.signed_duration_since(record.last_used);
        age.to_std().map_or(true, |age| age < keep)
    });
    recent.then_some(KeepReason::WithinKeepDuration)
}

/// Keeps every ancestor of a kept record, so no child loses its parent.
fn keep_parents_of_kept<'a>(
    records: &'a [CacheRecord],
    reasons: &mut HashMap<&'a str, KeepReason>,
) {
    let index = by_id(records);
    let kept: Vec<&str> = reasons.keys().copied().collect();
    for child in kept {
        let mut next = index.get(child).and_then(|r| r.parent.as_deref());
        while let Some(parent) = next {
            let Some((&key, record)) = index.get_key_value(parent) else {
                break;
            };
            if reasons.contains_key(key) {
                // Its own ancestors are handled when it is visited.
                break;
            }
            reasons.insert(key, KeepReason::ParentOf(child.to_string()));
            next = record.parent.as_deref();
        }
    }
}

/// Picks candidates to delete, lowest score first and children before
/// parents, until the storage limits hold; with no limit, picks them all.
fn select_within_limits(
    records: &[CacheRecord],
    candidates: &[&CacheRecord],
    options: &PruneOptions,
    free: Option<(u64, u64)>,
) -> Vec<CacheRecord> {
    let mut total: u64 = records.iter().map(|r| r.size).sum();
    let mut free_bytes = free.map(|(free, _)| free);
    let min_free = match (options.min_free_space, free) {
        (Some(FreeSpace::Bytes(bytes)), _) => Some(bytes),
        (Some(FreeSpace::Percent(pct)), Some((_, size))) => {
            Some((size as f64 * pct / 100.0) as u64)
        }
        _ => None,
    };
    let limited = options.keep_storage.is_some() || min_free.is_some();
    let over_limit = |total: u64, free_bytes: Option<u64>| {
        options.keep_storage.is_some_and(|keep| total > keep)
            || min_free.is_some_and(|min| free_bytes.is_some_and(|free| free < min))
    };

    let scores = scores(candidates);
    let mut pending_children: HashMap<&str, usize> = candidates
        .iter()
        .map(|r| (r.id.as_str(), r.children.len()))
        .collect();
    let parent_of: HashMap<&str, &str> = candidates
        .iter()
        .filter_map(|r| Some((r.id.as_str(), r.parent.as_deref()?)))
        .collect();
    let mut ready: BTreeSet<(u64, &str)> = pending_children
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| (scores[id], *id))
        .collect();
    let by_id: HashMap<&str, &CacheRecord> =
        candidates.iter().map(|r| (r.id.as_str(), *r)).collect();

    let mut chosen = Vec::new();
    while let Some((_, id)) = ready.pop_first() {
        if limited && !over_limit(total, free_bytes) {
            break;
        }
        let record = by_id[id];
        total = total.saturating_sub(record.size);
        free_bytes = free_bytes.map(|free| free + record.size);
        chosen.push(record.clone());
        if let Some(parent) = parent_of.get(id) {
            if let Some(pending) = pending_children.get_mut(parent) {
                *pending -= 1;
                if *pending == 0 {
                    ready.insert((scores[parent], parent));
                }
            }
        }
    }
    chosen
}

/// Scores candidates by recency and use count, BuildKit's order for what
/// to delete first: the sum of each record's rank by last use and by use
/// count, both from least to most. Lower goes first.
fn scores<'a>(candidates: &[&'a CacheRecord]) -> HashMap<&'a str, u64> {
    let mut by_recency: Vec<&CacheRecord> = candidates.to_vec();
    by_recency.sort_by_key(|r| (r.last_used, r.id.clone()));
    let mut by_count: Vec<&CacheRecord> = candidates.to_vec();
    by_count.sort_by_key(|r| (r.use_count, r.last_used, r.id.clone()));
    let mut scores: HashMap<&str, u64> = HashMap::new();
    for ranked in [by_recency, by_count] {
        for (rank, record) in ranked.into_iter().enumerate() {
            *scores.entry(record.id.as_str()).or_default() += rank as u64;
        }
    }
    scores
}

/// Deletes the victims' cache keys and marks them active under this pid,
/// inside the transaction that chose them.
///
/// NOTE: cache records without a snapshot (ops with an empty result) are
/// never pruned. They hold no files, only a row each.
fn mark_victims(tx: &Connection, victims: &[CacheRecord]) -> Result<()> {
    for record in victims {
        tx.execute(
            "DELETE FROM cache_records WHERE snapshot = ?1",
            [&record.id],
        )?;
        let marked = tx.execute(
            "UPDATE snapshots SET state = 'active', owner_pid = ?2
             WHERE id = ?1 AND state = 'committed'",
            params![record.id, std::process::id()],
        )?;
        anyhow::ensure!(
            marked == 1,
            "Snapshot `{}` changed while pruning",
            record.id
        );
    }
    Ok(())
}

/// Blob hex digests with a reference from an image or a layer snapshot.
fn referenced_blobs(db: &Connection) -> Result<HashSet<String>> {
    let mut stmt = db.prepare("SELECT DISTINCT blob FROM blob_refs")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    let mut hexes = HashSet::new();
    for row in rows {
        let digest = row?;
        hexes.insert(digest.trim_start_matches("sha256:").to_string());
    }
    Ok(hexes)
}

/// Blobs modified at or after this time (ms) are kept: the oldest live
/// lease's creation, or now, less a margin for coarse file timestamps.
fn blob_cutoff(db: &Connection) -> Result<i64> {
    const MARGIN_MS: i64 = 2_000;
    let mut stmt = db.prepare("SELECT owner_pid, created FROM leases")?;
    let rows = stmt.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))?;
    let mut cutoff = now_millis();
    for row in rows {
        let (pid, created) = row?;
        if pid_alive(pid) {
            cutoff = cutoff.min(created);
        }
    }
    Ok(cutoff - MARGIN_MS)
}

/// Returns (free bytes for unprivileged users, filesystem size) of the
/// filesystem holding `root`.
pub fn filesystem_space(root: &std::path::Path) -> Result<(u64, u64)> {
    let stat = nix::sys::statvfs::statvfs(root)
        .with_context(|| format!("Failed to read the free space of `{}`", root.display()))?;
    let fragment = stat.fragment_size() as u64;
    Ok((
        stat.blocks_available() as u64 * fragment,
        stat.blocks() as u64 * fragment,
    ))
}

/// BuildKit's default policy list: context mirrors and cache mounts unused
/// for 48 hours, then anything unused for 60 days, then the least valuable
/// records above `keep_storage` bytes.
pub fn default_policies(keep_storage: u64) -> Vec<PruneOptions> {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    vec![
        PruneOptions {
            all: true,
            filters: vec![
                parse_filter("type==source.local").expect("valid filter"),
                parse_filter("type==exec.cachemount").expect("valid filter"),
            ],
            keep_duration: Some(hours(48)),
            ..PruneOptions::default()
        },
        PruneOptions {
            all: true,
            keep_duration: Some(hours(60 * 24)),
            ..PruneOptions::default()
        },
        PruneOptions {
            all: true,
            keep_storage: Some(keep_storage),
            ..PruneOptions::default()
        },
    ]
}

/// The default storage limit: 10% of the store's filesystem, at most 20 GB.
pub fn default_keep_storage(root: &std::path::Path) -> Result<u64> {
    const CAP: u64 = 20_000_000_000;
    let (_, size) = filesystem_space(root)?;
    Ok((size / 10).min(CAP))
}
