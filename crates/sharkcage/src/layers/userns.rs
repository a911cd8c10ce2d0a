//! The new user namespace's identity map.
//!
//! The sandbox maps exactly one uid and one gid: the caller's own, onto
//! themselves. Files the command creates in writable roots are owned by the
//! caller, as with any other program they run. `setgroups` is denied, so
//! supplementary groups cannot be dropped to get around a group-deny mode.
//!
//! **Root callers are shifted.** Mapped onto itself, a root caller's uid 0
//! would still own every root-owned host file (`/etc/shadow` and the like),
//! capabilities or not. So for a root caller the launcher maps the sandbox's
//! uid/gid 0 onto an otherwise unused host id (`SHIFT_BASE` + the launcher's
//! pid) and gives the sandbox *idmapped* mounts of the places it works in
//! (writable roots, the home directory, directories on the way to them that
//! others cannot search), so files there still look owned by the caller and
//! files it creates are owned by root on disk. Everything else of the host
//! it sees as "other". The launcher (real root) writes these maps; the
//! sandbox's PID 1 then drops its supplementary groups and switches to uid 0
//! of the namespace. If the host cannot make idmapped mounts, the call runs
//! with the identity map and the result says so (`layers.identity`).

use std::ffi::CString;

use super::sys::{self, SysResult};

/// First host id used for shifted root callers (well above normal ranges).
pub const SHIFT_BASE: u32 = 2_000_000_000;

/// Prepared before the fork.
pub struct IdMap {
    /// Host uid/gid the sandbox's 0 maps to, for a shifted root caller.
    pub shift: Option<u32>,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    p_setgroups: CString,
    p_uid_map: CString,
    p_gid_map: CString,
}

impl IdMap {
    pub fn for_caller(shift: Option<u32>) -> IdMap {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (umap, gmap) = match shift {
            Some(n) => (format!("0 {n} 1\n"), format!("0 {n} 1\n")),
            None => (format!("{uid} {uid} 1\n"), format!("{gid} {gid} 1\n")),
        };
        IdMap {
            shift,
            uid_map: umap.into_bytes(),
            gid_map: gmap.into_bytes(),
            uid,
            gid,
            p_setgroups: CString::new("/proc/self/setgroups").unwrap(),
            p_uid_map: CString::new("/proc/self/uid_map").unwrap(),
            p_gid_map: CString::new("/proc/self/gid_map").unwrap(),
        }
    }

    /// After clone(CLONE_NEWUSER): write our own maps. Allowed without any
    /// host privilege because we map only our own effective ids.
    pub fn apply(&self) -> SysResult {
        if self.shift.is_some() {
            // The launcher wrote the maps. Become uid/gid 0 of the namespace
            // (host SHIFT id) and keep no supplementary group (host gid 0!).
            // Raw system calls, not glibc's wrappers: those broadcast the
            // change to every thread glibc believes the process has (the
            // "setxid" signal dance), and after a raw `clone` of a launcher
            // that has other threads (`sc doctor`'s test server) glibc's
            // list still names them: the wrapper would wait for them forever.
            // SAFETY: credential syscalls with integer/NULL arguments; they
            // change only this (the only) thread.
            unsafe {
                if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0 {
                    return Err(sys::errno());
                }
                if libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32) != 0 || libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) != 0 {
                    return Err(sys::errno());
                }
            }
            return Ok(());
        }
        sys::write_file(&self.p_setgroups, b"deny")?;
        sys::write_file(&self.p_uid_map, &self.uid_map)?;
        sys::write_file(&self.p_gid_map, &self.gid_map)?;
        Ok(())
    }
}

impl IdMap {
    /// Launcher side, for a shifted root caller: write the child's maps.
    /// (`setgroups` stays allowed so the child can drop its groups.)
    pub fn write_for(&self, pid: i32) -> std::io::Result<()> {
        std::fs::write(format!("/proc/{pid}/uid_map"), &self.uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), &self.gid_map)?;
        Ok(())
    }
}
