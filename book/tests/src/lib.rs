//! The user guide's samples, compiled: each chapter of `book/src/` is the documentation of a
//! module here, so `cargo test -p cluster-sim-book` (and `cargo test --workspace`) runs every
//! Rust sample of the book as a doctest against the workspace's real crates. Samples that need a
//! cluster are `no_run`: they are compiled, not run.
//!
//! `mdbook test` can't do this: it hands rustdoc no dependencies, so a sample that uses
//! `harness` or `cluster_sim` fails to compile there. The book itself is built with
//! `mdbook build book` (into `target/book/`).
//!
//! Hidden lines (`# use harness::prelude::*;`) work in both: mdbook hides them from readers,
//! rustdoc compiles them.

/// Only compiled for `cargo test`: the chapters are data for rustdoc, not an API.
macro_rules! chapters {
    ($($module:ident = $file:literal;)*) => {$(
        #[cfg(doctest)]
        #[doc = include_str!(concat!("../../src/", $file))]
        pub mod $module {}
    )*};
}

chapters! {
    introduction = "introduction.md";
    getting_started = "getting-started.md";
    own_project = "own-project.md";
    writing_tests = "writing-tests.md";
    many_cases = "many-cases.md";
    results = "results.md";
    cluster_spec = "cluster-spec.md";
    your_own_service = "your-own-service.md";
    faults = "faults.md";
    histories = "histories.md";
    ssh = "ssh.md";
    swarm = "swarm.md";
    service_mode = "service-mode.md";
    cli = "cli.md";
    big_clusters = "big-clusters.md";
    variables = "variables.md";
    troubleshooting = "troubleshooting.md";
}
