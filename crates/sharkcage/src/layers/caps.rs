//! No capabilities, in any namespace, also for a root caller.
//!
//! PID 1 of the sandbox owns the new user namespace and holds a full set of
//! capabilities in it, which it needs for the mounts. The command must hold
//! none: a root caller's command runs as (mapped) uid 0, and without this
//! step `execve` would hand it every capability again.
//!
//! Order matters: the securebits and the bounding-set drops need
//! CAP_SETPCAP, so they come before the final `capset` to zero.
//! * `SECBIT_NOROOT` (+locked): uid 0 gains nothing at `execve`;
//! * `SECBIT_NO_SETUID_FIXUP`, `SECBIT_KEEP_CAPS` locked off;
//! * `SECBIT_NO_CAP_AMBIENT_RAISE` (+locked): no ambient set ever;
//! * every capability dropped from the bounding set;
//! * ambient set cleared; permitted, effective, inheritable set to zero.

use super::sys::{self, SysResult};

const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;

/// Highest capability number this kernel knows (prepared before fork).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

/// Drop everything. Runs in the worker, after fork, before seccomp.
pub fn drop_all(last_cap: u32) -> SysResult {
    sys::prctl(
        libc::PR_SET_SECUREBITS,
        SECBIT_NOROOT
            | SECBIT_NOROOT_LOCKED
            | SECBIT_NO_SETUID_FIXUP
            | SECBIT_NO_SETUID_FIXUP_LOCKED
            | SECBIT_KEEP_CAPS_LOCKED
            | SECBIT_NO_CAP_AMBIENT_RAISE
            | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
        0,
    )?;
    for cap in 0..=last_cap {
        match sys::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0) {
            Ok(()) | Err(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    sys::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0)?;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header { version: 0x2008_0522, pid: 0 }; // _LINUX_CAPABILITY_VERSION_3
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }, Data { effective: 0, permitted: 0, inheritable: 0 }];
    // SAFETY: header and a two-element data array, as capset(2) v3 requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    sys::check(rc).map(|_| ())
}
