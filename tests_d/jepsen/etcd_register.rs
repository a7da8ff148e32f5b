//! etcd as a linearizable register: five clients read, write and cas three keys for 30 s while a
//! seeded nemesis partitions the cluster and kills members; the recorded history must be
//! linearizable. `history.jsonl` and `history.svg` are kept in the test's artifacts on failure
//! (or always, with CLUSTER_SIM_KEEP=always); the nemesis seed is in test.log.

use harness::prelude::*;

use fault::{Nemesis, NemesisFault, Shape};
use history::{OpType, Recorder, Register};
use workload::{Clients, EtcdRegister};

#[cluster_test(cluster = "etcd3", timeout = "3m")]
async fn linearizable_under_partitions_and_kills(cluster: &Cluster) -> TestResult {
    let dir = test_dir().context("the test has no artifact directory")?;
    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let nemesis = Nemesis::new(vec![
        NemesisFault::Partition(Shape::RandomHalves { seed: 0 }),
        NemesisFault::Partition(Shape::OneNode {
            node: String::new(),
        }),
        NemesisFault::Kill,
    ])
    .every(Duration::from_secs(5))
    .heal_after(Duration::from_millis(2500))
    .record(&rec);
    let seed = nemesis.seed;
    println!("nemesis seed {seed} (replay with CLUSTER_SIM_SEED={seed})");
    let running = cluster.nemesis(nemesis);
    let clients = Clients {
        clients: 5,
        duration: Duration::from_secs(30),
        op_timeout: Duration::from_secs(2),
        seed,
    };
    EtcdRegister::default().run(cluster, &rec, &clients).await;
    let faults = running.stop().await;

    let ops = rec.ops();
    std::fs::write(dir.join("history.svg"), history::timeline_svg(&ops))?;
    let report = history::check(&ops, &Register)?;
    println!("{report}");
    ensure!(report.valid(), "nemesis seed {seed}: {report}");
    // The run must have tested something: faults happened and clients got through them.
    let acked = ops.iter().filter(|o| o.kind == OpType::Ok).count();
    ensure!(faults >= 3, "the nemesis ran only {faults} fault(s)");
    ensure!(acked >= 50, "only {acked} operations were acknowledged");
    Ok(())
}
