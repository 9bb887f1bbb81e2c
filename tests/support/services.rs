//! Starts the test services from Rust tests and returns how to reach them.
//!
//! Include this file in a crate's integration tests with
//! `#[path = "../../../tests/support/services.rs"] mod services;` (adjust
//! the depth). It needs only the standard library. Each function runs the
//! matching script in this folder, which starts the service unless it already
//! responds and serialises concurrent starts with a lock, so every test may
//! call it.

// Each test crate that includes this file uses only some of its functions.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian docker.io client. The first `docker` on `PATH` may be another
/// version, so tests always call this one.
pub const DOCKER_CLIENT: &str = "/usr/bin/docker";

/// How to reach the two registries that `registry.sh` starts.
#[derive(Debug, Clone)]
pub struct Registries {
    /// `host:port` of the plain HTTP registry without authentication.
    pub plain: String,
    /// `host:port` of the HTTPS registry with htpasswd authentication.
    pub secure: String,
    /// PEM file of the test CA that signed the secure registry's certificate.
    pub ca_certificate: PathBuf,
    /// Folder with only `ca.crt`, for skopeo's and buildah's `--cert-dir`.
    pub cert_dir: PathBuf,
    /// User name that the secure registry accepts.
    pub user: String,
    /// Password of `user`; a fixed test value, not a secret.
    pub password: String,
}

/// Starts the private dockerd and returns its `DOCKER_HOST` value.
pub fn docker_host() -> io::Result<String> {
    let env = run_script("dockerd.sh")?;
    take(&env, "DOCKER_HOST")
}

/// Returns a `docker` command that talks to the private dockerd, starting it
/// first when needed.
pub fn docker_command() -> io::Result<Command> {
    let host = docker_host()?;
    let mut command = Command::new(DOCKER_CLIENT);
    command.env("DOCKER_HOST", host);
    Ok(command)
}

/// Starts both test registries and returns their addresses and credentials.
pub fn registries() -> io::Result<Registries> {
    let env = run_script("registry.sh")?;
    Ok(Registries {
        plain: take(&env, "STRATA_TEST_REGISTRY")?,
        secure: take(&env, "STRATA_TEST_SECURE_REGISTRY")?,
        ca_certificate: take(&env, "STRATA_TEST_REGISTRY_CA")?.into(),
        cert_dir: take(&env, "STRATA_TEST_REGISTRY_CERT_DIR")?.into(),
        user: take(&env, "STRATA_TEST_REGISTRY_USER")?,
        password: take(&env, "STRATA_TEST_REGISTRY_PASSWORD")?,
    })
}

/// Runs `SCRIPT start`, then `SCRIPT env`, and parses its `export K=V` lines.
fn run_script(script: &str) -> io::Result<HashMap<String, String>> {
    let path = support_dir()?.join(script);
    let start = Command::new(&path).arg("start").output()?;
    if !start.status.success() {
        return Err(io::Error::other(format!(
            "`{} start` failed with {}:\n{}",
            path.display(),
            start.status,
            String::from_utf8_lossy(&start.stderr)
        )));
    }

    let env = Command::new(&path).arg("env").output()?;
    if !env.status.success() {
        return Err(io::Error::other(format!(
            "`{} env` failed with {}",
            path.display(),
            env.status
        )));
    }
    Ok(parse_exports(&String::from_utf8_lossy(&env.stdout)))
}

fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn take(env: &HashMap<String, String>, key: &str) -> io::Result<String> {
    env.get(key)
        .cloned()
        .ok_or_else(|| io::Error::other(format!("The service script printed no `{key}`")))
}

/// Finds `tests/support` by walking up from the including crate's manifest
/// folder, so the same file works from any crate in the workspace.
fn support_dir() -> io::Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("tests/support"))
        .find(|dir| dir.join("dockerd.sh").is_file())
        .ok_or_else(|| {
            io::Error::other(format!(
                "No `tests/support/dockerd.sh` above `{}`; include services.rs from a crate in the Strata workspace",
                manifest_dir.display()
            ))
        })
}
