//! The rawjson renderer: each event as one line of JSON, exactly as
//! serialized, for tools that read the stream.

use std::io::Write;

use strata_solver::events::StampedEvent;

use super::state::BuildState;
use super::summary::RenderSummary;

pub(crate) struct RawJsonRenderer<W: Write> {
    state: BuildState,
    out: W,
}

impl<W: Write> RawJsonRenderer<W> {
    pub(crate) fn new(out: W) -> RawJsonRenderer<W> {
        RawJsonRenderer {
            state: BuildState::default(),
            out,
        }
    }

    pub(crate) fn handle(&mut self, stamped: &StampedEvent) {
        self.state.apply(stamped);
        // Serializing cannot fail, because an event contains only strings,
        // numbers, timestamps and enums. A failure would skip the line
        // rather than panic, because progress output must never stop a build.
        if let Ok(mut line) = serde_json::to_string(stamped) {
            line.push('\n');
            let _ = self.out.write_all(line.as_bytes());
            let _ = self.out.flush();
        }
    }

    pub(crate) fn finish(self) -> RenderSummary {
        self.state.summary()
    }
}
