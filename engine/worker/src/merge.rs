//! Merge ops: the inputs' layers stacked into one snapshot chain, as
//! BuildKit's `MergeOp` does for `COPY --link`.
//!
//! The result's chain is the first input's chain followed by a copy of
//! every layer of each later input, bottom first. A layer's files keep
//! their modes, owners, times, xattrs and whiteouts, so the exported layer
//! of a linked copy is byte for byte the same whatever base it lands on.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use strata_solver::ResultRef;
use strata_store::{SnapshotKind, Store};

/// Stacks `inputs`, bottom first, and returns the top of the new chain.
pub(crate) fn merge(store: &Store, inputs: &[ResultRef]) -> Result<ResultRef> {
    let mut layers = inputs.iter().filter_map(|input| input.snapshot.as_deref());
    let Some(first) = layers.next() else {
        return Ok(ResultRef::EMPTY);
    };
    let mut top = first.to_string();
    for input in layers {
        let mut chain = store.lowers(input)?;
        chain.reverse();
        for layer in chain {
            top = restack(store, &top, &layer)?;
        }
    }
    Ok(ResultRef::snapshot(top))
}

/// Commits a copy of the layer directory `layer` on top of `parent`.
fn restack(store: &Store, parent: &str, layer: &Path) -> Result<String> {
    let active = store.prepare(Some(parent), SnapshotKind::Regular)?;
    match copy_tree(layer, &active.upper) {
        Ok(()) => store.commit(active),
        Err(error) => {
            if let Err(abort) = store.abort(active) {
                tracing::warn!("failed to abort a merge snapshot: {abort:#}");
            }
            Err(error)
        }
    }
}

/// Copies a directory's contents with everything overlayfs reads: `cp -a`
/// keeps xattrs (opaque directories) and device nodes (whiteouts).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let output = Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(from.join("."))
        .arg(to)
        .output()
        .context("Failed to run `cp` for a merge: install coreutils")?;
    if !output.status.success() {
        bail!(
            "Failed to copy layer `{}` for a merge: {}",
            from.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
