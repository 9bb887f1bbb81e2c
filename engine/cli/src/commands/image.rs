use anyhow::{Context, bail};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_dockerfile::ast::Node;
use strata_dockerfile::convert::normalize_reference;
use strata_llb::Platform;
use strata_llb::image::{EmptyObject, ImageConfig};
use strata_store::Store;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Create an image from a root filesystem tarball
    Import {
        /// Tar archive of the root filesystem
        tarball: PathBuf,
        /// Name of the image, such as `busybox:latest`
        #[arg(short = 't', long = "tag")]
        tag: String,
        /// Dockerfile instruction to apply to the image config, such as
        /// `CMD ["sh"]` (repeatable; CMD, ENTRYPOINT, ENV, WORKDIR, USER,
        /// LABEL, EXPOSE, VOLUME and STOPSIGNAL)
        #[arg(short = 'c', long = "change")]
        changes: Vec<String>,
    },
    /// List images
    Ls {
        /// Output format: `table` or `json`
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Remove images by name
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

pub fn run(root: Option<PathBuf>, command: ImageCommand) -> anyhow::Result<ExitCode> {
    let root = root.unwrap_or_else(Store::default_root);
    let store = Store::open(&root)
        .with_context(|| format!("Failed to open the store at `{}`", root.display()))?;
    match command {
        ImageCommand::Import {
            tarball,
            tag,
            changes,
        } => {
            let name = normalize_reference(&tag)
                .map_err(|e| anyhow::anyhow!("Invalid tag `{tag}`: {e}"))?;
            let mut config = ImageConfig::default();
            let platform = Platform::host();
            config.os = platform.os;
            config.architecture = platform.architecture;
            config.variant = platform.variant;
            for change in &changes {
                apply_change(&mut config, change)?;
            }
            if !tarball.is_file() {
                bail!(
                    "Root filesystem tarball `{}` does not exist",
                    tarball.display()
                );
            }
            let image = store.import_rootfs(&tarball, &name, config)?;
            println!("{} {}", image.name, image.manifest);
        }
        ImageCommand::Ls { format } => {
            let images = store.images()?;
            match format.as_str() {
                "json" => {
                    let rows: Vec<_> = images
                        .iter()
                        .map(|image| {
                            serde_json::json!({
                                "name": image.name,
                                "manifest": image.manifest,
                                "layers": image.layers.len(),
                                "size": image.layers.iter().map(|l| l.size).sum::<u64>(),
                                "created": image.created,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
                "table" => {
                    println!("{:<50} {:<14} {:>10}  CREATED", "NAME", "MANIFEST", "SIZE");
                    for image in &images {
                        let size: u64 = image.layers.iter().map(|l| l.size).sum();
                        println!(
                            "{:<50} {:<14} {:>10}  {}",
                            image.name,
                            image.manifest.short(),
                            human_size(size),
                            image.created.format("%Y-%m-%d %H:%M:%S")
                        );
                    }
                }
                other => bail!("Invalid `--format` value `{other}`: expected `table` or `json`"),
            }
        }
        ImageCommand::Rm { names } => {
            let mut missing = false;
            for name in names {
                let normalized = normalize_reference(&name)
                    .map_err(|e| anyhow::anyhow!("Invalid name `{name}`: {e}"))?;
                if store.remove_image(&normalized)? {
                    println!("Removed {normalized}");
                } else {
                    eprintln!("error: No image named `{normalized}` in the store");
                    missing = true;
                }
            }
            if missing {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies one `--change` instruction, parsed with the Dockerfile parser.
fn apply_change(config: &mut ImageConfig, change: &str) -> anyhow::Result<()> {
    let ast = strata_dockerfile::parser::parse(change)
        .map_err(|e| anyhow::anyhow!("Invalid `--change` value `{change}`: {e}"))?;
    let [node] = ast.children.as_slice() else {
        bail!("Invalid `--change` value `{change}`: expected exactly one instruction");
    };
    let container = &mut config.config;
    match node.keyword.as_str() {
        "cmd" => container.cmd = Some(command_args(node)),
        "entrypoint" => container.entrypoint = Some(command_args(node)),
        "env" => {
            for pair in node.args.chunks(3) {
                container.set_env(&pair[0], unquote(&pair[1]));
            }
        }
        "label" => {
            let labels = container.labels.get_or_insert_with(Default::default);
            for pair in node.args.chunks(3) {
                labels.insert(unquote(&pair[0]).to_string(), unquote(&pair[1]).to_string());
            }
        }
        "workdir" => container.working_dir = node.args.first().cloned(),
        "user" => container.user = node.args.first().cloned(),
        "stopsignal" => container.stop_signal = node.args.first().cloned(),
        "expose" => {
            let ports = container.exposed_ports.get_or_insert_with(Default::default);
            for port in &node.args {
                let port = if port.contains('/') {
                    port.clone()
                } else {
                    format!("{port}/tcp")
                };
                ports.insert(port, EmptyObject {});
            }
        }
        "volume" => {
            let volumes = container.volumes.get_or_insert_with(Default::default);
            for volume in &node.args {
                volumes.insert(volume.clone(), EmptyObject {});
            }
        }
        other => bail!(
            "Invalid `--change` instruction `{}`: expected CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, STOPSIGNAL, EXPOSE or VOLUME",
            other.to_uppercase()
        ),
    }
    Ok(())
}

fn command_args(node: &Node) -> Vec<String> {
    if node.json {
        node.args.clone()
    } else {
        vec!["/bin/sh".into(), "-c".into(), node.args.join(" ")]
    }
}

fn unquote(value: &str) -> &str {
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    if quoted {
        &value[1..value.len() - 1]
    } else {
        value
    }
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
