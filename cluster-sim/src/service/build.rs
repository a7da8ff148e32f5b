//! Builds a workspace binary with cargo, once per process however many clusters ask for it,
//! and keeps the result in a content-addressed place that backends can mount or upload as is.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::glibc::{self, GlibcVersion};
use super::workspace::{cargo, Workspace};

/// What to build: one binary target of one workspace package.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuildRequest {
    /// The workspace package.
    pub package: String,
    /// Its binary target.
    pub bin: String,
    /// The cargo profile (`dev`, `release`, a custom one).
    pub profile: String,
    /// A target triple, if not the host's.
    pub target: Option<String>,
    /// A git commit of the workspace to build instead of its working tree (`rev`).
    pub rev: Option<String>,
}

impl BuildRequest {
    /// `package/bin (profile[, target])` for messages.
    pub fn describe(&self) -> String {
        let target = self
            .target
            .as_deref()
            .map(|t| format!(", {t}"))
            .unwrap_or_default();
        let at = self
            .rev
            .as_deref()
            .map(|c| format!("@{}", &c[..c.len().min(12)]))
            .unwrap_or_default();
        if self.package == self.bin {
            format!("{}{at} ({}{target})", self.bin, self.profile)
        } else {
            format!(
                "{}/{}{at} ({}{target})",
                self.package, self.bin, self.profile
            )
        }
    }
}

/// A built binary, ready to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// What was built.
    pub request: BuildRequest,
    /// The immutable copy `<target dir>/cluster-sim/bin/<sha256>/<bin>`, in cargo's target
    /// directory as `cargo metadata` reports it (so `CARGO_TARGET_DIR` and `build.target-dir`
    /// are honoured), not a fixed `target/`.
    pub path: PathBuf,
    /// Hex SHA-256 of its contents.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Newest glibc version it requires, if it links glibc.
    pub glibc: Option<GlibcVersion>,
}

/// A binary did not build; the message ends with the tail of cargo's own output.
#[derive(Debug, Clone, thiserror::Error)]
#[error("building {what}: {message}")]
pub struct BuildError {
    /// `package/bin (profile)`.
    pub what: String,
    /// Why, with cargo's error lines.
    pub message: String,
}

type Slot = Arc<tokio::sync::OnceCell<Result<Arc<Built>, BuildError>>>;
static BUILDS: Mutex<Option<HashMap<(PathBuf, BuildRequest), Slot>>> = Mutex::new(None);

/// How an executable is made for a request: cargo in the workspace as it is
/// ([`workspace_exe`]), or at a git revision (`revision.rs`).
pub type MakeExe = fn(&Workspace, &BuildRequest, &dyn Fn(&str)) -> Result<PathBuf, BuildError>;

/// Builds `req` in `ws`, or returns the result of the build this process already ran for it
/// (a failure included: a binary that does not build fails every cluster that needs it with
/// cargo's error, and cargo runs once). `progress` receives cargo's status lines.
pub async fn build(
    ws: &Arc<Workspace>,
    req: &BuildRequest,
    progress: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<Arc<Built>, BuildError> {
    build_with(ws, req, progress, workspace_exe).await
}

/// [`build`], the executable made by `make`.
pub async fn build_with(
    ws: &Arc<Workspace>,
    req: &BuildRequest,
    progress: Arc<dyn Fn(&str) + Send + Sync>,
    make: MakeExe,
) -> Result<Arc<Built>, BuildError> {
    let slot = BUILDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .entry((ws.root.clone(), req.clone()))
        .or_default()
        .clone();
    slot.get_or_init(|| async {
        let ws = ws.clone();
        let req = req.clone();
        tokio::task::spawn_blocking(move || run(&ws, &req, &*progress, make).map(Arc::new))
            .await
            .unwrap_or_else(|e| {
                Err(BuildError {
                    what: String::new(),
                    message: format!("the build task failed: {e}"),
                })
            })
    })
    .await
    .clone()
}

fn run(
    ws: &Workspace,
    req: &BuildRequest,
    progress: &dyn Fn(&str),
    make: MakeExe,
) -> Result<Built, BuildError> {
    let exe = make(ws, req, progress)?;
    stash(ws, req, &exe).map_err(|message| BuildError {
        what: req.describe(),
        message,
    })
}

/// `cargo build` in the workspace as it is, into its target directory (the one `cargo
/// metadata` gave, or another for a tool built from cluster-sim's source:
/// [`Workspace::for_tool`]).
pub fn workspace_exe(
    ws: &Workspace,
    req: &BuildRequest,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, BuildError> {
    cargo_build(&ws.root, Some(&ws.target_dir), req, progress)
}

/// Runs `cargo build` for `req` in the workspace at `root` (its target directory `target_dir`
/// when given) and returns the executable cargo reports.
pub(super) fn cargo_build(
    root: &std::path::Path,
    target_dir: Option<&std::path::Path>,
    req: &BuildRequest,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, BuildError> {
    let fail = |message: String| BuildError {
        what: req.describe(),
        message,
    };
    let mut args = vec![
        "build".to_string(),
        "--message-format=json-render-diagnostics".into(),
        "--color=never".into(),
        "-p".into(),
        req.package.clone(),
        "--bin".into(),
        req.bin.clone(),
        "--profile".into(),
        req.profile.clone(),
    ];
    if let Some(t) = &req.target {
        args.extend(["--target".into(), t.clone()]);
    }
    progress(&format!("cargo {}", args.join(" ")));
    // One stream: cargo's JSON messages on stdout and its human output (progress, rendered
    // errors) on stderr, in the order they came.
    let mut cmd = duct::cmd(cargo(), &args).dir(root);
    if let Some(t) = target_dir {
        cmd = cmd.env("CARGO_TARGET_DIR", t);
    }
    let reader = cmd
        .stderr_to_stdout()
        .unchecked()
        .reader()
        .map_err(|e| fail(format!("cannot run {}: {e}", cargo())))?;
    let mut executable = None;
    let mut tail: VecDeque<String> = VecDeque::new();
    for line in BufReader::new(&reader).lines() {
        let line = line.map_err(|e| fail(format!("reading cargo's output: {e}")))?;
        if line.starts_with('{') {
            if let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) {
                let is_ours = msg["reason"] == "compiler-artifact"
                    && msg["target"]["name"] == req.bin.as_str()
                    && msg["target"]["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"));
                if is_ours {
                    if let Some(exe) = msg["executable"].as_str() {
                        executable = Some(PathBuf::from(exe));
                    }
                }
                continue;
            }
        }
        let trimmed = line.trim_end();
        if !trimmed.trim().is_empty() {
            progress(trimmed.trim());
        }
        tail.push_back(trimmed.to_string());
        if tail.len() > 40 {
            tail.pop_front();
        }
    }
    let status = reader
        .try_wait()
        .map_err(|e| fail(format!("waiting for cargo: {e}")))?
        .map(|o| o.status);
    if !status.is_some_and(|s| s.success()) {
        // Cargo's own error, starting from its first `error` line when there is one.
        let lines: Vec<&String> = tail.iter().collect();
        let from = lines
            .iter()
            .position(|l| l.starts_with("error"))
            .unwrap_or(0);
        let text: Vec<&str> = lines[from..].iter().map(|s| s.as_str()).collect();
        return Err(fail(format!("cargo failed:\n{}", text.join("\n"))));
    }
    executable.ok_or_else(|| fail("cargo built no executable for it".into()))
}

/// Hashes the executable and links (or copies) it to `<target>/cluster-sim/bin/<sha256>/<bin>`,
/// a file nothing rewrites: a later build makes a new one instead of changing what a running
/// node has mounted.
pub(super) fn stash(
    ws: &Workspace,
    req: &BuildRequest,
    exe: &std::path::Path,
) -> Result<Built, String> {
    let data = std::fs::read(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let sha256 = hex::encode(Sha256::digest(&data));
    let glibc = glibc::required_glibc(exe).map_err(|e| e.to_string())?;
    let dir = ws.target_dir.join("cluster-sim").join("bin").join(&sha256);
    let path = dir.join(&req.bin);
    if !path.is_file() {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = dir.join(format!(".{}.{}", req.bin, std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        // A copy, not a hard link: rustc may rewrite its output in place on the next build.
        std::fs::write(&tmp, &data).map_err(|e| format!("{}: {e}", tmp.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755));
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(Built {
        request: req.clone(),
        path,
        sha256,
        size: data.len() as u64,
        glibc,
    })
}
