//! The `.deb` files a package set needs on top of an image, downloaded on this machine by its own
//! apt from the Debian mirror the node image is bootstrapped from (the first `deb` source for
//! the suite in the host's apt configuration), resolved against the image's own dpkg database.
//! Nothing inside a container needs a network: the files are copied in and installed there.
//!
//! apt runs with a private state (lists, cache, the image's status file, a one-line source
//! list) in a temporary directory that is removed with the files, so the host's own apt state
//! is never touched and nothing naming the mirror is left anywhere.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::apt;
use super::error::{ImageError, Tail};
use super::progress::Progress;

/// Downloaded packages, in a temporary directory removed on drop.
#[derive(Debug)]
pub(crate) struct Debs {
    dir: tempfile::TempDir,
    /// The `.deb` files, sorted by name.
    pub(crate) files: Vec<PathBuf>,
}

impl Debs {
    /// Total size in bytes.
    pub(crate) fn bytes(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// Removes the directory now, reporting a failure (dropping removes it too, silently).
    pub(crate) fn remove(self) -> Result<(), ImageError> {
        let path = self.dir.path().to_path_buf();
        self.dir.close().map_err(|source| ImageError::Rootfs {
            action: "remove the downloaded packages in",
            path,
            source,
        })
    }
}

/// Downloads what installing `packages` (no recommends) needs on a system whose dpkg status
/// file is `status`, from debian `suite` of the host's mirror. A package apt can't find is
/// [`ImageError::NoSuchPackage`] naming it.
pub(crate) async fn download(
    status: &[u8],
    suite: &str,
    packages: &[String],
    work_dir: &Path,
    progress: &Progress,
) -> Result<Debs, ImageError> {
    let apt_get = find_apt_get()?;
    let source = apt::find_source(Path::new(apt::ETC_APT), suite)?;
    let dir = make_state(work_dir, status, suite, &source)?;
    let root = dir.path();
    let mut common: Vec<String> = vec!["-q".into()];
    for (key, value) in [
        ("Dir::Etc::SourceList", root.join("etc/sources.list")),
        ("Dir::Etc::SourceParts", root.join("etc/sources.list.d")),
        ("Dir::Etc::Preferences", root.join("etc/preferences")),
        ("Dir::Etc::PreferencesParts", root.join("etc/preferences.d")),
        ("Dir::State", root.join("state")),
        ("Dir::State::status", root.join("state/status")),
        ("Dir::Cache", root.join("cache")),
    ] {
        common.push("-o".into());
        common.push(format!("{key}={}", value.display()));
    }
    for option in [
        // Our own private directories: no lock to share, and no need to drop to `_apt` (which
        // could not write into a directory only we own).
        "Debug::NoLocking=1",
        "APT::Sandbox::User=root",
        "Acquire::Languages=none",
        "APT::Install-Recommends=0",
    ] {
        common.push("-o".into());
        common.push(option.into());
    }

    progress.step(&format!(
        "reading the package lists of debian {suite} (apt-get update, host side)..."
    ));
    let mut update = common.clone();
    update.push("update".into());
    let (ok, tail) = run(&apt_get, &update, progress).await?;
    let failed_fetch = |l: &String| {
        l.starts_with("E: ") || l.starts_with("Err:") || l.starts_with("W: Failed to fetch")
    };
    if !ok.success() || tail.iter().any(failed_fetch) {
        return Err(ImageError::Apt {
            step: "apt-get update".into(),
            status: ok.to_string(),
            tail,
        });
    }

    progress.step(&format!(
        "downloading {} and what they need...",
        packages.join(" ")
    ));
    let mut install = common;
    install.extend(["-y", "--download-only", "install"].map(String::from));
    install.extend(packages.iter().cloned());
    let (ok, tail) = run(&apt_get, &install, progress).await?;
    if !ok.success() {
        if let Some(package) = tail.iter().find_map(|l| missing_package(l)) {
            return Err(ImageError::NoSuchPackage {
                package,
                suite: suite.to_owned(),
            });
        }
        return Err(ImageError::Apt {
            step: "apt-get install --download-only".into(),
            status: ok.to_string(),
            tail,
        });
    }
    let archives = root.join("cache/archives");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&archives)
        .map_err(|source| ImageError::Rootfs {
            action: "list the downloaded packages in",
            path: archives.clone(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    files.sort();
    Ok(Debs { dir, files })
}

/// The private apt tree: an empty configuration but for one source line, the image's dpkg
/// status, empty lists and cache.
fn make_state(
    work_dir: &Path,
    status: &[u8],
    suite: &str,
    source: &apt::AptSource,
) -> Result<tempfile::TempDir, ImageError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Rootfs {
            action: "prepare apt's private state in",
            path,
            source,
        }
    };
    std::fs::create_dir_all(work_dir).map_err(io(work_dir))?;
    let dir = tempfile::Builder::new()
        .prefix("apt-")
        .tempdir_in(work_dir)
        .map_err(io(work_dir))?;
    let root = dir.path();
    for sub in [
        "etc/sources.list.d",
        "etc/preferences.d",
        "state/lists/partial",
        "cache/archives/partial",
    ] {
        std::fs::create_dir_all(root.join(sub)).map_err(io(root))?;
    }
    let signed = source
        .signed_by
        .as_ref()
        .filter(|k| k.is_file())
        .map(|k| format!("[signed-by={}] ", k.display()))
        .unwrap_or_default();
    let line = format!("deb {signed}{} {suite} main\n", source.uri);
    std::fs::write(root.join("etc/sources.list"), line).map_err(io(root))?;
    std::fs::write(root.join("state/status"), status).map_err(io(root))?;
    Ok(dir)
}

/// Runs apt-get, showing its lines as progress details; returns how it ended and the tail of
/// its output.
async fn run(
    apt_get: &str,
    args: &[String],
    progress: &Progress,
) -> Result<(std::process::ExitStatus, Vec<String>), ImageError> {
    let out = Command::new(apt_get)
        .args(args)
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ImageError::Spawn {
            program: apt_get.to_owned(),
            source,
        })?;
    let mut tail = Tail::default();
    for text in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(text);
        for line in text.lines() {
            progress.detail(line);
        }
        tail.push_text(&text);
    }
    Ok((out.status, tail.to_vec()))
}

/// The package an apt error line says it can't find, if it says so.
fn missing_package(line: &str) -> Option<String> {
    let line = line.trim();
    if let Some(name) = line.strip_prefix("E: Unable to locate package ") {
        return Some(name.trim().to_owned());
    }
    if let Some(rest) = line.strip_prefix("E: Package '") {
        if rest.contains("has no installation candidate") {
            return rest.split('\'').next().map(str::to_owned);
        }
    }
    if let Some(rest) = line.strip_prefix("E: Version '") {
        // E: Version '1.2' for 'name' was not found
        return rest.split('\'').nth(2).map(str::to_owned);
    }
    None
}

/// apt-get's path, or the one-line reason derived images can't be made here.
fn find_apt_get() -> Result<String, ImageError> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("apt-get"))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| Some(PathBuf::from("/usr/bin/apt-get")).filter(|p| p.is_file()))
        .map(|p| p.display().to_string())
        .ok_or(ImageError::NeedApt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_errors_name_the_missing_package() {
        assert_eq!(
            missing_package("E: Unable to locate package postgresqlx").as_deref(),
            Some("postgresqlx")
        );
        assert_eq!(
            missing_package("E: Package 'python' has no installation candidate").as_deref(),
            Some("python")
        );
        assert_eq!(
            missing_package("E: Version '9.9' for 'redis-server' was not found").as_deref(),
            Some("redis-server")
        );
        assert_eq!(
            missing_package("E: Some index files failed to download"),
            None
        );
    }
}
