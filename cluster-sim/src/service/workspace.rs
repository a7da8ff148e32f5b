//! The cargo workspace around a spec: its packages with their binaries and its target
//! directory, read once per workspace with `cargo metadata --no-deps`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What `cargo metadata --no-deps` says about a workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root (where `cargo build` runs).
    pub root: PathBuf,
    /// The target directory (honours `CARGO_TARGET_DIR` and `.cargo/config.toml`).
    pub target_dir: PathBuf,
    /// Every workspace member and the names of its binary targets.
    pub packages: BTreeMap<String, Vec<String>>,
}

/// The `cargo` to run: the one running us (`CARGO`, set by `cargo test` and `cargo run`), else
/// the one on `PATH`.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

static CACHE: Mutex<Option<HashMap<PathBuf, Arc<Workspace>>>> = Mutex::new(None);

impl Workspace {
    /// The workspace holding `dir`, read once per process per directory.
    pub fn around(dir: &Path) -> Result<Arc<Workspace>, String> {
        let key = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        if let Some(ws) = CACHE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .get(&key)
        {
            return Ok(ws.clone());
        }
        let ws = Arc::new(Self::read(&key)?);
        CACHE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(key, ws.clone());
        Ok(ws)
    }

    /// The workspace that builds `package` for a spec in `spec_dir`: the workspace around the
    /// spec's folder when it has the package, else the one around the current directory (so
    /// `cluster-sim up /elsewhere/x.toml`, run inside a workspace, builds that workspace's
    /// package). The error names both places and what each holds.
    pub fn for_package(spec_dir: &Path, package: &str) -> Result<Arc<Workspace>, String> {
        let near = Self::around(spec_dir);
        if let Ok(ws) = &near {
            if ws.packages.contains_key(package) {
                return Ok(ws.clone());
            }
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let here = Self::around(&cwd);
        if let Ok(ws) = &here {
            if ws.packages.contains_key(package) {
                return Ok(ws.clone());
            }
        }
        let holds = |dir: &Path, r: &Result<Arc<Workspace>, String>| match r {
            Ok(ws) => format!(
                "its workspace {} has {}",
                ws.root.display(),
                ws.packages.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            Err(_) if !dir.ancestors().any(|d| d.join("Cargo.toml").is_file()) => {
                "no cargo workspace".into()
            }
            Err(e) => e.clone(),
        };
        Err(format!(
            "no workspace package {package:?} around the spec's folder {} ({}) or the current \
             directory {} ({})",
            spec_dir.display(),
            holds(spec_dir, &near),
            cwd.display(),
            holds(&cwd, &here),
        ))
    }

    /// [`Workspace::for_package`] for a package of cluster-sim's own (the fault filesystem),
    /// with one more place to look: the cluster-sim source tree this library was built from
    /// (a path or git dependency brings the whole repository), so a project of its own needs
    /// no copy of it. Such a build goes to the target directory of the workspace around the
    /// spec or the current directory (under `cluster-sim/tools`), else to the source tree's.
    pub fn for_tool(spec_dir: &Path, package: &str) -> Result<Arc<Workspace>, String> {
        let not_near = match Self::for_package(spec_dir, package) {
            Ok(ws) => return Ok(ws),
            Err(e) => e,
        };
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .filter(|d| d.join("Cargo.toml").is_file());
        let theirs = source.and_then(|d| Self::around(d).ok());
        let Some(theirs) = theirs.filter(|ws| ws.packages.contains_key(package)) else {
            return Err(format!(
                "{not_near}; nor is it in the cluster-sim source this program was built from ({})",
                env!("CARGO_MANIFEST_DIR")
            ));
        };
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let target_dir = Self::around(spec_dir)
            .or_else(|_| Self::around(&cwd))
            .map(|ws| ws.target_dir.join("cluster-sim").join("tools"))
            .unwrap_or_else(|_| theirs.target_dir.clone());
        Ok(Arc::new(Workspace {
            root: theirs.root.clone(),
            target_dir,
            packages: theirs.packages.clone(),
        }))
    }

    fn read(dir: &Path) -> Result<Workspace, String> {
        let out = duct::cmd!(
            cargo(),
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline"
        )
        .dir(dir)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| format!("cannot run `{} metadata`: {e}", cargo()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err
                .lines()
                .find(|l| l.starts_with("error"))
                .unwrap_or(err.lines().next().unwrap_or(""));
            return Err(format!(
                "`cargo metadata` in {} failed: {}",
                dir.display(),
                first.trim()
            ));
        }
        Self::from_metadata(&out.stdout)
    }

    /// Reads `cargo metadata --format-version 1` output.
    fn from_metadata(json: &[u8]) -> Result<Workspace, String> {
        let v: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| format!("bad `cargo metadata` output: {e}"))?;
        let path = |k: &str| {
            v.get(k)
                .and_then(|p| p.as_str())
                .map(PathBuf::from)
                .ok_or_else(|| format!("`cargo metadata` output has no {k}"))
        };
        let members: Vec<&str> = v
            .get("workspace_members")
            .and_then(|m| m.as_array())
            .map(|m| m.iter().filter_map(|i| i.as_str()).collect())
            .unwrap_or_default();
        let mut packages = BTreeMap::new();
        for p in v
            .get("packages")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            let id = p.get("id").and_then(|i| i.as_str()).unwrap_or("");
            if !members.contains(&id) {
                continue;
            }
            let name = p
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string();
            let bins = p
                .get("targets")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
                .filter(|t| {
                    t.get("kind")
                        .and_then(|k| k.as_array())
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
                .filter_map(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .collect();
            packages.insert(name, bins);
        }
        Ok(Workspace {
            root: path("workspace_root")?,
            target_dir: path("target_directory")?,
            packages,
        })
    }

    /// The cargo profile of the running program when it was built in this workspace's target
    /// directory (`target/debug/deps/tests_d-…` is `dev`, `target/release/…` is `release`,
    /// `target/<name>/…` a custom profile); `dev` otherwise.
    pub fn current_profile(&self) -> String {
        let Ok(exe) = std::env::current_exe() else {
            return "dev".into();
        };
        let mut dir = exe.parent();
        if dir.is_some_and(|d| d.ends_with("deps") || d.ends_with("examples")) {
            dir = dir.and_then(Path::parent);
        }
        let Some(profile_dir) = dir else {
            return "dev".into();
        };
        let under_target = profile_dir.parent().is_some_and(|p| {
            p == self.target_dir || p.parent().is_some_and(|pp| pp == self.target_dir)
        });
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some(name) if under_target => match name {
                "debug" => "dev".into(),
                other => other.into(),
            },
            _ => "dev".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_workspace() {
        let ws = Workspace::around(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(ws.packages.contains_key("cluster-sim"), "{:?}", ws.packages);
        assert!(ws.packages["cluster-sim"].contains(&"cluster-sim".to_string()));
        assert!(ws.root.join("Cargo.toml").is_file());
        // A unit test binary lives in target/debug/deps (or a custom profile's directory).
        assert!(!ws.current_profile().is_empty());
    }
}
