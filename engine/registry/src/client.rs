//! The distribution API over HTTP: authentication, manifests and blobs.

use crate::auth::{Challenge, CredentialStore, Credentials, parse_challenge};
use crate::reference::{api_host, is_loopback};
use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

/// Media types a manifest request accepts, index types first.
pub const MANIFEST_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Transport settings of a registry client.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Hosts (`127.0.0.1:5000`) spoken to over plain HTTP. Only loopback
    /// hosts are allowed.
    pub insecure_hosts: BTreeSet<String>,
    /// Directory with one folder of extra CA certificates per host, like
    /// Docker's `/etc/docker/certs.d/HOST/ca.crt`.
    pub certs_dir: Option<PathBuf>,
    /// Host names (without port) the client may contact; `None` allows
    /// every host. Tests set it so that no request leaves the machine.
    pub allowed_hosts: Option<BTreeSet<String>>,
}

impl RegistryOptions {
    /// Reads `STRATA_REGISTRY_CERTS_DIR` (default `/etc/docker/certs.d`)
    /// and `STRATA_REGISTRY_ALLOW`, a comma-separated list of host names.
    pub fn from_env() -> RegistryOptions {
        let certs_dir = std::env::var_os("STRATA_REGISTRY_CERTS_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/docker/certs.d"));
        let allowed_hosts = std::env::var("STRATA_REGISTRY_ALLOW").ok().map(|list| {
            list.split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect()
        });
        RegistryOptions {
            insecure_hosts: BTreeSet::new(),
            certs_dir: Some(certs_dir),
            allowed_hosts,
        }
    }

    /// Fails unless `host` (with optional port) is in `allowed_hosts`.
    pub fn check_allowed(&self, host: &str) -> Result<()> {
        let Some(allowed) = &self.allowed_hosts else {
            return Ok(());
        };
        let name = host_name(host);
        if !allowed.contains(name) {
            let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
            bail!(
                "Registry host `{name}` is not in `STRATA_REGISTRY_ALLOW` (`{}`): add it there or unset the variable",
                list.join(",")
            );
        }
        Ok(())
    }

    /// Allows plain HTTP to `host`, which must be a loopback address.
    pub fn allow_insecure(&mut self, host: &str) -> Result<()> {
        if !is_loopback(host) {
            bail!(
                "Plain HTTP is allowed only for registries on this machine, not `{host}`: \
                 give the registry a TLS certificate, or use `127.0.0.1:PORT`"
            );
        }
        self.insecure_hosts.insert(host.to_string());
        Ok(())
    }
}

/// A distribution API client shared by every pull and push of a build.
pub struct RegistryClient {
    /// Built on first use: loading the system's root certificates costs
    /// milliseconds that a build resolving only local images should not pay.
    http: std::sync::OnceLock<std::result::Result<reqwest::Client, String>>,
    extra_roots: Vec<reqwest::Certificate>,
    options: RegistryOptions,
    credentials: CredentialStore,
    /// `Authorization` values by host and scope set.
    tokens: Mutex<HashMap<(String, String), String>>,
}

/// A fetched manifest or index and the digest of its bytes.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: strata_llb::Digest,
}

impl RegistryClient {
    pub fn new(options: RegistryOptions) -> Result<RegistryClient> {
        let credentials = CredentialStore::from_env()?;
        let extra_roots = extra_certificates(options.certs_dir.as_deref())?;
        Ok(RegistryClient {
            http: std::sync::OnceLock::new(),
            extra_roots,
            options,
            credentials,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn http(&self) -> Result<&reqwest::Client> {
        self.http
            .get_or_init(|| {
                let mut builder = reqwest::Client::builder()
                    .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(std::time::Duration::from_secs(30));
                for pem in &self.extra_roots {
                    builder = builder.add_root_certificate(pem.clone());
                }
                builder.build().map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow!("Failed to set up the HTTP client: {e}"))
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// Returns the base URL of a registry's API.
    pub fn base_url(&self, registry: &str) -> String {
        let host = api_host(registry);
        let scheme = if self.options.insecure_hosts.contains(registry)
            || self.options.insecure_hosts.contains(host)
        {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/")
    }

    /// Sends a request built by `build` and, after a 401, retries it once
    /// with credentials for the challenge. The scopes are `repository:NAME:ACTIONS` strings for bearer tokens.
    pub async fn send(
        &self,
        registry: &str,
        scopes: &[String],
        build: &(dyn Fn(&reqwest::Client) -> Result<RequestBuilder> + Sync),
    ) -> Result<Response> {
        self.options.check_allowed(api_host(registry))?;
        let key = (registry.to_string(), scopes.join(" "));
        let cached = self.cached_token(&key);
        let mut request = build(self.http()?)?;
        if let Some(value) = &cached {
            request = request.header(AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| connection_error(registry, e))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }

        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
            .ok_or_else(|| {
                anyhow!("Registry `{registry}` returned 401 without a usable `WWW-Authenticate` challenge")
            })?;
        let value = self.authorize(registry, scopes, &challenge).await?;
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, value.clone());
        let response = build(self.http()?)?
            .header(AUTHORIZATION, value)
            .send()
            .await
            .map_err(|e| connection_error(registry, e))?;
        if response.status() == StatusCode::UNAUTHORIZED
            || response.status() == StatusCode::FORBIDDEN
        {
            bail!(
                "Registry `{registry}` rejected the credentials for {}: run `docker login {registry}` or check the entry in Docker's `config.json`",
                scopes.join(", ")
            );
        }
        Ok(response)
    }

    fn cached_token(&self, key: &(String, String)) -> Option<String> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Returns the `Authorization` value for `challenge`.
    async fn authorize(
        &self,
        registry: &str,
        scopes: &[String],
        challenge: &Challenge,
    ) -> Result<String> {
        let credentials = self.credentials.get(registry)?;
        match challenge {
            Challenge::Basic => credentials
                .as_ref()
                .and_then(Credentials::basic_header)
                .ok_or_else(|| {
                    anyhow!(
                        "Registry `{registry}` requires a login: run `docker login {registry}` or add it to Docker's `config.json`"
                    )
                }),
            Challenge::Bearer { realm, service } => {
                let token = self
                    .fetch_token(registry, realm, service.as_deref(), scopes, credentials)
                    .await?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<Credentials>,
    ) -> Result<String> {
        let realm_host = realm
            .split_once("://")
            .map_or(realm, |(_, rest)| rest.split('/').next().unwrap_or(rest));
        self.options.check_allowed(realm_host)?;
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            query.push(("service", service));
        }
        for scope in scopes {
            query.push(("scope", scope));
        }
        let http = self.http()?;
        let request = match &credentials {
            Some(Credentials::IdentityToken(token)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", "strata"),
                ];
                form.extend(query.iter().copied());
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", url_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                http.post(realm)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            Some(basic) => http
                .get(realm)
                .query(&query)
                .header(AUTHORIZATION, basic.basic_header().unwrap_or_default()),
            None => http.get(realm).query(&query),
        };
        let response = request
            .send()
            .await
            .map_err(|e| connection_error(registry, e))?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "Token server `{realm}` of registry `{registry}` returned {status}: run `docker login {registry}` or check the entry in Docker's `config.json`"
            );
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| connection_error(registry, e))?;
        let body: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("Token server `{realm}` returned invalid JSON"))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("Token server `{realm}` returned no `token`"))
    }

    /// Fetches a manifest or index by tag or digest and checks its digest.
    pub async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest> {
        let url = format!(
            "{}{repository}/manifests/{reference}",
            self.base_url(registry)
        );
        let scopes = [pull_scope(repository)];
        let response = self
            .send(registry, &scopes, &|http| {
                Ok(http.get(&url).header(ACCEPT, MANIFEST_ACCEPT.join(", ")))
            })
            .await?;
        let response = check_status(
            response,
            &format!("manifest `{registry}/{repository}:{reference}`"),
        )
        .await?;
        let media_type = content_type(response.headers());
        let bytes = response
            .bytes()
            .await
            .with_context(|| {
                format!("Failed to read manifest `{registry}/{repository}:{reference}`")
            })?
            .to_vec();
        let digest = strata_llb::Digest::of_bytes(&bytes);
        if reference.starts_with("sha256:") && digest.as_str() != reference {
            bail!(
                "Manifest `{registry}/{repository}@{reference}` hashes to `{digest}`: the registry sent corrupt data"
            );
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Returns the digest a tag points at with a `HEAD` request, without
    /// downloading the manifest.
    pub async fn head_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let url = format!(
            "{}{repository}/manifests/{reference}",
            self.base_url(registry)
        );
        let scopes = [pull_scope(repository)];
        let response = self
            .send(registry, &scopes, &|http| {
                Ok(http.head(&url).header(ACCEPT, MANIFEST_ACCEPT.join(", ")))
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check_status(
            response,
            &format!("manifest `{registry}/{repository}:{reference}`"),
        )
        .await?;
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// Fetches a small blob, such as an image config, into memory.
    pub async fn get_blob_bytes(
        &self,
        registry: &str,
        repository: &str,
        digest: &strata_llb::Digest,
    ) -> Result<Vec<u8>> {
        let url = format!("{}{repository}/blobs/{digest}", self.base_url(registry));
        let scopes = [pull_scope(repository)];
        let response = self
            .send(registry, &scopes, &|http| Ok(http.get(&url)))
            .await?;
        let response = check_status(
            response,
            &format!("blob `{digest}` of `{registry}/{repository}`"),
        )
        .await?;
        let bytes = response.bytes().await?.to_vec();
        let actual = strata_llb::Digest::of_bytes(&bytes);
        if actual != *digest {
            bail!(
                "Blob `{digest}` of `{registry}/{repository}` hashes to `{actual}`: the registry sent corrupt data"
            );
        }
        Ok(bytes)
    }
}

/// Returns the `repository:NAME:pull` scope.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// Returns the `repository:NAME:pull,push` scope.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// Turns a non-success response into an error that names `what`.
pub async fn check_status(response: Response, what: &str) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    if status == StatusCode::NOT_FOUND {
        bail!("Registry has no {what}: check the name and tag ({detail})");
    }
    bail!("Registry returned {status} for {what}: {detail}")
}

/// Returns `host` without its port or IPv6 brackets.
fn host_name(host: &str) -> &str {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    };
    name.trim_start_matches('[').trim_end_matches(']')
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        .unwrap_or_default()
}

fn connection_error(registry: &str, error: reqwest::Error) -> anyhow::Error {
    let mut message = format!("Failed to reach registry `{registry}`: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if is_loopback(registry) {
        message.push_str(
            "; for a plain-HTTP registry on this machine pass `--allow-insecure-registry HOST` or `registry.insecure=true`",
        );
    }
    anyhow!(message)
}

/// Reads every `*.crt` under `dir/HOST/` as an extra trusted root.
fn extra_certificates(dir: Option<&std::path::Path>) -> Result<Vec<reqwest::Certificate>> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    let Ok(hosts) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut certificates = Vec::new();
    for host in hosts.flatten() {
        let Ok(files) = std::fs::read_dir(host.path()) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "crt") {
                continue;
            }
            let pem = std::fs::read(&path)
                .with_context(|| format!("Failed to read CA certificate `{}`", path.display()))?;
            let certificate = reqwest::Certificate::from_pem(&pem).with_context(|| {
                format!("Invalid CA certificate `{}`: expected PEM", path.display())
            })?;
            certificates.push(certificate);
        }
    }
    Ok(certificates)
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_host_names() {
        let options = RegistryOptions {
            allowed_hosts: Some(BTreeSet::from(["127.0.0.1".to_string()])),
            ..RegistryOptions::default()
        };
        assert!(options.check_allowed("127.0.0.1:5000").is_ok());
        let error = options.check_allowed("registry-1.docker.io").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`registry-1.docker.io` is not in `STRATA_REGISTRY_ALLOW`"),
            "{error}"
        );
        assert!(RegistryOptions::default().check_allowed("ghcr.io").is_ok());
        assert_eq!(host_name("[::1]:5000"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
    }
}
