//! The new user namespace's identity map.
//!
//! The sandbox maps exactly one uid and one gid: the caller's own, onto
//! themselves. Files the command creates in writable roots are owned by the
//! caller, as with any other program they run. `setgroups` is denied, so
//! supplementary groups cannot be dropped to get around a group-deny mode.
//!
//! For a root caller this means uid 0 inside is host uid 0: it still owns
//! root-owned files. That is why the command never keeps a capability
//! ([`super::caps`]), and why every host-affecting interface is read-only or
//! masked by [`super::mounts`].

use std::ffi::CString;

use super::sys::{self, SysResult};

/// Prepared before the fork.
pub struct IdMap {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    p_setgroups: CString,
    p_uid_map: CString,
    p_gid_map: CString,
}

impl IdMap {
    pub fn for_caller() -> IdMap {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        IdMap {
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
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
        sys::write_file(&self.p_setgroups, b"deny")?;
        sys::write_file(&self.p_uid_map, &self.uid_map)?;
        sys::write_file(&self.p_gid_map, &self.gid_map)?;
        Ok(())
    }
}
