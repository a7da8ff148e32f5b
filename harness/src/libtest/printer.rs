//! What the run prints, to stdout or `--logfile`, as `--format` (or `--quiet`) and `--color`
//! say: the title, a line (or a character, or a JSON event) per test, the failures and the
//! summary, or the `--list`. Write errors (a closed pipe) are ignored: the reports on disk
//! are the run's record.

use std::io::Write;
use std::time::Duration;

use anstream::AutoStream;
use anstyle::{AnsiColor, Color, Style};

use super::args::{Arguments, ColorSetting, FormatSetting};
use super::trial::{Conclusion, Failed, Outcome, TestInfo, Trial};

/// Where and how the run's lines go.
pub(super) struct Printer {
    out: Box<dyn Write>,
    format: FormatSetting,
    name_width: usize,
}

impl Printer {
    /// A printer for `tests` as `args` say; an unwritable `--logfile` is an error line.
    pub(super) fn new(args: &Arguments, tests: &[Trial]) -> Result<Self, String> {
        let color = args.color.unwrap_or_default();
        let out: Box<dyn Write> = match &args.logfile {
            Some(path) => {
                let f = std::fs::File::create(path)
                    .map_err(|e| format!("--logfile {path}: cannot create it: {e}"))?;
                if color == ColorSetting::Always {
                    Box::new(AutoStream::always(f))
                } else {
                    Box::new(AutoStream::never(f))
                }
            }
            None => {
                let choice = match color {
                    ColorSetting::Auto => anstream::ColorChoice::Auto,
                    ColorSetting::Always => anstream::ColorChoice::Always,
                    ColorSetting::Never => anstream::ColorChoice::Never,
                };
                Box::new(AutoStream::new(std::io::stdout(), choice))
            }
        };
        let format = if args.quiet {
            FormatSetting::Terse
        } else {
            args.format.unwrap_or_default()
        };
        // Code points, not display width: names are ASCII in practice.
        let name_width = tests
            .iter()
            .map(|t| t.info.name.chars().count())
            .max()
            .unwrap_or(0);
        Ok(Self {
            out,
            format,
            name_width,
        })
    }

    /// `running 3 tests`.
    pub(super) fn print_title(&mut self, num_tests: u64) {
        let _ = match self.format {
            FormatSetting::Pretty | FormatSetting::Terse => {
                let plural_s = if num_tests == 1 { "" } else { "s" };
                writeln!(self.out, "\nrunning {num_tests} test{plural_s}")
            }
            FormatSetting::Json => writeln!(
                self.out,
                r#"{{ "type": "suite", "event": "started", "test_count": {num_tests} }}"#,
            ),
        };
    }

    /// `test foo::bar ... ` (nothing in terse mode).
    pub(super) fn print_test(&mut self, info: &TestInfo) {
        let _ = match self.format {
            FormatSetting::Pretty => {
                let _ = write!(self.out, "test {: <1$} ... ", info.name, self.name_width);
                self.out.flush()
            }
            FormatSetting::Terse => Ok(()),
            FormatSetting::Json => writeln!(
                self.out,
                r#"{{ "type": "test", "event": "started", "name": "{}" }}"#,
                escape8259::escape(&info.name),
            ),
        };
    }

    /// `ok`, `FAILED`, `ignored` (pretty); `.`, `F`, `i` (terse); an event (json).
    pub(super) fn print_single_outcome(&mut self, info: &TestInfo, outcome: &Outcome) {
        match self.format {
            FormatSetting::Pretty => {
                self.print_outcome_pretty(outcome);
                let _ = writeln!(self.out);
            }
            FormatSetting::Terse => {
                let c = match outcome {
                    Outcome::Passed => '.',
                    Outcome::Failed(_) => 'F',
                    Outcome::Ignored | Outcome::RuntimeIgnored { .. } => 'i',
                };
                let style = color_of_outcome(outcome);
                let _ = write!(self.out, "{style}{c}{style:#}");
            }
            FormatSetting::Json => {
                let event = match outcome {
                    Outcome::Passed => "ok",
                    Outcome::Failed(_) => "failed",
                    Outcome::Ignored | Outcome::RuntimeIgnored { .. } => "ignored",
                };
                let stdout = match outcome {
                    Outcome::Failed(Failed { msg: Some(msg) }) => {
                        format!(r#", "stdout": "Error: \"{}\"\n""#, escape8259::escape(msg))
                    }
                    _ => String::new(),
                };
                let _ = writeln!(
                    self.out,
                    r#"{{ "type": "test", "name": "{}", "event": "{event}"{stdout} }}"#,
                    escape8259::escape(&info.name),
                );
            }
        }
    }

    /// `test result: ok. 1 passed; ...` after every test.
    pub(super) fn print_summary(&mut self, conclusion: &Conclusion, execution_time: Duration) {
        match self.format {
            FormatSetting::Pretty | FormatSetting::Terse => {
                let outcome = if conclusion.has_failed() {
                    Outcome::Failed(Failed { msg: None })
                } else {
                    Outcome::Passed
                };
                let _ = write!(self.out, "\ntest result: ");
                self.print_outcome_pretty(&outcome);
                let _ = writeln!(
                    self.out,
                    ". {} passed; {} failed; {} ignored; {} measured; {} filtered out; \
                     finished in {:.2}s\n",
                    conclusion.num_passed,
                    conclusion.num_failed,
                    conclusion.num_ignored,
                    conclusion.num_measured,
                    conclusion.num_filtered_out,
                    execution_time.as_secs_f64()
                );
            }
            FormatSetting::Json => {
                let _ = writeln!(
                    self.out,
                    concat!(
                        r#"{{ "type": "suite", "event": "{}", "passed": {}, "failed": {},"#,
                        r#" "ignored": {}, "measured": {}, "filtered_out": {}, "exec_time": {} }}"#,
                    ),
                    if conclusion.num_failed > 0 {
                        "failed"
                    } else {
                        "ok"
                    },
                    conclusion.num_passed,
                    conclusion.num_failed,
                    conclusion.num_ignored,
                    conclusion.num_measured,
                    conclusion.num_filtered_out,
                    execution_time.as_secs_f64()
                );
            }
        }
    }

    /// `name: test` a line: every test, or only the ignored ones under `--ignored`.
    pub(super) fn print_list(&mut self, tests: &[Trial], ignored: bool) {
        for test in tests {
            if ignored && !test.info.is_ignored {
                continue;
            }
            let _ = writeln!(self.out, "{}: test", test.info.name);
        }
    }

    /// Each failed test's message, then their names.
    pub(super) fn print_failures(&mut self, fails: &[(TestInfo, Option<String>)]) {
        if self.format == FormatSetting::Json {
            return;
        }
        let _ = writeln!(self.out, "\nfailures:\n");
        for (info, msg) in fails {
            let _ = writeln!(self.out, "---- {} ----", info.name);
            if let Some(msg) = msg {
                let _ = writeln!(self.out, "{msg}");
            }
            let _ = writeln!(self.out);
        }
        let _ = writeln!(self.out, "\nfailures:");
        for (info, _) in fails {
            let _ = writeln!(self.out, "    {}", info.name);
        }
    }

    /// A coloured `ok`, `FAILED` or `ignored` (with the reason of a run-time ignore).
    fn print_outcome_pretty(&mut self, outcome: &Outcome) {
        let style = color_of_outcome(outcome);
        let (word, reason) = match outcome {
            Outcome::Passed => ("ok", None),
            Outcome::Failed(_) => ("FAILED", None),
            Outcome::Ignored => ("ignored", None),
            Outcome::RuntimeIgnored { reason } => ("ignored", reason.as_ref()),
        };
        let _ = write!(self.out, "{style}{word}");
        if let Some(reason) = reason {
            let _ = write!(self.out, " ({reason})");
        }
        let _ = write!(self.out, "{style:#}");
    }
}

/// Green, red or yellow.
fn color_of_outcome(outcome: &Outcome) -> Style {
    let color = match outcome {
        Outcome::Passed => AnsiColor::Green,
        Outcome::Failed(_) => AnsiColor::Red,
        Outcome::Ignored | Outcome::RuntimeIgnored { .. } => AnsiColor::Yellow,
    };
    Style::new().fg_color(Some(Color::Ansi(color)))
}
