//! libtest's command line, parsed without clap: the flags libtest-mimic took, with the same
//! fields. The harness checks every flag and value first (`plan/help.rs`, which also holds the
//! help text), so an error here is one line too.

use std::ffi::OsString;

/// The command line, as libtest reads it.
#[derive(Debug, Clone, Default)]
pub struct Arguments {
    /// `--include-ignored`: run ignored tests too.
    pub include_ignored: bool,
    /// `--ignored`: run only ignored tests.
    pub ignored: bool,
    /// `--test`: run tests, not benchmarks.
    pub test: bool,
    /// `--bench`: run benchmarks only (there are none: every test is ignored).
    pub bench: bool,
    /// `--list`: list the tests.
    pub list: bool,
    /// `--nocapture`: what a test prints also reaches the terminal (the harness captures it
    /// into the test's log either way).
    pub nocapture: bool,
    /// `--show-output`: accepted, as libtest's.
    pub show_output: bool,
    /// `-Z unstable-options`: accepted, as libtest's.
    pub unstable_flags: bool,
    /// `--exact`: filters match whole names.
    pub exact: bool,
    /// `-q`/`--quiet`: the terse format.
    pub quiet: bool,
    /// `--test-threads N`.
    pub test_threads: Option<usize>,
    /// `--logfile PATH`: the results go there instead of stdout.
    pub logfile: Option<String>,
    /// `--skip PATTERN`, each time given.
    pub skip: Vec<String>,
    /// `--color`.
    pub color: Option<ColorSetting>,
    /// `--format`.
    pub format: Option<FormatSetting>,
    /// The positional filter.
    pub filter: Option<String>,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorSetting {
    /// Colours when stdout is a terminal.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatSetting {
    /// A line per test.
    #[default]
    Pretty,
    /// A character per test.
    Terse,
    /// JSON events.
    Json,
}

impl Arguments {
    /// Parses `argv` (program name first): the flags before `--`, one positional filter.
    pub fn try_parse_from(argv: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut a = Self::default();
        let mut iter = argv
            .into_iter()
            .skip(1)
            .map(|s| s.to_string_lossy().into_owned());
        let mut positional_only = false;
        while let Some(arg) = iter.next() {
            if positional_only || !arg.starts_with('-') || arg == "-" {
                if a.filter.is_some() {
                    return Err(format!("unexpected argument {arg:?}: one filter only here"));
                }
                a.filter = Some(arg);
                continue;
            }
            if arg == "--" {
                positional_only = true;
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |what: &str| {
                inline
                    .clone()
                    .or_else(|| iter.next())
                    .ok_or_else(|| format!("{name} needs {what}"))
            };
            match name.as_str() {
                "--include-ignored" => a.include_ignored = true,
                "--ignored" => a.ignored = true,
                "--test" => a.test = true,
                "--bench" => a.bench = true,
                "--list" => a.list = true,
                "--nocapture" => a.nocapture = true,
                "--show-output" => a.show_output = true,
                "--exact" => a.exact = true,
                "-q" | "--quiet" => a.quiet = true,
                "-Z" => match value("a value")?.as_str() {
                    "unstable-options" => a.unstable_flags = true,
                    v => return Err(format!("-Z {v:?}: expected unstable-options")),
                },
                "--test-threads" => {
                    let v = value("a number")?;
                    match v.parse::<usize>() {
                        Ok(n) if n > 0 => a.test_threads = Some(n),
                        _ => {
                            return Err(format!("--test-threads {v:?}: expected a number above 0"))
                        }
                    }
                }
                "--logfile" => a.logfile = Some(value("a path")?),
                "--skip" => a.skip.push(value("a pattern")?),
                "--color" => {
                    a.color = Some(match value("auto, always or never")?.as_str() {
                        "auto" => ColorSetting::Auto,
                        "always" => ColorSetting::Always,
                        "never" => ColorSetting::Never,
                        v => return Err(format!("--color {v:?}: expected auto, always or never")),
                    })
                }
                "--format" => {
                    a.format = Some(match value("pretty, terse or json")?.as_str() {
                        "pretty" => FormatSetting::Pretty,
                        "terse" => FormatSetting::Terse,
                        "json" => FormatSetting::Json,
                        v => return Err(format!("--format {v:?}: expected pretty, terse or json")),
                    })
                }
                _ => return Err(format!("unknown flag {name} (see --help)")),
            }
        }
        if a.test && a.bench {
            return Err("--test and --bench: one or the other".into());
        }
        if a.quiet && a.format.is_some() {
            return Err(
                "--quiet and --format: one or the other (--quiet is --format terse)".into(),
            );
        }
        Ok(a)
    }

    /// [`Arguments::try_parse_from`], exiting with the error line and code 2 on a bad one.
    pub fn parse_from(argv: impl IntoIterator<Item = OsString>) -> Self {
        Self::try_parse_from(argv).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Arguments, String> {
        Arguments::try_parse_from(
            std::iter::once("t")
                .chain(list.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn every_flag_nextest_and_libtest_pass() {
        let a = parse(&["--list", "--format", "terse", "--ignored"]).unwrap();
        assert!(a.list && a.ignored && a.format == Some(FormatSetting::Terse));
        let a = parse(&["a::b", "--exact", "--nocapture"]).unwrap();
        assert_eq!(a.filter.as_deref(), Some("a::b"));
        assert!(a.exact && a.nocapture);
        let a = parse(&[
            "--skip=x",
            "--skip",
            "y",
            "--test-threads=3",
            "--color",
            "never",
            "-Z",
            "unstable-options",
            "--format=json",
            "--",
            "-odd",
        ])
        .unwrap();
        assert_eq!(a.skip, ["x", "y"]);
        assert_eq!(a.test_threads, Some(3));
        assert_eq!(a.color, Some(ColorSetting::Never));
        assert!(a.unstable_flags);
        assert_eq!(a.filter.as_deref(), Some("-odd"));
        assert!(parse(&["-q"]).unwrap().quiet);
        for (bad, says) in [
            (&["--nope"][..], "unknown flag --nope"),
            (&["--test-threads", "0"], "--test-threads \"0\""),
            (&["--format"], "--format needs"),
            (&["a", "b"], "unexpected argument \"b\""),
            (&["-q", "--format", "json"], "--quiet and --format"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with(says), "{bad:?}: {e}");
        }
    }
}
