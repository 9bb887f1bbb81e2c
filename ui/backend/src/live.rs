//! The build the workbench is running: its view model, its layout, and the
//! broadcast that feeds every subscriber (a WebSocket in `ui/server`, an
//! IPC channel in the desktop app).
//!
//! Each frame is a JSON array of messages, one per event plus the
//! view-model changes it caused, so a burst of log lines costs one frame.
//! Progress events go out only as the node and transfer changes they
//! cause, throttled by [`ProgressThrottle`].

use crate::throttle::ProgressThrottle;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;
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
    throttle: ProgressThrottle,
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
            let frame = apply_batch(&mut state, &batch, Instant::now());
            if let Some(id) = &state.build_id {
                if let Some(started) = started.take() {
                    let _ = started.send(id.clone());
                }
            }
            if let Some(frame) = frame {
                let _ = self.frames.send(frame.into());
            }
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

/// Applies a batch and returns its frame: every event except progress
/// events, each changed node once in its final state, the transfers whose
/// change is due, and the layout when nodes were added. Returns `None` when
/// the batch changed nothing a subscriber receives, such as progress updates
/// that were all throttled.
fn apply_batch(state: &mut LiveState, batch: &[StampedEvent], now: Instant) -> Option<String> {
    let mut messages: Vec<Value> = Vec::with_capacity(batch.len() + 4);
    // Changed nodes, each with whether only its progress items changed.
    let mut changed: Vec<(usize, bool)> = Vec::new();
    let mut transfers: Vec<usize> = Vec::new();
    let nodes_before = state.model.nodes.len();
    let mut relayout = false;
    let mut finished = false;

    for stamped in batch {
        match &stamped.event {
            Event::BuildStarted { build_id } => {
                state.build_id = Some(build_id.clone());
                state.layout = Layout::default();
                state.throttle.clear();
                // The model starts over, so earlier indexes no longer apply.
                changed.clear();
                transfers.clear();
                relayout = true;
            }
            Event::BuildFinished { .. } => finished = true,
            _ => {}
        }

        let change = state.model.apply_change(stamped);
        if let Some(index) = change.node {
            match changed.iter_mut().find(|(i, _)| *i == index) {
                Some((_, progress_only)) => *progress_only &= change.progress_only,
                None => changed.push((index, change.progress_only)),
            }
        }
        for index in change.transfers {
            if !transfers.contains(&index) {
                transfers.push(index);
            }
        }

        if !matches!(
            stamped.event,
            Event::Progress { .. } | Event::LayerProgress { .. }
        ) {
            messages.push(json!({"type": "event", "event": stamped}));
        }
    }

    push_node_changes(state, &changed, finished, now, &mut messages);
    push_transfer_changes(state, &transfers, finished, now, &mut messages);
    if relayout || state.model.nodes.len() != nodes_before {
        let previous = std::mem::take(&mut state.layout);
        state.layout = layout(&state.model, &LayoutOptions::default(), Some(&previous));
        messages.push(json!({"type": "layout", "layout": state.layout}));
    }

    if messages.is_empty() {
        return None;
    }
    messages.push(
        json!({"type": "counts", "counts": state.model.counts(), "finished": state.model.finished}),
    );
    Some(Value::Array(messages).to_string())
}

/// Adds a `node` message per changed node, skipping nodes whose progress
/// alone moved too little. Once the build finished, every node whose
/// progress the client has an older state of goes out too.
fn push_node_changes(
    state: &mut LiveState,
    changed: &[(usize, bool)],
    finished: bool,
    now: Instant,
    messages: &mut Vec<Value>,
) {
    let LiveState {
        model, throttle, ..
    } = state;
    for &(index, progress_only) in changed {
        let node = &model.nodes[index];
        if progress_only && !throttle.node_due(node, now) {
            continue;
        }
        throttle.record_node(node, now);
        messages.push(json!({"type": "node", "node": node}));
    }
    if !finished {
        return;
    }
    for node in &model.nodes {
        if throttle.node_stale(node) {
            throttle.record_node(node, now);
            messages.push(json!({"type": "node", "node": node}));
        }
    }
}

/// Adds a `transfer` message per changed transfer whose change is due;
/// once the build finished, every transfer the client has an older state
/// of.
fn push_transfer_changes(
    state: &mut LiveState,
    changed: &[usize],
    finished: bool,
    now: Instant,
    messages: &mut Vec<Value>,
) {
    let LiveState {
        model, throttle, ..
    } = state;
    for &index in changed {
        let transfer = &model.transfers[index];
        if throttle.transfer_due(transfer, now) {
            messages.push(json!({"type": "transfer", "transfer": transfer}));
        }
    }
    if !finished {
        return;
    }
    for transfer in &model.transfers {
        if throttle.transfer_stale(transfer, now) {
            messages.push(json!({"type": "transfer", "transfer": transfer}));
        }
    }
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
            // The sender lives in `LiveBuild`, which this subscription keeps
            // alive, so the channel cannot close first.
            Err(RecvError::Closed) => {
                unreachable!("the live build's sender outlives its receivers")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_llb::Digest;

    fn stamp(event: Event) -> StampedEvent {
        StampedEvent {
            v: 1,
            time: chrono::Utc::now(),
            event,
        }
    }

    fn export_progress(current: u64, total: Option<u64>) -> StampedEvent {
        stamp(Event::Progress {
            vertex: None,
            id: "compressing layer abc".into(),
            current,
            total,
            unit: "B".into(),
        })
    }

    fn types(frame: &str) -> Vec<String> {
        let messages: Vec<Value> = serde_json::from_str(frame).unwrap();
        messages
            .iter()
            .map(|m| match m["type"].as_str().unwrap() {
                "event" => format!("event:{}", m["event"]["type"].as_str().unwrap()),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn progress_goes_out_as_throttled_transfers() {
        let mut state = LiveState::default();
        let start = Instant::now();
        let begin = [
            stamp(Event::BuildStarted {
                build_id: "b".into(),
            }),
            stamp(Event::Phase {
                id: "export-0".into(),
                name: "exporting to image".into(),
                duration_ms: None,
            }),
            export_progress(100, None),
        ];
        let frame = apply_batch(&mut state, &begin, start).unwrap();
        assert_eq!(
            types(&frame),
            [
                "event:build_started",
                "event:phase",
                "transfer",
                "layout",
                "counts"
            ]
        );

        // Within 250 ms a task without a total is not sent again, and a
        // batch with nothing else to send makes no frame.
        let soon = start + std::time::Duration::from_millis(50);
        assert_eq!(
            apply_batch(&mut state, &[export_progress(200, None)], soon),
            None
        );

        // Completion goes out at once, carrying the latest amounts.
        let frame = apply_batch(&mut state, &[export_progress(300, Some(300))], soon).unwrap();
        let messages: Vec<Value> = serde_json::from_str(&frame).unwrap();
        assert_eq!(messages[0]["type"], "transfer");
        assert_eq!(messages[0]["transfer"]["current"], 300);
        assert_eq!(messages[0]["transfer"]["done"], true);
        assert_eq!(messages[0]["transfer"]["kind"], "export");
    }

    #[test]
    fn build_end_flushes_skipped_progress() {
        let mut state = LiveState::default();
        let now = Instant::now();
        let vertex = Digest::of_bytes(b"context");
        let context = |current| {
            stamp(Event::Progress {
                vertex: Some(vertex.clone()),
                id: "transfer".into(),
                current,
                total: None,
                unit: "bytes".into(),
            })
        };
        let begin = [
            stamp(Event::BuildStarted {
                build_id: "b".into(),
            }),
            stamp(Event::VertexQueued {
                vertex: vertex.clone(),
                name: "load build context".into(),
                stage: None,
                location: None,
                inputs: Vec::new(),
            }),
            context(10),
        ];
        let frame = apply_batch(&mut state, &begin, now).unwrap();
        assert!(types(&frame).contains(&"node".to_string()));
        assert_eq!(apply_batch(&mut state, &[context(20)], now), None);

        let end = [stamp(Event::BuildFinished {
            success: false,
            error: Some("canceled".into()),
            duration_ms: 5,
        })];
        let frame = apply_batch(&mut state, &end, now).unwrap();
        let messages: Vec<Value> = serde_json::from_str(&frame).unwrap();
        let node = messages.iter().find(|m| m["type"] == "node").unwrap();
        assert_eq!(node["node"]["progress"][0]["current"], 20);
        let transfer = messages.iter().find(|m| m["type"] == "transfer").unwrap();
        assert_eq!(transfer["transfer"]["current"], 20);
        assert_eq!(transfer["transfer"]["kind"], "context");
    }
}
