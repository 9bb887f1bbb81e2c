//! Layer progress of an image pull in the plain and tty renderers.

mod progress_support;

use progress_support::Script;
use strata_cli::progress::{ProgressMode, TtyOptions};
use strata_llb::Digest;
use strata_solver::events::{Event, LayerStatus};

const MB: u64 = 1_000_000;

fn layer() -> Digest {
    Digest::of_bytes(b"a layer blob")
}

fn update(status: LayerStatus, current: u64) -> Event {
    Event::LayerProgress {
        phase: "pull-app".into(),
        layer: layer(),
        status,
        current,
        total: 40 * MB,
    }
}

/// A pull of one 40 MB layer over three seconds, then its unpacking.
fn pull_script() -> Script {
    let mut script = Script::new();
    script.at(
        0,
        Event::BuildStarted {
            build_id: "b".into(),
        },
    );
    script.at(
        0,
        Event::Phase {
            id: "pull-app".into(),
            name: "pulling app".into(),
            duration_ms: None,
        },
    );
    script.at(10, update(LayerStatus::Downloading, 0));
    for (ms, mb) in [(250, 2), (500, 5), (1300, 16), (2400, 30), (3000, 40)] {
        script.at(ms, update(LayerStatus::Downloading, mb * MB));
    }
    script.at(3010, update(LayerStatus::Verified, 40 * MB));
    script.at(3020, update(LayerStatus::Extracting, 0));
    script.at(3500, update(LayerStatus::Extracted, 40 * MB));
    script.at(
        3600,
        Event::Phase {
            id: "pull-app".into(),
            name: "pulling app".into(),
            duration_ms: Some(3600),
        },
    );
    script.at(
        3700,
        Event::BuildFinished {
            success: true,
            error: None,
            duration_ms: 3700,
        },
    );
    script
}

#[tokio::test]
async fn plain_prints_layer_lines() {
    let (output, _) = pull_script().render(ProgressMode::Plain).await;
    let short = layer().as_str()[..19].to_string();
    let lines: Vec<&str> = output.lines().collect();

    assert_eq!(lines[0], "#1 pulling app", "{output}");
    assert_eq!(lines[1], format!("#1 {short} 0B / 40MB 0.0s"), "{output}");
    // Updates within a second of the last printed one are skipped.
    assert_eq!(lines[2], format!("#1 {short} 16MB / 40MB 1.3s"), "{output}");
    assert_eq!(lines[3], format!("#1 {short} 30MB / 40MB 2.4s"), "{output}");
    assert_eq!(lines[4], format!("#1 {short} 40MB 3.0s done"), "{output}");
    assert_eq!(
        lines[5],
        format!("#1 extracting {short} 0B / 40MB 0.0s"),
        "{output}"
    );
    assert_eq!(
        lines[6],
        format!("#1 extracting {short} 40MB 0.5s done"),
        "{output}"
    );
    assert_eq!(lines[7], "#1 DONE 3.6s", "{output}");
}

#[tokio::test]
async fn tty_draws_layer_bar() {
    let options = TtyOptions {
        width: 100,
        height: 20,
        color: false,
    };
    let (output, _) = pull_script().render_tty(options).await;
    let short = layer().as_str()[..19].to_string();
    let bar_line = output
        .lines()
        .find(|line| line.contains(short.as_str()) && line.contains("[=="));
    let bar_line = bar_line.unwrap_or_else(|| panic!("no bar for `{short}` in:\n{output}"));
    assert!(bar_line.contains("/ 40MB"), "{bar_line}");
}
