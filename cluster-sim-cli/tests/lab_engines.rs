//! The engines lab end to end, through the binary: `cluster-sim lab engines 1` joins a Docker
//! engine in a container and the host engine into one swarm and writes the engines file; a
//! cluster on the swarm backend puts a node on each engine, and they reach each other by name;
//! `cluster-sim lab down` leaves no container or network of the lab and the host engine's
//! swarm state (and `docker_gwbridge`) as they were before.

use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};

const CLI: &str = env!("CARGO_BIN_EXE_cluster-sim");

fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run docker")?;
    ensure!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn cli(args: &[&str], engines: Option<&std::path::Path>) -> Result<String> {
    let mut cmd = Command::new(CLI);
    cmd.args(args).stdin(Stdio::null());
    if let Some(file) = engines {
        cmd.env("CLUSTER_SIM_BACKEND", "swarm")
            .env("CLUSTER_SIM_ENGINES", file);
    }
    let out = cmd.output().context("run cluster-sim")?;
    ensure!(
        out.status.success(),
        "cluster-sim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host engine's swarm state and whether `docker_gwbridge` exists.
fn host_state() -> Result<(String, bool)> {
    let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])?;
    let gw = docker(&["network", "ls", "-q", "--filter", "name=^docker_gwbridge$"])?;
    Ok((state, !gw.is_empty()))
}

/// Removes the lab however the test ends.
struct Lab(String);

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(CLI)
            .args(["lab", "down", "--name", &self.0])
            .stdin(Stdio::null())
            .output();
    }
}

#[test]
#[ignore = "joins this machine's Docker engine to a swarm for a minute; .ci/run runs it (--ignored)"]
fn a_lab_joins_engines_runs_a_cluster_across_them_and_leaves_the_host_as_it_was() -> Result<()> {
    let before = host_state()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("engines.toml");
    let name = format!("t{}", std::process::id());
    let lab = Lab(name.clone());
    cli(
        &[
            "lab",
            "engines",
            "1",
            "--name",
            &name,
            "--out",
            file.to_str().unwrap(),
        ],
        None,
    )?;
    let text = std::fs::read_to_string(&file)?;
    let engine = format!("{name}-1");
    ensure!(text.contains(&format!("name = \"{engine}\"")), "{text}");
    ensure!(
        docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])? == "active",
        "the host engine is not in a swarm"
    );

    // One node on each engine, by name.
    let spec = dir.path().join("two.toml");
    std::fs::write(
        &spec,
        format!(
            "nodes = 2\n[[node]]\nname = \"n1\"\nengine = \"host\"\n[[node]]\nname = \"n2\"\nengine = \"{engine}\"\n"
        ),
    )?;
    let cluster = format!("{name}-c");
    cli(
        &["up", spec.to_str().unwrap(), "--name", &cluster],
        Some(&file),
    )?;
    let result = (|| -> Result<()> {
        let listed: serde_json::Value =
            serde_json::from_str(&cli(&["ls", &cluster, "--json"], Some(&file))?)?;
        let places: Vec<String> = listed["clusters"][0]["nodes"]
            .as_array()
            .context("no nodes listed")?
            .iter()
            .map(|n| n["place"].as_str().unwrap_or("").to_string())
            .collect();
        ensure!(places == ["host", engine.as_str()], "placed on {places:?}");
        cli(
            &[
                "exec", &cluster, "n1", "--", "ping", "-c", "1", "-W", "2", "n2",
            ],
            Some(&file),
        )?;
        Ok(())
    })();
    cli(&["down", &cluster], Some(&file))?;
    result?;

    cli(&["lab", "down", "--name", &name], None)?;
    drop(lab);
    let label = format!("label=cluster-sim.lab={name}");
    ensure!(
        docker(&["ps", "-aq", "--filter", &label])?.is_empty(),
        "lab containers left"
    );
    ensure!(
        docker(&["network", "ls", "-q", "--filter", &label])?.is_empty(),
        "lab network left"
    );
    let after = host_state()?;
    ensure!(
        after == before,
        "the host engine was {before:?} before the lab and is {after:?} after it"
    );
    Ok(())
}
