//! Thin, allocation-free wrappers over the raw system calls the after-fork
//! code needs. Every function takes pre-built C strings and returns the raw
//! errno on failure, so the child can report it through its error pipe.

use std::ffi::CStr;
use std::path::Path;

pub type SysResult<T = ()> = Result<T, i32>;

#[inline]
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

#[inline]
pub fn check(rc: libc::c_long) -> SysResult<libc::c_long> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

pub fn mount(src: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: libc::c_ulong, data: Option<&CStr>) -> SysResult {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are NUL-terminated C strings or null, valid for the call.
    let rc = unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast()) };
    check(rc as libc::c_long).map(|_| ())
}

/// `struct mount_attr` for `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(dirfd, path, flags, {set, clear})`.
fn mount_setattr_at(dirfd: i32, path: &CStr, flags: libc::c_uint, set: u64, clear: u64) -> SysResult {
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    // SAFETY: attr is a valid mount_attr of the size we pass; path is a C string.
    let rc = unsafe { libc::syscall(libc::SYS_mount_setattr, dirfd, path.as_ptr(), flags, &attr as *const MountAttr, std::mem::size_of::<MountAttr>()) };
    check(rc).map(|_| ())
}

/// `mount_setattr(2)` on `path` (recursively when `recursive`).
pub fn mount_setattr(path: &CStr, recursive: bool, set: u64, clear: u64) -> SysResult {
    let flags = if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 } | libc::AT_NO_AUTOMOUNT as libc::c_uint;
    mount_setattr_at(libc::AT_FDCWD, path, flags, set, clear)
}

pub fn mkdir(path: &CStr, mode: libc::mode_t) -> SysResult {
    // SAFETY: path is a valid C string.
    let rc = unsafe { libc::mkdir(path.as_ptr(), mode) };
    if rc < 0 && errno() != libc::EEXIST {
        return Err(errno());
    }
    Ok(())
}

pub fn chmod(path: &CStr, mode: libc::mode_t) -> SysResult {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::chmod(path.as_ptr(), mode) } as libc::c_long).map(|_| ())
}

/// Create an empty regular file (a mount point for a file bind).
pub fn touch(path: &CStr, mode: libc::mode_t) -> SysResult {
    // SAFETY: path is a valid C string; the fd is closed right away.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode as libc::c_uint);
        if fd < 0 {
            return Err(errno());
        }
        libc::close(fd);
    }
    Ok(())
}

pub fn symlink(target: &CStr, path: &CStr) -> SysResult {
    // SAFETY: both are valid C strings.
    let rc = unsafe { libc::symlink(target.as_ptr(), path.as_ptr()) };
    check(rc as libc::c_long).map(|_| ())
}

pub fn chdir(path: &CStr) -> SysResult {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::chdir(path.as_ptr()) } as libc::c_long).map(|_| ())
}

pub fn write_file(path: &CStr, data: &[u8]) -> SysResult {
    // SAFETY: path is a C string; data is a valid slice; fd closed before return.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = errno();
        libc::close(fd);
        if n < 0 || n as usize != data.len() {
            return Err(if n < 0 { e } else { libc::EIO });
        }
    }
    Ok(())
}

pub fn write_all(fd: i32, data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        // SAFETY: writing from a valid slice range.
        let n = unsafe { libc::write(fd, data[off..].as_ptr().cast(), data.len() - off) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            return;
        }
        off += n as usize;
    }
}

pub fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> SysResult {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) } as libc::c_long).map(|_| ())
}

/// `openat2(dirfd, path, {flags | O_CLOEXEC, mode 0, resolve})`.
pub fn openat2(dirfd: i32, path: &CStr, flags: libc::c_int, resolve: u64) -> SysResult<i32> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: 0, resolve };
    // SAFETY: open_how is a valid struct of the size passed; path is a C string.
    let rc = unsafe { libc::syscall(libc::SYS_openat2, dirfd, path.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>()) };
    check(rc).map(|fd| fd as i32)
}

/// `openat2(dirfd, path, O_PATH, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS)`: resolve `path` below `dirfd` without following
/// any symlink. An empty path returns a duplicate of `dirfd`'s location.
///
/// A path longer than [`ONE_LOOKUP`] bytes is resolved one component at a
/// time (the kernel bounds the string of one lookup by `PATH_MAX`, not the
/// depth of a tree, so state a command leaves deeper than that must still
/// be reachable). Allocation-free: it runs in the sandbox's PID 1 too.
pub fn open_beneath(dirfd: i32, path: &CStr) -> SysResult<i32> {
    const RESOLVE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let b = path.to_bytes();
    if b.is_empty() {
        return openat2(dirfd, c".", libc::O_PATH | libc::O_NOFOLLOW, RESOLVE);
    }
    if b.len() < ONE_LOOKUP {
        return openat2(dirfd, path, libc::O_PATH | libc::O_NOFOLLOW, RESOLVE);
    }
    let mut cur = dirfd;
    let mut comp = [0u8; 256];
    for part in b.split(|&c| c == b'/').filter(|p| !p.is_empty() && *p != b".") {
        let r = if part == b".." || part.len() > 255 {
            Err(if part == b".." { libc::EXDEV } else { libc::ENAMETOOLONG })
        } else {
            comp[..part.len()].copy_from_slice(part);
            comp[part.len()] = 0;
            match CStr::from_bytes_with_nul(&comp[..=part.len()]) {
                Ok(c) => openat2(cur, c, libc::O_PATH | libc::O_NOFOLLOW, RESOLVE),
                Err(_) => Err(libc::EINVAL),
            }
        };
        if cur != dirfd {
            close(cur);
        }
        cur = r?;
    }
    if cur == dirfd {
        return openat2(dirfd, c".", libc::O_PATH | libc::O_NOFOLLOW, RESOLVE);
    }
    Ok(cur)
}

/// Paths at least this long are opened one component at a time.
pub const ONE_LOOKUP: usize = 2048;

/// `openat2(AT_FDCWD, abs, O_PATH | extra, RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS)`: an absolute host path, resolved from `/` with no
/// symlink followed anywhere on it, the last component included (ELOOP if
/// one is there; no `O_NOFOLLOW`, which would open a final symlink itself).
pub fn open_path_no_symlinks(abs: &CStr, extra: libc::c_int) -> SysResult<i32> {
    openat2(libc::AT_FDCWD, abs, libc::O_PATH | extra, libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS)
}

/// `fstat(fd)`.
pub fn fstat(fd: i32) -> SysResult<libc::stat> {
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat with a valid pointer to our stack struct.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(errno());
    }
    Ok(st)
}

pub fn close(fd: i32) {
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fd) };
}

const OPEN_TREE_CLONE: u32 = 1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

/// Detached copy of the mount tree at `fd` (`open_tree(OPEN_TREE_CLONE)`).
pub fn clone_tree(fd: i32, recursive: bool) -> SysResult<i32> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: open_tree on an fd with an empty path.
    let rc = unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) };
    check(rc).map(|fd| fd as i32)
}

/// `mount_setattr` on a mount fd (recursive).
pub fn setattr_fd(fd: i32, set: u64, clear: u64) -> SysResult {
    mount_setattr_at(fd, c"", (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint, set, clear)
}

/// `mount_setattr` on the mount of `fd` only (not its submounts).
pub fn setattr_fd_one(fd: i32, set: u64, clear: u64) -> SysResult {
    mount_setattr_at(fd, c"", libc::AT_EMPTY_PATH as libc::c_uint, set, clear)
}

/// Attach detached mount `mnt` on top of the location `target` (both fds).
pub fn move_mount_fd(mnt: i32, target: i32) -> SysResult {
    // SAFETY: move_mount with two fds and empty paths.
    let rc = unsafe { libc::syscall(libc::SYS_move_mount, mnt, c"".as_ptr(), target, c"".as_ptr(), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) };
    check(rc).map(|_| ())
}

const FSOPEN_CLOEXEC: u32 = 1;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSMOUNT_CLOEXEC: u32 = 1;

/// A new, detached tmpfs mount with the given options and mount attributes.
pub fn new_tmpfs(size: &CStr, mode: &CStr, nr_inodes: Option<&CStr>, attrs: u64) -> SysResult<i32> {
    // SAFETY: fsopen/fsconfig/fsmount with C strings; fds closed on error.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC);
        let fs = check(fs)? as i32;
        let set = |k: &CStr, v: &CStr| check(libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_SET_STRING, k.as_ptr(), v.as_ptr(), 0));
        let r = (|| {
            set(c"size", size)?;
            set(c"mode", mode)?;
            if let Some(n) = nr_inodes {
                set(c"nr_inodes", n)?;
            }
            check(libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, std::ptr::null::<u8>(), std::ptr::null::<u8>(), 0))?;
            check(libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs as libc::c_uint))
        })();
        libc::close(fs);
        r.map(|m| m as i32)
    }
}

/// Receive one descriptor sent with SCM_RIGHTS (stack buffers only).
pub fn recv_fd(sock: i32) -> SysResult<i32> {
    #[repr(C)]
    struct Cmsg {
        hdr: libc::cmsghdr,
        fd: libc::c_int,
    }
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: zeroed plain-old-data receive buffers; recvmsg fills them.
    unsafe {
        let mut cm: Cmsg = std::mem::zeroed();
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = (&mut cm as *mut Cmsg).cast();
        msg.msg_controllen = std::mem::size_of::<Cmsg>() as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(errno());
        }
        if n == 0 || cm.hdr.cmsg_level != libc::SOL_SOCKET || cm.hdr.cmsg_type != libc::SCM_RIGHTS {
            return Err(libc::EPROTO);
        }
        Ok(cm.fd)
    }
}

/// Send descriptor `fd` over `sock` with SCM_RIGHTS (stack buffers only).
pub fn send_fd(sock: i32, fd: i32) -> SysResult {
    #[repr(C)]
    struct Cmsg {
        hdr: libc::cmsghdr,
        fd: libc::c_int,
    }
    let mut byte = [b'F'];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: zeroed plain-old-data structs filled in below; sendmsg reads them.
    unsafe {
        let mut cm: Cmsg = std::mem::zeroed();
        cm.hdr.cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        cm.hdr.cmsg_level = libc::SOL_SOCKET;
        cm.hdr.cmsg_type = libc::SCM_RIGHTS;
        cm.fd = fd;
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = (&mut cm as *mut Cmsg).cast();
        msg.msg_controllen = std::mem::size_of::<Cmsg>() as _;
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// Launcher side: a detached, idmapped copy of the host tree at `path`
/// (resolved from `/` without following symlinks), with `set` attributes,
/// mapped through the user namespace `userns_fd`.
pub fn idmapped_tree(path: &Path, set: u64, userns_fd: i32) -> SysResult<i32> {
    use std::os::unix::ffi::OsStrExt;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let crel = std::ffi::CString::new(rel.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
    // SAFETY: open "/" as a directory O_PATH fd; closed below.
    let root = unsafe { libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if root < 0 {
        return Err(errno());
    }
    let src = open_beneath(root, &crel);
    close(root);
    let src = src?;
    let m = clone_tree(src, true);
    close(src);
    let m = m?;
    let attr = MountAttr { attr_set: set | super::mounts::MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns_fd as u64 };
    // SAFETY: mount_setattr on our detached mount with a valid mount_attr.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            m,
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        let e = errno();
        close(m);
        return Err(e);
    }
    Ok(m)
}

/// `struct clone_args` of `clone3(2)` (the fields up to `cgroup`).
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A fork-like `clone3` (no new stack, SIGCHLD on exit) with `flags`, the
/// child born in the cgroup v2 directory `cgroup_fd`. Returns 0 in the
/// child, the child's pid in the parent.
///
/// # Safety
/// As for `fork`: the caller must be single-threaded, or the child must only
/// make system calls on memory it does not share with other threads' locks.
pub unsafe fn clone_into_cgroup(flags: u64, cgroup_fd: i32) -> SysResult<i32> {
    let args = CloneArgs {
        flags: flags | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup_fd as u64,
    };
    // SAFETY: clone_args is a valid struct of the size passed; fork semantics per the contract above.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    check(rc).map(|p| p as i32)
}

/// cgroup v1: move the calling (single-threaded) task into the cgroup whose
/// `tasks` file `fd` is open for writing. Writing `"0"` names the caller
/// itself, which the kernel moves without the global threadgroup lock.
pub fn attach_self(fd: i32) -> SysResult {
    // SAFETY: writing one byte from a static buffer.
    let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    if n != 1 {
        return Err(if n < 0 { errno() } else { libc::EIO });
    }
    Ok(())
}
