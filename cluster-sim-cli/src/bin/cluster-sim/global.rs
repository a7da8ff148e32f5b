//! The flags every subcommand takes: which backend to connect, and its inventory.

use std::path::PathBuf;

use clap::Args;
use cluster_sim::connect::{backend_names, is_backend};
use cluster_sim::{BackendChoice, BACKEND_VAR, INVENTORY_VAR};

/// `--backend` and `--inventory`, global, with the variables as fallback.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// The backend: docker (default), ssh, memory or swarm (engines from CLUSTER_SIM_ENGINES).
    #[arg(
        long,
        global = true,
        env = BACKEND_VAR,
        hide_env_values = true,
        value_name = "NAME",
        value_parser = backend
    )]
    pub backend: Option<String>,
    /// The ssh backend's inventory file.
    #[arg(
        long,
        global = true,
        env = INVENTORY_VAR,
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub inventory: Option<PathBuf>,
}

impl Global {
    /// The backend these flags (or the variables) choose, for the core to connect.
    pub fn choice(&self) -> BackendChoice {
        BackendChoice {
            kind: self.backend.clone().unwrap_or_default(),
            inventory: self.inventory.clone().filter(|p| !p.as_os_str().is_empty()),
            engines: None,
        }
    }

    /// Sets the variables to the flags, for what reads its choice from them: the server, and
    /// the suite runs it starts. Call it before any thread is started.
    pub fn export(&self) {
        if let Some(kind) = &self.backend {
            std::env::set_var(BACKEND_VAR, kind);
        }
        if let Some(file) = &self.inventory {
            std::env::set_var(INVENTORY_VAR, file);
        }
    }
}

/// `--backend NAME`: one the core knows, checked before anything is contacted.
fn backend(s: &str) -> Result<String, String> {
    let s = s.trim();
    if is_backend(s) {
        Ok(s.to_string())
    } else {
        Err(format!("unknown backend (expected {})", backend_names()))
    }
}
