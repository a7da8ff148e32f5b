//! What the filesystem and its control socket share: the inode table (our inode numbers to
//! paths under the backing directory), open files, each file's undo record since its last sync,
//! and the rules.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::journal::{rename_in, Journal};
use crate::rules::{Action, Command, Op, Rng, Rule};
use crate::undo::Undo;

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
    /// What each file changed since its last sync, by inode.
    pub undos: HashMap<u64, Undo>,
    /// Open files by handle.
    pub handles: HashMap<u64, Handle>,
    next_fh: u64,
    rules: Vec<Rule>,
    rng: Rng,
    /// The backing directory (a power cut puts its files back).
    backing: PathBuf,
    /// The undo records on disk (none in unit tests of the table alone).
    journal: Option<Journal>,
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
    /// An empty table over `backing`, whose root is inode 1.
    pub fn new(seed: u64, backing: PathBuf) -> Self {
        let mut paths = HashMap::new();
        paths.insert(1, PathBuf::new());
        let mut inos = HashMap::new();
        inos.insert(PathBuf::new(), 1);
        Shared(Arc::new(Mutex::new(State {
            paths,
            inos,
            next_ino: 2,
            undos: HashMap::new(),
            handles: HashMap::new(),
            next_fh: 1,
            rules: Vec::new(),
            rng: Rng::new(seed),
            backing,
            journal: None,
        })))
    }

    /// The state of a mount over `backing` whose undo records are kept in `journal`: what the
    /// journal holds from an earlier daemon (killed with its node) is undone by a power cut.
    pub fn open(seed: u64, backing: PathBuf, journal: &Path) -> std::io::Result<Self> {
        let (journal, undos) = Journal::open(journal)?;
        let shared = Shared::new(seed, backing);
        {
            let mut st = shared.lock();
            for (rel, undo) in undos {
                let ino = st.intern(&rel);
                st.undos.insert(ino, undo);
            }
            st.journal = Some(journal);
        }
        Ok(shared)
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

    /// A path is gone (unlink, rmdir): what it changed needs no undoing once no file is open.
    pub fn forget_path(&mut self, rel: &Path) {
        if let Some(i) = self.inos.remove(rel) {
            self.paths.remove(&i);
            if self.undos.get(&i).is_some_and(|u| !u.is_clean()) {
                // Gone for good after a crash: nothing to put back under that name.
                self.journal(|j| j.forget(rel));
            }
            if !self.handles.values().any(|h| h.ino == i) {
                self.undos.remove(&i);
            }
        }
    }

    /// Moves a path and everything under it.
    pub fn rename(&mut self, from: &Path, to: &Path) {
        self.forget_path(to);
        if self.undos.values().any(|u| !u.is_clean()) {
            self.journal(|j| j.renamed(from, to));
        }
        rename_in(&mut self.inos, from, to);
        for (p, i) in &self.inos {
            if p.starts_with(to) {
                self.paths.insert(*i, p.clone());
            }
        }
    }

    /// Writes to the journal; a failure is the daemon's to log (the operation it records has
    /// happened, and the service must not see our own bookkeeping fail).
    fn journal(&mut self, f: impl FnOnce(&mut Journal) -> std::io::Result<()>) {
        if let Some(j) = &mut self.journal {
            if let Err(e) = f(j) {
                eprintln!("cluster-sim-faultfs: journal: {e}");
            }
        }
    }

    /// Before bytes `[from, to)` of `ino` change: their synced content is saved, in memory and
    /// in the journal.
    pub fn before_change(
        &mut self,
        ino: u64,
        file: &File,
        from: u64,
        to: u64,
    ) -> std::io::Result<()> {
        let undo = self.undos.entry(ino).or_default();
        let began = undo.is_clean();
        let new = undo.before_change(file, from, to)?;
        if let (Some(j), Some(rel)) = (&mut self.journal, self.paths.get(&ino)) {
            if began {
                j.began(rel, undo.synced_size().unwrap_or(0))?;
            }
            for off in new {
                j.saved(rel, off, undo.saved_at(off))?;
            }
        }
        Ok(())
    }

    /// Counts `n` bytes written to `ino`.
    pub fn wrote(&mut self, ino: u64, n: u64) {
        self.undos.entry(ino).or_default().wrote(n);
    }

    /// `ino` was synced (or its writes can no longer be undone): nothing to undo.
    pub fn forget(&mut self, ino: u64) {
        if self.undos.remove(&ino).is_some_and(|u| !u.is_clean()) {
            if let Some(rel) = self.paths.get(&ino).cloned() {
                self.journal(|j| j.forget(&rel));
            }
        }
        if self.undos.values().all(Undo::is_clean) {
            self.journal(Journal::clear);
        } else if self
            .journal
            .as_ref()
            .is_some_and(|j| j.wants_compaction(self.held()))
        {
            let live: Vec<(PathBuf, Undo)> = self
                .undos
                .iter()
                .filter(|(_, u)| !u.is_clean())
                .filter_map(|(i, u)| Some((self.paths.get(i)?.clone(), u.clone())))
                .collect();
            self.journal(|j| j.compact(live.iter().map(|(p, u)| (p.as_path(), u))));
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

    /// Closes one; an unlinked file's undo record goes with its last handle.
    pub fn release(&mut self, fh: u64) {
        if let Some(h) = self.handles.remove(&fh) {
            let open = self.handles.values().any(|x| x.ino == h.ino);
            if !open && !self.paths.contains_key(&h.ino) {
                self.undos.remove(&h.ino);
            }
        }
    }

    /// An open backing file of `ino`, or the one its path names, for reading and writing.
    fn file_for(&self, ino: u64) -> Option<Arc<File>> {
        if let Some(h) = self.handles.values().find(|h| h.ino == ino) {
            return Some(h.file.clone());
        }
        let rel = self.paths.get(&ino)?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.backing.join(rel))
            .ok()
            .map(Arc::new)
    }

    /// Bytes written since their files' last syncs, and how many files.
    pub fn unsynced(&self) -> (u64, usize) {
        let dirty = self.undos.values().filter(|u| !u.is_clean());
        (dirty.clone().map(Undo::written).sum(), dirty.count())
    }

    /// Bytes of old content held to undo writes.
    pub fn held(&self) -> u64 {
        self.undos.values().map(Undo::held).sum()
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

    /// Undoes every write not yet synced (a power cut): each file gets back its size and
    /// bytes of its last sync. Returns (files, bytes written since) or the first file that
    /// could not be put back.
    pub fn drop_unsynced(&mut self) -> Result<(usize, u64), String> {
        let (bytes, files) = self.unsynced();
        let inos: Vec<u64> = self.undos.keys().copied().collect();
        for ino in inos {
            let Some(restore) = self.undos.get_mut(&ino).and_then(Undo::take) else {
                continue;
            };
            // A file with no name left is gone for good after a crash: nothing to put back.
            let Some(file) = self.file_for(ino) else {
                continue;
            };
            restore.apply(&file).map_err(|e| {
                let path = self.paths.get(&ino).cloned().unwrap_or_default();
                format!("put back {}: {e}", self.backing.join(path).display())
            })?;
        }
        self.undos.clear();
        self.journal(Journal::clear);
        Ok((files, bytes))
    }

    /// Runs one control command; the reply line.
    pub fn control(&mut self, cmd: Command) -> String {
        match cmd {
            Command::Add(r) => {
                let what = format!("{:?} {:?} {}", r.op, r.action, r.glob);
                self.rules.push(r);
                format!("ok rule {what}")
            }
            Command::Drop => match self.drop_unsynced() {
                Ok((files, bytes)) => format!("ok dropped {bytes} unsynced bytes of {files} files"),
                Err(e) => format!("error {e}"),
            },
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
                let (bytes, files) = self.unsynced();
                format!(
                    "ok unsynced {bytes} bytes in {files} files; rules: [{}]",
                    rules.join("; ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;
    use crate::rules::parse;

    #[test]
    fn renames_move_every_path_below() {
        let s = Shared::new(1, PathBuf::new());
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
        let s = Shared::new(1, PathBuf::new());
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

    /// Writes through `st` as the filesystem does: save, write, count.
    fn write(st: &mut State, rel: &str, data: &[u8]) -> u64 {
        let ino = st.intern(Path::new(rel));
        let file = st.file_for(ino).unwrap();
        st.before_change(ino, &file, 0, data.len() as u64).unwrap();
        file.write_all_at(data, 0).unwrap();
        st.wrote(ino, data.len() as u64);
        ino
    }

    #[test]
    fn a_power_cut_after_the_daemon_restarted_still_takes_unsynced_writes_back() {
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("b");
        std::fs::create_dir(&backing).unwrap();
        let journal = dir.path().join("b.journal");
        std::fs::write(backing.join("f"), b"synced").unwrap();
        std::fs::write(backing.join("s"), b"").unwrap();
        {
            let s = Shared::open(1, backing.clone(), &journal).unwrap();
            let mut st = s.lock();
            write(&mut st, "f", b"SYN");
            let ino = write(&mut st, "s", b"synced later");
            st.forget(ino);
            write(&mut st, "f", b"unsynced, longer");
        }
        // The node restarted: a new daemon reads the journal.
        let s = Shared::open(2, backing.clone(), &journal).unwrap();
        let mut st = s.lock();
        assert_eq!(st.unsynced().1, 1, "one file to undo");
        st.drop_unsynced().unwrap();
        assert_eq!(std::fs::read(backing.join("f")).unwrap(), b"synced");
        assert_eq!(std::fs::read(backing.join("s")).unwrap(), b"synced later");
        assert_eq!(
            std::fs::metadata(&journal).unwrap().len(),
            0,
            "journal emptied"
        );
    }

    #[test]
    fn a_power_cut_puts_files_back_by_their_names_now() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("synced"), b"old").unwrap();
        std::fs::write(d.join("tmp"), b"").unwrap();
        std::fs::write(d.join("gone"), b"").unwrap();
        let s = Shared::new(1, d.to_path_buf());
        let mut st = s.lock();
        write(&mut st, "synced", b"new!");
        // A stamp written to a temporary file and renamed over without a sync comes back
        // empty, as on a real disk without a barrier.
        write(&mut st, "tmp", b"v2");
        std::fs::rename(d.join("tmp"), d.join("stamp")).unwrap();
        st.rename(Path::new("tmp"), Path::new("stamp"));
        write(&mut st, "gone", b"x");
        std::fs::remove_file(d.join("gone")).unwrap();
        st.forget_path(Path::new("gone"));
        assert_eq!(st.unsynced(), (6, 2));
        assert_eq!(st.drop_unsynced(), Ok((2, 6)));
        assert_eq!(std::fs::read(d.join("synced")).unwrap(), b"old");
        assert_eq!(std::fs::read(d.join("stamp")).unwrap(), b"");
        assert!(!d.join("gone").exists());
        assert_eq!(st.unsynced(), (0, 0));
    }
}
