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
    match pairs
        .iter()
        .find(|(k, _)| *k == "registry.insecure")
        .map(|(_, v)| *v)
    {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!(
            "Invalid `{flag}` value `{text}`: `registry.insecure` is `{other}`, expected `true` or `false`"
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
            &["type", "dest", "ref", "mode", "registry.insecure"],
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
        Ok(CacheExport {
            location: location(flag, text, &pairs, "dest")?,
            mode,
            insecure: insecure(flag, text, &pairs)?,
        })
    }
}

impl CacheImport {
    pub fn parse(text: &str) -> Result<CacheImport, String> {
        let flag = "--cache-from";
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
}
