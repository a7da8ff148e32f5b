//! The FUSE filesystem: a passthrough of a backing directory whose file writes can be undone
//! until the service syncs them (fsync, fdatasync, `O_SYNC`/`O_DSYNC` writes), and whose
//! operations the rules may delay, fail or corrupt. Writes reach the backing file at once;
//! before they change synced bytes the old bytes are saved (`undo.rs`), so a power cut puts
//! back exactly what was synced. Creations, renames and removals are kept, as in LazyFS.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};

use crate::attr::{attr, errno};
use crate::rules::Op;
use crate::state::Shared;

const TTL: Duration = Duration::from_secs(1);

/// The filesystem.
pub struct FaultFs {
    /// Where the data really is.
    pub backing: PathBuf,
    /// Where the service sees it (for rule paths).
    pub mount: PathBuf,
    /// Shared with the control socket.
    pub state: Shared,
    /// Bytes of old content the undo records may hold; past it a writer's file keeps its
    /// writes (they can no longer be undone), as a kernel writes pages back under memory
    /// pressure.
    pub max_held: u64,
}

impl FaultFs {
    fn real(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn seen(&self, rel: &Path) -> PathBuf {
        self.mount.join(rel)
    }

    fn rel(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.state.lock().path(ino.0).ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.rel(parent)?.join(name))
    }

    /// Applies the rules to `op` on `rel`: waits, then fails or says how to corrupt.
    fn judge(&self, op: Op, rel: &Path) -> Result<crate::state::Verdict, Errno> {
        self.judge_data(op, rel, false)
    }

    /// [`FaultFs::judge`] for an operation on file data (a read or a write).
    fn judge_data(&self, op: Op, rel: &Path, data: bool) -> Result<crate::state::Verdict, Errno> {
        let v = self.state.lock().judge(op, &self.seen(rel), data);
        if !v.delay.is_zero() {
            std::thread::sleep(v.delay);
        }
        match v.errno {
            Some(e) => Err(Errno::from_i32(e)),
            None => Ok(v),
        }
    }

    fn judge_ino(&self, op: Op, ino: INodeNo, data: bool) -> Result<crate::state::Verdict, Errno> {
        let rel = self.state.lock().path(ino.0);
        match rel {
            Some(rel) => self.judge_data(op, &rel, data),
            None => Ok(Default::default()),
        }
    }

    /// The attributes of a path.
    fn attr_of(&self, ino: u64, m: &std::fs::Metadata) -> FileAttr {
        attr(ino, m, m.len())
    }

    fn entry(&self, rel: &Path) -> Result<FileAttr, Errno> {
        let m = std::fs::symlink_metadata(self.real(rel)).map_err(|e| errno(&e))?;
        let ino = self.state.lock().intern(rel);
        Ok(self.attr_of(ino, &m))
    }

    fn owned_by(&self, p: &Path, req: &Request) {
        // Best effort, as root: the new file belongs to whoever made it.
        let _ = std::os::unix::fs::lchown(p, Some(req.uid()), Some(req.gid()));
    }

    fn file_of(&self, fh: FileHandle) -> Result<std::sync::Arc<File>, Errno> {
        self.state
            .lock()
            .handles
            .get(&fh.0)
            .map(|h| h.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// Removes `name` under `parent` with `how` (a file or an empty directory), as the rules
    /// allow; its path is forgotten.
    fn remove(
        &self,
        parent: INodeNo,
        name: &OsStr,
        how: impl FnOnce(&Path) -> io::Result<()>,
        reply: ReplyEmpty,
    ) {
        let run = || -> Result<(), Errno> {
            let rel = self.child(parent, name)?;
            self.judge(Op::Write, &rel)?;
            how(&self.real(&rel)).map_err(|e| errno(&e))?;
            self.state.lock().forget_path(&rel);
            Ok(())
        };
        match run() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// Syncs the backing file: its writes since the last sync need no undoing any more.
    /// Forgotten first, so that a write landing while the sync runs is undone by a power cut.
    fn sync(&self, ino: u64, file: &File, datasync: bool) -> Result<(), Errno> {
        self.state.lock().forget(ino);
        if datasync {
            file.sync_data().map_err(|e| errno(&e))
        } else {
            file.sync_all().map_err(|e| errno(&e))
        }
    }

    /// Changes bytes `[from, to)` of `ino` by `change`, saving the synced ones first, all
    /// under the lock (a power cut never lands between the two).
    fn change(
        &self,
        ino: u64,
        file: &File,
        from: u64,
        to: u64,
        change: impl FnOnce(&File) -> io::Result<u64>,
    ) -> Result<(), Errno> {
        let mut st = self.state.lock();
        st.before_change(ino, file, from, to)
            .map_err(|e| errno(&e))?;
        let n = change(file).map_err(|e| errno(&e))?;
        st.wrote(ino, n);
        if st.held() > self.max_held {
            // Too much old content held: this file's writes stay.
            st.forget(ino);
        }
        Ok(())
    }
}

impl Filesystem for FaultFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Large writes in few requests: 1 MiB where the kernel allows it.
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.child(parent, name).and_then(|rel| self.entry(&rel)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let m = match fh.map(|fh| self.file_of(fh)) {
            Some(Ok(f)) => f.metadata(),
            _ => match self.rel(ino) {
                Ok(rel) => std::fs::symlink_metadata(self.real(&rel)),
                Err(e) => return reply.error(e),
            },
        };
        match m {
            Ok(m) => reply.attr(&TTL, &self.attr_of(ino.0, &m)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let run = || -> Result<FileAttr, Errno> {
            let rel = self.rel(ino);
            let real = rel.as_ref().map(|r| self.real(r)).map_err(|e| *e);
            if let Some(mode) = mode {
                let p = real.clone()?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(|e| errno(&e))?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(real.clone()?, uid, gid).map_err(|e| errno(&e))?;
            }
            if let Some(size) = size {
                if let Ok(rel) = &rel {
                    self.judge(Op::Write, rel)?;
                }
                let file = match fh.map(|fh| self.file_of(fh)) {
                    Some(Ok(f)) => f,
                    _ => std::sync::Arc::new(
                        OpenOptions::new()
                            .read(true)
                            .write(true)
                            .open(real.clone()?)
                            .map_err(|e| errno(&e))?,
                    ),
                };
                self.change(ino.0, &file, size, u64::MAX, |f| {
                    f.set_len(size).map(|()| 0)
                })?;
            }
            let m = match fh.map(|fh| self.file_of(fh)) {
                Some(Ok(f)) => f.metadata(),
                _ => std::fs::symlink_metadata(real.clone()?),
            }
            .map_err(|e| errno(&e))?;
            Ok(self.attr_of(ino.0, &m))
        };
        match run() {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .rel(ino)
            .and_then(|r| std::fs::read_link(self.real(&r)).map_err(|e| errno(&e)))
        {
            Ok(t) => reply.data(t.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let run = || -> Result<FileAttr, Errno> {
            let rel = self.child(parent, name)?;
            self.judge(Op::Write, &rel)?;
            let p = self.real(&rel);
            std::fs::create_dir(&p).map_err(|e| errno(&e))?;
            let _ = std::fs::set_permissions(
                &p,
                std::fs::Permissions::from_mode(mode & !umask & 0o7777),
            );
            self.owned_by(&p, req);
            self.entry(&rel)
        };
        match run() {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, |p| std::fs::remove_file(p), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, |p| std::fs::remove_dir(p), reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let run = || -> Result<FileAttr, Errno> {
            let rel = self.child(parent, link_name)?;
            self.judge(Op::Write, &rel)?;
            let p = self.real(&rel);
            std::os::unix::fs::symlink(target, &p).map_err(|e| errno(&e))?;
            self.owned_by(&p, req);
            self.entry(&rel)
        };
        match run() {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let run = || -> Result<(), Errno> {
            if !flags.is_empty() {
                return Err(Errno::EINVAL);
            }
            let from = self.child(parent, name)?;
            let to = self.child(newparent, newname)?;
            self.judge(Op::Write, &from)?;
            self.judge(Op::Write, &to)?;
            std::fs::rename(self.real(&from), self.real(&to)).map_err(|e| errno(&e))?;
            self.state.lock().rename(&from, &to);
            Ok(())
        };
        match run() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let run = || -> Result<FileAttr, Errno> {
            let from = self.rel(ino)?;
            let to = self.child(newparent, newname)?;
            self.judge(Op::Write, &to)?;
            std::fs::hard_link(self.real(&from), self.real(&to)).map_err(|e| errno(&e))?;
            self.entry(&to)
        };
        match run() {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let run = || -> Result<u64, Errno> {
            let p = self.real(&self.rel(ino)?);
            // Read and write where allowed, whatever the service asked: a sync through a
            // read-only descriptor must still write the cache through.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&p)
                .or_else(|_| {
                    let mut o = OpenOptions::new();
                    match flags.acc_mode() {
                        OpenAccMode::O_RDONLY => o.read(true),
                        OpenAccMode::O_WRONLY => o.write(true),
                        OpenAccMode::O_RDWR => o.read(true).write(true),
                    };
                    o.open(&p)
                })
                .map_err(|e| errno(&e))?;
            Ok(self.state.lock().open(ino.0, file))
        };
        match run() {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let run = || -> Result<Vec<u8>, Errno> {
            let v = self.judge_ino(Op::Read, ino, true)?;
            let file = self.file_of(fh)?;
            let mut buf = vec![0u8; size as usize];
            let mut done = 0;
            while done < buf.len() {
                match file.read_at(&mut buf[done..], offset + done as u64) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(errno(&e)),
                }
            }
            buf.truncate(done);
            let mut st = self.state.lock();
            if v.flip && !buf.is_empty() {
                let bit = st.random() % (buf.len() as u64 * 8);
                buf[(bit / 8) as usize] ^= 1 << (bit % 8);
            }
            Ok(buf)
        };
        match run() {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let run = || -> Result<u32, Errno> {
            let v = self.judge_ino(Op::Write, ino, true)?;
            let file = self.file_of(fh)?;
            // A torn write keeps its first half and says it all went.
            let kept = if v.tear {
                &data[..data.len() / 2]
            } else {
                data
            };
            let end = offset + kept.len() as u64;
            self.change(ino.0, &file, offset, end, |f| {
                f.write_all_at(kept, offset).map(|()| kept.len() as u64)
            })?;
            Ok(data.len() as u32)
        };
        match run() {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() does not sync.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state.lock().release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let run = || -> Result<(), Errno> {
            self.judge_ino(Op::Fsync, ino, false)?;
            let file = self.file_of(fh)?;
            self.sync(ino.0, &file, datasync)
        };
        match run() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let run = || -> Result<Vec<(u64, FileType, std::ffi::OsString)>, Errno> {
            let rel = self.rel(ino)?;
            let mut out = vec![
                (ino.0, FileType::Directory, ".".into()),
                (1, FileType::Directory, "..".into()),
            ];
            let rd = std::fs::read_dir(self.real(&rel)).map_err(|e| errno(&e))?;
            let mut st = self.state.lock();
            for e in rd.flatten() {
                let kind = e
                    .file_type()
                    .ok()
                    .and_then(FileType::from_std)
                    .unwrap_or(FileType::RegularFile);
                let i = st.intern(&rel.join(e.file_name()));
                out.push((i, kind, e.file_name()));
            }
            Ok(out)
        };
        match run() {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let run = || -> Result<(), Errno> {
            let rel = self.rel(ino)?;
            self.judge(Op::Fsync, &rel)?;
            File::open(self.real(&rel))
                .and_then(|d| d.sync_all())
                .map_err(|e| errno(&e))
        };
        match run() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match rustix::fs::statvfs(&self.backing) {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e.raw_os_error())),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // The kernel checks permissions (default_permissions).
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let run = || -> Result<(FileAttr, u64), Errno> {
            let rel = self.child(parent, name)?;
            self.judge(Op::Write, &rel)?;
            let p = self.real(&rel);
            let mut o = OpenOptions::new();
            o.read(true).write(true).mode(mode & !umask & 0o7777);
            const O_EXCL: i32 = 0o200;
            if flags & O_EXCL != 0 {
                o.create_new(true);
            } else {
                o.create(true);
            }
            let file = o.open(&p).map_err(|e| errno(&e))?;
            self.owned_by(&p, req);
            let m = file.metadata().map_err(|e| errno(&e))?;
            let ino = self.state.lock().intern(&rel);
            let a = self.attr_of(ino, &m);
            let fh = self.state.lock().open(ino, file);
            Ok((a, fh))
        };
        match run() {
            Ok((a, fh)) => {
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let run = || -> Result<(), Errno> {
            if mode != 0 {
                return Err(Errno::from_i32(95)); // EOPNOTSUPP
            }
            self.judge_ino(Op::Write, ino, false)?;
            let file = self.file_of(fh)?;
            let end = offset + length;
            // Growing keeps what is there and adds zeros; a power cut takes the growth back.
            self.change(ino.0, &file, end, end, |f| {
                if f.metadata()?.len() < end {
                    f.set_len(end)?;
                }
                Ok(0)
            })?;
            Ok(())
        };
        match run() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
