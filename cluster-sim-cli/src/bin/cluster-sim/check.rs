//! `cluster-sim check --model NAME HISTORY`: judges a saved history with a checker from the
//! checker table (`cluster_sim::history::CHECKERS`). Needs no engine. `--from jepsen-log`
//! reads a Jepsen log instead (and `--save-history` keeps it as history.jsonl).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser};
use cluster_sim::history::{self, txn::TxnSummary, CheckReport, FileError};

/// `cluster-sim check`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// The model the history is checked against.
    #[arg(long, value_parser = models())]
    model: String,
    /// The history file: one JSON record per line, or a Jepsen log with `--from jepsen-log`.
    history: PathBuf,
    /// What the file is.
    #[arg(long, value_enum, default_value = "history")]
    from: Source,
    /// Also draw it (SVG): the dependency cycles for list-append and rw-register, else the
    /// history as a timeline (a lane per process and the nemesis).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// With `--from jepsen-log`: also write the history read from the log as history.jsonl.
    #[arg(long, value_name = "FILE")]
    save_history: Option<PathBuf>,
}

/// The format of the file to check.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A history.jsonl, as a test records it.
    History,
    /// The operations `jepsen.util` logs, `PROCESS\t:TYPE\t:F\tVALUE` (Porcupine's etcd test data).
    JepsenLog,
}

/// `check --model`'s values: the checker table's names, each with what it checks.
pub(crate) fn models() -> PossibleValuesParser {
    let checkers = history::CHECKERS.iter();
    PossibleValuesParser::new(checkers.map(|c| PossibleValue::new(c.name()).help(c.what())))
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("cluster-sim: error: {e}");
    ExitCode::from(2)
}

/// `cluster-sim check`: judges a saved history without touching any engine.
pub(crate) fn check(args: &CheckArgs) -> ExitCode {
    let checker = match history::by_name(&args.model) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let path = args.history.as_path();
    if args.save_history.is_some() && args.from != Source::JepsenLog {
        return fail(
            "--save-history keeps what --from jepsen-log read: a history file is one already",
        );
    }
    let (report, ops) = match args.from {
        Source::History => (checker.check_file(path), None),
        Source::JepsenLog => {
            let ops = match history::read_jepsen_log(path) {
                Ok(ops) => ops,
                Err(e) => return fail(e),
            };
            if let Some(out) = &args.save_history {
                if let Err(e) = save(out, &ops) {
                    return fail(format!("cannot write {}: {e}", out.display()));
                }
            }
            let report = history::check(&ops, checker).map_err(|e| FileError::Check {
                path: path.display().to_string(),
                source: e,
            });
            (report, Some(ops))
        }
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    println!("{report}");
    if let Some(svg) = &args.svg {
        if let Err(e) = draw(svg, &report, path, ops) {
            return fail(e);
        }
    }
    if report.valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn save(out: &Path, ops: &[history::Op]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for op in ops {
        serde_json::to_writer(&mut w, op)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// The picture: the cycles a transactional checker found, or the history's timeline.
fn draw(
    svg: &Path,
    report: &CheckReport,
    path: &Path,
    ops: Option<Vec<history::Op>>,
) -> Result<(), String> {
    let picture = match report.details::<TxnSummary>() {
        Some(summary) => summary.svg(),
        None => {
            let ops = match ops {
                Some(ops) => ops,
                None => history::read_history(path).map_err(|e| e.to_string())?,
            };
            history::timeline_svg(&ops)
        }
    };
    std::fs::write(svg, picture).map_err(|e| format!("cannot write {}: {e}", svg.display()))
}
