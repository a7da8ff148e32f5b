//! One readiness probe of a node: its fault filesystems answering (a node with `faulty_dirs`),
//! the spec's `[ready] log` line (looked for in the service log from a given offset, so a
//! restarted node must log it again) and its `command`; all must hold.

use std::time::Duration;

use super::handle::Node;
use crate::exec::ExecRequest;
use crate::spec::ReadySpec;

impl ReadySpec {
    /// What the check waits for, as an error shows it: `` `cmd` ``, `log /re/`, or both.
    pub fn describe(&self) -> String {
        match (&self.command, &self.log) {
            (Some(c), None) => format!("`{c}`"),
            (None, Some(l)) => format!("a log line matching /{l}/"),
            (Some(c), Some(l)) => format!("`{c}` and a log line matching /{l}/"),
            (None, None) => "nothing".into(),
        }
    }
}

impl Node {
    /// Where the service log ends now, when readiness looks for a log line (else 0): a
    /// restart's readiness counts only lines written after it.
    pub(crate) async fn ready_log_offset(&self) -> usize {
        match self
            .cluster
            .inner
            .spec
            .ready
            .as_ref()
            .and_then(|r| r.log.as_ref())
        {
            Some(_) => self.logs().await.map(|l| l.len()).unwrap_or(0),
            None => 0,
        }
    }

    /// One probe: `Ok` when every check of `ready` holds, else what the last one said.
    pub(crate) async fn probe_ready(
        &self,
        ready: &ReadySpec,
        log_from: usize,
        left: Duration,
    ) -> Result<(), String> {
        if !self.spec().faulty_dirs.is_empty() {
            let mut req = ExecRequest::shell(crate::fault::storage::mounted_check());
            req.timeout = left.clamp(Duration::from_secs(1), Duration::from_secs(10));
            match self.run(req).await {
                Ok(o) if o.success() => {}
                Ok(o) => {
                    return Err(format!(
                        "the fault filesystem is not mounted yet (exit {}{})",
                        o.code,
                        o.tail()
                    ))
                }
                Err(e) => return Err(format!("last error: {e}")),
            }
        }
        if let Some(pattern) = &ready.log {
            let log = self
                .logs()
                .await
                .map_err(|e| format!("last error reading the service log: {e}"))?;
            // A log that shrank was replaced (a fresh file): read it from its start.
            let fresh = log.get(log_from..).unwrap_or(&log);
            let complete = fresh.rfind('\n').map_or("", |i| &fresh[..i]);
            if !complete.lines().any(|l| pattern.is_match(l)) {
                return Err(format!("no service log line matched /{pattern}/ yet"));
            }
        }
        if let Some(command) = &ready.command {
            let mut req = ExecRequest::shell(command);
            req.timeout = left.clamp(Duration::from_secs(1), Duration::from_secs(10));
            match self.run(req).await {
                Ok(o) if o.success() => {}
                Ok(o) => return Err(format!("last exit {}{}", o.code, o.tail())),
                Err(e) => return Err(format!("last error: {e}")),
            }
        }
        Ok(())
    }
}
