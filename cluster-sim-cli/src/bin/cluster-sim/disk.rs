//! `cluster-sim disk NAME NODE ...`: storage faults through the fault filesystem a node mounts
//! on its `faulty_dirs` (lose unsynced writes, I/O errors, delays, corruption, heal), and the
//! full disk.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cluster_sim::fault::{Corruption, FaultKind, Faults, IoOp, StorageFault};
use cluster_sim::Backend;
use cluster_sim::NodeAction;

/// `disk NAME NODE ACTION`.
#[derive(clap::Args, Debug)]
pub struct DiskArgs {
    /// Cluster name.
    name: String,
    /// Node name.
    node: String,
    #[command(subcommand)]
    action: DiskAction,
}

/// What to do to the node's storage.
#[derive(Subcommand, Debug)]
pub enum DiskAction {
    /// A power cut: freeze the service, forget every write under its faulty_dirs not yet
    /// synced, SIGKILL it and start it again.
    LoseUnsynced,
    /// Make operations under a path fail with an errno.
    Error {
        /// Path or glob under a faulty dir (relative to the node's working directory, or
        /// absolute); a directory covers what is in it.
        #[arg(long)]
        path: String,
        /// read, write, fsync or any.
        #[arg(long, default_value = "any")]
        op: String,
        /// EIO, ENOSPC, EROFS, ... or a number.
        #[arg(long, default_value = "EIO")]
        errno: String,
        /// Probability of each operation failing, 0 to 1.
        #[arg(long = "p", default_value_t = 1.0)]
        probability: f64,
    },
    /// Delay operations under a path.
    Delay {
        /// Path or glob under a faulty dir.
        #[arg(long)]
        path: String,
        /// How long, e.g. 100ms.
        #[arg(long, value_parser = humantime::parse_duration)]
        latency: Duration,
        /// read, write, fsync or any.
        #[arg(long, default_value = "any")]
        op: String,
    },
    /// Corrupt data under a path: flip bits in reads, or tear the next write.
    Corrupt {
        /// Path or glob under a faulty dir.
        #[arg(long)]
        path: String,
        /// read (flip a bit in every read) or torn-write (keep half of the next write).
        #[arg(long, default_value = "read")]
        how: String,
    },
    /// End the node's storage faults (errors, delays, corruption) and free its full disks.
    Heal,
    /// Make writes under a path fail with ENOSPC (a full tmpfs over it; default: the node's
    /// working directory).
    Full {
        /// An absolute path.
        #[arg(long)]
        path: Option<String>,
    },
}

/// Runs `disk`.
pub async fn run(backend: &dyn Backend, args: DiskArgs) -> Result<ExitCode> {
    let DiskArgs { name, node, action } = args;
    let faults = Faults::of(backend, &name).await?;
    if !faults.node_names().contains(&node) {
        bail!("no node named {node} in cluster {name}");
    }
    let storage = |path: String, fault: StorageFault| FaultKind::Storage {
        node: node.clone(),
        path,
        fault,
    };
    let started = match action {
        DiskAction::LoseUnsynced => {
            let said = faults.drop_unsynced(&node).await?;
            for action in [NodeAction::Kill, NodeAction::Start] {
                backend
                    .act(&name, &node, action)
                    .await
                    .with_context(|| format!("node {node} of {name}: {action}"))?;
            }
            for line in said.lines() {
                println!("{line}");
            }
            println!(
                "lost the unsynced writes of {node}; its service was killed and started again"
            );
            return Ok(ExitCode::SUCCESS);
        }
        DiskAction::Error {
            path,
            op,
            errno,
            probability,
        } => storage(
            path,
            StorageFault::error(IoOp::parse(&op)?, &errno, probability),
        ),
        DiskAction::Delay { path, latency, op } => {
            storage(path, StorageFault::delay(IoOp::parse(&op)?, latency))
        }
        DiskAction::Corrupt { path, how } => storage(
            path,
            StorageFault::Corrupt {
                corruption: Corruption::parse(&how)?,
            },
        ),
        DiskAction::Heal => {
            let ended = faults
                .end_where(|f| {
                    matches!(&f.kind, FaultKind::Storage { node: n, .. } | FaultKind::Disk { node: n, .. } if *n == node)
                })
                .await?;
            if ended.is_empty() {
                eprintln!("no storage faults on {node}");
            }
            for f in ended {
                println!("ended {f}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        DiskAction::Full { path } => {
            let path = match path {
                Some(p) => p,
                None => faults
                    .workdir_of(&node)
                    .context("the node's working directory")?,
            };
            if !path.starts_with('/') {
                bail!("disk full --path {path:?}: expected an absolute path");
            }
            FaultKind::Disk { node, path }
        }
    };
    println!("{}", faults.start(started).await?);
    Ok(ExitCode::SUCCESS)
}
