//! Watching a build context for changes between builds.
//!
//! A [`ContextWatcher`] records every changed path under the context into
//! a shared [`ContextChanges`], which the next context sync drains as its
//! dirty paths, and sends the paths that can change the build (those
//! `.dockerignore` does not exclude) as settled batches. When events may
//! have been lost (an inotify queue overflow, a rescan notice, a watcher
//! error, or a network or FUSE filesystem whose remote edits inotify
//! never sees) the next sync walks the whole context instead.

use anyhow::{Context, Result};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{
    DebounceEventResult, DebouncedEvent, new_debouncer, new_debouncer_opt,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_dockerfile::dockerignore::DockerIgnore;
use tokio::sync::mpsc;

/// How long the tree must stay quiet before a batch of changes is sent.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Polling interval on filesystems where inotify misses changes.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What the next sync must read: the dirty paths, or everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingChanges {
    Paths(BTreeSet<String>),
    /// Walk the whole context, for the given reason.
    FullWalk(String),
}

/// The changes recorded since the last sync, shared between the watcher
/// thread and the build that syncs the context.
#[derive(Clone, Debug)]
pub struct ContextChanges {
    inner: Arc<Mutex<Recorded>>,
}

#[derive(Debug)]
struct Recorded {
    paths: BTreeSet<String>,
    full_walk: Option<String>,
    /// Set on filesystems where events are unreliable: every sync walks.
    always_full: Option<String>,
}

impl ContextChanges {
    /// Starts with a full walk pending, because changes made before the
    /// watcher started are unknown.
    fn new(always_full: Option<String>) -> ContextChanges {
        ContextChanges {
            inner: Arc::new(Mutex::new(Recorded {
                paths: BTreeSet::new(),
                full_walk: Some("the watcher has just started".into()),
                always_full,
            })),
        }
    }

    /// Removes and returns what the next sync must read.
    pub fn take(&self) -> PendingChanges {
        let mut recorded = self.inner.lock().expect("context changes lock");
        let paths = std::mem::take(&mut recorded.paths);
        if let Some(reason) = recorded.always_full.clone() {
            recorded.full_walk = None;
            return PendingChanges::FullWalk(reason);
        }
        match recorded.full_walk.take() {
            Some(reason) => PendingChanges::FullWalk(reason),
            None => PendingChanges::Paths(paths),
        }
    }

    /// Puts back changes a failed sync took, so the next sync reads them.
    pub fn restore(&self, pending: PendingChanges) {
        let mut recorded = self.inner.lock().expect("context changes lock");
        match pending {
            PendingChanges::Paths(paths) => recorded.paths.extend(paths),
            PendingChanges::FullWalk(reason) => {
                recorded.full_walk.get_or_insert(reason);
            }
        }
    }

    fn record(&self, path: String) {
        let mut recorded = self.inner.lock().expect("context changes lock");
        recorded.paths.insert(path);
    }

    fn require_full_walk(&self, reason: &str) {
        let mut recorded = self.inner.lock().expect("context changes lock");
        recorded.full_walk.get_or_insert_with(|| reason.to_string());
    }
}

/// What to watch besides the context directory.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// Files outside the context whose changes trigger a rebuild, such as
    /// a Dockerfile given with `-f`.
    pub extra_files: Vec<PathBuf>,
    /// Directories inside the context that the build itself writes (the
    /// store, a local output); their changes never trigger a rebuild.
    pub ignored_dirs: Vec<PathBuf>,
}

/// One settled batch of changes that can affect the build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeBatch {
    /// Changed paths, relative to the context (absolute for extra files).
    pub paths: BTreeSet<String>,
    /// Set when events were lost and the changed paths are unknown.
    pub rescan: Option<String>,
}

/// A running watcher on one context directory; stops when dropped.
pub struct ContextWatcher {
    _debouncer: Box<dyn Send>,
    changes: ContextChanges,
    batches: mpsc::UnboundedReceiver<ChangeBatch>,
}

impl ContextWatcher {
    /// Starts watching `context` recursively.
    pub fn start(context: &Path, options: WatchOptions) -> Result<ContextWatcher> {
        let context = std::fs::canonicalize(context).with_context(|| {
            format!(
                "Build context `{}` is not a readable directory",
                context.display()
            )
        })?;
        let unreliable = unreliable_filesystem(&context);
        let changes = ContextChanges::new(unreliable.clone());
        let (sender, batches) = mpsc::unbounded_channel();
        let mut filter = EventFilter::new(&context, &options, changes.clone(), sender);
        let handler = move |result: DebounceEventResult| filter.handle(result);

        let debouncer: Box<dyn Send> = match &unreliable {
            None => {
                let mut debouncer = new_debouncer(DEBOUNCE, None, handler)
                    .context("Failed to start the file watcher")?;
                watch_all(&mut debouncer, &context, &options)?;
                Box::new(debouncer)
            }
            Some(reason) => {
                tracing::warn!(
                    context = %context.display(),
                    "polling the build context every {POLL_INTERVAL:?} and walking it on every rebuild: {reason}"
                );
                let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
                let mut debouncer = new_debouncer_opt::<_, notify::PollWatcher, _>(
                    DEBOUNCE,
                    None,
                    handler,
                    notify_debouncer_full::NoCache,
                    config,
                )
                .context("Failed to start the polling file watcher")?;
                watch_all(&mut debouncer, &context, &options)?;
                Box::new(debouncer)
            }
        };
        Ok(ContextWatcher {
            _debouncer: debouncer,
            changes,
            batches,
        })
    }

    /// The shared change record to hand to the context sync.
    pub fn changes(&self) -> ContextChanges {
        self.changes.clone()
    }

    /// Waits for the next batch of changes that can affect the build;
    /// `None` when the watcher stopped.
    pub async fn next_batch(&mut self) -> Option<ChangeBatch> {
        let mut batch = self.batches.recv().await?;
        // Batches that settled meanwhile belong to the same rebuild.
        while let Ok(more) = self.batches.try_recv() {
            batch.paths.extend(more.paths);
            batch.rescan = batch.rescan.or(more.rescan);
        }
        Some(batch)
    }
}

fn watch_all<W: notify::Watcher, C: notify_debouncer_full::FileIdCache>(
    debouncer: &mut notify_debouncer_full::Debouncer<W, C>,
    context: &Path,
    options: &WatchOptions,
) -> Result<()> {
    debouncer
        .watch(context, RecursiveMode::Recursive)
        .with_context(|| {
            format!(
                "Failed to watch `{}`; if the error is about the number of watches, raise `fs.inotify.max_user_watches`",
                context.display()
            )
        })?;
    for file in &options.extra_files {
        if file.starts_with(context) {
            continue;
        }
        debouncer
            .watch(file, RecursiveMode::NonRecursive)
            .with_context(|| format!("Failed to watch `{}`", file.display()))?;
    }
    Ok(())
}

/// Turns raw events into recorded dirty paths and batches that matter.
struct EventFilter {
    context: PathBuf,
    ignore: DockerIgnore,
    options: WatchOptions,
    changes: ContextChanges,
    sender: mpsc::UnboundedSender<ChangeBatch>,
}

impl EventFilter {
    fn new(
        context: &Path,
        options: &WatchOptions,
        changes: ContextChanges,
        sender: mpsc::UnboundedSender<ChangeBatch>,
    ) -> EventFilter {
        let mut filter = EventFilter {
            context: context.to_path_buf(),
            ignore: DockerIgnore::default(),
            options: options.clone(),
            changes,
            sender,
        };
        filter.reload_ignore();
        filter
    }

    fn reload_ignore(&mut self) {
        let path = self.context.join(".dockerignore");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        match DockerIgnore::parse(&text) {
            Ok(ignore) => self.ignore = ignore,
            // The build reports the error; until then keep the old rules.
            Err(error) => tracing::debug!("invalid `{}`: {error}", path.display()),
        }
    }

    fn handle(&mut self, result: DebounceEventResult) {
        let mut batch = ChangeBatch::default();
        match result {
            Ok(events) => {
                for event in events {
                    self.handle_event(&event, &mut batch);
                }
            }
            Err(errors) => {
                let reason = format!(
                    "the file watcher failed: {}",
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                tracing::warn!("{reason}; the next build walks the whole context");
                self.changes.require_full_walk(&reason);
                batch.rescan = Some(reason);
            }
        }
        if !batch.paths.is_empty() || batch.rescan.is_some() {
            let _ = self.sender.send(batch);
        }
    }

    fn handle_event(&mut self, event: &DebouncedEvent, batch: &mut ChangeBatch) {
        if event.need_rescan() {
            let reason = "the file watcher lost events".to_string();
            tracing::warn!("{reason}; the next build walks the whole context");
            self.changes.require_full_walk(&reason);
            batch.rescan = Some(reason);
            return;
        }
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in &event.paths {
            if self.options.extra_files.iter().any(|f| f == path) {
                batch.paths.insert(path.display().to_string());
                continue;
            }
            let Ok(relative) = path.strip_prefix(&self.context) else {
                continue;
            };
            let relative = relative.to_string_lossy().into_owned();
            // Every path goes to the sync, even an excluded one, because
            // its parent directory's modification time changed too.
            self.changes.record(relative.clone());
            if self
                .options
                .ignored_dirs
                .iter()
                .any(|d| path.starts_with(d))
            {
                continue;
            }
            if relative == ".dockerignore" {
                self.reload_ignore();
            }
            let always_read = relative == ".dockerignore" || relative == "Dockerfile";
            if always_read || !self.ignore.is_excluded(&relative) {
                batch.paths.insert(relative);
            }
        }
    }
}

/// Returns why inotify cannot be trusted on the filesystem of `dir`, if
/// it cannot: changes made by other machines on network filesystems and
/// by FUSE daemons do not raise inotify events.
pub(crate) fn unreliable_filesystem(dir: &Path) -> Option<String> {
    let stat = nix::sys::statfs::statfs(dir).ok()?;
    let magic = stat.filesystem_type().0 as i64;
    let name = match magic {
        0x6969 => "NFS",
        0x517b => "SMB",
        0xff534d42 => "CIFS",
        0xfe534d42 => "SMB2",
        0x65735546 => "FUSE",
        0x01021997 => "9p",
        0x00c36400 => "Ceph",
        0x47504653 => "GPFS",
        _ => return None,
    };
    Some(format!(
        "`{}` is on {name}, where file events from other machines or daemons are lost",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_start_with_full_walk() {
        let changes = ContextChanges::new(None);
        assert!(matches!(changes.take(), PendingChanges::FullWalk(_)));
        changes.record("a".into());
        assert_eq!(
            changes.take(),
            PendingChanges::Paths(BTreeSet::from(["a".to_string()]))
        );
        assert_eq!(changes.take(), PendingChanges::Paths(BTreeSet::new()));
    }

    #[test]
    fn restored_changes_return() {
        let changes = ContextChanges::new(None);
        changes.take();
        changes.record("a".into());
        let taken = changes.take();
        changes.record("b".into());
        changes.restore(taken);
        assert_eq!(
            changes.take(),
            PendingChanges::Paths(BTreeSet::from(["a".to_string(), "b".to_string()]))
        );
    }

    #[test]
    fn unreliable_filesystem_always_walks() {
        let changes = ContextChanges::new(Some("on NFS".into()));
        changes.take();
        changes.record("a".into());
        assert_eq!(changes.take(), PendingChanges::FullWalk("on NFS".into()));
    }

    async fn next_batch(watcher: &mut ContextWatcher) -> ChangeBatch {
        tokio::time::timeout(Duration::from_secs(10), watcher.next_batch())
            .await
            .expect("no batch within 10 s")
            .expect("the watcher stopped")
    }

    #[tokio::test]
    async fn watcher_reports_changes_not_excluded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "*.log\n").unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        let mut watcher = ContextWatcher::start(dir.path(), WatchOptions::default()).unwrap();
        let changes = watcher.changes();
        changes.take();

        std::fs::write(dir.path().join("debug.log"), "noise").unwrap();
        std::fs::write(dir.path().join("src/main.c"), "int main;").unwrap();
        let batch = next_batch(&mut watcher).await;
        assert_eq!(batch.paths, BTreeSet::from(["src/main.c".to_string()]));
        assert_eq!(batch.rescan, None);
        let PendingChanges::Paths(dirty) = changes.take() else {
            panic!("expected dirty paths");
        };
        assert!(dirty.contains("src/main.c"), "{dirty:?}");
        assert!(
            dirty.contains("debug.log"),
            "excluded paths still reach the sync: {dirty:?}"
        );
    }
}
