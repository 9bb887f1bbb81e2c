//! Secrets, ssh agents and entitlements of a build request: parsing of the
//! `--secret`, `--ssh` and `--allow` values (with buildx's syntax), and the
//! [`ExecSession`] that hands their values to the worker.

use crate::BuildError;
use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use strata_llb::{Definition, Op, SecurityMode};
use strata_worker::{ExecSession, SecretValue};

/// The entitlement `RUN --security=insecure` needs.
pub const INSECURE_ENTITLEMENT: &str = "security.insecure";
/// Entitlements `--allow` accepts. `network.host` is accepted for buildx
/// compatibility; host networking is already the default.
const ENTITLEMENTS: &[&str] = &[INSECURE_ENTITLEMENT, "network.host"];

/// Origin of a secret's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// One `--secret`: an id and where to read its value. The value itself is
/// read when the build starts and is never stored in the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub source: SecretSource,
}

impl SecretSpec {
    /// Parses `id=ID,src=FILE`, `id=ID,env=VAR` or `id=ID` (the variable
    /// `ID`), as buildx does. `source` is a synonym of `src`, and
    /// `type=file|env` picks how a bare `src` is read.
    pub fn parse(text: &str) -> Result<SecretSpec, String> {
        let invalid = |why: &str| {
            format!(
                "Invalid `--secret` value `{text}`: {why}; write `id=ID,src=FILE` or `id=ID,env=VAR`"
            )
        };
        let (mut id, mut kind, mut src, mut env) = (None, None, None, None);
        for field in text.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| invalid(&format!("`{field}` is not a `key=value` pair")))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "id" => id = Some(value.to_string()),
                "type" => kind = Some(value.to_ascii_lowercase()),
                "src" | "source" => src = Some(value.to_string()),
                "env" => env = Some(value.to_string()),
                other => return Err(invalid(&format!("unknown key `{other}`"))),
            }
        }
        let id = id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid("`id` is missing"))?;
        let source = match (kind.as_deref(), src, env) {
            (_, Some(_), Some(_)) => return Err(invalid("give either `src` or `env`, not both")),
            (Some("env"), Some(src), None) | (_, None, Some(src)) => SecretSource::Env(src),
            (None | Some("file"), Some(src), None) => SecretSource::File(PathBuf::from(src)),
            (None | Some("env"), None, None) => SecretSource::Env(id.clone()),
            (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
            (Some(other), _, _) => return Err(invalid(&format!("unknown type `{other}`"))),
        };
        Ok(SecretSpec { id, source })
    }

    fn read(&self) -> Result<SecretValue, BuildError> {
        match &self.source {
            SecretSource::File(path) => std::fs::read(path).map(SecretValue).map_err(|e| {
                BuildError::Input(format!(
                    "Failed to read secret `{}` from `{}`: {e}; check the `src` of `--secret id={}`",
                    self.id,
                    path.display(),
                    self.id
                ))
            }),
            SecretSource::Env(name) => match std::env::var_os(name) {
                Some(value) => Ok(SecretValue(value.into_encoded_bytes())),
                None => Err(BuildError::Input(format!(
                    "Secret `{}` reads the environment variable `{name}`, which is not set: set it or pass `--secret id={},src=FILE`",
                    self.id, self.id
                ))),
            },
        }
    }
}

/// One `--ssh`: an id and the agent socket to forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSpec {
    pub id: String,
    /// The agent socket; `None` means `SSH_AUTH_SOCK`.
    pub socket: Option<PathBuf>,
}

impl SshSpec {
    /// Parses `default`, `ID` (both forward `SSH_AUTH_SOCK`) or
    /// `ID=SOCKET`.
    pub fn parse(text: &str) -> Result<SshSpec, String> {
        let (id, path) = match text.split_once('=') {
            Some((id, path)) => (id, Some(path)),
            None => (text, None),
        };
        if id.is_empty() || path.is_some_and(|p| p.is_empty() || p.contains(',')) {
            return Err(format!(
                "Invalid `--ssh` value `{text}`: write `default` or `ID=SOCKET` with one agent socket"
            ));
        }
        Ok(SshSpec {
            id: id.to_string(),
            socket: path.map(PathBuf::from),
        })
    }

    fn socket(&self) -> Result<PathBuf, BuildError> {
        let path = match &self.socket {
            Some(path) => path.clone(),
            None => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    BuildError::Input(format!(
                        "`--ssh {}` forwards `SSH_AUTH_SOCK`, which is not set: start an agent or pass `--ssh {}=SOCKET`",
                        self.id, self.id
                    ))
                })?,
        };
        let metadata = std::fs::metadata(&path).map_err(|e| {
            BuildError::Input(format!(
                "Failed to read the ssh agent socket `{}` for `--ssh {}`: {e}",
                path.display(),
                self.id
            ))
        })?;
        if !metadata.file_type().is_socket() {
            // TODO: load key files into an agent of our own, as buildx does.
            return Err(BuildError::Input(format!(
                "`{}` given for `--ssh {}` is not a unix socket: key files are not supported yet, so load the key with `ssh-add` and pass the agent's socket",
                path.display(),
                self.id
            )));
        }
        Ok(path)
    }
}

/// Reads every secret and checks every agent socket of a request.
pub(crate) fn exec_session(
    secrets: &[SecretSpec],
    ssh: &[SshSpec],
) -> Result<ExecSession, BuildError> {
    let mut session = ExecSession {
        secrets: BTreeMap::new(),
        ssh: BTreeMap::new(),
    };
    for secret in secrets {
        session.secrets.insert(secret.id.clone(), secret.read()?);
    }
    for agent in ssh {
        session.ssh.insert(agent.id.clone(), agent.socket()?);
    }
    Ok(session)
}

/// Rejects an `--allow` value that names no entitlement.
pub fn check_entitlement(name: &str) -> Result<(), String> {
    if ENTITLEMENTS.contains(&name) {
        return Ok(());
    }
    Err(format!(
        "Invalid `--allow` value `{name}`: expected one of {}",
        ENTITLEMENTS
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Fails when a step needs an entitlement the request does not grant.
pub(crate) fn check_entitlements(
    definition: &Definition,
    allow: &[String],
) -> Result<(), BuildError> {
    if allow.iter().any(|a| a == INSECURE_ENTITLEMENT) {
        return Ok(());
    }
    for (digest, vertex) in &definition.vertices {
        let Op::Exec(exec) = &vertex.op else { continue };
        if exec.security != SecurityMode::Insecure {
            continue;
        }
        let metadata = definition.metadata.get(digest);
        let location = metadata
            .and_then(|m| m.location.as_ref())
            .map(|l| format!("{}:{}: ", l.file, l.start_line))
            .unwrap_or_default();
        return Err(BuildError::Input(format!(
            "{location}`RUN --security=insecure` needs the `{INSECURE_ENTITLEMENT}` entitlement: pass `--allow {INSECURE_ENTITLEMENT}` to allow it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_spec_forms() {
        let file = SecretSpec::parse("id=token,src=/tmp/t").unwrap();
        assert_eq!(file.source, SecretSource::File("/tmp/t".into()));
        let env = SecretSpec::parse("id=token,env=TOKEN").unwrap();
        assert_eq!(env.source, SecretSource::Env("TOKEN".into()));
        let bare = SecretSpec::parse("id=TOKEN").unwrap();
        assert_eq!(bare.source, SecretSource::Env("TOKEN".into()));
        let typed = SecretSpec::parse("id=a,type=env,src=B").unwrap();
        assert_eq!(typed.source, SecretSource::Env("B".into()));
    }

    #[test]
    fn secret_spec_errors() {
        for (text, expected) in [
            ("src=/tmp/t", "`id` is missing"),
            ("id=a,src=x,env=y", "not both"),
            ("id=a,colour=red", "unknown key `colour`"),
            ("id=a,type=pipe,src=x", "unknown type `pipe`"),
            ("token", "not a `key=value` pair"),
        ] {
            let error = SecretSpec::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn ssh_spec_forms() {
        assert_eq!(SshSpec::parse("default").unwrap().socket, None);
        let named = SshSpec::parse("git=/run/agent.sock").unwrap();
        assert_eq!(named.id, "git");
        assert_eq!(named.socket, Some("/run/agent.sock".into()));
        assert!(SshSpec::parse("=x").is_err());
        assert!(SshSpec::parse("a=").is_err());
    }

    #[test]
    fn entitlement_names() {
        assert!(check_entitlement("security.insecure").is_ok());
        let error = check_entitlement("device").unwrap_err();
        assert!(error.contains("`device`"), "{error}");
    }
}
