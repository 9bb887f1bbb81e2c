//! `strata build --check` and `strata build --call outline|targets`: read
//! the Dockerfile and report on it without running any step.

use super::build::BuildArgs;
use super::open_engine;
use anyhow::Context;
use clap::ValueEnum;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_dockerfile::checks::diagnostic::render_check_report;
use strata_dockerfile::checks::outline::{self, Outline, Target};
use strata_engine::{BuildError, read_dockerfile};

/// The report `--call` prints instead of building.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CallMethod {
    /// Run the build (the default)
    Build,
    /// List the stages with their descriptions
    Targets,
    /// List the build args, secrets and SSH sockets the target uses
    Outline,
    /// Run the build checks only, like `--check`
    Check,
}

/// The output format of `--call`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CallFormat {
    Text,
    Json,
}

/// Runs the checks, or prints targets or an outline. Exits non-zero on any
/// check warning, like `docker build --check`.
pub async fn run(
    root: Option<PathBuf>,
    args: &BuildArgs,
    method: CallMethod,
) -> anyhow::Result<ExitCode> {
    let request = args.definition.request()?;
    let (name, text) = match read_dockerfile(&request) {
        Ok(found) => found,
        Err(error) => return report(error, ""),
    };
    if method == CallMethod::Check {
        let engine = open_engine(root, None)?;
        return match engine.check_definition(&request).await {
            Ok(checks) => {
                print!("{}", render_check_report(&checks, &name, &text));
                Ok(exit_code(checks.warnings.is_empty()))
            }
            Err(error) => report(error, &text),
        };
    }

    let ast = match strata_dockerfile::parser::parse(&text) {
        Ok(ast) => ast,
        Err(error) => return report(BuildError::Parse(error.with_file_name(&name)), &text),
    };
    let json = args.format == CallFormat::Json;
    if method == CallMethod::Targets {
        let targets = outline::targets(&ast, &text);
        match json {
            true => println!("{}", serde_json::json!({ "targets": targets })),
            false => print!("{}", format_targets(&targets)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outline = match outline::outline(&ast, &text, request.target.as_deref()) {
        Ok(outline) => outline,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    match json {
        true => println!(
            "{}",
            serde_json::to_string(&outline).context("Failed to encode the outline")?
        ),
        false => print!("{}", format_outline(&outline)),
    }
    Ok(ExitCode::SUCCESS)
}

fn exit_code(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints a parse or conversion error with its source and fails.
fn report(error: BuildError, text: &str) -> anyhow::Result<ExitCode> {
    match error {
        BuildError::Parse(error) => eprintln!("{:?}", miette::Report::new(error)),
        BuildError::Convert(error) => {
            eprintln!("{:?}", miette::Report::new(error.to_diagnostic(text)))
        }
        other => eprintln!("error: {other}"),
    }
    Ok(ExitCode::FAILURE)
}

fn format_targets(targets: &[Target]) -> String {
    let names: Vec<String> = targets
        .iter()
        .map(|t| match t.default {
            true => format!("{} (default)", t.name),
            false => t.name.clone(),
        })
        .collect();
    let width = names
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("TARGET".len());
    let mut out = format!("{:<width$}  DESCRIPTION\n", "TARGET");
    for (name, target) in names.iter().zip(targets) {
        out.push_str(format!("{name:<width$}  {}", target.description).trim_end());
        out.push('\n');
    }
    out
}

fn format_outline(outline: &Outline) -> String {
    let mut out = format!("TARGET:      {}\n", outline.name);
    if !outline.description.is_empty() {
        out.push_str(&format!("DESCRIPTION: {}\n", outline.description));
    }
    if !outline.args.is_empty() {
        let rows: Vec<[String; 3]> = outline
            .args
            .iter()
            .map(|a| {
                let value = a.value.clone().unwrap_or_else(|| "<null>".into());
                [a.name.clone(), value, a.description.clone()]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(["BUILD ARG", "VALUE", "DESCRIPTION"], &rows));
    }
    for (title, mounts) in [("SECRET", &outline.secrets), ("SSH", &outline.ssh)] {
        if mounts.is_empty() {
            continue;
        }
        let rows: Vec<[String; 3]> = mounts
            .iter()
            .map(|m| [m.name.clone(), m.required.to_string(), String::new()])
            .collect();
        out.push('\n');
        out.push_str(&table([title, "REQUIRED", ""], &rows));
    }
    out
}

/// Lays out rows in columns two spaces apart, trailing spaces trimmed.
fn table(header: [&str; 3], rows: &[[String; 3]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: [&str; 3]| {
        let text = format!(
            "{:<a$}  {:<b$}  {}",
            cells[0],
            cells[1],
            cells[2],
            a = widths[0],
            b = widths[1]
        );
        format!("{}\n", text.trim_end())
    };
    let mut out = line(header);
    for row in rows {
        out.push_str(&line([&row[0], &row[1], &row[2]]));
    }
    out
}
