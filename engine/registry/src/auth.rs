//! Registry credentials from Docker's `config.json` and the
//! `WWW-Authenticate` challenges of registries.
//!
//! Credentials are looked up as the Docker CLI does: `credHelpers[host]`,
//! then `credsStore`, then `auths[host]`. A helper is the program
//! `docker-credential-NAME`, run as `get` with the server on standard input.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token that `docker login` stored instead of a password.
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

impl Credentials {
    /// Returns the `Authorization` header value for HTTP basic auth.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => {
                let raw = format!("{username}:{password}");
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                Some(format!("Basic {encoded}"))
            }
            Credentials::IdentityToken(_) => None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The credentials Docker's config file points at.
#[derive(Debug, Default)]
pub struct CredentialStore {
    config: DockerConfig,
    path: Option<PathBuf>,
}

impl CredentialStore {
    /// Reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    /// A missing file means no credentials.
    pub fn from_env() -> Result<CredentialStore> {
        let dir = match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("HOME") {
                Some(home) => Path::new(&home).join(".docker"),
                None => return Ok(CredentialStore::default()),
            },
        };
        CredentialStore::load(&dir.join("config.json"))
    }

    pub fn load(path: &Path) -> Result<CredentialStore> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CredentialStore::default());
            }
            Err(e) => bail!("Failed to read Docker config `{}`: {e}", path.display()),
        };
        let config: DockerConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "Invalid Docker config `{}`: fix the JSON or remove the file",
                path.display()
            )
        })?;
        Ok(CredentialStore {
            config,
            path: Some(path.to_path_buf()),
        })
    }

    /// Returns the credentials for `registry` (a name such as `docker.io`
    /// or `127.0.0.1:5000`), or `None` to go anonymous.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        let keys = config_keys(registry);
        if let Some(helper) = keys.iter().find_map(|k| self.config.cred_helpers.get(k)) {
            return run_helper(helper, &keys[0]);
        }
        if let Some(helper) = &self.config.creds_store {
            if let Some(found) = run_helper(helper, &keys[0])? {
                return Ok(Some(found));
            }
        }
        let Some(entry) = keys.iter().find_map(|k| self.config.auths.get(k)) else {
            return Ok(None);
        };
        self.decode_entry(registry, entry)
    }

    fn decode_entry(&self, registry: &str, entry: &AuthEntry) -> Result<Option<Credentials>> {
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.clone())));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials::Basic {
                username: username.clone(),
                password: password.clone(),
            }));
        }
        let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let path = self
            .path
            .as_ref()
            .map_or("config.json".into(), |p| p.display().to_string());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .with_context(|| {
                format!("Invalid `auth` for `{registry}` in `{path}`: expected base64 of `user:password`; run `docker login {registry}` again")
            })?;
        let Some((username, password)) = decoded.split_once(':') else {
            bail!(
                "Invalid `auth` for `{registry}` in `{path}`: expected base64 of `user:password`; run `docker login {registry}` again"
            );
        };
        Ok(Some(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }))
    }
}

/// Returns the keys a registry may be stored under in `config.json`, the
/// one helpers are asked for first.
fn config_keys(registry: &str) -> Vec<String> {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ];
    }
    vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperOutput {
    username: String,
    secret: String,
}

/// Runs `docker-credential-HELPER get`. A helper that has no entry exits
/// non-zero with `credentials not found in native keychain`.
fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("Failed to run credential helper `{program}`: install it or remove it from the Docker config")
        })?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(server.as_bytes())
        .with_context(|| format!("Failed to write to credential helper `{program}`"))?;
    let output = child
        .wait_with_output()
        .with_context(|| format!("Credential helper `{program}` failed"))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if message.contains("credentials not found") {
            return Ok(None);
        }
        bail!(
            "Credential helper `{program}` failed for `{server}`: {}",
            message.trim()
        );
    }
    let parsed: HelperOutput = serde_json::from_slice(&output.stdout).with_context(|| {
        format!("Credential helper `{program}` returned invalid JSON for `{server}`")
    })?;
    Ok(Some(if parsed.username == "<token>" {
        Credentials::IdentityToken(parsed.secret)
    } else {
        Credentials::Basic {
            username: parsed.username,
            password: parsed.secret,
        }
    }))
}

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
    })
}

/// Splits `key="value",key2=value2`, where quoted values may hold commas.
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_bearer_with_commas_in_scope() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#;
        assert_eq!(
            parse_challenge(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn config_auths_decode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNzOndvcmQ="},
                "https://index.docker.io/v1/":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let store = CredentialStore::load(&path).unwrap();
        assert_eq!(
            store.get("127.0.0.1:5000").unwrap(),
            Some(Credentials::Basic {
                username: "user".into(),
                password: "pass:word".into()
            })
        );
        assert_eq!(
            store.get("docker.io").unwrap(),
            Some(Credentials::IdentityToken("tok".into()))
        );
        assert_eq!(store.get("ghcr.io").unwrap(), None);
    }

    #[test]
    fn config_invalid_auth_names_registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{"h:1":{"auth":"!!"}}}"#).unwrap();
        let error = CredentialStore::load(&path)
            .unwrap()
            .get("h:1")
            .unwrap_err();
        assert!(
            error.to_string().contains("Invalid `auth` for `h:1`"),
            "{error}"
        );
    }

    #[test]
    fn missing_config_is_anonymous() {
        let store = CredentialStore::load(Path::new("/nonexistent/config.json")).unwrap();
        assert_eq!(store.get("docker.io").unwrap(), None);
    }
}
