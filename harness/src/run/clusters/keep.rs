//! Keeping a test's cluster instead of tearing it down (`CLUSTER_SIM_KEEP_CLUSTER`): the same
//! rule for fresh clusters, shared groups' and walk definitions'. A kept cluster is marked kept
//! on the backend with the test's name (no reaper or watchdog removes it), leaves the run's
//! registry (so no sweep of this run removes it either), keeps its faults, and gives back its
//! node budget as a teardown would; its test's failure says its name and the commands to use.

use cluster_sim_core::Cluster;

use super::provision::{self, TEARDOWN_LIMIT};
use crate::artifacts::TestLog;
use crate::outcome::Status;
use crate::run::ctx::RunCtx;

/// The commands to use on a kept cluster, as one line.
pub(crate) fn advice(cluster: &Cluster) -> String {
    advice_when(cluster, "was kept running")
}

/// [`advice`] for a cluster kept later than now (`kept` says when: a walk definition's, once
/// its walks end).
pub(crate) fn advice_when(cluster: &Cluster, kept: &str) -> String {
    let name = cluster.name();
    let node = cluster
        .nodes()
        .first()
        .map(|n| n.name().to_string())
        .unwrap_or_else(|| "n1".into());
    format!(
        "cluster {name} {kept} (CLUSTER_SIM_KEEP_CLUSTER): `cluster-sim exec {name} \
         {node} -- sh` to look inside, `cluster-sim logs {name}` for its logs, `cluster-sim down \
         {name}` to remove it (`cluster-sim down --kept` removes every kept cluster)"
    )
}

/// Ends a test's cluster as the settings say, given whether the test passed: kept, marked with
/// `test`, and gone from the run's registry (returns the advice to show), or torn down (see
/// [`provision::down`]). A cluster that can't be marked kept is torn down, with a note.
pub(crate) async fn keep_or_down(
    ctx: &RunCtx,
    cluster: &Cluster,
    name: &str,
    test: &str,
    passed: bool,
    log: Option<&TestLog>,
) -> Result<Option<String>, String> {
    if ctx.settings.keep_cluster.keeps(passed) {
        let why = match tokio::time::timeout(TEARDOWN_LIMIT, cluster.keep_for(test)).await {
            Ok(Ok(())) => {
                ctx.clusters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(name);
                let advice = advice(cluster);
                if let Some(log) = log {
                    log.note("keep", &advice);
                }
                return Ok(Some(advice));
            }
            Ok(Err(e)) => format!("keeping {name} failed: {e}; tearing it down"),
            Err(_) => format!("keeping {name} timed out; tearing it down"),
        };
        if let Some(log) = log {
            log.note("keep", &why);
        }
    }
    provision::down(ctx, cluster, name, log)
        .await
        .map(|()| None)
}

/// Says a kept cluster's name and commands where the test's end is read: a failure's message
/// and its whole text (console, JUnit), or a console line for a test that passed.
pub(crate) fn tell(outcome: &mut Status, test: &str, advice: &str) {
    match outcome {
        Status::Failed {
            message, detail, ..
        }
        | Status::Error {
            message, detail, ..
        } => {
            message.push_str("; ");
            message.push_str(advice);
            detail.push('\n');
            detail.push_str(advice);
        }
        Status::Passed | Status::Skipped { .. } => eprintln!("{test}: {advice}"),
    }
}
