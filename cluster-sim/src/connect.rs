//! Connecting a backend from settings: the one place that knows every backend by name
//! (docker, ssh, memory, swarm). The
//! harness, the CLI, the server and a run's watchdog choose through it, and a builder given no
//! backend gets the default from it. A new backend is its folder plus one entry in
//! [`BACKENDS`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use crate::backend::contract::Backend;
use crate::docker::backend::DockerBackend;
use crate::error::BackendError;
use crate::memory::backend::MemoryBackend;
use crate::ssh::backend::SshBackend;
use crate::swarm::backend::SwarmBackend;
use crate::swarm::engines::Engines;

/// Environment variable choosing the backend: `docker` (default), `ssh` or `memory`.
pub const BACKEND_VAR: &str = "CLUSTER_SIM_BACKEND";
/// Environment variable naming the ssh backend's inventory file.
pub const INVENTORY_VAR: &str = "CLUSTER_SIM_INVENTORY";
/// Environment variable naming the swarm backend's engines file.
pub const ENGINES_VAR: &str = "CLUSTER_SIM_ENGINES";

/// Which backend to connect, and what connecting it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendChoice {
    /// A name from [`BACKENDS`]; empty means the default (the first).
    pub kind: String,
    /// The inventory file (ssh).
    pub inventory: Option<PathBuf>,
    /// The engines file (swarm); `None` reads `CLUSTER_SIM_ENGINES`.
    pub engines: Option<PathBuf>,
}

impl BackendChoice {
    /// The choice `CLUSTER_SIM_BACKEND` and `CLUSTER_SIM_INVENTORY` make.
    pub fn from_env() -> Self {
        BackendChoice {
            kind: std::env::var(BACKEND_VAR)
                .unwrap_or_default()
                .trim()
                .to_string(),
            inventory: std::env::var_os(INVENTORY_VAR)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            engines: engines_from_env(),
        }
    }

    /// The backend's name, the default one for an empty choice.
    pub fn kind(&self) -> &str {
        if self.kind.is_empty() {
            BACKENDS[0].0
        } else {
            &self.kind
        }
    }

    /// Connects the chosen backend. An unknown name, or a setting the backend needs and
    /// lacks, is one clear error.
    pub async fn connect(&self) -> Result<Arc<dyn Backend>, BackendError> {
        match BACKENDS.iter().find(|(name, _)| *name == self.kind()) {
            Some((_, connect)) => connect(self).await,
            None => Err(BackendError::refused(
                format!("backend {:?}", self.kind),
                format!("unknown (expected {})", backend_names()),
            )),
        }
    }
}

/// The future a connector returns.
type Connecting<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn Backend>, BackendError>> + Send + 'a>>;

/// How one backend is connected from a choice.
type Connector = for<'a> fn(&'a BackendChoice) -> Connecting<'a>;

/// Every backend by the name `CLUSTER_SIM_BACKEND` gives it; the first is the default.
pub const BACKENDS: &[(&str, Connector)] = &[
    ("docker", |_| {
        Box::pin(async { Ok(Arc::new(DockerBackend::connect().await?) as Arc<dyn Backend>) })
    }),
    ("ssh", |choice| {
        Box::pin(async move {
            let path = needs_inventory(choice)?;
            let backend = SshBackend::from_file(path)
                .map_err(|e| BackendError::refused("the ssh backend's inventory", e.to_string()))?;
            Ok(Arc::new(backend) as Arc<dyn Backend>)
        })
    }),
    ("memory", |_| {
        Box::pin(async { Ok(Arc::new(MemoryBackend::new()) as Arc<dyn Backend>) })
    }),
    ("swarm", |choice| {
        Box::pin(async move {
            let path = choice.engines.clone().or_else(engines_from_env).ok_or_else(|| {
                BackendError::refused(
                    "the swarm backend",
                    format!("it needs an engines file: set {ENGINES_VAR}=FILE (`cluster-sim lab engines N --out FILE` writes one)"),
                )
            })?;
            let engines = Engines::from_file(&path)
                .map_err(|e| BackendError::refused("the swarm backend's engines", e.to_string()))?;
            Ok(Arc::new(SwarmBackend::connect(&engines).await?) as Arc<dyn Backend>)
        })
    }),
];

/// The engines file `CLUSTER_SIM_ENGINES` names.
fn engines_from_env() -> Option<PathBuf> {
    std::env::var_os(ENGINES_VAR)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// The inventory a choice names, or the error saying how to name one.
fn needs_inventory(choice: &BackendChoice) -> Result<&Path, BackendError> {
    choice.inventory.as_deref().ok_or_else(|| {
        BackendError::refused(
            format!("the {} backend", choice.kind()),
            format!("it needs an inventory: set {INVENTORY_VAR}=FILE"),
        )
    })
}

/// Whether `kind` names a backend (empty names the default).
pub fn is_backend(kind: &str) -> bool {
    kind.is_empty() || BACKENDS.iter().any(|(name, _)| *name == kind)
}

/// The backends' names for messages: `docker, ssh, memory or swarm`.
pub fn backend_names() -> &'static str {
    static NAMES: LazyLock<String> = LazyLock::new(|| {
        let names: Vec<&str> = BACKENDS.iter().map(|(n, _)| *n).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        }
    });
    &NAMES
}

/// Connects the backend named `kind` (empty for the default), with its inventory file where
/// it needs one.
pub async fn connect_backend(
    kind: &str,
    inventory: Option<&Path>,
) -> Result<Arc<dyn Backend>, BackendError> {
    BackendChoice {
        kind: kind.to_string(),
        inventory: inventory.map(Path::to_path_buf),
        engines: None,
    }
    .connect()
    .await
}

/// [`connect_backend`] with the choice read from `CLUSTER_SIM_BACKEND`,
/// `CLUSTER_SIM_INVENTORY` and `CLUSTER_SIM_ENGINES`.
pub async fn connect_backend_from_env() -> Result<Arc<dyn Backend>, BackendError> {
    BackendChoice::from_env().connect().await
}

/// The backend a `ClusterBuilder` given none uses: the default one (docker), whatever the
/// environment says, as it always has.
pub async fn default_backend() -> Result<Arc<dyn Backend>, BackendError> {
    BackendChoice::default().connect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_choices() {
        assert_eq!(BackendChoice::default().kind(), "docker");
        assert!(is_backend("") && is_backend("ssh") && !is_backend("podman"));
        let names = backend_names();
        assert!(
            names.starts_with("docker") && names.contains(" or "),
            "{names}"
        );
    }

    #[tokio::test]
    async fn an_unknown_backend_or_a_missing_inventory_is_one_clear_line() {
        let e = connect_backend("podman", None)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("backend \"podman\": unknown (expected {})", backend_names())
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("engines.toml");
        std::fs::write(
            &file,
            "[[engine]]\nname = \"a\"\nendpoint = \"tcp://127.0.0.1:1\"\n",
        )
        .expect("write");
        let swarm = BackendChoice {
            kind: "swarm".into(),
            inventory: None,
            engines: Some(file.clone()),
        };
        let e = swarm.connect().await.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "engine a ({}): cannot reach the Docker engine at tcp://127.0.0.1:1: ",
                file.display()
            )),
            "{e}"
        );
        let e = connect_backend("ssh", None).await.unwrap_err().to_string();
        assert_eq!(
            e,
            "the ssh backend: it needs an inventory: set CLUSTER_SIM_INVENTORY=FILE"
        );
    }
}
