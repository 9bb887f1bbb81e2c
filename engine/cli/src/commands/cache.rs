//! `strata du`, `strata prune` and `strata cache pin|unpin`: build cache
//! management in the style of `buildctl du` and `buildctl prune`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use strata_store::filter::{Filter, matches_all, parse_duration, parse_filter, parse_free_space};
use strata_store::gc::parse_size;
use strata_store::{CacheRecord, PruneOptions, PruneReport, Store, kind_type_name};

#[derive(Args)]
pub struct DuArgs {
    /// Print every field of each record, one block per record
    #[arg(short, long)]
    verbose: bool,
    /// Show only matching records: `type==regular`, `id~=PREFIX`,
    /// `until=24h`, `inuse`, `pinned` (repeatable)
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// Output format: `table` or `json`
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Also delete image layer records that no image uses
    #[arg(short, long)]
    all: bool,
    /// Delete only matching records: `type==regular`, `id~=PREFIX`,
    /// `until=24h` (repeatable)
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// Keep records used within this duration, such as `48h` or `30m`
    #[arg(long, value_name = "DURATION")]
    keep_duration: Option<String>,
    /// Stop once all records take at most this size, such as `10GB`
    #[arg(long, value_name = "SIZE")]
    keep_storage: Option<String>,
    /// Stop once the filesystem has this much free space: a size or a
    /// percentage such as `10%`
    #[arg(long, value_name = "SIZE|PCT")]
    min_free_space: Option<String>,
    /// List what would be deleted and why each other record is kept,
    /// without deleting
    #[arg(long)]
    dry_run: bool,
    /// Output format: `table` or `json`
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Subcommand)]
pub enum CacheCommand {
    /// Keep a record, and its parents, from prune and garbage collection
    Pin {
        /// Record id or a unique prefix of it, from `strata du`
        id: String,
    },
    /// Let prune and garbage collection delete a pinned record again
    Unpin {
        /// Record id or a unique prefix of it, from `strata du`
        id: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

fn parse_format(text: &str) -> anyhow::Result<Format> {
    match text {
        "table" => Ok(Format::Table),
        "json" => Ok(Format::Json),
        other => bail!("Invalid `--format` value `{other}`: expected `table` or `json`"),
    }
}

fn open_store(root: Option<PathBuf>) -> anyhow::Result<Arc<Store>> {
    let root = root.unwrap_or_else(Store::default_root);
    Store::open(&root).with_context(|| format!("Failed to open the store at `{}`", root.display()))
}

fn parse_filters(texts: &[String]) -> anyhow::Result<Vec<Filter>> {
    texts.iter().map(|text| parse_filter(text)).collect()
}

pub fn du(root: Option<PathBuf>, args: DuArgs) -> anyhow::Result<ExitCode> {
    let format = parse_format(&args.format)?;
    let filters = parse_filters(&args.filters)?;
    let store = open_store(root)?;
    let now = chrono::Utc::now();
    let all = store.disk_usage()?;
    let total: u64 = all.iter().map(|r| r.size).sum();
    let reclaimable: u64 = store
        .prune(&PruneOptions {
            all: true,
            dry_run: true,
            ..PruneOptions::default()
        })?
        .reclaimed;
    let records: Vec<&CacheRecord> = all
        .iter()
        .filter(|r| matches_all(&filters, r, now))
        .collect();

    match format {
        Format::Json => {
            let json = serde_json::json!({
                "records": records,
                "reclaimable": reclaimable,
                "total": total,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Table if args.verbose => {
            for record in &records {
                print_record_block(record);
            }
            print_totals(reclaimable, total);
        }
        Format::Table => {
            println!(
                "{:<14} {:<16} {:>10}  {:<8} {:<7} {:>5}  LAST USED",
                "ID", "TYPE", "SIZE", "SHARED", "IN USE", "USES"
            );
            for record in &records {
                println!(
                    "{:<14} {:<16} {:>10}  {:<8} {:<7} {:>5}  {}{}",
                    &record.id[..record.id.len().min(12)],
                    kind_type_name(record.kind),
                    human_size(record.size),
                    if record.shared { "shared" } else { "private" },
                    if record.in_use.is_some() { "yes" } else { "no" },
                    record.use_count,
                    ago(record.last_used, now),
                    if record.pinned { " (pinned)" } else { "" },
                );
            }
            print_totals(reclaimable, total);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_record_block(record: &CacheRecord) {
    let join = |items: &[String]| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    println!("ID:          {}", record.id);
    println!("Parent:      {}", record.parent.as_deref().unwrap_or("-"));
    println!("Type:        {}", kind_type_name(record.kind));
    println!("Size:        {}", human_size(record.size));
    println!("Shared:      {}", record.shared);
    println!("In use:      {}", record.in_use.as_deref().unwrap_or("no"));
    println!("Pinned:      {}", record.pinned);
    println!(
        "Created:     {}",
        record.created.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!(
        "Last used:   {}",
        record.last_used.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("Use count:   {}", record.use_count);
    println!("Images:      {}", join(&record.images));
    println!("Builds:      {}", join(&record.builds));
    println!();
}

fn print_totals(reclaimable: u64, total: u64) {
    println!("Reclaimable: {}", human_size(reclaimable));
    println!("Total:       {}", human_size(total));
}

pub fn prune(root: Option<PathBuf>, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let format = parse_format(&args.format)?;
    let options = PruneOptions {
        all: args.all,
        filters: parse_filters(&args.filters)?,
        keep_duration: args
            .keep_duration
            .as_deref()
            .map(|text| parse_duration(text).context("Invalid `--keep-duration`"))
            .transpose()?,
        keep_storage: args
            .keep_storage
            .as_deref()
            .map(|text| parse_size(text).context("Invalid `--keep-storage`"))
            .transpose()?,
        min_free_space: args
            .min_free_space
            .as_deref()
            .map(|text| parse_free_space(text).context("Invalid `--min-free-space`"))
            .transpose()?,
        dry_run: args.dry_run,
    };
    let store = open_store(root)?;
    let report = store.prune(&options)?;
    match format {
        Format::Json => {
            let json = serde_json::json!({
                "dry_run": options.dry_run,
                "deleted": report.deleted,
                "kept": report.kept,
                "reclaimed": report.reclaimed,
                "blobs_deleted": report.blobs_deleted,
                "blob_bytes": report.blob_bytes,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Table => print_prune_table(&report, options.dry_run),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_prune_table(report: &PruneReport, dry_run: bool) {
    let verb = if dry_run { "WOULD DELETE" } else { "DELETED" };
    println!("{:<14} {:<16} {:>10}  {verb}", "ID", "TYPE", "SIZE");
    for record in &report.deleted {
        println!(
            "{:<14} {:<16} {:>10}",
            &record.id[..record.id.len().min(12)],
            kind_type_name(record.kind),
            human_size(record.size)
        );
    }
    if dry_run {
        println!();
        println!("{:<14} {:<16} {:>10}  KEPT BECAUSE", "ID", "TYPE", "SIZE");
        for kept in &report.kept {
            println!(
                "{:<14} {:<16} {:>10}  {}",
                &kept.record.id[..kept.record.id.len().min(12)],
                kind_type_name(kept.record.kind),
                human_size(kept.record.size),
                kept.kept
            );
        }
    }
    let label = if dry_run {
        "Would reclaim"
    } else {
        "Reclaimed"
    };
    println!(
        "{label}: {} in {} records",
        human_size(report.reclaimed),
        report.deleted.len()
    );
    if report.blobs_deleted > 0 {
        println!(
            "Deleted {} unreferenced blobs ({})",
            report.blobs_deleted,
            human_size(report.blob_bytes)
        );
    }
}

pub fn run(root: Option<PathBuf>, command: CacheCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(root)?;
    match command {
        CacheCommand::Pin { id } => {
            let id = store.set_pinned(&id, true)?;
            println!("Pinned {id}");
        }
        CacheCommand::Unpin { id } => {
            let id = store.set_pinned(&id, false)?;
            println!("Unpinned {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Formats `then` relative to `now`, such as `3 minutes ago`.
fn ago(then: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let seconds = now.signed_duration_since(then).num_seconds().max(0);
    let (value, unit) = match seconds {
        0..60 => (seconds, "second"),
        60..3600 => (seconds / 60, "minute"),
        3600..86_400 => (seconds / 3600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    let plural = if value == 1 { "" } else { "s" };
    format!("{value} {unit}{plural} ago")
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
