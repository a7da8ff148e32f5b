//! `cluster-sim add-node NAME [--name N] [--role R]` and `cluster-sim remove-node NAME NODE`:
//! a node joins or leaves a kept cluster. The cluster is attached to through the backend's
//! lookup and driven from the spec file it was made from (recorded when it was kept, or
//! `--spec`), so the new node's templates see the whole new membership.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cluster_sim::{Backend, Cluster, ClusterSpec, NodeOptions};

/// `add-node`'s flags.
#[derive(clap::Args, Debug)]
pub struct AddNodeArgs {
    /// Cluster name.
    name: String,
    /// The new node's name (default: the first of n1, n2, ... the cluster does not have).
    #[arg(long = "name", value_name = "N")]
    node: Option<String>,
    /// A role of the new node, repeatable (default: the spec's roles); selects its files,
    /// binaries and, on ssh, its host.
    #[arg(long = "role", value_name = "R")]
    roles: Vec<String>,
    /// An environment variable of the new node (KEY=VALUE), repeatable.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// A directory of the new node on the fault filesystem, repeatable (default: the spec's
    /// top-level faulty_dirs).
    #[arg(long = "faulty-dir", value_name = "DIR")]
    faulty_dirs: Vec<String>,
    /// The spec file to render the node from (default: the one the cluster was made from).
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
}

/// `remove-node`'s arguments.
#[derive(clap::Args, Debug)]
pub struct RemoveNodeArgs {
    /// Cluster name.
    name: String,
    /// The node to remove.
    node: String,
    /// The spec file to render `rerender = true` files from (default: the one the cluster was
    /// made from).
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
}

/// A handle on the running cluster `name`, driven from its spec file.
async fn attach(
    backend: Arc<dyn Backend>,
    name: &str,
    spec: Option<PathBuf>,
    verb: &str,
) -> Result<Cluster> {
    let lookup = backend.lookup().with_context(|| {
        format!(
            "{verb} needs to find the cluster's nodes, which the {} backend can't",
            backend.kind()
        )
    })?;
    let Some(found) = lookup
        .clusters()
        .await?
        .into_iter()
        .find(|c| c.name == name)
    else {
        bail!("no cluster named {name:?}");
    };
    if found.nodes.is_empty() {
        bail!("cluster {name} has no nodes left (cluster-sim down {name})");
    }
    let file = match spec.or_else(|| found.mark.spec_file.clone().map(PathBuf::from)) {
        Some(f) => f,
        None => bail!(
            "cluster {name} does not say which spec file it was made from (clusters kept by \
             this version of `cluster-sim up` or a test do): pass --spec FILE"
        ),
    };
    let spec = ClusterSpec::from_file(&file)?;
    Ok(Cluster::attach_found(backend, &found, spec, None))
}

pub(crate) async fn add_node(backend: Arc<dyn Backend>, a: AddNodeArgs) -> Result<ExitCode> {
    let mut opts = NodeOptions {
        name: a.node,
        roles: a.roles,
        faulty_dirs: (!a.faulty_dirs.is_empty()).then_some(a.faulty_dirs),
        ..Default::default()
    };
    for kv in a.env {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--env {kv:?}: expected KEY=VALUE");
        };
        opts.env.insert(k.into(), v.into());
    }
    let cluster = attach(backend, &a.name, a.spec, "add-node").await?;
    let node = cluster
        .add_node(opts)
        .await
        .with_context(|| format!("add-node {}", a.name))?;
    eprintln!(
        "cluster-sim: {} joined {} at {} and is ready",
        node.name(),
        a.name,
        node.address()
    );
    println!("{}", node.name());
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn remove_node(backend: Arc<dyn Backend>, a: RemoveNodeArgs) -> Result<ExitCode> {
    let cluster = attach(backend, &a.name, a.spec, "remove-node").await?;
    let ended = cluster
        .remove_node(&a.node)
        .await
        .with_context(|| format!("remove-node {} {}", a.name, a.node))?;
    for f in ended {
        eprintln!("cluster-sim: ended {f}");
    }
    println!("removed {}", a.node);
    Ok(ExitCode::SUCCESS)
}
