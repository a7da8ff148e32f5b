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
//! touches only resources labelled with its run id, and exits when done. Started with
//! [`start_ssh`], it cleans an ssh inventory's hosts instead: the clusters whose `.owner` file
//! names its run (see `ssh/owner.rs`), fault rules and working directories with them.

use std::io::Read;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Environment variable that makes a program that called [`intercept`] act as a watchdog for
/// the run it names.
pub const WATCHDOG_VAR: &str = "CLUSTER_SIM_WATCHDOG";

/// Environment variable naming the ssh inventory whose hosts the watchdog also cleans (set by
/// [`start_ssh`]); unset, it cleans the Docker engine only.
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

/// Starts this run's watchdog, once per process (later calls do nothing). From then on, when
/// this process ends in any way, the clusters it made and did not keep are removed within
/// seconds.
pub fn start() -> Result<(), WatchdogError> {
    spawn(None)
}

/// [`start`] for a run on the ssh backend: the watchdog reconnects to the hosts of the
/// inventory at `inventory` and removes the clusters whose owner file names this run.
pub fn start_ssh(inventory: &std::path::Path) -> Result<(), WatchdogError> {
    // Absolute: the watchdog may not share our working directory's meaning forever.
    let inventory = std::path::absolute(inventory).unwrap_or_else(|_| inventory.to_path_buf());
    spawn(Some(&inventory))
}

fn spawn(inventory: Option<&std::path::Path>) -> Result<(), WatchdogError> {
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
    cmd.env(WATCHDOG_VAR, crate::docker::run_id())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.env_remove(WATCHDOG_INVENTORY_VAR);
    if let Some(inv) = inventory {
        cmd.env(WATCHDOG_INVENTORY_VAR, inv);
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
    if let Some(inv) = std::env::var_os(WATCHDOG_INVENTORY_VAR) {
        rt.block_on(serve_ssh(std::path::Path::new(&inv), run));
        return;
    }
    rt.block_on(async {
        let Ok(docker) = crate::docker::DockerBackend::connect().await else {
            return;
        };
        // A request the run sent just before it died may still be creating a container: look
        // again a moment later, and again while passes still find something.
        let pauses = [1500, 1500, 3000, 3000];
        for (i, pause) in std::iter::once(&0).chain(pauses.iter()).enumerate() {
            tokio::time::sleep(Duration::from_millis(*pause)).await;
            let pass = tokio::time::timeout(Duration::from_secs(120), docker.remove_run(run));
            // An engine error counts as "found something": worth another pass.
            let clean = matches!(pass.await, Ok(Ok(removed)) if removed.is_empty());
            if clean && i >= 1 {
                break;
            }
        }
    });
}

/// The ssh half of [`serve`]: passes over the inventory's hosts until one finds nothing.
async fn serve_ssh(inventory: &std::path::Path, run: &str) {
    let Ok(ssh) = crate::ssh::SshBackend::from_file(inventory) else {
        return;
    };
    // As on docker: a launch under way when the run died may write its owner file a moment
    // after the first pass.
    let pauses = [0, 1500, 1500, 3000, 3000];
    for (i, pause) in pauses.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        let pass = tokio::time::timeout(Duration::from_secs(120), ssh.remove_run(run));
        let clean = matches!(pass.await, Ok(Ok(removed)) if removed.is_empty());
        if clean && i >= 1 {
            break;
        }
    }
    ssh.close().await;
}
