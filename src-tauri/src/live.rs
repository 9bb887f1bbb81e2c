//! The build the workbench runs: its view model, and the frames sent to
//! the page over a `tauri::ipc::Channel`.
//!
//! NOTE: this module repeats `ui/server`'s code for the same job; both
//! should move into one shared crate so the two front ends cannot drift.
//!
//! Each frame is a JSON array of messages in the format of `ui/server`'s
//! event WebSocket: one `event` per build event, one `node` per node the
//! batch changed, a `layout` when nodes were added, `counts`, and a final
//! `idle` once the build has finished.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use strata_engine::{BuildRequest, Engine};
use strata_solver::{Event, EventSink, StampedEvent};
use strata_ui_model::{DagModel, Layout, LayoutOptions, layout};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Receives each frame; the Tauri command sends it over its channel.
pub type FrameSink = Arc<dyn Fn(Value) + Send + Sync>;

/// Maximum number of events folded into one frame.
const BATCH_EVENTS: usize = 512;

#[derive(Default)]
pub struct LiveBuild {
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    running: Option<CancellationToken>,
    build_id: Option<String>,
    model: DagModel,
    layout: Layout,
}

impl LiveBuild {
    /// Returns the id of the running build, if one runs.
    pub fn running_build(&self) -> Option<String> {
        let state = self.state.lock().expect("live build lock");
        state.running.as_ref().and(state.build_id.clone())
    }

    /// Returns the current state as one `snapshot` frame.
    pub fn snapshot(&self) -> Value {
        let state = self.state.lock().expect("live build lock");
        json!([{
            "type": "snapshot",
            "running": state.running.is_some(),
            "model": state.model,
            "layout": state.layout,
            "counts": state.model.counts(),
        }])
    }

    /// Cancels the running build; returns false when none runs.
    pub fn cancel(&self) -> bool {
        let state = self.state.lock().expect("live build lock");
        match &state.running {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Starts a build and returns its id once the engine has assigned it,
    /// or `None` when another build is running. The build's outcome
    /// arrives in the frames, as the `build_finished` event.
    pub async fn start(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        request: BuildRequest,
        frames: FrameSink,
    ) -> Option<String> {
        let cancel = CancellationToken::new();
        {
            let mut state = self.state.lock().expect("live build lock");
            if state.running.is_some() {
                return None;
            }
            state.running = Some(cancel.clone());
        }
        let (sink, receiver) = EventSink::channel();
        let (started, build_id) = oneshot::channel();
        tokio::spawn(self.clone().pump(receiver, started, frames));
        tokio::spawn(async move {
            if let Err(error) = engine.build(&request, &sink, &cancel).await {
                tracing::info!("workbench build failed: {error}");
            }
        });
        build_id.await.ok()
    }

    /// Applies events to the model and sends them as frames until the
    /// build drops its event sink.
    async fn pump(
        self: Arc<Self>,
        mut receiver: mpsc::UnboundedReceiver<StampedEvent>,
        started: oneshot::Sender<String>,
        frames: FrameSink,
    ) {
        let mut started = Some(started);
        let mut batch = Vec::with_capacity(BATCH_EVENTS);
        while receiver.recv_many(&mut batch, BATCH_EVENTS).await > 0 {
            let frame = {
                let mut state = self.state.lock().expect("live build lock");
                let frame = apply_batch(&mut state, &batch);
                if let Some(id) = &state.build_id {
                    if let Some(started) = started.take() {
                        let _ = started.send(id.clone());
                    }
                }
                frame
            };
            frames(frame);
            batch.clear();
        }
        self.state.lock().expect("live build lock").running = None;
        frames(json!([{ "type": "idle" }]));
    }
}

/// Applies a batch and returns its frame: every event, each changed node
/// once in its final state, and the layout when nodes were added.
fn apply_batch(state: &mut LiveState, batch: &[StampedEvent]) -> Value {
    let mut messages: Vec<Value> = Vec::with_capacity(batch.len() + 4);
    let mut changed: Vec<usize> = Vec::new();
    let nodes_before = state.model.nodes.len();
    let mut relayout = false;
    for stamped in batch {
        if let Event::BuildStarted { build_id } = &stamped.event {
            state.model = DagModel::default();
            state.build_id = Some(build_id.clone());
            state.layout = Layout::default();
            relayout = true;
        }
        if let Some(index) = state.model.apply(stamped) {
            if !changed.contains(&index) {
                changed.push(index);
            }
        }
        messages.push(json!({ "type": "event", "event": stamped }));
    }

    for index in changed {
        messages.push(json!({ "type": "node", "node": state.model.nodes[index] }));
    }
    if relayout || state.model.nodes.len() != nodes_before {
        let previous = std::mem::take(&mut state.layout);
        state.layout = layout(&state.model, &LayoutOptions::default(), Some(&previous));
        messages.push(json!({ "type": "layout", "layout": state.layout }));
    }
    messages.push(json!({
        "type": "counts",
        "counts": state.model.counts(),
        "finished": state.model.finished,
    }));
    Value::Array(messages)
}
