//! The DAG panel: nodes where the layout put them, coloured by state,
//! edges from inputs down to their users, pan (drag or scroll), zoom
//! (ctrl+scroll or pinch) and click to select.

use crate::theme;
use crate::view::BuildView;
use eframe::egui::{
    self, Align2, FontId, Painter, Pos2, Rect, Response, Role, Sense, Stroke, StrokeKind,
    WidgetInfo, vec2,
};
use strata_ui_model::format;
use strata_ui_model::layout::EdgePath;
use strata_ui_model::{Node, NodeBox};

/// Below this zoom the node text would be unreadable, so only boxes are
/// drawn.
const MIN_TEXT_ZOOM: f32 = 0.35;

impl BuildView {
    pub(crate) fn dag_ui(&mut self, ui: &mut egui::Ui) {
        let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::click_and_drag());
        let canvas = response.rect;
        painter.rect_filled(canvas, 0.0, theme::BACKGROUND);
        if self.model.nodes.is_empty() {
            painter.text(
                canvas.center(),
                Align2::CENTER_CENTER,
                "Waiting for the build to queue its first step",
                FontId::proportional(14.0),
                theme::LANE_TEXT,
            );
            return;
        }
        self.camera_input_ui(ui, &response);
        if self.camera.fit {
            self.camera
                .fit_to(canvas, self.layout.width, self.layout.height);
        }

        let painter = painter.with_clip_rect(canvas);
        for edge in &self.layout.edges {
            self.edge_ui(&painter, canvas, edge);
        }
        let mut clicked = None;
        for node_box in &self.layout.nodes {
            let Some(node) = self.model.node(&node_box.id) else {
                continue;
            };
            if self.node_ui(ui, &painter, canvas, node_box, node).clicked() {
                clicked = Some(node.id.clone());
            }
        }
        if let Some(id) = clicked {
            self.select(Some(id));
        } else if response.clicked() {
            self.select(None);
        }
    }

    /// Applies drag, scroll and zoom input over the canvas to the camera.
    fn camera_input_ui(&mut self, ui: &egui::Ui, response: &Response) {
        let canvas = response.rect;
        if response.dragged() {
            self.camera.pan(response.drag_delta());
        }
        if !response.hovered() {
            return;
        }
        let (zoom, scroll, pointer) = ui.input(|input| {
            (
                input.zoom_delta(),
                input.smooth_scroll_delta,
                input.pointer.hover_pos(),
            )
        });
        if zoom != 1.0 {
            let anchor = pointer.unwrap_or(canvas.center());
            self.camera.zoom_at(canvas, anchor, zoom);
        } else if scroll != egui::Vec2::ZERO {
            self.camera.pan(scroll);
        }
    }

    fn edge_ui(&self, painter: &Painter, canvas: Rect, edge: &EdgePath) {
        let points: Vec<Pos2> = edge
            .points
            .iter()
            .map(|&(x, y)| self.camera.to_screen(canvas, x, y))
            .collect();
        let selected = self.selected.as_deref();
        let touches_selection = selected == Some(&edge.from) || selected == Some(&edge.to);
        let colour = if touches_selection {
            theme::SELECTION
        } else {
            theme::EDGE
        };
        let stroke = Stroke::new(1.5, colour);
        for pair in points.windows(2) {
            painter.line_segment([pair[0], pair[1]], stroke);
        }
        if let [.., before, end] = points.as_slice() {
            let direction = (*end - *before).normalized() * (8.0 * self.camera.zoom).max(3.0);
            painter.arrow(*end - direction, direction, stroke);
        }
    }

    fn node_ui(
        &self,
        ui: &mut egui::Ui,
        painter: &Painter,
        canvas: Rect,
        node_box: &NodeBox,
        node: &Node,
    ) -> Response {
        let zoom = self.camera.zoom;
        let min = self.camera.to_screen(canvas, node_box.x, node_box.y);
        let size = vec2(node_box.width as f32, node_box.height as f32) * zoom;
        let rect = Rect::from_min_size(min, size);
        let selected = self.selected.as_deref() == Some(node.id.as_str());

        let id = egui::Id::unique(("strata-dag-node", &node.id));
        let response = ui.interact(rect.intersect(canvas), id, Sense::click());
        let state = theme::state_name(node.state);
        response.widget_info(|| {
            let mut info = WidgetInfo::labeled(Role::Button, true, &node.name);
            info.current_text_value = Some(state.to_string());
            info.selected = Some(selected);
            info
        });

        painter.rect(
            rect,
            6.0 * zoom,
            theme::node_fill(node.state),
            theme::node_stroke(node.state, selected),
            StrokeKind::Inside,
        );
        if zoom >= MIN_TEXT_ZOOM {
            let text = painter.with_clip_rect(rect.shrink(4.0 * zoom).intersect(canvas));
            let left = rect.left() + 8.0 * zoom;
            text.text(
                egui::pos2(left, rect.top() + rect.height() * 0.32),
                Align2::LEFT_CENTER,
                &node.name,
                FontId::proportional(13.0 * zoom),
                theme::NODE_TEXT,
            );
            text.text(
                egui::pos2(left, rect.top() + rect.height() * 0.72),
                Align2::LEFT_CENTER,
                self.node_status(node),
                FontId::proportional(11.0 * zoom),
                theme::NODE_TEXT.gamma_multiply(0.75),
            );
        }
        response.on_hover_text(&node.name)
    }

    /// Second line of a node: its state and, once known, how long it took
    /// or has been running.
    fn node_status(&self, node: &Node) -> String {
        let state = theme::state_name(node.state);
        let duration = match (node.duration_ms(), node.started_ms, self.now_ms()) {
            (Some(duration), _, _) => Some(duration),
            (None, Some(started), Some(now)) => Some(now.saturating_sub(started)),
            _ => None,
        };
        match duration {
            Some(ms) => format!("{state} · {}", format::duration_ms(ms)),
            None => state.to_string(),
        }
    }
}
