//! The run's shared state, at the bottom of the run: the services every trial uses (settings,
//! reporters, node budget, runtime, the one backend, the registry of the clusters the run owns,
//! the tests in progress, the gate an interrupt closes) and what one attempt learns as it runs.
//! It knows nothing of shared groups or walks, which live in `clusters/`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cluster_sim_core::{Backend, BackendError, Cluster};
use tokio::sync::{Notify, RwLock};

use super::budget::NodeBudget;
use super::inject::Inject;
use crate::artifacts::TestLog;
use crate::config::Settings;
use crate::outcome::TestFinished;
use crate::report::{Reporters, RunEvent};

/// A test in progress, for the interrupt handler.
pub(crate) struct Running {
    pub(crate) started: Instant,
    /// `file:line` of the test.
    pub(crate) location: String,
    /// Which attempt this is.
    pub(crate) number: u32,
    pub(crate) test_dir: PathBuf,
    pub(crate) log: TestLog,
    /// Aborts the trial's task.
    pub(crate) task: tokio::task::AbortHandle,
    /// Notified when the trial's task has ended (its future dropped: no engine call of it is
    /// still in flight).
    pub(crate) ended: Arc<Notify>,
}

/// A cluster the run owns, registered by name before provisioning starts and dropped once its
/// teardown succeeded: whatever ends a trial (panic, deadline, signal), the name is enough to
/// remove it (`Backend::destroy` works by label and is idempotent).
pub(crate) struct OwnedCluster {
    /// The test it belongs to.
    pub(crate) test: String,
    /// Its nodes, to collect their logs by name when no handle exists (a panic mid-provision).
    pub(crate) nodes: Vec<String>,
    /// The handle, once provisioning returned it.
    pub(crate) handle: Option<Cluster>,
}

/// What every trial of the run shares.
pub(crate) struct RunCtx {
    pub(crate) settings: Settings,
    pub(crate) run_dir: PathBuf,
    /// JUnit, HTML, the tests' logs and the console, fed the run's events.
    pub(crate) reporters: Reporters,
    pub(crate) budget: NodeBudget,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) rerun_prefix: String,
    pub(crate) seq: AtomicU64,
    /// Clusters of this run not yet torn down, by cluster name.
    pub(crate) clusters: Mutex<HashMap<String, OwnedCluster>>,
    /// Tests started and not yet reported, by test name.
    pub(crate) running: Mutex<HashMap<String, Running>>,
    pub(crate) interrupted: AtomicBool,
    /// Readers: a trial starting, registering a cluster or being reported. The writer: the
    /// interrupt handler, which holds it until the process exits, so nothing starts or is
    /// reported twice once it has taken stock.
    pub(crate) gate: RwLock<()>,
    pub(crate) kept_any: AtomicBool,
    pub(crate) inject: Inject,
    /// One backend for the whole run, connected when the first cluster test starts, so
    /// `--list` and cluster-free runs never touch Docker or SSH.
    pub(crate) backend: tokio::sync::OnceCell<Arc<dyn cluster_sim_core::Backend>>,
    /// The live cluster (`CLUSTER_SIM_CLUSTER`) a test is running on now, if any: an interrupt
    /// undoes what the test did to it instead of tearing it down.
    pub(crate) attached_now: Mutex<Option<cluster_sim_core::Cluster>>,
}

impl RunCtx {
    /// The command that reruns test `name` alone.
    pub(crate) fn rerun_command(&self, name: &str) -> String {
        format!("{} {name} --exact", self.rerun_prefix)
    }

    /// The run's backend, connected by the first caller that needs it (so `--list` and
    /// cluster-free runs never touch Docker or SSH).
    pub(crate) async fn backend(&self) -> Result<Arc<dyn Backend>, BackendError> {
        self.backend
            .get_or_try_init(|| {
                cluster_sim_core::connect_backend(
                    self.settings.backend.as_str(),
                    self.settings.inventory.as_deref(),
                )
            })
            .await
            .map(Arc::clone)
    }

    /// Hands a test's record to the reporters.
    pub(crate) fn report(&self, test: &TestFinished) {
        self.reporters.emit(&RunEvent::TestEnded { test });
    }
}

/// What the run learned about a test while it ran: where it was (for a panic's message) and
/// its cluster's properties (for the report). Shared with the trial's task, so it survives a
/// panic there.
#[derive(Default)]
pub(crate) struct AttemptState {
    phase: Mutex<&'static str>,
    properties: Mutex<Vec<(String, String)>>,
    /// Seeds of the nemeses the test started, in order.
    seeds: Mutex<Vec<u64>>,
    /// A walk's `trace.json`: kept even when the rest of a passed test's artifacts go.
    trace: Mutex<Option<PathBuf>>,
    /// The test's own running time, when it is not the trial's (a walk's, without the time it
    /// waited for other walks at barriers or before its trial started).
    duration: Mutex<Option<Duration>>,
}

/// A lock that a panic while it was held doesn't make unusable: the state is plain data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AttemptState {
    pub(crate) fn set_phase(&self, phase: &'static str) {
        *lock(&self.phase) = phase;
    }
    pub(crate) fn phase(&self) -> &'static str {
        *lock(&self.phase)
    }
    pub(crate) fn property(&self, key: &str, value: String) {
        lock(&self.properties).push((key.to_string(), value));
    }
    pub(crate) fn seed(&self, seed: u64) {
        lock(&self.seeds).push(seed);
    }
    pub(crate) fn set_trace(&self, path: PathBuf) {
        *lock(&self.trace) = Some(path);
    }
    pub(crate) fn set_duration(&self, d: Duration) {
        *lock(&self.duration) = Some(d);
    }
    pub(crate) fn seeds(&self) -> Vec<u64> {
        lock(&self.seeds).clone()
    }
    pub(crate) fn trace(&self) -> Option<PathBuf> {
        lock(&self.trace).clone()
    }
    pub(crate) fn take_duration(&self) -> Option<Duration> {
        lock(&self.duration).take()
    }
    pub(crate) fn take_properties(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *lock(&self.properties))
    }
}
