//! Commands on memory nodes: a process group of its own per command, run in the node's
//! directory, its output in files of its own (so a background child it leaves behind never
//! holds the reply), killed with its whole group at its deadline.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::capture::Sink;
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to every process of group `pgid`. Through the
/// `kill` utility: the workspace forbids unsafe code, and std signals only a child itself.
pub(super) fn signal_group(pgid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), "--".into(), format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = sent {
        tracing::warn!("kill -{signal} -{pgid}: {e}");
    }
}

/// Copies a finished command's output file into its capture.
fn drain(path: &Path, sink: &mut dyn Sink) -> Result<(), BackendError> {
    use std::io::Read;
    let local = |source| BackendError::Local {
        what: format!("read {}", path.display()),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(local)?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf).map_err(local)?;
        if n == 0 {
            return Ok(());
        }
        sink.push(&buf[..n]);
    }
}

/// Runs `req` on node `node` in `dir` (its working directory), `env` on top of the request's,
/// the output in a directory made under `scratch`; `started` is told the process group's id
/// once it runs (so a lifecycle action can signal it), and `ended` once it is over.
pub(super) async fn run(
    node: &str,
    dir: &Path,
    scratch: &Path,
    env: &[(String, String)],
    req: &ExecRequest,
    started: impl FnOnce(u32),
    ended: impl FnOnce(u32),
) -> Result<ExecOutput, BackendError> {
    let (program, args) = req.argv.split_first().ok_or_else(|| {
        BackendError::refused(format!("exec on node {node}"), "the command is empty")
    })?;
    let outputs = tempfile::Builder::new()
        .prefix(".cluster-sim-exec.")
        .tempdir_in(scratch)
        .map_err(|source| BackendError::Local {
            what: format!("a directory for the output in {}", scratch.display()),
            source,
        })?;
    let file = |name: &str| {
        std::fs::File::create(outputs.path().join(name)).map_err(|source| BackendError::Local {
            what: format!("create {name} in {}", outputs.path().display()),
            source,
        })
    };
    let cwd = match &req.workdir {
        Some(w) if Path::new(w).is_absolute() => Path::new(w).to_path_buf(),
        Some(w) => dir.join(w),
        None => dir.to_path_buf(),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&cwd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(&req.env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file("o")?))
        .stderr(Stdio::from(file("e")?))
        .process_group(0)
        .kill_on_drop(true);
    let began = Instant::now();
    let mut child = cmd.spawn().map_err(|source| BackendError::Local {
        what: format!(
            "node {node}: start `{}` in {}",
            req.display(),
            cwd.display()
        ),
        source,
    })?;
    let pgid = child.id().unwrap_or(0);
    started(pgid);
    let waited = tokio::time::timeout(req.timeout, child.wait()).await;
    let (code, timed_out) = match waited {
        Ok(Ok(status)) => (exit_code(status), false),
        Ok(Err(source)) => {
            ended(pgid);
            return Err(BackendError::Local {
                what: format!("node {node}: wait for `{}`", req.display()),
                source,
            });
        }
        Err(_) => {
            // The whole group: children the command started (even daemonized ones that kept
            // the group) go with it.
            signal_group(pgid, "KILL");
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            (137, true)
        }
    };
    ended(pgid);
    let duration = began.elapsed();
    let (mut stdout, mut stderr) = ExecOutput::captures(node, req);
    drain(&outputs.path().join("o"), &mut stdout)?;
    drain(&outputs.path().join("e"), &mut stderr)?;
    Ok(ExecOutput::from_captured(
        node,
        req,
        code,
        (stdout, stderr),
        duration,
        timed_out,
    ))
}

/// An exit status as a shell reports it: the code, or 128 + the signal that ended it.
fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => i64::from(c),
        (None, Some(s)) => 128 + i64::from(s),
        (None, None) => -1,
    }
}
