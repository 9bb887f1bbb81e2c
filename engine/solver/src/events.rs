//! Build events: the one stream every front end (CLI progress, workbench,
//! history) reads. The format is versioned JSON, one object per event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use strata_llb::{Digest, SourceLocation};
use tokio::sync::mpsc;

/// Version of the serialized event format; bump on incompatible changes.
pub const EVENT_FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Something that happened during a build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    BuildStarted {
        build_id: String,
    },
    /// A vertex the target needs; sent for every vertex before any starts.
    VertexQueued {
        vertex: Digest,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<SourceLocation>,
        inputs: Vec<Digest>,
    },
    VertexStarted {
        vertex: Digest,
    },
    /// The parts of a vertex's cache key, recorded so a later build can
    /// explain why the key changed.
    CacheKey {
        vertex: Digest,
        key: Digest,
        /// Digest of the op with its inputs removed.
        op: Digest,
        inputs: Vec<KeyInput>,
    },
    /// The vertex's result came from the cache under `key`.
    VertexCached {
        vertex: Digest,
        key: Digest,
    },
    VertexCompleted {
        vertex: Digest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Digest>,
        duration_ms: u64,
    },
    VertexFailed {
        vertex: Digest,
        error: String,
        duration_ms: u64,
    },
    Log {
        vertex: Digest,
        stream: LogStream,
        data: String,
    },
    /// Progress of a long task inside a vertex, such as a transfer.
    Progress {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vertex: Option<Digest>,
        id: String,
        current: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        unit: String,
    },
    /// Counters of one sync of a local source.
    ContextTransfer {
        vertex: Digest,
        stats: TransferStats,
    },
    Warning {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<SourceLocation>,
    },
    /// A step outside the graph, such as exporting, shown like a vertex.
    Phase {
        id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
    /// The reasons each step that ran missed the cache, sent after the
    /// result is known and before `BuildFinished`.
    Explanations {
        steps: Vec<ExplainedStep>,
    },
    BuildFinished {
        success: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        duration_ms: u64,
    },
    /// A cache key missed the local cache and hit a cache imported with
    /// `--cache-from`; `source` names it. The `VertexCached` of the vertex
    /// with this key follows.
    CacheImported {
        key: Digest,
        source: String,
    },
    /// Progress of one layer of an image pull, sent at most a few times a
    /// second per layer and status, and always for the last byte.
    LayerProgress {
        /// Id of the `Phase` the layer belongs to, such as the pull of
        /// one image.
        phase: String,
        /// The layer's blob digest.
        layer: Digest,
        status: LayerStatus,
        /// Bytes done: downloaded, or read from the blob while unpacking.
        current: u64,
        /// Bytes of the blob, as the image manifest lists them.
        total: u64,
    },
}

/// The stage of a layer during an image pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerStatus {
    Downloading,
    /// The blob is downloaded and its digest matches.
    Verified,
    Extracting,
    /// The layer is unpacked and its diff id matches.
    Extracted,
}

impl LayerStatus {
    /// Returns whether this status ends its task: downloading ends with
    /// `Verified`, extracting with `Extracted`.
    pub fn is_final(self) -> bool {
        matches!(self, LayerStatus::Verified | LayerStatus::Extracted)
    }
}

/// An event with the wall-clock time it was sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StampedEvent {
    pub v: u32,
    pub time: DateTime<Utc>,
    #[serde(flatten)]
    pub event: Event,
}

/// The sending half of an event stream; cheap to clone. A sink whose
/// receiver is gone drops events silently, because progress output must
/// never fail a build.
#[derive(Clone, Debug)]
pub struct EventSink {
    sender: Option<mpsc::UnboundedSender<StampedEvent>>,
    recorder: Option<Arc<Mutex<Vec<StampedEvent>>>>,
}

impl EventSink {
    /// Creates a sink and the receiver its events arrive on.
    pub fn channel() -> (EventSink, mpsc::UnboundedReceiver<StampedEvent>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            EventSink {
                sender: Some(sender),
                recorder: None,
            },
            receiver,
        )
    }

    /// Creates a sink that drops every event.
    pub fn discard() -> EventSink {
        EventSink {
            sender: None,
            recorder: None,
        }
    }

    /// Returns a sink that also appends every event to the returned list,
    /// in the order they are sent, before passing it on.
    pub fn with_recorder(&self) -> (EventSink, Arc<Mutex<Vec<StampedEvent>>>) {
        let recorder = Arc::new(Mutex::new(Vec::new()));
        (
            EventSink {
                sender: self.sender.clone(),
                recorder: Some(recorder.clone()),
            },
            recorder,
        )
    }

    pub fn emit(&self, event: Event) {
        let stamped = StampedEvent {
            v: EVENT_FORMAT_VERSION,
            time: Utc::now(),
            event,
        };
        if let Some(recorder) = &self.recorder {
            recorder
                .lock()
                .expect("event recorder lock")
                .push(stamped.clone());
        }
        if let Some(sender) = &self.sender {
            let _ = sender.send(stamped);
        }
    }
}

/// Counters for one build-context sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferStats {
    /// Entries visited in the context directory.
    pub walked: u64,
    pub copied_files: u64,
    pub copied_bytes: u64,
    /// Entries deleted from the mirror because the context no longer has them.
    pub removed: u64,
    /// Entries skipped because `.dockerignore` excludes them.
    pub ignored: u64,
    pub duration_ms: u64,
    /// Whether the sync walked every followed path, rather than only the
    /// paths a file watcher reported as changed.
    #[serde(default = "default_true")]
    pub full_walk: bool,
    /// Context paths that were copied, created or removed (removals first),
    /// at most [`TransferStats::MAX_CHANGED_PATHS`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_paths: Vec<String>,
    /// How many paths changed, including those left out of `changed_paths`.
    #[serde(default)]
    pub changed_total: u64,
}

impl Default for TransferStats {
    fn default() -> TransferStats {
        TransferStats {
            walked: 0,
            copied_files: 0,
            copied_bytes: 0,
            removed: 0,
            ignored: 0,
            duration_ms: 0,
            full_walk: true,
            changed_paths: Vec::new(),
            changed_total: 0,
        }
    }
}

impl TransferStats {
    /// Cap on `changed_paths`, so one event stays small when a whole tree
    /// changes.
    pub const MAX_CHANGED_PATHS: usize = 100;

    /// Counts a changed path and keeps it while the list has room.
    pub fn record_changed(&mut self, path: &str) {
        self.changed_total += 1;
        if self.changed_paths.len() < Self::MAX_CHANGED_PATHS {
            self.changed_paths.push(path.to_string());
        }
    }
}

fn default_true() -> bool {
    true
}

/// One input's part of a cache key: the input's own key, or the checksums
/// of the paths an op copies from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInput {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Digest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<PathChecksum>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathChecksum {
    pub path: String,
    pub checksum: Digest,
}

/// A step that ran and the reasons it missed the cache, as sentences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainedStep {
    pub vertex: Digest,
    pub step: String,
    pub reasons: Vec<String>,
}
