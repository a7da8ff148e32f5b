//! A run's watchdog: a detached copy of the running program that holds the read end of a pipe
//! from it and, once that pipe closes (the run ended, however: exit, panic, Ctrl-C, SIGKILL),
//! removes the clusters the run made and did not keep. So a killed test run leaves nothing for
//! more than a few seconds, without waiting for the next run's reaper.
//!
//! The watchdog is this same executable (`/proc/self/exe`) started with
//! [`WATCHDOG_VAR`] set to the run id: a program opts in by calling [`intercept`] first thing in
//! `main` (the harness and the `cluster-sim` CLI do). It runs in a process group of its own, so
//! the terminal's Ctrl-C never reaches it, shrugs off SIGINT, SIGHUP, SIGQUIT and SIGTERM, and
//! keeps no stdout or stderr open (a caller reading the run's output is not held up by it). It
//! reconnects the run's backend (its name and inventory ride in the environment) and removes
//! what that backend's cleanup capability (`Backend::janitor`, `Janitor::remove_run`) finds of
//! its run, and exits when done: on docker the containers and networks labelled with its run
//! id, on ssh the clusters whose `.owner` file names its run, fault rules and working
//! directories with them.

use std::io::Read;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::connect::BackendChoice;

/// Environment variable that makes a program that called [`intercept`] act as a watchdog for
/// the run it names.
pub const WATCHDOG_VAR: &str = "CLUSTER_SIM_WATCHDOG";

/// Environment variable naming the backend the watchdog cleans (set by [`start_for`]); unset,
/// the default one (docker), or ssh when [`WATCHDOG_INVENTORY_VAR`] is set.
pub const WATCHDOG_BACKEND_VAR: &str = "CLUSTER_SIM_WATCHDOG_BACKEND";

/// Environment variable naming the inventory of the backend the watchdog cleans (set by
/// [`start_for`] when the run's backend has one).
pub const WATCHDOG_INVENTORY_VAR: &str = "CLUSTER_SIM_WATCHDOG_INVENTORY";

/// Whether this program called [`intercept`] (and so can serve as its own watchdog).
static SERVES: AtomicBool = AtomicBool::new(false);

/// The write end of the pipe, held for as long as this process lives.
static PIPE: OnceLock<Mutex<Option<ChildStdin>>> = OnceLock::new();

/// Why no watchdog runs.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    /// This program did not call [`intercept`] at start, so a copy of it would not act as a
    /// watchdog (it would run the program again).
    #[error("this program cannot serve as a watchdog (its main does not call cluster_sim::watchdog::intercept)")]
    NotEnabled,
    /// The watchdog process could not be started.
    #[error("cannot start the watchdog: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Call first thing in `main`: a process started as a watchdog serves and exits here; any
/// other returns at once, marked able to start watchdogs of its own.
pub fn intercept() {
    if let Some(run) = std::env::var_os(WATCHDOG_VAR) {
        let run = run.to_string_lossy().into_owned();
        serve(&run);
        std::process::exit(0);
    }
    SERVES.store(true, Ordering::SeqCst);
}

/// Starts this run's watchdog on the default backend (docker), once per process (later calls
/// do nothing). From then on, when this process ends in any way, the clusters it made and did
/// not keep are removed within seconds.
pub fn start() -> Result<(), WatchdogError> {
    start_for(&BackendChoice::default())
}

/// [`start`] for a run on the ssh backend: the watchdog reconnects to the hosts of the
/// inventory at `inventory` and removes the clusters whose owner file names this run.
pub fn start_ssh(inventory: &std::path::Path) -> Result<(), WatchdogError> {
    start_for(&BackendChoice {
        kind: "ssh".into(),
        inventory: Some(inventory.to_path_buf()),
        engines: None,
    })
}

/// [`start`] for a run on the backend `choice` names: the watchdog connects that backend and
/// removes this run's clusters through its cleanup capability. Callers start one where the
/// backend has a janitor whose clusters outlive their owner (`Janitor::outlives_owner`); a
/// watchdog whose backend has no janitor exits at once.
pub fn start_for(choice: &BackendChoice) -> Result<(), WatchdogError> {
    if !SERVES.load(Ordering::SeqCst) {
        return Err(WatchdogError::NotEnabled);
    }
    let slot = PIPE.get_or_init(|| Mutex::new(None));
    let mut held = slot.lock().unwrap_or_else(|e| e.into_inner());
    if held.is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut cmd = Command::new(exe);
    cmd.env(WATCHDOG_VAR, crate::backend::ownership::run_id())
        .env(WATCHDOG_BACKEND_VAR, choice.kind())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.env_remove(WATCHDOG_INVENTORY_VAR);
    if let Some(inv) = &choice.inventory {
        // Absolute: the watchdog may not share our working directory's meaning forever.
        cmd.env(
            WATCHDOG_INVENTORY_VAR,
            std::path::absolute(inv).unwrap_or_else(|_| inv.clone()),
        );
    }
    if let Some(engines) = &choice.engines {
        // The swarm backend's engines file, absolute for the same reason.
        cmd.env(
            crate::connect::ENGINES_VAR,
            std::path::absolute(engines).unwrap_or_else(|_| engines.clone()),
        );
    }
    // A process group of its own: not the terminal's foreground group, so Ctrl-C in the
    // terminal doesn't reach it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(WatchdogError::Spawn)?;
    // The pipe's write end is close-on-exec, so other programs this process starts don't hold
    // it open after it dies.
    *held = child.stdin.take();
    // Not waited for: it outlives this process by design (and reports nothing).
    drop(child);
    Ok(())
}

/// The watchdog itself: waits for the pipe to close, then removes the run's clusters.
fn serve(run: &str) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    // Handlers that do nothing: signals sent to "everything" when a session ends or a job is
    // stopped must not stop the watchdog before it has done its job.
    #[cfg(unix)]
    let _signals: Vec<_> = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        [
            SignalKind::interrupt(),
            SignalKind::hangup(),
            SignalKind::quit(),
            SignalKind::terminate(),
        ]
        .into_iter()
        .filter_map(|k| signal(k).ok())
        .collect()
    });
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let inventory = std::env::var_os(WATCHDOG_INVENTORY_VAR).map(std::path::PathBuf::from);
    let kind = match std::env::var(WATCHDOG_BACKEND_VAR) {
        Ok(k) => k,
        Err(_) if inventory.is_some() => "ssh".into(),
        Err(_) => String::new(),
    };
    let choice = BackendChoice {
        kind,
        inventory,
        engines: None,
    };
    rt.block_on(async {
        let Ok(backend) = choice.connect().await else {
            return;
        };
        let Some(janitor) = backend.janitor() else {
            return;
        };
        // A request the run sent just before it died may still be creating a container (or a
        // launch writing its owner file): look again a moment later, and again while passes
        // still find something.
        let pauses = [0, 1500, 1500, 3000, 3000];
        for (i, pause) in pauses.iter().enumerate() {
            tokio::time::sleep(Duration::from_millis(*pause)).await;
            let pass = tokio::time::timeout(Duration::from_secs(120), janitor.remove_run(run));
            // An error counts as "found something": worth another pass.
            let clean = matches!(pass.await, Ok(Ok(r)) if r.is_empty());
            if clean && i >= 1 {
                break;
            }
        }
    });
}
