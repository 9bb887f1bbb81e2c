//! Event scripts with fixed timestamps for the progress renderer tests.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use strata_cli::progress::{
    ProgressMode, RenderSummary, TtyOptions, spawn_renderer, spawn_tty_renderer,
};
use strata_llb::{Digest, SourceLocation};
use strata_solver::events::{EVENT_FORMAT_VERSION, Event, LogStream, StampedEvent};

/// A writer whose bytes stay readable after the renderer that owns it ends.
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("renderer output is UTF-8")
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sequence of events, each stamped a fixed number of milliseconds after
/// a fixed start, so renderer output does not depend on the clock.
pub struct Script {
    start: DateTime<Utc>,
    pub events: Vec<StampedEvent>,
}

impl Script {
    pub fn new() -> Script {
        Script {
            start: Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap(),
            events: Vec::new(),
        }
    }

    pub fn at(&mut self, ms: i64, event: Event) -> &mut Script {
        let time = self.start + chrono::Duration::milliseconds(ms);
        self.events.push(StampedEvent {
            v: EVENT_FORMAT_VERSION,
            time,
            event,
        });
        self
    }

    /// Renders the whole script with `mode` and returns the output and the
    /// summary. Every event is queued before the renderer starts.
    pub async fn render(&self, mode: ProgressMode) -> (String, RenderSummary) {
        let buffer = SharedBuffer::default();
        let events = self.queue();
        let summary = spawn_renderer(mode, events, Box::new(buffer.clone()))
            .await
            .unwrap();
        (buffer.text(), summary)
    }

    pub async fn render_tty(&self, options: TtyOptions) -> (String, RenderSummary) {
        let buffer = SharedBuffer::default();
        let events = self.queue();
        let summary = spawn_tty_renderer(events, Box::new(buffer.clone()), options)
            .await
            .unwrap();
        (buffer.text(), summary)
    }

    fn queue(&self) -> tokio::sync::mpsc::UnboundedReceiver<StampedEvent> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        for event in &self.events {
            sender.send(event.clone()).unwrap();
        }
        receiver
    }
}

pub fn vertex(name: &str) -> Digest {
    Digest::of_bytes(name.as_bytes())
}

pub fn dockerfile_line(line: usize) -> Option<SourceLocation> {
    Some(SourceLocation {
        file: "Dockerfile".into(),
        start_line: line,
        end_line: line,
    })
}

pub fn queued(name: &str, stage: Option<&str>, line: usize, inputs: &[&str]) -> Event {
    Event::VertexQueued {
        vertex: vertex(name),
        name: name.into(),
        stage: stage.map(str::to_string),
        location: if line == 0 {
            None
        } else {
            dockerfile_line(line)
        },
        inputs: inputs.iter().map(|input| vertex(input)).collect(),
    }
}

pub fn started(name: &str) -> Event {
    Event::VertexStarted {
        vertex: vertex(name),
    }
}

pub fn cached(name: &str) -> Event {
    Event::VertexCached {
        vertex: vertex(name),
        key: vertex("key"),
    }
}

pub fn completed(name: &str, duration_ms: u64) -> Event {
    Event::VertexCompleted {
        vertex: vertex(name),
        key: Some(vertex("key")),
        duration_ms,
    }
}

pub fn failed(name: &str, error: &str, duration_ms: u64) -> Event {
    Event::VertexFailed {
        vertex: vertex(name),
        error: error.into(),
        duration_ms,
    }
}

pub fn stdout(name: &str, data: &str) -> Event {
    Event::Log {
        vertex: vertex(name),
        stream: LogStream::Stdout,
        data: data.into(),
    }
}

pub fn stderr(name: &str, data: &str) -> Event {
    Event::Log {
        vertex: vertex(name),
        stream: LogStream::Stderr,
        data: data.into(),
    }
}

pub const CONTEXT: &str = "[internal] load build context";
pub const BASE: &str = "[build 1/4] FROM docker.io/library/alpine:3.20";
pub const MAKE: &str = "[build 2/4] RUN make";
pub const COPY: &str = "[build 3/4] COPY . /src";
pub const TEST: &str = "[build 4/4] RUN ./test.sh";

/// Returns a build of five vertices: a cached base, a context transfer, a `RUN`
/// whose output arrives in chunks that split lines and interleaves with a
/// `COPY`, a test step, an export phase and a warning.
pub fn successful_build() -> Script {
    let mut script = Script::new();
    script
        .at(
            0,
            Event::BuildStarted {
                build_id: "b1".into(),
            },
        )
        .at(1, queued(CONTEXT, None, 0, &[]))
        .at(1, queued(BASE, Some("build"), 1, &[]))
        .at(1, queued(MAKE, Some("build"), 2, &[BASE]))
        .at(1, queued(COPY, Some("build"), 4, &[MAKE, CONTEXT]))
        .at(1, queued(TEST, Some("build"), 5, &[COPY]))
        .at(
            5,
            Event::Warning {
                message: "UndefinedVar: Usage of undefined variable '$VERSION'".into(),
                location: dockerfile_line(3),
            },
        )
        .at(10, started(CONTEXT))
        .at(10, started(BASE))
        .at(12, cached(BASE))
        .at(20, transfer(0))
        .at(70, transfer(1_200_000))
        .at(120, transfer(2_300_000))
        .at(125, completed(CONTEXT, 115))
        .at(130, started(MAKE))
        .at(140, stdout(MAKE, "gcc -c main.c\ngcc -c ut"))
        .at(200, stdout(MAKE, "il.c\n"))
        .at(210, started(COPY))
        .at(250, completed(COPY, 40))
        .at(300, stderr(MAKE, "util.c:3: warning: unused variable\r\n"))
        .at(900, stdout(MAKE, "gcc -o app main.o util.o\n"))
        .at(1000, completed(MAKE, 870))
        .at(1010, started(TEST))
        .at(1100, stdout(TEST, "ok 1 - parses\nok 2 - renders\n"))
        .at(1300, completed(TEST, 290))
        .at(1310, phase(None))
        .at(1320, layers(1))
        .at(1500, layers(2))
        .at(1600, phase(Some(290)))
        .at(
            1610,
            Event::BuildFinished {
                success: true,
                error: None,
                duration_ms: 1610,
            },
        );
    script
}

fn transfer(current: u64) -> Event {
    Event::Progress {
        vertex: Some(vertex(CONTEXT)),
        id: "transferring context".into(),
        current,
        total: Some(2_300_000),
        unit: "bytes".into(),
    }
}

fn layers(current: u64) -> Event {
    Event::Progress {
        vertex: None,
        id: "exporting layers".into(),
        current,
        total: Some(2),
        unit: "layers".into(),
    }
}

fn phase(duration_ms: Option<u64>) -> Event {
    Event::Phase {
        id: "export".into(),
        name: "exporting to image".into(),
        duration_ms,
    }
}

pub const FAIL_BASE: &str = "[build 1/3] FROM docker.io/library/alpine:3.20";
pub const CONFIGURE: &str = "[build 2/3] RUN ./configure && make";
pub const TOOLS: &str = "[tools 1/1] RUN apk add curl";
pub const CONFIGURE_ERROR: &str =
    "process \"/bin/sh -c ./configure && make\" did not complete successfully: exit code: 1";

/// Returns a build whose `RUN ./configure` prints 25 lines, the last without a
/// newline, then fails, which cancels a step running beside it.
pub fn failed_build() -> Script {
    let mut script = Script::new();
    script
        .at(
            0,
            Event::BuildStarted {
                build_id: "b2".into(),
            },
        )
        .at(1, queued(FAIL_BASE, Some("build"), 1, &[]))
        .at(1, queued(CONFIGURE, Some("build"), 3, &[FAIL_BASE]))
        .at(1, queued(TOOLS, Some("tools"), 7, &[FAIL_BASE]))
        .at(
            1,
            queued(
                "[build 3/3] COPY --from=tools /usr/bin/curl /bin/",
                Some("build"),
                4,
                &[CONFIGURE, TOOLS],
            ),
        )
        .at(10, started(FAIL_BASE))
        .at(11, cached(FAIL_BASE))
        .at(20, started(CONFIGURE))
        .at(20, started(TOOLS))
        .at(
            30,
            stdout(
                TOOLS,
                "fetch https://dl-cdn.alpinelinux.org/alpine/v3.20/main/x86_64/APKINDEX.tar.gz\n",
            ),
        );
    for i in 1..=24 {
        // Two chunks per line, split inside the line.
        let ms = 30 + 30 * i as i64;
        script.at(ms, stdout(CONFIGURE, &format!("checking for feature {i}.")));
        script.at(ms + 10, stdout(CONFIGURE, ".. yes\n"));
    }
    script
        .at(800, stderr(CONFIGURE, "configure: error: missing libfoo"))
        .at(900, failed(CONFIGURE, CONFIGURE_ERROR, 880))
        .at(905, failed(TOOLS, "canceled", 885))
        .at(
            910,
            Event::BuildFinished {
                success: false,
                error: Some(CONFIGURE_ERROR.into()),
                duration_ms: 910,
            },
        );
    script
}

pub const FAILED_DOCKERFILE: &str = "\
FROM alpine:3.20 AS build
WORKDIR /src
RUN ./configure && make
COPY --from=tools /usr/bin/curl /bin/

FROM alpine:3.20 AS tools
RUN apk add curl
";
