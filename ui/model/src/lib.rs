//! The build view model shared by the workbench (web UI) and the native
//! egui view: node states built from build events, a layered graph layout
//! that stays stable across rebuilds, the waterfall with its critical path,
//! progress of transfers (pulls, the context, exports) and display
//! formatting. The UIs only draw what this crate computes.

pub mod dag;
pub mod format;
pub mod layout;
pub mod progress;
pub mod waterfall;

pub use dag::{DagModel, Edge, Node, NodeState, Stage};
pub use layout::{Layout, LayoutOptions, NodeBox, layout};
pub use progress::{Change, ProgressItem, Transfer, TransferKind};
pub use waterfall::{Bar, Waterfall, waterfall};
