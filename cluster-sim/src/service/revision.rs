//! Versions of a binary other than the working tree's: a git revision of the workspace
//! (`rev`), built once per commit and kept under the target directory, and a prebuilt file
//! (`path`), taken as is. Both end in the same content-addressed store as workspace builds.
//!
//! A revision is built from `git archive` of its commit, unpacked beside its cache, rather
//! than in a `git worktree`: nothing is written into the repository's `.git` (no worktree
//! entry left behind when a run is killed mid-build), and the tree is the commit's own,
//! whatever the working tree holds. Its build has a target directory of its own, so the
//! workspace's incremental state is untouched.

use std::path::{Path, PathBuf};

use super::build::{self, BuildError, BuildRequest, Built};
use super::workspace::Workspace;

/// The folder of one commit's builds: `<target>/cluster-sim/rev/<commit>/`.
fn commit_dir(ws: &Workspace, commit: &str) -> PathBuf {
    ws.target_dir.join("cluster-sim").join("rev").join(commit)
}

/// The first line of a program's complaint, for a one-line error.
fn first_line(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .trim_start_matches("fatal: ")
        .to_string()
}

/// The full commit hash `rev` names in the git repository holding `dir`; the error is one
/// line (git's own words, and when the clone is shallow, how to deepen it).
pub fn resolve(dir: &Path, rev: &str) -> Result<String, String> {
    if rev.is_empty() || rev.starts_with('-') {
        return Err(format!("bad revision {rev:?}"));
    }
    let out = duct::cmd!(
        "git",
        "rev-parse",
        "--verify",
        "--end-of-options",
        format!("{rev}^{{commit}}")
    )
    .dir(dir)
    .stdout_capture()
    .stderr_capture()
    .unchecked()
    .run()
    .map_err(|e| format!("cannot run git to resolve {rev:?}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let said = first_line(&out.stderr);
    if said.contains("not a git repository") {
        return Err(format!(
            "{} is not in a git repository, so `rev` has nothing to build from ({said})",
            dir.display()
        ));
    }
    let shallow = duct::cmd!("git", "rev-parse", "--is-shallow-repository")
        .dir(dir)
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .read()
        .is_ok_and(|s| s.trim() == "true");
    Err(format!(
        "no commit {rev:?} in the git repository at {} (git: {}){}",
        dir.display(),
        if said.is_empty() {
            "unknown revision"
        } else {
            said.as_str()
        },
        if shallow {
            "; this clone is shallow: `git fetch --unshallow` brings the history"
        } else {
            ""
        }
    ))
}

/// Builds `req` from the workspace at its commit (`req.rev`), or finds it built by an earlier
/// run; returns the executable (`<target>/cluster-sim/rev/<commit>/<profile>[-<target>]/<bin>`,
/// written whole by a rename). A file lock makes concurrent runs build it once. A
/// [`build::MakeExe`].
pub fn build_at(
    ws: &Workspace,
    req: &BuildRequest,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, BuildError> {
    let fail = |message: String| BuildError {
        what: req.describe(),
        message,
    };
    let Some(commit) = req.rev.as_deref() else {
        return build::workspace_exe(ws, req, progress);
    };
    let dir = commit_dir(ws, commit);
    let flavour = match &req.target {
        Some(t) => format!("{}-{t}", req.profile),
        None => req.profile.clone(),
    };
    let product = dir.join(flavour).join(&req.bin);
    if product.is_file() {
        progress(&format!(
            "{} built before: {}",
            req.describe(),
            product.display()
        ));
        return Ok(product);
    }
    let io = |what: &str, p: &Path| {
        let what = format!("{what} {}", p.display());
        move |e: std::io::Error| fail(format!("{what}: {e}"))
    };
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io("open", &lock_path))?;
    if let Err(fs4::TryLockError::WouldBlock) = fs4::FileExt::try_lock(&lock) {
        progress(&format!(
            "waiting for another process building {commit} (lock {})",
            lock_path.display()
        ));
    }
    fs4::FileExt::lock(&lock).map_err(io("lock", &lock_path))?;
    if product.is_file() {
        return Ok(product);
    }
    let src = dir.join(format!("src.{}", std::process::id()));
    let result = (|| {
        let root = unpack(ws, commit, &src).map_err(fail)?;
        progress(&format!(
            "building {} in {}",
            req.describe(),
            root.display()
        ));
        let exe = build::cargo_build(&root, Some(&dir.join("target")), req, progress)?;
        let parent = product.parent().unwrap_or(&dir);
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        let tmp = parent.join(format!(".{}.{}", req.bin, std::process::id()));
        std::fs::copy(&exe, &tmp).map_err(io("copy to", &tmp))?;
        std::fs::rename(&tmp, &product).map_err(io("rename to", &product))?;
        Ok(product.clone())
    })();
    let _ = std::fs::remove_dir_all(&src);
    result
}

/// Unpacks the repository's tree at `commit` into `into` and returns the workspace root inside
/// it (the workspace may sit in a subfolder of the repository).
fn unpack(ws: &Workspace, commit: &str, into: &Path) -> Result<PathBuf, String> {
    let top = duct::cmd!("git", "rev-parse", "--show-toplevel")
        .dir(&ws.root)
        .stderr_capture()
        .read()
        .map_err(|e| format!("finding the git repository of {}: {e}", ws.root.display()))?;
    let top = PathBuf::from(top.trim());
    let inside = ws
        .root
        .canonicalize()
        .ok()
        .and_then(|r| {
            let t = top.canonicalize().ok()?;
            r.strip_prefix(t).ok().map(Path::to_path_buf)
        })
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).map_err(|e| format!("create {}: {e}", into.display()))?;
    let reader = duct::cmd!("git", "archive", "--format=tar", commit)
        .dir(&top)
        .stderr_capture()
        .reader()
        .map_err(|e| format!("cannot run git archive: {e}"))?;
    tar::Archive::new(&reader)
        .unpack(into)
        .map_err(|e| format!("git archive {commit} in {}: {e}", top.display()))?;
    Ok(into.join(inside))
}

/// A prebuilt file (`path`) in the store beside the workspace's builds, hashed and checked
/// like them.
pub fn prebuilt(ws: &Workspace, file: &Path, bin: &str) -> Result<Built, BuildError> {
    let req = BuildRequest {
        package: bin.to_string(),
        bin: bin.to_string(),
        profile: "prebuilt".into(),
        target: None,
        rev: None,
    };
    build::stash(ws, &req, file).map_err(|message| BuildError {
        what: format!("{bin} ({})", file.display()),
        message,
    })
}
