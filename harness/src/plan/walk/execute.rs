//! Running a definition's walks on one cluster: each segment up to a serial action runs as one
//! task per walk; at the barrier the walks are split by their option, and for each option in
//! turn the serial action runs once and its walks go on into the next segment.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cluster_sim_core::Cluster;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::api::{Exec, Plan, Step, Walk, Walks};
use super::generate::{Chosen, Shape, StepShape};
use super::trace::{Finished, StepStatus, StepTrace};
use crate::outcome::{classify, one_line, panic_text, TestResult};

impl<S: Clone + Send + Sync + 'static> Plan for Walks<S> {
    fn shape(&self) -> Shape {
        Shape {
            steps: self
                .steps
                .iter()
                .map(|s| StepShape {
                    name: s.name.clone(),
                    serial: matches!(s.exec, Exec::Serial(_)),
                    labels: s.labels.clone(),
                })
                .collect(),
            generator: self.generator,
        }
    }

    fn execute(
        self: Box<Self>,
        cluster: Cluster,
        walks: Vec<Chosen>,
        deadline: Duration,
        done: tokio::sync::mpsc::UnboundedSender<Finished>,
    ) -> BoxFuture<'static, ()> {
        let this = *self;
        let run = Arc::new(Run {
            steps: this.steps,
            cluster: cluster.clone(),
            deadline,
            done,
        });
        let group: Vec<InFlight<S>> = walks
            .into_iter()
            .enumerate()
            .map(|(index, c)| InFlight {
                index,
                walk: Walk {
                    id: c.id,
                    label: c.label,
                    cluster: cluster.clone(),
                    state: this.initial.clone(),
                    notes: Vec::new(),
                },
                options: c.options,
                trace: Vec::new(),
                failed: None,
                active: Duration::ZERO,
            })
            .collect();
        Box::pin(async move { run.tree(0, group).await })
    }
}

impl<S> Step<S> {
    /// This step's trace entry once it ran with `option` over `span` (µs since the epoch).
    fn ran(
        &self,
        option: usize,
        span: (u64, u64),
        error: &Option<(&'static str, String)>,
        notes: Vec<String>,
    ) -> StepTrace {
        StepTrace {
            action: self.name.clone(),
            option: self.labels[option].clone(),
            serial: matches!(self.exec, Exec::Serial(_)),
            status: if error.is_none() {
                StepStatus::Passed
            } else {
                StepStatus::Failed
            },
            started_us: Some(span.0),
            ended_us: Some(span.1),
            error: error.as_ref().map(|(_, m)| m.clone()),
            notes,
            walks: None,
        }
    }
}

struct InFlight<S> {
    index: usize,
    walk: Walk<S>,
    options: Vec<usize>,
    trace: Vec<StepTrace>,
    failed: Option<(&'static str, String)>,
    active: Duration,
}

struct Run<S> {
    steps: Vec<Step<S>>,
    cluster: Cluster,
    deadline: Duration,
    done: tokio::sync::mpsc::UnboundedSender<Finished>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What a step's future came to.
fn step_result(
    r: Result<Result<TestResult, tokio::time::error::Elapsed>, Box<dyn std::any::Any + Send>>,
    deadline: Duration,
) -> Option<(&'static str, String)> {
    match r {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some((classify(&e), one_line(&e))),
        Ok(Err(_)) => Some((
            "timeout",
            format!(
                "ran past the walk's deadline of {}",
                humantime::format_duration(deadline)
            ),
        )),
        Err(p) => Some(("panic", format!("panicked: {}", panic_text(p.as_ref())))),
    }
}

impl<S: Clone + Send + Sync + 'static> Run<S> {
    /// Runs `group` from step `from` to the end: the next segment in parallel, then the barrier's
    /// serial action once per option, each followed by the rest for the walks that chose it.
    fn tree(self: &Arc<Self>, from: usize, group: Vec<InFlight<S>>) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move {
            let barrier = (from..this.steps.len())
                .find(|&i| matches!(this.steps[i].exec, Exec::Serial(_)))
                .unwrap_or(this.steps.len());
            // The segment up to the barrier, every walk as a task of its own.
            let tasks: Vec<_> = group
                .into_iter()
                .map(|w| {
                    let run = this.clone();
                    let index = w.index;
                    (
                        index,
                        tokio::spawn(async move { run.segment(from, barrier, w).await }),
                    )
                })
                .collect();
            let mut live = Vec::new();
            for (index, task) in tasks {
                match task.await {
                    Ok(w) if w.failed.is_none() && barrier < this.steps.len() => live.push(w),
                    Ok(w) => this.finish(w),
                    Err(e) => {
                        let _ = this.done.send(Finished {
                            index,
                            steps: Vec::new(),
                            error: Some(("panic", format!("the walk's task ended: {e}"))),
                            active: Duration::ZERO,
                        });
                    }
                }
            }
            if barrier >= this.steps.len() {
                return;
            }
            let Exec::Serial(serial) = &this.steps[barrier].exec else {
                unreachable!("the barrier is a serial step")
            };
            let step = &this.steps[barrier];
            for option in 0..step.labels.len() {
                let (mut chose, rest): (Vec<_>, Vec<_>) =
                    live.into_iter().partition(|w| w.options[barrier] == option);
                live = rest;
                if chose.is_empty() {
                    continue;
                }
                let started = now_us();
                let clock = Instant::now();
                let r = {
                    let mut walks: Vec<&mut Walk<S>> =
                        chose.iter_mut().map(|w| &mut w.walk).collect();
                    let fut = serial.run(option, &this.cluster, &mut walks);
                    AssertUnwindSafe(tokio::time::timeout(this.deadline, fut))
                        .catch_unwind()
                        .await
                };
                let error = step_result(r, this.deadline);
                let ended = now_us();
                let took = clock.elapsed();
                let served = chose.len();
                for w in &mut chose {
                    w.active += took;
                    let notes = std::mem::take(&mut w.walk.notes);
                    w.trace.push(StepTrace {
                        walks: Some(served),
                        ..step.ran(option, (started, ended), &error, notes)
                    });
                    w.failed = error.clone();
                }
                if error.is_some() {
                    for w in chose {
                        this.finish(w);
                    }
                } else {
                    this.tree(barrier + 1, chose).await;
                }
            }
        })
    }

    /// Steps `from..to` of one walk, stopping at the first failure.
    async fn segment(&self, from: usize, to: usize, mut w: InFlight<S>) -> InFlight<S> {
        for i in from..to {
            let Exec::Each(action) = &self.steps[i].exec else {
                unreachable!("a segment holds no serial step")
            };
            let option = w.options[i];
            let left = self.deadline.saturating_sub(w.active);
            let started = now_us();
            let clock = Instant::now();
            let r = AssertUnwindSafe(tokio::time::timeout(left, action.run(option, &mut w.walk)))
                .catch_unwind()
                .await;
            w.active += clock.elapsed();
            let error = step_result(r, self.deadline);
            let notes = std::mem::take(&mut w.walk.notes);
            let trace = self.steps[i].ran(option, (started, now_us()), &error, notes);
            w.trace.push(trace);
            if error.is_some() {
                w.failed = error;
                break;
            }
        }
        w
    }

    fn finish(&self, w: InFlight<S>) {
        let _ = self.done.send(Finished {
            index: w.index,
            steps: w.trace,
            error: w.failed,
            active: w.active,
        });
    }
}
