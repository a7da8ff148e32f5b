//! `cluster-sim`: bring a multi-node cluster up on this machine and drive it by hand.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use cluster_sim::{
    Backend, BackendChoice, BackendError, Cluster, ClusterSpec, Janitor, NodeAction,
};

mod caps;
mod check;
mod completions;
mod disk;
mod down;
mod exec;
mod faults;
mod follow;
mod global;
mod json;
mod lab;
mod listing;
mod membership;
mod progress;
mod report;
mod service;
mod shell;
mod usage;

use caps::{janitor, lookup};

/// Multi-node clusters in Docker, on one laptop.
#[derive(Parser, Debug)]
#[command(name = "cluster-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: global::Global,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Provision a cluster from a spec and wait until it is ready; prints its name.
    Up {
        /// The spec file (TOML), e.g. fixtures/clusters/etcd3.toml.
        spec: PathBuf,
        /// Cluster name (default: the spec's name and a random suffix).
        #[arg(long, value_parser = cluster_name)]
        name: Option<String>,
        /// Make the cluster an ssh lab (its nodes must run sshd, e.g. fixtures/clusters/sshd3.toml):
        /// write a fresh key pair and known_hosts in FILE.d/ and an ssh inventory for it in FILE.
        /// The lab runs on the default backend.
        #[arg(long, value_name = "FILE")]
        lab: Option<PathBuf>,
        /// Don't keep the cluster: it lives while this command runs and is removed when it ends
        /// (Ctrl-C, SIGTERM, or even SIGKILL), like a test's cluster. For scripts.
        #[arg(long, conflicts_with = "lab")]
        hold: bool,
    },
    /// List clusters and their nodes, state and addresses.
    Ls {
        /// Only this cluster.
        name: Option<String>,
        /// One JSON object on stdout (see the CLI reference for its shape).
        #[arg(long)]
        json: bool,
    },
    /// Run a command on a node; exits with the command's exit code.
    Exec {
        /// Cluster name.
        name: String,
        /// Node name.
        node: String,
        /// Environment variable for the command (KEY=VALUE), repeatable.
        #[arg(short, long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Working directory.
        #[arg(short, long)]
        workdir: Option<String>,
        /// User to run as.
        #[arg(short, long)]
        user: Option<String>,
        /// Deadline, after which the command is killed (e.g. 30s, 5m).
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Copy a file: NODE:PATH on either side, a local path on the other.
    Cp {
        /// Cluster name.
        name: String,
        /// Source (NODE:PATH or local path).
        src: String,
        /// Destination (NODE:PATH or local path).
        dst: String,
    },
    /// Print the service log of one node, or of every node prefixed by its name.
    Logs {
        /// Cluster name.
        name: String,
        /// Node name (default: all).
        node: Option<String>,
        /// Keep printing new lines as they are logged, until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
    },
    /// An interactive shell on a node (a TTY when this terminal is one; resized with it), in
    /// the node's working directory with its environment; exits with the shell's exit code.
    Shell(NodeArgs),
    /// SIGKILL a node.
    Kill(NodeArgs),
    /// Stop a node gracefully.
    Stop(NodeArgs),
    /// Start a stopped node (same name, address and data).
    Start(NodeArgs),
    /// Restart a node (same name, address and data).
    Restart(NodeArgs),
    /// Freeze a node's processes.
    Pause(NodeArgs),
    /// Thaw a paused node.
    Unpause(NodeArgs),
    /// Add a node to a kept cluster: placed on its network (docker) or a spare inventory host
    /// (ssh), rendered from its spec with the new membership, started, ready; prints its name.
    AddNode(membership::AddNodeArgs),
    /// Remove a node from a kept cluster: its faults end, it stops and is removed.
    RemoveNode(membership::RemoveNodeArgs),
    /// Remove a cluster (or every cluster with --all, every kept one with --kept).
    Down(down::DownArgs),
    /// Remove what dead owners (crashed or killed test runs) left behind.
    Prune,
    /// Check a saved history (history.jsonl): exit 0 valid, 1 invalid (with the operations that
    /// can't be explained), 2 malformed. Needs no engine.
    Check(check::CheckArgs),
    /// Render a run's HTML report again from its run directory (default: the newest run under
    /// target/cluster-sim/runs). Needs no engine.
    Report {
        /// The run directory (target/cluster-sim/runs/<run id>).
        run_dir: Option<PathBuf>,
        /// Where the page goes (default: report.html in the run directory).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Node images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// The engines lab for the swarm backend: Docker engines in containers, one swarm.
    Lab {
        #[command(subcommand)]
        command: lab::LabCommand,
    },
    /// Print a shell completion script on stdout.
    Completions {
        /// The shell.
        shell: completions::ForShell,
    },
    /// Storage faults on a node: lose-unsynced, error, delay, corrupt, heal (through the fault
    /// filesystem on the spec's faulty_dirs), and full (a full disk).
    Disk(disk::DiskArgs),
    #[command(flatten)]
    Fault(faults::FaultCommand),
    #[command(flatten)]
    Service(service::ServiceCommand),
}

#[derive(clap::Args, Debug)]
struct NodeArgs {
    /// Cluster name.
    name: String,
    /// Node name.
    node: String,
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Build the node image from docker/node (a no-op when the cached one is current).
    Build {
        /// Rebuild even when cached.
        #[arg(long)]
        force: bool,
        /// Also make the image a spec's `packages = [...]` gives its nodes: the node image
        /// with these Debian packages (comma separated or repeated), cached by package set.
        #[arg(long, value_delimiter = ',', value_name = "PACKAGE")]
        packages: Vec<String>,
    },
    /// List the node images in the local engine, newest first.
    Ls {
        /// One JSON object on stdout (see the CLI reference for its shape).
        #[arg(long)]
        json: bool,
    },
}

/// `--name`, checked before anything touches the engine.
fn cluster_name(s: &str) -> Result<String, String> {
    cluster_sim::cluster::check_cluster_name(s).map(|()| s.to_string())
}

fn main() -> ExitCode {
    // A copy of this program started as a run's watchdog does its job here and exits.
    cluster_sim::watchdog::intercept();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person: a log or a pipe gets plain lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage::error(e),
    };
    if let Command::Completions { shell } = cli.command {
        return completions::print(shell, Cli::command());
    }
    if let Command::Service(cmd) = cli.command {
        // The server and its suite runs choose their backend from the variables.
        cli.global.export();
        return service::main(cmd);
    }
    if let Command::Check(args) = &cli.command {
        return check::check(args);
    }
    if let Command::Report { run_dir, out } = &cli.command {
        return report::report(run_dir.as_deref(), out.as_deref());
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cluster-sim: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "cluster-sim: error: {}",
                cluster_sim::error::one_line(e.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Image {
        command: ImageCommand::Ls { json },
    } = &cli.command
    {
        return listing::images(*json).await;
    }
    if let Command::Image {
        command: ImageCommand::Build { force, packages },
    } = &cli.command
    {
        // Node images live in the local Docker engine, whatever backend runs the nodes.
        let dir = cluster_sim::image::default_definition_dir().context(
            "cannot find the node image definition (docker/node/Dockerfile); run from the workspace or set CLUSTER_SIM_IMAGE_DIR",
        )?;
        let tag = cluster_sim::image::ImageBuilder::new(dir)
            .force(*force)
            .ensure_local()
            .await?;
        if packages.is_empty() {
            println!("{tag}");
        } else {
            let made = cluster_sim::image::ensure_packages_local(&tag, packages).await?;
            println!("{}", made.tag);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Lab { command } = cli.command {
        // The lab lives in the local engine, whatever backend runs the nodes.
        return lab::lab(command).await;
    }
    // --backend (or CLUSTER_SIM_BACKEND) chooses the backend (default docker); `up --lab`
    // makes a lab of sshd containers, which runs on the default backend whatever they say.
    let lab = matches!(&cli.command, Command::Up { lab: Some(_), .. });
    let choice = if lab {
        BackendChoice::default()
    } else {
        cli.global.choice()
    };
    let backend = choice.connect().await?;
    match cli.command {
        Command::Up {
            spec,
            name,
            lab,
            hold,
        } => up(backend, &choice, spec, name, lab, hold).await,
        Command::Ls { name, json } => {
            let kind = backend.kind();
            listing::ls(lookup(backend.as_ref(), "ls")?, kind, name, json).await
        }
        Command::Exec {
            name,
            node,
            env,
            workdir,
            user,
            timeout,
            command,
        } => {
            exec::exec(
                backend.as_ref(),
                name,
                node,
                env,
                workdir,
                user,
                timeout,
                command,
            )
            .await
        }
        Command::Cp { name, src, dst } => cp(backend.as_ref(), &name, &src, &dst).await,
        Command::Logs { name, node, follow } => logs(backend.as_ref(), &name, node, follow).await,
        Command::Shell(a) => shell::shell(backend.as_ref(), &a.name, &a.node).await,
        Command::Kill(a) => act(backend.as_ref(), a, NodeAction::Kill).await,
        Command::Stop(a) => act(backend.as_ref(), a, NodeAction::Stop).await,
        Command::Start(a) => act(backend.as_ref(), a, NodeAction::Start).await,
        Command::Restart(a) => act(backend.as_ref(), a, NodeAction::Restart).await,
        Command::Pause(a) => act(backend.as_ref(), a, NodeAction::Pause).await,
        Command::Unpause(a) => act(backend.as_ref(), a, NodeAction::Unpause).await,
        Command::AddNode(a) => membership::add_node(backend, a).await,
        Command::RemoveNode(a) => membership::remove_node(backend, a).await,
        Command::Down(a) => down::down(backend, a).await,
        Command::Prune => prune(janitor(backend.as_ref(), "prune")?).await,
        Command::Fault(cmd) => faults::run(backend.as_ref(), cmd).await,
        Command::Disk(args) => disk::run(backend.as_ref(), args).await,
        Command::Service(cmd) => Ok(service::run(cmd).await),
        // Handled above, before any backend is contacted.
        Command::Image { .. } | Command::Completions { .. } | Command::Lab { .. } => {
            Ok(ExitCode::SUCCESS)
        }
        // Handled in `main`, before any engine is contacted.
        Command::Check(args) => Ok(check::check(&args)),
        Command::Report { run_dir, out } => Ok(report::report(run_dir.as_deref(), out.as_deref())),
    }
}

/// `cluster-sim prune`: the backend's reaper, and what it removed, left or could not remove.
async fn prune(janitor: &dyn Janitor) -> Result<ExitCode> {
    let reaped = janitor.reap().await?;
    if reaped.is_empty() && reaped.unknown.is_empty() {
        eprintln!("nothing to prune");
    }
    for (cluster, why) in &reaped.stuck {
        eprintln!("could not remove all of {cluster}: {why}");
    }
    for r in &reaped.removed {
        println!("removed {r}");
    }
    if !reaped.unknown.is_empty() {
        eprintln!(
            "left alone (no expiry, and their owners can't be checked from here: another PID namespace or machine, or an older cluster-sim): {}; remove one with `cluster-sim down NAME`",
            reaped.unknown.join(", ")
        );
    }
    for (name, why) in &reaped.failed {
        eprintln!("error: could not remove {name}: {why}");
    }
    Ok(if reaped.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How long a cluster `up` is making may outlive a killed `up` before any reaper may remove
/// it (once ready it is kept, and never expires).
const UP_LEASE: Duration = Duration::from_secs(60 * 60);

/// Ctrl-C and SIGTERM, listened for from the start: both end `up` the same way.
struct Interrupts {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn new() -> Self {
        Interrupts {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// Waits for either; returns the exit code it calls for (130 or 143).
    async fn recv(&mut self) -> u8 {
        #[cfg(unix)]
        if let Some(term) = &mut self.term {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => 130,
                _ = term.recv() => 143,
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        130
    }
}

async fn up(
    backend: Arc<dyn Backend>,
    choice: &BackendChoice,
    spec: PathBuf,
    name: Option<String>,
    lab: Option<PathBuf>,
    hold: bool,
) -> Result<ExitCode> {
    let mut interrupts = Interrupts::new();
    let spec = ClusterSpec::from_file(&spec)?;
    if let Some(janitor) = backend.janitor() {
        // Before anything exists: if this process dies from here on, what it made of an
        // unfinished (or held) cluster goes within seconds.
        if janitor.outlives_owner() {
            if let Err(e) = cluster_sim::watchdog::start_for(choice) {
                tracing::warn!("{e}");
            }
        }
        // Leftovers of crashed runs go first, so their subnets and names are free again.
        match janitor.reap().await {
            Ok(r) => {
                for (name, why) in &r.failed {
                    tracing::warn!("reaper: could not remove {name}: {why}");
                }
            }
            Err(e) => tracing::warn!("reaper: {e}"),
        }
    }
    if let (Some(n), Some(lookup)) = (&name, backend.lookup()) {
        match lookup.nodes(n).await {
            Err(BackendError::UnknownCluster(_)) => {}
            Err(e) => return Err(e.into()),
            Ok(_) => bail!("a cluster named {n:?} already exists (cluster-sim down {n})"),
        }
    }
    // Named up front, so an interrupted run knows exactly what to remove.
    let name = name.unwrap_or_else(|| cluster_sim::cluster::unique_name(&spec.name));
    let (shown, sink) = progress::UpProgress::new(spec.nodes.len());
    // Kept only once ready; until then it carries a lease like a test's cluster, so a killed
    // `up` leaves nothing that a reaper would keep.
    let mut b = Cluster::builder(spec)
        .backend(backend.clone())
        .name(&name)
        .keep(!hold)
        .on_event(sink);
    if !hold {
        b = b.expires_after(UP_LEASE);
    }
    let cluster = tokio::select! {
        r = async {
            match &lab {
                Some(file) => Ok::<_, anyhow::Error>(
                    cluster_sim::lab::provision_lab(b, backend.as_ref(), file).await?,
                ),
                None => Ok(b.up().await?),
            }
        } => {
            shown.finish();
            r?
        }
        code = interrupts.recv() => {
            shown.finish();
            // The builder's future is dropped mid-way: remove what this process made of it, and
            // only that (if another `up` won the name, its cluster stays).
            let r = match backend.janitor() {
                Some(j) => j.remove_own(&name).await,
                None => backend.destroy(&name).await,
            };
            match r {
                Ok(()) => eprintln!("cluster-sim: interrupted; removed the partly provisioned cluster {name}"),
                Err(e) => eprintln!("cluster-sim: interrupted; removing the partly provisioned cluster {name}: {e}"),
            }
            return Ok(ExitCode::from(code));
        }
    };
    if let Some(file) = &lab {
        eprintln!(
            "cluster-sim: wrote {}; use it with --backend ssh --inventory {} (or {}=ssh {}={})",
            file.display(),
            file.display(),
            cluster_sim::BACKEND_VAR,
            cluster_sim::INVENTORY_VAR,
            file.display()
        );
    }
    println!("{}", cluster.name());
    std::io::stdout().flush()?;
    if !hold {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("cluster-sim: holding {name} until Ctrl-C or SIGTERM");
    interrupts.recv().await;
    cluster.down().await?;
    eprintln!("cluster-sim: removed {name}");
    Ok(ExitCode::SUCCESS)
}

fn split_remote(s: &str) -> Option<(&str, &str)> {
    // NODE:PATH, where PATH is absolute; a local path like ./a:b stays local.
    let (node, path) = s.split_once(':')?;
    (!node.is_empty() && !node.contains('/') && path.starts_with('/')).then_some((node, path))
}

async fn cp(backend: &dyn Backend, name: &str, src: &str, dst: &str) -> Result<ExitCode> {
    match (split_remote(src), split_remote(dst)) {
        (Some((node, path)), None) => {
            let data = backend
                .read_file(name, node, path)
                .await
                .with_context(|| format!("node {node}: read {path}"))?;
            let dest = std::path::Path::new(dst);
            let dest = if dest.is_dir() {
                dest.join(std::path::Path::new(path).file_name().unwrap_or_default())
            } else {
                dest.to_path_buf()
            };
            std::fs::write(&dest, data).with_context(|| format!("write {}", dest.display()))?;
        }
        (None, Some((node, path))) => {
            let data = std::fs::read(src).with_context(|| format!("read {src}"))?;
            let mode = {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(src)?.permissions().mode() & 0o7777
            };
            backend
                .write_file(name, node, path, &data, mode)
                .await
                .with_context(|| format!("node {node}: write {path}"))?;
        }
        (Some((n1, p1)), Some((n2, p2))) => {
            let data = backend
                .read_file(name, n1, p1)
                .await
                .with_context(|| format!("node {n1}: read {p1}"))?;
            backend
                .write_file(name, n2, p2, &data, 0o644)
                .await
                .with_context(|| format!("node {n2}: write {p2}"))?;
        }
        (None, None) => bail!("one side of cp must be NODE:/absolute/path"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn logs(
    backend: &dyn Backend,
    name: &str,
    node: Option<String>,
    follow: bool,
) -> Result<ExitCode> {
    let nodes = match node {
        Some(n) => vec![n],
        None => {
            let listed = match lookup(backend, "logs without a node")?.nodes(name).await {
                Err(BackendError::UnknownCluster(_)) => bail!("no cluster named {name:?}"),
                r => r?,
            };
            listed.into_iter().map(|n| n.name).collect()
        }
    };
    let prefix = nodes.len() > 1;
    if follow {
        return follow::follow(backend, name, nodes, prefix).await;
    }
    let mut out = std::io::stdout().lock();
    for n in nodes {
        let log = backend
            .logs(name, &n)
            .await
            .with_context(|| format!("node {n}: logs"))?;
        if prefix {
            for line in String::from_utf8_lossy(&log).lines() {
                writeln!(out, "{n} | {line}")?;
            }
        } else {
            out.write_all(&log)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn act(backend: &dyn Backend, a: NodeArgs, action: NodeAction) -> Result<ExitCode> {
    backend
        .act(&a.name, &a.node, action)
        .await
        .with_context(|| format!("node {} of {}: {action}", a.node, a.name))?;
    Ok(ExitCode::SUCCESS)
}
