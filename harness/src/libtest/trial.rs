//! A trial (one test the runner runs), what it may end as, and the run's conclusion; which
//! trials the command line leaves out or ignores.

use super::args::Arguments;

/// A single test: its name, whether it is `#[ignore]`d, and what runs it.
pub struct Trial {
    pub(super) runner: Box<dyn FnOnce() -> Outcome + Send>,
    pub(super) info: TestInfo,
}

/// How a test that ran ended: completed, or ignored at run time.
pub enum Completion {
    /// It ran to its end.
    Completed,
    /// It was ignored while running (a requirement missing), with why.
    Ignored {
        /// Why, shown as `ignored (reason)`.
        reason: Option<String>,
    },
}

impl Completion {
    /// `Ignored` with `reason`.
    pub fn ignored_with(reason: impl ToString) -> Self {
        Self::Ignored {
            reason: Some(reason.to_string()),
        }
    }
}

impl Trial {
    /// A test whose `runner` passes with `Ok(())` and fails with `Err`.
    pub fn test<R>(name: impl Into<String>, runner: R) -> Self
    where
        R: FnOnce() -> Result<(), Failed> + Send + 'static,
    {
        Self::ignorable_test(name, || runner().map(|()| Completion::Completed))
    }

    /// A test whose `runner` may also find at run time that it is to be ignored.
    pub fn ignorable_test<R>(name: impl Into<String>, runner: R) -> Self
    where
        R: FnOnce() -> Result<Completion, Failed> + Send + 'static,
    {
        Self {
            runner: Box::new(move || match runner() {
                Ok(Completion::Completed) => Outcome::Passed,
                Ok(Completion::Ignored { reason }) => Outcome::RuntimeIgnored { reason },
                Err(failed) => Outcome::Failed(failed),
            }),
            info: TestInfo {
                name: name.into(),
                is_ignored: false,
            },
        }
    }

    /// Marks it `#[ignore]`d: run only with `--ignored` or `--include-ignored`.
    pub fn with_ignored_flag(mut self, is_ignored: bool) -> Self {
        self.info.is_ignored = is_ignored;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Whether it is `#[ignore]`d.
    pub fn has_ignored_flag(&self) -> bool {
        self.info.is_ignored
    }
}

impl std::fmt::Debug for Trial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trial")
            .field("name", &self.info.name)
            .field("is_ignored", &self.info.is_ignored)
            .finish()
    }
}

/// What the printer needs of a trial.
#[derive(Debug)]
pub(super) struct TestInfo {
    pub(super) name: String,
    pub(super) is_ignored: bool,
}

/// A failed test, with its message.
#[derive(Debug, Clone)]
pub struct Failed {
    pub(super) msg: Option<String>,
}

impl<M: std::fmt::Display> From<M> for Failed {
    fn from(msg: M) -> Self {
        Self {
            msg: Some(msg.to_string()),
        }
    }
}

/// How a trial ended.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    /// It passed.
    Passed,
    /// It failed.
    Failed(Failed),
    /// It was `#[ignore]`d and not asked for.
    Ignored,
    /// It found at run time that it is to be ignored.
    RuntimeIgnored { reason: Option<String> },
}

/// The run's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Conclusion {
    /// Tests left out by the filters, `--skip` or `--ignored`.
    pub num_filtered_out: u64,
    /// Tests that passed.
    pub num_passed: u64,
    /// Tests that failed.
    pub num_failed: u64,
    /// Tests ignored.
    pub num_ignored: u64,
    /// Benchmarks measured: always 0 (libtest prints it).
    pub num_measured: u64,
}

impl Conclusion {
    /// Whether any test failed.
    pub fn has_failed(&self) -> bool {
        self.num_failed > 0
    }
}

impl Arguments {
    /// Whether `test` is not run but counted as ignored: `#[ignore]`d and not asked for, or
    /// any test under `--bench` (there are no benchmarks here).
    pub fn is_ignored(&self, test: &Trial) -> bool {
        (test.info.is_ignored && !self.ignored && !self.include_ignored) || self.bench
    }

    /// Whether `test` is left out: the filter (substring, or the whole name, or `name: test`
    /// as `--list` prints it, under `--exact`), any `--skip`, or `--ignored` for a test
    /// without the flag.
    pub fn is_filtered_out(&self, test: &Trial) -> bool {
        let name = test.name();
        let matches = |pattern: &str| {
            if self.exact {
                name == pattern
            } else {
                name.contains(pattern)
            }
        };
        if let Some(filter) = &self.filter {
            if !matches(filter) {
                return true;
            }
        }
        if self.skip.iter().any(|s| matches(s)) {
            return true;
        }
        self.ignored && !test.info.is_ignored
    }
}
