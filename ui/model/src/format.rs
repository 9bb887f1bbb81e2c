//! Display formatting shared by the UIs.

/// Formats milliseconds the way build progress does: `0.4s`, `12.3s`,
/// `2m05s`.
pub fn duration_ms(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        let seconds = ms / 1000;
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

/// Formats a byte count with decimal units: `512B`, `1.5kB`, `2.3MB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if count < 1000 {
        return format!("{count}B");
    }
    let mut value = count as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms(400), "0.4s");
        assert_eq!(duration_ms(12_340), "12.3s");
        assert_eq!(duration_ms(125_000), "2m05s");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(1_500), "1.5kB");
        assert_eq!(bytes(2_300_000), "2.3MB");
    }
}
