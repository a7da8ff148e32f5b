//! `cluster-sim exec NAME NODE -- CMD`: runs a command on a node of a kept cluster and passes
//! its output through byte for byte, with its exit code.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use cluster_sim::{Backend, ExecRequest, Truncated};

#[expect(
    clippy::too_many_arguments,
    reason = "one per flag of the exec subcommand"
)]
pub(crate) async fn exec(
    backend: &dyn Backend,
    name: String,
    node: String,
    env: Vec<String>,
    workdir: Option<String>,
    user: Option<String>,
    timeout: Duration,
    command: Vec<String>,
) -> Result<ExitCode> {
    let mut req = ExecRequest::argv(command);
    for kv in env {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--env {kv:?}: expected KEY=VALUE");
        };
        req.env.insert(k.into(), v.into());
    }
    req.workdir = workdir;
    req.user = user;
    req.timeout = timeout;
    // Output comes back whole once the command ends (the Backend API returns a result, not a
    // stream). Memory stays bounded all the same: a stream past the in-memory limit is
    // spooled to a private temporary directory and copied out from there, byte for byte.
    let spool = tempfile::Builder::new()
        .prefix("cluster-sim-exec.")
        .tempdir()
        .context("cannot make a temporary directory for the command's output")?;
    req.capture.spool_dir = Some(spool.path().to_path_buf());
    let out = backend
        .exec(&name, &node, &req)
        .await
        .with_context(|| format!("node {node} of {name}: `{}`", req.display()))?;
    copy_stream(
        &out.stdout,
        out.stdout_truncated.as_ref(),
        &mut std::io::stdout().lock(),
    )?;
    copy_stream(
        &out.stderr,
        out.stderr_truncated.as_ref(),
        &mut std::io::stderr().lock(),
    )?;
    if out.timed_out {
        eprintln!(
            "cluster-sim: `{}` timed out after {} and was killed",
            req.display(),
            humantime::format_duration(timeout)
        );
    }
    Ok(ExitCode::from(u8::try_from(out.code).unwrap_or(1)))
}

/// Writes one stream of a command's output: from its spool file when it outgrew memory.
fn copy_stream(kept: &[u8], cut: Option<&Truncated>, to: &mut dyn Write) -> Result<()> {
    match cut {
        None => to.write_all(kept)?,
        Some(t) => match (&t.spool, &t.spool_error) {
            (Some(path), None) => {
                let mut f = std::fs::File::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                std::io::copy(&mut f, to)?;
            }
            _ => bail!(
                "the command's output could not be kept whole: {}",
                t.note("output")
            ),
        },
    }
    to.flush()?;
    Ok(())
}
