//! Walks for the self-tests (`harness/tests/walks.rs`): `outcomes` on one idle node, where the
//! `first=fail` walks fail and the others pass through a serial barrier; `pairs`, a pairwise
//! definition that is only listed (ignored), and that becomes unplannable when
//! `SELFTEST_BAD_WALK` is set.

use harness::prelude::*;

/// What a walk carries: the mode its serial step set.
#[derive(Clone, Default)]
pub struct State {
    mode: String,
}

pub struct First;

#[async_trait]
impl Action<State> for First {
    type Opt = &'static str;
    fn name(&self) -> &str {
        "first"
    }
    fn options(&self) -> Vec<&'static str> {
        vec!["ok", "fail"]
    }
    async fn run(&self, option: &&'static str, walk: &mut Walk<State>) -> TestResult {
        walk.cluster().node("n1")?.exec("true").await?.check()?;
        ensure!(*option == "ok", "deliberate failure in {}", walk.id());
        Ok(())
    }
}

/// Writes the mode to a file every walk after it reads: correct only if no other option's
/// run came between this one and the walks that chose it.
pub struct Mode;

#[async_trait]
impl SerialAction<State> for Mode {
    type Opt = &'static str;
    fn name(&self) -> &str {
        "mode"
    }
    fn options(&self) -> Vec<&'static str> {
        vec!["a", "b"]
    }
    async fn run(
        &self,
        option: &&'static str,
        cluster: &Cluster,
        walks: &mut [&mut Walk<State>],
    ) -> TestResult {
        cluster
            .node("n1")?
            .exec(format!("echo {option} > /tmp/mode"))
            .await?
            .check()?;
        for w in walks.iter_mut() {
            w.state.mode = option.to_string();
        }
        Ok(())
    }
}

pub struct Second;

#[async_trait]
impl Action<State> for Second {
    type Opt = u32;
    fn name(&self) -> &str {
        "second"
    }
    fn options(&self) -> Vec<u32> {
        vec![1, 2]
    }
    async fn run(&self, n: &u32, walk: &mut Walk<State>) -> TestResult {
        let out = walk
            .cluster()
            .node("n1")?
            .exec("cat /tmp/mode")
            .await?
            .check()?;
        ensure!(
            out.out() == walk.state.mode,
            "the node's mode is {:?}, the walk's {:?}",
            out.out(),
            walk.state.mode
        );
        walk.note(format!("mode {} seen {n} time(s)", out.out()));
        Ok(())
    }
}

#[cluster_walk(nodes = 1, image = "cluster-sim/node", timeout = "30s")]
fn outcomes() -> Walks<State> {
    Walks::new(State::default())
        .action(First)
        .serial(Mode)
        .action(Second)
}

/// An action that does nothing, named and optioned at will.
pub struct Noop(&'static str, Vec<&'static str>);

#[async_trait]
impl Action<State> for Noop {
    type Opt = &'static str;
    fn name(&self) -> &str {
        self.0
    }
    fn options(&self) -> Vec<&'static str> {
        self.1.clone()
    }
    async fn run(&self, _: &&'static str, _: &mut Walk<State>) -> TestResult {
        Ok(())
    }
}

#[cluster_walk(nodes = 1, ignore = "listed by the self-tests, never run")]
fn pairs() -> Walks<State> {
    let three = || vec!["x", "y", "z"];
    let walks = Walks::new(State::default())
        .action(Noop("a", three()))
        .action(Noop("b", three()))
        .action(Noop("c", three()))
        .action(Noop("d", three()))
        .pairwise(11);
    match std::env::var("SELFTEST_BAD_WALK").as_deref() {
        Ok("panic") => panic!("deliberate panic while defining walks"),
        Ok(_) => return walks.action(Noop("e", Vec::new())),
        Err(_) => {}
    }
    walks
}

/// A walk that takes long enough for the self-test to interrupt it.
pub struct Slow;

#[async_trait]
impl Action<State> for Slow {
    type Opt = u32;
    fn name(&self) -> &str {
        "sleep"
    }
    fn options(&self) -> Vec<u32> {
        vec![60]
    }
    async fn run(&self, secs: &u32, walk: &mut Walk<State>) -> TestResult {
        walk.cluster()
            .node("n1")?
            .exec(format!("sleep {secs}"))
            .await?
            .check()?;
        Ok(())
    }
}

#[cluster_walk(
    nodes = 1,
    image = "cluster-sim/node",
    ignore = "interrupted by the self-tests"
)]
fn slow() -> Walks<State> {
    Walks::new(State::default()).action(Slow)
}
