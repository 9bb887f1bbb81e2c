//! Storage of build records and their events in SQLite.

use crate::record::{BuildRecord, BuildStatus};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;
use strata_solver::StampedEvent;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history_builds (
    id TEXT PRIMARY KEY,
    started TEXT NOT NULL,
    status TEXT NOT NULL,
    project TEXT NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    pid INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_builds_started ON history_builds (started);
CREATE INDEX IF NOT EXISTS history_builds_project ON history_builds (project, started);
CREATE TABLE IF NOT EXISTS history_events (
    build_id TEXT NOT NULL REFERENCES history_builds (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (build_id, seq)
);
CREATE TABLE IF NOT EXISTS history_context_files (
    key TEXT PRIMARY KEY,
    files TEXT NOT NULL
);
";

/// Version of the file [`HistoryDb::export`] writes.
const EXPORT_FORMAT_VERSION: u64 = 1;

/// How many records to keep. Pinned records are always kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_count: Option<usize>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            max_count: Some(200),
        }
    }
}

pub struct HistoryDb {
    connection: Connection,
}

impl HistoryDb {
    /// Opens the history tables in the SQLite database at `path`, creating
    /// them when missing, and marks records of builds whose process died as
    /// interrupted.
    pub fn open(path: &Path) -> Result<HistoryDb> {
        let connection = Connection::open(path)
            .with_context(|| format!("Failed to open the history database `{}`", path.display()))?;
        connection.busy_timeout(Duration::from_secs(30))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        // As the store's connection: consistent after a crash, without an
        // fsync per commit.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(SCHEMA)?;
        let db = HistoryDb { connection };
        db.mark_interrupted()?;
        Ok(db)
    }

    fn mark_interrupted(&self) -> Result<()> {
        let mut statement = self
            .connection
            .prepare("SELECT id, pid FROM history_builds WHERE status = 'running'")?;
        let running: Vec<(String, i64)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, pid) in running {
            let alive =
                pid == i64::from(std::process::id()) || Path::new(&format!("/proc/{pid}")).exists();
            if !alive {
                if let Some(mut record) = self.get(&id)? {
                    record.status = BuildStatus::Interrupted;
                    self.put(&record)?;
                }
            }
        }
        Ok(())
    }

    /// Inserts or replaces a record.
    pub fn put(&self, record: &BuildRecord) -> Result<()> {
        upsert(&self.connection, record)
    }

    /// Stores a finished record together with all its events, in one
    /// transaction.
    pub fn finish(&mut self, record: &BuildRecord, events: &[StampedEvent]) -> Result<()> {
        let transaction = self.connection.transaction()?;
        upsert(&transaction, record)?;
        transaction.execute(
            "DELETE FROM history_events WHERE build_id = ?1",
            [&record.id],
        )?;
        {
            let mut insert = transaction
                .prepare("INSERT INTO history_events (build_id, seq, event) VALUES (?1, ?2, ?3)")?;
            for (seq, event) in events.iter().enumerate() {
                insert.execute(params![
                    record.id,
                    seq as i64,
                    serde_json::to_string(event)?
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<BuildRecord>> {
        let text: Option<String> = self
            .connection
            .query_row(
                "SELECT record FROM history_builds WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?;
        text.map(|t| self.parse_with_files(&t)).transpose()
    }

    /// Parses a stored record and loads its context files.
    fn parse_with_files(&self, text: &str) -> Result<BuildRecord> {
        let mut record: BuildRecord = serde_json::from_str(text).context("Corrupt build record")?;
        self.load_context_files(&mut record)?;
        Ok(record)
    }

    /// Fills `record.context_files` from the shared table, for records
    /// stored without the list.
    fn load_context_files(&self, record: &mut BuildRecord) -> Result<()> {
        let Some(key) = &record.context_files_key else {
            return Ok(());
        };
        if !record.context_files.is_empty() {
            return Ok(());
        }
        let files: Option<String> = self
            .connection
            .query_row(
                "SELECT files FROM history_context_files WHERE key = ?1",
                [key],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(files) = files {
            record.context_files = serde_json::from_str(&files).with_context(|| {
                format!("Corrupt context file list `{key}` of build `{}`", record.id)
            })?;
        }
        Ok(())
    }

    /// Lists records, newest first, without their context files (see
    /// [`BuildRecord::context_files_key`]); [`HistoryDb::get`] and
    /// [`HistoryDb::resolve`] load them.
    pub fn list(&self) -> Result<Vec<BuildRecord>> {
        let mut statement = self
            .connection
            .prepare("SELECT record FROM history_builds ORDER BY started DESC, rowid DESC")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|row| Ok(serde_json::from_str(&row?)?)).collect()
    }

    /// Resolves a reference: a full id, a unique id prefix, or `^N` for the
    /// N-th build before the newest (`^0` is the newest).
    pub fn resolve(&self, reference: &str) -> Result<BuildRecord> {
        let records = self.list()?;
        if let Some(offset) = reference.strip_prefix('^') {
            let offset: usize = offset.parse().with_context(|| {
                format!("Invalid build reference `{reference}`: expected `^N` with a number N, such as `^0` for the newest build; list builds with `strata history ls`")
            })?;
            let mut record = records.into_iter().nth(offset).with_context(|| {
                format!("No build at offset `{reference}`: the history has fewer builds; list them with `strata history ls`")
            })?;
            self.load_context_files(&mut record)?;
            return Ok(record);
        }
        if reference.is_empty() {
            bail!(
                "Empty build reference: give an id, an id prefix or `^N`; list builds with `strata history ls`"
            );
        }
        let matches: Vec<BuildRecord> = records
            .into_iter()
            .filter(|r| r.id.starts_with(reference))
            .collect();
        match matches.len() {
            0 => {
                bail!("No build `{reference}` in the history; list builds with `strata history ls`")
            }
            1 => {
                let mut record = matches.into_iter().next().expect("one match");
                self.load_context_files(&mut record)?;
                Ok(record)
            }
            n => bail!(
                "Build reference `{reference}` is ambiguous: it matches {n} builds; give more characters of the id, listed by `strata history ls`"
            ),
        }
    }

    pub fn events(&self, id: &str) -> Result<Vec<StampedEvent>> {
        let mut statement = self
            .connection
            .prepare("SELECT event FROM history_events WHERE build_id = ?1 ORDER BY seq")?;
        let rows = statement.query_map([id], |row| row.get::<_, String>(0))?;
        rows.map(|row| Ok(serde_json::from_str(&row?)?)).collect()
    }

    /// Returns a build's events without its log output, which is all that
    /// step counts and timings need and can be most of the stored bytes.
    pub fn events_without_logs(&self, id: &str) -> Result<Vec<StampedEvent>> {
        let mut statement = self.connection.prepare(
            "SELECT event FROM history_events
             WHERE build_id = ?1 AND json_extract(event, '$.type') != 'log'
             ORDER BY seq",
        )?;
        let rows = statement.query_map([id], |row| row.get::<_, String>(0))?;
        rows.map(|row| Ok(serde_json::from_str(&row?)?)).collect()
    }

    /// Returns the newest finished record of the same project started
    /// before `record`.
    pub fn previous(&self, record: &BuildRecord) -> Result<Option<BuildRecord>> {
        let text: Option<String> = self
            .connection
            .query_row(
                "SELECT record FROM history_builds
                 WHERE project = ?1 AND started < ?2 AND id != ?3 AND status IN ('succeeded', 'failed')
                 ORDER BY started DESC LIMIT 1",
                params![record.request.project_key(), record.started.to_rfc3339(), record.id],
                |row| row.get(0),
            )
            .optional()?;
        text.map(|t| self.parse_with_files(&t)).transpose()
    }

    pub fn remove(&self, id: &str) -> Result<bool> {
        self.connection
            .execute("DELETE FROM history_events WHERE build_id = ?1", [id])?;
        let removed = self
            .connection
            .execute("DELETE FROM history_builds WHERE id = ?1", [id])?
            > 0;
        self.connection.execute(
            "DELETE FROM history_context_files WHERE key NOT IN (
                SELECT json_extract(record, '$.context_files_key') FROM history_builds
                WHERE json_extract(record, '$.context_files_key') IS NOT NULL)",
            [],
        )?;
        Ok(removed)
    }

    pub fn set_pinned(&self, id: &str, pinned: bool) -> Result<()> {
        let mut record = self
            .get(id)?
            .with_context(|| format!("No build `{id}` in the history"))?;
        record.pinned = pinned;
        self.put(&record)
    }

    /// Deletes unpinned, finished records beyond the retention limits and
    /// returns how many were deleted.
    /// Reads only the indexed columns, not the records, so it stays cheap
    /// with hundreds of large records.
    pub fn apply_retention(&self, retention: Retention, now: DateTime<Utc>) -> Result<usize> {
        let mut statement = self.connection.prepare(
            "SELECT id, started FROM history_builds
             WHERE pinned = 0 AND status != ?1
             ORDER BY started DESC, rowid DESC",
        )?;
        let rows: Vec<(String, String)> = statement
            .query_map([BuildStatus::Running.as_str()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut removed = 0;
        for (kept, (id, started)) in rows.into_iter().enumerate() {
            let started = DateTime::parse_from_rfc3339(&started)
                .with_context(|| format!("Corrupt start time `{started}` of build `{id}`"))?;
            let too_old = retention.max_age.is_some_and(|age| {
                (now - started.with_timezone(&Utc))
                    .to_std()
                    .is_ok_and(|elapsed| elapsed > age)
            });
            let too_many = retention.max_count.is_some_and(|count| kept >= count);
            if too_old || too_many {
                self.remove(&id)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Writes a record and its events as one gzip-compressed JSON file.
    pub fn export(&self, id: &str, out: impl Write) -> Result<()> {
        let record = self
            .get(id)?
            .with_context(|| format!("No build `{id}` in the history"))?;
        let events = self.events(id)?;
        let document = serde_json::json!({ "format": "strata-build-record", "version": EXPORT_FORMAT_VERSION, "record": record, "events": events });
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        serde_json::to_writer(&mut encoder, &document)?;
        encoder.finish()?;
        Ok(())
    }

    /// Reads a file written by [`HistoryDb::export`] and stores it; returns
    /// the record's id. A record whose id the history has already is
    /// rejected, so an import never replaces a build.
    pub fn import(&mut self, input: impl Read) -> Result<String> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(input)
            .read_to_string(&mut text)
            .context("Invalid build record file: expected a gzip-compressed file from `strata history export`")?;
        let document: serde_json::Value =
            serde_json::from_str(&text).context("Invalid build record file: not JSON")?;
        if document["format"] != "strata-build-record" {
            bail!("Invalid build record file: the `format` field is not `strata-build-record`");
        }
        let version = document["version"].as_u64();
        if version != Some(EXPORT_FORMAT_VERSION) {
            bail!(
                "Unsupported build record file version `{}`: this Strata reads version {EXPORT_FORMAT_VERSION}; export the record again with this version",
                document["version"]
            );
        }
        let record: BuildRecord = serde_json::from_value(document["record"].clone())
            .context("Invalid build record file: the `record` field is not a build record")?;
        if record.id.is_empty() || record.id.contains(char::is_whitespace) {
            bail!(
                "Invalid build record file: the build id `{}` is empty or contains whitespace",
                record.id
            );
        }
        let events: Vec<StampedEvent> = serde_json::from_value(document["events"].clone())
            .context(
                "Invalid build record file: the `events` field is not a list of build events",
            )?;
        if self.get(&record.id)?.is_some() {
            bail!(
                "Build `{}` is already in the history; remove it first with `strata history rm {}`",
                record.id,
                record.id
            );
        }
        self.finish(&record, &events)?;
        Ok(record.id)
    }
}

/// Stores a record, with its context file list in the shared table under
/// the list's sha256, so builds of an unchanged context store it once.
fn upsert(connection: &Connection, record: &BuildRecord) -> Result<()> {
    let mut stored = std::borrow::Cow::Borrowed(record);
    if !record.context_files.is_empty() {
        // The key is the sha256 of the list's JSON, hashed while it is
        // written, and the JSON is only kept when the table lacks it.
        let mut hasher = HashWriter(Sha256::new());
        serde_json::to_writer(&mut hasher, &*record.context_files)?;
        let key = strata_llb::Digest::from_sha256(hasher.0.finalize().into()).to_string();
        let stored_before: bool = connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM history_context_files WHERE key = ?1)",
            [&key],
            |row| row.get(0),
        )?;
        if !stored_before {
            connection.execute(
                "INSERT INTO history_context_files (key, files) VALUES (?1, ?2)",
                params![key, serde_json::to_string(&*record.context_files)?],
            )?;
        }
        // The record's files are shared, so this copy is cheap.
        let owned = stored.to_mut();
        owned.context_files = Default::default();
        owned.context_files_key = Some(key);
    }
    connection.execute(
        "INSERT INTO history_builds (id, started, status, project, pinned, pid, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET status = ?3, pinned = ?5, record = ?7",
        params![
            record.id,
            record.started.to_rfc3339(),
            record.status.as_str(),
            record.request.project_key(),
            record.pinned,
            std::process::id(),
            serde_json::to_string(&*stored)?,
        ],
    )?;
    Ok(())
}

/// Feeds written bytes to a hasher.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
