//! The header: build title and outcome, step counts, camera buttons and
//! the colour legend.

use crate::theme;
use crate::view::BuildView;
use eframe::egui::{self, Color32, RichText, Sense, vec2};
use strata_ui_model::format;

impl BuildView {
    pub(crate) fn header_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.heading(&self.title);
            ui.separator();
            ui.label(self.outcome_text());
            ui.separator();
            let counts = self.model.counts();
            let finished = counts.cached + counts.done + counts.failed;
            ui.label(format!(
                "{finished}/{} steps · {} running · {} cached · {} failed",
                counts.total, counts.running, counts.cached, counts.failed
            ));
            ui.separator();
            if ui
                .button("Fit")
                .on_hover_text("Fit the graph in view")
                .clicked()
            {
                self.camera.fit = true;
            }
            let follow = ui
                .checkbox(&mut self.follow_running, "Follow running step")
                .on_hover_text("Select the step that started last");
            if follow.changed() && self.follow_running {
                self.refresh();
            }
        });
        ui.horizontal_wrapped(|ui| self.legend_ui(ui));
    }

    fn legend_ui(&self, ui: &mut egui::Ui) {
        for state in theme::ALL_STATES {
            swatch_ui(ui, theme::node_fill(state));
            ui.label(theme::state_name(state));
        }
    }

    fn outcome_text(&self) -> RichText {
        let duration = self.model.duration_ms.map(format::duration_ms);
        match (self.model.finished, duration) {
            (Some(true), Some(duration)) => RichText::new(format!("Succeeded in {duration}"))
                .color(theme::node_fill(strata_ui_model::NodeState::Done).gamma_multiply(1.6)),
            (Some(false), Some(duration)) => {
                RichText::new(format!("Failed after {duration}")).color(theme::ERROR_TEXT)
            }
            _ if self.is_running() => RichText::new("Running"),
            _ => RichText::new("Did not finish"),
        }
    }
}

/// A small filled square in `colour`, for legends.
pub(crate) fn swatch_ui(ui: &mut egui::Ui, colour: Color32) {
    let (rect, _) = ui.allocate_exact_size(vec2(12.0, 12.0), Sense::hover());
    ui.painter().rect_filled(rect, 2.0, colour);
}
