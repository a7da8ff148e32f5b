//! Combinatorial walks: actions, each with a set of typed options, combined into walks that take
//! one option of every action in order, on one shared cluster.
//!
//! ```no_run
//! use harness::prelude::*;
//! use harness::walk::{Action, SerialAction, Walk, Walks};
//!
//! #[derive(Clone, Default)]
//! struct Model {
//!     written: String,
//! }
//!
//! struct Write;
//!
//! #[harness::async_trait]
//! impl Action<Model> for Write {
//!     type Opt = &'static str;
//!     fn name(&self) -> &str {
//!         "write"
//!     }
//!     fn options(&self) -> Vec<&'static str> {
//!         vec!["small", "big"]
//!     }
//!     async fn run(&self, size: &&'static str, walk: &mut Walk<Model>) -> TestResult {
//!         let value = if *size == "big" { "x".repeat(4096) } else { "x".into() };
//!         let key = walk.key("k");
//!         walk.cluster().node("n1")?.exec(format!("redis-cli set {key} {value}")).await?.check()?;
//!         walk.state.written = value;
//!         Ok(())
//!     }
//! }
//!
//! struct Policy;
//!
//! #[harness::async_trait]
//! impl SerialAction<Model> for Policy {
//!     type Opt = &'static str;
//!     fn name(&self) -> &str {
//!         "policy"
//!     }
//!     fn options(&self) -> Vec<&'static str> {
//!         vec!["noeviction", "allkeys-lru"]
//!     }
//!     async fn run(&self, p: &&'static str, cluster: &Cluster, _walks: &mut [&mut Walk<Model>]) -> TestResult {
//!         for node in cluster.nodes() {
//!             node.exec(format!("redis-cli config set maxmemory-policy {p}")).await?.check()?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[cluster_walk(cluster = "redis3")]
//! fn cache() -> Walks<Model> {
//!     Walks::new(Model::default()).action(Write).serial(Policy)
//! }
//! # fn main() {}
//! ```
//!
//! Each walk is a trial named `<test>::w0003[write=big,policy=allkeys-lru]`: a stable id (its
//! place in the generated list) and a readable label. Walks run in parallel, each on its own
//! clone of the initial state. A [`SerialAction`] is a barrier: every walk runs up to it, then it
//! runs once per option, one option at a time, and the walks that chose that option go on in
//! parallel (up to the next barrier) before the next option runs, so what a serial action does to
//! the cluster holds for the walks that chose it. A failing action fails its walk; the walk's
//! later actions don't run. Every walk leaves `trace.json` (actions, options, timings, results,
//! notes) in its artifacts; `cargo test -- --exact <walk name>` replays one walk alone.
//!
//! The generator is every combination ([`Walks::all`], the default) or a seeded pairwise covering
//! subset ([`Walks::pairwise`]): every pair of options of any two actions appears in some walk.

use std::collections::HashSet;
use std::fmt::{self, Display};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cluster_sim_core::rng::SplitMix64;
use cluster_sim_core::Cluster;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};

use crate::def::TestResult;

/// A step every walk takes, with the option the walk chose.
#[async_trait::async_trait]
pub trait Action<S: Send + 'static>: Send + Sync + 'static {
    /// The option type: its `Display` is the option's label in walk names.
    type Opt: Display + Send + Sync + 'static;
    /// The action's name in walk labels (`write` in `w0001[write=big]`).
    fn name(&self) -> &str;
    /// The options, in order.
    fn options(&self) -> Vec<Self::Opt>;
    /// Runs the action for one walk.
    async fn run(&self, option: &Self::Opt, walk: &mut Walk<S>) -> TestResult;
}

/// A barrier step: runs once per option, one option at a time, for all the walks that chose it
/// (their states are handed to it), after every walk reached it.
#[async_trait::async_trait]
pub trait SerialAction<S: Send + 'static>: Send + Sync + 'static {
    /// The option type: its `Display` is the option's label in walk names.
    type Opt: Display + Send + Sync + 'static;
    /// The action's name in walk labels.
    fn name(&self) -> &str;
    /// The options, in order.
    fn options(&self) -> Vec<Self::Opt>;
    /// Runs once for `option`, with the walks that chose it.
    async fn run(
        &self,
        option: &Self::Opt,
        cluster: &Cluster,
        walks: &mut [&mut Walk<S>],
    ) -> TestResult;
}

/// One walk in progress: its id, its own copy of the state, and the shared cluster.
pub struct Walk<S> {
    id: String,
    label: String,
    cluster: Cluster,
    /// The walk's own state, cloned from the definition's initial state.
    pub state: S,
    notes: Vec<String>,
}

impl<S> Walk<S> {
    /// The walk's id (`w0007`), stable across runs of the same definition: its position in
    /// the generated list, at least four digits. The trial is named
    /// `<definition>::<id>[<label>]`.
    ///
    /// ```
    /// use harness::prelude::*;
    ///
    /// pub struct Write;
    ///
    /// #[async_trait]
    /// impl Action<()> for Write {
    ///     type Opt = &'static str;
    ///     fn name(&self) -> &str { "write" }
    ///     fn options(&self) -> Vec<&'static str> { vec!["small", "big"] }
    ///     async fn run(&self, _size: &&'static str, walk: &mut Walk<()>) -> TestResult {
    ///         // w0001 write=big; the key walks running in parallel don't share: value:w0001
    ///         let (id, label, key) = (walk.id().to_string(), walk.label().to_string(), walk.key("value"));
    ///         walk.note(format!("{id} {label} {key}"));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its options as `action=option,...` (`write=big,aof=on`), each option by its `Display`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The cluster every walk of the definition shares.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// `base` made the walk's own (`base:w0007`): keys, paths and names that walks running in
    /// parallel on the same cluster must not share.
    pub fn key(&self, base: &str) -> String {
        format!("{base}:{}", self.id)
    }

    /// Records a note in the current step's trace (what was read, how long it took...): a replay
    /// of the walk is expected to note the same things.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }
}

/// How walks are chosen from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// Every combination.
    All,
    /// A covering subset in which every pair of options of any two actions appears in some
    /// walk, drawn with the seed (same seed and actions, same walks).
    Pairwise {
        /// The seed.
        seed: u64,
    },
}

impl Display for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Generator::All => f.write_str("all"),
            Generator::Pairwise { seed } => write!(f, "pairwise(seed={seed})"),
        }
    }
}

type StepFuture<'a> = BoxFuture<'a, TestResult>;

trait EachStep<S>: Send + Sync {
    fn run<'a>(&'a self, option: usize, walk: &'a mut Walk<S>) -> StepFuture<'a>;
}

trait SerialStep<S>: Send + Sync {
    fn run<'a, 'b: 'a>(
        &'a self,
        option: usize,
        cluster: &'a Cluster,
        walks: &'a mut [&'b mut Walk<S>],
    ) -> StepFuture<'a>;
}

struct EachOf<A: Action<S>, S: Send + 'static> {
    action: A,
    options: Vec<A::Opt>,
}

impl<S: Send + 'static, A: Action<S>> EachStep<S> for EachOf<A, S> {
    fn run<'a>(&'a self, option: usize, walk: &'a mut Walk<S>) -> StepFuture<'a> {
        self.action.run(&self.options[option], walk)
    }
}

struct SerialOf<A: SerialAction<S>, S: Send + 'static> {
    action: A,
    options: Vec<A::Opt>,
}

impl<S: Send + 'static, A: SerialAction<S>> SerialStep<S> for SerialOf<A, S> {
    fn run<'a, 'b: 'a>(
        &'a self,
        option: usize,
        cluster: &'a Cluster,
        walks: &'a mut [&'b mut Walk<S>],
    ) -> StepFuture<'a> {
        self.action.run(&self.options[option], cluster, walks)
    }
}

enum Exec<S> {
    Each(Box<dyn EachStep<S>>),
    Serial(Box<dyn SerialStep<S>>),
}

struct Step<S> {
    name: String,
    labels: Vec<String>,
    exec: Exec<S>,
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

/// A walk definition: the initial state, the actions in order, and the generator. Returned by a
/// `#[cluster_walk]` function.
pub struct Walks<S> {
    initial: S,
    steps: Vec<Step<S>>,
    generator: Generator,
}

impl<S: Clone + Send + Sync + 'static> Walks<S> {
    /// A definition whose walks each start from a clone of `initial`.
    pub fn new(initial: S) -> Self {
        Self {
            initial,
            steps: Vec::new(),
            generator: Generator::All,
        }
    }

    /// Adds an action every walk runs, with one of its options.
    pub fn action<A: Action<S>>(self, action: A) -> Self {
        let (name, options) = (action.name().to_string(), action.options());
        let labels = options.iter().map(ToString::to_string).collect();
        self.step(
            name,
            labels,
            Exec::Each(Box::new(EachOf { action, options })),
        )
    }

    /// Adds a serial action: a barrier across the walks (see the module docs).
    pub fn serial<A: SerialAction<S>>(self, action: A) -> Self {
        let (name, options) = (action.name().to_string(), action.options());
        let labels = options.iter().map(ToString::to_string).collect();
        self.step(
            name,
            labels,
            Exec::Serial(Box::new(SerialOf { action, options })),
        )
    }

    fn step(mut self, name: String, labels: Vec<String>, exec: Exec<S>) -> Self {
        self.steps.push(Step { name, labels, exec });
        self
    }

    /// Every combination of options (the default).
    pub fn all(mut self) -> Self {
        self.generator = Generator::All;
        self
    }

    /// A seeded pairwise covering subset, for spaces too large for every combination.
    pub fn pairwise(mut self, seed: u64) -> Self {
        self.generator = Generator::Pairwise { seed };
        self
    }
}

/// One step of a definition, as planning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepShape {
    /// The action's name.
    pub name: String,
    /// Whether it is a serial action.
    pub serial: bool,
    /// Its options' labels.
    pub labels: Vec<String>,
}

/// What planning needs of a definition.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The steps in order.
    pub steps: Vec<StepShape>,
    /// The generator.
    pub generator: Generator,
}

/// A walk chosen by the generator: its option index for every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The walk's id (`w0007`).
    pub id: String,
    /// The option of every step.
    pub options: Vec<usize>,
    /// `action=option,...`.
    pub label: String,
}

/// A walk definition with its state type erased: what `#[cluster_walk]` registers.
#[doc(hidden)]
pub trait Plan: Send {
    /// The steps and generator.
    fn shape(&self) -> Shape;
    /// Runs `walks` on `cluster` (see the module docs), sending each walk's [`Finished`] as it
    /// ends. `deadline` bounds each walk's own running time (barrier waits excluded) and each
    /// serial run.
    fn execute(
        self: Box<Self>,
        cluster: Cluster,
        walks: Vec<Chosen>,
        deadline: Duration,
        done: tokio::sync::mpsc::UnboundedSender<Finished>,
    ) -> BoxFuture<'static, ()>;
}

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

/// Checks a definition's shape: what planning reports as an error (with the test's location).
pub fn validate(shape: &Shape) -> Result<(), String> {
    if shape.steps.is_empty() {
        return Err("the walk definition has no actions".into());
    }
    let mut names = HashSet::new();
    for s in &shape.steps {
        let bad = |what: &str| Err(format!("action {:?}: {what}", s.name));
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        {
            return bad("a name is letters, digits, `_` and `-`");
        }
        if !names.insert(s.name.as_str()) {
            return bad("two actions have this name");
        }
        if s.labels.is_empty() {
            return bad("it has no options");
        }
        let mut seen = HashSet::new();
        for l in &s.labels {
            if l.is_empty() || l.contains(['[', ']', ',', '=', ' ', '\n']) || l.contains("::") {
                return bad(&format!(
                    "option {l:?} can't be a label (no spaces, `[`, `]`, `,`, `=` or `::`)"
                ));
            }
            if !seen.insert(l.as_str()) {
                return bad(&format!("option {l:?} is given twice"));
            }
        }
    }
    Ok(())
}

/// The walks the generator makes, in a stable order: ids `w0000`, `w0001`... by position.
pub fn generate(shape: &Shape) -> Vec<Chosen> {
    let sizes: Vec<usize> = shape.steps.iter().map(|s| s.labels.len()).collect();
    let rows = match shape.generator {
        Generator::All => all_combinations(&sizes),
        Generator::Pairwise { seed } => pairwise(&sizes, seed),
    };
    let width = rows.len().saturating_sub(1).to_string().len().max(4);
    rows.into_iter()
        .enumerate()
        .map(|(i, options)| {
            let label: Vec<String> = shape
                .steps
                .iter()
                .zip(&options)
                .map(|(s, o)| format!("{}={}", s.name, s.labels[*o]))
                .collect();
            Chosen {
                id: format!("w{i:0width$}"),
                options,
                label: label.join(","),
            }
        })
        .collect()
}

/// Every combination, the first step varying slowest.
fn all_combinations(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut rows = vec![Vec::new()];
    for &n in sizes {
        rows = rows
            .into_iter()
            .flat_map(|prefix: Vec<usize>| {
                (0..n).map(move |o| {
                    let mut r = prefix.clone();
                    r.push(o);
                    r
                })
            })
            .collect();
    }
    rows
}

/// A pairwise covering array, built greedily (AETG-style): each new row starts from a pair not
/// yet covered, and fills the other steps, in a seeded order, with the option that covers the
/// most new pairs; the best of a few candidates is kept. Deterministic for a seed.
fn pairwise(sizes: &[usize], seed: u64) -> Vec<Vec<usize>> {
    if sizes.len() < 3 {
        return all_combinations(sizes);
    }
    const CANDIDATES: usize = 24;
    let k = sizes.len();
    let mut uncovered: HashSet<(usize, usize, usize, usize)> = HashSet::new();
    for i in 0..k {
        for j in i + 1..k {
            for a in 0..sizes[i] {
                for b in 0..sizes[j] {
                    uncovered.insert((i, a, j, b));
                }
            }
        }
    }
    let mut rng = SplitMix64::new(seed);
    let mut rows: Vec<Vec<usize>> = Vec::new();
    while !uncovered.is_empty() {
        // The pairs left, in a stable order, so the seed alone decides.
        let mut left: Vec<_> = uncovered.iter().copied().collect();
        left.sort_unstable();
        let mut best: Option<(usize, Vec<usize>)> = None;
        for _ in 0..CANDIDATES {
            let (i, a, j, b) = left[rng.below(left.len())];
            let mut row: Vec<Option<usize>> = vec![None; k];
            row[i] = Some(a);
            row[j] = Some(b);
            let mut order: Vec<usize> = (0..k).filter(|&f| f != i && f != j).collect();
            rng.shuffle(&mut order);
            for f in order {
                let mut best_v = 0;
                let mut best_gain = None;
                let start = rng.below(sizes[f]);
                for step in 0..sizes[f] {
                    let v = (start + step) % sizes[f];
                    let gain = row
                        .iter()
                        .enumerate()
                        .filter_map(|(g, x)| x.map(|x| (g, x)))
                        .filter(|&(g, x)| {
                            let key = if g < f { (g, x, f, v) } else { (f, v, g, x) };
                            uncovered.contains(&key)
                        })
                        .count();
                    if best_gain.is_none_or(|b| gain > b) {
                        best_gain = Some(gain);
                        best_v = v;
                    }
                }
                row[f] = Some(best_v);
            }
            let row: Vec<usize> = row.into_iter().map(|x| x.unwrap_or(0)).collect();
            let gain = covered_by(&row, &uncovered);
            if best.as_ref().is_none_or(|(g, _)| gain > *g) {
                best = Some((gain, row));
            }
        }
        let Some((_, row)) = best else { break };
        for i in 0..k {
            for j in i + 1..k {
                uncovered.remove(&(i, row[i], j, row[j]));
            }
        }
        rows.push(row);
    }
    rows
}

fn covered_by(row: &[usize], uncovered: &HashSet<(usize, usize, usize, usize)>) -> usize {
    let mut n = 0;
    for i in 0..row.len() {
        for j in i + 1..row.len() {
            if uncovered.contains(&(i, row[i], j, row[j])) {
                n += 1;
            }
        }
    }
    n
}

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
    /// What the step noted ([`Walk::note`]).
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

/// A walk that ended: sent by [`Plan::execute`] as soon as it does.
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
        Ok(Ok(Err(e))) => Some((crate::body::classify(&e), format!("{e:#}"))),
        Ok(Err(_)) => Some((
            "timeout",
            format!(
                "ran past the walk's deadline of {}",
                humantime::format_duration(deadline)
            ),
        )),
        Err(p) => Some((
            "panic",
            format!("panicked: {}", crate::body::panic_text(p.as_ref())),
        )),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sizes: &[usize], generator: Generator) -> Shape {
        Shape {
            steps: sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| StepShape {
                    name: format!("a{i}"),
                    serial: i == 1,
                    labels: (0..n).map(|o| format!("o{o}")).collect(),
                })
                .collect(),
            generator,
        }
    }

    #[test]
    fn all_is_every_combination_with_stable_ids() {
        let walks = generate(&shape(&[2, 3, 2], Generator::All));
        assert_eq!(walks.len(), 12);
        assert_eq!(walks[0].id, "w0000");
        assert_eq!(walks[0].label, "a0=o0,a1=o0,a2=o0");
        assert_eq!(walks[7].label, "a0=o1,a1=o0,a2=o1");
        assert_eq!(walks[11].id, "w0011");
        let distinct: HashSet<_> = walks.iter().map(|w| w.options.clone()).collect();
        assert_eq!(distinct.len(), 12);
    }

    #[test]
    fn pairwise_covers_every_pair_in_fewer_walks_and_is_seeded() {
        let s = shape(&[3, 3, 3, 3, 3], Generator::Pairwise { seed: 7 });
        let walks = generate(&s);
        assert!(walks.len() < 3usize.pow(5) / 4, "{} walks", walks.len());
        assert!(walks.len() >= 9, "{} walks", walks.len());
        for i in 0..5 {
            for j in i + 1..5 {
                for a in 0..3 {
                    for b in 0..3 {
                        assert!(
                            walks.iter().any(|w| w.options[i] == a && w.options[j] == b),
                            "pair ({i}={a}, {j}={b}) missing"
                        );
                    }
                }
            }
        }
        assert_eq!(generate(&s), walks);
        let other = generate(&shape(&[3, 3, 3, 3, 3], Generator::Pairwise { seed: 8 }));
        assert_ne!(other, walks);
    }

    #[test]
    fn ids_widen_past_ten_thousand_walks() {
        let walks = generate(&shape(&[10, 10, 10, 11], Generator::All));
        assert_eq!(walks.len(), 11000);
        assert_eq!(walks[0].id, "w00000");
        assert_eq!(walks[10999].id, "w10999");
    }

    #[test]
    fn bad_definitions_are_named() {
        let mut s = shape(&[2, 2], Generator::All);
        assert!(validate(&s).is_ok());
        s.steps[1].labels[1] = "a=b".into();
        assert!(validate(&s)
            .unwrap_err()
            .contains("option \"a=b\" can't be a label"));
        s.steps[1].labels = vec![];
        assert_eq!(
            validate(&s).unwrap_err(),
            "action \"a1\": it has no options"
        );
        s.steps[1].name = "a0".into();
        s.steps[1].labels = vec!["x".into()];
        assert!(validate(&s).unwrap_err().contains("two actions"));
        assert!(validate(&shape(&[], Generator::All)).is_err());
    }
}
