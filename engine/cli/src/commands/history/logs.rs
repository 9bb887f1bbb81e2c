//! `strata history logs`: a recorded build replayed through the plain
//! progress renderer, so the output matches `strata build --progress plain`
//! line for line, with every log line kept.

use anyhow::bail;
use std::io::Write;
use std::sync::{Arc, Mutex};
use strata_cli::progress::{ProgressMode, spawn_renderer};
use strata_history::BuildRecord;
use strata_solver::StampedEvent;

/// Prints the build's plain progress log, or only the lines of one step.
pub async fn print(
    record: &BuildRecord,
    events: Vec<StampedEvent>,
    step: Option<&str>,
) -> anyhow::Result<()> {
    let Some(step) = step else {
        replay(events, Box::new(std::io::stdout())).await?;
        return Ok(());
    };
    let buffer = SharedBuffer::default();
    replay(events, Box::new(buffer.clone())).await?;
    let text = String::from_utf8_lossy(&buffer.0.lock().expect("log buffer lock")).into_owned();
    let headers = step_headers(&text);
    let number = select_step(&headers, step, &record.id)?;
    let prefix = format!("#{number}");
    let mut stdout = std::io::stdout().lock();
    for line in text.lines() {
        if line == prefix || line.starts_with(&format!("{prefix} ")) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(())
}

async fn replay(events: Vec<StampedEvent>, out: Box<dyn Write + Send>) -> anyhow::Result<()> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    for event in events {
        // The receiver lives until the renderer below has read every event.
        let _ = sender.send(event);
    }
    drop(sender);
    spawn_renderer(ProgressMode::Plain, receiver, out).await?;
    Ok(())
}

#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("log buffer lock")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Returns `(number, name)` of every step in the plain log: the renderer
/// opens each step's first block with `#N NAME`.
fn step_headers(text: &str) -> Vec<(usize, String)> {
    let mut headers: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let (number, name) = rest.split_once(' ').unwrap_or((rest, ""));
        let Ok(number) = number.parse::<usize>() else {
            continue;
        };
        if !headers.iter().any(|(known, _)| *known == number) {
            headers.push((number, name.to_string()));
        }
    }
    headers
}

/// Picks the step `query` names: a `#N` number, an exact name, the
/// instruction without its `[stage i/n]` prefix, or a unique part of a
/// name.
fn select_step(headers: &[(usize, String)], query: &str, build: &str) -> anyhow::Result<usize> {
    let listing = || {
        headers
            .iter()
            .map(|(number, name)| format!("\n  #{number} {name}"))
            .collect::<String>()
    };
    if let Ok(number) = query.trim_start_matches('#').parse::<usize>() {
        if headers.iter().any(|(known, _)| *known == number) {
            return Ok(number);
        }
        bail!(
            "Build `{build}` has no step #{number}; its steps are:{}",
            listing()
        );
    }
    let instruction = |name: &str| match (name.starts_with('['), name.find("] ")) {
        (true, Some(end)) => name[end + 2..].to_string(),
        _ => name.to_string(),
    };
    let tiers: [&dyn Fn(&str) -> bool; 3] = [
        &|name| name == query,
        &|name| instruction(name) == query,
        &|name| name.contains(query),
    ];
    for matches_query in tiers {
        let found: Vec<&(usize, String)> = headers
            .iter()
            .filter(|(_, name)| matches_query(name))
            .collect();
        match found.as_slice() {
            [] => continue,
            [(number, _)] => return Ok(*number),
            several => {
                let names: String = several
                    .iter()
                    .map(|(number, name)| format!("\n  #{number} {name}"))
                    .collect();
                bail!(
                    "Step `{query}` matches {} steps of build `{build}`; give its number:{names}",
                    several.len()
                );
            }
        }
    }
    bail!(
        "No step of build `{build}` matches `{query}`; give a number or part of a name:{}",
        listing()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Vec<(usize, String)> {
        step_headers(
            "#1 [internal] load build context\n#1 DONE 0.0s\n\n#2 [a 2/3] RUN echo hi\n#2 0.01 hi\n#2 DONE 0.1s\n\n#3 [a 3/3] RUN echo hi again\n",
        )
    }

    #[test]
    fn headers_come_from_first_lines() {
        let names: Vec<usize> = headers().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [1, 2, 3]);
        assert_eq!(headers()[1].1, "[a 2/3] RUN echo hi");
    }

    #[test]
    fn select_by_number_and_name() {
        let headers = headers();
        assert_eq!(select_step(&headers, "2", "b").unwrap(), 2);
        assert_eq!(select_step(&headers, "#3", "b").unwrap(), 3);
        assert_eq!(select_step(&headers, "RUN echo hi", "b").unwrap(), 2);
        assert_eq!(select_step(&headers, "again", "b").unwrap(), 3);
    }

    #[test]
    fn select_rejects_unknown_and_ambiguous() {
        let headers = headers();
        let unknown = select_step(&headers, "9", "b").unwrap_err().to_string();
        assert!(unknown.contains("no step #9"), "{unknown}");
        let missing = select_step(&headers, "COPY", "b").unwrap_err().to_string();
        assert!(missing.contains("`COPY`"), "{missing}");
        let ambiguous = select_step(&headers, "echo", "b").unwrap_err().to_string();
        assert!(ambiguous.contains("matches 2 steps"), "{ambiguous}");
    }
}
