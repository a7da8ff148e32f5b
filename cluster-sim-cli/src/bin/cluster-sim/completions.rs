//! `cluster-sim completions bash|zsh|fish`: the shell's completion script, on stdout.

use std::io::Write;
use std::process::ExitCode;

use clap_complete::Shell;

/// The shells completions are made for.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ForShell {
    /// bash: `source <(cluster-sim completions bash)`.
    Bash,
    /// zsh: write it as `_cluster-sim` in a directory on `$fpath`.
    Zsh,
    /// fish: write it to `~/.config/fish/completions/cluster-sim.fish`.
    Fish,
}

/// Prints the completion script of `command` (the whole CLI) for `shell`.
pub fn print(shell: ForShell, mut command: clap::Command) -> ExitCode {
    let shell = match shell {
        ForShell::Bash => Shell::Bash,
        ForShell::Zsh => Shell::Zsh,
        ForShell::Fish => Shell::Fish,
    };
    // Into a buffer first: the generator panics on a write error, and `| head` is one.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "cluster-sim", &mut script);
    match std::io::stdout().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster-sim: error: writing the completion script: {e}");
            ExitCode::FAILURE
        }
    }
}
