//! The native live view of a Strata build, drawn with egui: the DAG of
//! steps coloured by state, the waterfall with its critical path, and the
//! selected step's details and log. Everything it shows comes from
//! `strata-ui-model`; this crate only draws.
//!
//! `run_live` opens a window for a build that is running, fed through
//! `live_channel`; `run_recorded` opens one for a finished build's events.
//! Windows use X11 and OpenGL (glow), so a Wayland session needs XWayland.

mod camera;
mod dag;
mod details;
mod header;
mod logs;
pub mod theme;
mod view;
mod waterfall;

pub use eframe::{Error, egui};
pub use view::BuildView;

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use strata_solver::StampedEvent;

/// The sending half of a live view's event feed. Each event wakes the UI
/// thread so that it repaints.
#[derive(Clone)]
pub struct LiveSender {
    sender: mpsc::Sender<StampedEvent>,
    context: Arc<OnceLock<egui::Context>>,
}

impl LiveSender {
    /// Sends one event; returns false once the window has closed.
    pub fn send(&self, event: StampedEvent) -> bool {
        let delivered = self.sender.send(event).is_ok();
        if let Some(context) = self.context.get() {
            context.request_repaint();
        }
        delivered
    }
}

/// The receiving half of a live view's event feed, for `run_live`.
pub struct LiveFeed {
    receiver: mpsc::Receiver<StampedEvent>,
    context: Arc<OnceLock<egui::Context>>,
}

/// Creates the channel that carries a running build's events to the
/// window. Events sent before the window opens wait in the channel.
pub fn live_channel() -> (LiveSender, LiveFeed) {
    let (sender, receiver) = mpsc::channel();
    let context = Arc::new(OnceLock::new());
    (
        LiveSender {
            sender,
            context: context.clone(),
        },
        LiveFeed { receiver, context },
    )
}

/// Opens a window showing a running build and returns when the user
/// closes it. Runs on any thread, so the build can keep the main one.
///
/// # Errors
/// Fails when no window can be opened, such as without a display.
pub fn run_live(title: &str, feed: LiveFeed) -> Result<(), Error> {
    let view = BuildView::live(title, feed.receiver);
    run_window(title, view, move |context| {
        // A second `set` cannot happen: each feed opens one window.
        let _ = feed.context.set(context.clone());
    })
}

/// Opens a window showing a recorded build and returns when the user
/// closes it. Runs on any thread, so the build can keep the main one.
///
/// # Errors
/// Fails when no window can be opened, such as without a display.
pub fn run_recorded(title: &str, events: Vec<StampedEvent>) -> Result<(), Error> {
    run_window(title, BuildView::recorded(title, events), |_| {})
}

fn run_window(
    title: &str,
    view: BuildView,
    on_open: impl FnOnce(&egui::Context) + 'static,
) -> Result<(), Error> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(format!("strata: {title}"))
            .with_inner_size([1280.0, 800.0]),
        event_loop_builder: Some(Box::new(|builder| {
            // winit rejects event loops off the main thread unless told
            // otherwise; X11 allows them.
            winit::platform::x11::EventLoopBuilderExtX11::with_any_thread(builder, true);
        })),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "strata",
        options,
        Box::new(move |creation| {
            on_open(&creation.egui_ctx);
            Ok(Box::new(NativeApp { view }))
        }),
    )
}

struct NativeApp {
    view: BuildView,
}

impl eframe::App for NativeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.view.ui(ui);
    }
}
