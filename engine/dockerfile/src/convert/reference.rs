//! Docker's image reference normalisation (`busybox` →
//! `docker.io/library/busybox:latest`).

/// Normalises `reference` as Docker does: a missing registry becomes
/// `docker.io`, a single-component Docker Hub path gets `library/`, and a
/// reference without tag or digest gets `:latest`.
pub fn normalize_reference(reference: &str) -> Result<String, String> {
    let invalid = |why: &str| {
        format!(
            "Invalid image reference `{reference}`: {why}; write it like `busybox:1.36` or `registry:5000/team/app@sha256:...`"
        )
    };
    if reference.is_empty() {
        return Err(invalid("it is empty"));
    }
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let (algorithm, hex) = digest
            .split_once(':')
            .ok_or_else(|| invalid("the digest has no algorithm"))?;
        if algorithm.is_empty() || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("the digest is malformed"));
        }
    }

    // A tag follows the last `:` that comes after the last `/`, so a
    // registry port (`host:5000/x`) is not mistaken for one.
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && !tag.starts_with(['.', '-']);
        if !valid {
            return Err(invalid("the tag is malformed"));
        }
    }

    let (domain, remainder) = match path.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first, rest.to_string())
        }
        _ => ("docker.io", path.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let remainder = if domain == "docker.io" && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if !remainder.split('/').all(component_ok) {
        return Err(invalid(
            "the repository name must be lowercase letters, digits and separators",
        ));
    }

    let mut normalized = format!("{domain}/{remainder}");
    match (tag, digest) {
        (Some(tag), _) => normalized.push_str(&format!(":{tag}")),
        (None, None) => normalized.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(digest) = digest {
        normalized.push_str(&format!("@{digest}"));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::normalize_reference;

    #[test]
    fn references_normalize_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("debian:bookworm", "docker.io/library/debian:bookworm"),
            ("user/app", "docker.io/user/app:latest"),
            (
                "index.docker.io/library/busybox:1",
                "docker.io/library/busybox:1",
            ),
            ("host:5000/x", "host:5000/x:latest"),
            ("host:5000/x:2", "host:5000/x:2"),
            ("localhost/a/b", "localhost/a/b:latest"),
            ("127.0.0.1:5000/busybox:1.36", "127.0.0.1:5000/busybox:1.36"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_reference(input).unwrap(),
                expected,
                "input `{input}`"
            );
        }
    }

    #[test]
    fn digests_are_kept() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize_reference(&format!("busybox@{digest}")).unwrap(),
            format!("docker.io/library/busybox@{digest}")
        );
        assert_eq!(
            normalize_reference(&format!("busybox:1@{digest}")).unwrap(),
            format!("docker.io/library/busybox:1@{digest}")
        );
    }

    #[test]
    fn bad_references_are_rejected() {
        for input in [
            "",
            "Busybox",
            "busybox:",
            "busybox@sha256:xyz",
            "a//b",
            "busybox:-x",
        ] {
            assert!(normalize_reference(input).is_err(), "input `{input}`");
        }
    }
}
