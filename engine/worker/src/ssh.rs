//! Forwarding of an ssh agent into a container: a proxy unix socket, with
//! the owner and mode the mount requests, that relays each connection to the
//! agent socket on the host.

use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// A listening proxy socket; dropping it stops the relay and removes the
/// socket's directory.
pub(crate) struct AgentProxy {
    dir: PathBuf,
    socket: PathBuf,
    task: JoinHandle<()>,
}

impl AgentProxy {
    /// Listens on `dir/agent.sock`, owned by `uid:gid` with `mode`, and
    /// relays every connection to `agent`.
    pub(crate) fn start(
        runtime: &tokio::runtime::Handle,
        agent: &Path,
        dir: &Path,
        (uid, gid, mode): (u32, u32, u32),
    ) -> Result<AgentProxy> {
        let socket = dir.join("agent.sock");
        let listener = {
            let _entered = runtime.enter();
            UnixListener::bind(&socket).with_context(|| {
                format!(
                    "Failed to listen on the ssh proxy socket `{}`",
                    socket.display()
                )
            })?
        };
        nix::unistd::chown(
            &socket,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode & 0o7777))?;
        let agent = agent.to_path_buf();
        let task = runtime.spawn(relay(listener, agent));
        Ok(AgentProxy {
            dir: dir.to_path_buf(),
            socket,
            task,
        })
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn relay(listener: UnixListener, agent: PathBuf) {
    loop {
        let mut client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(error) => {
                tracing::warn!("ssh agent proxy stopped accepting: {error}");
                return;
            }
        };
        let agent = agent.clone();
        tokio::spawn(async move {
            let mut upstream = match UnixStream::connect(&agent).await {
                Ok(upstream) => upstream,
                Err(error) => {
                    tracing::warn!(agent = %agent.display(), "failed to reach the ssh agent: {error}");
                    return;
                }
            };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}
