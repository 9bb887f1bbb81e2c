//! Variable lookup for expansion.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// The variables a word is expanded against.
///
/// Names are compared exactly (case-sensitively), as on Linux. A variable
/// that is set to the empty string returns `Some("")`, which the `:`
/// forms of `${…}` treat differently from `None`.
pub trait Env {
    /// Returns the value of `name`, or `None` when it is not set.
    fn get(&self, name: &str) -> Option<String>;
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<String> {
        (**self).get(name)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Pairs in order; a later pair overrides an earlier one with the same name.
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        Env::get(self.as_slice(), name)
    }
}

/// A `KEY=VALUE` list such as a process environment. An entry without `=`
/// sets its whole text as a name with an empty value, and a later entry
/// overrides an earlier one, as BuildKit's `BuildEnvs` does.
impl Env for [String] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find_map(|entry| match entry.split_once('=') {
                Some((key, value)) if key == name => Some(value.to_string()),
                None if entry == name => Some(String::new()),
                _ => None,
            })
    }
}

impl Env for Vec<String> {
    fn get(&self, name: &str) -> Option<String> {
        Env::get(self.as_slice(), name)
    }
}
