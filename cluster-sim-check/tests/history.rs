//! Workloads against real stores in nodes, checked: an etcd register stays linearizable while a
//! member is killed and restarted; the recorded history round-trips through history.jsonl.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use cluster_sim_check::history::{self, OpType, Recorder, Register};
use cluster_sim_check::workload::{Clients, EtcdRegister};
use cluster_sim_core::{Cluster, ClusterSpec};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/clusters")
        .join(format!("{name}.toml"))
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_register_is_linearizable_across_a_member_kill() -> Result<()> {
    let spec = ClusterSpec::from_file(fixture("etcd3"))?;
    let cluster = Cluster::builder(spec).up().await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::to_file(&path)?;
    let opts = Clients {
        clients: 4,
        duration: Duration::from_secs(12),
        op_timeout: Duration::from_secs(2),
        seed: 7,
    };
    let register = EtcdRegister::default();
    let workload = register.run(&cluster, &rec, &opts);
    let nemesis = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        rec.nemesis(OpType::Invoke, "kill", "n3");
        let r = cluster.node("n3")?.kill().await;
        rec.nemesis(OpType::Info, "kill", "n3");
        r?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        rec.nemesis(OpType::Invoke, "start", "n3");
        let r = cluster.node("n3")?.start().await;
        rec.nemesis(OpType::Info, "start", "n3");
        r?;
        anyhow::Ok(())
    };
    let (_, nemesis) = tokio::join!(workload, nemesis);
    cluster.down().await?;
    nemesis?;

    let ops = history::read_history(&path)?;
    assert_eq!(ops, rec.ops(), "the file holds what was recorded");
    let report = history::check(&ops, &Register)?;
    let oks = ops.iter().filter(|o| o.kind == OpType::Ok).count();
    assert!(oks > 30, "only {oks} operations completed: {report}");
    assert!(
        ops.iter().any(|o| o.f == "cas" && o.kind == OpType::Ok),
        "no cas succeeded"
    );
    assert!(report.valid(), "{report}");
    Ok(())
}
