//! Per-layer progress of a pull, reported through a callback so that the
//! caller decides how to show it.

use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_llb::Digest;

/// The shortest time between two byte-count updates of one layer, so a
/// download reports a few times a second rather than once per chunk.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(250);

/// The stage of a layer during a pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerStatus {
    /// The blob is downloading; `current` counts bytes received.
    Downloading,
    /// The blob is downloaded and its digest matches.
    Verified,
    /// The blob is unpacking into a snapshot; `current` counts
    /// compressed bytes read.
    Extracting,
    /// The snapshot is committed and its diff id matches.
    Extracted,
}

/// One update of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerProgress {
    /// The layer's blob digest.
    pub layer: Digest,
    pub status: LayerStatus,
    /// Bytes done.
    pub current: u64,
    /// Bytes of the blob, as its manifest lists them.
    pub total: u64,
}

/// The receiver of layer updates; it runs on download tasks and on
/// blocking threads, so it must be cheap.
pub type ProgressFn = Arc<dyn Fn(LayerProgress) + Send + Sync>;

/// Returns a receiver that drops every update.
pub fn no_progress() -> ProgressFn {
    Arc::new(|_| {})
}

/// Forwards one layer's byte counts in one status at most every
/// [`UPDATE_INTERVAL`], and always the first and the last.
pub(crate) struct Throttle {
    report: ProgressFn,
    layer: Digest,
    status: LayerStatus,
    total: u64,
    last: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new(
        report: &ProgressFn,
        layer: &Digest,
        status: LayerStatus,
        total: u64,
    ) -> Throttle {
        Throttle {
            report: report.clone(),
            layer: layer.clone(),
            status,
            total,
            last: None,
        }
    }

    /// Reports `current` bytes done if the interval passed or it is the
    /// first or the last count.
    pub(crate) fn update(&mut self, current: u64) {
        let due = match self.last {
            None => true,
            Some(last) => current >= self.total || last.elapsed() >= UPDATE_INTERVAL,
        };
        if due {
            self.last = Some(Instant::now());
            self.send(self.status, current);
        }
    }

    /// Reports the final status with every byte done.
    pub(crate) fn finish(&self, status: LayerStatus) {
        self.send(status, self.total);
    }

    fn send(&self, status: LayerStatus, current: u64) {
        (self.report)(LayerProgress {
            layer: self.layer.clone(),
            status,
            current,
            total: self.total,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn throttle_sends_first_and_last() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let report: ProgressFn = Arc::new(move |p| sink.lock().unwrap().push(p.current));
        let digest = Digest::of_bytes(b"layer");
        let mut throttle = Throttle::new(&report, &digest, LayerStatus::Downloading, 100);
        for current in [0, 10, 20, 30, 100] {
            throttle.update(current);
        }
        throttle.finish(LayerStatus::Verified);
        // The middle counts come within the interval and are dropped.
        assert_eq!(*seen.lock().unwrap(), [0, 100, 100]);
    }
}
