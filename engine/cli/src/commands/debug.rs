use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DebugCommand {
    /// Print the parse tree of a Dockerfile, one instruction per line
    Parse {
        /// Dockerfile to read (`-` for standard input)
        file: PathBuf,
    },
}

pub fn run(command: DebugCommand) -> anyhow::Result<ExitCode> {
    match command {
        DebugCommand::Parse { file } => {
            let (name, text) = if file.as_os_str() == "-" {
                (
                    "<stdin>".to_string(),
                    std::io::read_to_string(std::io::stdin())?,
                )
            } else {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("Failed to read `{}`", file.display()))?;
                (file.display().to_string(), text)
            };
            match strata_dockerfile::parser::parse(&text) {
                Ok(ast) => {
                    for warning in &ast.warnings {
                        eprintln!("warning: {name}:{}: {}", warning.line, warning.message);
                    }
                    println!("{}", ast.dump().trim_end());
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    let report = miette::Report::new(error.with_file_name(&name));
                    eprintln!("{report:?}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
