//! Self-tests of sharding: the fixture suite listed and run as two shards, by `--partition`,
//! `CLUSTER_SIM_PARTITION` and GitLab's `CI_NODE_INDEX`/`CI_NODE_TOTAL`: shards are disjoint,
//! together the whole suite, and each writes its own report.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{assert_valid, run_suite};

/// No test run here needs a cluster: nothing may contact the engine.
const UNREACHABLE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

fn listed(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> BTreeSet<String> {
    let mut all_args = vec!["--list", "--format", "terse"];
    all_args.extend_from_slice(args);
    let mut all_env = vec![UNREACHABLE];
    all_env.extend_from_slice(env);
    let out = run_suite(dir, &all_args, &all_env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

fn assert_split(all: &BTreeSet<String>, one: &BTreeSet<String>, two: &BTreeSet<String>) {
    assert!(!one.is_empty() && !two.is_empty(), "{one:?} {two:?}");
    assert!(one.is_disjoint(two), "{one:?} {two:?}");
    let union: BTreeSet<String> = one.union(two).cloned().collect();
    assert_eq!(&union, all);
}

#[test]
fn list_shards_are_disjoint_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let all = listed(dir.path(), &[], &[]);
    assert!(all.len() >= 10, "{all:?}");
    for scheme in ["hash", "count"] {
        let one = listed(dir.path(), &["--partition", &format!("{scheme}:1/2")], &[]);
        let two = listed(dir.path(), &[&format!("--partition={scheme}:2/2")], &[]);
        assert_split(&all, &one, &two);
    }
    // The environment gives the same shards as the flag; the flag wins over it.
    let hash1 = listed(dir.path(), &["--partition", "hash:1/2"], &[]);
    assert_eq!(
        listed(dir.path(), &[], &[("CLUSTER_SIM_PARTITION", "1/2")]),
        hash1
    );
    assert_eq!(
        listed(
            dir.path(),
            &[],
            &[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "2")]
        ),
        hash1
    );
    assert_eq!(
        listed(
            dir.path(),
            &["--partition", "hash:1/2"],
            &[("CLUSTER_SIM_PARTITION", "2/2")]
        ),
        hash1
    );
}

#[test]
fn two_shards_run_their_own_tests_into_their_own_reports() {
    let dir = tempfile::tempdir().unwrap();
    // The no-cluster tests, over two shards (by count, so each holds one or more of them).
    let filters = ["plain_passes", "prints_and_fails", "ignored"];
    let all = listed(dir.path(), &filters, &[]);
    let mut shards = Vec::new();
    let case_re = regex::Regex::new(r#"<testcase name="([^"]+)""#).unwrap();
    for index in 1..=2 {
        let part = format!("count:{index}/2");
        let junit = dir.path().join(format!("junit-{index}.xml"));
        let junit_s = junit.display().to_string();
        let env = [
            UNREACHABLE,
            ("CLUSTER_SIM_PARTITION", part.as_str()),
            ("CLUSTER_SIM_JUNIT", junit_s.as_str()),
        ];
        let mine = listed(dir.path(), &filters, &env[1..2]);
        let out = run_suite(dir.path(), &filters, &env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(matches!(out.status.code(), Some(0 | 101)), "{stdout}");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert_valid(&junit);
        let cases: BTreeSet<String> = case_re
            .captures_iter(&xml)
            .map(|c| c[1].to_string())
            .collect();
        // Each case of the shard, and none other, is in its report.
        let short: BTreeSet<String> = mine
            .iter()
            .map(|n| n.rsplit("::").next().unwrap().to_string())
            .collect();
        assert!(
            cases
                .iter()
                .all(|c| short.iter().any(|s| c.ends_with(s.as_str()))),
            "{cases:?} vs {short:?}"
        );
        assert_eq!(cases.len(), mine.len(), "{xml}");
        shards.push(mine);
    }
    assert_split(&all, &shards[0], &shards[1]);
    assert!(!dir.path().join("junit.xml").exists());
}

#[test]
fn a_bad_partition_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, env) in [
        (&["--partition", "hash:3/2"][..], &[][..]),
        (&["--list"][..], &[("CLUSTER_SIM_PARTITION", "x/y")][..]),
    ] {
        let out = run_suite(dir.path(), args, env);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains("hash:M/N"), "{stderr}");
    }
}
