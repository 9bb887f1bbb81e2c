//! Overlayfs and bind mounts that are undone when their guard drops.

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Maximum length of the option string one `mount(2)` call accepts: the
/// kernel copies at most one page of it.
const MOUNT_OPTIONS_MAX: usize = 4096;

/// Maximum number of lower directories one overlay accepts (`OVL_MAX_STACK`
/// in Linux overlayfs).
const OVERLAY_MAX_LOWERS: usize = 500;

static SHORT_DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A mounted filesystem at `target`, unmounted when dropped.
#[derive(Debug)]
pub struct OverlayMount {
    target: PathBuf,
    mounted: bool,
}

impl OverlayMount {
    /// Mounts `lowers` (top first) at `target`.
    ///
    /// With `upper_work`, the mount is a writable overlay whose changes land
    /// in the upper directory; with no lowers the upper directory itself is
    /// bind-mounted. Without `upper_work` the view is read-only: one lower
    /// is bind-mounted read-only, several become an overlay with only
    /// `lowerdir`.
    pub fn mount(
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<OverlayMount> {
        match (lowers, upper_work) {
            ([], None) => bail!(
                "Cannot mount an empty chain at `{}`: give at least one lower or an upper \
                 directory",
                target.display()
            ),
            ([], Some((upper, _))) => bind(upper, target, false)?,
            ([lower], None) => bind(lower, target, true)?,
            _ => mount_overlay(lowers, upper_work, target)?,
        }
        Ok(OverlayMount {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmounts now and reports failure, where dropping would only log it.
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        unmount_path(&self.target)
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted
            && let Err(error) = unmount_path(&self.target)
        {
            tracing::warn!(target = %self.target.display(), "{error:#}");
        }
    }
}

/// Unmounts `target`, falling back to a lazy detach when it is busy.
fn unmount_path(target: &Path) -> Result<()> {
    if umount2(target, MntFlags::empty()).is_ok() {
        return Ok(());
    }
    umount2(target, MntFlags::MNT_DETACH)
        .with_context(|| format!("Failed to unmount `{}`", target.display()))
}

fn bind(source: &Path, target: &Path, readonly: bool) -> Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "Failed to bind-mount `{}` at `{}`",
            source.display(),
            target.display()
        )
    })?;
    if readonly {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Err(error) = mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
            let _ = unmount_path(target);
            return Err(error).with_context(|| {
                format!(
                    "Failed to make the bind mount at `{}` read-only",
                    target.display()
                )
            });
        }
    }
    Ok(())
}

fn mount_overlay(
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<()> {
    if lowers.len() > OVERLAY_MAX_LOWERS {
        bail!(
            "Cannot mount a chain of {} snapshots at `{}`: overlayfs stacks at most {} lower \
             directories, so squash the image or merge layers",
            lowers.len(),
            target.display(),
            OVERLAY_MAX_LOWERS
        );
    }

    let upper = upper_work
        .map(|(upper, work)| format!("upperdir={},workdir={}", upper.display(), work.display()));
    let plain_lowers: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let needs_escape = plain_lowers.iter().any(|p| p.contains([',', ':', '\\']));
    let options = overlay_options(&plain_lowers, upper.as_deref());
    if options.len() < MOUNT_OPTIONS_MAX && !needs_escape {
        return mount_overlay_with(&options, target);
    }

    // The paths are too long for one page of options (or contain characters
    // overlayfs splits on), so mount through short symlinks. Overlayfs
    // resolves each path once at mount time, so the links can go right
    // after the mount.
    let short = ShortLinks::create(lowers)?;
    let options = overlay_options(&short.names, upper.as_deref());
    if options.len() >= MOUNT_OPTIONS_MAX {
        bail!(
            "Cannot mount a chain of {} snapshots at `{}`: the mount options take {} bytes even \
             with short paths, over the kernel's limit of {}",
            lowers.len(),
            target.display(),
            options.len(),
            MOUNT_OPTIONS_MAX
        );
    }
    mount_overlay_with(&options, target)
}

fn overlay_options(lowers: &[String], upper: Option<&str>) -> String {
    let mut options = format!("lowerdir={}", lowers.join(":"));
    if let Some(upper) = upper {
        options.push(',');
        options.push_str(upper);
    }
    options
}

fn mount_overlay_with(options: &str, target: &Path) -> Result<()> {
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options),
    )
    .with_context(|| {
        format!(
            "Failed to mount overlayfs at `{}` with options `{options}`",
            target.display()
        )
    })
}

/// A temporary directory of symlinks named by hex index (`0`, `1`, … `a`)
/// pointing at the lower directories, so the option string stays short.
struct ShortLinks {
    dir: PathBuf,
    names: Vec<String>,
}

impl ShortLinks {
    fn create(lowers: &[PathBuf]) -> Result<ShortLinks> {
        let serial = SHORT_DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/.ov{}-{serial}", std::process::id()));
        std::fs::create_dir(&dir)
            .with_context(|| format!("Failed to create `{}` for overlay links", dir.display()))?;
        let links = ShortLinks {
            dir,
            names: Vec::with_capacity(lowers.len()),
        };
        let mut links = links;
        for (index, lower) in lowers.iter().enumerate() {
            let link = links.dir.join(format!("{index:x}"));
            std::os::unix::fs::symlink(lower, &link)
                .with_context(|| format!("Failed to create overlay link `{}`", link.display()))?;
            links.names.push(link.display().to_string());
        }
        Ok(links)
    }
}

impl Drop for ShortLinks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_lowers_then_upper() {
        let options = overlay_options(&["/a".into(), "/b".into()], Some("upperdir=/u,workdir=/w"));
        assert_eq!(options, "lowerdir=/a:/b,upperdir=/u,workdir=/w");
    }
}
