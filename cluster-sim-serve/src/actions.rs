//! Actions on a status change: a shell command on the server's machine, or a webhook POST.

use std::time::Duration;

use serde::Serialize;

use super::check::{Action, ActionKind, CheckDef};
use super::status::Status;
use super::store::CheckResult;

/// How long an action may take before it is abandoned.
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What a webhook receives.
#[derive(Debug, Serialize)]
pub struct Change<'a> {
    /// Check name.
    pub check: &'a str,
    /// Its cluster.
    pub cluster: &'a str,
    /// The new status.
    pub status: Status,
    /// The status before (`None` for a check's first result).
    pub previous: Option<Status>,
    /// The new result's summary.
    pub summary: &'a str,
    /// When, in Unix milliseconds.
    pub at_ms: i64,
}

/// Whether an action wants this change.
fn wants(a: &Action, status: Status) -> bool {
    a.on.is_empty() || a.on.contains(&status)
}

/// Runs every action of `def` that wants the change; failures are logged, never fatal.
pub async fn fire(
    http: &reqwest::Client,
    def: &CheckDef,
    previous: Option<Status>,
    result: &CheckResult,
) {
    let change = Change {
        check: &def.name,
        cluster: &def.cluster,
        status: result.status,
        previous,
        summary: &result.summary,
        at_ms: result.at_ms,
    };
    for a in def.actions.iter().filter(|a| wants(a, result.status)) {
        let outcome = match &a.kind {
            ActionKind::Command(cmd) => command(cmd, &change).await,
            ActionKind::Webhook(url) => webhook(http, url, &change).await,
        };
        if let Err(e) = outcome {
            tracing::warn!("check {}: action failed: {e}", def.name);
        }
    }
}

async fn command(cmd: &str, c: &Change<'_>) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh");
    child
        .arg("-c")
        .arg(cmd)
        .env("CHECK_NAME", c.check)
        .env("CHECK_CLUSTER", c.cluster)
        .env("CHECK_STATUS", c.status.as_str())
        .env(
            "CHECK_PREVIOUS",
            c.previous.map(Status::as_str).unwrap_or(""),
        )
        .env("CHECK_SUMMARY", c.summary)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(ACTION_TIMEOUT, child.output())
        .await
        .map_err(|_| format!("`{cmd}` took longer than {ACTION_TIMEOUT:?}"))?
        .map_err(|e| format!("`{cmd}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{cmd}` exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

async fn webhook(http: &reqwest::Client, url: &str, c: &Change<'_>) -> Result<(), String> {
    let resp = http
        .post(url)
        .timeout(ACTION_TIMEOUT)
        .json(c)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST {url}: {}", resp.status()))
    }
}
