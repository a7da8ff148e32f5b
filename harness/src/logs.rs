//! Library logs where the test is: the harness's `tracing` subscriber writes cluster-sim's
//! events (warnings and above, or what `RUST_LOG` asks for) into the running test's `test.log`
//! (and so its JUnit `system-out`), and events outside any test to stderr.
//!
//! The test is found as its prints are (`prints.rs`): a task-local log, set around the
//! attempt's task and the body's own task. Events from threads or tasks no test owns (a shared
//! cluster's coordinator, the runtime's blocking pool) have no test to go to: they reach
//! stderr, as they would under any other subscriber.

use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::artifacts::TestLog;

tokio::task_local! {
    static EVENTS: TestLog;
}

/// What `RUST_LOG` means when unset or unreadable: library warnings and errors.
const DEFAULT_FILTER: &str = "warn";

/// Runs `fut` with library events routed into `log`.
pub(crate) fn scope<F: Future>(log: TestLog, fut: F) -> impl Future<Output = F::Output> {
    EVENTS.scope(log, fut)
}

/// Installs the subscriber for the process, unless one already is (a test binary that set its
/// own keeps it). A `RUST_LOG` that does not parse is a warning and the default applies.
pub(crate) fn install() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG {v:?}: {e}; using {DEFAULT_FILTER:?}");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let _ = tracing_subscriber::registry()
        .with(TestLogLayer.with_filter(filter))
        .try_init();
}

/// Writes each event into the running test's log, or to stderr outside any test.
struct TestLogLayer;

impl<S: Subscriber> Layer<S> for TestLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let line = format_event(event);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let routed = EVENTS.try_with(|log| log.note(&level, &line)).is_ok();
        if !routed {
            let _ = writeln!(std::io::stderr().lock(), "{level}: {line}");
        }
    }
}

/// `target: message key=value ...`, one line.
fn format_event(event: &Event<'_>) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut line = format!("{}: {}", event.metadata().target(), fields.message);
    if !fields.rest.is_empty() {
        line.push_str(&fields.rest);
    }
    line.replace('\n', " | ")
}

/// An event's message and its other fields.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_go_to_the_scoped_log() {
        install();
        let log = TestLog::new();
        scope(log.clone(), async {
            tracing::warn!(node = "n1", "cleanup failed");
            tracing::debug!("below the default level");
        })
        .await;
        let text = log.text();
        assert!(
            text.contains("[warn] harness::logs::tests: cleanup failed node=n1"),
            "{text}"
        );
        assert!(!text.contains("below the default"), "{text}");
    }
}
