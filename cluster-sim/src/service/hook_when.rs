//! When a `[[hook]]` runs: a leaf of its own, so the error a failed hook makes (in
//! `error.rs`) can name it without importing the spec.

use std::fmt;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookWhen {
    /// Once every node is ready, before the cluster is handed over; a failure fails
    /// provisioning (and removes the cluster).
    AfterUp,
    /// First thing at teardown; a failure is reported and teardown goes on.
    BeforeDown,
    /// On a node after its restart or start is ready (on that node only, if it is one the
    /// hook chose).
    AfterRestart,
}

impl HookWhen {
    /// The time a spec's `when` names.
    pub fn named(name: &str) -> Option<HookWhen> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, w)| *w)
    }

    const ALL: [(&'static str, HookWhen); 3] = [
        ("after_up", HookWhen::AfterUp),
        ("before_down", HookWhen::BeforeDown),
        ("after_restart", HookWhen::AfterRestart),
    ];
}

impl fmt::Display for HookWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL
            .iter()
            .find(|(_, w)| w == self)
            .map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}
