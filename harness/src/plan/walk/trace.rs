//! What each walk leaves behind: its steps as they went ([`StepTrace`]), the whole walk's
//! [`Trace`] (`trace.json` in its artifacts), and the [`Finished`] message a walk's end sends.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::generate::{Chosen, Shape};

/// How one step of a walk went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and returned `Ok`.
    Passed,
    /// It returned an error, panicked or ran past the deadline.
    Failed,
    /// An earlier step failed.
    NotRun,
}

/// One step of a walk's trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTrace {
    /// The action's name.
    pub action: String,
    /// The option's label.
    pub option: String,
    /// Whether it was a serial action (its run shared by `walks` walks).
    pub serial: bool,
    /// How it went.
    pub status: StepStatus,
    /// When it started, in microseconds since the Unix epoch (none when not run).
    pub started_us: Option<u64>,
    /// When it ended, in microseconds since the Unix epoch.
    pub ended_us: Option<u64>,
    /// The error, when it failed.
    pub error: Option<String>,
    /// What the step noted ([`Walk::note`](super::Walk::note)).
    pub notes: Vec<String>,
    /// For a serial step: how many walks its run served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walks: Option<usize>,
}

/// A walk's trace: `trace.json` in its artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The trial's full name.
    pub test: String,
    /// The walk's id.
    pub walk: String,
    /// `action=option,...`.
    pub label: String,
    /// How walks were chosen (`all`, `pairwise(seed=7)`).
    pub generator: String,
    /// `passed` or `failed`.
    pub result: String,
    /// The steps, in order (those after a failure as `not_run`).
    pub steps: Vec<StepTrace>,
}

/// A walk that ended: sent by [`Plan::execute`](super::Plan::execute) as soon as it does.
#[derive(Debug)]
pub struct Finished {
    /// Its position in the list handed to `execute`.
    pub index: usize,
    /// The steps it ran (the caller adds those that did not run).
    pub steps: Vec<StepTrace>,
    /// Why it failed: `(kind, message)`.
    pub error: Option<(&'static str, String)>,
    /// Its own running time (barrier waits excluded).
    pub active: Duration,
}

/// `steps` completed with the steps that did not run, as `not_run`.
pub fn complete_trace(shape: &Shape, chosen: &Chosen, mut steps: Vec<StepTrace>) -> Vec<StepTrace> {
    for (s, &o) in shape.steps.iter().zip(&chosen.options).skip(steps.len()) {
        steps.push(StepTrace {
            action: s.name.clone(),
            option: s.labels[o].clone(),
            serial: s.serial,
            status: StepStatus::NotRun,
            started_us: None,
            ended_us: None,
            error: None,
            notes: Vec::new(),
            walks: None,
        });
    }
    steps
}
