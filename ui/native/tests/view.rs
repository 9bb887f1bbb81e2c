//! Headless tests of the native view: a synthetic build's events go in,
//! and the steps' labels and states are read back from the accessibility
//! tree that egui builds for screen readers.

use chrono::{TimeZone, Utc};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use std::sync::mpsc;
use strata_llb::Digest;
use strata_solver::{Event, LogStream, StampedEvent};
use strata_ui_native::BuildView;
use strata_ui_native::egui::accesskit::Toggled;
use strata_ui_native::egui::{self, Role};

const FROM: &str = "[app 1/3] FROM docker.io/library/busybox:latest";
const CONTEXT: &str = "[internal] load build context";
const COPY: &str = "[app 2/3] COPY . /src";
const RUN: &str = "[app 3/3] RUN make";

fn at(ms: i64, event: Event) -> StampedEvent {
    StampedEvent {
        v: 1,
        time: Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap(),
        event,
    }
}

fn digest(name: &str) -> Digest {
    Digest::of_bytes(name.as_bytes())
}

fn queued(name: &str, inputs: &[&str]) -> StampedEvent {
    at(
        0,
        Event::VertexQueued {
            vertex: digest(name),
            name: name.into(),
            stage: name.starts_with("[app").then(|| "app".into()),
            location: None,
            inputs: inputs.iter().map(|input| digest(input)).collect(),
        },
    )
}

fn started(ms: i64, name: &str) -> StampedEvent {
    at(
        ms,
        Event::VertexStarted {
            vertex: digest(name),
        },
    )
}

fn completed(ms: i64, name: &str, duration_ms: u64) -> StampedEvent {
    let vertex = digest(name);
    at(
        ms,
        Event::VertexCompleted {
            vertex,
            key: None,
            duration_ms,
        },
    )
}

fn log(ms: i64, name: &str, data: &str) -> StampedEvent {
    let (vertex, stream) = (digest(name), LogStream::Stdout);
    at(
        ms,
        Event::Log {
            vertex,
            stream,
            data: data.into(),
        },
    )
}

/// The first half of a build: the graph is queued, the base image came
/// from the cache, the context is loaded and `RUN make` is running.
fn first_half() -> Vec<StampedEvent> {
    let build_id = "build-1".to_string();
    vec![
        at(0, Event::BuildStarted { build_id }),
        queued(FROM, &[]),
        queued(CONTEXT, &[]),
        queued(COPY, &[FROM, CONTEXT]),
        queued(RUN, &[COPY]),
        at(
            10,
            Event::VertexCached {
                vertex: digest(FROM),
                key: digest("key"),
            },
        ),
        started(10, CONTEXT),
        completed(70, CONTEXT, 60),
        started(70, COPY),
        completed(100, COPY, 30),
        started(100, RUN),
        log(200, RUN, "cc -o app main.c\n"),
    ]
}

/// The rest: `RUN make` fails and the build finishes.
fn second_half() -> Vec<StampedEvent> {
    let vertex = digest(RUN);
    let error = "process `/bin/sh -c make` exited with status 2".to_string();
    vec![
        log(900, RUN, "make: *** [app] Error 2\n"),
        at(
            1000,
            Event::VertexFailed {
                vertex,
                error,
                duration_ms: 900,
            },
        ),
        at(
            1000,
            Event::BuildFinished {
                success: false,
                error: None,
                duration_ms: 1000,
            },
        ),
    ]
}

fn harness(view: BuildView) -> Harness<'static, BuildView> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, view: &mut BuildView| view.ui(ui), view)
}

/// The DAG node of a step: a button labelled with the step's name whose
/// value is its state. The details panel repeats names as plain labels.
fn node<'h>(harness: &'h Harness<'_, BuildView>, name: &'h str) -> egui_kittest::Node<'h> {
    harness.get_by_role_and_label(Role::Button, name)
}

fn state_of(harness: &Harness<'_, BuildView>, name: &str) -> Option<String> {
    node(harness, name).value()
}

#[test]
fn recorded_build_shows_every_step_state() {
    let mut events = first_half();
    events.extend(second_half());
    let mut harness = harness(BuildView::recorded("build-1", events));
    harness.run();

    assert_eq!(state_of(&harness, FROM).as_deref(), Some("cached"));
    assert_eq!(state_of(&harness, CONTEXT).as_deref(), Some("done"));
    assert_eq!(state_of(&harness, COPY).as_deref(), Some("done"));
    assert_eq!(state_of(&harness, RUN).as_deref(), Some("failed"));
    assert!(harness.query_by_label("Failed after 1.0s").is_some());
    assert!(
        harness
            .query_by_label("4/4 steps · 0 running · 1 cached · 1 failed")
            .is_some()
    );
}

#[test]
fn live_feed_updates_states() {
    let (sender, receiver) = mpsc::channel();
    let mut harness = harness(BuildView::live("build-1", receiver));
    harness.run();
    assert!(harness.query_by_role_and_label(Role::Button, RUN).is_none());

    for event in first_half() {
        sender.send(event).unwrap();
    }
    harness.run();
    assert_eq!(state_of(&harness, RUN).as_deref(), Some("running"));
    assert_eq!(state_of(&harness, COPY).as_deref(), Some("done"));
    assert!(harness.query_by_label("Running").is_some());

    for event in second_half() {
        sender.send(event).unwrap();
    }
    harness.run();
    assert_eq!(state_of(&harness, RUN).as_deref(), Some("failed"));
    assert!(harness.query_by_label("Failed after 1.0s").is_some());
}

#[test]
fn live_view_follows_running_step() {
    let (sender, receiver) = mpsc::channel();
    let mut harness = harness(BuildView::live("build-1", receiver));
    for event in first_half() {
        sender.send(event).unwrap();
    }
    harness.run();
    let run = digest(RUN).to_string();
    assert_eq!(harness.state().selected(), Some(run.as_str()));
    assert!(
        harness
            .query_by_label_contains("cc -o app main.c")
            .is_some()
    );
}

#[test]
fn clicking_node_selects_it_and_shows_log() {
    let mut events = first_half();
    events.extend(second_half());
    let mut harness = harness(BuildView::recorded("build-1", events));
    harness.run();
    assert_eq!(harness.state().selected(), None);

    node(&harness, RUN).click();
    harness.run();
    let run = digest(RUN).to_string();
    assert_eq!(harness.state().selected(), Some(run.as_str()));
    // egui reports a selected widget as a pressed toggle button.
    let toggled = node(&harness, RUN).accesskit_node().toggled();
    assert_eq!(toggled, Some(Toggled::True));
    assert!(
        harness
            .query_by_label_contains("make: *** [app] Error 2")
            .is_some()
    );
    assert!(
        harness
            .query_by_label_contains("exited with status 2")
            .is_some()
    );

    node(&harness, COPY).click();
    harness.run();
    let copy = digest(COPY).to_string();
    assert_eq!(harness.state().selected(), Some(copy.as_str()));
    assert!(harness.query_by_label("No output").is_some());
}

#[test]
fn details_show_context_progress() {
    let (sender, receiver) = mpsc::channel();
    let mut harness = harness(BuildView::live("build-1", receiver));
    let build_id = "build-1".to_string();
    let transfer = |current| {
        at(
            30,
            Event::Progress {
                vertex: Some(digest(CONTEXT)),
                id: "transfer".into(),
                current,
                total: None,
                unit: "bytes".into(),
            },
        )
    };
    for event in [
        at(0, Event::BuildStarted { build_id }),
        queued(CONTEXT, &[]),
        started(10, CONTEXT),
        transfer(1_500),
    ] {
        sender.send(event).unwrap();
    }
    harness.run();
    node(&harness, CONTEXT).click();
    harness.run();
    let bar = harness.get_by_label("context: 1.5kB");
    assert_eq!(bar.accesskit_node().role(), Role::ProgressIndicator);
    assert_eq!(bar.accesskit_node().numeric_value(), Some(0.0));

    sender.send(transfer(2_500)).unwrap();
    sender.send(completed(70, CONTEXT, 60)).unwrap();
    harness.run();
    let bar = harness.get_by_label("context: 2.5kB, done");
    assert_eq!(bar.accesskit_node().numeric_value(), Some(100.0));
}

#[test]
fn waterfall_has_bar_per_step() {
    let mut events = first_half();
    events.extend(second_half());
    let mut harness = harness(BuildView::recorded("build-1", events));
    harness.run();

    assert!(harness.query_by_label(&format!("{RUN} (0.9s)")).is_some());
    assert!(harness.query_by_label(&format!("{COPY} (0.0s)")).is_some());
    harness.get_by_label(&format!("{CONTEXT} (0.1s)")).click();
    harness.run();
    let context = digest(CONTEXT).to_string();
    assert_eq!(harness.state().selected(), Some(context.as_str()));
}

#[test]
fn empty_view_waits_for_steps() {
    let (_sender, receiver) = mpsc::channel();
    let mut harness = harness(BuildView::live("build-1", receiver));
    harness.run();
    assert!(harness.query_by_label("No step has started yet").is_some());
    assert!(harness.query_by_label("Running").is_some());
}

#[test]
fn running_steps_get_own_lanes() {
    let (sender, receiver) = mpsc::channel();
    let mut harness = harness(BuildView::live("build-1", receiver));
    let build_id = "build-1".to_string();
    let events = vec![
        at(0, Event::BuildStarted { build_id }),
        queued(FROM, &[]),
        queued(CONTEXT, &[]),
        started(10, FROM),
        started(20, CONTEXT),
    ];
    for event in events {
        sender.send(event).unwrap();
    }
    harness.run();

    let from_bar = harness.get_by_label_contains(&format!("{FROM} (")).rect();
    let context_bar = harness
        .get_by_label_contains(&format!("{CONTEXT} ("))
        .rect();
    assert!(
        !from_bar.intersects(context_bar),
        "{from_bar:?} {context_bar:?}"
    );
}
