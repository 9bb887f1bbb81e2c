//! Splitting one joined instruction line into keyword, flags and argument
//! nodes, per instruction, as BuildKit's `line_parsers.go` does.

use crate::ast::Node;

/// Whitespace that separates words in whitespace-delimited instructions
/// (`[\t\v\f\r ]+` in BuildKit).
fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// The argument part of a node, before line numbers are known.
#[derive(Default)]
pub(crate) struct Arguments {
    pub args: Vec<String>,
    pub next: Option<Box<Node>>,
    pub json: bool,
}

/// Builds the node for one joined instruction line. Line numbers and
/// heredocs are filled in by the caller.
pub(crate) fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    let (keyword, flags, rest) = split_command(line, escape);
    let arguments = match keyword.as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(&rest)?,
        "arg" => words_node(parse_words(&rest, escape)),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(&rest)?,
        "env" => parse_name_value(&rest, "ENV", escape)?,
        "label" => parse_name_value(&rest, "LABEL", escape)?,
        "expose" | "from" => words_node(split_whitespace(&rest)),
        "healthcheck" => parse_health_config(&rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => string_node(&rest),
        "onbuild" => parse_sub_command(&rest, escape)?,
        // BuildKit keeps unknown instructions with one empty argument and
        // rejects them when building typed instructions.
        _ => words_node(vec![String::new()]),
    };
    Ok(Node {
        keyword,
        flags,
        args: arguments.args,
        next: arguments.next,
        json: arguments.json,
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        heredocs: Vec::new(),
    })
}

/// Splits `line` into the lowercased keyword, the leading `--flag` words and
/// the trimmed rest.
fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let line = line.trim();
    let (keyword, rest) = match line.find(is_separator) {
        Some(at) => (
            &line[..at],
            Some(line[at..].trim_start_matches(is_separator)),
        ),
        None => (line, None),
    };
    let (flags, rest) = match rest {
        Some(rest) => extract_builder_flags(rest, escape),
        None => (Vec::new(), ""),
    };
    (keyword.to_lowercase(), flags, rest.trim().to_string())
}

/// Reads the `--flag` words at the start of `line`; returns them with
/// quotes removed and escapes applied, and the text after them.
fn extract_builder_flags(line: &str, escape: char) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            return (flags, "");
        };
        if !line[start..].starts_with("--") {
            return (flags, &line[start..]);
        }

        let mut word = String::new();
        let mut quoted = false;
        let mut quote: Option<char> = None;
        let mut ended_at_space = None;
        while let Some((at, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    ended_at_space = Some(at);
                    break;
                }
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    quoted = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == escape => match chars.next() {
                    Some((_, escaped)) => word.push(escaped),
                    None => quote = None,
                },
                _ => word.push(c),
            }
        }

        if word == "--" {
            let rest = ended_at_space.map_or("", |at| &line[at..]);
            return (flags, rest.trim_start());
        }
        if quoted || !word.is_empty() {
            flags.push(word);
        }
        if ended_at_space.is_none() {
            return (flags, "");
        }
    }
}

fn words_node(args: Vec<String>) -> Arguments {
    Arguments {
        args,
        ..Arguments::default()
    }
}

fn string_node(rest: &str) -> Arguments {
    if rest.is_empty() {
        return Arguments::default();
    }
    words_node(vec![rest.to_string()])
}

fn split_whitespace(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_separator)
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

const NOT_STRING_ARRAY: &str = "When using JSON array syntax, arrays must be comprised of strings \
only; quote every element, as in `[\"echo\", \"hello\"]`";

/// Parses `rest` as a JSON array of strings. `Ok(None)` means it is not JSON
/// (shell form); an array with a non-string element is an error.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    let mut strings = Vec::with_capacity(values.len());
    for value in values {
        match value {
            serde_json::Value::String(s) => strings.push(s),
            _ => return Err(NOT_STRING_ARRAY.to_string()),
        }
    }
    Ok(Some(strings))
}

fn parse_maybe_json(rest: &str) -> Result<Arguments, String> {
    if rest.is_empty() {
        return Ok(Arguments::default());
    }
    Ok(match parse_json(rest)? {
        Some(args) => Arguments {
            args,
            next: None,
            json: true,
        },
        None => string_node(rest),
    })
}

fn parse_maybe_json_to_list(rest: &str) -> Result<Arguments, String> {
    Ok(match parse_json(rest)? {
        Some(args) => Arguments {
            args,
            next: None,
            json: true,
        },
        None => words_node(split_whitespace(rest)),
    })
}

/// Parses ENV and LABEL into (key, value, separator) triples: the legacy
/// `KEY name the rest` form gives one triple with an empty separator.
fn parse_name_value(rest: &str, instruction: &str, escape: char) -> Result<Arguments, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Arguments::default());
    };

    if !first.contains('=') {
        let Some(at) = rest.find(is_separator) else {
            return Err(format!(
                "{instruction} must have two arguments; write `{instruction} {rest}=value`"
            ));
        };
        let value = rest[at..].trim_start_matches(is_separator);
        return Ok(words_node(vec![
            rest[..at].to_string(),
            value.to_string(),
            String::new(),
        ]));
    }

    let mut args = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error: can't find `=` in `{word}`; {instruction} takes name=value pairs"
            ));
        };
        args.extend([key.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(words_node(args))
}

/// Splits on unquoted whitespace, keeping quotes and escape characters in
/// the words (`abc="1 2" d` gives `abc="1 2"` and `d`).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();

    while let Some(c) = chars.next() {
        let Some(q) = quote else {
            if c.is_whitespace() {
                if in_word && (blank_ok || !word.is_empty()) {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                in_word = false;
                blank_ok = false;
                continue;
            }
            in_word = true;
            if c == '\'' || c == '"' {
                quote = Some(c);
                blank_ok = true;
            }
            if c == escape {
                // An escape at the very end of the text is dropped.
                let Some(next) = chars.next() else { continue };
                word.push(c);
                word.push(next);
                continue;
            }
            word.push(c);
            continue;
        };

        if c == q {
            quote = None;
        }
        if c == escape && q != '\'' {
            let Some(next) = chars.next() else {
                quote = None;
                continue;
            };
            word.push(c);
            word.push(next);
            continue;
        }
        word.push(c);
    }

    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Parses HEALTHCHECK: the type word, then the rest like CMD.
fn parse_health_config(rest: &str) -> Result<Arguments, String> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r');
    let separator = rest.find(is_space).unwrap_or(rest.len());
    if separator == 0 {
        return Ok(Arguments::default());
    }
    let command = rest[separator..].trim_start_matches(is_space);
    let mut arguments = parse_maybe_json(command)?;
    arguments.args.insert(0, rest[..separator].to_string());
    Ok(arguments)
}

/// Parses ONBUILD's trigger as a full instruction and nests it.
fn parse_sub_command(rest: &str, escape: char) -> Result<Arguments, String> {
    if rest.is_empty() {
        return Ok(Arguments::default());
    }
    let child = node_from_line(rest, escape)?;
    Ok(Arguments {
        next: Some(Box::new(child)),
        ..Arguments::default()
    })
}
