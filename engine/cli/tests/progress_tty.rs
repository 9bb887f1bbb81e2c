mod progress_support;

use progress_support::{failed_build, successful_build};
use strata_cli::progress::TtyOptions;
use strata_solver::events::Event;
use unicode_width::UnicodeWidthStr;

/// Shows escape characters, so snapshots show where frames redraw.
fn visible(output: &str) -> String {
    output.replace('\x1b', "␛")
}

/// Removes ANSI escape sequences, leaving the text a terminal shows.
fn strip_escapes(line: &str) -> String {
    let mut text = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if c != '\r' {
            text.push(c);
        }
    }
    text
}

/// Returns the text of the final frame: what follows the last redraw.
fn final_frame(output: &str) -> String {
    let start = output.rfind("[+] Building").expect("a frame was drawn");
    strip_escapes(&output[start..])
}

#[tokio::test]
async fn tty_successful_build() {
    let options = TtyOptions {
        width: 72,
        height: 20,
        color: true,
    };
    let (output, summary) = successful_build().render_tty(options).await;
    insta::assert_snapshot!(visible(&output));
    insta::assert_snapshot!("tty_successful_build_final", final_frame(&output));
    assert_eq!(summary.ran, 4);
}

#[tokio::test]
async fn tty_failed_build() {
    let options = TtyOptions {
        width: 72,
        height: 20,
        color: false,
    };
    let (output, summary) = failed_build().render_tty(options).await;
    insta::assert_snapshot!(visible(&output));
    assert_eq!(summary.failed, 1);
}

#[tokio::test]
async fn tty_fits_lines_to_width() {
    let options = TtyOptions {
        width: 30,
        height: 8,
        color: true,
    };
    let (output, _) = failed_build().render_tty(options).await;
    for line in output.lines() {
        let text = strip_escapes(line);
        assert!(text.width() <= 30, "line wider than 30 columns: {text:?}");
    }
}

#[tokio::test]
async fn tty_live_frames_fit_height() {
    let options = TtyOptions {
        width: 60,
        height: 5,
        color: false,
    };
    let (output, _) = failed_build().render_tty(options).await;
    let last_frame_start = output.rfind("[+] Building").unwrap();
    // Every live frame starts with the header, and no live frame may be
    // taller than the terminal minus the row the cursor rests on.
    for frame in output[..last_frame_start].split("[+] Building").skip(1) {
        let rows = frame.matches('\n').count();
        assert!(
            rows <= 4,
            "frame of {rows} rows, expected at most 4: {frame:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn tty_clock_advances_between_events() {
    let script = successful_build();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let buffer = progress_support::SharedBuffer::default();
    let options = TtyOptions {
        width: 72,
        height: 20,
        color: false,
    };
    let handle =
        strata_cli::progress::spawn_tty_renderer(receiver, Box::new(buffer.clone()), options);

    // Up to `RUN make`'s start at 130 ms, then two idle seconds.
    for event in script
        .events
        .iter()
        .take_while(|event| !matches!(event.event, Event::Log { .. }))
    {
        sender.send(event.clone()).unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    drop(sender);
    handle.await.unwrap();

    let output = buffer.text();
    // Ticks come every 100 ms, so the last live frame shows about 2.0s.
    assert!(output.contains("[+] Building 1.5s"), "{output}");
    assert!(output.contains(" => [build 2/4] RUN make"), "{output}");
}
