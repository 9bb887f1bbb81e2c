//! Per-project build settings, kept in `$STRATA_ROOT/workbench/projects.json`
//! so a project reopens with the Dockerfile, target and arguments it was
//! last built with.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectSettings {
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub no_cache: bool,
}

pub fn file(root: &Path) -> PathBuf {
    root.join("workbench").join("projects.json")
}

/// Reads every project's settings, keyed by absolute folder path. A
/// missing file is an empty map; a corrupt one is an error, so it is never
/// overwritten with less.
pub fn load(root: &Path) -> anyhow::Result<BTreeMap<String, ProjectSettings>> {
    let path = file(root);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "Invalid settings file `{}`: {e}. Fix or delete it",
                path.display()
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(error) => Err(anyhow::anyhow!("Cannot read `{}`: {error}", path.display())),
    }
}

/// Stores one project's settings, replacing the file atomically.
pub fn save(root: &Path, project: &str, settings: &ProjectSettings) -> anyhow::Result<()> {
    let mut all = load(root)?;
    all.insert(project.to_string(), settings.clone());
    let path = file(root);
    let dir = path.parent().expect("settings file has a folder");
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("Cannot create `{}`: {e}", dir.display()))?;
    let temporary = dir.join(".projects.json.tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(&all)?)
        .map_err(|e| anyhow::anyhow!("Cannot write `{}`: {e}", temporary.display()))?;
    std::fs::rename(&temporary, &path)
        .map_err(|e| anyhow::anyhow!("Cannot replace `{}`: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load() {
        let root = tempfile::tempdir().unwrap();
        let settings = ProjectSettings {
            target: Some("build".into()),
            ..ProjectSettings::default()
        };
        save(root.path(), "/p", &settings).unwrap();
        assert_eq!(load(root.path()).unwrap()["/p"], settings);
    }

    #[test]
    fn corrupt_file_is_kept() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("workbench")).unwrap();
        std::fs::write(file(root.path()), "{not json").unwrap();
        let error = save(root.path(), "/p", &ProjectSettings::default()).unwrap_err();
        assert!(error.to_string().contains("projects.json"));
        assert_eq!(
            std::fs::read_to_string(file(root.path())).unwrap(),
            "{not json"
        );
    }
}
