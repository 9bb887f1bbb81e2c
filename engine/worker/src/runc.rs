//! Runs an exec's process in a runc container on a mounted rootfs.

use crate::paths::resolve_in_root;
use crate::spec::{SpecInput, build_spec, container_cwd, hosts_file, resolv_conf};
use crate::user::resolve_exec_user;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use strata_llb::{ExecMeta, NetMode, SecurityMode};
use strata_solver::LogStream;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

static CONTAINER_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A host path bind-mounted into the container.
#[derive(Clone, Debug)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub dest: String,
    pub readonly: bool,
}

/// A tmpfs mounted into the container.
#[derive(Clone, Debug)]
pub struct TmpfsMount {
    /// Absolute path inside the container.
    pub dest: String,
    /// Size limit in bytes; the kernel's default (half of RAM) when `None`.
    pub size: Option<u64>,
    pub readonly: bool,
}

/// What to run and where.
#[derive(Clone, Copy, Debug)]
pub struct ExecRequest<'a> {
    /// The mounted root filesystem, writable.
    pub rootfs: &'a Path,
    pub meta: &'a ExecMeta,
    pub net: NetMode,
    pub security: SecurityMode,
    pub binds: &'a [BindMount],
    pub tmpfs: &'a [TmpfsMount],
}

/// Starts containers with the `runc` binary.
#[derive(Clone, Debug)]
pub struct RuncExecutor {
    pub runc: PathBuf,
    /// runc's `--root`, where it keeps container state; bundles are made
    /// beside it.
    pub state_root: PathBuf,
}

impl RuncExecutor {
    /// Runs the request's process to completion, streaming its stdout and
    /// stderr to `logs` as they arrive.
    ///
    /// A non-zero exit is an error in BuildKit's wording. Cancelling
    /// `cancel` kills the container. The bundle and runc's state are
    /// removed in every case.
    pub async fn run(
        &self,
        request: ExecRequest<'_>,
        logs: &mut (dyn FnMut(LogStream, &[u8]) + Send),
        cancel: &CancellationToken,
    ) -> Result<()> {
        if request.meta.args.is_empty() {
            bail!("The exec has no command: give at least one argument");
        }
        let id = format!(
            "strata-{}-{}",
            std::process::id(),
            CONTAINER_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let bundle = self.state_root.join("bundles").join(&id);
        let mut container = Container {
            runc: self.runc.clone(),
            root: self.state_root.clone(),
            id,
            bundle,
            started: false,
        };

        let result = self.run_in(&mut container, request, logs, cancel).await;
        container.cleanup().await;
        result
    }

    async fn run_in(
        &self,
        container: &mut Container,
        request: ExecRequest<'_>,
        logs: &mut (dyn FnMut(LogStream, &[u8]) + Send),
        cancel: &CancellationToken,
    ) -> Result<()> {
        prepare_bundle(&container.bundle, &request)?;
        std::fs::create_dir_all(&self.state_root).with_context(|| {
            format!(
                "Failed to create runc state `{}`",
                self.state_root.display()
            )
        })?;

        let mut child = Command::new(&self.runc)
            .arg("--root")
            .arg(&self.state_root)
            .arg("run")
            .arg("--bundle")
            .arg(&container.bundle)
            .arg(&container.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "Failed to start `{}`: is runc installed?",
                    self.runc.display()
                )
            })?;
        container.started = true;

        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let mut out_buffer = vec![0u8; 16 * 1024];
        let mut err_buffer = vec![0u8; 16 * 1024];
        let (mut out_open, mut err_open) = (true, true);

        // Read both pipes until they close, then reap runc; a cancellation
        // kills the container, which closes the pipes.
        let mut cancelled = false;
        while out_open || err_open {
            tokio::select! {
                read = stdout.read(&mut out_buffer), if out_open => match read? {
                    0 => out_open = false,
                    n => logs(LogStream::Stdout, &out_buffer[..n]),
                },
                read = stderr.read(&mut err_buffer), if err_open => match read? {
                    0 => err_open = false,
                    n => logs(LogStream::Stderr, &err_buffer[..n]),
                },
                _ = cancel.cancelled(), if !cancelled => {
                    cancelled = true;
                    container.kill().await;
                }
            }
        }
        let status = child.wait().await.context("Failed to wait for runc")?;
        if cancelled {
            bail!("{} was cancelled", describe(request.meta));
        }
        match status.code() {
            Some(0) => Ok(()),
            Some(code) => bail!(
                "process \"{}\" did not complete successfully: exit code: {code}",
                request.meta.args.join(" ")
            ),
            None => bail!("{} was killed by a signal", describe(request.meta)),
        }
    }
}

fn describe(meta: &ExecMeta) -> String {
    format!("process \"{}\"", meta.args.join(" "))
}

/// Writes `config.json`, `hosts` and `resolv.conf` to the bundle, and
/// creates the working directory in the rootfs when it is missing, owned
/// by the exec's user as BuildKit does.
fn prepare_bundle(bundle: &Path, request: &ExecRequest<'_>) -> Result<()> {
    std::fs::create_dir_all(bundle)
        .with_context(|| format!("Failed to create bundle `{}`", bundle.display()))?;
    let user = resolve_exec_user(request.rootfs, &request.meta.user)?;

    let cwd = resolve_in_root(request.rootfs, &container_cwd(request.meta), true)?;
    if !cwd.exists() {
        crate::fileop::mkdir_all(&cwd, 0o755, Some((user.uid, user.gid)), None).with_context(
            || {
                format!(
                    "Failed to create the working directory `{}`",
                    request.meta.cwd
                )
            },
        )?;
    }

    let hosts = bundle.join("hosts");
    std::fs::write(&hosts, hosts_file(request.meta))?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = bundle.join("resolv.conf");
    std::fs::write(&resolv, resolv_conf(&host_resolv, request.net))?;

    let spec = build_spec(&SpecInput {
        rootfs: request.rootfs,
        meta: request.meta,
        user: &user,
        net: request.net,
        security: request.security,
        hosts_file: &hosts,
        resolv_conf: &resolv,
        binds: request.binds,
        tmpfs: request.tmpfs,
    })?;
    let config = serde_json::to_vec_pretty(&spec)?;
    std::fs::write(bundle.join("config.json"), config)?;
    Ok(())
}

/// A container id with its bundle, removed by [`Container::cleanup`] or,
/// when the future is dropped first, by `Drop`.
struct Container {
    runc: PathBuf,
    root: PathBuf,
    id: String,
    bundle: PathBuf,
    started: bool,
}

impl Container {
    async fn kill(&self) {
        let _ = Command::new(&self.runc)
            .arg("--root")
            .arg(&self.root)
            .args(["kill", "--all", &self.id, "KILL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }

    async fn cleanup(&mut self) {
        if self.started {
            let status = Command::new(&self.runc)
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", &self.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
            if let Err(error) = status {
                tracing::warn!(container = %self.id, "failed to delete container: {error}");
            }
            self.started = false;
        }
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.started {
            let _ = std::process::Command::new(&self.runc)
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", &self.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.bundle);
    }
}
