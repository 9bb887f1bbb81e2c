//! ARG scoping: global ARGs before the first FROM, the predefined platform
//! ARGs, and the environment that expansion sees inside a stage.

use super::Failure;
use crate::ast::Node;
use crate::instructions::ArgDeclaration;
use crate::shell::Lexer;
use std::collections::BTreeMap;
use strata_llb::Platform;

/// ARGs visible in FROM lines and re-declarable inside stages.
#[derive(Clone, Debug, Default)]
pub(crate) struct GlobalArgs {
    pub values: BTreeMap<String, String>,
}

impl GlobalArgs {
    /// Starts from the predefined platform ARGs; a build arg of the same
    /// name replaces the computed value.
    pub(crate) fn predefined(
        target: &Platform,
        build: &Platform,
        build_args: &BTreeMap<String, String>,
    ) -> GlobalArgs {
        let mut values = BTreeMap::new();
        for (prefix, platform) in [("TARGET", target), ("BUILD", build)] {
            values.insert(format!("{prefix}PLATFORM"), platform.to_string());
            values.insert(format!("{prefix}OS"), platform.os.clone());
            values.insert(format!("{prefix}ARCH"), platform.architecture.clone());
            values.insert(
                format!("{prefix}VARIANT"),
                platform.variant.clone().unwrap_or_default(),
            );
        }
        for (key, value) in values.iter_mut() {
            if let Some(given) = build_args.get(key) {
                *value = given.clone();
            }
        }
        GlobalArgs { values }
    }

    /// Declares the ARGs of one line before the first FROM. Each default is
    /// expanded against the global ARGs declared before it, unless a build
    /// arg supplies the value.
    pub(crate) fn declare(
        &mut self,
        node: &Node,
        declarations: &[ArgDeclaration],
        lexer: &Lexer,
        build_args: &BTreeMap<String, String>,
    ) -> Result<(), Failure> {
        for declaration in declarations {
            if let Some(given) = build_args.get(&declaration.key) {
                self.values.insert(declaration.key.clone(), given.clone());
                continue;
            }
            if let Some(default) = &declaration.value {
                let expanded = lexer
                    .process_word(default, &self.values)
                    .map_err(|e| Failure::at(node, e.to_string()))?;
                self.values.insert(declaration.key.clone(), expanded.value);
            } else if !self.values.contains_key(&declaration.key) {
                // Declared without a value: visible to re-declaration but
                // unset for expansion, so nothing is stored.
            }
        }
        Ok(())
    }
}

/// ARGs declared inside a stage, in order, with their values.
#[derive(Clone, Debug, Default)]
pub(crate) struct StageArgs {
    pub declared: Vec<(String, Option<String>)>,
}

impl StageArgs {
    /// Returns the environment for expansion: ENV entries win over ARGs
    /// of the same name, and ARGs without a value stay unset.
    pub(crate) fn expansion_env(&self, env: &[String]) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = env
            .iter()
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        for (key, value) in &self.declared {
            if let Some(value) = value {
                map.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        map
    }

    /// Returns `KEY=value` for every ARG with a value that no ENV entry
    /// shadows, as RUN receives them.
    pub(crate) fn run_env(&self, env: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (key, value) in &self.declared {
            let shadowed = env
                .iter()
                .any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
            if let (Some(value), false) = (value, shadowed) {
                let entry = format!("{key}={value}");
                out.retain(|e: &String| e.split_once('=').map(|(k, _)| k) != Some(key));
                out.push(entry);
            }
        }
        out
    }

    /// Returns the proxy build args (`HTTP_PROXY`, `https_proxy`, ...) that
    /// no ARG of the stage declares: RUN sees them, but as in BuildKit
    /// neither the cache key nor the image history does.
    pub(crate) fn proxy_env(&self, build_args: &BTreeMap<String, String>) -> Vec<String> {
        build_args
            .iter()
            .filter(|(key, _)| is_proxy_arg(key))
            .filter(|(key, _)| !self.declared.iter().any(|(k, _)| k == *key))
            .map(|(key, value)| format!("{key}={value}"))
            .collect()
    }

    /// Declares one ARG: the build arg wins, then the expanded default, then
    /// the global value of the same name.
    pub(crate) fn declare(
        &mut self,
        key: &str,
        expanded_default: Option<String>,
        globals: &GlobalArgs,
        build_args: &BTreeMap<String, String>,
    ) -> Option<String> {
        let value = build_args
            .get(key)
            .cloned()
            .or(expanded_default)
            .or_else(|| globals.values.get(key).cloned());
        self.declared.retain(|(k, _)| k != key);
        self.declared.push((key.to_string(), value.clone()));
        value
    }
}

/// The predefined proxy ARGs, in upper or lower case as BuildKit accepts
/// them.
pub(crate) fn is_proxy_arg(key: &str) -> bool {
    const PROXIES: [&str; 5] = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "FTP_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
    ];
    PROXIES
        .iter()
        .any(|p| key == *p || key == p.to_ascii_lowercase())
}
