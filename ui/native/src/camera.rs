//! Pan and zoom of the DAG canvas: a layout point `p` is drawn at
//! `canvas.min + offset + p * zoom`.

use eframe::egui::{Pos2, Rect, Vec2, vec2};

const MIN_ZOOM: f32 = 0.1;
const MAX_ZOOM: f32 = 4.0;
/// Space kept free around the graph when fitting, in points.
const FIT_MARGIN: f32 = 24.0;

#[derive(Clone, Debug)]
pub struct Camera {
    pub offset: Vec2,
    pub zoom: f32,
    /// Refit on every frame, so a live graph stays in view as it grows,
    /// until the user pans or zooms.
    pub fit: bool,
}

impl Default for Camera {
    fn default() -> Self {
        Camera {
            offset: Vec2::ZERO,
            zoom: 1.0,
            fit: true,
        }
    }
}

impl Camera {
    /// Maps a layout point to the screen.
    pub fn to_screen(&self, canvas: Rect, x: f64, y: f64) -> Pos2 {
        canvas.min + self.offset + vec2(x as f32, y as f32) * self.zoom
    }

    /// Centres a graph of the given layout size in `canvas`, at most at
    /// its natural size.
    pub fn fit_to(&mut self, canvas: Rect, width: f64, height: f64) {
        let size = vec2(width as f32, height as f32).max(vec2(1.0, 1.0));
        let room = (canvas.size() - Vec2::splat(2.0 * FIT_MARGIN)).max(vec2(1.0, 1.0));
        self.zoom = (room.x / size.x).min(room.y / size.y).clamp(MIN_ZOOM, 1.0);
        self.offset = (canvas.size() - size * self.zoom) / 2.0;
    }

    /// Zooms by `factor`, keeping the layout point under `anchor` (a screen
    /// position) in place.
    pub fn zoom_at(&mut self, canvas: Rect, anchor: Pos2, factor: f32) {
        let zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        let local = anchor - canvas.min;
        let point = (local - self.offset) / self.zoom;
        self.offset = local - point * zoom;
        self.zoom = zoom;
        self.fit = false;
    }

    pub fn pan(&mut self, delta: Vec2) {
        self.offset += delta;
        self.fit = false;
    }
}
