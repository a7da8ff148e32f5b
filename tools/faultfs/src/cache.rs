//! The page cache of one file: writes not yet synced, as non-overlapping extents over what the
//! backing file holds, and the file's size as the service sees it. `fsync` writes the extents
//! through and empties the cache; dropping it is what a power cut does to unsynced data.

use std::collections::BTreeMap;

/// Most bytes one extent gathers from sequential writes.
const JOIN_MAX: usize = 1 << 20;

/// What a sync writes through: cut to `floor`, set the size, write the extents.
#[derive(Debug, Default)]
pub struct Flush {
    /// Truncate to this first.
    pub floor: Option<u64>,
    /// Then set this size.
    pub size: Option<u64>,
    /// Then write these bytes at their offsets.
    pub extents: BTreeMap<u64, Vec<u8>>,
}

/// Unsynced state of one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileCache {
    /// Written bytes by offset; extents may touch but never overlap.
    extents: BTreeMap<u64, Vec<u8>>,
    /// The size the service sees, when it differs from the backing file's (a write past its
    /// end, a truncate not yet synced).
    size: Option<u64>,
    /// The smallest size a truncate set since the last sync: backing bytes from here on are
    /// gone (zeros, or cached writes) even when the file grew again.
    floor: Option<u64>,
}

impl FileCache {
    /// Whether nothing is pending.
    pub fn is_clean(&self) -> bool {
        self.extents.is_empty() && self.size.is_none() && self.floor.is_none()
    }

    /// Bytes held.
    pub fn dirty_bytes(&self) -> u64 {
        self.extents.values().map(|v| v.len() as u64).sum()
    }

    /// The size the service sees, given the backing file's.
    pub fn size(&self, backing: u64) -> u64 {
        self.size.unwrap_or(backing)
    }

    /// Keeps `data` at `offset`; `backing` is the backing file's size now.
    pub fn write(&mut self, offset: u64, data: &[u8], backing: u64) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        let size = self.size(backing).max(end);
        // Fast path: a write that continues the extent before it (sequential writes), up to
        // `JOIN_MAX` per extent, so large writes never copy what they already hold again.
        if let Some((&start, last)) = self.extents.range_mut(..=offset).next_back() {
            let last_end = start + last.len() as u64;
            if last_end == offset
                && last.len() + data.len() <= JOIN_MAX
                && self.extents.range(offset..end).next().is_none()
            {
                let last = self.extents.get_mut(&start).expect("present");
                last.extend_from_slice(data);
                self.size = Some(size);
                return;
            }
        }
        self.cut(offset, end);
        self.extents.insert(offset, data.to_vec());
        self.size = Some(size);
    }

    /// Removes [from, to) from every extent, splitting the ones that straddle it.
    fn cut(&mut self, from: u64, to: u64) {
        let touched: Vec<u64> = self
            .extents
            .range(..to)
            .filter(|(s, v)| **s + v.len() as u64 > from)
            .map(|(s, _)| *s)
            .collect();
        for s in touched {
            let v = self.extents.remove(&s).expect("listed");
            let e = s + v.len() as u64;
            if s < from {
                self.extents.insert(s, v[..(from - s) as usize].to_vec());
            }
            if e > to {
                self.extents.insert(to, v[(to - s) as usize..].to_vec());
            }
        }
    }

    /// Sets the size (truncate or extend); bytes past it are forgotten.
    pub fn truncate(&mut self, size: u64) {
        self.cut(size, u64::MAX);
        self.size = Some(size);
        self.floor = Some(self.floor.map_or(size, |f| f.min(size)));
    }

    /// Grows the file to `size` with zeros (fallocate); never shrinks it.
    pub fn grow(&mut self, size: u64, backing: u64) {
        self.size = Some(self.size(backing).max(size));
    }

    /// Lays the cached bytes over `buf`, which holds what the backing file has from `offset`
    /// (zero-filled past its end), and shortens it to the size the service sees.
    pub fn overlay(&self, offset: u64, buf: &mut Vec<u8>, backing: u64) {
        let size = self.size(backing);
        let len = (buf.len() as u64).min(size.saturating_sub(offset)) as usize;
        buf.truncate(len);
        let end = offset + len as u64;
        if let Some(floor) = self.floor {
            let from = floor.saturating_sub(offset).min(len as u64) as usize;
            buf[from..].fill(0);
        }
        for (&s, v) in self.extents.range(..end) {
            let e = s + v.len() as u64;
            if e <= offset {
                continue;
            }
            let from = s.max(offset);
            let to = e.min(end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&v[(from - s) as usize..(to - s) as usize]);
        }
    }

    /// Takes what must reach the backing file at a sync, leaving the cache empty: the size
    /// to cut it to first (if a truncate did), the size to set (if any), and the extents.
    pub fn take(&mut self) -> Flush {
        Flush {
            floor: self.floor.take(),
            size: self.size.take(),
            extents: std::mem::take(&mut self.extents),
        }
    }

    /// Forgets everything (a power cut).
    #[cfg(test)]
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(c: &FileCache, backing: &[u8], offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        let have = backing.len().saturating_sub(offset as usize).min(len);
        buf[..have].copy_from_slice(&backing[offset as usize..offset as usize + have]);
        c.overlay(offset, &mut buf, backing.len() as u64);
        buf
    }

    #[test]
    fn writes_overlay_the_backing_file_until_taken() {
        let backing = b"hello world".to_vec();
        let mut c = FileCache::default();
        c.write(6, b"there", 11);
        c.write(11, b"!!", 11);
        assert_eq!(read(&c, &backing, 0, 100), b"hello there!!");
        assert_eq!(c.size(11), 13);
        assert_eq!(c.dirty_bytes(), 7);
        let f = c.take();
        assert_eq!(f.size, Some(13));
        assert_eq!(
            f.extents.len(),
            1,
            "sequential writes join: {:?}",
            f.extents
        );
        assert!(c.is_clean());
    }

    #[test]
    fn overlapping_writes_keep_the_newest_bytes() {
        let mut c = FileCache::default();
        c.write(0, b"aaaaaaaa", 0);
        c.write(2, b"bb", 8);
        c.write(6, b"cccc", 8);
        c.write(1, b"d", 10);
        assert_eq!(read(&c, b"", 0, 64), b"adbbaacccc");
        c.write(0, b"eeeeeeeeeeee", 10);
        assert_eq!(read(&c, b"", 0, 64), b"eeeeeeeeeeee");
        assert_eq!(c.extents.len(), 1);
    }

    #[test]
    fn truncate_forgets_bytes_past_the_size_and_extends_with_zeros() {
        let mut c = FileCache::default();
        c.write(0, b"abcdef", 0);
        c.truncate(3);
        assert_eq!(read(&c, b"", 0, 64), b"abc");
        c.truncate(5);
        assert_eq!(read(&c, b"", 0, 64), b"abc\0\0");
        // Truncating below the backing file's size hides its tail.
        let mut c = FileCache::default();
        c.truncate(2);
        assert_eq!(read(&c, b"xyz", 0, 64), b"xy");
        // Shrinking then growing shows zeros, not the backing file's old bytes.
        c.truncate(3);
        assert_eq!(read(&c, b"xyz", 0, 64), b"xy\0");
    }

    #[test]
    fn clear_is_a_power_cut() {
        let mut c = FileCache::default();
        c.write(0, b"lost", 0);
        c.clear();
        assert_eq!(read(&c, b"kept", 0, 64), b"kept");
        assert!(c.is_clean());
    }

    #[test]
    fn reads_inside_an_extent_and_across_its_edges() {
        let mut c = FileCache::default();
        c.write(4, b"WXYZ", 10);
        assert_eq!(read(&c, b"0123456789", 5, 2), b"XY");
        assert_eq!(read(&c, b"0123456789", 2, 4), b"23WX");
        assert_eq!(read(&c, b"0123456789", 7, 10), b"Z89");
    }
}
