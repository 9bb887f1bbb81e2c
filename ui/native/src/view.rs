//! The state of one build view: the model built from events, its layout
//! and waterfall, step logs, the selection and the camera, plus the
//! top-level `ui` that lays out the panels.

use crate::camera::Camera;
use crate::logs::StepLogs;
use chrono::{DateTime, Utc};
use eframe::egui;
use std::sync::mpsc::{Receiver, TryRecvError};
use strata_solver::{EVENT_FORMAT_VERSION, Event, StampedEvent};
use strata_ui_model::{DagModel, Layout, LayoutOptions, NodeState, Waterfall, layout, waterfall};

/// One build as the native view shows it.
pub struct BuildView {
    pub(crate) title: String,
    pub(crate) model: DagModel,
    /// Every event except logs, which go to `logs`; the waterfall reads
    /// these.
    pub(crate) timeline: Vec<StampedEvent>,
    pub(crate) layout: Layout,
    pub(crate) waterfall: Waterfall,
    pub(crate) logs: StepLogs,
    /// Digest of the step whose details and log are shown.
    pub(crate) selected: Option<String>,
    /// Select the step that started last while no step was clicked.
    pub(crate) follow_running: bool,
    pub(crate) camera: Camera,
    /// Events of a build still running; `None` for a recorded build.
    feed: Option<Receiver<StampedEvent>>,
    /// The feed's sender is gone, so no more events will arrive.
    feed_closed: bool,
    laid_out_nodes: usize,
    waterfall_events: usize,
}

impl BuildView {
    /// Creates a view with no events; `title` names the build in the header.
    pub fn new(title: impl Into<String>) -> BuildView {
        BuildView {
            title: title.into(),
            model: DagModel::default(),
            timeline: Vec::new(),
            layout: Layout::default(),
            waterfall: Waterfall::default(),
            logs: StepLogs::default(),
            selected: None,
            follow_running: true,
            camera: Camera::default(),
            feed: None,
            feed_closed: false,
            laid_out_nodes: 0,
            waterfall_events: 0,
        }
    }

    /// Creates a view of a recorded build from all of its events.
    pub fn recorded(title: impl Into<String>, events: Vec<StampedEvent>) -> BuildView {
        let mut view = BuildView::new(title);
        view.follow_running = false;
        for event in events {
            view.push(event);
        }
        view.refresh();
        view
    }

    /// Creates a view that takes the events of a running build from `feed`.
    pub fn live(title: impl Into<String>, feed: Receiver<StampedEvent>) -> BuildView {
        let mut view = BuildView::new(title);
        view.feed = Some(feed);
        view
    }

    /// Applies one event to the model, the logs and the timeline. The
    /// layout and waterfall follow on the next `refresh`.
    pub fn push(&mut self, stamped: StampedEvent) {
        self.model.apply(&stamped);
        match &stamped.event {
            Event::BuildStarted { .. } => {
                self.timeline.clear();
                self.logs = StepLogs::default();
                self.selected = None;
                self.timeline.push(stamped);
            }
            Event::Log {
                vertex,
                stream,
                data,
            } => self.logs.append(vertex.as_str(), *stream, data),
            _ => self.timeline.push(stamped),
        }
    }

    /// Takes every event waiting in the feed; returns how many arrived.
    pub fn drain_feed(&mut self) -> usize {
        let mut received = Vec::new();
        if let Some(feed) = &self.feed {
            loop {
                match feed.try_recv() {
                    Ok(event) => received.push(event),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.feed_closed = true;
                        break;
                    }
                }
            }
        }
        let count = received.len();
        for event in received {
            self.push(event);
        }
        count
    }

    /// Recomputes the layout when steps were added and the waterfall when
    /// events arrived. The previous layout is passed on so that nodes keep
    /// their places as the graph grows.
    pub fn refresh(&mut self) {
        if self.model.nodes.len() != self.laid_out_nodes {
            self.layout = layout(&self.model, &LayoutOptions::default(), Some(&self.layout));
            self.laid_out_nodes = self.model.nodes.len();
        }
        if self.is_running() && self.model.counts().running > 0 {
            self.waterfall = waterfall(&self.timeline_until_now());
            self.waterfall_events = 0;
        } else if self.timeline.len() != self.waterfall_events {
            self.waterfall = waterfall(&self.timeline);
            self.waterfall_events = self.timeline.len();
        }
        if self.follow_running
            && let Some(running) = self.model.latest_running()
        {
            self.selected = Some(running.id.clone());
        }
    }

    /// The timeline with running steps ended now. The waterfall places a
    /// step without an end as if it took no time, so running steps would
    /// share a lane and hide each other.
    fn timeline_until_now(&self) -> Vec<StampedEvent> {
        let now = Utc::now();
        let mut timeline = self.timeline.clone();
        for stamped in &self.timeline {
            let Event::VertexStarted { vertex } = &stamped.event else {
                continue;
            };
            let running = self
                .model
                .node(vertex.as_str())
                .is_some_and(|node| node.state == NodeState::Running);
            if running {
                let event = Event::VertexCompleted {
                    vertex: vertex.clone(),
                    key: None,
                    duration_ms: (now - stamped.time).num_milliseconds().max(0) as u64,
                };
                timeline.push(StampedEvent {
                    v: EVENT_FORMAT_VERSION,
                    time: now,
                    event,
                });
            }
        }
        timeline
    }

    /// The model the view draws.
    pub fn model(&self) -> &DagModel {
        &self.model
    }

    /// Digest of the selected step.
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// Selects a step by digest and stops following the running step.
    pub fn select(&mut self, id: Option<String>) {
        self.selected = id;
        self.follow_running = false;
    }

    /// Whether the build is still running: it has not finished and, for a
    /// live view, its events can still arrive.
    pub fn is_running(&self) -> bool {
        let live = self.feed.is_some() && !self.feed_closed;
        self.model.finished.is_none() && live
    }

    /// Milliseconds from the first event to now while the build runs, for
    /// drawing running steps that have no end yet.
    pub(crate) fn now_ms(&self) -> Option<u64> {
        if !self.is_running() {
            return None;
        }
        let start: DateTime<Utc> = self.timeline.first()?.time;
        Some((Utc::now() - start).num_milliseconds().max(0) as u64)
    }

    /// Draws the whole view: header on top, waterfall at the bottom, the
    /// selected step on the right and the DAG in the remaining space.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.drain_feed();
        self.refresh();
        egui::Panel::top("strata-header").show(ui, |ui| self.header_ui(ui));
        egui::Panel::bottom("strata-waterfall")
            .resizable(true)
            .default_size(180.0)
            .min_size(80.0)
            .show(ui, |ui| self.waterfall_ui(ui));
        // Long log lines would otherwise widen the panel over the DAG.
        let max_details = (ui.available_width() * 0.45).max(200.0);
        egui::Panel::right("strata-details")
            .resizable(true)
            .default_size(380.0)
            .size_range(200.0..=max_details)
            .show(ui, |ui| self.details_ui(ui));
        egui::CentralPanel::default().show(ui, |ui| self.dag_ui(ui));
        if self.is_running() {
            // Running bars and durations grow with the clock.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(250));
        }
    }
}
