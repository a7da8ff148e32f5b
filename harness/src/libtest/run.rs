//! The run: filter the trials, list them or run them on `--test-threads` threads (each
//! result printed as it comes), then the failures and the summary.

use std::sync::{mpsc, Mutex};
use std::time::Instant;

use super::args::Arguments;
use super::printer::Printer;
use super::trial::{Conclusion, Outcome, TestInfo, Trial};

/// Runs (or lists, under `--list`) `tests` as `args` say and returns the counts. A
/// `--logfile` that can't be created is one error line and exit 2.
pub fn run(args: &Arguments, mut tests: Vec<Trial>) -> Conclusion {
    let started = Instant::now();
    let mut conclusion = Conclusion::default();
    if args.filter.is_some() || !args.skip.is_empty() || args.ignored {
        let before = tests.len() as u64;
        tests.retain(|t| !args.is_filtered_out(t));
        conclusion.num_filtered_out = before - tests.len() as u64;
    }
    let mut printer = match Printer::new(args, &tests) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if args.list {
        printer.print_list(&tests, args.ignored);
        return Conclusion::default();
    }
    printer.print_title(tests.len() as u64);

    let mut failed = Vec::new();
    let mut handle = |outcome: Outcome, info: TestInfo, printer: &mut Printer| {
        printer.print_single_outcome(&info, &outcome);
        match outcome {
            Outcome::Passed => conclusion.num_passed += 1,
            Outcome::Failed(f) => {
                failed.push((info, f.msg));
                conclusion.num_failed += 1;
            }
            Outcome::Ignored | Outcome::RuntimeIgnored { .. } => conclusion.num_ignored += 1,
        }
    };

    let threads = args
        .test_threads
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1);
    if threads == 1 {
        // On this thread: `test foo ... ` first, the outcome on the same line once it ends.
        for test in tests {
            printer.print_test(&test.info);
            let outcome = if args.is_ignored(&test) {
                Outcome::Ignored
            } else {
                run_single(test.runner)
            };
            handle(outcome, test.info, &mut printer);
        }
    } else {
        let (sender, receiver) = mpsc::channel();
        let count = tests.len();
        let queue = Mutex::new(tests.into_iter());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(trial) = next else {
                        break;
                    };
                    let outcome = if args.is_ignored(&trial) {
                        Outcome::Ignored
                    } else {
                        run_single(trial.runner)
                    };
                    // A receiver gone means the run is winding down anyway.
                    let _ = sender.send((outcome, trial.info));
                });
            }
            // Each line whole once its test ended, so parallel tests don't interleave.
            for (outcome, info) in receiver.iter().take(count) {
                printer.print_test(&info);
                handle(outcome, info, &mut printer);
            }
        });
    }
    if !failed.is_empty() {
        printer.print_failures(&failed);
    }
    printer.print_summary(&conclusion, started.elapsed());
    conclusion
}

/// Runs one trial; a panic is a failure quoting its message.
fn run_single(runner: Box<dyn FnOnce() -> Outcome + Send>) -> Outcome {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    catch_unwind(AssertUnwindSafe(runner)).unwrap_or_else(|e| {
        let payload = e
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| e.downcast_ref::<&str>().copied());
        Outcome::Failed(
            match payload {
                Some(p) => format!("test panicked: {p}"),
                None => "test panicked".to_string(),
            }
            .into(),
        )
    })
}
