//! Sharding a run across CI executors: `--partition hash:M/N` (or `count:M/N`, `time:M/N`) on
//! the command line, else `CLUSTER_SIM_PARTITION=M/N`, else GitLab's
//! `CI_NODE_INDEX`/`CI_NODE_TOTAL`.
//!
//! Shards are deterministic, disjoint, and together the whole suite: `hash` puts a test in shard
//! `fnv1a64(full name) % N + 1` (a fixed hash, so every executor and every build agrees, unlike
//! std's randomly seeded one); `count` deals the sorted list of every test of the binary round
//! robin (before filters, so a test's shard never depends on the filters given); `time` deals
//! the tests with a recorded duration longest first, each to the shard with the least work so
//! far, after placing the tests it knows nothing of by hash (so every executor agrees as long
//! as it reads the same durations). All apply to the planned cases (one per matrix combination),
//! and `--list` shows only the shard's.

use std::collections::HashMap;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// How tests are dealt into shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// By a stable hash of the test's full name: a test keeps its shard as others come and go.
    Hash,
    /// Round robin over the sorted names: even shard sizes.
    Count,
    /// By the durations recorded in earlier runs (greedy, longest first): even shard times.
    Time,
}

/// Shard `index` (1-based) of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// How tests are dealt.
    pub scheme: Scheme,
    /// This shard, from 1.
    pub index: u32,
    /// How many shards.
    pub total: u32,
}

/// A partition that can't be read: says what was given and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin} {value:?}: expected hash:M/N, count:M/N or time:M/N (or M/N) with 1 <= M <= N")]
pub struct PartitionError {
    /// Where it came from (`--partition`, `CLUSTER_SIM_PARTITION`, ...).
    pub origin: String,
    /// What was given.
    pub value: String,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Hash => "hash",
            Scheme::Count => "count",
            Scheme::Time => "time",
        };
        write!(f, "{scheme}:{}/{}", self.index, self.total)
    }
}

/// FNV-1a, 64 bits: tiny, fixed, the same on every platform and Rust version.
pub fn stable_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Partition {
    /// Reads `hash:M/N`, `count:M/N` or `M/N` (hash); `origin` names the source for errors.
    pub fn parse(value: &str, origin: &str) -> Result<Self, PartitionError> {
        let err = || PartitionError {
            origin: origin.to_string(),
            value: value.to_string(),
        };
        let (scheme, rest) = match value.trim().split_once(':') {
            Some(("hash", r)) => (Scheme::Hash, r),
            Some(("count", r)) => (Scheme::Count, r),
            Some(("time", r)) => (Scheme::Time, r),
            Some(_) => return Err(err()),
            None => (Scheme::Hash, value.trim()),
        };
        let (m, n) = rest.split_once('/').ok_or_else(err)?;
        let index: u32 = m.trim().parse().map_err(|_| err())?;
        let total: u32 = n.trim().parse().map_err(|_| err())?;
        if index == 0 || total == 0 || index > total {
            return Err(err());
        }
        Ok(Self {
            scheme,
            index,
            total,
        })
    }

    /// The partition the environment asks for: `CLUSTER_SIM_PARTITION`, else GitLab's
    /// `CI_NODE_INDEX`/`CI_NODE_TOTAL` (parallel jobs; a total of 1 is no partition). Under
    /// nextest (`NEXTEST`/`NEXTEST_RUN_ID` set) the environment is ignored: nextest runs one
    /// test per process and has its own `--partition`, which would otherwise apply twice.
    pub fn from_env_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, PartitionError> {
        let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        if set("NEXTEST").is_some() || set("NEXTEST_RUN_ID").is_some() {
            return Ok(None);
        }
        if let Some(v) = set("CLUSTER_SIM_PARTITION") {
            return Self::parse(&v, "CLUSTER_SIM_PARTITION").map(Some);
        }
        match (set("CI_NODE_INDEX"), set("CI_NODE_TOTAL")) {
            (Some(i), Some(t)) => {
                let p = Self::parse(&format!("{i}/{t}"), "CI_NODE_INDEX/CI_NODE_TOTAL")?;
                Ok((p.total > 1).then_some(p))
            }
            _ => Ok(None),
        }
    }

    /// Which of `names` (every test of the binary, in the run's sorted order) this shard holds;
    /// `time` with no durations known is `hash`.
    pub fn select(&self, names: &[String]) -> Vec<bool> {
        self.select_timed(names, &HashMap::new())
    }

    /// [`Partition::select`] with the durations (milliseconds) recorded for tests by name.
    pub fn select_timed(&self, names: &[String], durations: &HashMap<String, u64>) -> Vec<bool> {
        let n = u64::from(self.total);
        let me = u64::from(self.index - 1);
        match self.scheme {
            Scheme::Hash => names.iter().map(|t| stable_hash(t) % n == me).collect(),
            Scheme::Count => (0..names.len()).map(|i| i as u64 % n == me).collect(),
            Scheme::Time => time_shards(names, durations, self.total)
                .into_iter()
                .map(|s| u64::from(s) == me)
                .collect(),
        }
    }

    /// The shard's own report beside `path`: `junit.xml` becomes `junit-M.xml`, so shards run
    /// in one place don't overwrite each other's (and `junit-*.xml` collects them all).
    pub fn report_path(&self, path: &Path) -> PathBuf {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "junit".into());
        let ext = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        path.with_file_name(format!("{stem}-{}{ext}", self.index))
    }
}

/// Each of `names`' shard (from 0) of `total`, balanced by `durations`: the tests with none go
/// by hash, counted at the mean known duration; then the known ones, longest first (ties by
/// name), each to the shard with the least time so far (ties to the lowest).
pub fn time_shards(names: &[String], durations: &HashMap<String, u64>, total: u32) -> Vec<u32> {
    let total = total.max(1);
    let known: Vec<u64> = names
        .iter()
        .filter_map(|t| durations.get(t).copied())
        .collect();
    let mean = if known.is_empty() {
        0
    } else {
        known.iter().sum::<u64>() / known.len() as u64
    };
    let mut load = vec![0u64; total as usize];
    let mut shard = vec![0u32; names.len()];
    let mut timed = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match durations.get(name) {
            Some(&d) => timed.push((d, name.as_str(), i)),
            None => {
                let s = (stable_hash(name) % u64::from(total)) as u32;
                shard[i] = s;
                load[s as usize] += mean;
            }
        }
    }
    timed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    for (d, _, i) in timed {
        let (s, _) = load
            .iter()
            .enumerate()
            .min_by_key(|&(s, &l)| (l, s))
            .unwrap_or((0, &0));
        shard[i] = s as u32;
        load[s] += d;
    }
    shard
}

/// Pulls `--partition X` / `--partition=X` out of `argv` (libtest doesn't know it);
/// stops looking at `--`, past which everything is a filter.
pub fn take_partition_arg(
    argv: Vec<OsString>,
) -> Result<(Vec<OsString>, Option<Partition>), PartitionError> {
    let mut kept = Vec::with_capacity(argv.len());
    let mut found = None;
    let mut iter = argv.into_iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        if text == "--" {
            kept.push(arg);
            kept.extend(iter);
            break;
        }
        let value = if text == "--partition" {
            Some(
                iter.next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        } else {
            text.strip_prefix("--partition=").map(str::to_string)
        };
        match value {
            Some(v) => found = Some(Partition::parse(&v, "--partition")?),
            None => kept.push(arg),
        }
    }
    Ok((kept, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("component{}::file{}::test_{i}", i % 7, i % 13))
            .collect()
    }

    #[test]
    fn shards_are_disjoint_and_complete() {
        let all = names(1000);
        for scheme in [Scheme::Hash, Scheme::Count] {
            for total in 1..=7u32 {
                let mut owner = vec![0u32; all.len()];
                for index in 1..=total {
                    let p = Partition {
                        scheme,
                        index,
                        total,
                    };
                    for (i, picked) in p.select(&all).into_iter().enumerate() {
                        if picked {
                            assert_eq!(owner[i], 0, "{} in two shards of {total}", all[i]);
                            owner[i] = index;
                        }
                    }
                }
                assert!(
                    owner.iter().all(|&o| o > 0),
                    "{scheme:?} {total}: some test in no shard"
                );
                if total > 1 {
                    // Every shard gets a fair share (hash: within a wide margin).
                    for index in 1..=total {
                        let size = owner.iter().filter(|&&o| o == index).count();
                        assert!(
                            size > all.len() / total as usize / 2,
                            "{scheme:?} {index}/{total}: {size}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn time_shards_are_disjoint_complete_and_balanced() {
        // A synthetic table: a few long tests, many short ones, some never timed.
        let all = names(300);
        let durations: HashMap<String, u64> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 10 != 0)
            .map(|(i, n)| {
                let d = if i % 37 == 1 {
                    60_000
                } else {
                    500 + (i as u64 * 7919) % 9_000
                };
                (n.clone(), d)
            })
            .collect();
        for total in 1..=5u32 {
            let mut owner = vec![0u32; all.len()];
            let mut times = vec![0u64; total as usize];
            for index in 1..=total {
                let p = Partition {
                    scheme: Scheme::Time,
                    index,
                    total,
                };
                for (i, picked) in p.select_timed(&all, &durations).into_iter().enumerate() {
                    if picked {
                        assert_eq!(owner[i], 0, "{} in two shards of {total}", all[i]);
                        owner[i] = index;
                        times[index as usize - 1] += durations.get(&all[i]).copied().unwrap_or(0);
                    }
                }
            }
            assert!(
                owner.iter().all(|&o| o > 0),
                "{total}: some test in no shard"
            );
            let mean = times.iter().sum::<u64>() as f64 / f64::from(total);
            let slowest = *times.iter().max().unwrap() as f64;
            assert!(slowest <= mean * 1.2, "{total}: {times:?}, mean {mean}");
        }
        // Nothing known: the same shards as hash.
        let p = Partition::parse("time:2/3", "t").unwrap();
        let h = Partition::parse("hash:2/3", "t").unwrap();
        assert_eq!(p.select(&all), h.select(&all));
    }

    #[test]
    fn hash_is_stable() {
        // Fixed values: a change here moves tests between shards on every CI setup.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let p = Partition::parse("hash:2/3", "t").unwrap();
        let all = names(50);
        assert_eq!(p.select(&all), p.select(&all));
        // A test keeps its shard when others are added.
        let more = names(80);
        assert_eq!(p.select(&all)[..], p.select(&more)[..50]);
    }

    #[test]
    fn parsing() {
        assert_eq!(
            Partition::parse("time:3/3", "x").unwrap().scheme,
            Scheme::Time
        );
        let p = Partition::parse("count:1/4", "x").unwrap();
        assert_eq!((p.scheme, p.index, p.total), (Scheme::Count, 1, 4));
        assert_eq!(Partition::parse("2/2", "x").unwrap().scheme, Scheme::Hash);
        assert_eq!(p.to_string(), "count:1/4");
        for bad in ["", "0/2", "3/2", "hash:1", "slice:1/2", "a/b", "1/0"] {
            let e = Partition::parse(bad, "--partition").unwrap_err();
            assert!(e.to_string().starts_with("--partition "), "{e}");
        }
    }

    #[test]
    fn environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Partition::from_env_vars(env(&[])).unwrap(), None);
        let p = Partition::from_env_vars(env(&[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "3")]))
            .unwrap()
            .unwrap();
        assert_eq!((p.index, p.total), (2, 3));
        assert_eq!(
            Partition::from_env_vars(env(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "1")]))
                .unwrap(),
            None
        );
        let p = Partition::from_env_vars(env(&[
            ("CLUSTER_SIM_PARTITION", "count:1/2"),
            ("CI_NODE_INDEX", "2"),
            ("CI_NODE_TOTAL", "3"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(p.to_string(), "count:1/2");
        assert!(Partition::from_env_vars(env(&[("CLUSTER_SIM_PARTITION", "5/2")])).is_err());
        assert_eq!(
            Partition::from_env_vars(env(&[("NEXTEST", "1"), ("CLUSTER_SIM_PARTITION", "1/2")]))
                .unwrap(),
            None
        );
    }

    #[test]
    fn argv_and_report_path() {
        let argv = |l: &[&str]| l.iter().map(OsString::from).collect::<Vec<_>>();
        let (kept, p) = take_partition_arg(argv(&[
            "t",
            "--partition",
            "hash:1/2",
            "x",
            "--",
            "--partition",
        ]))
        .unwrap();
        assert_eq!(kept, argv(&["t", "x", "--", "--partition"]));
        assert_eq!(p.unwrap().to_string(), "hash:1/2");
        let (kept, p) = take_partition_arg(argv(&["t", "--partition=count:2/2"])).unwrap();
        assert_eq!(kept, argv(&["t"]));
        assert_eq!(p.unwrap().index, 2);
        assert!(take_partition_arg(argv(&["t", "--partition"])).is_err());
        let p = Partition::parse("3/4", "x").unwrap();
        assert_eq!(
            p.report_path(Path::new("/t/cluster-sim/junit.xml")),
            Path::new("/t/cluster-sim/junit-3.xml")
        );
    }
}
