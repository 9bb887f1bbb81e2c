//! `--filter` expressions for `du` and `prune`, and the size and duration
//! syntax of their options.

use crate::Result;
use crate::usage::{CacheRecord, kind_type_name};
use anyhow::{anyhow, bail};
use std::time::Duration;

/// One `KEY OP VALUE` filter. Filters with the same key match when any of
/// them does; filters with different keys must all match, as in Docker.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub key: FilterKey,
    pub negate: bool,
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterKey {
    /// `type==regular`: the record type as `du` prints it.
    Type,
    /// `id==ID` or `id~=PREFIX`.
    Id,
    IdPrefix,
    /// `until=24h`: unused for at least this long.
    Until,
    /// `inuse` or `inuse=false`.
    InUse,
    /// `pinned` or `pinned=false`.
    Pinned,
}

const RECORD_TYPES: [&str; 5] = ["regular", "source.local", "exec.cachemount", "layer", "git"];

/// Parses `type==regular`, `type!=layer`, `id~=3fa2`, `until=24h`,
/// `inuse`, `pinned=false` and the like.
pub fn parse_filter(text: &str) -> Result<Filter> {
    let invalid = |why: &str| anyhow!("Invalid filter `{text}`: {why}");
    let (key, negate, value) = if let Some((key, value)) = text.split_once("!=") {
        (key, true, value)
    } else if let Some((key, value)) = text.split_once("~=") {
        (key, false, value)
    } else if let Some((key, value)) = text.split_once("==") {
        (key, false, value)
    } else if let Some((key, value)) = text.split_once('=') {
        (key, false, value)
    } else {
        (text, false, "true")
    };
    let key = match (key.trim(), text.contains("~=")) {
        ("id", true) => FilterKey::IdPrefix,
        (_, true) => return Err(invalid("`~=` works with `id` only")),
        ("type", _) => FilterKey::Type,
        ("id", _) => FilterKey::Id,
        ("until", _) => FilterKey::Until,
        ("inuse", _) => FilterKey::InUse,
        ("pinned", _) => FilterKey::Pinned,
        (other, _) => {
            return Err(invalid(&format!(
                "unknown key `{other}`; expected `type`, `id`, `until`, `inuse` or `pinned`"
            )));
        }
    };
    let value = value.trim().to_string();
    match key {
        FilterKey::Type if !RECORD_TYPES.contains(&value.as_str()) => {
            return Err(invalid(&format!(
                "unknown type `{value}`; expected one of {}",
                RECORD_TYPES.join(", ")
            )));
        }
        FilterKey::Until => {
            parse_duration(&value).map_err(|e| invalid(&format!("{e:#}")))?;
        }
        FilterKey::InUse | FilterKey::Pinned if value != "true" && value != "false" => {
            return Err(invalid("expected `true` or `false`"));
        }
        FilterKey::Id | FilterKey::IdPrefix if value.is_empty() => {
            return Err(invalid("the id is empty"));
        }
        _ => {}
    }
    Ok(Filter { key, negate, value })
}

impl Filter {
    fn matches(&self, record: &CacheRecord, now: chrono::DateTime<chrono::Utc>) -> bool {
        let hit = match self.key {
            FilterKey::Type => kind_type_name(record.kind) == self.value,
            FilterKey::Id => record.id == self.value,
            FilterKey::IdPrefix => record.id.starts_with(&self.value),
            FilterKey::Until => {
                let until = parse_duration(&self.value).unwrap_or_default();
                let age = now.signed_duration_since(record.last_used);
                age.to_std().is_ok_and(|age| age >= until)
            }
            FilterKey::InUse => record.in_use.is_some() == (self.value == "true"),
            FilterKey::Pinned => record.pinned == (self.value == "true"),
        };
        hit != self.negate
    }
}

/// Whether `record` passes the filters: any filter per key, every key.
pub fn matches_all(
    filters: &[Filter],
    record: &CacheRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let mut keys: Vec<FilterKey> = Vec::new();
    for filter in filters {
        if !keys.contains(&filter.key) {
            keys.push(filter.key);
        }
    }
    keys.iter().all(|key| {
        filters
            .iter()
            .filter(|f| f.key == *key)
            .any(|f| f.matches(record, now))
    })
}

/// Parses a size such as `10GB`, `512MiB`, `1.5G` or `1048576` (bytes).
/// Decimal units are powers of 1000 and binary units powers of 1024.
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let invalid = || {
        anyhow!(
            "Invalid size `{text}`: expected a number with an optional unit, such as `10GB` or `512MiB`"
        )
    };
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000u64.pow(2),
        "g" | "gb" => 1000u64.pow(3),
        "t" | "tb" => 1000u64.pow(4),
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => return Err(invalid()),
    };
    if !number.is_finite() || number < 0.0 {
        return Err(invalid());
    }
    Ok((number * multiplier as f64) as u64)
}

/// Parses a duration such as `48h`, `30m`, `1h30m`, `7d` or `90s`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let invalid = || {
        anyhow!(
            "Invalid duration `{text}`: expected numbers with units `d`, `h`, `m` or `s`, such as `48h` or `1h30m`"
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0u64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "d" => 86_400,
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            _ => return Err(invalid()),
        };
        total = value
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(invalid)?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs(total))
}

/// Parses `--min-free-space`: a size or a percentage such as `10%`.
pub fn parse_free_space(text: &str) -> Result<crate::gc::FreeSpace> {
    if let Some(number) = text.trim().strip_suffix('%') {
        let pct: f64 = number
            .trim()
            .parse()
            .map_err(|_| anyhow!("Invalid percentage `{text}`: expected a number such as `10%`"))?;
        if !(0.0..=100.0).contains(&pct) {
            bail!("Invalid percentage `{text}`: expected 0% to 100%");
        }
        return Ok(crate::gc::FreeSpace::Percent(pct));
    }
    Ok(crate::gc::FreeSpace::Bytes(parse_size(text)?))
}
