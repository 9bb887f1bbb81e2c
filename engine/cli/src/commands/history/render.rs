//! Text output of `strata history`: the `ls` table, `inspect`, `explain`
//! and `compare`.

use chrono::{DateTime, Local, Utc};
use std::fmt::Write;
use strata_history::compare::{Comparison, StepChange};
use strata_history::explain::Explanation;
use strata_history::{BuildRecord, BuildStatus, Inspection, StepCounts, StepState};

/// One row of the `history ls` table.
pub struct ListRow<'a> {
    pub id: &'a str,
    pub status: BuildStatus,
    pub pinned: bool,
    pub started: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub steps: StepCounts,
    pub target: Option<&'a str>,
    pub dockerfile: &'a str,
}

pub fn list_table<'a>(rows: impl Iterator<Item = ListRow<'a>>) -> String {
    let header = [
        "ID",
        "STATUS",
        "STARTED",
        "DURATION",
        "STEPS",
        "CACHED",
        "TARGET",
        "DOCKERFILE",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for row in rows {
        let status = if row.pinned {
            format!("{} (pinned)", row.status.as_str())
        } else {
            row.status.as_str().to_string()
        };
        table.push(vec![
            row.id.to_string(),
            status,
            local_time(row.started),
            row.duration_ms.map_or_else(|| "-".into(), duration),
            format!("{}/{}", row.steps.done, row.steps.total),
            percent(row.steps.cached_share),
            row.target.unwrap_or("-").to_string(),
            row.dockerfile.to_string(),
        ]);
    }
    align(&table)
}

/// Pads every column but the last to its widest cell.
fn align(table: &[Vec<String>]) -> String {
    let columns = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}   ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn local_time(time: DateTime<Utc>) -> String {
    time.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Formats milliseconds as `850ms` below a second and `12.34s` above.
pub fn duration(ms: i64) -> String {
    if ms.abs() < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.2}s", ms as f64 / 1000.0)
    }
}

fn signed_duration(ms: i64) -> String {
    if ms >= 0 {
        format!("+{}", duration(ms))
    } else {
        format!("-{}", duration(-ms))
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

pub fn inspection(inspection: &Inspection) -> String {
    let mut out = String::new();
    let request = &inspection.request;
    let field = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(out, "{:<12}{value}", format!("{name}:"));
    };
    field(&mut out, "ID", &inspection.id);
    let mut status = inspection.status.as_str().to_string();
    if inspection.pinned {
        status.push_str(" (pinned)");
    }
    field(&mut out, "Status", &status);
    field(&mut out, "Started", &local_time(inspection.started));
    let total = inspection.duration_ms.map_or_else(|| "-".into(), duration);
    field(&mut out, "Duration", &total);
    field(&mut out, "Context", &request.context);
    field(&mut out, "Dockerfile", &request.dockerfile);
    field(
        &mut out,
        "Target",
        request.target.as_deref().unwrap_or("(last stage)"),
    );
    let args: Vec<String> = request
        .build_args
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    field(&mut out, "Build args", &list_or_none(&args));
    field(&mut out, "Secrets", &list_or_none(&request.secrets));
    field(&mut out, "Outputs", &list_or_none(&request.outputs));
    field(&mut out, "Tags", &list_or_none(&request.tags));
    if request.no_cache {
        field(&mut out, "Cache", "disabled (--no-cache)");
    }
    let steps = &inspection.steps;
    let counts = format!(
        "{}/{} done, {} cached ({})",
        steps.done,
        steps.total,
        steps.cached,
        percent(steps.cached_share)
    );
    field(&mut out, "Steps", &counts);

    if let Some(error) = &inspection.error {
        let _ = writeln!(out, "\nError: {}", error.message);
        if let Some(step) = &error.step {
            let _ = writeln!(out, "  step:     {step}");
        }
        if let Some(location) = &error.location {
            let _ = writeln!(out, "  location: {}:{}", location.file, location.start_line);
        }
    }

    if !inspection.critical_path.is_empty() {
        let _ = writeln!(out, "\nCritical path:");
        let mut table = vec![
            ["QUEUED", "CACHE LOOKUP", "RUN", "STATE", "STEP"]
                .map(String::from)
                .to_vec(),
        ];
        for step in &inspection.critical_path {
            table.push(vec![
                duration(step.queued_ms),
                duration(step.cache_lookup_ms),
                duration(step.run_ms),
                state_name(step.state).to_string(),
                step.name.clone(),
            ]);
        }
        for line in align(&table).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }

    if !inspection.exports.is_empty() {
        let _ = writeln!(out, "\nExports:");
        for export in &inspection.exports {
            let time = export
                .duration_ms
                .map_or_else(|| "not finished".into(), |ms| duration(ms as i64));
            let _ = writeln!(out, "  {}: {time}", export.name);
        }
    }
    if let Some(snapshot) = inspection
        .result
        .as_ref()
        .and_then(|r| r.get("snapshot"))
        .and_then(|s| s.as_str())
    {
        let _ = writeln!(out, "\nResult snapshot: {snapshot}");
    }
    out
}

fn state_name(state: StepState) -> &'static str {
    match state {
        StepState::Queued => "queued",
        StepState::Running => "running",
        StepState::Cached => "cached",
        StepState::Done => "ran",
        StepState::Failed => "failed",
        StepState::Canceled => "canceled",
    }
}

pub fn explanations(
    record: &BuildRecord,
    earlier: Option<&BuildRecord>,
    explanations: &[Explanation],
) -> String {
    let mut out = String::new();
    match earlier {
        Some(earlier) => {
            let _ = writeln!(out, "Build {} against build {}", record.id, earlier.id);
        }
        None => {
            let _ = writeln!(
                out,
                "Build {}: no earlier build of this Dockerfile, context and target",
                record.id
            );
        }
    }
    if explanations.is_empty() {
        let _ = writeln!(out, "No step ran: every step came from the cache");
    }
    for explanation in explanations {
        let _ = writeln!(out, "\n{}", explanation.step);
        for reason in &explanation.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
    }
    out
}

pub fn comparison(comparison: &Comparison) -> String {
    let mut out = String::new();
    let (base, other) = (&comparison.base, &comparison.other);
    let _ = writeln!(out, "Base:  {} ({})", base.id, base.status.as_str());
    let _ = writeln!(out, "Other: {} ({})", other.id, other.status.as_str());
    let total = |ms: Option<i64>| ms.map_or_else(|| "-".into(), duration);
    let difference = comparison
        .duration_difference_ms
        .map_or_else(String::new, |ms| format!(" ({})", signed_duration(ms)));
    let _ = writeln!(
        out,
        "Duration:  {} → {}{difference}",
        total(base.duration_ms),
        total(other.duration_ms)
    );
    let _ = writeln!(
        out,
        "Step time: {} → {} ({})",
        duration(base.step_time_ms),
        duration(other.step_time_ms),
        signed_duration(other.step_time_ms - base.step_time_ms)
    );
    let _ = writeln!(
        out,
        "Steps:     {} ({} cached, {} ran) → {} ({} cached, {} ran)",
        base.steps, base.cached, base.ran, other.steps, other.cached, other.ran
    );

    section(&mut out, "Added", comparison.added.iter(), |s| {
        format!("+ {}", s.name)
    });
    section(&mut out, "Removed", comparison.removed.iter(), |s| {
        format!("- {}", s.name)
    });
    section(&mut out, "Changed", comparison.changed.iter(), |c| {
        let kind = match c.change {
            StepChange::Instruction => "instruction",
            StepChange::Options => "options",
        };
        if c.before == c.after {
            format!("~ {} ({kind})", c.after)
        } else {
            format!("~ {} → {} ({kind})", c.before, c.after)
        }
    });
    section(
        &mut out,
        "Cache flips",
        comparison.cache_flips.iter(),
        |f| {
            format!(
                "{} → {}: {}",
                state_name(f.before),
                state_name(f.after),
                f.step
            )
        },
    );
    section(
        &mut out,
        "Timing (largest difference first)",
        comparison.timing.iter().filter(|t| t.difference_ms != 0),
        |t| {
            format!(
                "{:>9}  {} → {}  {}",
                signed_duration(t.difference_ms),
                duration(t.before_ms),
                duration(t.after_ms),
                t.step
            )
        },
    );
    out
}

/// Writes a titled list, or nothing when `items` is empty.
fn section<T>(
    out: &mut String,
    title: &str,
    items: impl Iterator<Item = T>,
    line: impl Fn(T) -> String,
) {
    let lines: Vec<String> = items.map(line).collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}:");
    for text in lines {
        let _ = writeln!(out, "  {text}");
    }
}
