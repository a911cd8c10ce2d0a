//! Removing what a sandbox left in a home layer, as the launcher (possibly
//! root): never through a symlink, whatever permissions the sandbox set, at
//! any depth, with a bounded number of descriptors.
//!
//! * Everything is reached from a descriptor of the directory above it:
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` for the way down to
//!   the entry, `O_NOFOLLOW | O_DIRECTORY` for each directory of a tree. A
//!   symlink is removed, never followed.
//! * Each directory is made 0700 through an `O_PATH` descriptor of its own
//!   (`chmod` of `/proc/self/fd/N`, which is that very inode) before it is
//!   read or emptied, so a mode-000 or read-only directory is no obstacle
//!   and nothing outside the tree is ever chmod-ed.
//! * A tree deeper than [`MAX_OPEN`] levels has its deep subdirectories
//!   moved up to the top directory (a rename within the tree) and removed
//!   from there: descriptors stay bounded and the work stays linear, however
//!   deep the chain (a chain deeper than the descriptor limit once made
//!   `remove_dir_all` fail, so a startup file in it survived).
//!
//! Only called while no sandbox uses the layer (it is locked, and the
//! call's sandbox is gone or not yet made), so nothing changes under it.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::layers::sys;
use crate::treewalk::{read_entries, DirEntry, Type};

/// Directories held open at once while removing one tree.
const MAX_OPEN: usize = 32;

fn err(e: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(e)
}

fn cstring(b: &[u8]) -> std::io::Result<CString> {
    CString::new(b).map_err(|_| err(libc::EINVAL))
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: a fresh descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// chmod 0700 the directory an `O_PATH` descriptor holds.
fn chmod_path_fd(fd: RawFd) -> std::io::Result<()> {
    let p = cstring(format!("/proc/self/fd/{fd}").as_bytes())?;
    // SAFETY: chmod of the magic link of our own descriptor (that inode).
    if unsafe { libc::chmod(p.as_ptr(), 0o700) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Open `name` in `dir` as a readable directory (never a symlink), made 0700 first.
fn open_dir(dir: RawFd, name: &CStr) -> std::io::Result<OwnedFd> {
    let p = sys::openat2(dir, name, libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC, libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS).map_err(err)?;
    let p = owned(p);
    chmod_path_fd(p.as_raw_fd())?;
    // SAFETY: openat of "." below our own descriptor.
    let fd = unsafe { libc::openat(p.as_raw_fd(), c".".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(owned(fd))
}

fn unlinkat(dir: RawFd, name: &CStr, flags: libc::c_int) -> std::io::Result<()> {
    // SAFETY: unlinkat below a directory descriptor with a C string name.
    match unsafe { libc::unlinkat(dir, name.as_ptr(), flags) } {
        0 => Ok(()),
        _ => match sys::errno() {
            libc::ENOENT => Ok(()),
            e => Err(err(e)),
        },
    }
}

/// The type of `name` in `dir`, no symlink followed (None: absent).
fn type_at(dir: RawFd, name: &CStr) -> std::io::Result<Option<Type>> {
    // SAFETY: fstatat into a zeroed struct, no symlink followed.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return match sys::errno() {
            // (ENOTDIR: the way there ends in a symlink or a file.)
            libc::ENOENT | libc::ENOTDIR => Ok(None),
            e => Err(err(e)),
        };
    }
    Ok(Some(match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Type::Dir,
        libc::S_IFREG => Type::File,
        libc::S_IFLNK => Type::Symlink,
        _ => Type::Other,
    }))
}

/// Remove `rel` below the directory `base` (neither followed through a
/// symlink). `Ok(false)`: nothing there, or only reachable through a
/// symlink (then it is not there for the sandbox's view either: the symlink
/// is what a caller removes).
pub fn remove_beneath(base: &Path, rel: &Path) -> std::io::Result<bool> {
    let b = cstring(base.as_os_str().as_bytes())?;
    let base_fd = owned(sys::open_path_no_symlinks(&b, libc::O_DIRECTORY).map_err(err)?);
    let (parent_rel, name) = match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return Err(err(libc::EINVAL)),
    };
    let parent = match sys::open_beneath(base_fd.as_raw_fd(), &cstring(parent_rel.as_os_str().as_bytes())?) {
        Ok(fd) => owned(fd),
        Err(libc::ENOENT | libc::ELOOP | libc::ENOTDIR) => return Ok(false),
        Err(e) => return Err(err(e)),
    };
    let name = cstring(name.as_bytes())?;
    remove_entry(parent.as_raw_fd(), &name)
}

/// Remove `name` in `dir`, whatever it is.
fn remove_entry(dir: RawFd, name: &CStr) -> std::io::Result<bool> {
    match type_at(dir, name)? {
        None => Ok(false),
        Some(Type::Dir) => {
            remove_tree(dir, name)?;
            Ok(true)
        }
        Some(_) => {
            if let Err(e) = unlinkat(dir, name, 0) {
                // A parent the sandbox made read-only.
                if e.raw_os_error() != Some(libc::EACCES) {
                    return Err(e);
                }
                chmod_path_fd(dir)?;
                unlinkat(dir, name, 0)?;
            }
            Ok(true)
        }
    }
}

struct Frame {
    fd: OwnedFd,
    name: CString,
    entries: Vec<DirEntry>,
    next: usize,
}

/// Remove the directory `name` in `parent` and everything in it (see the
/// module header).
fn remove_tree(parent: RawFd, name: &CStr) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    let read = |fd: &OwnedFd, buf: &mut [u8]| -> std::io::Result<Vec<DirEntry>> {
        let mut v = Vec::new();
        if !read_entries(fd.as_raw_fd(), buf, &mut v) {
            return Err(std::io::Error::last_os_error());
        }
        Ok(v)
    };
    let top = open_dir(parent, name)?;
    let entries = read(&top, &mut buf)?;
    let mut frames = vec![Frame { fd: top, name: name.to_owned(), entries, next: 0 }];
    let mut hoisted = 0u64;
    loop {
        let i = frames.len() - 1;
        if frames[i].next == frames[i].entries.len() {
            let done = frames.pop().expect("a frame");
            let above = frames.last().map_or(parent, |f| f.fd.as_raw_fd());
            drop(done.fd);
            if let Err(e) = unlinkat(above, &done.name, libc::AT_REMOVEDIR) {
                // The directory above the tree, made read-only by the sandbox
                // (those inside it are 0700 already).
                if e.raw_os_error() != Some(libc::EACCES) {
                    return Err(e);
                }
                chmod_path_fd(above)?;
                unlinkat(above, &done.name, libc::AT_REMOVEDIR)?;
            }
            if frames.is_empty() {
                return Ok(());
            }
            continue;
        }
        let e = frames[i].entries[frames[i].next].clone();
        frames[i].next += 1;
        let cname = cstring(&e.name)?;
        let dir = frames[i].fd.as_raw_fd();
        if e.ty != Type::Dir {
            unlinkat(dir, &cname, 0)?;
            continue;
        }
        if frames.len() >= MAX_OPEN {
            // Move the subtree up to the top directory, to be removed there.
            let top = frames[0].fd.as_raw_fd();
            loop {
                let to = cstring(format!(".sc-rm-{hoisted}").as_bytes())?;
                hoisted += 1;
                // Its `..` changes: the directory itself must be writable.
                let p = owned(sys::openat2(dir, &cname, libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC, libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS).map_err(err)?);
                chmod_path_fd(p.as_raw_fd())?;
                // SAFETY: renameat2 between two directory descriptors of ours.
                let r = unsafe { libc::syscall(libc::SYS_renameat2, dir, cname.as_ptr(), top, to.as_ptr(), libc::RENAME_NOREPLACE) };
                if r == 0 {
                    frames[0].entries.push(DirEntry { name: to.as_bytes().to_vec(), ty: Type::Dir });
                    break;
                }
                if sys::errno() != libc::EEXIST {
                    return Err(std::io::Error::last_os_error());
                }
            }
            continue;
        }
        let fd = match open_dir(dir, &cname) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                unlinkat(dir, &cname, 0)?;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let entries = read(&fd, &mut buf)?;
        frames.push(Frame { fd, name: cname, entries, next: 0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn removes_locked_deep_trees_and_never_follows_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path();
        let victim = base.join("victim");
        std::fs::create_dir_all(victim.join("keep")).unwrap();
        std::fs::write(victim.join("keep/f"), "x").unwrap();
        // A chain deeper than MAX_OPEN, read-only and mode-000 directories, a
        // symlink to the victim at every level.
        let mut p = base.join("t");
        for i in 0..(MAX_OPEN * 3) {
            std::fs::create_dir_all(&p).unwrap();
            std::os::unix::fs::symlink(&victim, p.join(format!("link{i}"))).unwrap();
            std::fs::write(p.join("file"), "x").unwrap();
            p = p.join("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(base.join("t/d/d"), std::fs::Permissions::from_mode(0o555)).unwrap();
        std::fs::set_permissions(base.join("t/d/d/d/d"), std::fs::Permissions::from_mode(0o000)).unwrap();
        assert!(remove_beneath(base, Path::new("t")).unwrap());
        assert!(!base.join("t").exists());
        assert_eq!(std::fs::read_to_string(victim.join("keep/f")).unwrap(), "x");
        assert_eq!(std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777, 0o755);
        // Through a symlink on the way: nothing is removed.
        std::os::unix::fs::symlink(&victim, base.join("via")).unwrap();
        assert!(!remove_beneath(base, Path::new("via/keep")).unwrap());
        assert!(victim.join("keep/f").exists());
        // The symlink itself goes, not what it points at.
        assert!(remove_beneath(base, Path::new("via")).unwrap());
        assert!(victim.join("keep/f").exists());
        // A file in a read-only directory.
        std::fs::create_dir(base.join("ro")).unwrap();
        std::fs::write(base.join("ro/x"), "x").unwrap();
        std::fs::set_permissions(base.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        assert!(remove_beneath(base, Path::new("ro/x")).unwrap());
        assert!(!remove_beneath(base, Path::new("ro/x")).unwrap());
    }
}
