//! File ops: mkdir, mkfile, rm and copy applied to a root directory, with
//! every path resolved inside its root.

use crate::copy::copy;
use crate::paths::{expand_wildcard, has_wildcard, resolve_in_root};
use crate::reuse::PendingLink;
use crate::user::resolve_owner;
use anyhow::{Context, Result, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use strata_llb::{ChownOpt, FileAction};

/// Applies `actions` in order to the directory `root`. `inputs[i]` is the
/// read-only root of vertex input `i`, or `None` for an empty filesystem.
pub fn apply_file_actions(
    root: &Path,
    actions: &[FileAction],
    inputs: &[Option<PathBuf>],
) -> Result<()> {
    apply_file_actions_linking(root, actions, inputs, &[], &mut Vec::new())
}

/// Like [`apply_file_actions`], but copies of regular files from inputs
/// marked in `linkable` become placeholders listed in `links`, to be
/// replaced by hardlinks once `root` is unmounted.
pub(crate) fn apply_file_actions_linking(
    root: &Path,
    actions: &[FileAction],
    inputs: &[Option<PathBuf>],
    linkable: &[bool],
    links: &mut Vec<PendingLink>,
) -> Result<()> {
    for action in actions {
        match action {
            FileAction::Mkdir {
                path,
                mode,
                make_parents,
                owner,
                timestamp,
            } => mkdir(root, path, *mode, *make_parents, owner.as_ref(), *timestamp)?,
            FileAction::Mkfile {
                path,
                mode,
                data,
                owner,
                timestamp,
            } => mkfile(root, path, *mode, data, owner.as_ref(), *timestamp)?,
            FileAction::Rm {
                path,
                allow_not_found,
                allow_wildcard,
            } => rm(root, path, *allow_not_found, *allow_wildcard)?,
            FileAction::Copy(action) => {
                let source = match action.src_input {
                    None => None,
                    Some(index) => match inputs.get(index as usize) {
                        Some(source) => source.as_deref(),
                        None => bail!(
                            "Copy of `{}` reads input {index}, but the op has {} inputs",
                            action.src,
                            inputs.len()
                        ),
                    },
                };
                let reuse = action
                    .src_input
                    .is_some_and(|index| linkable.get(index as usize) == Some(&true));
                // A lone copy is the only writer of its destination.
                let direct = reuse && actions.len() == 1;
                copy(root, action, source, reuse.then_some(&mut *links), direct)?
            }
        }
    }
    Ok(())
}

fn mkdir(
    root: &Path,
    path: &str,
    mode: u32,
    make_parents: bool,
    owner: Option<&ChownOpt>,
    timestamp: Option<i64>,
) -> Result<()> {
    let owner = owner.map(|owner| resolve_owner(root, owner)).transpose()?;
    let target = resolve_in_root(root, path, true)?;
    if make_parents {
        return mkdir_all(&target, mode, owner, timestamp)
            .with_context(|| format!("Failed to create directory \"{path}\""));
    }
    if target.symlink_metadata().is_ok() {
        bail!("Failed to create directory \"{path}\": file exists");
    }
    std::fs::create_dir(&target).with_context(|| {
        format!("Failed to create directory \"{path}\": does its parent exist? Set `make_parents`")
    })?;
    set_metadata(&target, Some(mode), owner, timestamp)
}

/// Creates `target` and its missing parents. Only the directories this call
/// creates get `mode`, `owner` and `timestamp`; times are set deepest first
/// so creating a child does not change its parent's.
pub(crate) fn mkdir_all(
    target: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
    timestamp: Option<i64>,
) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = target;
    loop {
        match current.metadata() {
            Ok(metadata) if metadata.is_dir() => break,
            Ok(_) => bail!("`{}` exists and is not a directory", current.display()),
            Err(_) => missing.push(current.to_path_buf()),
        }
        match current.parent() {
            Some(parent) => current = parent,
            None => break,
        }
    }

    let mut created = Vec::new();
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                set_metadata(dir, Some(mode), owner, None)?;
                created.push(dir);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error.into()),
        }
    }
    for dir in created.iter().rev() {
        set_metadata(dir, None, None, timestamp)?;
    }
    Ok(())
}

fn mkfile(
    root: &Path,
    path: &str,
    mode: u32,
    data: &[u8],
    owner: Option<&ChownOpt>,
    timestamp: Option<i64>,
) -> Result<()> {
    let owner = owner.map(|owner| resolve_owner(root, owner)).transpose()?;
    let target = resolve_in_root(root, path, true)?;
    std::fs::write(&target, data).with_context(|| format!("Failed to create file \"{path}\""))?;
    set_metadata(&target, Some(mode), owner, timestamp)
}

fn rm(root: &Path, path: &str, allow_not_found: bool, allow_wildcard: bool) -> Result<()> {
    let paths = if allow_wildcard && has_wildcard(path) {
        expand_wildcard(root, path)?
    } else {
        vec![path.to_string()]
    };
    if paths.is_empty() && !allow_not_found {
        bail!("Failed to remove \"{path}\": no file matches the pattern");
    }
    for path in paths {
        let target = resolve_in_root(root, &path, false)?;
        if target == root {
            bail!("Failed to remove \"{path}\": it is the root directory");
        }
        let result = match target.symlink_metadata() {
            Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(&target),
            Ok(_) => std::fs::remove_file(&target),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && allow_not_found => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!("Failed to remove \"{path}\": not found")
            }
            Err(error) => {
                return Err(error).with_context(|| format!("Failed to remove \"{path}\""));
            }
        }
    }
    Ok(())
}

/// Sets owner, then mode (a chown clears set-id bits), then times, without
/// following a symlink at `path`.
pub(crate) fn set_metadata(
    path: &Path,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    timestamp: Option<i64>,
) -> Result<()> {
    let is_symlink = path.symlink_metadata()?.file_type().is_symlink();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .with_context(|| format!("Failed to change the owner of `{}`", path.display()))?;
    }
    if let (Some(mode), false) = (mode, is_symlink) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
            .with_context(|| format!("Failed to change the mode of `{}`", path.display()))?;
    }
    if let Some(seconds) = timestamp {
        let time = filetime::FileTime::from_unix_time(seconds, 0);
        filetime::set_symlink_file_times(path, time, time)
            .with_context(|| format!("Failed to set the times of `{}`", path.display()))?;
    }
    Ok(())
}
