//! The manifest documents a pull reads: image indexes (manifest lists)
//! and image manifests, in their OCI and Docker media types.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use strata_llb::{Digest, Platform};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Layer media types a pull can unpack: gzip, zstd or uncompressed tars.
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
];

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteDescriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<RemotePlatform>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RemotePlatform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// Either kind of document, distinguished by the fields it sets.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<RemoteDescriptor>>,
    #[serde(default)]
    config: Option<RemoteDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RemoteDescriptor>>,
}

/// A parsed manifest document.
#[derive(Debug)]
pub enum Parsed {
    Index(Vec<RemoteDescriptor>),
    Image {
        config: RemoteDescriptor,
        layers: Vec<RemoteDescriptor>,
    },
}

/// Parses a manifest or index. `content_type`, the response header, is
/// used when the document has no `mediaType` field.
pub fn parse(bytes: &[u8], content_type: &str, image: &str) -> Result<Parsed> {
    let document: Document = serde_json::from_slice(bytes)
        .with_context(|| format!("Invalid manifest for `{image}`: not a JSON manifest or index"))?;
    let media_type = document.media_type.as_deref().unwrap_or(content_type);
    if let Some(manifests) = document.manifests {
        return Ok(Parsed::Index(manifests));
    }
    if media_type == "application/vnd.docker.distribution.manifest.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    {
        bail!(
            "Image `{image}` uses the Docker schema 1 manifest, which is not supported: push it again with a current client"
        );
    }
    let (Some(config), Some(layers)) = (document.config, document.layers) else {
        bail!(
            "Invalid manifest for `{image}`: it has neither `manifests` nor `config` and `layers`"
        );
    };
    if let Some(bad) = layers
        .iter()
        .find(|l| !LAYER_TYPES.contains(&l.media_type.as_str()))
    {
        bail!(
            "Image `{image}` has a layer of media type `{}`, which cannot be unpacked: only gzip, zstd and uncompressed tar layers are supported",
            bad.media_type
        );
    }
    Ok(Parsed::Image { config, layers })
}

/// Picks the entry of an index for `platform`: an exact variant match
/// first, then an entry without a variant.
pub fn select_platform<'a>(
    manifests: &'a [RemoteDescriptor],
    platform: &Platform,
) -> Option<&'a RemoteDescriptor> {
    let matches = |d: &&RemoteDescriptor, exact: bool| {
        let Some(p) = &d.platform else { return false };
        if p.os != platform.os || p.architecture != platform.architecture {
            return false;
        }
        match (&p.variant, &platform.variant) {
            (a, b) if a == b => true,
            (None, _) | (_, None) => !exact,
            _ => false,
        }
    };
    manifests
        .iter()
        .find(|d| matches(d, true))
        .or_else(|| manifests.iter().find(|d| matches(d, false)))
}

/// Lists an index's platforms for an error message.
pub fn platform_list(manifests: &[RemoteDescriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("`{}/{}/{v}`", p.os, p.architecture),
            None => format!("`{}/{}`", p.os, p.architecture),
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Vec<RemoteDescriptor> {
        let json = format!(
            r#"{{"manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":2,"platform":{{"os":"linux","architecture":"arm64"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            Digest::of_bytes(b"1"),
            Digest::of_bytes(b"2"),
            Digest::of_bytes(b"3")
        );
        match parse(json.as_bytes(), OCI_INDEX, "t").unwrap() {
            Parsed::Index(m) => m,
            other => panic!("expected an index, got {other:?}"),
        }
    }

    #[test]
    fn select_platform_prefers_variant() {
        let manifests = index();
        let arm64 = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(select_platform(&manifests, &arm64).unwrap().size, 2);
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert_eq!(select_platform(&manifests, &amd64).unwrap().size, 3);
        let arm6 = Platform::parse("linux/arm/v6").unwrap();
        assert!(select_platform(&manifests, &arm6).is_none());
        assert_eq!(
            platform_list(&manifests),
            "`linux/arm/v7`, `linux/arm64`, `linux/amd64`"
        );
    }

    #[test]
    fn parse_rejects_foreign_layers() {
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"{d}","size":1}},
               "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{d}","size":1}}]}}"#,
            d = Digest::of_bytes(b"x")
        );
        let error = parse(json.as_bytes(), DOCKER_MANIFEST, "img").unwrap_err();
        assert!(error.to_string().contains("foreign"), "{error}");
    }
}
