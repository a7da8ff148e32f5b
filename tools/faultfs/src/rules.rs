//! Fault rules and the control protocol's words: which operations on which paths fail, wait
//! or return corrupted bytes. One line per command on the control socket:
//!
//! ```text
//! error <read|write|fsync|any> <errno> <probability> <glob>   fail with the errno
//! delay <read|write|fsync|any> <milliseconds> <glob>          wait first
//! corrupt <read|torn-write> <glob>                            flip a bit in reads / tear the next write
//! drop                                                        forget every unsynced write
//! heal                                                        remove every rule
//! status                                                      rules and unsynced bytes
//! ```
//!
//! A glob names absolute paths as the service sees them; it covers what lies under a directory
//! it matches (`/var/lib/cluster-sim/data` covers every file in it).

use std::path::Path;
use std::time::Duration;

/// Which operations a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Reads of file data.
    Read,
    /// Writes, creations, truncations, renames and removals.
    Write,
    /// fsync, fdatasync and directory syncs.
    Fsync,
    /// Every one of those.
    Any,
}

impl Op {
    fn parse(s: &str) -> Result<Op, String> {
        match s {
            "read" => Ok(Op::Read),
            "write" => Ok(Op::Write),
            "fsync" => Ok(Op::Fsync),
            "any" => Ok(Op::Any),
            _ => Err(format!("unknown operation {s:?} (read, write, fsync, any)")),
        }
    }

    fn covers(self, op: Op) -> bool {
        self == Op::Any || self == op
    }
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Fail with this errno, with this probability (0 to 1).
    Error {
        /// The errno number.
        errno: i32,
        /// How likely each operation fails.
        p: f64,
    },
    /// Wait this long before the operation.
    Delay(Duration),
    /// Flip one bit in every read.
    FlipRead,
    /// Keep only the first half of the next write, say it all went; then the rule is spent.
    TornWrite,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its operations.
    pub op: Op,
    /// What it does.
    pub action: Action,
    /// The paths, as written.
    pub glob: String,
    pattern: glob::Pattern,
}

impl Rule {
    /// Whether it applies to `op` on `path` (absolute, as the service sees it).
    pub fn matches(&self, op: Op, path: &Path) -> bool {
        self.op.covers(op) && path.ancestors().any(|p| self.pattern.matches_path(p))
    }
}

/// A command of the control protocol.
#[derive(Debug, Clone)]
pub enum Command {
    /// Add a rule.
    Add(Rule),
    /// Forget unsynced writes.
    Drop,
    /// Remove every rule.
    Heal,
    /// Report rules and unsynced bytes.
    Status,
}

/// The errno of a name (`EIO`) or a number.
pub fn errno(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return if n > 0 {
            Ok(n)
        } else {
            Err(format!("errno {n} is not positive"))
        };
    }
    let n = match s.to_ascii_uppercase().as_str() {
        "EIO" => 5,
        "ENOSPC" => 28,
        "EROFS" => 30,
        "EDQUOT" => 122,
        "EACCES" => 13,
        "EPERM" => 1,
        "EAGAIN" => 11,
        "EBUSY" => 16,
        "ENOMEM" => 12,
        "EFBIG" => 27,
        "ENXIO" => 6,
        _ => {
            return Err(format!(
                "unknown errno {s:?} (EIO, ENOSPC, EROFS, EDQUOT, EACCES, EPERM, EAGAIN, EBUSY, ENOMEM, EFBIG, ENXIO, or a number)"
            ))
        }
    };
    Ok(n)
}

fn glob_of(words: &[&str]) -> Result<(String, glob::Pattern), String> {
    let g = words.join(" ");
    if g.is_empty() {
        return Err("missing path glob".into());
    }
    if !g.starts_with('/') {
        return Err(format!("path {g:?} is not absolute"));
    }
    let pattern =
        glob::Pattern::new(g.trim_end_matches('/')).map_err(|e| format!("bad glob {g:?}: {e}"))?;
    Ok((g, pattern))
}

/// Reads one line of the protocol.
pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let rule = |op: Op, action: Action, rest: &[&str]| -> Result<Command, String> {
        let (glob, pattern) = glob_of(rest)?;
        Ok(Command::Add(Rule {
            op,
            action,
            glob,
            pattern,
        }))
    };
    match words.as_slice() {
        ["drop"] => Ok(Command::Drop),
        ["heal"] => Ok(Command::Heal),
        ["status"] => Ok(Command::Status),
        ["error", op, e, p, rest @ ..] => {
            let p: f64 = p
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| format!("probability {p:?} is not a number from 0 to 1"))?;
            rule(
                Op::parse(op)?,
                Action::Error {
                    errno: errno(e)?,
                    p,
                },
                rest,
            )
        }
        ["delay", op, ms, rest @ ..] => {
            let ms: u64 = ms
                .parse()
                .map_err(|_| format!("delay {ms:?} is not a number of milliseconds"))?;
            rule(
                Op::parse(op)?,
                Action::Delay(Duration::from_millis(ms)),
                rest,
            )
        }
        ["corrupt", "read", rest @ ..] => rule(Op::Read, Action::FlipRead, rest),
        ["corrupt", "torn-write", rest @ ..] => rule(Op::Write, Action::TornWrite, rest),
        ["corrupt", how, ..] => Err(format!("unknown corruption {how:?} (read, torn-write)")),
        [] => Err("empty command".into()),
        [w, ..] => Err(format!(
            "unknown or incomplete command {w:?} (error, delay, corrupt, drop, heal, status)"
        )),
    }
}

/// A small deterministic generator (SplitMix64) for probabilities and bit positions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p >= 1.0 || ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(line: &str) -> Rule {
        match parse(line).unwrap() {
            Command::Add(r) => r,
            c => panic!("not a rule: {c:?}"),
        }
    }

    #[test]
    fn a_directory_glob_covers_what_is_under_it() {
        let r = rule("error write EIO 1 /w/data");
        assert_eq!(r.action, Action::Error { errno: 5, p: 1.0 });
        assert!(r.matches(Op::Write, Path::new("/w/data/f")));
        assert!(r.matches(Op::Write, Path::new("/w/data/a/b")));
        assert!(r.matches(Op::Write, Path::new("/w/data")));
        assert!(!r.matches(Op::Read, Path::new("/w/data/f")));
        assert!(!r.matches(Op::Write, Path::new("/w/database")));
        assert!(!r.matches(Op::Write, Path::new("/w/other/f")));
    }

    #[test]
    fn wildcards_and_any() {
        let r = rule("delay any 50 /w/data/*.wal");
        assert_eq!(r.action, Action::Delay(Duration::from_millis(50)));
        assert!(r.matches(Op::Fsync, Path::new("/w/data/0001.wal")));
        assert!(!r.matches(Op::Read, Path::new("/w/data/0001.snap")));
        let spaces = rule("corrupt read /w/my data");
        assert!(spaces.matches(Op::Read, Path::new("/w/my data/x")));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        for (line, says) in [
            ("error write EWHAT 1 /w", "unknown errno"),
            ("error write EIO 1.5 /w", "probability"),
            ("error scribble EIO 1 /w", "unknown operation"),
            ("error write EIO 1 data", "not absolute"),
            ("delay read soon /w", "milliseconds"),
            ("corrupt sideways /w", "unknown corruption"),
            ("error write EIO 1", "missing path"),
            ("shout", "unknown or incomplete"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
        assert!(matches!(parse("drop"), Ok(Command::Drop)));
        assert_eq!(errno("enospc"), Ok(28));
        assert_eq!(errno("7"), Ok(7));
    }

    #[test]
    fn chance_follows_the_probability() {
        let mut rng = Rng::new(7);
        let hits = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
        assert!((0..100).all(|_| rng.chance(1.0)));
        assert!((0..100).all(|_| !rng.chance(0.0)));
    }
}
