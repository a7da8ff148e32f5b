//! The backend's optional capabilities a verb needs, or one line saying why it can't run.

use anyhow::{Context, Result};
use cluster_sim::{Backend, Janitor, Lookup};

/// The backend's lookup capability, or why `verb` can't run without it.
pub(crate) fn lookup<'a>(backend: &'a dyn Backend, verb: &str) -> Result<&'a dyn Lookup> {
    backend.lookup().with_context(|| {
        format!(
            "{verb} needs to list clusters, which the {} backend can't",
            backend.kind()
        )
    })
}

/// The backend's cleanup capability, or why `verb` can't run without it.
pub(crate) fn janitor<'a>(backend: &'a dyn Backend, verb: &str) -> Result<&'a dyn Janitor> {
    backend.janitor().with_context(|| {
        format!(
            "{verb} needs to find and remove dead runs' clusters, which the {} backend can't",
            backend.kind()
        )
    })
}
