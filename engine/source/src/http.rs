//! `https://` and `http://` sources: one downloaded file in a snapshot of
//! its own, as BuildKit's HTTP source for `ADD URL`.
//!
//! The file is named by the `http.filename` attribute, else by the
//! response's `Content-Disposition`, else by the URL's last path segment.
//! Its mode is `0600` and its mtime the `Last-Modified` time when the
//! server sends one. It is never unpacked.

use anyhow::{Context, Result, bail};
use filetime::FileTime;
use sha2::{Digest as _, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use strata_llb::{Digest, SourceOp};
use strata_solver::{ResultRef, SourceResult};
use strata_store::{ActiveSnapshot, SnapshotKind, Store};
use tokio::io::AsyncWriteExt;

pub const HTTP_FILENAME: &str = "http.filename";
pub const HTTP_CHECKSUM: &str = "http.checksum";

/// Downloads the file of `op` into a new snapshot.
pub async fn load_http(store: &Store, op: &SourceOp) -> Result<SourceResult> {
    let url = op.identifier.as_str();
    let expected = match op.attrs.get(HTTP_CHECKSUM) {
        Some(text) => Some(text.parse::<Digest>().map_err(|_| {
            anyhow::anyhow!(
                "Invalid checksum `{text}` for `{url}`: write `sha256:` and 64 lowercase hex digits"
            )
        })?),
        None => None,
    };
    let response = reqwest::get(url)
        .await
        .map_err(|e| anyhow::anyhow!("Failed to fetch `{url}`: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        bail!(
            "Failed to fetch `{url}`: the server responded with `{}`",
            response.status()
        );
    }
    let name = file_name(op, &response)?;
    let modified = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
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
    Ok(SourceResult {
        key: Digest::of_bytes(identity.to_string().as_bytes()),
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
