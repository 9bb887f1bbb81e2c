//! Image references split into the parts the distribution API needs.

use std::fmt;

/// A normalised image reference, such as
/// `docker.io/library/busybox:latest` or `127.0.0.1:5000/app@sha256:...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, as written in the name (`docker.io`).
    pub registry: String,
    /// Repository path inside the registry (`library/busybox`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Splits a reference that is already normalised (a host first, a
    /// full repository path, a tag or a digest), as
    /// `strata_dockerfile::convert::normalize_reference` and the
    /// exporter's `normalize_name` return them.
    pub fn parse_normalized(text: &str) -> Result<Reference, String> {
        let invalid = |why: &str| format!("Invalid image reference `{text}`: {why}");
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_string())),
            None => (text, None),
        };
        let last_slash = name
            .rfind('/')
            .ok_or_else(|| invalid("it has no registry host"))?;
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        let (registry, repository) = path
            .split_once('/')
            .ok_or_else(|| invalid("it has no repository"))?;
        if registry.is_empty() || repository.is_empty() {
            return Err(invalid("the registry host or the repository is empty"));
        }
        if tag.is_none() && digest.is_none() {
            return Err(invalid("it has neither a tag nor a digest"));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// Returns the host the API is served from: Docker Hub's names use
    /// `docker.io`, its API lives at `registry-1.docker.io`.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// Returns the digest when there is one, else the tag, as the
    /// `<reference>` part of a manifest URL.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Returns `registry/repository`, without tag or digest.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// Maps a registry name to the host serving its API.
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// Returns whether `host` (with an optional port) names this machine's
/// loopback interface, the only hosts plain HTTP is allowed for.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name == "localhost" {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tag_and_digest() {
        let r = Reference::parse_normalized("docker.io/library/busybox:latest").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.api_host(), "registry-1.docker.io");

        let r = Reference::parse_normalized("127.0.0.1:5000/team/app@sha256:abcd").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), "sha256:abcd");
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app@sha256:abcd");
    }

    #[test]
    fn parse_rejects_short_names() {
        assert!(Reference::parse_normalized("busybox:latest").is_err());
        assert!(Reference::parse_normalized("docker.io/library/busybox").is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("registry.example:443"));
    }
}
