//! `cluster-sim down NAME | --all | --kept`: removes clusters through the backend. A kept
//! cluster's `before_down` hooks run first, from the spec file its keep mark records (or
//! `--spec`), their output on stderr; a failing hook, or a spec that can no longer be read, is
//! one line and the cluster is removed all the same. `--no-hooks` skips them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Result};
use cluster_sim::error::HookError;
use cluster_sim::spec::HookWhen;
use cluster_sim::{
    Backend, BackendError, Cluster, ClusterSpec, ClusterSummary, Event, EventKind, EventSink,
};

use crate::progress;

/// `down`'s flags.
#[derive(clap::Args, Debug)]
pub struct DownArgs {
    /// Cluster name.
    #[arg(required_unless_present_any = ["all", "kept"], conflicts_with_all = ["all", "kept"])]
    name: Option<String>,
    /// Remove every cluster-sim cluster on this engine.
    #[arg(long, conflicts_with = "kept")]
    all: bool,
    /// Remove every kept cluster: those `up` made and those failed tests kept
    /// (CLUSTER_SIM_KEEP_CLUSTER).
    #[arg(long)]
    kept: bool,
    /// Do not run the spec's before_down hooks (for a cluster whose nodes are broken).
    #[arg(long)]
    no_hooks: bool,
    /// The spec file whose before_down hooks run first (default: the one the cluster was made
    /// from, which its keep mark records).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["all", "kept", "no_hooks"])]
    spec: Option<PathBuf>,
}

pub(crate) async fn down(backend: Arc<dyn Backend>, a: DownArgs) -> Result<ExitCode> {
    // A spec named on the command line must be readable: nothing is removed otherwise.
    let given = a.spec.as_deref().map(ClusterSpec::from_file).transpose()?;
    // Each cluster to remove, its node count, and what the lookup found of it (for its hooks).
    let mut targets: Vec<(String, usize, Option<ClusterSummary>)> = Vec::new();
    if a.all || a.kept {
        // Clusters are what the backend finds of ours (nodes, networks, name claims,
        // owner files), never names.
        let verb = if a.kept { "down --kept" } else { "down --all" };
        for c in crate::caps::lookup(backend.as_ref(), verb)?
            .clusters()
            .await?
        {
            if a.all || c.kept {
                targets.push((c.name.clone(), c.nodes.len(), Some(c)));
            }
        }
    } else {
        let n = a.name.clone().unwrap_or_default();
        let mut nodes = 0;
        let mut found = None;
        if let Some(lookup) = backend.lookup() {
            match lookup.nodes(&n).await {
                Err(BackendError::UnknownCluster(_)) => bail!("no cluster named {n:?}"),
                Ok(listed) => nodes = listed.len(),
                Err(_) => {}
            }
            if !a.no_hooks {
                found = match lookup.clusters().await {
                    Ok(all) => all.into_iter().find(|c| c.name == n),
                    Err(e) => {
                        eprintln!("cluster-sim: warning: {n}: no before_down hooks: {e}");
                        None
                    }
                };
            }
        } else if a.spec.is_some() {
            eprintln!(
                "cluster-sim: warning: {n}: no before_down hooks: the {} backend can't find \
                 the cluster's nodes",
                backend.kind()
            );
        }
        targets.push((n, nodes, found));
    }
    for (n, nodes, found) in targets {
        if let (false, Some(found)) = (a.no_hooks, &found) {
            before_down(backend.clone(), found, given.clone()).await;
        }
        let spinner = progress::removing(&n, nodes);
        let r = backend.destroy(&n).await;
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        r?;
        println!("removed {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the `before_down` hooks of `given` (`--spec`) or else of the spec file `found` was
/// made from, if it has any, each hook's output on stderr. Whatever happens the cluster is
/// removed after, so failures are one line each, never an error.
async fn before_down(
    backend: Arc<dyn Backend>,
    found: &ClusterSummary,
    given: Option<ClusterSpec>,
) {
    let name = &found.name;
    if found.nodes.is_empty() {
        return;
    }
    let spec = match (given, &found.mark.spec_file) {
        (Some(s), _) => s,
        // A cluster kept by an older version, or not kept at all (`--all`), names no spec.
        (None, None) => return,
        (None, Some(file)) => match ClusterSpec::from_file(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "cluster-sim: warning: {name}: no before_down hooks run: {}",
                    first_line(&e.to_string())
                );
                return;
            }
        },
    };
    if !spec.hooks.iter().any(|h| h.when == HookWhen::BeforeDown) {
        return;
    }
    // The hooks' own lines (each exec's is in them already).
    let sink: EventSink = Arc::new(|e: &Event| {
        if !matches!(e.kind, EventKind::Teardown) {
            return;
        }
        let node = e
            .node
            .as_deref()
            .map(|n| format!("{n}: "))
            .unwrap_or_default();
        eprintln!("cluster-sim: {node}{}", e.message);
    });
    let cluster = Cluster::attach_found(backend, found, spec, Some(sink));
    if let Err(e) = cluster.run_before_down().await {
        eprintln!(
            "cluster-sim: {name}: {}; removing it all the same",
            summary(&e)
        );
    }
}

/// A failed hook in one line (its output was shown as it ran).
fn summary(e: &HookError) -> String {
    match e {
        HookError::Failed {
            when,
            node,
            command,
            code,
            ..
        } => format!(
            "{when} hook on node {node}: `{}` exited {code}",
            first_line(command)
        ),
        other => first_line(&other.to_string()).to_string(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
