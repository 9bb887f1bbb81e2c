//! `https://` and `http://` sources: one downloaded file in a snapshot of
//! its own, as BuildKit's HTTP source for `ADD URL`.
//!
//! The file is named by the `http.filename` attribute, else by the
//! response's `Content-Disposition`, else by the URL's last path segment.
//! Its mode is `0600` and its mtime the `Last-Modified` time when the
//! server sends one. It is never unpacked.
//!
//! Each download leaves a small record of the response's validators
//! (`ETag`, `Last-Modified`) under `$STRATA_ROOT/sources/http/`. The next
//! build of the same URL sends `If-None-Match` and
//! `If-Modified-Since` and reuses the stored file on `304 Not Modified`, as
//! BuildKit does. With `--checksum`, a stored file of that checksum is
//! reused without any request.

use anyhow::{Context, Result, bail};
use filetime::FileTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use strata_llb::{Digest, SourceOp};
use strata_solver::{ResultRef, SourceResult};
use strata_store::{ActiveSnapshot, SnapshotKind, Store};
use tokio::io::AsyncWriteExt;

pub const HTTP_FILENAME: &str = "http.filename";
pub const HTTP_CHECKSUM: &str = "http.checksum";

/// The validators of a URL's last download, which let the next build make
/// a conditional request and find the stored copy again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validators {
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// sha256 of the downloaded bytes.
    pub content: Digest,
    /// The source key of the download, also the cache key of its snapshot.
    pub key: Digest,
}

/// A stored download that the caller has leased, offered for reuse.
pub struct Previous {
    pub validators: Validators,
    pub snapshot: String,
}

fn validators_path(store: &Store, url: &str) -> PathBuf {
    let name = Digest::of_bytes(url.as_bytes());
    store
        .root()
        .join("sources/http")
        .join(format!("{}.json", name.hex()))
}

/// Reads the validators of the last download of `url`. A missing or
/// unreadable record only means the next download is unconditional.
pub fn previous_validators(store: &Store, url: &str) -> Option<Validators> {
    let path = validators_path(store, url);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<Validators>(&bytes) {
        Ok(validators) if validators.url == url => Some(validators),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!("ignoring `{}`: {error}", path.display());
            None
        }
    }
}

fn save_validators(store: &Store, validators: &Validators) -> Result<()> {
    let path = validators_path(store, &validators.url);
    let dir = path.parent().expect("validators live in a directory");
    std::fs::create_dir_all(dir)
        .with_context(|| format!("Failed to create `{}`", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut file, validators)?;
    file.persist(&path)
        .with_context(|| format!("Failed to write `{}`", path.display()))?;
    Ok(())
}

/// Loads the file of `op`: the stored copy in `previous` when the checksum
/// matches it or the server responds `304 Not Modified`, else a download
/// into a new snapshot.
pub async fn load_http(
    store: &Store,
    op: &SourceOp,
    previous: Option<Previous>,
) -> Result<SourceResult> {
    let url = op.identifier.as_str();
    let expected = match op.attrs.get(HTTP_CHECKSUM) {
        Some(text) => Some(text.parse::<Digest>().map_err(|_| {
            anyhow::anyhow!(
                "Invalid checksum `{text}` for `{url}`: write `sha256:` and 64 lowercase hex digits"
            )
        })?),
        None => None,
    };
    let reuse = |previous: Previous| SourceResult {
        key: previous.validators.key,
        result: ResultRef::snapshot(previous.snapshot),
    };
    let previous = match previous {
        Some(previous) if expected.as_ref() == Some(&previous.validators.content) => {
            return Ok(reuse(previous));
        }
        other => other,
    };
    let mut request = reqwest::Client::new().get(url);
    if let Some(previous) = &previous {
        if let Some(etag) = &previous.validators.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &previous.validators.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
        }
    }
    let response = request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("Failed to fetch `{url}`: {}", error_chain(&e)))?;
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        if let Some(previous) = previous {
            return Ok(reuse(previous));
        }
    }
    if !response.status().is_success() {
        bail!(
            "Failed to fetch `{url}`: the server responded with `{}`",
            response.status()
        );
    }
    let name = file_name(op, &response)?;
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header(reqwest::header::ETAG);
    let last_modified = header(reqwest::header::LAST_MODIFIED);
    let modified = last_modified
        .as_deref()
        .and_then(|v| httpdate::parse_http_date(v).ok());

    let active = store.prepare(None, SnapshotKind::Regular)?;
    let path = active.upper.join(&name);
    let written = download(url, response, &path, modified).await;
    let content = match written {
        Ok(content) => content,
        Err(error) => return Err(abort(store, active, error)),
    };
    if let Some(expected) = &expected {
        if *expected != content {
            let error = anyhow::anyhow!(
                "Checksum mismatch for `{url}`: expected `{expected}`, the download is `{content}`; \
                 fix `--checksum` or the URL"
            );
            return Err(abort(store, active, error));
        }
    }
    let id = store.commit(active)?;
    let mtime = modified.map(|t| FileTime::from_system_time(t).unix_seconds());
    let identity = serde_json::json!({
        "http": content.as_str(),
        "name": name,
        "mtime": mtime,
    });
    let key = Digest::of_bytes(identity.to_string().as_bytes());
    let validators = Validators {
        url: url.to_string(),
        etag,
        last_modified,
        content,
        key: key.clone(),
    };
    if let Err(error) = save_validators(store, &validators) {
        tracing::warn!("the next build will download `{url}` again: {error:#}");
    }
    Ok(SourceResult {
        key,
        result: ResultRef::snapshot(id),
    })
}

/// Streams the body into `path` and returns its sha256.
async fn download(
    url: &str,
    mut response: reqwest::Response,
    path: &Path,
    modified: Option<std::time::SystemTime>,
) -> Result<Digest> {
    let mut file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("Failed to create `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| anyhow::anyhow!("Failed to download `{url}`: {}", error_chain(&e)))?
    {
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    drop(file);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    if let Some(modified) = modified {
        let time = FileTime::from_system_time(modified);
        filetime::set_file_times(path, time, time)?;
    }
    Ok(Digest::from_sha256(hasher.finalize().into()))
}

fn abort(store: &Store, active: ActiveSnapshot, error: anyhow::Error) -> anyhow::Error {
    if let Err(abort) = store.abort(active) {
        tracing::warn!("failed to abort a download snapshot: {abort:#}");
    }
    error
}

/// Chooses the file name: the attribute, `Content-Disposition`, the URL.
fn file_name(op: &SourceOp, response: &reqwest::Response) -> Result<String> {
    let from_header = response
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(disposition_file_name);
    let from_url = response
        .url()
        .path_segments()
        .and_then(|mut segments| segments.next_back().map(str::to_string))
        .filter(|name| !name.is_empty());
    let name = op
        .attrs
        .get(HTTP_FILENAME)
        .cloned()
        .or(from_header)
        .or(from_url)
        .unwrap_or_else(|| "__unnamed__".into());
    if name.contains('/') || name == "." || name == ".." {
        bail!(
            "Invalid file name `{name}` for `{}`: a downloaded file's name cannot contain `/` or be `.` or `..`",
            op.identifier
        );
    }
    Ok(name)
}

/// Reads `filename="NAME"` or `filename=NAME` from a `Content-Disposition`
/// value.
pub fn disposition_file_name(value: &str) -> Option<String> {
    value.split(';').find_map(|part| {
        let (key, raw) = part.trim().split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("filename") {
            return None;
        }
        let name = raw.trim().trim_matches('"');
        let name = name.rsplit('/').next().unwrap_or(name);
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// Joins an error with its causes, which name the actual failure (such as
/// a refused connection) that reqwest's top-level message leaves out.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::disposition_file_name;

    #[test]
    fn disposition_names() {
        let name = |v| disposition_file_name(v);
        assert_eq!(name("attachment; filename=\"a.txt\""), Some("a.txt".into()));
        assert_eq!(name("attachment; filename=b.tar"), Some("b.tar".into()));
        assert_eq!(name("inline"), None);
        assert_eq!(name("attachment; filename=\"x/../c\""), Some("c".into()));
    }
}
