//! Step logs kept for the details panel, bounded per step.

use std::collections::HashMap;
use strata_solver::LogStream;

/// Bytes of log kept per step; past it the oldest half is dropped, so a
/// step that writes without end cannot exhaust memory.
const MAX_STEP_LOG: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, Default)]
pub struct StepLog {
    pub text: String,
    /// Bytes dropped from the start because of `MAX_STEP_LOG`.
    pub dropped: u64,
    pub stderr_bytes: u64,
}

#[derive(Clone, Debug, Default)]
pub struct StepLogs {
    steps: HashMap<String, StepLog>,
}

impl StepLogs {
    pub fn append(&mut self, vertex: &str, stream: LogStream, data: &str) {
        let log = self.steps.entry(vertex.to_string()).or_default();
        if stream == LogStream::Stderr {
            log.stderr_bytes += data.len() as u64;
        }
        log.text.push_str(data);
        if log.text.len() > MAX_STEP_LOG {
            let mut cut = log.text.len() - MAX_STEP_LOG / 2;
            while !log.text.is_char_boundary(cut) {
                cut += 1;
            }
            log.text.drain(..cut);
            log.dropped += cut as u64;
        }
    }

    pub fn get(&self, vertex: &str) -> Option<&StepLog> {
        self.steps.get(vertex)
    }
}
