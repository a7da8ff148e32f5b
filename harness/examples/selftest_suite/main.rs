//! A fixture suite for the harness's self-tests (`harness/tests/selftest.rs`): tests that pass,
//! fail, panic, time out and hit provisioning errors, run as a subprocess and checked from the
//! outside (exit code, console, JUnit, Docker left clean).

mod selftest {
    pub mod faults;
    pub mod outcomes;
    pub mod panics;
    pub mod retries;
    pub mod shared;
    pub mod signals;
    pub mod walks;
}

fn main() {
    harness::main()
}
