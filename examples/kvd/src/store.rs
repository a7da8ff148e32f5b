//! The replicated state: an ordered log of writes (offset n is the n-th write, from 1), the
//! map it builds, the write-ahead file that survives a restart, and a condition variable that
//! wakes the primary's followers' streams when the log grows.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

struct State {
    entries: Vec<(String, String)>,
    map: HashMap<String, String>,
    wal: File,
}

/// The store of one node.
pub struct Store {
    state: Mutex<State>,
    grew: Condvar,
    meta: PathBuf,
    role: String,
    fsync: bool,
}

impl Store {
    /// Opens `<data>/wal`, replaying what it holds; with `fsync`, every append is synced
    /// (fdatasync) before it returns.
    pub fn open(data: &Path, role: &str, fsync: bool) -> std::io::Result<Store> {
        std::fs::create_dir_all(data)?;
        let path = data.join("wal");
        let mut entries = Vec::new();
        let mut map = HashMap::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                // A torn last line (killed mid-write) is dropped; the primary resends it.
                if let Some((k, v)) = line.split_once('\t') {
                    map.insert(k.to_string(), v.to_string());
                    entries.push((k.to_string(), v.to_string()));
                }
            }
        }
        let wal = OpenOptions::new().create(true).append(true).open(&path)?;
        let store = Store {
            state: Mutex::new(State { entries, map, wal }),
            grew: Condvar::new(),
            meta: data.join("kvd.meta"),
            role: role.to_string(),
            fsync,
        };
        let n = store.offset();
        store.write_meta(n);
        Ok(store)
    }

    /// How many writes the store holds.
    pub fn offset(&self) -> u64 {
        self.lock().entries.len() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a write (to the file first) and returns its offset.
    pub fn append(&self, key: &str, value: &str) -> std::io::Result<u64> {
        let n = {
            let mut st = self.lock();
            writeln!(st.wal, "{key}\t{value}")?;
            if self.fsync {
                st.wal.sync_data()?;
            }
            st.entries.push((key.to_string(), value.to_string()));
            st.map.insert(key.to_string(), value.to_string());
            st.entries.len() as u64
        };
        self.write_meta(n);
        self.grew.notify_all();
        Ok(n)
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().map.get(key).cloned()
    }

    /// Entries after `offset` (offsets `offset+1..`), waiting until there is at least one.
    pub fn wait_after(&self, offset: u64) -> Vec<(u64, String, String)> {
        let mut st = self.lock();
        while st.entries.len() as u64 <= offset {
            st = self.grew.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.entries
            .iter()
            .enumerate()
            .skip(offset as usize)
            .map(|(i, (k, v))| (i as u64 + 1, k.clone(), v.clone()))
            .collect()
    }

    /// `<data>/kvd.meta`: role and offset, for people and for `collect`.
    fn write_meta(&self, offset: u64) {
        let tmp = self.meta.with_extension("meta.tmp");
        if std::fs::write(&tmp, format!("role={}\noffset={offset}\n", self.role)).is_ok() {
            let _ = std::fs::rename(&tmp, &self.meta);
        }
    }
}
