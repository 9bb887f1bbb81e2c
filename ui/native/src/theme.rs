//! Every colour the native view draws with, so the DAG, the waterfall and
//! the legend agree on what a state or a kind of work looks like.

use eframe::egui::{Color32, Stroke};
use strata_ui_model::NodeState;
use strata_ui_model::waterfall::WorkKind;

pub const BACKGROUND: Color32 = Color32::from_rgb(0x1e, 0x20, 0x24);
pub const EDGE: Color32 = Color32::from_rgb(0x6b, 0x72, 0x80);
pub const NODE_TEXT: Color32 = Color32::from_rgb(0xf3, 0xf4, 0xf6);
pub const SELECTION: Color32 = Color32::from_rgb(0xfa, 0xcc, 0x15);
pub const CRITICAL: Color32 = Color32::from_rgb(0xf9, 0x73, 0x16);
pub const LANE_TEXT: Color32 = Color32::from_rgb(0x9c, 0xa3, 0xaf);
pub const ERROR_TEXT: Color32 = Color32::from_rgb(0xfc, 0xa5, 0xa5);
pub const STDERR_TEXT: Color32 = Color32::from_rgb(0xfd, 0xba, 0x74);

/// Fill of a DAG node in the given state.
pub fn node_fill(state: NodeState) -> Color32 {
    match state {
        NodeState::Queued => Color32::from_rgb(0x37, 0x41, 0x51),
        NodeState::Running => Color32::from_rgb(0x25, 0x63, 0xeb),
        NodeState::Cached => Color32::from_rgb(0x0f, 0x76, 0x6e),
        NodeState::Done => Color32::from_rgb(0x15, 0x80, 0x3d),
        NodeState::Failed => Color32::from_rgb(0xb9, 0x1c, 0x1c),
        NodeState::Canceled => Color32::from_rgb(0x71, 0x3f, 0x12),
    }
}

/// Outline of a DAG node: the selection colour when selected, else a
/// lighter shade of its fill.
pub fn node_stroke(state: NodeState, selected: bool) -> Stroke {
    if selected {
        Stroke::new(3.0, SELECTION)
    } else {
        Stroke::new(1.0, node_fill(state).gamma_multiply(1.6))
    }
}

/// Fill of a waterfall bar by the kind of work; cached bars are dimmed.
pub fn bar_fill(kind: WorkKind, cached: bool, failed: bool) -> Color32 {
    if failed {
        return node_fill(NodeState::Failed);
    }
    let colour = match kind {
        WorkKind::ContextTransfer => Color32::from_rgb(0x7c, 0x3a, 0xed),
        WorkKind::Pull => Color32::from_rgb(0x08, 0x91, 0xb2),
        WorkKind::Run => Color32::from_rgb(0x25, 0x63, 0xeb),
        WorkKind::FileOp => Color32::from_rgb(0x65, 0xa3, 0x0d),
        WorkKind::Export => Color32::from_rgb(0xa2, 0x1c, 0xaf),
    };
    if cached {
        colour.gamma_multiply(0.45)
    } else {
        colour
    }
}

/// Lower-case state name, as the legend, the details panel and the
/// accessibility tree show it.
pub fn state_name(state: NodeState) -> &'static str {
    match state {
        NodeState::Queued => "queued",
        NodeState::Running => "running",
        NodeState::Cached => "cached",
        NodeState::Done => "done",
        NodeState::Failed => "failed",
        NodeState::Canceled => "canceled",
    }
}

pub const ALL_STATES: [NodeState; 6] = [
    NodeState::Queued,
    NodeState::Running,
    NodeState::Cached,
    NodeState::Done,
    NodeState::Failed,
    NodeState::Canceled,
];
