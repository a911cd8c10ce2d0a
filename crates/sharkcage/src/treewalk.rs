//! Walking a directory tree fast and without ever following a symlink.
//!
//! The protected-state scan (`launcher/protected.rs`) visits every
//! directory of every writable root before and after each call, so this is
//! on the hot path: each directory costs one `openat`, one or two
//! `getdents64` and one `close`, with the entry type taken from `d_type`
//! (an `fstatat` only where the filesystem does not fill it in). A child is
//! opened relative to its parent's descriptor with `O_NOFOLLOW |
//! O_DIRECTORY`, so a symlink can never lead the walk elsewhere, and a
//! directory swapped for a symlink while we walk is simply not entered.
//!
//! The walk is depth-first with one open descriptor per level; below
//! [`FD_DEPTH`] levels, deeper directories are reopened from the root with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` instead, so the walk
//! never needs more than a bounded number of descriptors, at any depth.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Levels walked with a descriptor held per level.
const FD_DEPTH: usize = 64;

/// The type of a directory entry, as `d_type` (or `lstat`) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Dir,
    File,
    Symlink,
    Other,
}

/// One entry of a directory being visited.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ty: Type,
}

impl DirEntry {
    pub fn name_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.name).ok()
    }
}

/// What the visitor sees for each directory.
pub struct Visit<'a> {
    /// The directory, relative to the walk's root (empty for the root).
    pub rel: &'a Path,
    /// An open descriptor of the directory (for `openat`/`fstatat` of its entries).
    pub fd: RawFd,
    pub entries: &'a [DirEntry],
}

/// What to do with a subdirectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Descend {
    Yes,
    No,
}

/// The walk's statistics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub dirs: usize,
    /// Directories that could not be opened or read (permissions, races).
    pub unreadable: usize,
}

fn cstr(b: &[u8]) -> Option<CString> {
    CString::new(b).ok()
}

/// Open `root` as a directory without following a final symlink.
pub fn open_root(root: &Path) -> std::io::Result<OwnedFd> {
    let c = cstr(root.as_os_str().as_bytes()).ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open(2) on a C string; the descriptor is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open the subdirectory `name` of `dir`, never through a symlink.
fn open_child(dir: RawFd, name: &CStr) -> Option<OwnedFd> {
    // SAFETY: openat(2) below a directory descriptor; owned below.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    // SAFETY: a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open the directory `rel` below `root` without following any symlink on
/// the way (long paths one component at a time, see `layers::sys`).
pub fn open_beneath(root: RawFd, rel: &Path) -> Option<OwnedFd> {
    let p = cstr(rel.as_os_str().as_bytes())?;
    let path_fd = crate::layers::sys::open_beneath(root, &p).ok()?;
    // Reopen the O_PATH descriptor as a readable directory.
    // SAFETY: openat of "." below our own descriptor; owned below.
    let fd = unsafe { libc::openat(path_fd, c".".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    crate::layers::sys::close(path_fd);
    // SAFETY: a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The type of `name` in `dir` by `fstatat` (no symlink followed).
pub fn lstat_type(dir: RawFd, name: &CStr) -> Option<Type> {
    // SAFETY: fstatat into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return None;
    }
    Some(match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Type::Dir,
        libc::S_IFREG => Type::File,
        libc::S_IFLNK => Type::Symlink,
        _ => Type::Other,
    })
}

/// Read every entry of `dir` (without `.` and `..`) into `out`.
pub fn read_entries(dir: RawFd, buf: &mut [u8], out: &mut Vec<DirEntry>) -> bool {
    out.clear();
    loop {
        // SAFETY: getdents64 fills at most buf.len() bytes of our buffer.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return false;
        }
        if n == 0 {
            return true;
        }
        let mut off = 0usize;
        while off < n as usize {
            // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let dtype = buf[off + 18];
            let name_start = off + 19;
            let name_end = buf[name_start..off + reclen].iter().position(|&b| b == 0).map_or(off + reclen, |p| name_start + p);
            let name = &buf[name_start..name_end];
            off += reclen;
            if name == b"." || name == b".." {
                continue;
            }
            let ty = match dtype {
                libc::DT_DIR => Type::Dir,
                libc::DT_REG => Type::File,
                libc::DT_LNK => Type::Symlink,
                libc::DT_UNKNOWN => match cstr(name).and_then(|c| lstat_type(dir, &c)) {
                    Some(t) => t,
                    None => continue,
                },
                _ => Type::Other,
            };
            out.push(DirEntry { name: name.to_vec(), ty });
        }
    }
}

/// Walk the tree under `root_fd` (whose own path is `root`, for reporting),
/// calling `each_dir` once per directory (parents before children, with a
/// descriptor valid only during the call); `descend` decides for each
/// subdirectory whether to enter it.
pub fn walk(root_fd: RawFd, mut descend: impl FnMut(&Path, &DirEntry) -> Descend, mut each_dir: impl FnMut(&Visit)) -> Stats {
    let mut stats = Stats::default();
    let mut buf = vec![0u8; 32 * 1024];
    // One level per open directory; `raw` is -1 below FD_DEPTH (children
    // are then reopened from the root by path).
    struct Level {
        _fd: Option<OwnedFd>,
        raw: RawFd,
        rel: PathBuf,
        entries: Vec<DirEntry>,
        next: usize,
    }
    let mut first = Vec::new();
    if !read_entries(root_fd, &mut buf, &mut first) {
        stats.unreadable += 1;
        return stats;
    }
    stats.dirs += 1;
    let mut stack = vec![Level { _fd: None, raw: root_fd, rel: PathBuf::new(), entries: first, next: 0 }];
    each_dir(&Visit { rel: Path::new(""), fd: root_fd, entries: &stack[0].entries });
    while let Some(top) = stack.last_mut() {
        if top.next >= top.entries.len() {
            stack.pop();
            continue;
        }
        let i = top.next;
        top.next += 1;
        if top.entries[i].ty != Type::Dir {
            continue;
        }
        if descend(&top.rel, &top.entries[i]) == Descend::No {
            continue;
        }
        let name = &top.entries[i].name;
        let rel = top.rel.join(OsStr::from_bytes(name));
        let child = if top.raw >= 0 {
            cstr(name).and_then(|c| open_child(top.raw, &c))
        } else {
            open_beneath(root_fd, &rel)
        };
        let Some(child) = child else {
            stats.unreadable += 1;
            continue;
        };
        let mut entries = Vec::new();
        if !read_entries(child.as_raw_fd(), &mut buf, &mut entries) {
            stats.unreadable += 1;
            continue;
        }
        stats.dirs += 1;
        let raw = child.as_raw_fd();
        each_dir(&Visit { rel: &rel, fd: raw, entries: &entries });
        if stack.len() >= FD_DEPTH {
            // Deep levels keep no descriptor: their children reopen from the root.
            drop(child);
            stack.push(Level { _fd: None, raw: -1, rel, entries, next: 0 });
            continue;
        }
        stack.push(Level { _fd: Some(child), raw, rel, entries, next: 0 });
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_every_directory_once_and_never_follows_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for p in ["a/b/c", "a/d", "e"] {
            std::fs::create_dir_all(r.join(p)).unwrap();
        }
        std::fs::write(r.join("a/f.txt"), "x").unwrap();
        std::os::unix::fs::symlink("/", r.join("a/root-link")).unwrap();
        std::os::unix::fs::symlink("../e", r.join("a/b/e-link")).unwrap();
        let fd = open_root(r).unwrap();
        let mut seen = Vec::new();
        let st = walk(fd.as_raw_fd(), |_, _| Descend::Yes, |v| seen.push(v.rel.display().to_string()));
        seen.sort();
        assert_eq!(seen, vec!["", "a", "a/b", "a/b/c", "a/d", "e"]);
        assert_eq!(st.dirs, 6);
    }

    #[test]
    fn deep_trees_are_walked_with_bounded_descriptors() {
        let d = tempfile::tempdir().unwrap();
        let mut p = d.path().to_path_buf();
        for _ in 0..(FD_DEPTH * 2 + 5) {
            p.push("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("leaf"), "x").unwrap();
        let fd = open_root(d.path()).unwrap();
        let mut deepest = 0;
        let mut leaf = false;
        walk(fd.as_raw_fd(), |_, _| Descend::Yes, |v| {
            deepest = deepest.max(v.rel.components().count());
            leaf |= v.entries.iter().any(|e| e.name == b"leaf");
        });
        assert_eq!(deepest, FD_DEPTH * 2 + 5);
        assert!(leaf);
    }
}
