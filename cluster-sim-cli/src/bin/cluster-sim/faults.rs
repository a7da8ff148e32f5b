//! The fault subcommands: partition, heal, impair, freeze, thaw, signal, skew, faults.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cluster_sim::fault::{parse_offset, ActiveFault, Cuts, FaultKind, Faults, Impairment, Signal};
use cluster_sim::Backend;

/// Fault subcommands (flattened into the top-level command list).
#[derive(Subcommand, Debug)]
pub enum FaultCommand {
    /// Cut links between groups of nodes (each GROUP is comma-separated: `n1 n2,n3`), or one
    /// way with --oneway FROM TO.
    Partition {
        /// Cluster name.
        name: String,
        /// Groups (or FROM TO with --oneway).
        #[arg(required = true)]
        groups: Vec<String>,
        /// Drop FROM's packets to TO only.
        #[arg(long)]
        oneway: bool,
    },
    /// End every partition and impairment.
    Heal {
        /// Cluster name.
        name: String,
    },
    /// Degrade a node's links: loss, rate, latency and jitter (latency needs netem).
    Impair {
        /// Cluster name.
        name: String,
        /// Node name.
        node: String,
        /// Only the link to this node.
        #[arg(long)]
        to: Option<String>,
        /// Packet loss, e.g. 30%.
        #[arg(long)]
        loss: Option<String>,
        /// Rate limit, e.g. 1mbit.
        #[arg(long)]
        rate: Option<String>,
        /// Added delay, e.g. 100ms.
        #[arg(long, value_parser = humantime::parse_duration)]
        latency: Option<std::time::Duration>,
        /// Delay variation, e.g. 10ms.
        #[arg(long, value_parser = humantime::parse_duration)]
        jitter: Option<std::time::Duration>,
        /// Apply to packets the node receives instead of those it sends (loss where they
        /// arrive; rate and latency by the senders, on their way out to the node).
        #[arg(long)]
        inbound: bool,
    },
    /// Stop a node's service (SIGSTOP to its process group); the node still runs commands.
    Freeze {
        /// Cluster name.
        name: String,
        /// Node name.
        node: String,
    },
    /// Resume a frozen service.
    Thaw {
        /// Cluster name.
        name: String,
        /// Node name.
        node: String,
    },
    /// Send a signal to a node's service (its process group): TERM, KILL, INT or HUP. The node
    /// itself stays up (`kill NAME NODE` is the node's SIGKILL); use freeze/thaw for STOP/CONT.
    Signal {
        /// Cluster name.
        name: String,
        /// Node name.
        node: String,
        /// TERM, KILL, INT or HUP (with or without SIG).
        signal: String,
    },
    /// Offset the clock a node's service sees (+30s, -2m), or --reset it.
    Skew {
        /// Cluster name.
        name: String,
        /// Node name.
        node: String,
        /// The offset.
        #[arg(allow_hyphen_values = true, required_unless_present = "reset")]
        offset: Option<String>,
        /// Give the service its true clock back.
        #[arg(long, conflicts_with = "offset")]
        reset: bool,
    },
    /// List the active faults.
    Faults {
        /// Cluster name.
        name: String,
        /// One JSON object on stdout (see the CLI reference for its shape).
        #[arg(long)]
        json: bool,
    },
}

fn print(f: &ActiveFault) {
    println!("{f}");
}

/// Runs a fault subcommand.
pub async fn run(backend: &dyn Backend, cmd: FaultCommand) -> Result<ExitCode> {
    let name = match &cmd {
        FaultCommand::Partition { name, .. }
        | FaultCommand::Heal { name }
        | FaultCommand::Impair { name, .. }
        | FaultCommand::Freeze { name, .. }
        | FaultCommand::Thaw { name, .. }
        | FaultCommand::Signal { name, .. }
        | FaultCommand::Skew { name, .. }
        | FaultCommand::Faults { name, .. } => name.clone(),
    };
    let faults = Faults::of(backend, &name).await?;
    match cmd {
        FaultCommand::Partition { groups, oneway, .. } => {
            let (cuts, shape) = if oneway {
                let [from, to] = groups.as_slice() else {
                    bail!("partition --oneway takes two nodes: FROM TO");
                };
                (Cuts::oneway(from, to)?, format!("{from} -> {to}"))
            } else {
                let gs: Vec<Vec<&str>> = groups
                    .iter()
                    .map(|g| g.split(',').filter(|s| !s.is_empty()).collect())
                    .collect();
                (Cuts::between_groups(&gs)?, groups.join(" | "))
            };
            print(&faults.start(FaultKind::Partition { shape, cuts }).await?);
        }
        FaultCommand::Heal { .. } => {
            for f in faults.end_where(|f| f.kind.is_network()).await? {
                println!("ended {f}");
            }
        }
        FaultCommand::Impair {
            node,
            to,
            loss,
            rate,
            latency,
            jitter,
            inbound,
            ..
        } => {
            let mut imp = Impairment::default();
            if let Some(l) = loss {
                let p: f64 = l
                    .trim_end_matches('%')
                    .parse()
                    .with_context(|| format!("--loss {l:?}: expected a percentage like 30%"))?;
                imp.loss = Some(p);
            }
            imp.rate = rate;
            imp.latency = latency;
            imp.jitter = jitter;
            if inbound {
                imp = imp.inbound();
            }
            print(
                &faults
                    .start(FaultKind::Impair {
                        node,
                        peer: to,
                        impairment: imp,
                    })
                    .await?,
            );
        }
        FaultCommand::Freeze { node, .. } => {
            print(&faults.start(FaultKind::Freeze { node }).await?);
        }
        FaultCommand::Thaw { node, .. } => {
            let ended = faults
                .end_where(|f| matches!(&f.kind, FaultKind::Freeze { node: n } if *n == node))
                .await?;
            if ended.is_empty() {
                bail!("node {node} of {name} is not frozen");
            }
            for f in ended {
                println!("ended {f}");
            }
        }
        FaultCommand::Signal { node, signal, .. } => {
            let sig = match Signal::from_name(&signal) {
                Some(Signal::Stop | Signal::Cont) => {
                    bail!("signal {signal}: use `freeze`/`thaw`, which record the fault and undo it at teardown")
                }
                Some(s) => s,
                None => bail!("signal {signal:?}: expected TERM, KILL, INT or HUP"),
            };
            faults.signal_service(&node, sig).await?;
            println!("sent SIG{} to the service of {node}", sig.name());
        }
        FaultCommand::Skew {
            node,
            offset,
            reset,
            ..
        } => {
            let is_clock =
                |f: &ActiveFault| matches!(&f.kind, FaultKind::Clock { node: n, .. } if *n == node);
            for f in faults.end_where(is_clock).await? {
                println!("ended {f}");
            }
            if !reset {
                let offset_ms = parse_offset(offset.as_deref().unwrap_or_default())?;
                print(
                    &faults
                        .start(FaultKind::Clock {
                            node,
                            offset_ms,
                            strobe_ms: None,
                        })
                        .await?,
                );
            }
        }
        FaultCommand::Faults { json: true, .. } => {
            let list = faults.list().await?;
            crate::json::print("faults", list.iter().map(crate::json::fault).collect())?;
        }
        FaultCommand::Faults { .. } => {
            let list = faults.list().await?;
            // On stderr, so a script reading stdout still gets one line per fault and no more.
            if list.is_empty() {
                eprintln!("no active faults");
            }
            for f in list {
                print(&f);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
