//! Thin, allocation-free wrappers over the raw system calls the after-fork
//! code needs. Every function takes pre-built C strings and returns the raw
//! errno on failure, so the child can report it through its error pipe.

use std::ffi::CStr;

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

/// `mount_setattr(2)` on `path` (recursively when `recursive`).
pub fn mount_setattr(path: &CStr, recursive: bool, set: u64, clear: u64) -> SysResult {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let flags = if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 } | libc::AT_NO_AUTOMOUNT as libc::c_uint;
    // SAFETY: attr is a valid mount_attr of the size we pass; path is a C string.
    let rc = unsafe {
        libc::syscall(libc::SYS_mount_setattr, libc::AT_FDCWD, path.as_ptr(), flags, &attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    };
    check(rc).map(|_| ())
}

pub fn mkdir(path: &CStr, mode: libc::mode_t) -> SysResult {
    // SAFETY: path is a valid C string.
    let rc = unsafe { libc::mkdir(path.as_ptr(), mode) };
    if rc < 0 && errno() != libc::EEXIST {
        return Err(errno());
    }
    Ok(())
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
