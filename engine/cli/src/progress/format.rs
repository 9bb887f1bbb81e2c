//! Text helpers shared by the renderers: sizes, progress amounts and
//! fitting lines to a terminal's width.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::state::TaskProgress;

/// Formats a byte count with decimal units and at most four significant
/// digits, as Docker does: `512B`, `2.3MB`, `1.024GB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant_digits(value, 4), UNITS[unit])
}

/// Formats `value` with at most `digits` significant digits and no trailing
/// zeros.
fn significant_digits(value: f64, digits: usize) -> String {
    let integer_digits = if value < 1.0 {
        1
    } else {
        value.log10().floor() as usize + 1
    };
    let decimals = digits.saturating_sub(integer_digits);
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn is_byte_unit(unit: &str) -> bool {
    matches!(unit, "B" | "byte" | "bytes")
}

/// Formats how far a task got: `2.3MB`, `2.3MB / 10MB` or `3/10 files`.
pub(crate) fn task_amount(task: &TaskProgress) -> String {
    if is_byte_unit(&task.unit) {
        return match task.total {
            Some(total) if total != task.current => {
                format!("{} / {}", human_size(task.current), human_size(total))
            }
            _ => human_size(task.current),
        };
    }
    let count = match task.total {
        Some(total) => format!("{}/{}", task.current, total),
        None => task.current.to_string(),
    };
    if task.unit.is_empty() {
        count
    } else {
        format!("{count} {}", task.unit)
    }
}

/// Formats a task's label as `id:` so that `transferring context` and
/// `transferring context:` print alike.
pub(crate) fn task_label(task: &TaskProgress) -> String {
    if let Some(label) = &task.label {
        return label.clone();
    }
    if task.id.ends_with(':') {
        task.id.clone()
    } else {
        format!("{}:", task.id)
    }
}

/// Draws `current` of `total` as a bar of `width` cells: `[=====>    ]`.
pub(crate) fn bar(current: u64, total: u64, width: usize) -> String {
    let filled = match total {
        0 => width,
        _ => (current.min(total) as u128 * width as u128 / total as u128) as usize,
    };
    let mut cells = "=".repeat(filled);
    if filled < width {
        cells.push('>');
        cells.push_str(&" ".repeat(width - filled - 1));
    }
    format!("[{cells}]")
}

/// Makes log text safe to print in a fixed-width line: expands tabs, and
/// drops ANSI escape sequences and other control characters, which would
/// move the cursor or change colours in the middle of a redraw.
pub(crate) fn sanitize(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => clean.push_str("    "),
            '\u{1b}' => {
                // A CSI sequence ends at its first byte in `@`..=`~`.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for next in chars.by_ref() {
                        if ('@'..='~').contains(&next) {
                            break;
                        }
                    }
                }
            }
            c if c.is_control() => {}
            c => clean.push(c),
        }
    }
    clean
}

/// Cuts `text` to at most `width` terminal columns, ending a cut text with
/// `…`.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        let char_width = c.width().unwrap_or(0);
        if used + char_width > width - 1 {
            break;
        }
        cut.push(c);
        used += char_width;
    }
    cut.push('…');
    cut
}

/// Lays out `left` and `right` on one line of exactly `width` columns,
/// cutting `left` when both do not fit.
pub(crate) fn align(left: &str, right: &str, width: usize) -> String {
    let right_width = right.width();
    if right_width + 1 >= width {
        return truncate(left, width);
    }
    let left = truncate(left, width - right_width - 1);
    let padding = width - right_width - left.width();
    format!("{left}{:padding$}{right}", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_uses_four_significant_digits() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2_300_000), "2.3MB");
        assert_eq!(human_size(1_024_000_000), "1.024GB");
        assert_eq!(human_size(123_456), "123.5kB");
    }

    #[test]
    fn sanitize_drops_escapes_and_expands_tabs() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m\tx\r"), "red    x");
    }

    #[test]
    fn bar_fills_in_proportion() {
        assert_eq!(bar(0, 100, 10), "[>         ]");
        assert_eq!(bar(50, 100, 10), "[=====>    ]");
        assert_eq!(bar(100, 100, 10), "[==========]");
        assert_eq!(bar(0, 0, 4), "[====]");
    }

    #[test]
    fn truncate_marks_cut_text() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("日本語", 4), "日…");
    }

    #[test]
    fn align_pads_to_width() {
        assert_eq!(align("left", "1.0s", 12), "left    1.0s");
        assert_eq!(align("a long name", "1.0s", 12), "a long… 1.0s");
    }
}
