//! The solver: turns a definition into results, running independent
//! vertices in parallel and reusing cached results by key.
//!
//! The solver never touches the filesystem or starts processes; it reaches
//! the world only through a [`Backend`].

pub mod backend;
pub mod events;
mod solve;

pub use backend::{Backend, ResultRef, Selector, SourceResult, VertexContext};
pub use events::{
    EVENT_FORMAT_VERSION, Event, EventSink, ExplainedStep, KeyInput, LogStream, PathChecksum,
    StampedEvent, TransferStats,
};
pub use solve::{DEFAULT_STEPS_PER_CPU, SolveError, SolveOptions, Solver, default_max_parallel};
