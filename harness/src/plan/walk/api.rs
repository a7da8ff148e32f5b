//! What a walk definition is written with: [`Action`]s and [`SerialAction`]s, the [`Walk`] each
//! runs on, and the [`Walks`] definition a `#[cluster_walk]` function returns; [`Plan`] is the
//! same definition with its state type erased, as the harness holds it.

use std::fmt::Display;
use std::time::Duration;

use cluster_sim_core::Cluster;
use futures::future::BoxFuture;

use super::generate::{Chosen, Generator, Shape};
use super::trace::Finished;
use crate::outcome::TestResult;

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
    pub(super) id: String,
    pub(super) label: String,
    pub(super) cluster: Cluster,
    /// The walk's own state, cloned from the definition's initial state.
    pub state: S,
    pub(super) notes: Vec<String>,
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

pub(super) type StepFuture<'a> = BoxFuture<'a, TestResult>;

pub(super) trait EachStep<S>: Send + Sync {
    fn run<'a>(&'a self, option: usize, walk: &'a mut Walk<S>) -> StepFuture<'a>;
}

pub(super) trait SerialStep<S>: Send + Sync {
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

pub(super) enum Exec<S> {
    Each(Box<dyn EachStep<S>>),
    Serial(Box<dyn SerialStep<S>>),
}

pub(super) struct Step<S> {
    pub(super) name: String,
    pub(super) labels: Vec<String>,
    pub(super) exec: Exec<S>,
}

/// A walk definition: the initial state, the actions in order, and the generator. Returned by a
/// `#[cluster_walk]` function.
pub struct Walks<S> {
    pub(super) initial: S,
    pub(super) steps: Vec<Step<S>>,
    pub(super) generator: Generator,
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
