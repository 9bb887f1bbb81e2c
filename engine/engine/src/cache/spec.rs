//! `--cache-to` and `--cache-from` values.

use std::fmt;
use std::path::PathBuf;

/// Where cache records are written or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheLocation {
    /// Records in the exported image's config.
    Inline,
    /// An OCI image layout directory.
    Local(PathBuf),
    /// A manifest in a registry, by normalised reference.
    Registry(String),
}

/// Which records an export writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// Only the steps whose results are layers of the final image.
    #[default]
    Min,
    /// Every step of the build, intermediate stages included.
    Max,
}

/// A parsed `--cache-to` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheExport {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// `registry.insecure=true`: plain HTTP to a loopback registry.
    pub insecure: bool,
    /// `cache-mounts=true`: also export the contents of every
    /// `RUN --mount=type=cache` directory the build uses.
    pub cache_mounts: bool,
}

/// A parsed `--cache-from` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheImport {
    pub location: CacheLocation,
    pub insecure: bool,
}

impl fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheLocation::Inline => f.write_str("type=inline"),
            CacheLocation::Local(dir) => write!(f, "type=local,{}", dir.display()),
            CacheLocation::Registry(reference) => write!(f, "type=registry,ref={reference}"),
        }
    }
}

/// Splits `key=value,...`, rejecting repeated keys and entries without `=`.
fn pairs<'a>(flag: &str, text: &'a str) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for entry in text.split(',') {
        let Some((key, value)) = entry.split_once('=') else {
            return Err(format!(
                "Invalid `{flag}` entry `{entry}` in `{text}`: expected `key=value`, such as `type=local`"
            ));
        };
        if pairs.iter().any(|(seen, _)| *seen == key) {
            return Err(format!(
                "Invalid `{flag}` value `{text}`: key `{key}` is given twice"
            ));
        }
        pairs.push((key.trim(), value));
    }
    Ok(pairs)
}

fn normalize(flag: &str, reference: &str) -> Result<String, String> {
    strata_dockerfile::convert::normalize_reference(reference)
        .map_err(|e| format!("Invalid `{flag}` reference: {e}"))
}

fn location(
    flag: &str,
    text: &str,
    pairs: &[(&str, &str)],
    path_key: &str,
) -> Result<CacheLocation, String> {
    let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let require = |key: &str, kind: &str| {
        get(key).filter(|v| !v.is_empty()).ok_or_else(|| {
            format!("Invalid `{flag}` value `{text}`: type `{kind}` needs `{key}=...`")
        })
    };
    match get("type") {
        Some("local") => Ok(CacheLocation::Local(PathBuf::from(require(
            path_key, "local",
        )?))),
        Some("registry") => Ok(CacheLocation::Registry(normalize(
            flag,
            require("ref", "registry")?,
        )?)),
        Some("inline") => Ok(CacheLocation::Inline),
        Some(other) => Err(format!(
            "Invalid `{flag}` value `{text}`: unknown type `{other}`, expected `inline`, `local` or `registry`"
        )),
        None => Err(format!("Invalid `{flag}` value `{text}`: missing `type=`")),
    }
}

fn check_keys(
    flag: &str,
    text: &str,
    pairs: &[(&str, &str)],
    allowed: &[&str],
) -> Result<(), String> {
    match pairs.iter().find(|(k, _)| !allowed.contains(k)) {
        Some((key, _)) => Err(format!(
            "Invalid `{flag}` value `{text}`: unknown key `{key}`, valid keys are {}",
            allowed
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(()),
    }
}

fn insecure(flag: &str, text: &str, pairs: &[(&str, &str)]) -> Result<bool, String> {
    boolean(flag, text, pairs, "registry.insecure")
}

/// Reads the `true` or `false` value of `key`, `false` when absent.
fn boolean(flag: &str, text: &str, pairs: &[(&str, &str)], key: &str) -> Result<bool, String> {
    match pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!(
            "Invalid `{flag}` value `{text}`: `{key}` is `{other}`, expected `true` or `false`"
        )),
    }
}

impl CacheExport {
    pub fn parse(text: &str) -> Result<CacheExport, String> {
        let flag = "--cache-to";
        let pairs = pairs(flag, text)?;
        check_keys(
            flag,
            text,
            &pairs,
            &[
                "type",
                "dest",
                "ref",
                "mode",
                "registry.insecure",
                "cache-mounts",
            ],
        )?;
        let mode = match pairs.iter().find(|(k, _)| *k == "mode").map(|(_, v)| *v) {
            None | Some("min") => CacheMode::Min,
            Some("max") => CacheMode::Max,
            Some(other) => {
                return Err(format!(
                    "Invalid `{flag}` value `{text}`: mode `{other}`, expected `min` or `max`"
                ));
            }
        };
        let spec = CacheExport {
            location: location(flag, text, &pairs, "dest")?,
            mode,
            insecure: insecure(flag, text, &pairs)?,
            cache_mounts: boolean(flag, text, &pairs, "cache-mounts")?,
        };
        if spec.location == CacheLocation::Inline {
            // The cache goes into the exported image, so a place is an error.
            if let Some((key, _)) = pairs.iter().find(|(k, _)| *k == "dest" || *k == "ref") {
                return Err(format!(
                    "Invalid `{flag}` value `{text}`: inline cache is written into the exported \
                     image and takes no `{key}`; drop it, or use `type=local,dest=DIR` or \
                     `type=registry,ref=REF`"
                ));
            }
            check_inline(flag, text, &spec)?;
        }
        Ok(spec)
    }
}

/// Rejects the keys an inline cache cannot honour. Like BuildKit's inline
/// exporter, which its documentation says supports only the `min` mode,
/// it contains only the steps whose results are layers of the image.
fn check_inline(flag: &str, text: &str, spec: &CacheExport) -> Result<(), String> {
    if spec.mode == CacheMode::Max {
        return Err(format!(
            "Invalid `{flag}` value `{text}`: inline cache supports only `mode=min`; to export \
             every step, use `type=registry,ref=REF,mode=max` or `type=local,dest=DIR,mode=max`"
        ));
    }
    if spec.cache_mounts {
        return Err(format!(
            "Invalid `{flag}` value `{text}`: inline cache cannot hold cache mounts; use \
             `type=registry,ref=REF,cache-mounts=true` or `type=local,dest=DIR,cache-mounts=true`"
        ));
    }
    Ok(())
}

impl CacheImport {
    /// Parses `type=...,key=value` or, as BuildKit's CLI accepts, a bare
    /// image reference, which reads as `type=registry,ref=IMAGE`.
    pub fn parse(text: &str) -> Result<CacheImport, String> {
        let flag = "--cache-from";
        if !text.is_empty() && !text.contains('=') {
            return Ok(CacheImport {
                location: CacheLocation::Registry(normalize(flag, text)?),
                insecure: false,
            });
        }
        let pairs = pairs(flag, text)?;
        check_keys(
            flag,
            text,
            &pairs,
            &["type", "src", "ref", "registry.insecure"],
        )?;
        let location = location(flag, text, &pairs, "src")?;
        if location == CacheLocation::Inline {
            return Err(format!(
                "Invalid `{flag}` value `{text}`: read inline cache with `type=registry,ref=IMAGE`"
            ));
        }
        Ok(CacheImport {
            location,
            insecure: insecure(flag, text, &pairs)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_exports() {
        let spec = CacheExport::parse("type=local,dest=/tmp/c,mode=max").unwrap();
        assert_eq!(spec.location, CacheLocation::Local("/tmp/c".into()));
        assert_eq!(spec.mode, CacheMode::Max);
        let spec = CacheExport::parse("type=registry,ref=127.0.0.1:5000/c:build").unwrap();
        assert_eq!(
            spec.location,
            CacheLocation::Registry("127.0.0.1:5000/c:build".into())
        );
        assert_eq!(spec.mode, CacheMode::Min);
        assert_eq!(
            CacheExport::parse("type=inline").unwrap().location,
            CacheLocation::Inline
        );
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("type=local", "type `local` needs `dest=...`"),
            ("type=registry", "type `registry` needs `ref=...`"),
            ("type=s3,dest=x", "unknown type `s3`"),
            (
                "type=local,dest=x,mode=all",
                "mode `all`, expected `min` or `max`",
            ),
            ("type=local,dest=x,src=y", "unknown key `src`"),
            ("local", "expected `key=value`"),
        ];
        for (text, needle) in cases {
            let error = CacheExport::parse(text).unwrap_err();
            assert!(error.contains(needle), "`{text}`: {error}");
        }
        let error = CacheImport::parse("type=local,dest=x").unwrap_err();
        assert!(error.contains("unknown key `dest`"), "{error}");
        assert!(CacheImport::parse("type=inline").is_err());
    }

    #[test]
    fn parse_inline_limits() {
        let error = CacheExport::parse("type=inline,mode=max").unwrap_err();
        assert!(error.contains("supports only `mode=min`"), "{error}");
        let error = CacheExport::parse("type=inline,cache-mounts=true").unwrap_err();
        assert!(error.contains("cannot hold cache mounts"), "{error}");
        let error = CacheExport::parse("type=inline,dest=/tmp/x").unwrap_err();
        assert!(error.contains("takes no `dest`"), "{error}");
        let error = CacheExport::parse("type=local,dest=x,cache-mounts=yes").unwrap_err();
        assert!(error.contains("`cache-mounts` is `yes`"), "{error}");
        let spec = CacheExport::parse("type=local,dest=x,cache-mounts=true").unwrap();
        assert!(spec.cache_mounts);
    }

    #[test]
    fn parse_bare_image_import() {
        let spec = CacheImport::parse("127.0.0.1:5000/app:v1").unwrap();
        assert_eq!(
            spec.location,
            CacheLocation::Registry("127.0.0.1:5000/app:v1".into())
        );
        let spec = CacheImport::parse("app").unwrap();
        assert_eq!(
            spec.location,
            CacheLocation::Registry("docker.io/library/app:latest".into())
        );
    }
}
