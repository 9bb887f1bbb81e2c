//! `strata history`: list, inspect, replay, trace, explain and compare
//! recorded builds, and move records between stores.

mod logs;
mod render;

use super::open_engine;
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use strata_history::explain::{BuildView, explain};
use strata_history::{
    BuildRecord, BuildStatus, HistoryDb, Inspection, StepCounts, compare, steps_from_events,
    to_chrome_trace,
};

/// A build reference as every subcommand takes it.
const REF_HELP: &str = "Build id, unique id prefix, or `^N` (`^0` is the newest build)";

#[derive(Subcommand)]
pub enum HistoryCommand {
    /// List recorded builds, newest first
    Ls(LsArgs),
    /// Show a build's request, outcome, critical path and exports
    Inspect {
        #[arg(help = REF_HELP)]
        reference: String,
        /// Output format
        #[arg(long, value_enum, default_value = "text")]
        format: TextOrJson,
    },
    /// Print a build's full logs in the plain progress format
    Logs {
        #[arg(help = REF_HELP)]
        reference: String,
        /// Only this step: its `#N` number or (part of) its name
        #[arg(long, value_name = "NAME_OR_NUMBER")]
        step: Option<String>,
    },
    /// Delete build records
    Rm {
        #[arg(required = true, help = REF_HELP)]
        references: Vec<String>,
    },
    /// Keep a build record regardless of the retention limits
    Pin {
        #[arg(help = REF_HELP)]
        reference: String,
    },
    /// Let the retention limits delete a pinned build record again
    Unpin {
        #[arg(help = REF_HELP)]
        reference: String,
    },
    /// Write a build record with its events and logs to a file
    Export {
        #[arg(help = REF_HELP)]
        reference: String,
        /// Destination file (gzip-compressed JSON); `-` writes to standard output
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// Store a build record from a file written by `strata history export`
    Import {
        /// File written by `strata history export`
        file: PathBuf,
    },
    /// Write a build's step timings as a trace
    Trace {
        #[arg(help = REF_HELP)]
        reference: String,
        /// Trace format; `chrome` opens in Perfetto and chrome://tracing
        #[arg(long, value_enum, default_value = "chrome")]
        format: TraceFormat,
        /// Destination file (default: standard output)
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Explain why each step that ran missed the cache
    Explain {
        #[arg(help = REF_HELP)]
        reference: String,
        /// Build to compare against (default: the previous build of the same
        /// Dockerfile, context and target)
        #[arg(long, value_name = "REF")]
        against: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value = "text")]
        format: TextOrJson,
    },
    /// Compare two builds: steps added, removed and changed, cache flips and
    /// timing differences
    Compare {
        /// The earlier build (id, id prefix or `^N`)
        base: String,
        /// The later build (id, id prefix or `^N`)
        other: String,
        /// Output format
        #[arg(long, value_enum, default_value = "text")]
        format: TextOrJson,
    },
}

#[derive(Args)]
pub struct LsArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: TableOrJson,
    /// Show only matching builds: `status=STATUS`, `target=NAME`,
    /// `pinned=true|false`, `context=TEXT` or `dockerfile=TEXT` (repeatable;
    /// all must match)
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// Show at most this many builds
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOrJson {
    Table,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    Chrome,
}

pub async fn run(root: Option<PathBuf>, command: HistoryCommand) -> anyhow::Result<ExitCode> {
    let mut db = open_engine(root, None)?.history()?;
    match command {
        HistoryCommand::Ls(args) => list(&db, &args)?,
        HistoryCommand::Inspect { reference, format } => {
            let record = db.resolve(&reference)?;
            let inspection = Inspection::new(&record, &db.events(&record.id)?);
            match format {
                TextOrJson::Json => print_json(&inspection)?,
                TextOrJson::Text => print_out(render::inspection(&inspection).as_bytes())?,
            }
        }
        HistoryCommand::Logs { reference, step } => {
            let record = db.resolve(&reference)?;
            logs::print(&record, db.events(&record.id)?, step.as_deref()).await?;
        }
        HistoryCommand::Rm { references } => remove(&db, &references)?,
        HistoryCommand::Pin { reference } => set_pinned(&db, &reference, true)?,
        HistoryCommand::Unpin { reference } => set_pinned(&db, &reference, false)?,
        HistoryCommand::Export { reference, output } => export(&db, &reference, &output)?,
        HistoryCommand::Import { file } => {
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("Failed to open `{}`", file.display()))?;
            let id = db
                .import(std::io::BufReader::new(reader))
                .with_context(|| format!("Failed to import `{}`", file.display()))?;
            print_out(format!("{id}\n").as_bytes())?;
        }
        HistoryCommand::Trace {
            reference,
            format: TraceFormat::Chrome,
            output,
        } => {
            let record = db.resolve(&reference)?;
            let steps = steps_from_events(&db.events_without_logs(&record.id)?);
            let mut trace = to_chrome_trace(&steps);
            // Names the one process track after the build in trace viewers.
            if let Some(events) = trace["traceEvents"].as_array_mut() {
                events.push(serde_json::json!({
                    "name": "process_name", "ph": "M", "pid": 1,
                    "args": { "name": format!("strata build {}", record.id) },
                }));
            }
            let trace = serde_json::to_vec_pretty(&trace)?;
            match output {
                Some(path) => write_file(&path, &trace)?,
                None => print_out(&trace)?,
            }
        }
        HistoryCommand::Explain {
            reference,
            against,
            format,
        } => explain_build(&db, &reference, against.as_deref(), format)?,
        HistoryCommand::Compare {
            base,
            other,
            format,
        } => {
            let (base, other) = (db.resolve(&base)?, db.resolve(&other)?);
            let comparison = compare(
                &base,
                &db.events_without_logs(&base.id)?,
                &other,
                &db.events_without_logs(&other.id)?,
            );
            match format {
                TextOrJson::Json => print_json(&comparison)?,
                TextOrJson::Text => print_out(render::comparison(&comparison).as_bytes())?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    print_out(text.as_bytes())
}

/// Writes to standard output. A reader that closed the pipe early, such as
/// `head`, is not an error.
fn print_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(error).context("Failed to write to standard output"))
        }
        _ => Ok(()),
    }
}

/// One row of `history ls`.
#[derive(serde::Serialize)]
struct ListEntry {
    #[serde(flatten)]
    record: BuildRecordSummary,
    steps: StepCounts,
}

#[derive(serde::Serialize)]
struct BuildRecordSummary {
    id: String,
    status: BuildStatus,
    pinned: bool,
    started: chrono::DateTime<chrono::Utc>,
    duration_ms: Option<i64>,
    target: Option<String>,
    context: String,
    dockerfile: String,
}

fn list(db: &HistoryDb, args: &LsArgs) -> anyhow::Result<()> {
    let filters = args
        .filters
        .iter()
        .map(|text| Filter::parse(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut entries = Vec::new();
    for record in db.list()? {
        if !filters.iter().all(|filter| filter.matches(&record)) {
            continue;
        }
        if args.limit.is_some_and(|limit| entries.len() >= limit) {
            break;
        }
        let steps = StepCounts::from_events(&db.events_without_logs(&record.id)?);
        entries.push(ListEntry {
            record: BuildRecordSummary {
                id: record.id,
                status: record.status,
                pinned: record.pinned,
                started: record.started,
                duration_ms: record
                    .finished
                    .map(|f| (f - record.started).num_milliseconds()),
                target: record.request.target,
                context: record.request.context,
                dockerfile: record.request.dockerfile,
            },
            steps,
        });
    }
    match args.format {
        TableOrJson::Json => print_json(&entries),
        TableOrJson::Table => {
            let rows = entries.iter().map(|entry| {
                let r = &entry.record;
                render::ListRow {
                    id: &r.id,
                    status: r.status,
                    pinned: r.pinned,
                    started: r.started,
                    duration_ms: r.duration_ms,
                    steps: entry.steps,
                    target: r.target.as_deref(),
                    dockerfile: &r.dockerfile,
                }
            });
            print_out(render::list_table(rows).as_bytes())
        }
    }
}

/// One `--filter KEY=VALUE` of `history ls`.
enum Filter {
    Status(BuildStatus),
    Target(String),
    Pinned(bool),
    Context(String),
    Dockerfile(String),
}

const STATUSES: [BuildStatus; 5] = [
    BuildStatus::Running,
    BuildStatus::Succeeded,
    BuildStatus::Failed,
    BuildStatus::Canceled,
    BuildStatus::Interrupted,
];

impl Filter {
    fn parse(text: &str) -> anyhow::Result<Filter> {
        let Some((key, value)) = text.split_once('=') else {
            bail!(
                "Invalid `--filter` value `{text}`: expected `KEY=VALUE`, such as `status=failed`"
            );
        };
        Ok(match key {
            "status" => {
                let status = STATUSES.into_iter().find(|s| s.as_str() == value);
                let Some(status) = status else {
                    let names: Vec<String> = STATUSES
                        .iter()
                        .map(|s| format!("`{}`", s.as_str()))
                        .collect();
                    bail!(
                        "Invalid status `{value}` in `--filter {text}`: use one of {}",
                        names.join(", ")
                    );
                };
                Filter::Status(status)
            }
            "target" => Filter::Target(value.to_string()),
            "pinned" => match value {
                "true" => Filter::Pinned(true),
                "false" => Filter::Pinned(false),
                _ => bail!("Invalid value `{value}` in `--filter {text}`: use `true` or `false`"),
            },
            "context" => Filter::Context(value.to_string()),
            "dockerfile" => Filter::Dockerfile(value.to_string()),
            _ => bail!(
                "Unknown filter key `{key}` in `--filter {text}`: use `status`, `target`, `pinned`, `context` or `dockerfile`"
            ),
        })
    }

    fn matches(&self, record: &BuildRecord) -> bool {
        match self {
            Filter::Status(status) => record.status == *status,
            Filter::Target(target) => record.request.target.as_deref() == Some(target.as_str()),
            Filter::Pinned(pinned) => record.pinned == *pinned,
            Filter::Context(text) => record.request.context.contains(text.as_str()),
            Filter::Dockerfile(text) => record.request.dockerfile.contains(text.as_str()),
        }
    }
}

/// Resolves every reference before deleting anything, so one bad reference
/// leaves the history unchanged.
fn remove(db: &HistoryDb, references: &[String]) -> anyhow::Result<()> {
    let mut records = Vec::new();
    for reference in references {
        let record = db.resolve(reference)?;
        if record.status == BuildStatus::Running {
            bail!(
                "Build `{}` is still running; remove it after it finishes",
                record.id
            );
        }
        records.push(record);
    }
    for record in records {
        if db.remove(&record.id)? {
            print_out(format!("{}\n", record.id).as_bytes())?;
        }
    }
    Ok(())
}

fn set_pinned(db: &HistoryDb, reference: &str, pinned: bool) -> anyhow::Result<()> {
    let record = db.resolve(reference)?;
    db.set_pinned(&record.id, pinned)?;
    print_out(format!("{}\n", record.id).as_bytes())
}

fn export(db: &HistoryDb, reference: &str, output: &Path) -> anyhow::Result<()> {
    let record = db.resolve(reference)?;
    if output.as_os_str() == "-" {
        return db.export(&record.id, std::io::stdout().lock());
    }
    let mut bytes = Vec::new();
    db.export(&record.id, &mut bytes)?;
    write_file(output, &bytes)
}

/// Writes through a temporary file in the same directory and renames it, so
/// a failed write never leaves a truncated file under the final name.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let write = || -> std::io::Result<()> {
        let mut temp = tempfile::NamedTempFile::new_in(dir)?;
        temp.write_all(bytes)?;
        temp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().with_context(|| format!("Failed to write `{}`", path.display()))
}

fn explain_build(
    db: &HistoryDb,
    reference: &str,
    against: Option<&str>,
    format: TextOrJson,
) -> anyhow::Result<()> {
    let record = db.resolve(reference)?;
    let earlier = match against {
        Some(against) => Some(db.resolve(against)?),
        None => db.previous(&record)?,
    };
    let events = db.events_without_logs(&record.id)?;
    let earlier_events = match &earlier {
        Some(earlier) => db.events_without_logs(&earlier.id)?,
        None => Vec::new(),
    };
    let current = BuildView::new(&record, &events);
    let earlier_view = earlier.as_ref().map(|e| BuildView::new(e, &earlier_events));
    let explanations = explain(&current, earlier_view.as_ref());
    match format {
        TextOrJson::Json => {
            // Each reason as data and as the sentence the text output prints.
            let steps: Vec<serde_json::Value> = explanations
                .iter()
                .map(|e| {
                    let messages: Vec<String> = e.reasons.iter().map(|r| r.to_string()).collect();
                    serde_json::json!({
                        "vertex": e.vertex,
                        "step": e.step,
                        "reasons": e.reasons,
                        "messages": messages,
                    })
                })
                .collect();
            print_json(&serde_json::json!({
                "build": record.id,
                "against": earlier.as_ref().map(|e| &e.id),
                "steps": steps,
            }))
        }
        TextOrJson::Text => {
            let text = render::explanations(&record, earlier.as_ref(), &explanations);
            print_out(text.as_bytes())
        }
    }
}
