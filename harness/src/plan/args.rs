//! libtest's command line, with several filters: `cargo test -- snapshot::basic redis` runs
//! the tests matching any of them, as libtest does. libtest's runner (`crate::libtest`) takes one filter, so the
//! extra positional arguments are pulled out here before it parses the rest.

use std::ffi::OsString;

use crate::libtest::{Arguments, Trial};

/// libtest flags that take a value as the next argument (`--skip X`), unless given `--skip=X`.
const TAKES_VALUE: &[&str] = &[
    "--test-threads",
    "--logfile",
    "--skip",
    "--color",
    "--format",
    "-Z",
];

/// The parsed command line: libtest's arguments and every positional filter.
#[derive(Debug, Clone)]
pub struct Args {
    /// libtest's arguments (their `filter` is the first positional filter).
    pub libtest: Arguments,
    /// Every positional filter, in order.
    pub filters: Vec<String>,
    /// The shard to run (`--partition`, `CLUSTER_SIM_PARTITION`, `CI_NODE_INDEX`/`_TOTAL`).
    pub partition: Option<super::partition::Partition>,
    /// `--failed`: only the cases that failed or errored in the latest earlier run.
    pub failed: bool,
}

/// Pulls the flag `name` out of `argv`, stopping at `--` (past which everything is a filter);
/// whether it was there.
pub fn take_flag(argv: &mut Vec<OsString>, name: &str) -> bool {
    let end = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    let before = argv.len();
    let mut i = 0;
    argv.retain(|a| {
        i += 1;
        !(i <= end && a == name)
    });
    argv.len() != before
}

/// Splits `argv` (program name first) into libtest's part and the extra filters.
pub fn split_filters(argv: Vec<OsString>) -> (Vec<OsString>, Vec<String>) {
    let mut kept = Vec::with_capacity(argv.len());
    let mut extra = Vec::new();
    let mut iter = argv.into_iter();
    if let Some(program) = iter.next() {
        kept.push(program);
    }
    let mut seen_filter = false;
    let mut positional_only = false;
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        let is_flag = !positional_only && text.starts_with('-') && text != "-";
        if is_flag {
            if text == "--" {
                positional_only = true;
                continue;
            }
            let takes_value = TAKES_VALUE.contains(&text.as_str());
            kept.push(arg);
            if takes_value {
                if let Some(v) = iter.next() {
                    kept.push(v);
                }
            }
            continue;
        }
        if seen_filter {
            extra.push(text);
        } else {
            seen_filter = true;
            if positional_only {
                // Past `--` a filter may look like a flag: keep clap from reading it as one.
                kept.push(OsString::from("--"));
            }
            kept.push(arg);
        }
    }
    (kept, extra)
}

impl Args {
    /// Parses the process's arguments: `--help` prints the harness's help and exits 0; a flag
    /// it does not take, a bad value or a bad partition is one error line and exit 2.
    pub fn from_env() -> Self {
        let argv: Vec<OsString> = std::env::args_os().collect();
        match super::help::check(&argv) {
            Ok(super::help::Early::Go) => {}
            Ok(super::help::Early::Help) => {
                print!("{}", super::help::HELP);
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        }
        let partition = super::partition::take_partition_arg(argv).and_then(|(argv, p)| match p {
            Some(p) => Ok((argv, Some(p))),
            None => super::partition::Partition::from_env_vars(|k| std::env::var(k).ok())
                .map(|p| (argv, p)),
        });
        let (argv, partition) = match partition {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        };
        let mut argv = argv;
        let failed = take_flag(&mut argv, "--failed");
        let (kept, extra) = split_filters(argv);
        let libtest = Arguments::parse_from(kept);
        let mut args = Self::new(libtest, extra);
        args.partition = partition;
        args.failed = failed;
        args
    }

    /// `libtest` plus filters beyond its own one.
    pub fn new(libtest: Arguments, extra: Vec<String>) -> Self {
        let mut filters: Vec<String> = libtest.filter.iter().cloned().collect();
        filters.extend(extra);
        Self {
            libtest,
            filters,
            partition: None,
            failed: false,
        }
    }

    /// The runner's arguments for `names`: with one filter or none, as given; with several,
    /// rewritten so the runner selects (and counts as filtered out) exactly the tests that
    /// match any filter: no filter, `--exact`, and every other test named in `--skip`.
    pub fn for_mimic(&self, names: &[String]) -> Arguments {
        if self.filters.len() < 2 {
            return self.libtest.clone();
        }
        let mut a = self.libtest.clone();
        a.filter = None;
        a.exact = true;
        a.skip = names.iter().filter(|n| !self.selects(n)).cloned().collect();
        a
    }

    /// Whether `name` passes the filters and `--skip` (libtest's rules: substring match, or
    /// whole-name match under `--exact`; any filter may match, no skip may).
    pub fn selects(&self, name: &str) -> bool {
        let with_kind = format!("{name}: test");
        let matches = |pattern: &str| {
            if self.libtest.exact {
                name == pattern || with_kind == pattern
            } else {
                with_kind.contains(pattern)
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(|f| matches(f)))
            && !self.libtest.skip.iter().any(|s| matches(s))
    }

    /// Whether a trial is left out by the command line (filters, `--skip`, `--ignored`).
    pub fn is_filtered_out(&self, trial: &Trial) -> bool {
        !self.selects(trial.name()) || (self.libtest.ignored && !trial.has_ignored_flag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        let (kept, extra) = split_filters(
            std::iter::once("t")
                .chain(list.iter().copied())
                .map(OsString::from)
                .collect(),
        );
        Args::new(Arguments::parse_from(kept), extra)
    }

    #[test]
    fn several_filters_select_any() {
        let a = args(&[
            "snapshot::basic",
            "--skip",
            "slow",
            "redis",
            "--test-threads",
            "2",
        ]);
        assert_eq!(a.filters, ["snapshot::basic", "redis"]);
        assert_eq!(a.libtest.skip, ["slow"]);
        assert_eq!(a.libtest.test_threads, Some(2));
        assert!(a.selects("snapshot::basic::save"));
        assert!(a.selects("redis::replication::converge"));
        assert!(!a.selects("etcd::election::kill"));
        assert!(!a.selects("redis::replication::slow_one"));
    }

    #[test]
    fn exact_applies_to_every_filter() {
        let a = args(&["--exact", "a::b::c", "a::b::d"]);
        assert!(a.selects("a::b::c") && a.selects("a::b::d"));
        assert!(!a.selects("a::b::cc"));
        let names: Vec<String> = ["a::b::c", "a::b::cc", "a::b::d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = a.for_mimic(&names);
        assert_eq!(m.filter, None);
        assert!(m.exact);
        assert_eq!(m.skip, ["a::b::cc"]);
    }

    #[test]
    fn failed_is_taken_before_the_separator_only() {
        let mut argv: Vec<OsString> = ["t", "--failed", "x", "--", "--failed"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(take_flag(&mut argv, "--failed"));
        assert_eq!(argv, ["t", "x", "--", "--failed"]);
        assert!(!take_flag(&mut argv, "--failed"));
    }

    #[test]
    fn one_filter_is_left_to_libtest_mimic() {
        let a = args(&["--skip=x", "plain"]);
        assert_eq!(a.filters, ["plain"]);
        let m = a.for_mimic(&[]);
        assert_eq!(m.filter.as_deref(), Some("plain"));
        assert!(!m.exact);
    }
}
