//! `cluster-sim check --model NAME HISTORY`: judges a saved history with a checker from the
//! checker table (`cluster_sim::history::CHECKERS`). Needs no engine.

use std::path::Path;
use std::process::ExitCode;

use clap::builder::{PossibleValue, PossibleValuesParser};
use cluster_sim::history;

/// `check --model`'s values: the checker table's names, each with what it checks.
pub(crate) fn models() -> PossibleValuesParser {
    let checkers = history::CHECKERS.iter();
    PossibleValuesParser::new(
        checkers.map(|c| PossibleValue::new(c.name()).help(format!("per key: {}", c.what()))),
    )
}

/// `cluster-sim check`: judges a saved history without touching any engine.
pub(crate) fn check(model: &str, path: &Path, svg: Option<&Path>) -> ExitCode {
    let checker = match history::by_name(model) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cluster-sim: error: {e}");
            return ExitCode::from(2);
        }
    };
    let ops = match history::read_history(path) {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("cluster-sim: error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(svg) = svg {
        if let Err(e) = std::fs::write(svg, history::timeline_svg(&ops)) {
            eprintln!("cluster-sim: error: cannot write {}: {e}", svg.display());
            return ExitCode::from(2);
        }
    }
    match history::check(&ops, checker) {
        Ok(report) => {
            println!("{report}");
            if report.valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("cluster-sim: error: {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}
