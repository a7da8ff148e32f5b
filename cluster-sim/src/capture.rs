//! Bounded capture of a command's output: the first and last bytes of each stream stay in
//! memory, and a stream that outgrows them is spooled whole to a file, so a command that prints
//! gigabytes costs the test process a fixed amount of memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of each stream (stdout, stderr) kept in memory by default: half from its start, half
/// from its end.
pub const DEFAULT_OUTPUT_LIMIT: usize = 8 << 20;

/// Subdirectory of a spool directory that holds spooled streams.
const SPOOL_SUBDIR: &str = "exec-output";

/// How a command's output is kept. Backends read it from [`crate::ExecRequest::capture`];
/// [`crate::ClusterBuilder::output_limit`] and [`crate::ClusterBuilder::spool_dir`] fill it in
/// for every command of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutputCapture {
    /// Bytes of each stream kept in memory, the first half and the last half of it (`None`:
    /// [`DEFAULT_OUTPUT_LIMIT`]).
    pub limit: Option<usize>,
    /// Where a stream longer than the limit is written whole (under `exec-output/`). `None`:
    /// its middle is dropped, and the result says how long it was.
    pub spool_dir: Option<PathBuf>,
}

/// A stream that outgrew the in-memory limit: what was kept, and where the whole of it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncated {
    /// The stream's full length.
    pub total_bytes: u64,
    /// How many kept bytes are the stream's start: `bytes[..head_len]` is its head and
    /// `bytes[head_len..]` its last bytes; everything between was dropped from memory.
    pub head_len: usize,
    /// How many kept bytes are the stream's end.
    pub tail_len: usize,
    /// The file holding the whole stream, when a spool directory was set and writable.
    pub spool: Option<PathBuf>,
    /// Why the stream could not be spooled, when a spool directory was set but failed.
    pub spool_error: Option<String>,
}

impl Truncated {
    /// One line for messages: the full size, what was dropped, where the rest is.
    pub fn note(&self, stream: &str) -> String {
        let whole = match (&self.spool, &self.spool_error) {
            (Some(p), None) => format!("full output in {}", p.display()),
            (Some(p), Some(e)) => format!("spooled to {} but incomplete: {e}", p.display()),
            (None, Some(e)) => format!("not spooled: {e}"),
            (None, None) => "not spooled (no spool directory)".to_string(),
        };
        format!(
            "{stream} was {} bytes, only its first {} and last {} kept in memory; {whole}",
            self.total_bytes, self.head_len, self.tail_len,
        )
    }
}

/// Something a backend streams output into.
pub(crate) trait Sink: Send {
    /// Takes the next bytes of the stream.
    fn push(&mut self, data: &[u8]);
}

impl Sink for Vec<u8> {
    fn push(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }
}

/// The last `cap` bytes pushed.
struct Ring {
    buf: Vec<u8>,
    cap: usize,
    /// Where the oldest byte is, once `buf` is full.
    pos: usize,
}

impl Ring {
    fn push(&mut self, mut data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        if data.len() >= self.cap {
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - self.cap..]);
            self.pos = 0;
            return;
        }
        if self.buf.len() < self.cap {
            let n = (self.cap - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        while !data.is_empty() {
            let n = (self.cap - self.pos).min(data.len());
            self.buf[self.pos..self.pos + n].copy_from_slice(&data[..n]);
            self.pos = (self.pos + n) % self.cap;
            data = &data[n..];
        }
    }

    /// The bytes in stream order.
    fn contents(&self) -> (&[u8], &[u8]) {
        (&self.buf[self.pos..], &self.buf[..self.pos])
    }
}

enum Spool {
    /// No spool directory: the middle of a long stream is dropped.
    Off(Option<PathBuf>),
    /// Writing the whole stream here.
    Open(BufWriter<File>, PathBuf),
    /// Spooling failed (at `PathBuf`, when the file was made).
    Failed(String, Option<PathBuf>),
}

/// One stream of one command, captured with a bounded head and tail.
pub(crate) struct StreamCapture {
    head: Vec<u8>,
    head_max: usize,
    tail: Ring,
    total: u64,
    spool: Spool,
    /// `<node>.<stream>`, for the spool file's name.
    label: String,
}

/// Numbers spool files, so names never repeat within a process.
static SPOOL_SEQ: AtomicU64 = AtomicU64::new(0);

impl StreamCapture {
    /// A capture of `stream` (`stdout` or `stderr`) of a command on `node`.
    pub(crate) fn new(node: &str, stream: &str, opts: &OutputCapture) -> Self {
        let limit = opts.limit.unwrap_or(DEFAULT_OUTPUT_LIMIT);
        let head_max = limit / 2;
        Self {
            head: Vec::new(),
            head_max,
            tail: Ring {
                buf: Vec::new(),
                cap: limit - head_max,
                pos: 0,
            },
            total: 0,
            spool: Spool::Off(opts.spool_dir.clone()),
            label: format!("{node}.{stream}"),
        }
    }

    fn limit(&self) -> usize {
        self.head_max + self.tail.cap
    }

    /// Opens the spool file and writes everything kept so far (the whole stream, since nothing
    /// has been dropped yet when this runs).
    fn open_spool(&mut self, dir: &Path) {
        let dir = dir.join(SPOOL_SUBDIR);
        let opened = std::fs::create_dir_all(&dir).and_then(|()| loop {
            let n = SPOOL_SEQ.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{n:04}.{}", self.label));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(f) => break Ok((f, path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => break Err(e),
            }
        });
        self.spool = match opened {
            Ok((f, path)) => {
                let mut w = BufWriter::with_capacity(256 << 10, f);
                let (a, b) = self.tail.contents();
                let r = w
                    .write_all(&self.head)
                    .and_then(|()| w.write_all(a))
                    .and_then(|()| w.write_all(b));
                match r {
                    Ok(()) => Spool::Open(w, path),
                    Err(e) => Spool::Failed(e.to_string(), Some(path)),
                }
            }
            Err(e) => Spool::Failed(
                format!("cannot create a file in {}: {e}", dir.display()),
                None,
            ),
        };
    }

    /// The kept bytes, and how the stream was cut when it outgrew the limit.
    pub(crate) fn finish(mut self) -> (Vec<u8>, Option<Truncated>) {
        let truncated = self.total > self.limit() as u64;
        let (spool, spool_error) = match std::mem::replace(&mut self.spool, Spool::Off(None)) {
            Spool::Off(_) => (None, None),
            Spool::Open(mut w, path) => match w.flush() {
                Ok(()) => (Some(path), None),
                Err(e) => (Some(path), Some(e.to_string())),
            },
            Spool::Failed(e, path) => (path, Some(e)),
        };
        let head_len = self.head.len();
        let tail_len = self.tail.buf.len();
        let mut bytes = self.head;
        let (a, b) = self.tail.contents();
        bytes.reserve(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let note = truncated.then_some(Truncated {
            total_bytes: self.total,
            head_len,
            tail_len,
            spool,
            spool_error,
        });
        (bytes, note)
    }
}

impl Sink for StreamCapture {
    fn push(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let before = self.total;
        self.total += data.len() as u64;
        // The first byte past the limit: from here on the stream goes to the spool file too
        // (written from the kept bytes, which are still the whole stream at this point).
        if before <= self.limit() as u64 && self.total > self.limit() as u64 {
            if let Spool::Off(Some(dir)) = &self.spool {
                let dir = dir.clone();
                self.open_spool(&dir);
            }
        }
        // Spool writes are plain blocking writes: they land in the page cache, and only a
        // stream already past the limit pays for them.
        if let Spool::Open(w, path) = &mut self.spool {
            if let Err(e) = w.write_all(data) {
                self.spool = Spool::Failed(e.to_string(), Some(path.clone()));
            }
        }
        if self.head.len() < self.head_max {
            let n = (self.head_max - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        self.tail.push(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(limit: usize, dir: Option<&Path>, chunks: &[&[u8]]) -> (Vec<u8>, Option<Truncated>) {
        let mut c = StreamCapture::new(
            "n1",
            "stdout",
            &OutputCapture {
                limit: Some(limit),
                spool_dir: dir.map(Path::to_path_buf),
            },
        );
        for ch in chunks {
            c.push(ch);
        }
        c.finish()
    }

    #[test]
    fn within_the_limit_everything_is_kept() {
        let (b, t) = capture(8, None, &[b"abc", b"defgh"]);
        assert_eq!((b.as_slice(), t), (&b"abcdefgh"[..], None));
    }

    #[test]
    fn past_the_limit_head_and_tail_are_kept() {
        let (b, t) = capture(6, None, &[b"abcd", b"efghij", b"k", b"lmnopq"]);
        let t = t.expect("truncated");
        assert_eq!(
            (b.as_slice(), t.total_bytes, t.head_len),
            (&b"abcopq"[..], 17, 3)
        );
        assert!(t.spool.is_none());
        // One chunk bigger than everything.
        let (b, _) = capture(4, None, &[b"0123456789"]);
        assert_eq!(b, b"0189");
    }

    #[test]
    fn a_long_stream_is_spooled_whole() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<&[u8]> = data.chunks(333).collect();
        let (b, t) = capture(100, Some(dir.path()), &chunks);
        let t = t.expect("truncated");
        assert_eq!(b.len(), 100);
        assert_eq!(&b[..50], &data[..50]);
        assert_eq!(&b[50..], &data[data.len() - 50..]);
        let path = t.spool.clone().expect("spooled");
        assert!(path.starts_with(dir.path().join(SPOOL_SUBDIR)));
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert!(
            t.note("stdout").contains("10000 bytes"),
            "{}",
            t.note("stdout")
        );
    }

    #[test]
    fn a_short_stream_is_not_spooled() {
        let dir = tempfile::tempdir().unwrap();
        let (_, t) = capture(100, Some(dir.path()), &[b"short"]);
        assert!(t.is_none());
        assert!(!dir.path().join(SPOOL_SUBDIR).exists());
    }
}
