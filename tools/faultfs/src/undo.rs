//! What one file held at its last sync, for the parts changed since: writes go straight to the
//! backing file, and before a write or a truncate changes bytes that were synced, their old
//! content is saved here. A sync forgets it; a power cut puts it back (the size at the last
//! sync, then the saved bytes), so the service finds what it synced and nothing else.
//!
//! This keeps large writes as cheap as the backing directory's own: a write past the synced
//! size (appending, a new file) saves nothing, and an overwrite saves only the synced bytes it
//! covers the first time it covers them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The undo record of one file since its last sync.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Undo {
    /// The backing file's size at the last sync; `None` while nothing changed since.
    synced_size: Option<u64>,
    /// Synced bytes as they were, for the ranges below `synced_size` written or cut since;
    /// non-overlapping. Every other byte below `synced_size` is unchanged in the backing file.
    saved: BTreeMap<u64, Vec<u8>>,
    /// Bytes written since the last sync (an overwrite counts again): what a power cut drops.
    written: u64,
}

/// What putting a file back does: cut or extend it to `size`, then write `saved`.
#[derive(Debug, PartialEq, Eq)]
pub struct Restore {
    /// The size at the last sync.
    pub size: u64,
    /// The bytes to write back at their offsets.
    pub saved: BTreeMap<u64, Vec<u8>>,
}

impl Undo {
    /// Whether nothing changed since the last sync.
    pub fn is_clean(&self) -> bool {
        self.synced_size.is_none()
    }

    /// Bytes written since the last sync.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Bytes of old content held in memory.
    pub fn held(&self) -> u64 {
        self.saved.values().map(|v| v.len() as u64).sum()
    }

    /// The ranges of `[from, to)` below the synced size whose old content is not saved yet;
    /// `len` is the backing file's size now, taken as the synced size on the first change.
    fn gaps(&mut self, from: u64, to: u64, len: u64) -> Vec<(u64, u64)> {
        let synced = *self.synced_size.get_or_insert(len);
        let to = to.min(synced);
        let mut gaps = Vec::new();
        let mut at = from;
        if at >= to {
            return gaps;
        }
        // The extent that starts before `from` may cover its beginning.
        let first = self
            .saved
            .range(..=from)
            .next_back()
            .map(|(s, v)| (*s, v.len()));
        let later = self.saved.range(from + 1..to).map(|(s, v)| (*s, v.len()));
        for (s, n) in first.into_iter().chain(later) {
            let e = s + n as u64;
            if e <= at {
                continue;
            }
            if s > at {
                gaps.push((at, s.min(to)));
            }
            at = at.max(e);
            if at >= to {
                return gaps;
            }
        }
        gaps.push((at, to));
        gaps
    }

    /// Before bytes `[from, to)` of `file` change: saves the synced ones not saved yet, and
    /// returns the offsets of what it saved.
    pub fn before_change(&mut self, file: &File, from: u64, to: u64) -> io::Result<Vec<u64>> {
        let mut new = Vec::new();
        if self.synced_size.is_some_and(|synced| from >= synced) {
            // Past the synced size (appending): nothing to save, no need to ask the size.
            return Ok(new);
        }
        let len = file.metadata()?.len();
        for (s, e) in self.gaps(from, to, len) {
            // Synced bytes past the file's end now were cut by a truncate, which saved them.
            let e = e.min(len);
            if s >= e {
                continue;
            }
            let mut buf = vec![0; (e - s) as usize];
            file.read_exact_at(&mut buf, s)?;
            self.saved.insert(s, buf);
            new.push(s);
        }
        Ok(new)
    }

    /// The size at the last sync, once something changed since.
    pub fn synced_size(&self) -> Option<u64> {
        self.synced_size
    }

    /// The saved bytes by offset.
    pub fn saved(&self) -> &BTreeMap<u64, Vec<u8>> {
        &self.saved
    }

    /// The saved bytes at `offset`.
    pub fn saved_at(&self, offset: u64) -> &[u8] {
        self.saved.get(&offset).map_or(&[], Vec::as_slice)
    }

    /// Replaying a journal: the file changed since a sync that left it `size` bytes long.
    pub fn begin(&mut self, size: u64) {
        self.synced_size.get_or_insert(size);
    }

    /// Replaying a journal: the synced content at `offset`.
    pub fn put(&mut self, offset: u64, bytes: Vec<u8>) {
        self.saved.insert(offset, bytes);
    }

    /// Counts `n` bytes written.
    pub fn wrote(&mut self, n: u64) {
        self.written += n;
    }

    /// The file was synced: nothing to undo any more.
    pub fn forget(&mut self) {
        *self = Self::default();
    }

    /// Takes what puts the file back as it was at its last sync (`None` when clean).
    pub fn take(&mut self) -> Option<Restore> {
        let size = self.synced_size?;
        let saved = std::mem::take(&mut self.saved);
        self.forget();
        Some(Restore { size, saved })
    }
}

impl Restore {
    /// Puts `file` back: its size at the last sync, then the saved bytes.
    pub fn apply(self, file: &File) -> io::Result<()> {
        file.set_len(self.size)?;
        for (off, data) in self.saved {
            file.write_all_at(&data, off)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backing file holding `content`, as synced.
    fn file(content: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, content).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        (dir, f)
    }

    fn write(u: &mut Undo, f: &File, off: u64, data: &[u8]) {
        u.before_change(f, off, off + data.len() as u64).unwrap();
        f.write_all_at(data, off).unwrap();
        u.wrote(data.len() as u64);
    }

    fn truncate(u: &mut Undo, f: &File, size: u64) {
        u.before_change(f, size, u64::MAX).unwrap();
        f.set_len(size).unwrap();
    }

    fn content(f: &File) -> Vec<u8> {
        let mut buf = vec![0; f.metadata().unwrap().len() as usize];
        f.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    fn power_cut(u: &mut Undo, f: &File) {
        if let Some(r) = u.take() {
            r.apply(f).unwrap();
        }
        assert!(u.is_clean());
    }

    #[test]
    fn appends_save_nothing_and_a_power_cut_cuts_them_off() {
        let (_d, f) = file(b"hello");
        let mut u = Undo::default();
        write(&mut u, &f, 5, b" world");
        write(&mut u, &f, 11, b"!");
        assert_eq!(content(&f), b"hello world!");
        assert_eq!(u.held(), 0, "writes past the synced size save nothing");
        assert_eq!(u.written(), 7);
        power_cut(&mut u, &f);
        assert_eq!(content(&f), b"hello");
    }

    #[test]
    fn overwrites_save_the_synced_bytes_once() {
        let (_d, f) = file(b"0123456789");
        let mut u = Undo::default();
        write(&mut u, &f, 2, b"ab");
        write(&mut u, &f, 1, b"XYZW");
        write(&mut u, &f, 8, b"qrst");
        assert_eq!(content(&f), b"0XYZW567qrst");
        // 1..6 and 8..10 of the synced file: six bytes, each saved once.
        assert_eq!(u.held(), 6);
        power_cut(&mut u, &f);
        assert_eq!(content(&f), b"0123456789");
    }

    #[test]
    fn a_sync_makes_writes_stay() {
        let (_d, f) = file(b"abc");
        let mut u = Undo::default();
        write(&mut u, &f, 0, b"xyz123");
        u.forget();
        write(&mut u, &f, 6, b"lost");
        power_cut(&mut u, &f);
        assert_eq!(content(&f), b"xyz123");
    }

    #[test]
    fn a_truncate_then_growth_is_undone() {
        let (_d, f) = file(b"abcdef");
        let mut u = Undo::default();
        truncate(&mut u, &f, 2);
        write(&mut u, &f, 4, b"zz");
        assert_eq!(content(&f), b"ab\0\0zz");
        // Truncating again below an earlier cut saves only what it has not.
        truncate(&mut u, &f, 1);
        power_cut(&mut u, &f);
        assert_eq!(content(&f), b"abcdef");
    }

    #[test]
    fn a_new_file_goes_back_to_empty() {
        let (_d, f) = file(b"");
        let mut u = Undo::default();
        write(&mut u, &f, 0, b"written, never synced");
        power_cut(&mut u, &f);
        assert_eq!(content(&f), b"");
    }

    #[test]
    fn gaps_skip_what_is_saved() {
        let mut u = Undo {
            synced_size: Some(100),
            ..Undo::default()
        };
        u.saved.insert(10, vec![0; 10]);
        u.saved.insert(30, vec![0; 5]);
        assert_eq!(u.gaps(0, 50, 100), vec![(0, 10), (20, 30), (35, 50)]);
        assert_eq!(u.gaps(12, 18, 100), vec![]);
        assert_eq!(u.gaps(15, 32, 100), vec![(20, 30)]);
        assert_eq!(u.gaps(90, 200, 100), vec![(90, 100)]);
        assert_eq!(u.gaps(150, 200, 100), vec![]);
    }
}
