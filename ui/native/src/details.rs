//! The details panel: what the selected step is, how it ran, and its log.

use crate::theme;
use crate::view::BuildView;
use eframe::egui::{self, RichText, ScrollArea, TextStyle};
use strata_ui_model::{Node, ProgressItem, format};

impl BuildView {
    pub(crate) fn details_ui(&mut self, ui: &mut egui::Ui) {
        let Some(node) = self.selected.as_deref().and_then(|id| self.model.node(id)) else {
            ui.add_space(8.0);
            ui.label("Click a step to see its details and log");
            return;
        };
        let node = node.clone();
        ui.add_space(4.0);
        ui.label(RichText::new(&node.name).strong().size(15.0));
        egui::Grid::new("strata-step-details")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| self.facts_ui(ui, &node));
        if !node.progress.is_empty() {
            ui.separator();
            ui.strong("Progress");
            for item in &node.progress {
                progress_ui(ui, item);
            }
        }
        if let Some(error) = &node.error {
            ui.separator();
            ui.label(RichText::new(error).color(theme::ERROR_TEXT));
        }
        if !node.reasons.is_empty() {
            ui.separator();
            ui.strong("Cache miss");
            for reason in &node.reasons {
                ui.label(format!("• {reason}"));
            }
        }
        ui.separator();
        self.log_ui(ui, &node);
    }

    fn facts_ui(&self, ui: &mut egui::Ui, node: &Node) {
        let row = |ui: &mut egui::Ui, name: &str, value: String| {
            ui.label(name);
            ui.label(value);
            ui.end_row();
        };
        row(ui, "State", theme::state_name(node.state).to_string());
        if let Some(stage) = &node.stage {
            row(ui, "Stage", stage.clone());
        }
        if let Some(location) = &node.location {
            let lines = if location.start_line == location.end_line {
                format!("{}:{}", location.file, location.start_line)
            } else {
                let (start, end) = (location.start_line, location.end_line);
                format!("{}:{start}-{end}", location.file)
            };
            row(ui, "Source", lines);
        }
        if let Some(duration) = node.duration_ms() {
            row(ui, "Duration", format::duration_ms(duration));
        }
        if let Some(key) = &node.cache_key {
            row(ui, "Cache key", short_digest(key));
        }
        let inputs: Vec<&str> = node
            .inputs
            .iter()
            .filter_map(|input| self.model.node(input))
            .map(|input| input.name.as_str())
            .collect();
        if !inputs.is_empty() {
            row(ui, "Inputs", inputs.join("\n"));
        }
        row(ui, "Digest", short_digest(&node.id));
        row(ui, "Log", format::bytes(node.log_bytes));
    }

    fn log_ui(&self, ui: &mut egui::Ui, node: &Node) {
        ui.strong("Log");
        let Some(log) = self.logs.get(&node.id) else {
            ui.label("No output");
            return;
        };
        if log.dropped > 0 {
            let dropped = format::bytes(log.dropped);
            ui.label(format!("The first {dropped} are not shown"));
        }
        ScrollArea::both()
            .id_salt(("strata-step-log", &node.id))
            .auto_shrink(false)
            .stick_to_bottom(true)
            .show(ui, |ui| {
                ui.label(RichText::new(&log.text).text_style(TextStyle::Monospace));
            });
    }
}

/// Draws one task as a bar labelled `label: done / total`. A task without
/// a total shows its amount on an empty bar until it is done, because
/// an animated bar would keep the window repainting.
fn progress_ui(ui: &mut egui::Ui, item: &ProgressItem) {
    let amount = |count: u64| match item.unit.as_str() {
        "B" => format::bytes(count),
        unit => format!("{count} {unit}"),
    };
    let (fraction, text) = match item.total {
        Some(total) => (
            item.fraction().unwrap_or(0.0),
            format!(
                "{}: {} / {}",
                item.label,
                amount(item.current),
                amount(total)
            ),
        ),
        None => (0.0, format!("{}: {}", item.label, amount(item.current))),
    };
    let fraction = if item.done { 1.0 } else { fraction };
    let text = if item.done {
        format!("{text}, done")
    } else {
        text
    };
    ui.add(egui::ProgressBar::new(fraction as f32).text(text));
}

/// `sha256:0123456789ab`, the first 12 hex digits as `docker` shows them.
fn short_digest(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("", digest));
    let hex = &hex[..hex.len().min(12)];
    if algorithm.is_empty() {
        hex.to_string()
    } else {
        format!("{algorithm}:{hex}")
    }
}
