//! One image build at a time: a process-wide async mutex for tasks and tests in one process,
//! plus an advisory file lock (flock) in the system temp dir for separate processes, such as
//! nextest's one process per test.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use tokio::sync::{Mutex, MutexGuard};

use super::error::ImageError;
use super::progress::Progress;

/// Serialises builds within this process (across tokio runtimes too: each `#[tokio::test]`
/// has its own).
static PROCESS_LOCK: Mutex<()> = Mutex::const_new(());

/// Held while building; dropping it lets the next builder in.
#[derive(Debug)]
pub(crate) struct BuildLock {
    _process: MutexGuard<'static, ()>,
    /// Closing the file releases the flock.
    _file: File,
}

/// The lock file every cluster-sim process on this machine shares.
pub(crate) fn lock_path() -> PathBuf {
    std::env::temp_dir().join("cluster-sim-image-build.lock")
}

/// Waits for both locks, saying so on `progress` when another process holds the file lock.
pub(crate) async fn acquire(progress: &Progress) -> Result<BuildLock, ImageError> {
    let process = PROCESS_LOCK.lock().await;
    let path = lock_path();
    let lock_err = |source| ImageError::Lock {
        path: path.clone(),
        source,
    };
    let file = open_lock_file(&path).map_err(lock_err)?;
    let file = match fs4::FileExt::try_lock(&file) {
        Ok(()) => file,
        Err(fs4::TryLockError::WouldBlock) => {
            progress.step(&format!(
                "waiting for another process building images (lock {})",
                path.display()
            ));
            tokio::task::spawn_blocking(move || fs4::FileExt::lock(&file).map(|()| file))
                .await
                .map_err(|join| lock_err(std::io::Error::other(join)))?
                .map_err(lock_err)?
        }
        Err(fs4::TryLockError::Error(source)) => return Err(lock_err(source)),
    };
    Ok(BuildLock {
        _process: process,
        _file: file,
    })
}

/// Opens (creating) the lock file; read-only where another user created it, which is
/// enough for flock.
fn open_lock_file(path: &std::path::Path) -> std::io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => File::open(path),
        other => other,
    }
}
