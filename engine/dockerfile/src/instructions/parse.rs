//! From one [`Node`] to an [`Instruction`], with BuildKit's argument
//! checks and messages.

use super::flags::{FlagKind, Flags};
use super::healthcheck;
use super::*;
use crate::ast::Node;
use FlagKind::{Bool, List, String as Str};

/// Builds the typed instruction for `node`.
pub fn parse(node: &Node) -> Result<Instruction, InstructionError> {
    let line = node.start_line;
    let keyword = node.keyword.as_str();
    let allowed = allowed_flags(keyword).ok_or_else(|| unknown_instruction(node))?;
    let flags = Flags::parse(keyword, &node.flags, allowed, line)?;
    let args = &node.args;
    let upper = keyword.to_ascii_uppercase();
    let exactly_one = || -> Result<String, InstructionError> {
        match args.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(InstructionError::new(
                line,
                format!("{upper} requires exactly one argument"),
            )),
        }
    };
    let at_least_one = || -> Result<(), InstructionError> {
        if args.is_empty() {
            return Err(InstructionError::new(
                line,
                format!("{upper} requires at least one argument"),
            ));
        }
        Ok(())
    };

    Ok(match keyword {
        "from" => Instruction::From(parse_from(args, &flags, line)?),
        "arg" => {
            at_least_one()?;
            Instruction::Arg(args.iter().map(|word| parse_arg_word(word)).collect())
        }
        "env" | "label" => {
            at_least_one()?;
            let pairs = parse_key_values(&upper, args, line)?;
            if keyword == "env" {
                Instruction::Env(pairs)
            } else {
                Instruction::Label(pairs)
            }
        }
        "run" => {
            at_least_one()?;
            Instruction::Run(Run {
                command: command_line(node),
                mounts: flags.list("mount"),
                network: flags.string("network"),
                security: flags.string("security"),
                heredocs: node.heredocs.clone(),
            })
        }
        "cmd" => Instruction::Cmd(command_line(node)),
        "entrypoint" => Instruction::Entrypoint(command_line(node)),
        "copy" | "add" => Instruction::Copy(parse_copy(node, &flags)?),
        "workdir" => Instruction::Workdir(exactly_one()?),
        "user" => Instruction::User(exactly_one()?),
        "maintainer" => Instruction::Maintainer(exactly_one()?),
        "stopsignal" => Instruction::StopSignal(exactly_one()?),
        "expose" => {
            at_least_one()?;
            Instruction::Expose(args.clone())
        }
        "volume" => {
            at_least_one()?;
            if args.iter().any(|v| v.trim().is_empty()) {
                return Err(InstructionError::new(
                    line,
                    "VOLUME specified can not be an empty string",
                ));
            }
            Instruction::Volume(args.clone())
        }
        "shell" => {
            if !node.json {
                return Err(InstructionError::new(
                    line,
                    "SHELL requires the arguments to be in JSON form",
                ));
            }
            at_least_one()?;
            Instruction::Shell(args.clone())
        }
        "healthcheck" => {
            let (kind, rest) = args.split_first().ok_or_else(|| {
                InstructionError::new(line, "HEALTHCHECK requires at least one argument")
            })?;
            let command = match (node.json, rest) {
                (_, []) => None,
                (true, rest) => Some(CommandLine::Exec(rest.to_vec())),
                (false, rest) => Some(CommandLine::Shell(rest.join(" "))),
            };
            Instruction::Healthcheck(healthcheck::build(kind, command, &flags, line)?)
        }
        "onbuild" => Instruction::OnBuild(parse_onbuild(node)?),
        _ => unreachable!("allowed_flags knows every keyword"),
    })
}

/// Returns the flags `keyword` accepts, or `None` for an unknown keyword.
fn allowed_flags(keyword: &str) -> Option<&'static [(&'static str, FlagKind)]> {
    Some(match keyword {
        "from" => &[("platform", Str)],
        "run" => &[("mount", List), ("network", Str), ("security", Str)],
        "copy" => &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", List),
        ],
        "add" => &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", Str),
            ("exclude", List),
            ("unpack", Bool),
        ],
        "healthcheck" => &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
        "arg" | "env" | "cmd" | "entrypoint" | "workdir" | "user" | "maintainer" | "stopsignal"
        | "expose" | "volume" | "shell" | "onbuild" | "label" => &[],
        _ => return None,
    })
}

fn unknown_instruction(node: &Node) -> InstructionError {
    // The keyword is echoed as written, so take it from the original text.
    let written = node
        .original
        .split_whitespace()
        .next()
        .unwrap_or(&node.keyword);
    let upper = written.to_ascii_uppercase();
    let closest = KEYWORDS
        .iter()
        .map(|k| (strsim::levenshtein(k, &upper), *k))
        .min()
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 3));
    let mut message = format!("Unknown instruction: {written}");
    if let Some((_, keyword)) = closest {
        let suggestion = if written.chars().any(|c| c.is_ascii_uppercase()) {
            keyword.to_string()
        } else {
            keyword.to_ascii_lowercase()
        };
        message.push_str(&format!(" (did you mean {suggestion}?)"));
    }
    InstructionError::new(node.start_line, message)
}

fn parse_from(args: &[String], flags: &Flags, line: usize) -> Result<From, InstructionError> {
    let name = match args {
        [_] => None,
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
        _ => {
            return Err(InstructionError::new(
                line,
                "FROM requires either one or three arguments: write `FROM IMAGE [AS NAME]`",
            ));
        }
    };
    if let Some(name) = &name {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !valid {
            return Err(InstructionError::new(
                line,
                format!(
                    "Invalid name for build stage: `{name}`, name can't start with a number or contain symbols"
                ),
            ));
        }
    }
    Ok(From {
        image: args[0].clone(),
        name,
        platform: flags.string("platform"),
    })
}

fn parse_arg_word(word: &str) -> ArgDeclaration {
    match word.split_once('=') {
        Some((key, value)) => ArgDeclaration {
            key: key.into(),
            value: Some(value.into()),
        },
        None => ArgDeclaration {
            key: word.into(),
            value: None,
        },
    }
}

/// Reads the parser's key, value, separator triples.
fn parse_key_values(
    upper: &str,
    args: &[String],
    line: usize,
) -> Result<Vec<KeyValue>, InstructionError> {
    if args.len() % 3 != 0 {
        return Err(InstructionError::new(
            line,
            format!("Bad input to {upper}, too many arguments: write `{upper} KEY=VALUE ...`"),
        ));
    }
    args.chunks(3)
        .map(|triple| {
            if triple[0].is_empty() {
                return Err(InstructionError::new(
                    line,
                    format!("{upper} names can not be blank"),
                ));
            }
            Ok(KeyValue {
                key: triple[0].clone(),
                value: triple[1].clone(),
            })
        })
        .collect()
}

fn command_line(node: &Node) -> CommandLine {
    if node.json {
        CommandLine::Exec(node.args.clone())
    } else {
        CommandLine::Shell(node.args.join(" "))
    }
}

fn parse_copy(node: &Node, flags: &Flags) -> Result<Copy, InstructionError> {
    let line = node.start_line;
    let upper = node.keyword.to_ascii_uppercase();
    let Some((dest, sources)) = node
        .args
        .split_last()
        .filter(|(_, sources)| !sources.is_empty())
    else {
        return Err(InstructionError::new(
            line,
            format!(
                "{upper} requires at least two arguments, but only one was provided. Destination could not be determined"
            ),
        ));
    };
    if !node.json && heredoc_word(dest).is_some() {
        return Err(InstructionError::new(
            line,
            format!("{upper} cannot accept a heredoc as a destination"),
        ));
    }
    let mut heredocs = node.heredocs.iter();
    let mut typed = Vec::with_capacity(sources.len());
    for source in sources {
        let heredoc = if node.json {
            None
        } else {
            heredoc_word(source)
        };
        match heredoc {
            Some(name) => {
                let body = heredocs.next().filter(|h| h.name == name).ok_or_else(|| {
                    InstructionError::new(
                        line,
                        format!("Missing body of heredoc `{name}` in {upper}"),
                    )
                })?;
                typed.push(CopySource::Heredoc(body.clone()));
            }
            None => typed.push(CopySource::Path(source.clone())),
        }
    }
    Ok(Copy {
        add: node.keyword == "add",
        sources: typed,
        dest: dest.clone(),
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link").unwrap_or(false),
        parents: flags.bool("parents").unwrap_or(false),
        excludes: flags.list("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.bool("unpack"),
    })
}

/// Returns the delimiter name when `word` is a heredoc such as `<<EOF`,
/// `<<-"EOF"` or `3<<EOF`.
pub(crate) fn heredoc_word(word: &str) -> Option<String> {
    let rest = word
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// Returns the trigger text of an ONBUILD, with heredoc bodies appended so
/// the trigger can be parsed again in a child build.
fn parse_onbuild(node: &Node) -> Result<String, InstructionError> {
    let line = node.start_line;
    let Some(next) = &node.next else {
        return Err(InstructionError::new(
            line,
            "ONBUILD requires at least one argument",
        ));
    };
    match next.keyword.as_str() {
        "onbuild" => {
            return Err(InstructionError::new(
                line,
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ));
        }
        "from" | "maintainer" => {
            return Err(InstructionError::new(
                line,
                format!(
                    "{} isn't allowed as an ONBUILD trigger",
                    next.keyword.to_ascii_uppercase()
                ),
            ));
        }
        _ => {}
    }
    parse(next)?;
    let original = node.original.trim_start();
    let mut trigger = original
        .get(..7)
        .filter(|k| k.eq_ignore_ascii_case("onbuild"))
        .map_or(original, |_| &original[7..])
        .trim()
        .to_string();
    // The parser attaches the bodies to the ONBUILD node itself.
    let heredocs = if next.heredocs.is_empty() {
        &node.heredocs
    } else {
        &next.heredocs
    };
    for heredoc in heredocs {
        trigger.push('\n');
        trigger.push_str(&heredoc.content);
        trigger.push_str(&heredoc.name);
    }
    Ok(trigger)
}
