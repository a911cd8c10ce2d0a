//! Acting as the sandbox for one operation: the calling thread's effective
//! uid/gid switched to a shifted root caller's host id, with no
//! supplementary groups, and back.
//!
//! Why: the unix-socket broker connects sockets *for* the sandbox. A peer
//! reads the connecting task's credentials (`SO_PEERCRED`, `SO_PEERGROUPS`),
//! and the kernel checks search permission on the way to a socket and write
//! permission on it with that task's filesystem ids. A root caller's sandbox
//! runs as an unprivileged host id (`layers::userns`), so the launcher (real
//! root) must not connect as uid 0: a daemon would trust it as root, and a
//! root-only socket (mode 0600, or in a mode-0700 root directory) would open.
//!
//! Only this thread changes: the switch uses raw system calls. glibc's
//! `setresuid` & co. broadcast the change to every thread of the process
//! (the "setxid" signal), and the launcher runs proxy threads while the
//! broker works; they must keep their own credentials.
//!
//! Step order (each needs the ones before it):
//! 1. save the supplementary groups, the effective gid, the parent-death
//!    signal and the dumpable flag;
//! 2. `setgroups(0, NULL)` and 3. `setresgid(-1, id, -1)`: both need
//!    CAP_SETGID, so while the effective uid is still 0;
//! 4. `setresuid(-1, id, -1)` last: the effective capabilities go, but the
//!    real and saved uid stay 0, so the permitted set is kept and the way
//!    back is open (the filesystem uid/gid follow the effective ones);
//! 5. the operation;
//! 6. undo in reverse: `setresuid(-1, 0, -1)` (capabilities return),
//!    `setresgid(-1, saved, -1)`, `setgroups(saved)`, then the parent-death
//!    signal and dumpable flag, which the kernel resets on any euid change.
//!
//! A failure while switching undoes what was done and is returned. A failure
//! while switching back leaves a launcher with the wrong identity: it
//! aborts (the sandbox's PID 1 has `PDEATHSIG`, so the call dies with it).
//!
//! The file bridge (`fsbridge.rs`) uses the same two views a shifted root
//! caller's sandbox has of the host, for the operation's thread only:
//! [`run_as`] outside the places the sandbox works in (there the sandbox is
//! an unprivileged stranger), and [`run_as_root_owner`] inside them (the
//! idmapped places, where files owned by root are its own): uid 0 without
//! the capabilities that override file permissions, and no supplementary
//! groups — what the sandbox's own root has there.

use crate::layers::sys;

/// The thread's identity before the switch.
struct Saved {
    groups: Vec<libc::gid_t>,
    egid: libc::gid_t,
    pdeathsig: libc::c_int,
    dumpable: libc::c_int,
}

/// Run `f` with this thread's effective uid/gid set to `id` and no
/// supplementary groups. Err(errno) if the switch failed (`f` did not run).
pub fn run_as<T>(id: u32, f: impl FnOnce() -> T) -> Result<T, i32> {
    let saved = save()?;
    switch_to(id, &saved)?;
    let out = f();
    switch_back(&saved);
    Ok(out)
}

fn save() -> Result<Saved, i32> {
    // SAFETY: getgroups(0, NULL) only returns the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n < 0 {
        return Err(sys::errno());
    }
    let mut groups = vec![0 as libc::gid_t; n as usize];
    // SAFETY: the buffer holds `n` gids.
    let m = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    if m < 0 {
        return Err(sys::errno());
    }
    groups.truncate(m as usize);
    let mut pdeathsig: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG writes an int through the pointer.
    unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut pdeathsig as *mut libc::c_int) };
    // SAFETY: PR_GET_DUMPABLE takes no pointer.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
    // SAFETY: getegid cannot fail.
    Ok(Saved { groups, egid: unsafe { libc::getegid() }, pdeathsig, dumpable })
}

/// Raw `setgroups(len, list)`: this thread only.
fn set_groups(groups: &[libc::gid_t]) -> Result<(), i32> {
    // SAFETY: the pointer and length describe a valid gid slice (or NULL, 0).
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), if groups.is_empty() { std::ptr::null() } else { groups.as_ptr() }) };
    sys::check(rc).map(|_| ())
}

/// Raw `setresgid(-1, egid, -1)`: this thread only.
fn set_egid(egid: libc::gid_t) -> Result<(), i32> {
    // SAFETY: integer arguments only; -1 leaves the real and saved gid.
    sys::check(unsafe { libc::syscall(libc::SYS_setresgid, -1i32 as libc::gid_t, egid, -1i32 as libc::gid_t) }).map(|_| ())
}

/// Raw `setresuid(-1, euid, -1)`: this thread only.
fn set_euid(euid: libc::uid_t) -> Result<(), i32> {
    // SAFETY: integer arguments only; -1 leaves the real and saved uid.
    sys::check(unsafe { libc::syscall(libc::SYS_setresuid, -1i32 as libc::uid_t, euid, -1i32 as libc::uid_t) }).map(|_| ())
}

/// Steps 2–4; on failure, undo the steps already made.
fn switch_to(id: u32, saved: &Saved) -> Result<(), i32> {
    set_groups(&[])?;
    if let Err(e) = set_egid(id) {
        restore_or_abort(set_groups(&saved.groups), "supplementary groups");
        return Err(e);
    }
    if let Err(e) = set_euid(id) {
        restore_or_abort(set_egid(saved.egid), "effective gid");
        restore_or_abort(set_groups(&saved.groups), "supplementary groups");
        return Err(e);
    }
    Ok(())
}

/// Step 6.
fn switch_back(saved: &Saved) {
    restore_or_abort(set_euid(0), "effective uid 0");
    restore_or_abort(set_egid(saved.egid), "effective gid");
    restore_or_abort(set_groups(&saved.groups), "supplementary groups");
    restore_flags(saved);
}

/// Capabilities that let root ignore file modes and ownership.
/// CAP_DAC_OVERRIDE (1), CAP_DAC_READ_SEARCH (2), CAP_FOWNER (3).
const DAC_CAPS: u32 = (1 << 1) | (1 << 2) | (1 << 3);

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn capget() -> Result<[CapData; 2], i32> {
    let mut h = CapHeader { version: CAP_V3, pid: 0 };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget of this thread into a v3 header and two data structs.
    sys::check(unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) })?;
    Ok(d)
}

fn capset(d: &[CapData; 2]) -> Result<(), i32> {
    let mut h = CapHeader { version: CAP_V3, pid: 0 };
    // SAFETY: capset of this thread (pid 0) from a v3 header and two data structs.
    sys::check(unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) }).map(|_| ())
}

/// Run `f` as root without the capabilities that override file modes and
/// with no supplementary groups (this thread only; see the module header).
pub fn run_as_root_owner<T>(f: impl FnOnce() -> T) -> Result<T, i32> {
    let saved = save()?;
    let caps = capget()?;
    let mut less = caps;
    less[0].effective &= !DAC_CAPS;
    set_groups(&[])?;
    if let Err(e) = capset(&less) {
        restore_or_abort(set_groups(&saved.groups), "supplementary groups");
        return Err(e);
    }
    let out = f();
    restore_or_abort(capset(&caps), "capabilities");
    restore_or_abort(set_groups(&saved.groups), "supplementary groups");
    restore_flags(&saved);
    Ok(out)
}

fn restore_flags(saved: &Saved) {
    // SAFETY: prctl with integer arguments; both only restore saved values.
    unsafe {
        if saved.pdeathsig != 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, saved.pdeathsig as libc::c_ulong);
        }
        if saved.dumpable >= 0 {
            libc::prctl(libc::PR_SET_DUMPABLE, saved.dumpable as libc::c_ulong);
        }
    }
}

fn restore_or_abort(r: Result<(), i32>, what: &str) {
    if let Err(e) = r {
        eprintln!("sharkcage: cannot restore this thread's {what} after acting as the sandbox: {}", std::io::Error::from_raw_os_error(e));
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_line(name: &str) -> String {
        let s = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        s.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string()
    }

    /// Root without the file-permission capabilities: owner rights only.
    #[test]
    fn root_owner_has_no_dac_override_and_gets_it_back() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
        let before = status_line("CapEff:");
        let inside = run_as_root_owner(|| std::fs::read(&f).map_err(|e| e.raw_os_error())).unwrap();
        assert_eq!(inside, Err(Some(libc::EACCES)));
        assert_eq!(std::fs::read(&f).unwrap(), b"x", "root lost its override");
        assert_eq!(status_line("CapEff:"), before);
    }

    /// Only the calling thread changes, and everything comes back.
    #[test]
    fn switches_this_thread_only_and_back() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: needs root");
            return;
        }
        let before = (status_line("Uid:"), status_line("Gid:"), status_line("Groups:"), status_line("CapEff:"));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (tx2, rx2) = std::sync::mpsc::channel::<String>();
        let other = std::thread::spawn(move || {
            rx.recv().unwrap();
            tx2.send(status_line("Uid:")).unwrap();
        });
        let inside = run_as(2_000_123_456, || {
            tx.send(()).unwrap();
            let theirs = rx2.recv().unwrap();
            // SAFETY: plain getters.
            (unsafe { (libc::geteuid(), libc::getegid(), libc::getgroups(0, std::ptr::null_mut())) }, theirs)
        })
        .unwrap();
        other.join().unwrap();
        assert_eq!(inside.0, (2_000_123_456, 2_000_123_456, 0));
        assert!(inside.1.split_whitespace().nth(2) == Some("0"), "another thread's euid changed: {}", inside.1);
        let after = (status_line("Uid:"), status_line("Gid:"), status_line("Groups:"), status_line("CapEff:"));
        assert_eq!(before, after);
    }
}
