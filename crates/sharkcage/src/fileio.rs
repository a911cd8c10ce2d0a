//! Files the launcher writes, written so that nothing a sandboxed command
//! planted can redirect them or show them half done.
//!
//! * Whole-file writes: a temporary file created exclusively, never through
//!   a symlink (`O_EXCL | O_NOFOLLOW`), in the target's own directory,
//!   synced, and renamed over the target (a rename replaces a symlink at the
//!   target's name; it never follows it).
//! * Relative to a directory descriptor ([`write_atomic_at`]). A command can
//!   rename a directory on the way to a file the launcher writes *after* the
//!   call (`sc exec --json`, the result file the OpenClaw backend reads, the
//!   `--audit-dir` log, the pending-check journal) and put a symlink in its
//!   place. So the launcher opens each such directory *before* the sandbox
//!   starts ([`PinnedDir`]) and writes through that descriptor: the file
//!   lands in the directory that was opened, wherever the command moved it,
//!   never where a planted symlink points.
//!   A symlink planted *before* the call (by an earlier sandboxed command) is
//!   not followed either: such a directory is resolved with
//!   `paths::resolve_trusting` (host symlinks followed, none inside a
//!   writable root of the call) and opened without following any symlink
//!   ([`PinnedDir::open_exact`], [`create_private_dir_exact`]).
//! * [`PinnedDir::moved`] tells whether the directory's path still leads to
//!   it (resolved from `/` with no symlink followed: same device and inode),
//!   so the user can be told when it does not.

use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::layers::sys;

fn cstring(b: &[u8]) -> std::io::Result<CString> {
    CString::new(b).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path contains a NUL byte"))
}

fn os_err(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

/// Write `data` to `path` atomically, creating it with `mode` if new.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    write_atomic_at(open_dir(dir)?.as_fd(), name, data, mode)
}

/// `dir` opened `O_PATH | O_DIRECTORY` (symlinks followed, as named).
fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    let c = cstring(dir.as_os_str().as_bytes())?;
    // SAFETY: open with a C string; the descriptor is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Write `data` as `name` in the directory `dir` atomically (see the module
/// header), creating it with `mode` if new. `name` is one path component.
pub fn write_atomic_at(dir: BorrowedFd<'_>, name: &OsStr, data: &[u8], mode: u32) -> std::io::Result<()> {
    replace_at(dir, name, data, mode, true)
}

/// [`write_atomic`] without the `fsync`: readers still never see a torn
/// file, but a crash may lose the update (for advisory records written on
/// every call, where a sync costs milliseconds).
pub fn write_replace_unsynced(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    replace_at(open_dir(dir)?.as_fd(), name, data, mode, false)
}

fn replace_at(dir: BorrowedFd<'_>, name: &OsStr, data: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b.contains(&b'/') || b == b"." || b == b".." {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{name:?} is not a file name")));
    }
    let target = cstring(b)?;
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0) ^ std::process::id();
    for _ in 0..100 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let tmp = cstring(format!(".{}.tmp-{seed:08x}", name.to_string_lossy()).as_bytes())?;
        // SAFETY: openat relative to a directory descriptor we borrow, with a
        // C string name; the new descriptor is owned below.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), tmp.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC, mode as libc::c_uint) };
        if fd < 0 {
            match sys::errno() {
                libc::EEXIST => continue,
                e => return Err(os_err(e)),
            }
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let r = f.write_all(data).and_then(|_| if sync { f.sync_all() } else { Ok(()) }).and_then(|_| {
            // SAFETY: renameat within one directory descriptor, C string names.
            match unsafe { libc::renameat(dir.as_raw_fd(), tmp.as_ptr(), dir.as_raw_fd(), target.as_ptr()) } {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
        if r.is_err() {
            // SAFETY: unlinkat of our own temporary name in the same directory.
            unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
        }
        // (No fsync of the directory: readers never see a half-written file
        // either way, and every write here is on a call's path.)
        return r;
    }
    Err(std::io::Error::other("could not create a temporary file"))
}


/// ELOOP from an open that follows no symlink, in words.
fn planted_symlink_error(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{}: a symlink inside a writable root is on the way (not followed: a sandboxed command may have planted it); give the real path", path.display()),
    )
}

/// `mkdir -p path` with mode 0700 for the last directory, never following a
/// symlink on the way (each component is made with `mkdirat` and entered
/// with `openat2(RESOLVE_NO_SYMLINKS)` below the one before). `path` is
/// absolute, host symlinks already resolved.
pub fn create_private_dir_exact(path: &Path) -> std::io::Result<()> {
    let mut cur = open_dir(Path::new("/"))?;
    for comp in path.components().filter(|c| matches!(c, std::path::Component::Normal(_))) {
        let name = cstring(comp.as_os_str().as_bytes())?;
        // SAFETY: mkdirat relative to a directory descriptor we own; an
        // existing name (a symlink too) is left alone (EEXIST).
        if unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o777) } != 0 && sys::errno() != libc::EEXIST {
            return Err(std::io::Error::last_os_error());
        }
        let next = sys::openat2(cur.as_raw_fd(), &name, libc::O_PATH | libc::O_DIRECTORY, libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS)
            .map_err(|e| if e == libc::ELOOP { planted_symlink_error(path) } else { os_err(e) })?;
        // SAFETY: a fresh descriptor that nothing else owns.
        cur = unsafe { OwnedFd::from_raw_fd(next) };
    }
    // SAFETY: reopen "." below our O_PATH descriptor to change its mode;
    // the descriptor is closed right after.
    unsafe {
        let fd = libc::openat(cur.as_raw_fd(), c".".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let r = libc::fchmod(fd, 0o700);
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if r != 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// A directory opened before a call, to write into after it (see the module
/// header).
#[derive(Debug)]
pub struct PinnedDir {
    fd: OwnedFd,
    /// Its canonical path when it was opened.
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl PinnedDir {
    /// Open `dir` as the caller names it (symlinks followed: this happens
    /// before the sandbox exists).
    pub fn open(dir: &Path) -> std::io::Result<PinnedDir> {
        let fd = open_dir(dir)?;
        let st = sys::fstat(fd.as_raw_fd()).map_err(os_err)?;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        Ok(PinnedDir { fd, path, dev: st.st_dev, ino: st.st_ino })
    }

    /// Open `path` (absolute, host symlinks already resolved) without
    /// following any symlink on it.
    pub fn open_exact(path: &Path) -> std::io::Result<PinnedDir> {
        let c = cstring(path.as_os_str().as_bytes())?;
        let fd = sys::open_path_no_symlinks(&c, libc::O_DIRECTORY).map_err(|e| if e == libc::ELOOP { planted_symlink_error(path) } else { os_err(e) })?;
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = sys::fstat(fd.as_raw_fd()).map_err(os_err)?;
        Ok(PinnedDir { fd, path: path.to_path_buf(), dev: st.st_dev, ino: st.st_ino })
    }

    /// Where a directory the launcher writes after a call is, resolved
    /// before the call: `dir` made absolute, host symlinks followed, none
    /// inside `untrusted` (the call's writable roots).
    pub fn resolve(dir: &Path, untrusted: &[PathBuf]) -> std::io::Result<PathBuf> {
        let abs = if dir.is_absolute() { dir.to_path_buf() } else { std::env::current_dir()?.join(dir) };
        Ok(crate::policy::paths::resolve_trusting(&abs, untrusted))
    }

    /// Its canonical path when it was opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `/proc/self/fd/<n>`: a path for code that takes paths (the audit
    /// writer). The kernel follows it to this very directory, wherever it is
    /// now; names below it are looked up in it.
    pub fn anchor(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// None while [`Self::path`] still leads to this directory (resolved from
    /// `/` without following any symlink); else what happened, in words.
    pub fn moved(&self) -> Option<String> {
        let c = cstring(self.path.as_os_str().as_bytes()).ok()?;
        let same = sys::open_path_no_symlinks(&c, libc::O_DIRECTORY)
            .map(|fd| {
                // SAFETY: a fresh descriptor that nothing else owns.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                sys::fstat(fd.as_raw_fd()).is_ok_and(|st| st.st_dev == self.dev && st.st_ino == self.ino)
            })
            .unwrap_or(false);
        if same {
            return None;
        }
        let now = std::fs::read_link(self.anchor()).map(|p| p.display().to_string()).unwrap_or_default();
        let now = match now.strip_suffix(" (deleted)") {
            Some(_) => "it was deleted".to_string(),
            None => format!("it is now at {now}"),
        };
        Some(format!("{} was moved or replaced during the call ({now})", self.path.display()))
    }

    /// [`write_atomic_at`] in this directory.
    pub fn write_atomic(&self, name: &OsStr, data: &[u8], mode: u32) -> std::io::Result<()> {
        write_atomic_at(self.fd.as_fd(), name, data, mode)
    }

    /// Remove the file `name` (one component) from this directory.
    pub fn remove(&self, name: &OsStr) -> std::io::Result<()> {
        let c = cstring(name.as_bytes())?;
        // SAFETY: unlinkat relative to our directory descriptor.
        match unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }
}

/// sharkcage's private state directory: `$SHARKCAGE_STATE_DIR`, else
/// `$XDG_STATE_HOME/sharkcage`, else `~/.local/state/sharkcage`. Every
/// sandbox has it hidden (the launcher adds it to the hidden paths).
pub fn state_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(d) = std::env::var_os("SHARKCAGE_STATE_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(d.join("sharkcage"));
    }
    crate::policy::paths::primary_home().map(|h| h.join(".local/state/sharkcage"))
}

/// Create `dir` (and parents) and make it mode 0700.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

/// `chmod` of what a descriptor (an `O_PATH` one too) holds, through its
/// `/proc/self/fd` link, which names exactly that inode: never a symlink
/// put in its place since it was opened.
pub fn chmod_fd(fd: i32, mode: u32) -> std::io::Result<()> {
    let p = CString::new(format!("/proc/self/fd/{fd}")).map_err(std::io::Error::other)?;
    // SAFETY: chmod on a C string path naming our own descriptor.
    if unsafe { libc::chmod(p.as_ptr(), mode) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_never_follows_a_planted_symlink() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out.json");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "KEEP").unwrap();
        // Plant symlinks at plausible temporary names; none may be followed.
        for i in 0..50 {
            let _ = std::os::unix::fs::symlink(&victim, d.path().join(format!(".out.json.tmp-{i:08x}")));
        }
        write_atomic(&target, b"{}", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"KEEP");
        write_atomic(&target, b"[1]", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"[1]");
    }

    /// A directory renamed away and replaced by a symlink after it was
    /// pinned: the write lands in the original directory, and `moved` says so.
    #[test]
    fn pinned_dir_writes_into_the_original_directory() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let results = root.join("results");
        let outside = root.join("outside");
        std::fs::create_dir(&results).unwrap();
        std::fs::create_dir(&outside).unwrap();
        let pin = PinnedDir::open(&results).unwrap();
        assert_eq!(pin.moved(), None);
        std::fs::rename(&results, root.join("results.old")).unwrap();
        std::os::unix::fs::symlink(&outside, &results).unwrap();
        let why = pin.moved().expect("the swap is noticed");
        assert!(why.contains("results.old"), "{why}");
        pin.write_atomic(OsStr::new("out.json"), b"{}", 0o600).unwrap();
        assert_eq!(std::fs::read(root.join("results.old/out.json")).unwrap(), b"{}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "written through the planted symlink");
        std::fs::write(pin.anchor().join("via-anchor"), "x").unwrap();
        assert!(root.join("results.old/via-anchor").exists());
        pin.remove(OsStr::new("via-anchor")).unwrap();
        std::fs::remove_file(root.join("results.old/out.json")).unwrap();
        std::fs::remove_dir(root.join("results.old")).unwrap();
        assert_eq!(pin.moved().map(|w| w.contains("deleted")), Some(true));
        assert!(pin.write_atomic(OsStr::new("out.json"), b"{}", 0o600).is_err(), "a deleted directory takes no file");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    /// A symlink inside a writable root, planted before the call, is never
    /// followed by the exact open or the no-follow `mkdir -p`.
    #[test]
    fn exact_open_and_create_refuse_a_planted_symlink() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let ws = root.join("ws");
        let outside = root.join("outside");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, ws.join("logs")).unwrap();
        let p = PinnedDir::resolve(&ws.join("logs/audit"), std::slice::from_ref(&ws)).unwrap();
        assert_eq!(p, ws.join("logs/audit"), "the planted symlink is kept, not resolved");
        let e = create_private_dir_exact(&p).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert!(PinnedDir::open_exact(&ws.join("logs")).unwrap_err().to_string().contains("symlink"));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "created through the planted symlink");
        // Trusted (outside the writable roots): followed as named.
        assert_eq!(PinnedDir::resolve(&ws.join("logs/audit"), &[]).unwrap(), outside.join("audit"));
        let fresh = ws.join("a/b/c");
        create_private_dir_exact(&fresh).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(PinnedDir::open_exact(&fresh).unwrap().path(), fresh);
    }
}
