//! Waiting for service log lines (`node.wait_for_log`) on real redis nodes: an earlier line with
//! `.since_start()`, none without it, and a line another node writes after the wait began.

use harness::prelude::*;

#[cluster_test(cluster = "redis3", timeout = "2m")]
async fn wait_for_log_sees_new_lines_and_earlier_ones_on_request(cluster: &Cluster) -> TestResult {
    let (n1, n2) = (cluster.node("n1")?, cluster.node("n2")?);
    let ready = n1
        .wait_for_log("Ready to accept connections", Duration::from_secs(10))
        .since_start()
        .await?;
    ensure!(ready.contains("Ready to accept connections"), "{ready}");

    // Without since_start the same line, written before the wait, does not count.
    let err = n2
        .wait_for_log("Ready to accept connections", Duration::from_secs(1))
        .await
        .expect_err("an earlier line matched without since_start");
    let msg = err.to_string();
    ensure!(
        msg.starts_with("node n2: no service log line matched \"Ready to accept connections\""),
        "{msg}"
    );

    // The primary restarts; its replica logs the resync after the wait began.
    let (synced, restarted) = tokio::join!(
        n2.wait_for_log(
            r"MASTER <-> REPLICA sync: Finished with success",
            Duration::from_secs(60)
        ),
        n1.restart()
    );
    restarted?;
    let synced = synced?;
    ensure!(synced.contains("Finished with success"), "{synced}");
    Ok(())
}
