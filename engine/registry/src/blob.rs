//! Blob transfers: resumable verified downloads, existence checks,
//! cross-repository mounts, uploads and manifest pushes.

use crate::client::{RegistryClient, check_status, pull_scope, push_scope};
use anyhow::{Context, Result, bail};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Seek, Write};
use std::path::Path;
use strata_llb::Digest;

impl RegistryClient {
    /// Downloads blob `digest` into `partial` and checks its digest. Bytes
    /// already in `partial`, left by an interrupted download, are kept
    /// and the rest is requested with `Range`. Returns the blob's size.
    pub async fn download_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        partial: &Path,
    ) -> Result<u64> {
        self.download_blob_reporting(registry, repository, digest, partial, &mut |_| {})
            .await
    }

    /// Like [`RegistryClient::download_blob`], calling `report` with the
    /// bytes in `partial` when the download starts and after each chunk.
    pub async fn download_blob_reporting(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        partial: &Path,
        report: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(partial)
            .with_context(|| format!("Failed to open `{}`", partial.display()))?;
        let mut hasher = Sha256::new();
        let mut have = hash_file(&mut file, &mut hasher)?;

        let url = format!("{}{repository}/blobs/{digest}", self.base_url(registry));
        let scopes = [pull_scope(repository)];
        let response = self
            .send(registry, &scopes, &|http| {
                let request = http.get(&url);
                Ok(if have > 0 {
                    request.header(RANGE, format!("bytes={have}-"))
                } else {
                    request
                })
            })
            .await?;
        let mut response = match response.status() {
            StatusCode::PARTIAL_CONTENT => response,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The partial file may already hold the whole blob.
                return finish_download(digest, hasher, have, partial);
            }
            _ => {
                let response = check_status(
                    response,
                    &format!("blob `{digest}` of `{registry}/{repository}`"),
                )
                .await?;
                if have > 0 {
                    tracing::debug!(%digest, "registry ignored the range request, restarting");
                    file.set_len(0)?;
                    hasher = Sha256::new();
                    have = 0;
                }
                response
            }
        };

        report(have);
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("Download of blob `{digest}` from `{registry}` was interrupted; run the build again to resume it"))?
        {
            file.write_all(&chunk)
                .with_context(|| format!("Failed to write `{}`", partial.display()))?;
            hasher.update(&chunk);
            have += chunk.len() as u64;
            report(have);
        }
        file.sync_data()?;
        finish_download(digest, hasher, have, partial)
    }

    /// Returns whether the registry already has blob `digest` in `repository`.
    pub async fn blob_exists(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool> {
        let url = format!("{}{repository}/blobs/{digest}", self.base_url(registry));
        let scopes = [push_scope(repository)];
        let response = self
            .send(registry, &scopes, &|http| Ok(http.head(&url)))
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            status if status.is_success() => Ok(true),
            _ => {
                check_status(
                    response,
                    &format!("blob `{digest}` of `{registry}/{repository}`"),
                )
                .await?;
                Ok(false)
            }
        }
    }

    /// Uploads the file at `path` as blob `digest`, first asking the
    /// registry to mount it from repository `mount_from` of the same
    /// registry. Returns whether the blob was mounted instead of sent.
    pub async fn upload_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        path: &Path,
        mount_from: Option<&str>,
    ) -> Result<bool> {
        let base = self.base_url(registry);
        let mut url = format!("{base}{repository}/blobs/uploads/");
        let mut scopes = vec![push_scope(repository)];
        if let Some(from) = mount_from.filter(|from| *from != repository) {
            url.push_str(&format!("?mount={digest}&from={from}"));
            scopes.push(pull_scope(from));
        }
        let response = self
            .send(registry, &scopes, &|http| {
                Ok(http.post(&url).header(CONTENT_LENGTH, "0"))
            })
            .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(true);
        }
        let what = format!("upload of blob `{digest}` to `{registry}/{repository}`");
        let response = check_status(response, &what).await?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .with_context(|| {
                format!("Registry `{registry}` started an upload without a `Location`")
            })?;
        let put_url = upload_url(&base, location, digest)?;

        let size = std::fs::metadata(path)
            .with_context(|| format!("Failed to read `{}`", path.display()))?
            .len();
        let response = self
            .send(registry, &scopes, &|http| {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("Failed to open `{}`", path.display()))?;
                let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
                Ok(http
                    .request(Method::PUT, &put_url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(reqwest::Body::wrap_stream(stream)))
            })
            .await?;
        check_status(response, &what).await?;
        Ok(false)
    }

    /// Pushes a manifest or index under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let url = format!(
            "{}{repository}/manifests/{reference}",
            self.base_url(registry)
        );
        let scopes = [push_scope(repository)];
        let response = self
            .send(registry, &scopes, &|http| {
                Ok(http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.to_vec()))
            })
            .await?;
        check_status(
            response,
            &format!("manifest push to `{registry}/{repository}:{reference}`"),
        )
        .await?;
        Ok(())
    }
}

/// Hashes the bytes already in `file` and returns their count.
fn hash_file(file: &mut std::fs::File, hasher: &mut Sha256) -> Result<u64> {
    file.rewind()?;
    let mut buf = vec![0; 256 * 1024];
    let mut total = 0;
    loop {
        let read = file.read(&mut buf)?;
        if read == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..read]);
        total += read as u64;
    }
}

fn finish_download(digest: &Digest, hasher: Sha256, size: u64, partial: &Path) -> Result<u64> {
    let actual = Digest::from_sha256(hasher.finalize().into());
    if actual != *digest {
        let _ = std::fs::remove_file(partial);
        bail!(
            "Blob `{digest}` hashes to `{actual}` after download: the registry sent corrupt data; run the build again"
        );
    }
    Ok(size)
}

/// Resolves an upload `Location` (absolute or relative to the host) and
/// adds the `digest` query parameter that completes a monolithic upload.
fn upload_url(base: &str, location: &str, digest: &Digest) -> Result<String> {
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        let origin_end = base
            .find("://")
            .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
            .unwrap_or(base.len());
        format!("{}{location}", &base[..origin_end])
    };
    let separator = if absolute.contains('?') { '&' } else { '?' };
    Ok(format!("{absolute}{separator}digest={digest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_url_relative_and_absolute() {
        let digest = Digest::of_bytes(b"x");
        assert_eq!(
            upload_url(
                "http://127.0.0.1:5000/v2/",
                "/v2/a/blobs/uploads/u1?_state=s",
                &digest
            )
            .unwrap(),
            format!("http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=s&digest={digest}")
        );
        assert_eq!(
            upload_url("https://r/v2/", "https://up.r/u2", &digest).unwrap(),
            format!("https://up.r/u2?digest={digest}")
        );
    }
}
