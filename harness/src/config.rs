//! Settings: built-in defaults, then `cluster-sim.toml` at the workspace root, then
//! `CLUSTER_SIM_*` variables (variables win). Unknown keys in the file are warned about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Most retries a test may be given (a typo such as `retries = 100` would otherwise run a
/// failing cluster test for hours).
pub const MAX_RETRIES: u32 = 20;

/// The settings file's name, looked for at the workspace root.
pub const CONFIG_FILE: &str = "cluster-sim.toml";

/// Default deadline of a test whose attribute and spec set none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Default node budget: a 3-node etcd or redis cluster needs about 150-300 MiB and little CPU
/// once up, but provisioning is CPU-bound; 12 nodes (four 3-node clusters) keeps a 2-core,
/// 24 GiB machine responsive while still overlapping the engine's waits.
pub const DEFAULT_NODE_BUDGET: usize = 12;
/// How many earlier runs' artifact directories stay by default.
pub const DEFAULT_KEEP_RUNS: usize = 20;

/// Which backend provisions clusters: a name `cluster_sim_core::connect` knows (`docker`, `ssh`,
/// `memory`), checked when the settings load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendKind(String);

impl BackendKind {
    /// The backend's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for BackendKind {
    fn default() -> Self {
        BackendKind(
            cluster_sim_core::BackendChoice::default()
                .kind()
                .to_string(),
        )
    }
}

/// When a test's artifacts are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Never (a failure still keeps them: they are the evidence).
    Never,
    /// Only for tests that did not pass (the default).
    OnFailure,
    /// Always, with every node's logs.
    Always,
}

impl Keep {
    /// Whether a test's artifacts stay, given whether it passed.
    pub fn keeps(self, passed: bool) -> bool {
        !passed || self == Keep::Always
    }
}

/// When a test's cluster is left running after the test (`CLUSTER_SIM_KEEP_CLUSTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepCluster {
    /// Never: every cluster is torn down (the default).
    Never,
    /// When its test did not pass: left running with its faults, for a look inside.
    OnFailure,
    /// Always.
    Always,
}

impl KeepCluster {
    /// Whether a cluster stays, given whether its test passed.
    pub fn keeps(self, passed: bool) -> bool {
        match self {
            KeepCluster::Never => false,
            KeepCluster::OnFailure => !passed,
            KeepCluster::Always => true,
        }
    }
}

/// The harness's settings for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `CLUSTER_SIM_BACKEND`.
    pub backend: BackendKind,
    /// `CLUSTER_SIM_INVENTORY` (ssh).
    pub inventory: Option<PathBuf>,
    /// `CLUSTER_SIM_JUNIT`: where the report goes.
    pub junit: PathBuf,
    /// `CLUSTER_SIM_REPORT`: where the HTML report goes (default: `report.html` beside the
    /// JUnit report).
    pub report: PathBuf,
    /// `CLUSTER_SIM_RETRIES` or the file's `retries`: how many times a failed test is tried
    /// again (each time on a fresh cluster) unless its attribute says otherwise.
    pub retries: u32,
    /// Whether `retries` came from `CLUSTER_SIM_RETRIES`, which overrides the attribute too
    /// (a CI job asking for no retries, or for more, gets them everywhere).
    pub retries_forced: bool,
    /// `CLUSTER_SIM_ARTIFACTS`: the directory holding one directory per run.
    pub artifacts: PathBuf,
    /// `CLUSTER_SIM_KEEP`.
    pub keep: Keep,
    /// `CLUSTER_SIM_KEEP_CLUSTER` or the file's `keep_cluster`: which tests' clusters are left
    /// running, marked kept, after the test.
    pub keep_cluster: KeepCluster,
    /// `CLUSTER_SIM_CLUSTER`: a running cluster (`cluster-sim up`) that tests asking for the
    /// spec it was made from run on, instead of provisioning their own.
    pub attach: Option<String>,
    /// `CLUSTER_SIM_KEEP_RUNS`: how many earlier runs' directories stay under `artifacts`
    /// (older ones are removed when a run starts; 0 keeps them all).
    pub keep_runs: usize,
    /// `CLUSTER_SIM_NODE_BUDGET`: nodes alive at once across concurrent tests.
    pub node_budget: usize,
    /// `CLUSTER_SIM_TIMEOUT`: default deadline of a test.
    pub timeout: Duration,
    /// Warnings met while loading (unknown keys), for the runner to print.
    pub warnings: Vec<String>,
    /// The project directory report attachments are relative to: `CI_PROJECT_DIR` when set
    /// (GitLab resolves a JUnit attachment from there), else the workspace root.
    pub project_dir: PathBuf,
}

/// Loading the settings failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or a key has the wrong type.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is not one of the accepted ones.
    #[error("{origin}: {value:?} is not valid; expected {expected}")]
    Invalid {
        /// `CLUSTER_SIM_KEEP` or `cluster-sim.toml: keep`.
        origin: String,
        /// The value given.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
}

#[derive(Debug, Default, Deserialize)]
struct FileSettings {
    backend: Option<String>,
    inventory: Option<PathBuf>,
    junit: Option<PathBuf>,
    artifacts: Option<PathBuf>,
    keep: Option<String>,
    keep_cluster: Option<String>,
    node_budget: Option<usize>,
    timeout: Option<String>,
    report: Option<PathBuf>,
    retries: Option<u32>,
    keep_runs: Option<usize>,
}

const KNOWN_KEYS: &[&str] = &[
    "backend",
    "inventory",
    "junit",
    "artifacts",
    "keep",
    "keep_cluster",
    "node_budget",
    "timeout",
    "report",
    "retries",
    "keep_runs",
];

impl Settings {
    /// Loads settings for a workspace: `workspace/cluster-sim.toml` (if any), then the process
    /// environment. `target_dir` places the default report and artifacts.
    pub fn load(workspace: &Path, target_dir: &Path) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("CLUSTER_SIM_"))
            .collect();
        let mut settings = Self::load_from(workspace, target_dir, &vars)?;
        if let Some(dir) = std::env::var_os("CI_PROJECT_DIR").filter(|d| !d.is_empty()) {
            settings.project_dir = PathBuf::from(dir);
        }
        Ok(settings)
    }

    /// Like [`Settings::load`] with the variables given (for tests).
    pub fn load_from(
        workspace: &Path,
        target_dir: &Path,
        vars: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let file_path = workspace.join(CONFIG_FILE);
        let mut warnings = Vec::new();
        let file = if file_path.is_file() {
            let shown = file_path.display().to_string();
            let text = std::fs::read_to_string(&file_path).map_err(|source| ConfigError::Read {
                file: shown.clone(),
                source,
            })?;
            let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                file: shown.clone(),
                message: e.to_string().trim().replace('\n', " "),
            })?;
            for key in table.keys() {
                if !KNOWN_KEYS.contains(&key.as_str()) {
                    warnings.push(format!(
                        "{shown}: unknown key `{key}` ignored (known: {})",
                        KNOWN_KEYS.join(", ")
                    ));
                }
            }
            let mut known = table;
            known.retain(|k, _| KNOWN_KEYS.contains(&k));
            known
                .try_into::<FileSettings>()
                .map_err(|e| ConfigError::Parse {
                    file: shown,
                    message: e.to_string().trim().replace('\n', " "),
                })?
        } else {
            FileSettings::default()
        };
        let from_file = |key: &str| format!("{CONFIG_FILE}: {key}");
        // A value from the file is relative to the workspace; one from a variable, to the
        // current directory (as any path given on a command line).
        let pick_path = |var: &str, file_value: Option<PathBuf>| -> Option<PathBuf> {
            match vars.get(var).filter(|v| !v.is_empty()) {
                Some(v) => Some(PathBuf::from(v)),
                None => file_value.map(|p| workspace.join(p)),
            }
        };
        let pick = |var: &str, file_value: Option<String>, key: &str| -> Option<(String, String)> {
            match vars.get(var).filter(|v| !v.is_empty()) {
                Some(v) => Some((var.to_string(), v.clone())),
                None => file_value.map(|v| (from_file(key), v)),
            }
        };

        let backend = match pick("CLUSTER_SIM_BACKEND", file.backend, "backend") {
            None => BackendKind::default(),
            Some((_, v)) if cluster_sim_core::connect::is_backend(&v) => BackendKind(v),
            Some((origin, v)) => {
                return Err(ConfigError::Invalid {
                    origin,
                    value: v,
                    expected: cluster_sim_core::connect::backend_names(),
                })
            }
        };
        let keep = match pick("CLUSTER_SIM_KEEP", file.keep, "keep") {
            None => Keep::OnFailure,
            Some((origin, v)) => match v.as_str() {
                "never" => Keep::Never,
                "on-failure" => Keep::OnFailure,
                "always" => Keep::Always,
                _ => {
                    return Err(ConfigError::Invalid {
                        origin,
                        value: v,
                        expected: "never, on-failure or always",
                    })
                }
            },
        };
        let keep_cluster = match pick(
            "CLUSTER_SIM_KEEP_CLUSTER",
            file.keep_cluster,
            "keep_cluster",
        ) {
            None => KeepCluster::Never,
            Some((origin, v)) => match v.as_str() {
                "never" => KeepCluster::Never,
                "on-failure" => KeepCluster::OnFailure,
                "always" => KeepCluster::Always,
                _ => {
                    return Err(ConfigError::Invalid {
                        origin,
                        value: v,
                        expected: "never, on-failure or always",
                    })
                }
            },
        };
        let attach = match vars.get("CLUSTER_SIM_CLUSTER").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) if cluster_sim_core::cluster::check_cluster_name(v).is_ok() => Some(v.clone()),
            Some(v) => {
                return Err(ConfigError::Invalid {
                    origin: "CLUSTER_SIM_CLUSTER".into(),
                    value: v.clone(),
                    expected: "the name of a running cluster (lowercase letters, digits and '-')",
                })
            }
        };
        let node_budget = match vars
            .get("CLUSTER_SIM_NODE_BUDGET")
            .filter(|v| !v.is_empty())
        {
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    origin: "CLUSTER_SIM_NODE_BUDGET".into(),
                    value: v.clone(),
                    expected: "a whole number of nodes above zero",
                })?,
            None => match file.node_budget {
                Some(0) => {
                    return Err(ConfigError::Invalid {
                        origin: from_file("node_budget"),
                        value: "0".into(),
                        expected: "a whole number of nodes above zero",
                    })
                }
                Some(n) => n,
                None => DEFAULT_NODE_BUDGET,
            },
        };
        let timeout = match pick("CLUSTER_SIM_TIMEOUT", file.timeout, "timeout") {
            None => DEFAULT_TIMEOUT,
            Some((origin, v)) => humantime::parse_duration(&v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or(ConfigError::Invalid {
                    origin,
                    value: v,
                    expected: "a duration such as \"90s\" or \"5m\"",
                })?,
        };
        let (retries, retries_forced) =
            match vars.get("CLUSTER_SIM_RETRIES").filter(|v| !v.is_empty()) {
                Some(v) => (
                    v.trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n <= MAX_RETRIES)
                        .ok_or_else(|| ConfigError::Invalid {
                            origin: "CLUSTER_SIM_RETRIES".into(),
                            value: v.clone(),
                            expected: "a whole number of retries from 0 to 20",
                        })?,
                    true,
                ),
                None => match file.retries {
                    Some(n) if n > MAX_RETRIES => {
                        return Err(ConfigError::Invalid {
                            origin: from_file("retries"),
                            value: n.to_string(),
                            expected: "a whole number of retries from 0 to 20",
                        })
                    }
                    n => (n.unwrap_or(0), false),
                },
            };
        let keep_runs = match vars.get("CLUSTER_SIM_KEEP_RUNS").filter(|v| !v.is_empty()) {
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| ConfigError::Invalid {
                    origin: "CLUSTER_SIM_KEEP_RUNS".into(),
                    value: v.clone(),
                    expected: "a whole number of runs (0 keeps them all)",
                })?,
            None => file.keep_runs.unwrap_or(DEFAULT_KEEP_RUNS),
        };
        let cluster_sim = target_dir.join("cluster-sim");
        let junit = pick_path("CLUSTER_SIM_JUNIT", file.junit)
            .unwrap_or_else(|| cluster_sim.join("junit.xml"));
        let report = pick_path("CLUSTER_SIM_REPORT", file.report).unwrap_or_else(|| {
            junit
                .parent()
                .map(|d| d.join("report.html"))
                .unwrap_or_else(|| PathBuf::from("report.html"))
        });
        Ok(Settings {
            backend,
            inventory: pick_path("CLUSTER_SIM_INVENTORY", file.inventory),
            junit,
            report,
            retries,
            retries_forced,
            artifacts: pick_path("CLUSTER_SIM_ARTIFACTS", file.artifacts)
                .unwrap_or_else(|| cluster_sim.join("runs")),
            keep,
            keep_cluster,
            attach,
            keep_runs,
            node_budget,
            timeout,
            warnings,
            project_dir: workspace.to_path_buf(),
        })
    }
}

/// The workspace root: the nearest ancestor of `start` whose `Cargo.toml` has `[workspace]`,
/// else `start` itself.
pub fn find_workspace_root(start: &Path) -> PathBuf {
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                return dir.to_path_buf();
            }
        }
    }
    start.to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the ancestor of the running executable
/// that holds cargo's `CACHEDIR.TAG`, else `<workspace>/target`.
pub fn find_target_dir(workspace: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace.join(dir)
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("CACHEDIR.TAG").is_file())
        {
            return dir.to_path_buf();
        }
    }
    workspace.join("target")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_variables() {
        let ws = tempfile::tempdir().unwrap();
        let target = ws.path().join("target");
        let s = Settings::load_from(ws.path(), &target, &vars(&[])).unwrap();
        assert_eq!(s.backend.as_str(), "docker");
        assert_eq!(s.keep, Keep::OnFailure);
        assert_eq!(s.node_budget, DEFAULT_NODE_BUDGET);
        assert_eq!(s.junit, target.join("cluster-sim/junit.xml"));
        assert_eq!(s.artifacts, target.join("cluster-sim/runs"));
        assert_eq!(s.report, target.join("cluster-sim/report.html"));
        assert_eq!((s.retries, s.retries_forced), (0, false));
        assert_eq!(s.keep_runs, DEFAULT_KEEP_RUNS);
        assert_eq!(s.keep_cluster, KeepCluster::Never);
        assert_eq!(s.attach, None);

        std::fs::write(
            ws.path().join(CONFIG_FILE),
            "keep = \"always\"\nkeep_cluster = \"on-failure\"\nnode_budget = 6\njunit = \"out/j.xml\"\ncolour = 1\nretries = 2\nkeep_runs = 5\n",
        )
        .unwrap();
        let s = Settings::load_from(ws.path(), &target, &vars(&[])).unwrap();
        assert_eq!(s.keep, Keep::Always);
        assert_eq!(s.keep_cluster, KeepCluster::OnFailure);
        assert_eq!(s.node_budget, 6);
        assert_eq!(s.junit, ws.path().join("out/j.xml"));
        assert_eq!(s.report, ws.path().join("out/report.html"));
        assert_eq!((s.retries, s.retries_forced), (2, false));
        assert_eq!(s.keep_runs, 5);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);

        let s = Settings::load_from(
            ws.path(),
            &target,
            &vars(&[
                ("CLUSTER_SIM_KEEP", "never"),
                ("CLUSTER_SIM_NODE_BUDGET", "3"),
                ("CLUSTER_SIM_RETRIES", "0"),
                ("CLUSTER_SIM_REPORT", "r.html"),
                ("CLUSTER_SIM_KEEP_RUNS", "0"),
                ("CLUSTER_SIM_KEEP_CLUSTER", "always"),
                ("CLUSTER_SIM_CLUSTER", "demo"),
            ]),
        )
        .unwrap();
        assert_eq!(s.keep_cluster, KeepCluster::Always);
        assert_eq!(s.attach.as_deref(), Some("demo"));
        assert_eq!(s.keep_runs, 0);
        assert_eq!((s.retries, s.retries_forced), (0, true));
        assert_eq!(s.report, PathBuf::from("r.html"));
        assert_eq!(s.keep, Keep::Never);
        assert_eq!(s.node_budget, 3);
    }

    #[test]
    fn bad_values_name_their_origin() {
        let ws = tempfile::tempdir().unwrap();
        let e = Settings::load_from(
            ws.path(),
            ws.path(),
            &vars(&[("CLUSTER_SIM_KEEP", "sometimes")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CLUSTER_SIM_KEEP: \"sometimes\" is not valid; expected never, on-failure or always"
        );
        let e = Settings::load_from(
            ws.path(),
            ws.path(),
            &vars(&[("CLUSTER_SIM_KEEP_RUNS", "-1")]),
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("CLUSTER_SIM_KEEP_RUNS: \"-1\" is not valid"));
        let e = Settings::load_from(
            ws.path(),
            ws.path(),
            &vars(&[("CLUSTER_SIM_KEEP_CLUSTER", "yes")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CLUSTER_SIM_KEEP_CLUSTER: \"yes\" is not valid; expected never, on-failure or always"
        );
        let e = Settings::load_from(
            ws.path(),
            ws.path(),
            &vars(&[("CLUSTER_SIM_CLUSTER", "Demo Cluster")]),
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("CLUSTER_SIM_CLUSTER: \"Demo Cluster\" is not valid"));
        std::fs::write(ws.path().join(CONFIG_FILE), "backend = \"vm\"\n").unwrap();
        let e = Settings::load_from(ws.path(), ws.path(), &vars(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cluster-sim.toml: backend: \"vm\" is not valid; expected {}",
                cluster_sim_core::connect::backend_names()
            )
        );
    }
}
