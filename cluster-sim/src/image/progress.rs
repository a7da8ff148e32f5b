//! Progress of an image build on stderr: a spinner with the current step on a terminal (with the
//! `spinner` feature, which the CLI turns on), plain `cluster-sim: ...` lines otherwise (CI logs,
//! test runs), nothing when quiet.

#[cfg(feature = "spinner")]
use std::io::IsTerminal;
#[cfg(feature = "spinner")]
use std::time::Duration;

#[cfg(feature = "spinner")]
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
#[derive(Debug)]
enum Mode {
    Quiet,
    /// One line per step, for logs.
    Plain,
    /// A spinner whose message is the latest output line; steps are printed above it.
    #[cfg(feature = "spinner")]
    Spinner(ProgressBar),
}

/// Reports the steps of one image build.
#[derive(Debug)]
pub(crate) struct Progress {
    mode: Mode,
}

impl Progress {
    /// Progress on stderr: a spinner when stderr is a terminal (and the `spinner` feature is
    /// on), lines otherwise.
    pub(crate) fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else {
            Self::spinner_or_plain()
        };
        Self { mode }
    }

    #[cfg(not(feature = "spinner"))]
    fn spinner_or_plain() -> Mode {
        Mode::Plain
    }

    #[cfg(feature = "spinner")]
    fn spinner_or_plain() -> Mode {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Mode::Spinner(bar)
        } else {
            Mode::Plain
        }
    }

    /// A major step: always shown (unless quiet).
    pub(crate) fn step(&self, message: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Plain => eprintln!("cluster-sim: {message}"),
            #[cfg(feature = "spinner")]
            Mode::Spinner(bar) => {
                bar.println(format!("cluster-sim: {message}"));
                bar.set_message(message.to_owned());
            }
        }
    }

    /// A line of a program's output: shown on the spinner only, too many for a log.
    pub(crate) fn detail(&self, line: &str) {
        #[cfg(feature = "spinner")]
        if let Mode::Spinner(bar) = &self.mode {
            let line = line.trim();
            if !line.is_empty() {
                bar.set_message(line.to_owned());
            }
        }
        #[cfg(not(feature = "spinner"))]
        let _ = line;
    }
}

#[cfg(feature = "spinner")]
impl Drop for Progress {
    fn drop(&mut self) {
        if let Mode::Spinner(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}
