//! The test binary's own `--help`, and the check that every flag before `--` is one the harness
//! takes, with a value it can use: a bad one is one line and exit 2, before the harness's own
//! flags (`--partition`, `--failed`) are taken out and libtest's are parsed (`libtest/args.rs`).

use std::ffi::OsString;

/// Flags that take no value.
const SWITCHES: &[&str] = &[
    "--list",
    "--exact",
    "--ignored",
    "--include-ignored",
    "--nocapture",
    "--show-output",
    "--failed",
    "--quiet",
    "-q",
    "--test",
    "--bench",
];

/// Flags that take a value (`--flag VALUE` or `--flag=VALUE`), and what the value may be.
const VALUED: &[(&str, Values)] = &[
    ("--skip", Values::Any),
    ("--test-threads", Values::Count),
    ("--partition", Values::Any),
    ("--format", Values::OneOf(&["pretty", "terse", "json"])),
    ("--color", Values::OneOf(&["auto", "always", "never"])),
    ("--logfile", Values::Any),
    ("-Z", Values::OneOf(&["unstable-options"])),
];

/// What a flag's value may be.
#[derive(Clone, Copy)]
enum Values {
    /// Anything (checked later, as `--partition` is).
    Any,
    /// A whole number above 0.
    Count,
    /// One of these words.
    OneOf(&'static [&'static str]),
}

/// The help text: what the harness takes, and what the flags mean here.
pub const HELP: &str = "\
cluster-sim test harness: runs the suite's #[cluster_test]s, each on its own cluster.

Usage: cargo test --test <target> -- [FILTER...] [OPTIONS]

Selecting tests
  FILTER...                  run the tests whose name contains any FILTER (several allowed)
  --exact                    a FILTER (and --skip) matches a whole name only
  --skip PATTERN             leave out tests matching PATTERN (repeatable)
  --ignored                  run only the ignored tests
  --include-ignored          run ignored tests too
  --failed                   run only the tests (matrix cases, walks) that failed or errored in
                             the latest earlier run (read from target/cluster-sim/runs/)
  --partition SCHEME:M/N     run shard M of N: hash (stable per name), count (round robin) or
                             time (balanced by the durations earlier runs recorded; hash for
                             tests never timed); M/N alone is hash
  --list                     list the tests (with --format terse: one `name: test` a line,
                             as nextest reads it); touches no engine

Output
  --nocapture                what a test prints still goes into its test.log and JUnit case
                             (the harness always captures it); this also shows it on the terminal
  --show-output              accepted, as libtest's (failures always show their output)
  --format pretty|terse|json the console format (-Z unstable-options is accepted, not needed)
  --color auto|always|never  colours on the console
  -q, --quiet                one character per test
  --logfile PATH             also write the results to PATH
  --test-threads N           tests running at once (cluster tests also wait on the node budget)
  --test, --bench            accepted; there are no benchmarks, so --bench runs nothing
  -h, --help                 this text

Variables (the environment wins over cluster-sim.toml)
  CLUSTER_SIM_BACKEND        docker (default), ssh, memory or swarm
  CLUSTER_SIM_INVENTORY      inventory file for the ssh backend
  CLUSTER_SIM_ENGINES        engines file for the swarm backend
  CLUSTER_SIM_JUNIT          the JUnit report (default target/cluster-sim/junit.xml)
  CLUSTER_SIM_REPORT         the HTML report (default report.html beside the JUnit report)
  CLUSTER_SIM_ARTIFACTS      the per-run directories (default target/cluster-sim/runs)
  CLUSTER_SIM_KEEP           keep artifacts: never, on-failure (default), always
  CLUSTER_SIM_KEEP_RUNS      earlier run directories kept (default 20; 0 keeps all)
  CLUSTER_SIM_RETRIES        more attempts for a failing test (overrides the attribute)
  CLUSTER_SIM_TIMEOUT        default deadline of a test (default 5m)
  CLUSTER_SIM_NODE_BUDGET    most nodes alive at once across the run's tests (default 12)
  CLUSTER_SIM_PARTITION      the shard, as --partition (which wins); else CI_NODE_INDEX/TOTAL
  CLUSTER_SIM_SEED           the nemesis seed, to replay a run's faults
  CLUSTER_SIM_SUBNET_POOL    where cluster networks get their subnets (default 10.199.0.0/16)
  CLUSTER_SIM_IMAGE_DIR      the node image definition (default docker/node)
  CLUSTER_SIM_PULL           1: pull the base image instead of bootstrapping it
  CI_PROJECT_DIR             JUnit attachments are relative to it (default: the workspace root)
  RUST_LOG                   library log lines into each test's test.log (default warn)

cluster-sim.toml at the workspace root may set backend, inventory, junit, report, artifacts,
keep, keep_runs, node_budget, timeout and retries; paths in it are relative to the workspace.
";

/// What the command line asks before any test is looked at.
#[derive(Debug, PartialEq, Eq)]
pub enum Early {
    /// Run (or list) as the flags say.
    Go,
    /// Print [`HELP`] and exit 0.
    Help,
}

/// Checks every flag of `argv` (program name first) before `--`: `Help` for `-h`/`--help`,
/// else an error line for a flag the harness does not take or a value it cannot use.
pub fn check(argv: &[OsString]) -> Result<Early, String> {
    let mut iter = argv.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(Early::Help);
        }
        if SWITCHES.contains(&arg.as_ref()) {
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.to_string(), None),
        };
        let Some((_, values)) = VALUED.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unknown flag {name} (see --help)"));
        };
        let value = match inline {
            Some(v) => v,
            None => iter
                .next()
                .map(|v| v.into_owned())
                .ok_or_else(|| format!("{name} needs a value (see --help)"))?,
        };
        match values {
            Values::Any => {}
            Values::Count => {
                if value.parse::<usize>().map_or(true, |n| n == 0) {
                    return Err(format!("{name} {value:?}: expected a number above 0"));
                }
            }
            Values::OneOf(words) => {
                if !words.contains(&value.as_str()) {
                    return Err(format!(
                        "{name} {value:?}: expected one of {}",
                        words.join(", ")
                    ));
                }
            }
        }
    }
    Ok(Early::Go)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(list: &[&str]) -> Vec<OsString> {
        std::iter::once("t")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn flags_values_and_help() {
        let ok = [
            &["a", "b", "--exact", "--skip", "c", "--test-threads=2"][..],
            &["--list", "--format", "terse"],
            &["--exact", "--nocapture", "x::y"],
            &["--partition", "time:1/3", "--failed", "--color=never"],
            &["--", "--not-a-flag"],
        ];
        for a in ok {
            assert_eq!(check(&argv(a)), Ok(Early::Go), "{a:?}");
        }
        assert_eq!(check(&argv(&["x", "--help"])), Ok(Early::Help));
        assert_eq!(check(&argv(&["-h"])), Ok(Early::Help));
        for (a, says) in [
            (&["--frobnicate"][..], "unknown flag --frobnicate"),
            (
                &["--test-threads", "0"],
                "--test-threads \"0\": expected a number above 0",
            ),
            (
                &["--format=xml"],
                "--format \"xml\": expected one of pretty, terse, json",
            ),
            (&["--skip"], "--skip needs a value"),
        ] {
            let e = check(&argv(a)).unwrap_err();
            assert!(e.starts_with(says), "{a:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        for needle in [
            "--partition",
            "--failed",
            "--exact",
            "CLUSTER_SIM_",
            "cluster-sim.toml",
        ] {
            assert!(HELP.contains(needle), "{needle}");
        }
    }
}
