//! Faults as the harness reports them: a nemesis's seed on failure and in the report, and a
//! test skipped for a kernel feature the backend lacks.

use harness::cluster_sim::fault::{Nemesis, NemesisFault};
use harness::prelude::*;

#[cluster_test(nodes = 2, image = "cluster-sim/node")]
async fn fails_under_a_nemesis(cluster: &Cluster) -> TestResult {
    // Its first fault (light loss) starts at once; the test then fails while it runs.
    let nemesis = cluster.nemesis(
        Nemesis::new(vec![NemesisFault::Loss(1.0)])
            .seed(4242)
            .every(Duration::from_secs(3600)),
    );
    wait_until(Duration::from_secs(30), || async {
        Ok::<_, anyhow::Error>(!cluster.faults().await?.is_empty())
    })
    .await?;
    let _keep_running = nemesis;
    bail!("deliberate failure under a nemesis")
}

#[cluster_test(nodes = 1, image = "cluster-sim/node", requires = ["netem"])]
async fn needs_netem(cluster: &Cluster) -> TestResult {
    ensure!(cluster.capabilities("n1").await?.netem, "ran without netem");
    Ok(())
}
