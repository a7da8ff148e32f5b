//! `cluster-sim lab engines N --out FILE` and `cluster-sim lab down`: the engines lab for the
//! swarm backend (Docker engines in privileged containers, one swarm with the host engine).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

/// `cluster-sim lab ...`.
#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Start N Docker engines in privileged containers, join them and the host engine into one
    /// swarm, send them the node image and write the engines file (CLUSTER_SIM_ENGINES) to FILE.
    Engines {
        /// How many engines besides the host's (1 to 16).
        #[arg(value_parser = clap::value_parser!(u16).range(1..=16))]
        count: u16,
        /// Where the engines file goes.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The lab's name (its engines are NAME-1..NAME-N).
        #[arg(long, default_value = "lab", value_parser = lab_name)]
        name: String,
    },
    /// Remove a lab (every lab without --name) and leave the host engine's swarm as the lab
    /// found it.
    Down {
        /// Only this lab.
        #[arg(long, value_parser = lab_name)]
        name: Option<String>,
    },
}

fn lab_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("a lab name is 1 to 32 of a-z, 0-9 and -, not starting with -".into())
    }
}

/// Runs a lab command.
pub async fn lab(cmd: LabCommand) -> Result<ExitCode> {
    match cmd {
        LabCommand::Engines { count, out, name } => {
            let engines = cluster_sim::swarm::lab_up(&name, usize::from(count), &out).await?;
            for e in &engines.engines {
                eprintln!("cluster-sim: engine {} at {}", e.name, e.endpoint);
            }
            println!("{}", out.display());
        }
        LabCommand::Down { name } => {
            let down = cluster_sim::swarm::lab_down(name.as_deref()).await?;
            eprintln!(
                "cluster-sim: removed {} lab engine(s){}{}",
                down.engines.len(),
                if down.left_swarm {
                    "; the host engine left the swarm the lab made"
                } else {
                    ""
                },
                if down.removed_gwbridge {
                    "; removed docker_gwbridge"
                } else {
                    ""
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
