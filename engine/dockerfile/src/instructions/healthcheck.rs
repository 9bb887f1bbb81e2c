//! HEALTHCHECK and Go-style durations (`30s`, `1m30s`, `1.5h`).

use super::flags::Flags;
use super::{CommandLine, InstructionError};
use strata_llb::image::Healthcheck;

const NANOS_PER_MILLI: i64 = 1_000_000;

/// Parses a Go duration (`300ms`, `1m30s`, `-1.5h`, `0`) into nanoseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

/// Builds the health config from the type word, the command and the flags.
pub(super) fn build(
    kind: &str,
    command: Option<CommandLine>,
    flags: &Flags,
    line: usize,
) -> Result<Healthcheck, InstructionError> {
    let kind = kind.to_ascii_uppercase();
    if kind == "NONE" {
        if command.is_some() {
            return Err(InstructionError::new(
                line,
                "HEALTHCHECK NONE takes no arguments",
            ));
        }
        return Ok(Healthcheck {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        });
    }
    if kind != "CMD" {
        return Err(InstructionError::new(
            line,
            format!("Unknown type \"{kind}\" in HEALTHCHECK (try CMD)"),
        ));
    }
    let test = match command {
        Some(CommandLine::Shell(text)) if !text.is_empty() => vec!["CMD-SHELL".into(), text],
        Some(CommandLine::Exec(args)) if !args.is_empty() => {
            std::iter::once("CMD".to_string()).chain(args).collect()
        }
        _ => {
            return Err(InstructionError::new(
                line,
                "Missing command after HEALTHCHECK CMD",
            ));
        }
    };
    let mut health = Healthcheck {
        test: Some(test),
        ..Default::default()
    };
    health.interval = interval(flags, "interval", line)?;
    health.timeout = interval(flags, "timeout", line)?;
    health.start_period = interval(flags, "start-period", line)?;
    health.start_interval = interval(flags, "start-interval", line)?;
    if let Some(text) = flags.string("retries") {
        let retries: i64 = text.parse().map_err(|_| {
            InstructionError::new(
                line,
                format!("Invalid `--retries` value `{text}`: expected an integer"),
            )
        })?;
        if retries < 0 {
            return Err(InstructionError::new(
                line,
                format!("--retries cannot be negative ({retries})"),
            ));
        }
        health.retries = Some(retries);
    }
    Ok(health)
}

/// Reads a duration flag: 0 means the runtime default, anything else must
/// be at least 1ms, as Docker requires.
fn interval(flags: &Flags, name: &str, line: usize) -> Result<Option<i64>, InstructionError> {
    let Some(text) = flags.string(name) else {
        return Ok(None);
    };
    let nanos = parse_duration(&text).ok_or_else(|| {
        InstructionError::new(
            line,
            format!("Invalid duration `{text}` for `--{name}`: write it like `30s` or `1m30s`"),
        )
    })?;
    if nanos == 0 {
        return Ok(None);
    }
    if nanos < 0 {
        return Err(InstructionError::new(
            line,
            format!("Interval \"{name}\" cannot be negative"),
        ));
    }
    if nanos < NANOS_PER_MILLI {
        return Err(InstructionError::new(
            line,
            format!("Interval \"{name}\" cannot be less than 1ms"),
        ));
    }
    Ok(Some(nanos))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("50ns"), Some(50));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("-2ms"), Some(-2_000_000));
    }

    #[test]
    fn durations_reject_bad_text() {
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(parse_duration(""), None);
    }
}
