//! Rules about variables: UndefinedArgInFrom, InvalidDefaultArgInFrom and
//! UndefinedVar.

use super::images::Base;
use super::suggest::closest;
use super::{CheckWarning, Rule, StageView};
use crate::ast::Node;
use crate::convert::{ConvertOptions, normalize_reference};
use crate::instructions::{self, CopySource, Instruction};
use crate::shell::Lexer;
use std::collections::{BTreeMap, BTreeSet};
use strata_llb::Platform;

/// The global ARGs (before the first FROM) with the predefined platform
/// ARGs, which FROM lines may use without declaring them.
pub(super) struct GlobalScope {
    /// Values with the build args applied.
    pub values: BTreeMap<String, String>,
    /// Values from the defaults only, ignoring build args.
    pub defaults: BTreeMap<String, String>,
    /// Every name a FROM line may use.
    pub declared: BTreeSet<String>,
}

impl GlobalScope {
    pub(super) fn new(globals: &[&Node], options: &ConvertOptions) -> GlobalScope {
        let mut predefined = BTreeMap::new();
        let build = Platform::host();
        for (prefix, platform) in [("TARGET", &options.platform), ("BUILD", &build)] {
            predefined.insert(format!("{prefix}PLATFORM"), platform.to_string());
            predefined.insert(format!("{prefix}OS"), platform.os.clone());
            predefined.insert(format!("{prefix}ARCH"), platform.architecture.clone());
            let variant = platform.variant.clone().unwrap_or_default();
            predefined.insert(format!("{prefix}VARIANT"), variant);
        }
        let mut scope = GlobalScope {
            declared: predefined.keys().cloned().collect(),
            values: predefined.clone(),
            defaults: predefined,
        };
        let lexer = Lexer::new('\\');
        for node in globals {
            let Ok(Instruction::Arg(declarations)) = instructions::parse(node) else {
                continue;
            };
            for declaration in declarations {
                scope.declared.insert(declaration.key.clone());
                let Some(default) = &declaration.value else {
                    continue;
                };
                if let Ok(expanded) = lexer.process_word(default, &scope.defaults) {
                    scope
                        .defaults
                        .insert(declaration.key.clone(), expanded.value);
                }
                let value = match options.build_args.get(&declaration.key) {
                    Some(given) => Some(given.clone()),
                    None => lexer
                        .process_word(default, &scope.values)
                        .ok()
                        .map(|e| e.value),
                };
                if let Some(value) = value {
                    scope.values.insert(declaration.key.clone(), value);
                }
            }
        }
        scope
    }
}

pub(super) fn check(
    globals: &[&Node],
    stages: &[StageView<'_>],
    bases: &[Base],
    options: &ConvertOptions,
    warnings: &mut Vec<CheckWarning>,
) {
    let scope = GlobalScope::new(globals, options);
    let lexer = Lexer::new('\\');
    for stage in stages {
        check_from_args(stage, &scope, &lexer, warnings);
    }
    let mut stage_envs: Vec<Option<BTreeSet<String>>> = Vec::with_capacity(stages.len());
    for (stage, base) in stages.iter().zip(bases) {
        let inherited = match base {
            Base::Scratch => Some(BTreeSet::new()),
            Base::Stage(index) => stage_envs.get(*index).cloned().flatten(),
            Base::Image { config, .. } => config.as_ref().map(|c| {
                c.config
                    .env
                    .iter()
                    .flatten()
                    .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string())
                    .collect()
            }),
        };
        let env = inherited.map(|env| check_stage_vars(stage, env, &lexer, warnings));
        stage_envs.push(env);
    }
}

/// UndefinedArgInFrom and InvalidDefaultArgInFrom for one FROM line.
fn check_from_args(
    stage: &StageView<'_>,
    scope: &GlobalScope,
    lexer: &Lexer,
    warnings: &mut Vec<CheckWarning>,
) {
    let words = std::iter::once(&stage.image).chain(stage.platform.as_ref());
    for word in words {
        let Ok(expansion) = lexer.process_word(word, &scope.values) else {
            continue;
        };
        for name in &expansion.used {
            if scope.declared.contains(name) {
                continue;
            }
            let mut message = format!("FROM argument '{name}' is not declared");
            if let Some(close) = closest(name, scope.declared.iter().map(String::as_str)) {
                message.push_str(&format!(" (did you mean {close}?)"));
            }
            warnings.push(CheckWarning::at(
                Rule::UndefinedArgInFrom,
                stage.from,
                message,
            ));
        }
    }

    if !stage.image.contains('$') {
        return;
    }
    let default = lexer
        .process_word(&stage.image, &scope.defaults)
        .map(|e| e.value)
        .unwrap_or_default();
    if default.is_empty() || normalize_reference(&default).is_err() {
        let message = format!(
            "Default value for ARG {} results in empty or invalid base image name",
            stage.image
        );
        warnings.push(CheckWarning::at(
            Rule::InvalidDefaultArgInFrom,
            stage.from,
            message,
        ));
    }
}

/// UndefinedVar inside one stage, starting from the names the base defines.
/// Returns the names defined at the end of the stage.
///
/// Only words the frontend expands are checked. RUN, CMD and ENTRYPOINT
/// text is expanded by the container's shell, which may define more.
fn check_stage_vars(
    stage: &StageView<'_>,
    mut defined: BTreeSet<String>,
    lexer: &Lexer,
    warnings: &mut Vec<CheckWarning>,
) -> BTreeSet<String> {
    let mut reported = BTreeSet::new();
    for (node, instruction) in &stage.commands {
        let Some(instruction) = instruction else {
            continue;
        };
        let mut check_word = |word: &str, defined: &BTreeSet<String>| {
            let env: BTreeMap<String, String> =
                defined.iter().map(|k| (k.clone(), String::new())).collect();
            let Ok(expansion) = lexer.process_word(word, &env) else {
                return;
            };
            for name in expansion.unset {
                if !reported.insert((node.start_line, name.clone())) {
                    continue;
                }
                let mut message = format!("Usage of undefined variable '${name}'");
                if let Some(close) = closest(&name, defined.iter().map(String::as_str)) {
                    message.push_str(&format!(" (did you mean ${close}?)"));
                }
                warnings.push(CheckWarning::at(Rule::UndefinedVar, node, message));
            }
        };
        match instruction {
            Instruction::Arg(declarations) => {
                for declaration in declarations {
                    if let Some(value) = &declaration.value {
                        check_word(value, &defined);
                    }
                    defined.insert(declaration.key.clone());
                }
            }
            Instruction::Env(pairs) => {
                for pair in pairs {
                    check_word(&pair.value, &defined);
                    defined.insert(pair.key.clone());
                }
            }
            Instruction::Label(pairs) => {
                for pair in pairs {
                    check_word(&pair.key, &defined);
                    check_word(&pair.value, &defined);
                }
            }
            Instruction::Workdir(word)
            | Instruction::User(word)
            | Instruction::StopSignal(word) => check_word(word, &defined),
            Instruction::Expose(words) | Instruction::Volume(words) => {
                for word in words {
                    check_word(word, &defined);
                }
            }
            Instruction::Copy(copy) => {
                for source in &copy.sources {
                    if let CopySource::Path(path) = source {
                        check_word(path, &defined);
                    }
                }
                check_word(&copy.dest, &defined);
                for flag in [&copy.chown, &copy.chmod].into_iter().flatten() {
                    check_word(flag, &defined);
                }
            }
            _ => {}
        }
    }
    defined
}
