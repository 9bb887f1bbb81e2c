//! The waterfall panel: one bar per step on a time axis, one row per
//! parallel lane, bars on the critical path outlined.

use crate::theme;
use crate::view::BuildView;
use eframe::egui::{
    self, Align2, FontId, Rect, Role, ScrollArea, Sense, Stroke, StrokeKind, WidgetInfo, pos2, vec2,
};
use strata_ui_model::Bar;
use strata_ui_model::format;
use strata_ui_model::waterfall::WorkKind;

const LANE_HEIGHT: f32 = 18.0;
const LANE_GAP: f32 = 4.0;
const AXIS_HEIGHT: f32 = 18.0;
/// Narrowest bar drawn, so that instant (cached) steps stay visible.
const MIN_BAR_WIDTH: f32 = 2.0;

impl BuildView {
    pub(crate) fn waterfall_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.strong("Waterfall");
            ui.label(self.split_text());
            crate::header::swatch_ui(ui, theme::CRITICAL);
            ui.label("critical path");
        });
        if self.waterfall.bars.is_empty() {
            ui.label("No step has started yet");
            return;
        }
        let total_ms = self
            .now_ms()
            .unwrap_or(0)
            .max(self.waterfall.total_ms)
            .max(1);
        let height = AXIS_HEIGHT + self.waterfall.lanes as f32 * (LANE_HEIGHT + LANE_GAP);
        let mut clicked = None;
        ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
            let size = vec2(ui.available_width(), height);
            let (response, painter) = ui.allocate_painter(size, Sense::hover());
            let area = response.rect;
            let scale = area.width() / total_ms as f32;
            axis_ui(&painter, area, total_ms);
            for bar in &self.waterfall.bars {
                let end_ms = self.bar_end_ms(bar);
                let top = area.top() + AXIS_HEIGHT + bar.lane as f32 * (LANE_HEIGHT + LANE_GAP);
                let left = area.left() + bar.start_ms as f32 * scale;
                let width = ((end_ms - bar.start_ms) as f32 * scale).max(MIN_BAR_WIDTH);
                let rect = Rect::from_min_size(pos2(left, top), vec2(width, LANE_HEIGHT));
                if bar_ui(ui, &painter, rect, bar, end_ms, self.selected.as_deref()) {
                    clicked = Some(bar.id.clone());
                }
            }
        });
        if let Some(id) = clicked.filter(|id| self.model.node(id).is_some()) {
            self.select(Some(id));
        }
    }

    /// End of a bar, extended to now for a step that is still running.
    fn bar_end_ms(&self, bar: &Bar) -> u64 {
        let running = self
            .model
            .node(&bar.id)
            .is_some_and(|node| !node.state.is_finished());
        match self.now_ms() {
            Some(now) if running => now.max(bar.end_ms),
            _ => bar.end_ms,
        }
    }

    /// Time per kind of work, such as `run 12.3s · pull 0.4s`.
    fn split_text(&self) -> String {
        let parts: Vec<String> = self
            .waterfall
            .split
            .iter()
            .map(|(kind, ms)| format!("{} {}", kind_name(*kind), format::duration_ms(*ms)))
            .collect();
        parts.join(" · ")
    }
}

fn kind_name(kind: WorkKind) -> &'static str {
    match kind {
        WorkKind::ContextTransfer => "context",
        WorkKind::Pull => "pull",
        WorkKind::Run => "run",
        WorkKind::FileOp => "file",
        WorkKind::Export => "export",
    }
}

/// Draws one bar; returns whether it was clicked.
fn bar_ui(
    ui: &mut egui::Ui,
    painter: &egui::Painter,
    rect: Rect,
    bar: &Bar,
    end_ms: u64,
    selected: Option<&str>,
) -> bool {
    let duration = format::duration_ms(end_ms - bar.start_ms);
    let id = egui::Id::unique(("strata-waterfall-bar", &bar.id));
    let response = ui.interact(rect, id, Sense::click());
    let label = format!("{} ({duration})", bar.name);
    response.widget_info(|| WidgetInfo::labeled(Role::Button, true, &label));

    let stroke = if selected == Some(bar.id.as_str()) {
        Stroke::new(2.0, theme::SELECTION)
    } else if bar.critical {
        Stroke::new(2.0, theme::CRITICAL)
    } else {
        Stroke::NONE
    };
    painter.rect(
        rect,
        3.0,
        theme::bar_fill(bar.kind, bar.cached, bar.failed),
        stroke,
        StrokeKind::Outside,
    );
    let text = painter.with_clip_rect(rect.shrink(2.0));
    text.text(
        pos2(rect.left() + 4.0, rect.center().y),
        Align2::LEFT_CENTER,
        &bar.name,
        FontId::proportional(11.0),
        theme::NODE_TEXT,
    );
    let mut tooltip = format!("{}\n{duration}", bar.name);
    if bar.cached {
        tooltip.push_str(", cached");
    }
    if bar.critical {
        tooltip.push_str(", on the critical path");
    }
    response.on_hover_text(tooltip).clicked()
}

/// Draws five evenly spaced time labels along the top of `area`.
fn axis_ui(painter: &egui::Painter, area: Rect, total_ms: u64) {
    const TICKS: u64 = 5;
    for tick in 0..=TICKS {
        let ms = total_ms * tick / TICKS;
        let x = area.left() + area.width() * tick as f32 / TICKS as f32;
        let anchor = match tick {
            0 => Align2::LEFT_TOP,
            TICKS => Align2::RIGHT_TOP,
            _ => Align2::CENTER_TOP,
        };
        painter.text(
            pos2(x, area.top()),
            anchor,
            format::duration_ms(ms),
            FontId::proportional(10.0),
            theme::LANE_TEXT,
        );
        painter.line_segment(
            [pos2(x, area.top() + 12.0), pos2(x, area.bottom())],
            Stroke::new(0.5, theme::EDGE.gamma_multiply(0.5)),
        );
    }
}
