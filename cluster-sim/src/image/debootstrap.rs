//! The offline base image: debootstrap a minimal Debian rootfs (with the node's packages
//! already installed) from the host's own apt mirror into a temporary directory, slim it,
//! stream it as a tar into the engine (`POST /images/create?fromSrc=-`), and remove the
//! directory whatever happens, without ever descending into a mount debootstrap left behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use super::apt;
use super::error::{ImageError, Tail};
use super::progress::Progress;

/// debootstrap's usual place; found on PATH otherwise.
const DEBOOTSTRAP: &str = "/usr/sbin/debootstrap";

/// Bootstraps debian `suite` with `packages` from the mirror configured in `etc_apt`
/// (normally [`apt::ETC_APT`]) and imports it into the engine as `tag` (`repo:tag`). The
/// rootfs lives in a fresh directory under `work_dir` and is removed before this returns, on
/// success and on error alike (and on cancellation, by a drop guard).
pub(crate) async fn bootstrap_image(
    docker: &Docker,
    etc_apt: &Path,
    suite: &str,
    packages: &[String],
    tag: &str,
    work_dir: &Path,
    progress: &Progress,
) -> Result<(), ImageError> {
    let source = apt::find_source(etc_apt, suite)?;
    let rootfs = Rootfs::create(work_dir)?;
    let result = async {
        progress.step(&format!(
            "bootstrapping debian {suite} (debootstrap from {}, about a minute)...",
            source.uri
        ));
        run_debootstrap(suite, packages, &source, rootfs.path(), progress).await?;
        let root = rootfs.path().to_path_buf();
        tokio::task::spawn_blocking(move || slim(&root))
            .await
            .map_err(|join| ImageError::Rootfs {
                action: "slim the rootfs",
                path: rootfs.path().to_path_buf(),
                source: std::io::Error::other(join),
            })??;
        progress.step(&format!("importing the rootfs as {tag}..."));
        import(docker, rootfs.path(), tag, progress).await
    }
    .await;
    let removed = rootfs.remove().await;
    result?;
    removed
}

/// Runs debootstrap into `target`, showing its phases and keeping its output's tail.
async fn run_debootstrap(
    suite: &str,
    packages: &[String],
    source: &apt::AptSource,
    target: &Path,
    progress: &Progress,
) -> Result<(), ImageError> {
    let program = find_or_install_debootstrap(progress).await?;
    let program = program.as_str();
    let mut cmd = Command::new(program);
    cmd.arg("--variant=minbase");
    if !packages.is_empty() {
        cmd.arg(format!("--include={}", packages.join(",")));
    }
    if let Some(keyring) = source.signed_by.as_ref().filter(|k| k.is_file()) {
        cmd.arg(format!("--keyring={}", keyring.display()));
    }
    cmd.arg(suite)
        .arg(target)
        .arg(&source.uri)
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Cancelling the build kills debootstrap itself; dpkg and the maintainer scripts it
        // started fail as soon as the rootfs under them is removed. debootstrap stays in our
        // process group so that Ctrl-C at a terminal stops all of it at once.
        .kill_on_drop(true);

    let mut child = cmd.spawn().map_err(|source| ImageError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    let stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
    let stderr = child.stderr.take().map(|s| BufReader::new(s).lines());
    let mut tail = Tail::default();
    let mut on_line = |line: String| {
        if is_phase_line(&line) {
            progress.step(&format!("debootstrap: {line}"));
        } else {
            progress.detail(&line);
        }
        tail.push(&line);
    };
    if let (Some(mut out), Some(mut err)) = (stdout, stderr) {
        let (mut out_done, mut err_done) = (false, false);
        while !(out_done && err_done) {
            tokio::select! {
                line = out.next_line(), if !out_done => match line {
                    Ok(Some(line)) => on_line(line),
                    _ => out_done = true,
                },
                line = err.next_line(), if !err_done => match line {
                    Ok(Some(line)) => on_line(line),
                    _ => err_done = true,
                },
            }
        }
    }
    let status = child.wait().await.map_err(|source| ImageError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    if status.success() {
        return Ok(());
    }

    // debootstrap's own log holds the real reason (a dpkg or download error).
    let mut lines = tail.to_vec();
    if let Ok(log) = std::fs::read_to_string(target.join("debootstrap/debootstrap.log")) {
        let mut log_tail = Tail::default();
        log_tail.push_text(&log);
        lines.push(
            "--- debootstrap's log (debootstrap/debootstrap.log in the rootfs) ---".to_owned(),
        );
        lines.extend(log_tail.to_vec());
    }
    Err(ImageError::Debootstrap {
        suite: suite.to_owned(),
        mirror: source.uri.clone(),
        status: status.to_string(),
        tail: lines,
    })
}

/// debootstrap's path: where it is installed, else on PATH, else installed now with apt when we
/// are root (a fresh machine's first build does its own set-up). Where it can't be installed
/// from here, the error gives the exact command to run.
async fn find_or_install_debootstrap(progress: &Progress) -> Result<String, ImageError> {
    if let Some(p) = find_program("debootstrap") {
        return Ok(p);
    }
    let how = "sudo apt-get update && sudo apt-get install -y debootstrap";
    let Some(apt_get) = find_program("apt-get") else {
        return Err(ImageError::NeedDebootstrap {
            why: "it is not installed and this machine has no apt-get".into(),
            how: "install debootstrap with your package manager, or set CLUSTER_SIM_PULL=1 where a registry is reachable".into(),
        });
    };
    if !is_root() {
        return Err(ImageError::NeedDebootstrap {
            why: "it is not installed, and installing it needs root".into(),
            how: how.into(),
        });
    }
    progress.step("debootstrap is not installed: installing it with apt-get (we are root)...");
    let install = |update: bool| {
        let apt_get = apt_get.clone();
        async move {
            let mut cmd = Command::new(&apt_get);
            if update {
                cmd.args(["-q", "update"]);
            } else {
                cmd.args([
                    "-q",
                    "-y",
                    "-o",
                    "DPkg::Lock::Timeout=120",
                    "install",
                    "--no-install-recommends",
                    "debootstrap",
                ]);
            }
            let out = cmd
                .env("DEBIAN_FRONTEND", "noninteractive")
                .env("LC_ALL", "C")
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|source| ImageError::Spawn {
                    program: apt_get.clone(),
                    source,
                })?;
            let mut tail = Tail::default();
            tail.push_text(&String::from_utf8_lossy(&out.stdout));
            tail.push_text(&String::from_utf8_lossy(&out.stderr));
            Ok::<_, ImageError>((out.status, tail.to_vec()))
        }
    };
    // A fresh machine may have no package lists yet: update once, then try again.
    let (mut status, mut tail) = install(false).await?;
    if !status.success() {
        progress.step("apt-get could not find debootstrap; running apt-get update first...");
        let (updated, update_tail) = install(true).await?;
        if !updated.success() {
            tail = update_tail;
            status = updated;
        } else {
            (status, tail) = install(false).await?;
        }
    }
    if !status.success() {
        return Err(ImageError::NeedDebootstrap {
            why: format!(
                "installing it with apt-get failed ({status}): {}",
                tail.iter()
                    .rev()
                    .take(3)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            how: how.into(),
        });
    }
    find_program("debootstrap").ok_or_else(|| ImageError::NeedDebootstrap {
        why: "apt-get installed it but it is still not found".into(),
        how: how.into(),
    })
}

/// A program's path: its usual sbin place or the first match on PATH.
fn find_program(name: &str) -> Option<String> {
    let usual = [format!("/usr/sbin/{name}"), format!("/usr/bin/{name}")];
    if name == "debootstrap" && Path::new(DEBOOTSTRAP).is_file() {
        return Some(DEBOOTSTRAP.to_owned());
    }
    if let Some(p) = usual.iter().find(|p| Path::new(p).is_file()) {
        return Some(p.clone());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

/// Whether this process runs as root (effective uid 0), read from /proc without unsafe code.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Whether a debootstrap output line marks a phase (worth a log line) rather than one of the
/// hundreds of per-package lines.
fn is_phase_line(line: &str) -> bool {
    let Some(message) = line.strip_prefix("I: ") else {
        return line.starts_with("W: ") || line.starts_with("E: ");
    };
    const PER_PACKAGE: [&str; 5] = [
        "Retrieving ",
        "Validating ",
        "Extracting ",
        "Unpacking ",
        "Configuring ",
    ];
    match PER_PACKAGE
        .iter()
        .find_map(|verb| message.strip_prefix(verb))
    {
        Some(rest) => {
            rest.starts_with("the ")
                || rest.starts_with("Release")
                || rest.starts_with("InRelease")
                || rest.starts_with("Packages")
        }
        None => true,
    }
}

/// Removes what a container never needs from the rootfs: apt's downloaded packages and
/// lists, documentation (but copyright files), man pages, locales, logs, and the host's
/// resolv.conf and hostname that debootstrap copied in (the engine provides both).
fn slim(root: &Path) -> Result<(), ImageError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Rootfs {
            action: "slim the rootfs at",
            path,
            source,
        }
    };
    let keep_copyright = |p: &Path| p.file_name().is_some_and(|n| n == "copyright");
    for (rel, keep) in [
        ("var/cache/apt", None),
        ("var/lib/apt/lists", None),
        (
            "usr/share/doc",
            Some(&keep_copyright as &dyn Fn(&Path) -> bool),
        ),
        ("usr/share/man", None),
        ("usr/share/info", None),
        ("usr/share/locale", None),
        ("var/log", None),
    ] {
        if let Some(dir) = real_dir(root, rel) {
            clear_dir(&dir, keep).map_err(err(&dir))?;
        }
    }
    for rel in ["etc/resolv.conf", "etc/hostname"] {
        let path = root.join(rel);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            std::fs::write(&path, b"").map_err(err(&path))?;
        }
    }
    Ok(())
}

/// `root/rel` if every component of it is a real directory (never a symlink, which could
/// point out of the rootfs into the host).
fn real_dir(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for part in rel.split('/') {
        path.push(part);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_dir() {
            return None;
        }
    }
    Some(path)
}

/// Removes the regular files (and symlinks) below `dir`, keeping directories, so packages
/// that expect e.g. `/var/log/redis` still find it; `keep` spares matching files.
fn clear_dir(dir: &Path, keep: Option<&dyn Fn(&Path) -> bool>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            clear_dir(&path, keep)?;
        } else if !keep.is_some_and(|keep| keep(&path)) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Streams `root` as a tar into the engine as image `tag`.
async fn import(
    docker: &Docker,
    root: &Path,
    tag: &str,
    progress: &Progress,
) -> Result<(), ImageError> {
    let import_err = |message: String, tail: Vec<String>| ImageError::Import {
        tag: tag.to_owned(),
        message,
        tail,
    };
    // GNU tar keeps what an image needs and the tar crate would have to reimplement: device
    // nodes, hard links, file capabilities (xattrs, e.g. ping's cap_net_raw), numeric owners.
    // /dev, /proc and /sys are left empty: the engine mounts its own.
    let mut child = Command::new("tar")
        .args([
            "--create",
            "--file=-",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--one-file-system",
            "--sort=name",
            "--exclude=./dev/*",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "--directory",
        ])
        .arg(root)
        .arg(".")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ImageError::Spawn {
            program: "tar".to_owned(),
            source,
        })?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(import_err(
            "tar's output was not captured".to_owned(),
            Vec::new(),
        ));
    };
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let (repo, tag_part) = tag.split_once(':').unwrap_or((tag, "latest"));
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag_part)
        .message("cluster-sim: debian rootfs bootstrapped with debootstrap")
        // An imported rootfs has no configuration at all; give it what debian's own images
        // set, so both kinds of base behave alike.
        .changes(vec![
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "CMD [\"bash\"]".to_owned(),
        ])
        .build();
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::with_capacity(
        stdout,
        256 * 1024,
    ));
    let mut stream = docker.create_image(Some(options), Some(body), None);
    let mut engine_error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(status) = info.status {
                    progress.detail(&status);
                }
            }
            Err(e) => {
                engine_error = Some(e.to_string());
                break;
            }
        }
    }
    drop(stream);

    let status = child.wait().await;
    let mut tail = Tail::default();
    tail.push_text(&stderr_task.await.unwrap_or_default());
    if let Some(message) = engine_error {
        return Err(import_err(message, tail.to_vec()));
    }
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(import_err(
            format!("tar ended with {status}"),
            tail.to_vec(),
        )),
        Err(e) => Err(import_err(format!("waiting for tar: {e}"), tail.to_vec())),
    }
}

/// The prefix of temporary rootfs directories in the work dir.
const ROOTFS_PREFIX: &str = "rootfs-";

/// Removes rootfs directories an earlier build left in `work_dir` (one killed by Ctrl-C or
/// SIGKILL, which runs no destructor). Call it only while holding the build lock, so no
/// running build's rootfs is touched. Failures are logged, not returned: they must not stop
/// a build.
pub(crate) async fn remove_stale(work_dir: &Path, progress: &Progress) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    let stale: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(ROOTFS_PREFIX))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    for path in stale {
        progress.step(&format!(
            "removing {} left by an interrupted build",
            path.display()
        ));
        let path = path.canonicalize().unwrap_or(path);
        let shown = path.clone();
        let result = tokio::task::spawn_blocking(move || remove_rootfs(&path))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join)));
        if let Err(e) = result {
            tracing::warn!(path = %shown.display(), error = %e, "cannot remove stale rootfs");
        }
    }
}

/// A temporary rootfs directory, removed on [`Rootfs::remove`] or, failing that, on drop.
#[derive(Debug)]
struct Rootfs {
    /// Canonical, as `/proc/self/mountinfo` shows mount points.
    path: PathBuf,
    removed: bool,
}

impl Rootfs {
    fn create(parent: &Path) -> Result<Self, ImageError> {
        let err = |source| ImageError::Rootfs {
            action: "create a temporary rootfs directory in",
            path: parent.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(parent).map_err(err)?;
        let dir = tempfile::Builder::new()
            .prefix(ROOTFS_PREFIX)
            .tempdir_in(parent)
            .map_err(err)?
            .keep();
        let path = dir.canonicalize().unwrap_or(dir);
        Ok(Self {
            path,
            removed: false,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    async fn remove(mut self) -> Result<(), ImageError> {
        self.removed = true;
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || remove_rootfs(&path))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join)));
        result.map_err(|source| ImageError::Rootfs {
            action: "remove the temporary rootfs",
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = remove_rootfs(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove temporary rootfs");
            }
        }
    }
}

/// Unmounts whatever is still mounted below `path` (debootstrap mounts /proc and /sys in the
/// target and leaves them if killed), then removes it; refuses if a mount remains.
fn remove_rootfs(path: &Path) -> std::io::Result<()> {
    let mut mounts = mounts_below(path);
    // Deepest first.
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for mount in &mounts {
        let _ = std::process::Command::new("umount")
            .arg("--lazy")
            .arg(mount)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if let Some(left) = mounts_below(path).first() {
        return Err(std::io::Error::other(format!(
            "{} is still mounted; not removing the rootfs",
            left.display()
        )));
    }
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Mount points strictly below `path`, from `/proc/self/mountinfo` (none where that can't be
/// read).
fn mounts_below(path: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    parse_mount_points(&info)
        .into_iter()
        .filter(|m| m.starts_with(path) && m != path)
        .collect()
}

/// The mount point column (the fifth) of mountinfo text, with octal escapes (`\040` for a
/// space) decoded.
fn parse_mount_points(info: &str) -> Vec<PathBuf> {
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_octal(field)))
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = i + 3 < bytes.len()
            && bytes[i] == b'\\'
            && bytes[i + 1..=i + 3]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b));
        if octal {
            let value = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_lines_are_kept_per_package_lines_are_not() {
        for line in [
            "I: Retrieving InRelease ",
            "I: Resolving dependencies of required packages...",
            "I: Unpacking the base system...",
            "I: Configuring the base system...",
            "I: Base system installed successfully.",
            "W: Failure trying to run: chroot ...",
            "E: Couldn't find these debs: nope",
        ] {
            assert!(is_phase_line(line), "{line}");
        }
        for line in [
            "I: Retrieving libc6 2.36-9+deb12u10",
            "I: Validating libc6 2.36-9+deb12u10",
            "I: Extracting mawk...",
            "I: Unpacking etcd-server...",
            "I: Configuring redis-server...",
            "some other output",
        ] {
            assert!(!is_phase_line(line), "{line}");
        }
    }

    #[test]
    fn mountinfo_points_are_decoded() {
        let info = "\
22 1 8:1 / / rw,relatime - ext4 /dev/vda rw
97 22 0:5 / /tmp/cluster\\040sim/rootfs-x/proc rw - proc proc rw
98 22 0:6 / /tmp/cluster\\040sim/rootfs-x/sys rw - sysfs sysfs rw
";
        let points = parse_mount_points(info);
        assert_eq!(points.len(), 3);
        assert_eq!(points[1], Path::new("/tmp/cluster sim/rootfs-x/proc"));
        let root = Path::new("/tmp/cluster sim/rootfs-x");
        let below: Vec<_> = points
            .iter()
            .filter(|m| m.starts_with(root) && *m != root)
            .collect();
        assert_eq!(below.len(), 2);
    }

    #[test]
    fn slim_clears_files_keeps_dirs_and_copyright() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in [
            "usr/share/doc/tini",
            "var/log/redis",
            "var/cache/apt/archives",
            "etc",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("usr/share/doc/tini/copyright"), "MIT").expect("write");
        std::fs::write(root.join("usr/share/doc/tini/changelog.gz"), "x").expect("write");
        std::fs::write(root.join("var/log/dpkg.log"), "x").expect("write");
        std::fs::write(root.join("var/cache/apt/archives/tini.deb"), "x").expect("write");
        std::fs::write(root.join("etc/resolv.conf"), "nameserver 192.0.2.1\n").expect("write");

        slim(root).expect("slim");

        assert!(root.join("usr/share/doc/tini/copyright").exists());
        assert!(!root.join("usr/share/doc/tini/changelog.gz").exists());
        assert!(!root.join("var/log/dpkg.log").exists());
        assert!(root.join("var/log/redis").is_dir());
        assert!(!root.join("var/cache/apt/archives/tini.deb").exists());
        assert_eq!(
            std::fs::read(root.join("etc/resolv.conf")).expect("read"),
            b""
        );
    }

    #[test]
    fn slim_never_follows_a_symlinked_directory() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("precious"), "keep me").expect("write");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("var")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("var/log")).expect("symlink");

        slim(dir.path()).expect("slim");

        assert!(outside.path().join("precious").exists());
    }

    #[tokio::test]
    async fn stale_rootfs_dirs_are_removed_and_nothing_else() {
        let work = tempfile::tempdir().expect("tempdir");
        let stale = work.path().join("rootfs-AbC123");
        std::fs::create_dir_all(stale.join("etc")).expect("mkdir");
        std::fs::write(stale.join("etc/passwd"), "root:x:0:0").expect("write");
        std::fs::create_dir_all(work.path().join("runs/1")).expect("mkdir");
        std::fs::write(work.path().join("junit.xml"), "<testsuites/>").expect("write");

        remove_stale(work.path(), &Progress::new(true)).await;

        assert!(!stale.exists());
        assert!(work.path().join("runs/1").is_dir());
        assert!(work.path().join("junit.xml").is_file());
        // A work dir that does not exist yet is fine.
        remove_stale(&work.path().join("missing"), &Progress::new(true)).await;
    }

    /// A real debootstrap run against a mirror that refuses connections (loopback port 9):
    /// the error names the mirror and shows debootstrap's output, and no rootfs is left.
    #[tokio::test]
    async fn failing_debootstrap_reports_its_output_and_leaves_no_rootfs() {
        use std::os::unix::fs::MetadataExt;
        let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        if !is_root || !Path::new(DEBOOTSTRAP).exists() {
            eprintln!("skipped: needs root and {DEBOOTSTRAP}");
            return;
        }
        let etc_apt = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            etc_apt.path().join("sources.list"),
            "deb http://127.0.0.1:9/debian bookworm main\n",
        )
        .expect("write");
        let work = tempfile::tempdir().expect("tempdir");
        // Never contacted: debootstrap fails before the import.
        let docker = Docker::connect_with_defaults().expect("docker client");

        let err = bootstrap_image(
            &docker,
            etc_apt.path(),
            "bookworm",
            &["tini".to_owned()],
            "cluster-sim/base:never",
            work.path(),
            &Progress::new(true),
        )
        .await
        .expect_err("nothing listens on port 9");

        let text = err.to_string();
        eprintln!("reported error: {text}");
        assert!(matches!(err, ImageError::Debootstrap { .. }), "{text}");
        assert!(text.contains("http://127.0.0.1:9/debian"), "{text}");
        assert!(text.contains("--- last lines of output ---"), "{text}");
        let left: Vec<_> = std::fs::read_dir(work.path())
            .expect("read work dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn rootfs_is_removed_on_drop() {
        let parent = tempfile::tempdir().expect("tempdir");
        let path = {
            let rootfs = Rootfs::create(parent.path()).expect("create");
            std::fs::create_dir_all(rootfs.path().join("usr/bin")).expect("mkdir");
            std::os::unix::fs::symlink("/usr/bin", rootfs.path().join("bin")).expect("symlink");
            rootfs.path().to_path_buf()
        };
        assert!(!path.exists());
        assert!(Path::new("/usr/bin").exists());
    }
}
