//! Build history: a durable record of every build (request, definition,
//! events with full logs, result, errors), and the analyses built on it:
//! step timings, the critical path, Chrome traces, cache-miss explanations
//! and build comparisons.
//!
//! Records live in the store's SQLite database, in tables this crate owns.

pub mod compare;
pub mod db;
pub mod explain;
pub mod inspect;
pub mod record;
pub mod steps;

pub use compare::{Comparison, compare};
pub use db::{HistoryDb, Retention};
pub use inspect::{Inspection, StepCounts};
pub use record::{BuildRecord, BuildStatus, RecordedError, RequestSummary};
pub use steps::{Step, StepState, critical_path, steps_from_events, to_chrome_trace};
