//! `requires = ["netem"]`: kernel features a test needs. The backend is probed once per run,
//! at planning time and only when a selected test declares a requirement (never for
//! `--list`); a test whose requirement is missing is reported skipped with the reason, in the
//! console, its `test.log` and the JUnit `<skipped message=...>`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster_sim_core::fault::{backend_capabilities, Capabilities, KERNEL_FEATURES};

use super::ctx::RunCtx;
use crate::artifacts::{self, TestLog};
use crate::outcome::{AttemptResult, TestFinished};
use crate::plan::TestDef;
use crate::report::RunEvent;

/// Longest the probe may take (on docker it may build the node image first).
const PROBE_LIMIT: Duration = Duration::from_secs(20 * 60);

/// What the run learned about the backend's kernel features.
pub(crate) enum Features {
    /// No selected test declared a requirement: nothing was probed.
    NotProbed,
    /// The probe's answer.
    Probed(Capabilities),
    /// The probe failed; tests with requirements run anyway (and meet their own error).
    Unknown,
}

/// Probes the backend's kernel features if a test in `to_run` declares a requirement.
pub(crate) fn probe(ctx: &RunCtx, to_run: &[&'static TestDef]) -> Features {
    let Some(first) = to_run.iter().find(|d| !d.requires.is_empty()) else {
        return Features::NotProbed;
    };
    let r = ctx.handle.block_on(async {
        let backend = ctx.backend().await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(PROBE_LIMIT, backend_capabilities(backend.as_ref())).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "took over {}",
                humantime::format_duration(PROBE_LIMIT)
            )),
        }
    });
    match r {
        Ok(caps) => Features::Probed(caps),
        Err(e) => {
            eprintln!(
                "warning: could not probe the {} backend's kernel features for `requires` (first in {}): {e}; such tests run anyway",
                ctx.settings.backend.as_str(),
                first.full_name()
            );
            Features::Unknown
        }
    }
}

impl Features {
    /// Why `def` must be skipped here, if it must: its first unmet requirement.
    pub(crate) fn unmet(&self, def: &TestDef, backend: &str) -> Option<String> {
        for &name in def.requires {
            if !KERNEL_FEATURES.contains(&name) {
                return Some(format!(
                    "requires {name}, which is not a known feature ({})",
                    KERNEL_FEATURES.join(", ")
                ));
            }
            if let Features::Probed(caps) = self {
                if caps.has(name) == Some(false) {
                    return Some(format!(
                        "requires {name}: {} is missing on the {backend} backend",
                        Capabilities::missing_what(name)
                    ));
                }
            }
        }
        None
    }
}

/// Reports `case` skipped for `reason`: a `test.log` line and a skipped test.
pub(crate) fn report_skipped(ctx: &RunCtx, case: &crate::plan::Case, reason: &str) {
    let name = case.name.clone();
    let location = case.def.location();
    let log = TestLog::new();
    ctx.reporters.emit(&RunEvent::AttemptStarted {
        name: &name,
        location: &location,
        log: &log,
    });
    ctx.reporters.emit(&RunEvent::AttemptEnded {
        log: &log,
        summary: &format!("SKIPPED: {reason}"),
    });
    let mut attachments = Vec::new();
    if ctx.settings.keep.keeps(true) {
        let path = ctx
            .run_dir
            .join(artifacts::test_dir_name(&name))
            .join("test.log");
        match log.persist(&path) {
            Ok(()) => {
                attachments.push(std::path::absolute(&path).unwrap_or(path));
                ctx.kept_any.store(true, Ordering::SeqCst);
            }
            Err(e) => eprintln!("warning: cannot write {}: {e}", path.display()),
        }
    }
    let attempt = AttemptResult::skipped(reason.to_string(), log.text(), attachments);
    ctx.report(&TestFinished::once(name, location, None, attempt));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::TestFuture;
    use crate::plan::TestBody;

    fn body() -> TestFuture {
        Box::pin(async { Ok(()) })
    }

    #[test]
    fn missing_features_are_named_and_unknown_ones_refused() {
        let def = TestDef::new("s::f", "t", "f.rs", 1, ".", TestBody::Plain(body))
            .requires(&["htb", "netem"]);
        let caps = Capabilities {
            nft: true,
            tc: true,
            htb: true,
            ..Default::default()
        };
        assert_eq!(
            Features::Probed(caps.clone())
                .unmet(&def, "docker")
                .as_deref(),
            Some("requires netem: the kernel module sch_netem is missing on the docker backend")
        );
        let all = Capabilities {
            netem: true,
            ..caps
        };
        assert_eq!(Features::Probed(all).unmet(&def, "docker"), None);
        assert_eq!(Features::Unknown.unmet(&def, "docker"), None);
        // A probe's answer as the backends print it: FUSE missing skips a storage test.
        let storage =
            TestDef::new("s::g", "t", "f.rs", 1, ".", TestBody::Plain(body)).requires(&["fuse"]);
        let no_fuse = Capabilities::parse("nft=yes\ntc=yes\nhtb=yes\nnetem=no\nfuse=no\n");
        let reason = Features::Probed(no_fuse).unmet(&storage, "ssh").unwrap();
        assert!(
            reason.starts_with("requires fuse: FUSE (/dev/fuse")
                && reason.ends_with("is missing on the ssh backend"),
            "{reason}"
        );
        let fuse = Capabilities::parse("nft=yes\nfuse=yes\n");
        assert_eq!(Features::Probed(fuse).unmet(&storage, "ssh"), None);
        let bad =
            TestDef::new("s::f", "t", "f.rs", 1, ".", TestBody::Plain(body)).requires(&["warp"]);
        assert!(Features::NotProbed
            .unmet(&bad, "docker")
            .unwrap()
            .contains("not a known feature"));
    }
}
