//! The `--output` specification, such as
//! `type=docker,dest=out.tar,name=hello:latest`, and image names.

use std::fmt;
use std::path::PathBuf;

/// The kind of output an export writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// A `docker save` tarball for `docker load`.
    Docker,
    /// An OCI image layout tarball.
    Oci,
    /// The root filesystem, copied into a directory.
    Local,
    /// The root filesystem as a plain tar.
    Tar,
    /// An image in the local store, under `name`.
    Image,
}

const KINDS: &[(&str, OutputKind)] = &[
    ("docker", OutputKind::Docker),
    ("oci", OutputKind::Oci),
    ("local", OutputKind::Local),
    ("tar", OutputKind::Tar),
    ("image", OutputKind::Image),
];

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, kind)| *kind == self)
            .map(|(name, _)| *name)
            .unwrap_or("?")
    }

    /// Returns the keys this type accepts besides `type`.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            OutputKind::Docker | OutputKind::Oci => &[
                "dest",
                "name",
                "compression",
                "compression-level",
                "force-compression",
                "rewrite-timestamp",
            ],
            OutputKind::Local => &["dest"],
            OutputKind::Tar => &["dest", "rewrite-timestamp"],
            OutputKind::Image => &[
                "name",
                "push",
                "registry.insecure",
                "compression",
                "compression-level",
                "force-compression",
                "rewrite-timestamp",
            ],
        }
    }
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The destination of an archive or directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// `dest=-`: standard output.
    Stdout,
    Path(PathBuf),
}

/// A parsed `--output` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    pub kind: OutputKind,
    /// Set for every type except `image`.
    pub dest: Option<Dest>,
    /// The image name, normalised (`hello` becomes `docker.io/library/hello:latest`).
    pub name: Option<String>,
    /// `push=true`: push the image to the registry its name starts with.
    pub push: bool,
    /// `registry.insecure=true`: push over plain HTTP (loopback hosts only).
    pub insecure: bool,
    /// `compression=gzip|zstd|uncompressed`; `None` keeps gzip.
    pub compression: Option<Compression>,
    /// `compression-level=N`: gzip 0-9, zstd 1-22.
    pub compression_level: Option<i32>,
    /// `force-compression=true`: recompress layers stored with another
    /// compression instead of reusing them.
    pub force_compression: bool,
    /// `rewrite-timestamp=true`: clamp file mtimes in every layer, base
    /// layers included, to `SOURCE_DATE_EPOCH`.
    pub rewrite_timestamp: bool,
}

/// A layer compression algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    Uncompressed,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Uncompressed => "uncompressed",
        }
    }

    /// Returns the OCI layer media type of this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Uncompressed => "application/vnd.oci.image.layer.v1.tar",
        }
    }

    /// Returns the compression a layer media type names.
    pub fn of_media_type(media_type: &str) -> Compression {
        if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Compression::Zstd
        } else if media_type.ends_with("gzip") {
            Compression::Gzip
        } else {
            Compression::Uncompressed
        }
    }

    /// Checks `level` against this algorithm's range.
    pub fn check_level(self, level: i32) -> Result<(), OutputSpecError> {
        let (low, high) = match self {
            Compression::Gzip => (0, 9),
            Compression::Zstd => (1, 22),
            Compression::Uncompressed => (0, 0),
        };
        if level < low || level > high {
            return Err(OutputSpecError::InvalidValue {
                key: "compression-level".into(),
                value: level.to_string(),
                expected: format!("{low} to {high} for `{}`", self.as_str()),
            });
        }
        Ok(())
    }
}

impl fmt::Display for OutputSpec {
    /// Writes the spec back in `--output` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "type={}", self.kind)?;
        match &self.dest {
            Some(Dest::Stdout) => write!(f, ",dest=-")?,
            Some(Dest::Path(path)) => write!(f, ",dest={}", path.display())?,
            None => {}
        }
        if let Some(name) = &self.name {
            write!(f, ",name={name}")?;
        }
        if self.push {
            write!(f, ",push=true")?;
        }
        if self.insecure {
            write!(f, ",registry.insecure=true")?;
        }
        if let Some(compression) = self.compression {
            write!(f, ",compression={}", compression.as_str())?;
        }
        if let Some(level) = self.compression_level {
            write!(f, ",compression-level={level}")?;
        }
        if self.force_compression {
            write!(f, ",force-compression=true")?;
        }
        if self.rewrite_timestamp {
            write!(f, ",rewrite-timestamp=true")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutputSpecError {
    #[error("Invalid output entry `{0}`: expected `key=value`, such as `type=docker`")]
    NotKeyValue(String),
    #[error("Output key `{0}` is given twice: give it once")]
    Duplicate(String),
    #[error("Output key `{0}` has an empty value: give a value or drop the key")]
    Empty(String),
    #[error("Missing output `type`: add one of {}", list(&type_names()))]
    MissingType,
    #[error("Unknown output type `{0}`: valid types are {types}", types = list(&type_names()))]
    UnknownType(String),
    #[error("Unknown output key `{key}` for type `{kind}`: valid keys are {}", list(kind.keys()))]
    UnknownKey { key: String, kind: OutputKind },
    #[error("Output type `{0}` needs `dest`: add `dest=PATH`, or `dest=-` for stdout")]
    MissingDest(OutputKind),
    #[error("Output type `local` cannot write to stdout: give a directory as `dest`")]
    LocalToStdout,
    #[error("Output type `image` needs `name`: add `name=NAME[:TAG]`")]
    MissingName,
    #[error("Invalid image name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("Invalid value `{value}` for output key `{key}`: expected {expected}")]
    InvalidValue {
        key: String,
        value: String,
        expected: String,
    },
}

fn type_names() -> Vec<&'static str> {
    KINDS.iter().map(|(name, _)| *name).collect()
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl OutputSpec {
    /// Parses `key=value` pairs separated by commas. A value without `=`
    /// is a shorthand, as in `docker buildx build -o`: `-` writes a tar
    /// of the root filesystem to stdout, anything else is a `local` dest.
    pub fn parse(text: &str) -> Result<OutputSpec, OutputSpecError> {
        if !text.contains('=') && !text.is_empty() {
            return Ok(if text == "-" {
                OutputSpec::new(OutputKind::Tar, Some(Dest::Stdout))
            } else {
                OutputSpec::new(OutputKind::Local, Some(Dest::Path(PathBuf::from(text))))
            });
        }

        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for entry in text.split(',') {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| OutputSpecError::NotKeyValue(entry.into()))?;
            let key = key.trim();
            if pairs.iter().any(|(seen, _)| *seen == key) {
                return Err(OutputSpecError::Duplicate(key.into()));
            }
            if value.is_empty() {
                return Err(OutputSpecError::Empty(key.into()));
            }
            pairs.push((key, value));
        }

        let kind_name = pairs
            .iter()
            .find(|(k, _)| *k == "type")
            .map(|(_, v)| *v)
            .ok_or(OutputSpecError::MissingType)?;
        let kind = KINDS
            .iter()
            .find(|(name, _)| *name == kind_name)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| OutputSpecError::UnknownType(kind_name.into()))?;

        let mut spec = OutputSpec::new(kind, None);
        for (key, value) in pairs {
            match key {
                "type" => {}
                _ if !kind.keys().contains(&key) => {
                    return Err(OutputSpecError::UnknownKey {
                        key: key.into(),
                        kind,
                    });
                }
                "dest" if value == "-" => spec.dest = Some(Dest::Stdout),
                "dest" => spec.dest = Some(Dest::Path(PathBuf::from(value))),
                "name" => spec.name = Some(normalize_name(value)?),
                "push" => spec.push = parse_bool(key, value)?,
                "registry.insecure" => spec.insecure = parse_bool(key, value)?,
                "force-compression" => spec.force_compression = parse_bool(key, value)?,
                "rewrite-timestamp" => spec.rewrite_timestamp = parse_bool(key, value)?,
                "compression" => spec.compression = Some(parse_compression(value)?),
                "compression-level" => {
                    spec.compression_level =
                        Some(value.parse().map_err(|_| OutputSpecError::InvalidValue {
                            key: key.into(),
                            value: value.into(),
                            expected: "a whole number".into(),
                        })?)
                }
                _ => unreachable!("every key of `OutputKind::keys` is handled"),
            }
        }
        spec.check_required()?;
        Ok(spec)
    }

    /// Returns a spec of `kind` with every option at its default.
    pub fn new(kind: OutputKind, dest: Option<Dest>) -> OutputSpec {
        OutputSpec {
            kind,
            dest,
            name: None,
            push: false,
            insecure: false,
            compression: None,
            compression_level: None,
            force_compression: false,
            rewrite_timestamp: false,
        }
    }

    fn check_required(&self) -> Result<(), OutputSpecError> {
        if let Some(level) = self.compression_level {
            self.compression.unwrap_or_default().check_level(level)?;
        }
        match (self.kind, &self.dest) {
            (OutputKind::Image, _) if self.name.is_none() => Err(OutputSpecError::MissingName),
            (OutputKind::Image, _) => Ok(()),
            (OutputKind::Local, Some(Dest::Stdout)) => Err(OutputSpecError::LocalToStdout),
            (kind, None) => Err(OutputSpecError::MissingDest(kind)),
            _ => Ok(()),
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, OutputSpecError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(OutputSpecError::InvalidValue {
            key: key.into(),
            value: value.into(),
            expected: "`true` or `false`".into(),
        }),
    }
}

fn parse_compression(value: &str) -> Result<Compression, OutputSpecError> {
    match value {
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        "uncompressed" => Ok(Compression::Uncompressed),
        _ => Err(OutputSpecError::InvalidValue {
            key: "compression".into(),
            value: value.into(),
            expected: "`gzip`, `zstd` or `uncompressed`".into(),
        }),
    }
}

/// Expands a Docker image name to its full form: `hello` becomes
/// `docker.io/library/hello:latest`, `ghcr.io/a/b` becomes
/// `ghcr.io/a/b:latest`.
pub fn normalize_name(name: &str) -> Result<String, OutputSpecError> {
    let invalid = |reason: &str| OutputSpecError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.contains('@') {
        return Err(invalid(
            "a digest cannot be a name to export under, give a tag instead",
        ));
    }

    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], &name[last_slash + i + 1..]),
        None => (name, "latest"),
    };
    if !valid_tag(tag) {
        return Err(invalid(
            "a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`",
        ));
    }

    let mut components: Vec<&str> = repository.split('/').collect();
    let first = components[0];
    let has_domain = components.len() > 1
        && (first.contains('.') || first.contains(':') || first == "localhost");
    let domain = if has_domain {
        components.remove(0)
    } else {
        "docker.io"
    };
    if domain.is_empty() {
        return Err(invalid("the registry host is empty"));
    }
    if domain == "docker.io" && components.len() == 1 {
        components.insert(0, "library");
    }
    if let Some(bad) = components.iter().find(|c| !valid_path_component(c)) {
        let reason = format!(
            "path component `{bad}` must be lowercase letters and digits, separated by `.`, `_` or `-`"
        );
        return Err(invalid(&reason));
    }
    Ok(format!("{domain}/{}:{tag}", components.join("/")))
}

/// Returns the tag of a normalised name.
pub fn tag_of(full_name: &str) -> &str {
    let last_slash = full_name.rfind('/').map_or(0, |i| i + 1);
    full_name[last_slash..]
        .rsplit_once(':')
        .map_or("latest", |(_, tag)| tag)
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_docker_spec() {
        let spec = OutputSpec::parse("type=docker,dest=out.tar,name=hello:v1").unwrap();
        assert_eq!(spec.kind, OutputKind::Docker);
        assert_eq!(spec.dest, Some(Dest::Path("out.tar".into())));
        assert_eq!(spec.name.as_deref(), Some("docker.io/library/hello:v1"));
    }

    #[test]
    fn parse_stdout_and_shorthands() {
        let spec = OutputSpec::parse("type=oci,dest=-").unwrap();
        assert_eq!(spec.dest, Some(Dest::Stdout));
        assert_eq!(OutputSpec::parse("-").unwrap().kind, OutputKind::Tar);
        let local = OutputSpec::parse("out/rootfs").unwrap();
        assert_eq!(local.kind, OutputKind::Local);
        assert_eq!(local.dest, Some(Dest::Path("out/rootfs".into())));
    }

    #[test]
    fn parse_image_needs_name() {
        let spec = OutputSpec::parse("type=image,name=ghcr.io/org/app").unwrap();
        assert_eq!(spec.name.as_deref(), Some("ghcr.io/org/app:latest"));
        assert_eq!(spec.dest, None);
        assert_eq!(
            OutputSpec::parse("type=image").unwrap_err(),
            OutputSpecError::MissingName
        );
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let cases = [
            (
                "type=zip,dest=a",
                "Unknown output type `zip`: valid types are `docker`, `oci`, `local`, `tar`, `image`",
            ),
            (
                "type=local,dest=a,name=x",
                "Unknown output key `name` for type `local`: valid keys are `dest`",
            ),
            (
                "type=local,compression=zstd,dest=a",
                "Unknown output key `compression` for type `local`: valid keys are `dest`",
            ),
            (
                "type=image,name=a,push=yes",
                "Invalid value `yes` for output key `push`: expected `true` or `false`",
            ),
            (
                "type=oci,dest=a,compression=lz4",
                "Invalid value `lz4` for output key `compression`: expected `gzip`, `zstd` or `uncompressed`",
            ),
            (
                "type=oci,dest=a,compression=zstd,compression-level=23",
                "Invalid value `23` for output key `compression-level`: expected 1 to 22 for `zstd`",
            ),
            (
                "type=oci,dest=a,compression-level=x",
                "Invalid value `x` for output key `compression-level`: expected a whole number",
            ),
            (
                "type=docker",
                "Output type `docker` needs `dest`: add `dest=PATH`, or `dest=-` for stdout",
            ),
            (
                "dest=a.tar,name=x",
                "Missing output `type`: add one of `docker`, `oci`, `local`, `tar`, `image`",
            ),
            (
                "type=tar,dest=a,dest=b",
                "Output key `dest` is given twice: give it once",
            ),
            (
                "type=tar,dest=",
                "Output key `dest` has an empty value: give a value or drop the key",
            ),
            (
                "type=tar,x",
                "Invalid output entry `x`: expected `key=value`, such as `type=docker`",
            ),
            (
                "type=local,dest=-",
                "Output type `local` cannot write to stdout: give a directory as `dest`",
            ),
        ];
        for (text, message) in cases {
            let error = OutputSpec::parse(text).unwrap_err();
            assert_eq!(error.to_string(), message, "spec `{text}`");
        }
    }

    #[test]
    fn parse_registry_and_compression_options() {
        let text = "type=image,name=127.0.0.1:5000/app:v1,push=true,registry.insecure=true,compression=zstd,compression-level=19,force-compression=true,rewrite-timestamp=true";
        let spec = OutputSpec::parse(text).unwrap();
        assert!(spec.push);
        assert!(spec.insecure);
        assert_eq!(spec.compression, Some(Compression::Zstd));
        assert_eq!(spec.compression_level, Some(19));
        assert!(spec.force_compression);
        assert!(spec.rewrite_timestamp);
        assert_eq!(spec.to_string(), text);
    }

    #[test]
    fn normalize_names() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("user/app:1.0", "docker.io/user/app:1.0"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost/app:dev", "localhost/app:dev"),
            ("ghcr.io/org/team/app:v2", "ghcr.io/org/team/app:v2"),
        ];
        for (name, full) in cases {
            assert_eq!(normalize_name(name).unwrap(), full, "name `{name}`");
        }
        assert_eq!(tag_of("localhost:5000/app:dev"), "dev");
        assert!(normalize_name("Hello").is_err());
        assert!(normalize_name("app@sha256:00").is_err());
        assert!(normalize_name("app:-x").is_err());
        assert!(normalize_name("a//b").is_err());
    }
}
