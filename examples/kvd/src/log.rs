//! The server's log: one line per event, to the log file named in the config and to stderr.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// An append-only log file shared by the server's threads.
pub struct Log {
    node: String,
    file: Mutex<File>,
}

impl Log {
    /// Opens (creating folders) the log file for appending.
    pub fn open(path: &Path, node: &str) -> std::io::Result<Log> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Log {
            node: node.to_string(),
            file: Mutex::new(file),
        })
    }

    /// Writes one line.
    pub fn line(&self, msg: impl AsRef<str>) {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let line = format!(
            "{}.{:03} {} {}\n",
            t.as_secs(),
            t.subsec_millis(),
            self.node,
            msg.as_ref()
        );
        eprint!("{line}");
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = f.write_all(line.as_bytes());
    }
}
