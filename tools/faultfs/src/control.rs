//! The commands around the filesystem: mounting directories (a daemon each, in its own process
//! group so that signals for the service never reach it), the control socket each daemon
//! listens on, sending it commands, and detaching mounts.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::fs::FaultFs;
use crate::rules::parse;
use crate::state::Shared;

/// A short stable name for a mount point (socket paths are limited to 108 bytes).
fn key(dir: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Whether `dir` is a mount point (of anything).
fn is_mount_point(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m == want)
}

/// Detaches a mount: directly as root, else through fusermount3 (or fusermount).
fn detach(dir: &Path) -> Result<(), String> {
    if rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH).is_ok() {
        return Ok(());
    }
    for tool in ["fusermount3", "fusermount"] {
        if let Ok(s) = Command::new(tool)
            .arg("-u")
            .arg("-z")
            .arg(dir)
            .stderr(Stdio::null())
            .status()
        {
            if s.success() {
                return Ok(());
            }
        }
    }
    Err(format!("cannot unmount {}", dir.display()))
}

fn ask(socket: &Path, line: &str) -> Result<String, String> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| format!("control socket {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| s.shutdown(std::net::Shutdown::Write))
        .map_err(|e| format!("control socket {}: {e}", socket.display()))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .map_err(|e| format!("control socket {}: {e}", socket.display()))?;
    Ok(reply.trim().to_string())
}

/// Mounts every directory, each by a daemon of its own; returns once all are up.
pub fn mount_all(dirs: &[PathBuf], control: &Path, max_held: u64) -> Result<(), String> {
    std::fs::create_dir_all(control)
        .map_err(|e| format!("control directory {}: {e}", control.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    for dir in dirs {
        if !dir.is_absolute() {
            return Err(format!("{} is not an absolute path", dir.display()));
        }
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Err(format!("{} names no directory", dir.display()));
        };
        let k = key(dir);
        let socket = control.join(format!("{k}.sock"));
        if is_mount_point(dir) {
            // Ours and alive (the service restarted): keep it, with its cache and rules.
            if ask(&socket, "status").is_ok_and(|r| r.starts_with("ok")) {
                continue;
            }
            detach(dir)?;
        }
        let backing = parent.join(format!(".{}.faultfs", name.to_string_lossy()));
        if !backing.exists() {
            if dir.exists() {
                std::fs::rename(dir, &backing)
            } else {
                std::fs::create_dir_all(&backing)
            }
            .map_err(|e| format!("move {} aside: {e}", dir.display()))?;
            // The mount point keeps the backing directory's owner and mode.
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            if let Ok(m) = std::fs::metadata(&backing) {
                let _ = std::os::unix::fs::chown(dir, Some(m.uid()), Some(m.gid()));
                let _ = std::fs::set_permissions(dir, m.permissions());
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(
            control.join(format!("{k}.mount")),
            dir.as_os_str().as_encoded_bytes(),
        )
        .map_err(|e| format!("control directory {}: {e}", control.display()))?;
        let log_path = control.join(format!("{k}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut child = Command::new(&exe)
            .arg("serve")
            .arg("--backing")
            .arg(&backing)
            .arg("--mount")
            .arg(dir)
            .arg("--socket")
            .arg(&socket)
            .arg("--max-held")
            .arg(max_held.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start {}: {e}", exe.display()))?;
        let mut line = String::new();
        let out = child.stdout.take().expect("piped");
        let _ = BufReader::new(out).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = child.wait();
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "mount {}: {}",
                dir.display(),
                said.lines()
                    .last()
                    .unwrap_or("the daemon ended without a word")
            ));
        }
    }
    Ok(())
}

/// Sends one line to the daemons; fails when one refuses it.
pub fn ctl(control: Option<&Path>, socket: Option<&Path>, line: &str) -> Result<(), String> {
    let sockets: Vec<PathBuf> = match (control, socket) {
        (_, Some(s)) => vec![s.to_path_buf()],
        (Some(c), None) => {
            let mut v: Vec<PathBuf> = std::fs::read_dir(c)
                .map_err(|e| format!("control directory {}: {e}", c.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect();
            v.sort();
            v
        }
        (None, None) => return Err("give --control-dir or --socket".into()),
    };
    if sockets.is_empty() {
        return Err(format!(
            "no fault filesystem is mounted (no socket in {})",
            control.map(|c| c.display().to_string()).unwrap_or_default()
        ));
    }
    let mut failed = None;
    for s in sockets {
        let mount = std::fs::read_to_string(s.with_extension("mount"))
            .unwrap_or_else(|_| s.display().to_string());
        let reply = ask(&s, line)?;
        println!("{mount}: {reply}");
        if !reply.starts_with("ok") {
            failed = Some(reply);
        }
    }
    match failed {
        Some(r) => Err(r.trim_start_matches("error ").to_string()),
        None => Ok(()),
    }
}

/// Detaches every mount a control directory lists.
pub fn unmount_all(control: &Path) -> Result<(), String> {
    let Ok(rd) = std::fs::read_dir(control) else {
        return Ok(());
    };
    for p in rd.flatten().map(|e| e.path()) {
        if p.extension().is_some_and(|x| x == "mount") {
            let dir = PathBuf::from(std::fs::read_to_string(&p).unwrap_or_default());
            if is_mount_point(&dir) {
                detach(&dir)?;
            }
        }
    }
    Ok(())
}

fn answer(conn: UnixStream, state: &Shared) {
    let Ok(mut w) = conn.try_clone() else { return };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match parse(&line) {
            Ok(cmd) => state.lock().control(cmd),
            Err(e) => format!("error {e}"),
        };
        if w.write_all(format!("{reply}\n").as_bytes()).is_err() {
            return;
        }
    }
}

/// The daemon: listens on the socket, mounts, says `ready` on stdout, serves until unmounted.
pub fn serve(
    backing: PathBuf,
    mount: PathBuf,
    socket: PathBuf,
    max_held: u64,
) -> Result<(), String> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ u64::from(std::process::id());
    // Beside the backing directory, so it outlives the daemon (a node's restart) as the data does.
    let journal = PathBuf::from(format!("{}.journal", backing.display()));
    let state = Shared::open(seed, backing.clone(), &journal)
        .map_err(|e| format!("journal {}: {e}", journal.display()))?;
    let _ = std::fs::remove_file(&socket);
    let listener =
        UnixListener::bind(&socket).map_err(|e| format!("socket {}: {e}", socket.display()))?;
    let shared = state.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            answer(conn, &shared);
        }
    });
    let fs = FaultFs {
        backing,
        mount: mount.clone(),
        state,
        max_held,
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("cluster-sim-faultfs".into()),
        fuser::MountOption::Subtype("cluster-sim-faultfs".into()),
        fuser::MountOption::DefaultPermissions,
    ];
    // Root mounts for every user of the node (the service may drop privileges).
    if rustix::process::geteuid().is_root() {
        config.acl = fuser::SessionACL::All;
    }
    let session = fuser::Session::new(fs, &mount, &config)
        .map_err(|e| format!("mount {}: {e}", mount.display()))?;
    println!("ready");
    let _ = std::io::stdout().flush();
    session
        .run()
        .map_err(|e| format!("serve {}: {e}", mount.display()))
}
