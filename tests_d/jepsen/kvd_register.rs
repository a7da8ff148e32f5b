//! kvd as a register, driven from the test process with kvd's own Rust client (`kvd::Client`)
//! through the worker loop (`workload::Workers`): writes go to the primary, reads to any node
//! (the test host reaches the nodes' addresses directly). A follower answers reads from what it
//! has replicated, asynchronously: behind the primary by the replication lag at any time, and
//! for as long as a nemesis keeps it cut off from the primary. The register checker must find
//! the stale reads and show them. These tests pass when it does; each prints the
//! counterexamples into test.log.

use harness::prelude::*;

use fault::{Nemesis, NemesisFault, Shape};
use history::{Completed, OpType, Recorder, Register, Watch};
use workload::{Call, Done, Draw, Invocation, Workers};

const PORT: u16 = 7400;
/// Workers: worker `w` reads from node `w mod 3`.
const WORKERS: usize = 6;
/// Deadline of one kvd call (connect, then each reply).
const CALL: Duration = Duration::from_secs(1);

/// Half reads, half writes of values no other write uses, over two keys.
fn generate(d: &mut Draw<'_>) -> Invocation {
    let key = ["x", "y"][d.rng.below(2)];
    match d.rng.below(2) {
        0 => Invocation::read().key(key),
        _ => Invocation::write(d.unique).key(key),
    }
}

/// Performs `call` with kvd's blocking client on a blocking thread: a write on the primary, a
/// read on the worker's own node.
async fn perform(primary: String, nodes: Vec<String>, call: Call) -> Done {
    let key = call.op.key.clone().unwrap_or_default();
    let write = call.op.f == "write";
    let addr = if write {
        primary
    } else {
        nodes[call.worker % nodes.len()].clone()
    };
    let value = call.op.value.to_string();
    let done = tokio::task::spawn_blocking(move || {
        let mut c = kvd::Client::connect(format!("{addr}:{PORT}"), CALL);
        let c = match c.as_mut() {
            Ok(c) => c,
            Err(e) => return Done::Fail(e.to_string()),
        };
        if write {
            match c.set(&key, &value) {
                Ok(_) => Done::Ok,
                Err(e) if e.may_have_taken_effect() => Done::Info(e.to_string()),
                Err(e) => Done::Fail(e.to_string()),
            }
        } else {
            match c.get(&key) {
                Ok(Some(v)) => Done::Returned(v.parse::<u64>().map_or(v.into(), Into::into)),
                Ok(None) => Done::Returned(serde_json::Value::Null),
                // A read changes nothing: whatever went wrong, it did not happen.
                Err(e) => Done::Fail(e.to_string()),
            }
        }
    })
    .await;
    done.unwrap_or_else(|e| Done::Info(format!("the client's thread failed: {e}")))
}

/// A nemesis that isolates one node (drawn from its seed) every 3 s for 2 s, from the start.
fn isolating(rec: &Recorder) -> Nemesis {
    Nemesis::new(vec![NemesisFault::Partition(Shape::OneNode {
        node: String::new(),
    })])
    .every(Duration::from_secs(3))
    .heal_after(Duration::from_secs(2))
    .record(rec)
}

/// The reads that nodes served while the nemesis had them cut off from the primary `n1` (from
/// half a second into each cut, past its start and the replication lag, to a quarter second
/// before its heal), with every other operation but reads: a history whose stale reads are the
/// partitions' doing. Dropping reads drops constraints, so what the checker finds in it holds
/// for the whole history too.
fn reads_while_cut_off(ops: &[history::Op], nodes: &[String]) -> Vec<history::Op> {
    let mut cuts = Vec::new();
    let mut open: Option<(String, u64)> = None;
    for o in ops.iter().filter(|o| o.process == nemesis_process()) {
        let isolated = o.value.as_str().and_then(|v| v.split("isolate ").nth(1));
        let isolated = isolated.and_then(|v| v.split([' ', ':']).next());
        match (o.kind, isolated) {
            (OpType::Invoke, Some(node)) => open = Some((node.to_string(), o.time)),
            (_, _) => {
                if let Some((node, from)) = open.take() {
                    cuts.push((node, from + 500_000_000, o.time.saturating_sub(250_000_000)));
                }
            }
        }
    }
    let cut_off = |process: &history::Process, start: u64, end: u64| {
        let history::Process::Client(p) = process else {
            return false;
        };
        let node = &nodes[(*p as usize % WORKERS) % nodes.len()];
        cuts.iter().any(|(isolated, from, to)| {
            // Isolating the primary cuts every follower off from it.
            (isolated == node || (isolated == "n1" && node != "n1")) && start >= *from && end <= *to
        })
    };
    let mut started = std::collections::HashMap::new();
    let mut keep = vec![true; ops.len()];
    for (i, o) in ops.iter().enumerate() {
        if o.f != "read" || !matches!(o.process, history::Process::Client(_)) {
            continue;
        }
        if o.kind == OpType::Invoke {
            started.insert(o.process.clone(), (i, o.time));
            keep[i] = false;
        } else if let Some((at, start)) = started.remove(&o.process) {
            let kept = o.kind == OpType::Ok && cut_off(&o.process, start, o.time);
            keep[at] = kept;
            keep[i] = kept;
        }
    }
    ops.iter()
        .zip(keep)
        .filter(|&(_, k)| k)
        .map(|(o, _)| o.clone())
        .collect()
}

fn nemesis_process() -> history::Process {
    history::Process::Named("nemesis".into())
}

fn addresses(cluster: &Cluster) -> anyhow::Result<(String, Vec<String>)> {
    let primary = cluster.node("n1")?.address().to_string();
    let nodes = cluster.nodes().iter().map(|n| n.address().to_string()).collect();
    Ok((primary, nodes))
}

/// Whether a violation shows a read that returned something other than what the register held.
fn shows_a_stale_read(ops: &[Completed]) -> bool {
    ops.iter().any(|o| o.f == "read" && o.outcome == OpType::Ok)
}

#[cluster_test(cluster = "kvd3", timeout = "2m")]
async fn a_cut_off_follower_serves_stale_reads(cluster: &Cluster) -> TestResult {
    let dir = test_dir().context("the test has no artifact directory")?;
    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let (primary, nodes) = addresses(cluster)?;
    let nemesis = isolating(&rec);
    let seed = nemesis.seed;
    println!("nemesis seed {seed} (replay with CLUSTER_SIM_SEED={seed})");
    let running = cluster.nemesis(nemesis);
    let ran = Workers::new(WORKERS)
        .duration(Duration::from_secs(8))
        .op_timeout(Duration::from_secs(3))
        .stagger(Duration::from_millis(10))
        .seed(seed)
        .run(&rec, generate, |call| perform(primary.clone(), nodes.clone(), call))
        .await;
    let faults = running.stop().await;
    println!("{ran:?}; the nemesis ran {faults} fault(s)");

    let ops = rec.ops();
    std::fs::write(dir.join("history.svg"), history::timeline_svg(&ops))?;
    let report = history::check(&ops, &Register)?;
    println!("{report}");
    ensure!(faults >= 1, "the nemesis ran no fault");
    ensure!(ran.ok >= 100, "only {} operations were acknowledged", ran.ok);
    ensure!(
        !report.valid(),
        "nemesis seed {seed}: the register checker found no stale read in {} operations: {report}",
        ran.invoked
    );
    ensure!(
        report.violations.iter().any(|v| shows_a_stale_read(&v.ops)),
        "no counterexample shows a read: {report}"
    );

    // The same checker on the reads the cut-off nodes served during the partitions.
    let names: Vec<String> = cluster.nodes().iter().map(|n| n.name().to_string()).collect();
    let cut = reads_while_cut_off(&ops, &names);
    let reads = cut.iter().filter(|o| o.f == "read" && o.kind == OpType::Ok).count();
    let during = history::check(&cut, &Register)?;
    println!("{reads} reads served by nodes cut off from the primary, with every write:\n{during}");
    ensure!(reads > 0, "no read was served by a node while it was cut off");
    ensure!(
        !during.valid() && during.violations.iter().any(|v| shows_a_stale_read(&v.ops)),
        "nemesis seed {seed}: no stale read among the {reads} reads of cut-off nodes: {during}"
    );
    Ok(())
}

#[cluster_test(cluster = "kvd3", timeout = "2m")]
async fn watch_stops_clients_and_nemesis_at_the_first_stale_read(
    cluster: &Cluster,
) -> TestResult {
    let dir = test_dir().context("the test has no artifact directory")?;
    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let (primary, nodes) = addresses(cluster)?;
    let watch = Watch::start(Register, &rec)?;
    let nemesis = isolating(&rec);
    let seed = nemesis.seed;
    println!("nemesis seed {seed} (replay with CLUSTER_SIM_SEED={seed})");
    let running = cluster.nemesis(nemesis);
    // Far longer than the lie takes to show: the watch must end the run, not this deadline.
    let ran = Workers::new(WORKERS)
        .duration(Duration::from_secs(60))
        .op_timeout(Duration::from_secs(3))
        .stagger(Duration::from_millis(10))
        .seed(seed)
        .run(&rec, generate, |call| perform(primary.clone(), nodes.clone(), call))
        .await;
    let found = watch.found();
    let report = watch.finish().await?;
    let faults = running.stop().await;
    let ops = rec.ops();
    std::fs::write(dir.join("history.svg"), history::timeline_svg(&ops))?;
    println!("{ran:?}; the nemesis ran {faults} fault(s)");
    println!("{report}");

    let found = found.context("the watch found no anomaly in a minute")?;
    println!("watch: {found:?}");
    ensure!(!report.valid(), "the watch stopped a valid history: {report}");
    ensure!(ran.stopped.is_some(), "the workers were not stopped: {ran:?}");
    // The anomalous operation completed at `anomaly`: the latest completion among the few
    // operations that show it (for the earliest violation, if there are several).
    let anomaly = report
        .violations
        .iter()
        .filter(|v| shows_a_stale_read(&v.ops))
        .filter_map(|v| v.ops.iter().filter_map(|o| o.end).max())
        .min()
        .context("no counterexample shows a completed read")?;
    let last_invoke = ops
        .iter()
        .filter(|o| o.kind == OpType::Invoke)
        .map(|o| o.time)
        .max()
        .unwrap_or(0);
    let after = Duration::from_nanos(last_invoke.saturating_sub(anomaly));
    println!(
        "the anomalous read completed at {:.3}s, the watch stopped the history at {:.3}s, \
         the last operation was invoked at {:.3}s ({after:?} after the anomaly)",
        anomaly as f64 / 1e9,
        found.stopped as f64 / 1e9,
        last_invoke as f64 / 1e9
    );
    ensure!(
        after < Duration::from_secs(1),
        "the clients went on {after:?} after the anomaly"
    );
    // The nemesis stopped too: nothing started after the stop, and its last fault was left
    // in force (ended by teardown, or kept with the cluster under CLUSTER_SIM_KEEP_CLUSTER).
    let nemesis: Vec<_> = ops
        .iter()
        .filter(|o| o.process == nemesis_process())
        .collect();
    ensure!(
        nemesis
            .iter()
            .all(|o| o.kind != OpType::Invoke || o.time <= found.stopped),
        "the nemesis started a fault after the stop"
    );
    let in_force = nemesis
        .iter()
        .rfind(|o| o.time <= found.stopped)
        .is_some_and(|o| o.kind == OpType::Invoke);
    let left = nemesis
        .iter()
        .any(|o| o.value.as_str().is_some_and(|v| v.contains("left in force")));
    ensure!(
        left || !in_force,
        "a fault was in force at the stop and the nemesis healed it: {nemesis:?}"
    );
    Ok(())
}
