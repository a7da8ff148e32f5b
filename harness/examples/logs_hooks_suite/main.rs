//! A fixture suite for `harness/tests/logs_hooks.rs`: service logs (readiness by a log line,
//! `fail_on_log`, `allow_log`) and `[[hook]]`s, run as a subprocess and checked from the
//! outside. Its own suite, so the main self-test suite's counts stay as they are.

mod logs;

fn main() {
    harness::main()
}
