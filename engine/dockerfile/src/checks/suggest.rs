//! "Did you mean" suggestions for misspelt names.

use super::split;
use crate::ast::Ast;
use crate::convert::ConvertOptions;
use crate::instructions::{self, Instruction};

/// Returns the candidate closest to `word` by Levenshtein distance, when it
/// is close enough to be a likely typo: at most 2 edits, and at most half
/// of `word`'s length so short names do not match everything.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = 2.min(word.chars().count() / 2);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != word)
        .map(|candidate| (strsim::levenshtein(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Suggests a fix for a conversion failure caused by a misspelt stage name:
/// in `--target`, in `COPY --from` or in `FROM`.
pub(crate) fn help_for_failure(
    ast: &Ast,
    options: &ConvertOptions,
    message: &str,
    lines: Option<(usize, usize)>,
) -> Option<String> {
    let (_, stages) = split(ast);
    let names: Vec<String> = stages
        .iter()
        .filter_map(|s| s.name.as_ref().map(|n| n.to_ascii_lowercase()))
        .collect();
    let is_stage = |word: &str| names.iter().any(|n| n.eq_ignore_ascii_case(word));
    let suggest =
        |word: &str| closest(&word.to_ascii_lowercase(), names.iter().map(String::as_str));

    if let Some(target) = &options.target {
        if !is_stage(target) && message.contains(target.as_str()) {
            return suggest(target).map(|name| format!("Did you mean `--target {name}`?"));
        }
    }
    let (start, _) = lines?;
    let node = ast.children.iter().find(|n| n.start_line == start)?;
    match instructions::parse(node).ok()? {
        Instruction::Copy(copy) => {
            let from = copy.from?;
            if is_stage(&from) {
                return None;
            }
            suggest(&from).map(|name| {
                format!("`{from}` is not a stage of this Dockerfile; did you mean `--from={name}`?")
            })
        }
        Instruction::From(from) if !is_stage(&from.image) => suggest(&from.image).map(|name| {
            format!(
                "`{}` is not a stage of this Dockerfile; did you mean `{name}`?",
                from.image
            )
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn closest_finds_typo() {
        assert_eq!(closest("biuld", ["build", "test"]), Some("build"));
        assert_eq!(closest("PAHT", ["PATH", "HOME"]), Some("PATH"));
    }

    #[test]
    fn closest_ignores_distant_names() {
        assert_eq!(closest("deploy", ["build", "test"]), None);
        assert_eq!(closest("a", ["b"]), None);
    }
}
