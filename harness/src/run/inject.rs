//! A test-only hook for the harness's self-tests: panics inside the harness on demand.

use crate::plan::TestDef;

/// Test-only hook for the harness's self-tests: `CLUSTER_SIM_INJECT_PANIC=<phase>:<fn>[,...]`
/// makes the harness itself panic in that phase of the test whose function is `<fn>`, to prove
/// a panic anywhere still yields a complete report and no leftovers. Phases: `provision` (after
/// the nodes started), `ready` (when a node passed its readiness check), `body` (as the test
/// starts) and `teardown` (before the cluster is removed). Not for users.
#[derive(Debug, Default)]
pub(crate) struct Inject {
    points: Vec<(String, String)>,
}

pub(crate) const INJECT_PHASES: &[&str] = &["provision", "ready", "body", "teardown"];

impl Inject {
    pub(crate) fn from_env() -> Result<Self, String> {
        let Ok(v) = std::env::var("CLUSTER_SIM_INJECT_PANIC") else {
            return Ok(Self::default());
        };
        let mut points = Vec::new();
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once(':') {
                Some((phase, func)) if INJECT_PHASES.contains(&phase) && !func.is_empty() => {
                    points.push((phase.to_string(), func.to_string()))
                }
                _ => {
                    return Err(format!(
                        "CLUSTER_SIM_INJECT_PANIC: bad item {item:?}; expected <phase>:<fn> with \
                         a phase of {}",
                        INJECT_PHASES.join(", ")
                    ))
                }
            }
        }
        Ok(Self { points })
    }

    pub(crate) fn at(&self, phase: &str, def: &TestDef) -> bool {
        self.points
            .iter()
            .any(|(p, f)| p == phase && f.as_str() == def.name)
    }
}

/// Panics as the hook asked.
pub(crate) fn injected_panic(phase: &str) -> ! {
    panic!("injected panic in {phase} (CLUSTER_SIM_INJECT_PANIC)")
}
