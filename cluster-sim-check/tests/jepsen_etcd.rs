//! The register checker on the 102 Jepsen etcd histories Porcupine ships as test data
//! (`fixtures/histories/jepsen/`, read with the Jepsen log converter): it agrees with every
//! published verdict, and the counterexample of an invalid history is a handful of operations
//! (median at most 8), not the dozens the whole search went through.

use std::path::PathBuf;
use std::time::Instant;

use cluster_sim_check::history::{self, Register};

#[test]
fn every_published_verdict_and_small_counterexamples() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/histories/jepsen");
    let verdicts = std::fs::read_to_string(dir.join("verdicts.txt")).unwrap();
    let started = Instant::now();
    let (mut agree, mut sizes) = (0, Vec::new());
    for line in verdicts.lines() {
        let (name, verdict) = line.split_once(' ').unwrap();
        let ops = history::read_jepsen_log(&dir.join(format!("{name}.log"))).unwrap();
        let report = history::check(&ops, &Register).unwrap();
        assert_eq!(
            report.valid(),
            verdict == "linearizable",
            "{name}: published {verdict}, checker says:\n{report}"
        );
        agree += 1;
        if !report.valid() {
            assert_eq!(report.violations.len(), 1, "{name}: one key");
            sizes.push(report.violations[0].ops.len());
        }
    }
    let took = started.elapsed();
    sizes.sort_unstable();
    let median = sizes[sizes.len() / 2];
    eprintln!(
        "{agree}/102 verdicts agree in {took:.2?}; counterexamples of {} invalid histories: median {median}, {}..={} operations",
        sizes.len(),
        sizes[0],
        sizes[sizes.len() - 1]
    );
    assert_eq!(agree, 102);
    assert_eq!(sizes.len(), 79);
    assert!(median <= 8, "median counterexample of {median} operations");
}
