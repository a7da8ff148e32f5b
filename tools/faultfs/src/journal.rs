//! The undo records on disk, beside the backing directory, so they outlive the daemon: docker
//! restarts a killed node's container and the fault filesystem with it, and a power cut after
//! that must still take back what was written before the kill and never synced (a process
//! crash keeps the kernel's page cache; a power cut does not).
//!
//! An append-only file of records, replayed when the daemon starts and emptied whenever no
//! file has anything to undo. It needs no fsync: it must survive the daemon, not the machine.
//! Paths are relative to the backing directory, in hex (any byte may be in a name).
//!
//! ```text
//! S <synced size> <path>          the file changed since its last sync, which left it this size
//! B <offset> <length> <path>      then <length> bytes: its synced content at <offset>
//! F <path>                        synced, removed or given up: nothing to undo
//! R <from> <to>                   renamed (a directory takes what is under it)
//! ```

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::undo::Undo;

/// The journal file of one mount.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Bytes written since it was last emptied or compacted.
    len: u64,
}

/// A journal this long is rewritten from what is live when that is under half of it.
const COMPACT_AT: u64 = 16 << 20;

fn enc(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        // The root has an empty path; `-` keeps the field.
        return "-".into();
    }
    hex::encode(p.as_os_str().as_bytes())
}

fn dec(s: &str) -> io::Result<PathBuf> {
    if s == "-" {
        return Ok(PathBuf::new());
    }
    let bytes = hex::decode(s).map_err(|e| bad(format!("path {s:?}: {e}")))?;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Moves `from` and everything under it to `to` in `map`.
pub fn rename_in<V>(map: &mut HashMap<PathBuf, V>, from: &Path, to: &Path) {
    let moved: Vec<PathBuf> = map
        .keys()
        .filter(|p| p.starts_with(from))
        .cloned()
        .collect();
    for p in moved {
        let v = map.remove(&p).expect("listed");
        let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
        let np = if rest.as_os_str().is_empty() {
            to.to_path_buf()
        } else {
            to.join(rest)
        };
        map.insert(np, v);
    }
}

impl Journal {
    /// Opens (or makes) the journal at `path` and replays it: what each file has to undo.
    pub fn open(path: &Path) -> io::Result<(Journal, HashMap<PathBuf, Undo>)> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let undos = replay(&file)?;
        let len = file.metadata()?.len();
        let j = Journal {
            file,
            path: path.to_path_buf(),
            len,
        };
        Ok((j, undos))
    }

    fn put(&mut self, line: String, bytes: &[u8]) -> io::Result<()> {
        let mut rec = line.into_bytes();
        rec.push(b'\n');
        rec.extend_from_slice(bytes);
        self.file.write_all(&rec)?;
        self.len += rec.len() as u64;
        Ok(())
    }

    /// `path` changed since its last sync, which left it `size` bytes long.
    pub fn began(&mut self, path: &Path, size: u64) -> io::Result<()> {
        self.put(format!("S {size} {}", enc(path)), &[])
    }

    /// The synced content of `path` at `offset`.
    pub fn saved(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.put(format!("B {offset} {} {}", bytes.len(), enc(path)), bytes)
    }

    /// Nothing to undo for `path` any more.
    pub fn forget(&mut self, path: &Path) -> io::Result<()> {
        self.put(format!("F {}", enc(path)), &[])
    }

    /// `from` is now `to`.
    pub fn renamed(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.put(format!("R {} {}", enc(from), enc(to)), &[])
    }

    /// Nothing to undo anywhere: the journal starts over.
    pub fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }

    /// Whether the journal has grown past what compaction is for and `live` (the bytes the
    /// undo records hold now) is under half of it: files synced one at a time while others
    /// stay dirty never empty it.
    pub fn wants_compaction(&self, live: u64) -> bool {
        self.len > COMPACT_AT && live < self.len / 2
    }

    /// Rewrites the journal with only what `undos` (by path) hold, atomically (a new file
    /// renamed over it).
    pub fn compact<'a>(
        &mut self,
        undos: impl Iterator<Item = (&'a Path, &'a Undo)>,
    ) -> io::Result<()> {
        let tmp = self.path.with_extension("journal.new");
        let mut fresh = Journal {
            file: OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .truncate(false)
                .open(&tmp)?,
            path: self.path.clone(),
            len: 0,
        };
        fresh.file.set_len(0)?;
        for (path, undo) in undos {
            let Some(size) = undo.synced_size() else {
                continue;
            };
            fresh.began(path, size)?;
            for (off, bytes) in undo.saved() {
                fresh.saved(path, *off, bytes)?;
            }
        }
        std::fs::rename(&tmp, &self.path)?;
        *self = fresh;
        Ok(())
    }
}

fn replay(file: &File) -> io::Result<HashMap<PathBuf, Undo>> {
    let mut undos: HashMap<PathBuf, Undo> = HashMap::new();
    let mut r = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(undos);
        }
        if !line.ends_with('\n') {
            // A record cut short when the daemon died: nothing after it was written.
            return Ok(undos);
        }
        let f: Vec<&str> = line.trim_end().split(' ').collect();
        let num = |s: &str| {
            s.parse::<u64>()
                .map_err(|e| bad(format!("journal record {line:?}: {e}")))
        };
        match f.as_slice() {
            ["S", size, p] => {
                undos.entry(dec(p)?).or_default().begin(num(size)?);
            }
            ["B", off, len, p] => {
                let mut bytes = vec![0; num(len)? as usize];
                if r.read_exact(&mut bytes).is_err() {
                    return Ok(undos);
                }
                undos.entry(dec(p)?).or_default().put(num(off)?, bytes);
            }
            ["F", p] => {
                undos.remove(&dec(p)?);
            }
            ["R", from, to] => {
                let (from, to) = (dec(from)?, dec(to)?);
                undos.remove(&to);
                rename_in(&mut undos, &from, &to);
            }
            _ => {
                return Err(bad(format!(
                    "journal record {line:?} is not one faultfs writes"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_gives_back_what_was_recorded_through_renames_and_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        {
            let (mut j, undos) = Journal::open(&path).unwrap();
            assert!(undos.is_empty());
            j.began(Path::new("a/f"), 10).unwrap();
            j.saved(Path::new("a/f"), 2, b"x\ny z").unwrap();
            j.began(Path::new("odd name\n"), 0).unwrap();
            j.began(Path::new("g"), 4).unwrap();
            j.forget(Path::new("g")).unwrap();
            j.renamed(Path::new("a"), Path::new("b")).unwrap();
        }
        let (_, undos) = Journal::open(&path).unwrap();
        let mut want = Undo::default();
        want.begin(10);
        want.put(2, b"x\ny z".to_vec());
        assert_eq!(undos.get(Path::new("b/f")), Some(&want));
        assert!(undos.contains_key(Path::new("odd name\n")));
        assert_eq!(undos.len(), 2, "{undos:?}");
    }

    #[test]
    fn a_record_cut_short_ends_the_replay_and_clear_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        {
            let (mut j, _) = Journal::open(&path).unwrap();
            j.began(Path::new("f"), 3).unwrap();
            j.saved(Path::new("f"), 0, b"abc").unwrap();
        }
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        let (mut j, undos) = Journal::open(&path).unwrap();
        assert_eq!(
            undos[Path::new("f")].held(),
            0,
            "the cut record is not half-read"
        );
        j.clear().unwrap();
        let (_, undos) = Journal::open(&path).unwrap();
        assert!(undos.is_empty());
    }

    #[test]
    fn compaction_keeps_only_what_is_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (mut j, _) = Journal::open(&path).unwrap();
        let big = vec![7u8; 1 << 20];
        for _ in 0..20 {
            j.began(Path::new("synced"), 0).unwrap();
            j.saved(Path::new("synced"), 0, &big).unwrap();
            j.forget(Path::new("synced")).unwrap();
        }
        let mut live = Undo::default();
        live.begin(5);
        live.put(1, b"ab".to_vec());
        assert!(j.wants_compaction(live.held()));
        j.compact([(Path::new("dirty"), &live)].into_iter())
            .unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 100);
        assert!(!j.wants_compaction(live.held()));
        j.began(Path::new("later"), 3).unwrap();
        let (_, undos) = Journal::open(&path).unwrap();
        assert_eq!(undos.get(Path::new("dirty")), Some(&live));
        assert!(
            undos.contains_key(Path::new("later")),
            "writes after compaction are kept"
        );
    }
}
