//! What the filesystem and its control socket share: the inode table (our inode numbers to
//! paths under the backing directory), open files, each file's page cache, and the rules.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::cache::FileCache;
use crate::rules::{Action, Command, Op, Rng, Rule};

/// An open file.
#[derive(Debug)]
pub struct Handle {
    /// Whose.
    pub ino: u64,
    /// The backing file.
    pub file: Arc<File>,
}

/// Everything behind the one lock.
#[derive(Debug)]
pub struct State {
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    /// Unsynced writes by inode.
    pub caches: HashMap<u64, FileCache>,
    /// Open files by handle.
    pub handles: HashMap<u64, Handle>,
    next_fh: u64,
    rules: Vec<Rule>,
    rng: Rng,
    /// Unsynced bytes in all.
    pub dirty: u64,
}

/// What the rules say about one operation.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Wait this long first.
    pub delay: Duration,
    /// Then fail with this errno.
    pub errno: Option<i32>,
    /// Flip a bit in what is read.
    pub flip: bool,
    /// Keep only the first half of this write.
    pub tear: bool,
}

/// The shared state.
#[derive(Debug, Clone)]
pub struct Shared(Arc<Mutex<State>>);

impl Shared {
    /// An empty table whose root is inode 1.
    pub fn new(seed: u64) -> Self {
        let mut paths = HashMap::new();
        paths.insert(1, PathBuf::new());
        let mut inos = HashMap::new();
        inos.insert(PathBuf::new(), 1);
        Shared(Arc::new(Mutex::new(State {
            paths,
            inos,
            next_ino: 2,
            caches: HashMap::new(),
            handles: HashMap::new(),
            next_fh: 1,
            rules: Vec::new(),
            rng: Rng::new(seed),
            dirty: 0,
        })))
    }

    /// The lock (a panic elsewhere does not poison the filesystem).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The path of an inode, relative to the roots.
    pub fn path(&self, ino: u64) -> Option<PathBuf> {
        self.paths.get(&ino).cloned()
    }

    /// The inode of a path, made on first sight.
    pub fn intern(&mut self, rel: &Path) -> u64 {
        if let Some(i) = self.inos.get(rel) {
            return *i;
        }
        let i = self.next_ino;
        self.next_ino += 1;
        self.inos.insert(rel.to_path_buf(), i);
        self.paths.insert(i, rel.to_path_buf());
        i
    }

    /// A path is gone (unlink, rmdir): its inode keeps its cache while files are open.
    pub fn forget_path(&mut self, rel: &Path) {
        if let Some(i) = self.inos.remove(rel) {
            self.paths.remove(&i);
            if !self.handles.values().any(|h| h.ino == i) {
                self.drop_cache(i);
            }
        }
    }

    /// Moves a path and everything under it.
    pub fn rename(&mut self, from: &Path, to: &Path) {
        self.forget_path(to);
        let moved: Vec<(PathBuf, u64)> = self
            .inos
            .iter()
            .filter(|(p, _)| p.starts_with(from))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, i) in moved {
            self.inos.remove(&p);
            let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
            let np = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            self.inos.insert(np.clone(), i);
            self.paths.insert(i, np);
        }
    }

    /// Registers an open file.
    pub fn open(&mut self, ino: u64, file: File) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(
            fh,
            Handle {
                ino,
                file: Arc::new(file),
            },
        );
        fh
    }

    /// Closes one; an unlinked file's cache goes with its last handle.
    pub fn release(&mut self, fh: u64) {
        if let Some(h) = self.handles.remove(&fh) {
            let open = self.handles.values().any(|x| x.ino == h.ino);
            if !open && !self.paths.contains_key(&h.ino) {
                self.drop_cache(h.ino);
            }
        }
    }

    fn drop_cache(&mut self, ino: u64) {
        if let Some(c) = self.caches.remove(&ino) {
            self.dirty = self.dirty.saturating_sub(c.dirty_bytes());
        }
    }

    /// Judges one operation on `seen` (the path as the service sees it) by the rules; a torn
    /// write spends its rule on the first write of data (`data`), not on a creation.
    pub fn judge(&mut self, op: Op, seen: &Path, data: bool) -> Verdict {
        let mut v = Verdict::default();
        let mut spent = None;
        for (i, r) in self.rules.iter().enumerate() {
            if !r.matches(op, seen) {
                continue;
            }
            match r.action {
                Action::Delay(d) => v.delay += d,
                Action::Error { errno, p } => {
                    if v.errno.is_none() && self.rng.chance(p) {
                        v.errno = Some(errno);
                    }
                }
                Action::FlipRead => v.flip = true,
                Action::TornWrite => {
                    if data && spent.is_none() {
                        v.tear = true;
                        spent = Some(i);
                    }
                }
            }
        }
        if let Some(i) = spent {
            self.rules.remove(i);
        }
        v
    }

    /// A random number (which bit to flip).
    pub fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Forgets every unsynced write; returns (files, bytes).
    pub fn drop_unsynced(&mut self) -> (usize, u64) {
        let files = self.caches.values().filter(|c| !c.is_clean()).count();
        let bytes = self.dirty;
        self.caches.clear();
        self.dirty = 0;
        (files, bytes)
    }

    /// Runs one control command; the reply line.
    pub fn control(&mut self, cmd: Command) -> String {
        match cmd {
            Command::Add(r) => {
                let what = format!("{:?} {:?} {}", r.op, r.action, r.glob);
                self.rules.push(r);
                format!("ok rule {what}")
            }
            Command::Drop => {
                let (files, bytes) = self.drop_unsynced();
                format!("ok dropped {bytes} unsynced bytes of {files} files")
            }
            Command::Heal => {
                let n = self.rules.len();
                self.rules.clear();
                format!("ok removed {n} rules")
            }
            Command::Status => {
                let rules: Vec<String> = self
                    .rules
                    .iter()
                    .map(|r| format!("{:?} {:?} {}", r.op, r.action, r.glob))
                    .collect();
                format!(
                    "ok unsynced {} bytes in {} files; rules: [{}]",
                    self.dirty,
                    self.caches.values().filter(|c| !c.is_clean()).count(),
                    rules.join("; ")
                )
            }
        }
    }
}

/// Writes a file's cached bytes through to its backing file (no sync); the cache is emptied.
pub fn write_back(file: &File, cache: &mut FileCache) -> std::io::Result<u64> {
    let flush = cache.take();
    if let Some(floor) = flush.floor {
        if file.metadata()?.len() > floor {
            file.set_len(floor)?;
        }
    }
    if let Some(size) = flush.size {
        if file.metadata()?.len() != size {
            file.set_len(size)?;
        }
    }
    let mut n = 0;
    for (off, data) in flush.extents {
        file.write_all_at(&data, off)?;
        n += data.len() as u64;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse;

    #[test]
    fn renames_move_every_path_below() {
        let s = Shared::new(1);
        let mut st = s.lock();
        let a = st.intern(Path::new("d"));
        let b = st.intern(Path::new("d/x/y"));
        st.rename(Path::new("d"), Path::new("e"));
        assert_eq!(st.path(a), Some(PathBuf::from("e")));
        assert_eq!(st.path(b), Some(PathBuf::from("e/x/y")));
        assert_eq!(st.intern(Path::new("e/x/y")), b);
    }

    #[test]
    fn a_torn_write_is_spent_once_and_errors_follow_probability() {
        let s = Shared::new(1);
        let mut st = s.lock();
        for line in ["corrupt torn-write /m/f", "error fsync EIO 1 /m"] {
            st.control(parse(line).unwrap());
        }
        // Creating the file does not spend it; its first write does.
        assert!(!st.judge(Op::Write, Path::new("/m/f"), false).tear);
        assert!(st.judge(Op::Write, Path::new("/m/f"), true).tear);
        assert!(!st.judge(Op::Write, Path::new("/m/f"), true).tear);
        assert_eq!(st.judge(Op::Fsync, Path::new("/m/f"), false).errno, Some(5));
        assert_eq!(st.judge(Op::Read, Path::new("/m/f"), true).errno, None);
        st.control(parse("heal").unwrap());
        assert_eq!(st.judge(Op::Fsync, Path::new("/m/f"), false).errno, None);
    }

    #[test]
    fn write_back_applies_the_size_then_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        let mut c = FileCache::default();
        c.truncate(4);
        c.write(2, b"AB", 4);
        c.write(4, b"CD", 4);
        assert_eq!(write_back(&f, &mut c).unwrap(), 4);
        assert_eq!(std::fs::read(&p).unwrap(), b"01ABCD");
        assert!(c.is_clean());
        c.truncate(1);
        c.truncate(3);
        write_back(&f, &mut c).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"0\0\0");
    }
}
