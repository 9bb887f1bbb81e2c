//! The build the workbench is running: its view model, its layout, and the
//! broadcast that feeds every subscriber (a WebSocket in `ui/server`, an
//! IPC channel in the desktop app).
//!
//! Each frame is a JSON array of messages, one per event plus the
//! view-model changes it caused, so a burst of log lines costs one frame.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use strata_engine::{BuildRequest, Engine};
use strata_solver::{Event, EventSink, StampedEvent};
use strata_ui_model::{DagModel, Layout, LayoutOptions, layout};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Frames a slow subscriber may fall behind before it gets a fresh snapshot.
const CHANNEL_FRAMES: usize = 256;
/// Most events folded into one frame.
const BATCH_EVENTS: usize = 512;

pub struct LiveBuild {
    state: Mutex<LiveState>,
    frames: broadcast::Sender<Arc<str>>,
}

#[derive(Default)]
struct LiveState {
    running: Option<CancellationToken>,
    build_id: Option<String>,
    model: DagModel,
    layout: Layout,
}

impl LiveBuild {
    pub fn new() -> LiveBuild {
        LiveBuild {
            state: Mutex::new(LiveState::default()),
            frames: broadcast::channel(CHANNEL_FRAMES).0,
        }
    }

    /// The current state as one frame, and a receiver for every later frame.
    pub fn subscribe(&self) -> (String, broadcast::Receiver<Arc<str>>) {
        let state = self.state.lock().expect("live build lock");
        (snapshot_frame(&state), self.frames.subscribe())
    }

    /// The current state as one frame, for a subscriber that fell behind.
    pub fn snapshot(&self) -> String {
        snapshot_frame(&self.state.lock().expect("live build lock"))
    }

    pub fn running_build(&self) -> Option<String> {
        let state = self.state.lock().expect("live build lock");
        state.running.as_ref().and(state.build_id.clone())
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
    /// or `None` when another build is running.
    pub async fn start(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        request: BuildRequest,
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
        tokio::spawn(self.clone().pump(receiver, started));
        tokio::spawn(async move {
            if let Err(error) = engine.build(&request, &sink, &cancel).await {
                tracing::info!("workbench build failed: {error}");
            }
        });
        build_id.await.ok()
    }

    /// Applies events to the model and broadcasts them until the build's
    /// sink is dropped.
    async fn pump(
        self: Arc<Self>,
        mut receiver: mpsc::UnboundedReceiver<StampedEvent>,
        started: oneshot::Sender<String>,
    ) {
        let mut started = Some(started);
        let mut batch = Vec::with_capacity(BATCH_EVENTS);
        while receiver.recv_many(&mut batch, BATCH_EVENTS).await > 0 {
            let mut state = self.state.lock().expect("live build lock");
            let frame = apply_batch(&mut state, &batch);
            if let Some(id) = &state.build_id {
                if let Some(started) = started.take() {
                    let _ = started.send(id.clone());
                }
            }
            let _ = self.frames.send(frame.into());
            batch.clear();
        }
        let mut state = self.state.lock().expect("live build lock");
        state.running = None;
        let _ = self
            .frames
            .send(json!([{"type": "idle"}]).to_string().into());
    }
}

fn snapshot_frame(state: &LiveState) -> String {
    json!([{
        "type": "snapshot",
        "running": state.running.is_some(),
        "model": state.model,
        "layout": state.layout,
        "counts": state.model.counts(),
    }])
    .to_string()
}

/// Applies a batch and returns its frame: every event, each changed node
/// once in its final state, and the layout when nodes were added.
fn apply_batch(state: &mut LiveState, batch: &[StampedEvent]) -> String {
    let mut messages: Vec<Value> = Vec::with_capacity(batch.len() + 4);
    let mut changed: Vec<usize> = Vec::new();
    let nodes_before = state.model.nodes.len();
    let mut relayout = false;
    for stamped in batch {
        if let Event::BuildStarted { build_id } = &stamped.event {
            state.build_id = Some(build_id.clone());
            state.layout = Layout::default();
            relayout = true;
        }
        if let Some(index) = state.model.apply(stamped) {
            if !changed.contains(&index) {
                changed.push(index);
            }
        }
        messages.push(json!({"type": "event", "event": stamped}));
    }
    for index in changed {
        messages.push(json!({"type": "node", "node": state.model.nodes[index]}));
    }
    if relayout || state.model.nodes.len() != nodes_before {
        let previous = std::mem::take(&mut state.layout);
        state.layout = layout(&state.model, &LayoutOptions::default(), Some(&previous));
        messages.push(json!({"type": "layout", "layout": state.layout}));
    }
    messages.push(
        json!({"type": "counts", "counts": state.model.counts(), "finished": state.model.finished}),
    );
    Value::Array(messages).to_string()
}

/// One subscriber's view of the live build: a snapshot frame, then every
/// later frame. A subscriber that falls more than 256 frames behind gets a
/// fresh snapshot instead of the frames it missed.
pub struct Subscription {
    live: Arc<LiveBuild>,
    snapshot: Option<String>,
    frames: broadcast::Receiver<Arc<str>>,
}

impl Subscription {
    pub(crate) fn new(live: Arc<LiveBuild>) -> Subscription {
        let (snapshot, frames) = live.subscribe();
        Subscription {
            live,
            snapshot: Some(snapshot),
            frames,
        }
    }

    /// Waits for the next frame, a JSON array as text.
    pub async fn next(&mut self) -> String {
        if let Some(snapshot) = self.snapshot.take() {
            return snapshot;
        }
        match self.frames.recv().await {
            Ok(frame) => frame.to_string(),
            Err(RecvError::Lagged(_)) => self.live.snapshot(),
            // `LiveBuild` holds the sender for as long as this
            // subscription holds the `LiveBuild`.
            Err(RecvError::Closed) => {
                unreachable!("the live build's sender outlives its receivers")
            }
        }
    }
}
