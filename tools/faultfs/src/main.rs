//! `cluster-sim-faultfs`: the fault filesystem cluster-sim mounts on a node's `faulty_dirs`.
//!
//! - `mount DIR... --control-dir C` moves each DIR's contents aside (to `.DIR.faultfs`
//!   beside it, once) and mounts the filesystem over DIR, one daemon per directory in its own
//!   process group, with a control socket in C; it returns once every mount is up.
//! - `ctl --control-dir C LINE` sends one command (see `rules.rs`) to every daemon of C and
//!   prints their replies; `ctl --socket S LINE` to one.
//! - `unmount --control-dir C` detaches every mount of C (their daemons then end).
//! - `serve` is the daemon itself.

mod attr;
mod control;
mod fs;
mod journal;
mod rules;
mod state;
mod undo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The fault filesystem of cluster-sim.
#[derive(Parser)]
#[command(name = "cluster-sim-faultfs", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Mounts the filesystem over each directory (made if missing), in the background.
    Mount {
        /// The directories (absolute).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the control sockets go.
        #[arg(long)]
        control_dir: PathBuf,
        /// Bytes of overwritten synced data a mount keeps to undo writes; past it a writer's
        /// file keeps its unsynced writes through a power cut.
        #[arg(long, default_value_t = 512 << 20)]
        max_held: u64,
    },
    /// Sends one control command and prints the replies.
    Ctl {
        /// Every daemon whose socket is in this directory.
        #[arg(long, conflicts_with = "socket")]
        control_dir: Option<PathBuf>,
        /// One daemon.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// The command (`drop`, `heal`, `error write EIO 1 /path`...).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        line: Vec<String>,
    },
    /// Detaches every mount of a control directory.
    Unmount {
        /// The control directory `mount` used.
        #[arg(long)]
        control_dir: PathBuf,
    },
    /// The daemon: mounts one directory and serves it until it is unmounted.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        backing: PathBuf,
        #[arg(long)]
        mount: PathBuf,
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        max_held: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Cmd::Mount {
            dirs,
            control_dir,
            max_held,
        } => control::mount_all(&dirs, &control_dir, max_held),
        Cmd::Ctl {
            control_dir,
            socket,
            line,
        } => control::ctl(control_dir.as_deref(), socket.as_deref(), &line.join(" ")),
        Cmd::Unmount { control_dir } => control::unmount_all(&control_dir),
        Cmd::Serve {
            backing,
            mount,
            socket,
            max_held,
        } => control::serve(backing, mount, socket, max_held),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster-sim-faultfs: {e}");
            ExitCode::FAILURE
        }
    }
}
