//! `RUN --mount=...` specs, parsed with the rules of BuildKit's
//! `instructions/commands_runmount.go`: comma-separated `key=value` fields
//! (CSV quoting allowed), `type=bind` by default, and the bare words `ro`,
//! `rw` and `required`.

/// The filesystem a `RUN --mount` provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    fn parse(text: &str) -> Option<MountType> {
        Some(match text {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// One `--mount` flag after parsing and variable expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountType,
    /// Stage, image or (when `None`) the build context to read from.
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    /// Bind, secret and ssh mounts are read-only unless `rw` is given;
    /// cache and tmpfs mounts are writable unless `ro` is given.
    pub readonly: bool,
    /// Cache id, or secret and ssh id.
    pub id: Option<String>,
    /// `shared`, `private` or `locked`, for cache mounts.
    pub sharing: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Size limit of a tmpfs mount, in bytes.
    pub size: Option<u64>,
    /// Fail the step when the secret or ssh id is not provided.
    pub required: bool,
    /// Environment variable that receives a secret's value.
    pub env: Option<String>,
}

impl RunMount {
    fn new(kind: MountType) -> RunMount {
        RunMount {
            kind,
            from: None,
            source: None,
            target: None,
            readonly: false,
            id: None,
            sharing: None,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            required: false,
            env: None,
        }
    }
}

/// Parses one `--mount` value, passing every `key=value` value through
/// `expand` first (the stage's ARG and ENV expansion).
pub fn parse_mount(
    spec: &str,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<RunMount, String> {
    let fields = split_csv(spec)?;
    // The type decides how bare words and defaults are read, so find it first.
    let mut mount = RunMount::new(MountType::Bind);
    for field in &fields {
        if let Some((key, value)) = field.split_once('=')
            && key.eq_ignore_ascii_case("type")
        {
            let value = expand(value)?.to_ascii_lowercase();
            mount.kind = MountType::parse(&value).ok_or_else(|| {
                format!(
                    "Unsupported mount type `{value}` in `--mount={spec}`: use `bind`, `cache`, \
                     `tmpfs`, `secret` or `ssh`"
                )
            })?;
        }
    }

    let mut readonly = None;
    for field in &fields {
        match field.split_once('=') {
            None => read_bare_word(&mut mount, &mut readonly, field, &fields, spec)?,
            Some((key, value)) => {
                let value = expand(value)?;
                read_field(
                    &mut mount,
                    &mut readonly,
                    &key.to_ascii_lowercase(),
                    &value,
                    spec,
                )?;
            }
        }
    }
    mount.readonly = readonly.unwrap_or(!matches!(mount.kind, MountType::Cache | MountType::Tmpfs));
    check_fields(&mount, spec)?;
    Ok(mount)
}

fn read_bare_word(
    mount: &mut RunMount,
    readonly: &mut Option<bool>,
    field: &str,
    fields: &[String],
    spec: &str,
) -> Result<(), String> {
    match field.to_ascii_lowercase().as_str() {
        "readonly" | "ro" => *readonly = Some(true),
        "readwrite" | "rw" => *readonly = Some(false),
        "required" if matches!(mount.kind, MountType::Secret | MountType::Ssh) => {
            mount.required = true
        }
        "required" => {
            return Err(format!(
                "Unexpected key `required` for mount type `{}` in `--mount={spec}`: only \
                 secret and ssh mounts can be required",
                mount.kind.name()
            ));
        }
        // A lone word is the target, a form BuildKit still accepts.
        _ if fields.len() == 1 => mount.target = Some(field.to_string()),
        _ => {
            return Err(format!(
                "Invalid field `{field}` in `--mount={spec}`: it must be a `key=value` pair"
            ));
        }
    }
    Ok(())
}

fn read_field(
    mount: &mut RunMount,
    readonly: &mut Option<bool>,
    key: &str,
    value: &str,
    spec: &str,
) -> Result<(), String> {
    match key {
        "type" => {}
        "from" => mount.from = Some(value.to_string()),
        "source" | "src" => mount.source = Some(value.to_string()),
        "target" | "dst" | "destination" => mount.target = Some(value.to_string()),
        "readonly" | "ro" => *readonly = Some(parse_bool(key, value, spec)?),
        "readwrite" | "rw" => *readonly = Some(!parse_bool(key, value, spec)?),
        "required" if matches!(mount.kind, MountType::Secret | MountType::Ssh) => {
            mount.required = parse_bool(key, value, spec)?
        }
        "sharing" => {
            let lower = value.to_ascii_lowercase();
            if !["shared", "private", "locked"].contains(&lower.as_str()) {
                return Err(format!(
                    "Unsupported sharing value `{value}` in `--mount={spec}`: use `shared`, \
                     `private` or `locked`"
                ));
            }
            mount.sharing = Some(lower);
        }
        "mode" => {
            let mode = u32::from_str_radix(value, 8).map_err(|_| {
                format!("Invalid `mode` value `{value}` in `--mount={spec}`: expected octal bits such as `0644`")
            })?;
            mount.mode = Some(mode);
        }
        "uid" => mount.uid = Some(parse_id(key, value, spec)?),
        "gid" => mount.gid = Some(parse_id(key, value, spec)?),
        "id" => mount.id = Some(value.to_string()),
        "size" if mount.kind == MountType::Tmpfs => mount.size = Some(parse_size(value, spec)?),
        "env" if mount.kind == MountType::Secret => mount.env = Some(value.to_string()),
        _ => {
            return Err(format!(
                "Unexpected key `{key}` for mount type `{}` in `--mount={spec}`",
                mount.kind.name()
            ));
        }
    }
    Ok(())
}

/// Rejects combinations BuildKit rejects.
fn check_fields(mount: &RunMount, spec: &str) -> Result<(), String> {
    let owner_allowed = matches!(
        mount.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    for (name, given) in [
        ("mode", mount.mode.is_some()),
        ("uid", mount.uid.is_some()),
        ("gid", mount.gid.is_some()),
    ] {
        if given && !owner_allowed {
            return Err(format!(
                "`{name}` is not allowed for `{}` mounts in `--mount={spec}`: only cache, \
                 secret and ssh mounts take it",
                mount.kind.name()
            ));
        }
    }
    if mount.sharing.is_some() && mount.kind != MountType::Cache {
        return Err(format!(
            "`sharing` is only valid for cache mounts, not `{}`, in `--mount={spec}`",
            mount.kind.name()
        ));
    }
    if mount.kind == MountType::Secret {
        if mount.from.is_some() {
            return Err(format!(
                "A secret mount cannot have `from` in `--mount={spec}`: remove it"
            ));
        }
        if mount.source.is_none() && mount.target.is_none() && mount.id.is_none() {
            return Err(format!(
                "Invalid secret mount `--mount={spec}`: give `id` or `target`"
            ));
        }
        if mount.source.is_some() && mount.id.is_some() {
            return Err(format!(
                "Both `source` and `id` are set in `--mount={spec}`: give only `id`"
            ));
        }
    }
    let needs_target = !matches!(mount.kind, MountType::Secret | MountType::Ssh);
    if needs_target && mount.target.as_deref().unwrap_or("").is_empty() {
        return Err(format!(
            "Mount `--mount={spec}` has no target: add `target=PATH`"
        ));
    }
    Ok(())
}

fn parse_bool(key: &str, value: &str, spec: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!(
            "Invalid `{key}` value `{value}` in `--mount={spec}`: expected `true` or `false`"
        )),
    }
}

fn parse_id(key: &str, value: &str, spec: &str) -> Result<u32, String> {
    value.parse().map_err(|_| {
        format!("Invalid `{key}` value `{value}` in `--mount={spec}`: expected a number")
    })
}

/// Parses a size such as `64m`, `1g` or `1048576` with binary multiples,
/// as Docker's `units.RAMInBytes`.
fn parse_size(value: &str, spec: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "Invalid `size` value `{value}` in `--mount={spec}`: write bytes or a size such as `64m`"
        )
    };
    let lower = value.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let number: f64 = lower[..digits_end].parse().map_err(|_| invalid())?;
    let unit = lower[digits_end..].trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(invalid()),
    };
    Ok((number * multiplier as f64) as u64)
}

/// Splits one CSV record: commas separate fields, and double quotes may
/// wrap a field that contains commas (`""` is a literal quote).
fn split_csv(text: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(format!(
            "Unterminated quote in `--mount={text}`: close the `\"`"
        ));
    }
    fields.push(field);
    Ok(fields.into_iter().filter(|f| !f.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<RunMount, String> {
        parse_mount(spec, &|value| Ok(value.to_string()))
    }

    #[test]
    fn bind_is_default_and_readonly() {
        let mount = parse("target=/src,source=app").unwrap();
        assert_eq!(mount.kind, MountType::Bind);
        assert!(mount.readonly);
        assert_eq!(mount.source.as_deref(), Some("app"));
        assert!(!parse("target=/src,rw").unwrap().readonly);
    }

    #[test]
    fn cache_fields() {
        let mount =
            parse("type=cache,target=/c,id=x,sharing=Locked,mode=0700,uid=1000,gid=10").unwrap();
        assert_eq!(mount.kind, MountType::Cache);
        assert!(!mount.readonly);
        assert_eq!(mount.sharing.as_deref(), Some("locked"));
        assert_eq!(mount.mode, Some(0o700));
        assert_eq!((mount.uid, mount.gid), (Some(1000), Some(10)));
        assert!(parse("type=cache,target=/c,ro").unwrap().readonly);
    }

    #[test]
    fn secret_and_ssh_fields() {
        let secret = parse("type=secret,id=token,env=TOKEN,required").unwrap();
        assert_eq!(secret.env.as_deref(), Some("TOKEN"));
        assert!(secret.required);
        assert!(secret.readonly);
        let ssh = parse("type=ssh,required=true").unwrap();
        assert!(ssh.required);
    }

    #[test]
    fn tmpfs_size_units() {
        assert_eq!(
            parse("type=tmpfs,target=/t,size=64m").unwrap().size,
            Some(64 << 20)
        );
        assert_eq!(
            parse("type=tmpfs,target=/t,size=1024").unwrap().size,
            Some(1024)
        );
        assert!(parse("type=tmpfs,target=/t,size=lots").is_err());
    }

    #[test]
    fn quoted_fields() {
        let mount = parse("type=bind,\"source=a,b\",target=/x").unwrap();
        assert_eq!(mount.source.as_deref(), Some("a,b"));
    }

    #[test]
    fn rejected_specs() {
        for (spec, expected) in [
            ("type=nfs,target=/x", "Unsupported mount type `nfs`"),
            ("type=bind,target=/x,mode=0644", "`mode` is not allowed"),
            (
                "type=bind,target=/x,sharing=locked",
                "`sharing` is only valid",
            ),
            (
                "type=cache,target=/x,sharing=sometimes",
                "Unsupported sharing value",
            ),
            ("type=secret,from=base,id=a", "cannot have `from`"),
            ("type=secret,source=a,id=a", "Both `source` and `id`"),
            ("type=secret,ro", "give `id` or `target`"),
            ("type=cache,id=a", "has no target"),
            ("type=bind,target=/x,required", "Unexpected key `required`"),
            ("type=bind,target=/x,color=red", "Unexpected key `color`"),
            ("type=cache,target=/x,uid=me", "Invalid `uid` value `me`"),
            ("target=/x,mode", "Invalid field `mode`"),
            ("type=bind,\"target=/x", "Unterminated quote"),
        ] {
            let error = parse(spec).unwrap_err();
            assert!(error.contains(expected), "{spec}: {error}");
        }
    }
}
