//! `cluster-sim serve`: a REST server with a node registry (clusters, nodes, capabilities),
//! on-demand runs of the `tests_d` suite, and periodic smoke checks (OK / WARN / ERROR /
//! UNKNOWN, SQLite history, actions on a change, a maintenance lock).
//!
//! Everything that can be wrong with the configuration (a check file, the token file, the
//! address) is found by [`Server::prepare`], before anything listens.
#![warn(missing_docs)]

mod actions;
mod api;
mod check;
mod engine;
mod error;
mod fleet;
mod parse;
mod registry;
mod runs;
mod status;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use check::{load_dir, Action, ActionKind, CheckDef, Target, DEFAULT_CHECK_TIMEOUT};
pub use engine::CheckView;
pub use error::ServeError;
pub use parse::{OutputParser, Parsed, Thresholds, ValueSource};
pub use registry::{Capabilities, ClusterSummary, Limits, NodeEntry, INVENTORY_CLUSTER};
pub use runs::{count_junit, Counts, RunInfo, RunState, Suite};
pub use status::Status;
pub use store::{CheckResult, Maintenance, NodeResult, Retention};

/// The server's settings (`cluster-sim serve` flags).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on; a non-loopback one needs a token.
    pub bind: SocketAddr,
    /// Folder of check files (`*.toml`).
    pub checks: PathBuf,
    /// SQLite database for history and the maintenance lock.
    pub db: PathBuf,
    /// File holding the bearer token.
    pub token_file: Option<PathBuf>,
    /// Where runs keep their JUnit files and artifacts (default: `runs/` beside the database).
    pub runs_dir: Option<PathBuf>,
    /// The suite binary, or the workspace to build it in.
    pub suite: Suite,
    /// How long history is kept.
    pub retention: Retention,
}

/// A server ready to listen: configuration checked, checks loaded, database open.
pub struct Server {
    app: Arc<api::App>,
    listener: tokio::net::TcpListener,
}

fn read_token(path: &std::path::Path) -> Result<String, ServeError> {
    let err = |message: String| ServeError::Token {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err("is empty".into()));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("holds whitespace: a token is one word".into()));
    }
    Ok(token.to_string())
}

impl Server {
    /// Checks the configuration, loads the checks, opens the database, connects the backends
    /// and binds the address.
    pub async fn prepare(cfg: ServeConfig) -> Result<Server, ServeError> {
        let token = cfg.token_file.as_deref().map(read_token).transpose()?;
        if token.is_none() && !cfg.bind.ip().is_loopback() {
            return Err(ServeError::NotLoopback {
                addr: cfg.bind.to_string(),
            });
        }
        let defs = load_dir(&cfg.checks)?;
        let store = Arc::new(store::Store::open(&cfg.db, cfg.retention)?);
        let runs_dir = cfg.runs_dir.clone().unwrap_or_else(|| {
            cfg.db
                .parent()
                .map(|p| p.join("runs"))
                .unwrap_or_else(|| PathBuf::from("runs"))
        });
        let runs = Arc::new(
            runs::Runs::new(runs_dir.clone(), cfg.suite.clone()).map_err(|source| {
                ServeError::Read {
                    path: runs_dir.display().to_string(),
                    source,
                }
            })?,
        );
        let fleet = Arc::new(fleet::Fleet::connect().await?);
        let engine = Arc::new(engine::Engine::new(defs, store, fleet.clone())?);
        let listener = tokio::net::TcpListener::bind(cfg.bind)
            .await
            .map_err(|source| ServeError::Bind {
                addr: cfg.bind.to_string(),
                source,
            })?;
        Ok(Server {
            app: Arc::new(api::App {
                engine,
                fleet,
                registry: registry::Registry::new(),
                runs,
                token,
            }),
            listener,
        })
    }

    /// The address it listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Starts the checks' schedules and serves until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let tasks = self.app.engine.schedule();
        let router = api::router(self.app.clone());
        let r = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Serve);
        for t in tasks {
            t.abort();
        }
        r
    }
}
