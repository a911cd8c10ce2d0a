//! Which socket a path in `network.allowUnixSockets` names, and connecting
//! the command's socket to exactly that one.
//!
//! A listed path may lie where the command can write (a workspace), and the
//! command may replace it — or a directory on the way — with a symlink to a
//! socket nobody listed (an ssh agent in the hidden `~/.ssh`, a root-only
//! daemon), with a regular file or a fifo, or remove it. The broker connects
//! from the launcher, outside the sandbox's mount view and restrictions, so
//! a symlink followed there could reach any socket on the host.
//!
//! * Plan time (before the command runs): the listed path is resolved
//!   following the host's own symlinks (`/var/run` → `/run`) but never one
//!   that lies inside a writable root of the call, which an earlier call
//!   could have planted. The result is the *canonical* path. The command
//!   may name the socket by it or by the path as listed.
//! * Connect time: the canonical path is opened `O_PATH` from `/` with
//!   `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`, so a symlink
//!   anywhere on it now was planted and fails the open; `fstat` must say
//!   `S_IFSOCK`; then the broker's duplicate of the command's socket is
//!   connected to `/proc/thread-self/fd/<n>`: the kernel follows that magic
//!   link to the very inode opened, whatever happens to the path meanwhile.
//! * For a shifted root caller both steps run as the sandbox's host id
//!   ([`super::thread_identity`]): the peer sees that id in `SO_PEERCRED`
//!   and `SO_PEERGROUPS`, and file permissions on the way apply as they do
//!   to the sandbox (a root-only socket is refused).
//!
//! Anything else is a [`Refusal`]: the command gets EACCES and the call's
//! `violations` say why.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::thread_identity;
use crate::layers::sys;
use crate::policy::paths;

/// One allowed socket.
#[derive(Debug, Clone)]
pub struct UnixTarget {
    /// Names the command may connect to: the path as listed (home expanded,
    /// normalised) and the canonical path.
    pub names: Vec<PathBuf>,
    /// The host path, host symlinks resolved; opened without following any.
    pub canonical: PathBuf,
    c_canonical: CString,
}

impl UnixTarget {
    /// `listed`: absolute and normalised. `writable`: the call's writable
    /// roots, where a symlink may have been planted by an earlier call.
    pub fn resolve(listed: PathBuf, writable: &[PathBuf]) -> Result<UnixTarget, String> {
        let canonical = paths::resolve_trusting(&listed, writable);
        let c_canonical = CString::new(canonical.as_os_str().as_bytes()).map_err(|_| "the path contains a NUL byte".to_string())?;
        let mut names = vec![listed];
        if !names.contains(&canonical) {
            names.push(canonical.clone());
        }
        Ok(UnixTarget { names, canonical, c_canonical })
    }

    pub fn accepts(&self, p: &Path) -> bool {
        self.names.iter().any(|n| n == p)
    }
}

/// Every name the command may use, once each (as reported).
pub fn names(targets: &[UnixTarget]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    for n in targets.iter().flat_map(|t| &t.names) {
        if !v.contains(n) {
            v.push(n.clone());
        }
    }
    v
}

/// Why a listed socket was not connected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("a symlink is on the path (symlinks are not followed)")]
    Symlink,
    #[error("something on the path is not a directory")]
    NotDirectory,
    #[error("it does not exist")]
    Missing,
    #[error("it is not a socket")]
    NotSocket,
    #[error("the sandbox's identity (host uid {0}) may not connect to it")]
    Permission(u32),
    #[error("the launcher could not act as the sandbox's identity ({})", std::io::Error::from_raw_os_error(*.0))]
    Identity(i32),
}

/// The outcome of a connect that did not succeed.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// Refused by the broker's rules: EACCES to the command, reported.
    Refused(Refusal),
    /// The connect itself failed (no listener, full backlog…): the errno
    /// goes to the command as the kernel gave it.
    Failed(i32),
}

/// Where [`connect_exact`] stopped.
enum Step {
    Open(i32),
    NotSocket,
    Connect(i32),
}

/// Connect `sock` (the broker's duplicate of the command's socket) to the
/// socket `target` names — as host id `as_id` when the sandbox is a shifted
/// root caller. `own_uid` is the identity otherwise (for messages).
pub fn connect(sock: &OwnedFd, target: &UnixTarget, as_id: Option<u32>, own_uid: u32) -> Result<(), ConnectError> {
    let go = || connect_exact(sock, &target.c_canonical);
    let r = match as_id {
        Some(id) => thread_identity::run_as(id, go).map_err(|e| ConnectError::Refused(Refusal::Identity(e)))?,
        None => go(),
    };
    let uid = as_id.unwrap_or(own_uid);
    r.map_err(|s| match s {
        Step::Open(libc::ELOOP) => ConnectError::Refused(Refusal::Symlink),
        Step::Open(libc::ENOENT) => ConnectError::Refused(Refusal::Missing),
        Step::Open(libc::ENOTDIR) => ConnectError::Refused(Refusal::NotDirectory),
        Step::Open(libc::EACCES | libc::EPERM) | Step::Connect(libc::EACCES | libc::EPERM) => ConnectError::Refused(Refusal::Permission(uid)),
        Step::NotSocket => ConnectError::Refused(Refusal::NotSocket),
        Step::Open(e) | Step::Connect(e) => ConnectError::Failed(e),
    })
}

/// Open `path` without following anything, check it is a socket, connect
/// through the descriptor's magic link.
fn connect_exact(sock: &OwnedFd, path: &CStr) -> Result<(), Step> {
    let fd = sys::open_path_no_symlinks(path, 0).map_err(Step::Open)?;
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = sys::fstat(fd.as_raw_fd()).map_err(Step::Open)?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => {}
        libc::S_IFLNK => return Err(Step::Open(libc::ELOOP)),
        _ => return Err(Step::NotSocket),
    }
    let link = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
    connect_path(sock, link.as_bytes()).map_err(Step::Connect)
}

/// Connect `sock` to the unix socket at `path`, never blocking the launcher
/// for long: a 5 s send timeout bounds a full backlog, and the command's own
/// timeout setting is restored afterwards.
fn connect_path(sock: &OwnedFd, path: &[u8]) -> Result<(), i32> {
    // SAFETY: sockaddr_un is plain old data; zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if path.len() >= addr.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    for (i, b) in path.iter().enumerate() {
        addr.sun_path[i] = *b as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + path.len() + 1) as libc::socklen_t;
    let tv_len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    let mut old = libc::timeval { tv_sec: 0, tv_usec: 0 };
    let mut ol = tv_len;
    let bound = libc::timeval { tv_sec: 5, tv_usec: 0 };
    // SAFETY: get/set SO_SNDTIMEO with timeval values of the size passed;
    // connect with a valid sockaddr_un and its length.
    unsafe {
        libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDTIMEO, (&mut old as *mut libc::timeval).cast(), &mut ol);
        libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDTIMEO, (&bound as *const libc::timeval).cast(), tv_len);
        let r = libc::connect(sock.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len);
        let e = sys::errno();
        libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDTIMEO, (&old as *const libc::timeval).cast(), tv_len);
        if r == 0 {
            Ok(())
        } else {
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn stream() -> OwnedFd {
        // SAFETY: socket() with integer arguments.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0);
        // SAFETY: a fresh descriptor that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn target(p: &Path, writable: &[PathBuf]) -> UnixTarget {
        UnixTarget::resolve(p.to_path_buf(), writable).unwrap()
    }

    fn uid() -> u32 {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() }
    }

    /// The technique itself, on this kernel: a connect through the O_PATH
    /// descriptor's magic link reaches exactly the listener opened.
    #[test]
    fn connects_through_the_magic_link() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.sock");
        let l = UnixListener::bind(&p).unwrap();
        l.set_nonblocking(true).unwrap();
        connect(&stream(), &target(&p, &[]), None, uid()).unwrap();
        assert!(l.accept().is_ok(), "the listener got nothing");
    }

    /// A symlink at the name or on the way is never followed.
    #[test]
    fn refuses_symlinks_files_fifos_and_missing_paths() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let ws = root.join("ws");
        let host = root.join("host");
        std::fs::create_dir_all(ws.join("run")).unwrap();
        std::fs::create_dir_all(&host).unwrap();
        let secret = host.join("secret.sock");
        let l = UnixListener::bind(&secret).unwrap();
        l.set_nonblocking(true).unwrap();
        let writable = [ws.clone()];
        let listed = ws.join("app.sock");
        let t = target(&listed, &writable);
        std::os::unix::fs::symlink(&secret, &listed).unwrap();
        assert_eq!(connect(&stream(), &t, None, uid()), Err(ConnectError::Refused(Refusal::Symlink)));
        std::fs::remove_file(&listed).unwrap();
        // A symlinked parent directory.
        let nested = target(&ws.join("run/secret.sock"), &writable);
        std::fs::remove_dir(ws.join("run")).unwrap();
        std::os::unix::fs::symlink(&host, ws.join("run")).unwrap();
        assert_eq!(connect(&stream(), &nested, None, uid()), Err(ConnectError::Refused(Refusal::Symlink)));
        assert!(l.accept().is_err(), "the unlisted listener received a connection");
        assert_eq!(connect(&stream(), &t, None, uid()), Err(ConnectError::Refused(Refusal::Missing)));
        std::fs::write(&listed, "x").unwrap();
        assert_eq!(connect(&stream(), &t, None, uid()), Err(ConnectError::Refused(Refusal::NotSocket)));
        std::fs::remove_file(&listed).unwrap();
        let c = CString::new(listed.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo on a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(connect(&stream(), &t, None, uid()), Err(ConnectError::Refused(Refusal::NotSocket)));
    }

    /// Host symlinks outside writable roots are resolved at plan time; one
    /// inside a writable root (planted earlier) is kept and refused later.
    #[test]
    fn plan_time_resolution_trusts_only_host_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let real = root.join("real");
        let ws = root.join("ws");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(&ws).unwrap();
        std::os::unix::fs::symlink(&real, root.join("alias")).unwrap();
        std::os::unix::fs::symlink("../real/x.sock", ws.join("planted.sock")).unwrap();
        let t = target(&root.join("alias/x.sock"), std::slice::from_ref(&ws));
        assert_eq!(t.canonical, real.join("x.sock"));
        assert!(t.accepts(&root.join("alias/x.sock")) && t.accepts(&real.join("x.sock")));
        let p = target(&ws.join("planted.sock"), std::slice::from_ref(&ws));
        assert_eq!(p.canonical, ws.join("planted.sock"));
        let _l = UnixListener::bind(real.join("x.sock")).unwrap();
        assert_eq!(connect(&stream(), &p, None, uid()), Err(ConnectError::Refused(Refusal::Symlink)));
    }
}
