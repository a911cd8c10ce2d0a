//! Landlock: a second, independent filesystem layer, plus TCP and scoping
//! rules where the kernel's ABI has them.
//!
//! The mount layer already hides and write-protects; Landlock makes the same
//! policy hold even if a mount were missed or a path reached another way:
//! * **read** (`READ_FILE`, `EXECUTE`) is granted on the *complement* of the
//!   hidden paths: every directory entry on the way from `/` to a hidden path
//!   is granted except the hidden one itself (symlinks are skipped: their
//!   targets are covered where they live). `READ_DIR` is granted everywhere,
//!   names are not secret and the hidden directories are empty anyway;
//! * **write** (every write right of the ABI, incl. `REFER` and `TRUNCATE`) only
//!   on writable roots and the private mounts (tmpfs, the home overlay). A
//!   rule on a mount point does not reach a mount on top of it (Landlock
//!   skips the mount point walking up), so these get theirs in the child, on
//!   the mounted root; inside the home overlay, as inside any writable root,
//!   the hidden paths rely on the mount layer;
//! * `/dev`: read, write and `IOCTL_DEV` (ABI 5) for the minimal device set;
//! * **TCP** (ABI 4), only with `allowLocalBinding: false`: `bind` denied and
//!   `connect` only to the proxy's two ports (or nothing when the call has no
//!   network). By default the command may serve and reach its own servers:
//!   the sandbox's network namespace has nothing but its own loopback, so
//!   nothing of the host's is reachable either way;
//! * **scoping** (ABI 6): no abstract unix sockets and no signals outside the
//!   sandbox's own Landlock domain.
//!
//! Landlock only ever grants; it cannot carve a read-only hole inside a
//! writable tree, so protected paths rely on the mount layer.
//!
//! The ruleset is built in the launcher before the fork (rules for host paths
//! are added there). Paths that exist only inside the sandbox (its tmpfs
//! mounts, `/proc`, `/dev`) get their rules in the child, after the mounts,
//! with raw `landlock_add_rule` calls on prepared data; the worker then calls
//! `landlock_restrict_self` just before the capability drop and seccomp.
//! The result reports the ABI and which parts are active; nothing is dropped
//! silently.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};
use serde::Serialize;

use super::sys;

/// What the Landlock layer enforces on this host.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LandlockReport {
    /// Kernel ABI version (0 = unavailable).
    pub abi: i32,
    pub filesystem: bool,
    /// TCP bind/connect rules (ABI ≥ 4).
    pub network: bool,
    /// Abstract-unix-socket and signal scoping (ABI ≥ 6).
    pub scoping: bool,
    /// `IOCTL_DEV` (ABI ≥ 5).
    pub ioctl_dev: bool,
    /// Only the `execOnly` files may be started.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec_only: bool,
    pub rules: usize,
}

/// Errors building the ruleset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LandlockError {
    #[error("landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    #[error("landlock: cannot open a rule's path: {0}")]
    Dup(#[source] std::io::Error),
    #[error("filesystem.execOnly needs Landlock, which this kernel does not offer; refusing rather than letting every program run")]
    ExecOnlyUnavailable,
}

/// Inputs in host coordinates.
pub struct LandlockInputs<'a> {
    pub hidden: &'a [PathBuf],
    pub allow_read: &'a [PathBuf],
    /// Places bound read-only where the host's tree is replaced (a working
    /// directory under a skeleton): the grant on the directory they replace
    /// does not reach them.
    pub exposed: &'a [PathBuf],
    pub writable: &'a [PathBuf],
    pub allow_local_binding: bool,
    /// TCP ports `connect` may reach (the proxy's, on the sandbox's own loopback).
    pub connect_ports: &'a [u16],
    /// Paths that exist only inside the sandbox, writable (tmpfs mounts).
    pub private_writable: &'a [PathBuf],
    /// Files the mount plan prepared (credential-free config copies): read.
    pub prepared_files: &'a [PathBuf],
    /// stdin when it is a file or terminal: (fd, opened for reading, for writing).
    pub stdio_files: &'a [(OwnedFd, bool, bool)],
    /// `Some`: `EXECUTE` only on these (files, or directories for what is
    /// below); nowhere else, also not in writable places.
    pub exec_only: Option<&'a [PathBuf]>,
}

/// The prepared layer.
#[derive(Debug)]
pub struct LandlockPlan {
    fd: Option<OwnedFd>,
    child_rules: Vec<(CString, u64)>,
    pub report: LandlockReport,
}

const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

impl LandlockPlan {
    pub fn unavailable() -> LandlockPlan {
        LandlockPlan { fd: None, child_rules: vec![], report: LandlockReport::default() }
    }

    pub fn build(inp: &LandlockInputs) -> Result<LandlockPlan, LandlockError> {
        let Some(kabi) = super::host::landlock_abi() else {
            if inp.exec_only.is_some() {
                return Err(LandlockError::ExecOnlyUnavailable);
            }
            return Ok(LandlockPlan::unavailable());
        };
        let abi = ABI::from(kabi);
        let handled = AccessFs::from_all(abi);
        // With execOnly, EXECUTE is granted only by its own rules below.
        let no_exec = if inp.exec_only.is_some() { AccessFs::Execute.into() } else { landlock::BitFlags::<AccessFs>::EMPTY };
        let all = handled & !no_exec;
        let read = (AccessFs::ReadFile | AccessFs::Execute) & !no_exec;
        let mut report = LandlockReport {
            abi: kabi,
            filesystem: true,
            network: kabi >= 4 && !inp.allow_local_binding,
            scoping: kabi >= 6,
            ioctl_dev: kabi >= 5,
            exec_only: false,
            rules: 0,
        };
        let mut rs = Ruleset::default().set_compatibility(CompatLevel::BestEffort).handle_access(handled)?;
        if report.network {
            rs = rs.handle_access(AccessNet::ConnectTcp | AccessNet::BindTcp)?;
        }
        if report.scoping {
            rs = rs.scope(Scope::AbstractUnixSocket | Scope::Signal)?;
        }
        let mut created = rs.create()?;

        let add = |created: landlock::RulesetCreated, p: &Path, access: landlock::BitFlags<AccessFs>| -> Result<landlock::RulesetCreated, LandlockError> {
            // O_NOFOLLOW: a symlink swapped in after planning gets no rule
            // (its target is covered, or not, where it lives).
            let fd = match open_nofollow(p) {
                Ok(fd) => fd,
                Err(_) if p.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(true) => return Ok(created),
                Err(e) => return Err(LandlockError::Dup(e)),
            };
            let st = match fstat(&fd) {
                Some(st) if (st.st_mode & libc::S_IFMT) != libc::S_IFLNK => st,
                _ => return Ok(created),
            };
            let is_dir = (st.st_mode & libc::S_IFMT) == libc::S_IFDIR;
            let access = if is_dir { access } else { access & AccessFs::from_file(abi) };
            Ok(created.add_rule(PathBeneath::new(fd, access))?)
        };

        // Directory listing everywhere.
        created = add(created, Path::new("/"), AccessFs::ReadDir.into())?;
        report.rules += 1;
        // Reading: the complement of the hidden set.
        let mut grants = Vec::new();
        // Missing ones too: the entries beside them are granted one by one,
        // so a secret created there later (during the call) gets no grant.
        let hidden = Denied::new(inp.hidden);
        complement(Path::new("/"), &hidden, &mut grants);
        for e in inp.exposed {
            complement(e, &hidden, &mut grants);
        }
        grants.extend(inp.allow_read.iter().cloned());
        for g in &grants {
            created = add(created, g, read)?;
            report.rules += 1;
        }
        for w in inp.writable {
            created = add(created, w, all)?;
            report.rules += 1;
        }
        if let Some(list) = inp.exec_only {
            for p in list {
                created = add(created, p, AccessFs::ReadFile | AccessFs::Execute)?;
                report.rules += 1;
            }
            report.exec_only = true;
        }
        for (f, read, write) in inp.stdio_files {
            let mut access = landlock::BitFlags::<AccessFs>::EMPTY;
            if *read {
                access |= AccessFs::ReadFile;
            }
            if *write {
                access |= AccessFs::WriteFile;
            }
            access |= AccessFs::from_all(abi) & AccessFs::IoctlDev;
            let access = access & AccessFs::from_file(abi);
            let fd = f.try_clone().map_err(LandlockError::Dup)?;
            created = created.add_rule(PathBeneath::new(fd, access))?;
            report.rules += 1;
        }

        if report.network {
            for &port in inp.connect_ports {
                created = created.add_rule(landlock::NetPort::new(port, AccessNet::ConnectTcp))?;
                report.rules += 1;
            }
        }

        let bits = |a: landlock::BitFlags<AccessFs>| a.bits();
        let mut child_rules = Vec::new();
        for p in inp.private_writable {
            child_rules.push((CString::new(p.as_os_str().as_bytes()).unwrap(), bits(all)));
        }
        let dev = AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::WriteFile | (AccessFs::from_all(abi) & AccessFs::IoctlDev);
        for p in inp.prepared_files {
            child_rules.push((CString::new(p.as_os_str().as_bytes()).unwrap(), bits(AccessFs::ReadFile.into())));
        }
        child_rules.push((CString::new("/dev").unwrap(), bits(dev)));
        child_rules.push((CString::new("/proc").unwrap(), bits(AccessFs::ReadFile | AccessFs::ReadDir)));
        report.rules += child_rules.len();

        let fd: Option<OwnedFd> = created.into();
        Ok(LandlockPlan { fd, child_rules, report })
    }

    /// In the child, after the mounts: rules for sandbox-only paths.
    pub fn add_child_rules(&self) -> Result<(), i32> {
        let Some(fd) = &self.fd else { return Ok(()) };
        for (path, access) in &self.child_rules {
            // SAFETY: open a prepared C string path with O_PATH; closed below.
            let pfd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if pfd < 0 {
                if sys::errno() == libc::ENOENT {
                    continue;
                }
                return Err(sys::errno());
            }
            let attr = PathBeneathAttr { allowed_access: *access, parent_fd: pfd };
            // SAFETY: attr is a valid landlock_path_beneath_attr for the call.
            let rc = unsafe { libc::syscall(libc::SYS_landlock_add_rule, fd.as_raw_fd(), LANDLOCK_RULE_PATH_BENEATH, &attr as *const PathBeneathAttr, 0u32) };
            let e = sys::errno();
            // SAFETY: closing the fd we opened above.
            unsafe { libc::close(pfd) };
            if rc < 0 {
                return Err(e);
            }
        }
        Ok(())
    }

    /// In the worker: enforce. `no_new_privs` must already be set.
    pub fn restrict_self(&self) -> Result<(), i32> {
        let Some(fd) = &self.fd else { return Ok(()) };
        // SAFETY: landlock_restrict_self on our ruleset fd.
        let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) };
        sys::check(rc).map(|_| ())
    }

}

fn open_nofollow(p: &Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open with O_PATH on a C string; ownership moves into OwnedFd.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn fstat(fd: &OwnedFd) -> Option<libc::stat> {
    // SAFETY: fstat into a zeroed stat struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0).then_some(st)
}

/// The hidden paths, and every directory above one, for constant-time
/// lookups (the complement checks every entry it lists: hundreds of
/// entries against hundreds of paths made it milliseconds).
struct Denied<'a> {
    exact: std::collections::HashSet<&'a Path>,
    above: std::collections::HashSet<&'a Path>,
    all: &'a [PathBuf],
}

impl<'a> Denied<'a> {
    fn new(hidden: &'a [PathBuf]) -> Denied<'a> {
        let exact = hidden.iter().map(PathBuf::as_path).collect();
        let above = hidden.iter().flat_map(|h| h.ancestors().skip(1)).collect();
        Denied { exact, above, all: hidden }
    }
    fn is(&self, p: &Path) -> bool {
        self.exact.contains(p)
    }
    /// Something hidden lies strictly inside `p`.
    fn inside(&self, p: &Path) -> bool {
        self.above.contains(p)
    }
}

/// Grant `dir` whole if nothing hidden is inside it; otherwise descend and
/// grant its entries one by one, skipping hidden paths and symlinks.
fn complement(dir: &Path, hidden: &Denied, out: &mut Vec<PathBuf>) {
    if hidden.is(dir) {
        return;
    }
    if !hidden.inside(dir) {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        // Not listable by the caller (a pass-through `/home` of mode 711):
        // go on through the entries the hidden paths name, which the
        // caller can still reach; entries it cannot name get no grant.
        let mut known: Vec<PathBuf> = hidden
            .all
            .iter()
            .filter_map(|h| h.strip_prefix(dir).ok().and_then(|r| r.components().next()).map(|c| dir.join(c)))
            .collect();
        known.sort();
        known.dedup();
        for p in known {
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => complement(&p, hidden, out),
                Ok(m) if !m.file_type().is_symlink() && !hidden.is(&p) => out.push(p),
                _ => {}
            }
        }
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        let p = e.path();
        if ft.is_dir() {
            complement(&p, hidden, out);
        } else if !hidden.is(&p) {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complement_skips_hidden_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("home/.ssh")).unwrap();
        std::fs::create_dir_all(root.join("home/src")).unwrap();
        std::fs::write(root.join("home/.netrc"), "x").unwrap();
        std::fs::write(root.join("home/notes"), "x").unwrap();
        std::os::unix::fs::symlink(root.join("home/.ssh"), root.join("home/link")).unwrap();
        let hidden = [root.join("home/.ssh"), root.join("home/.netrc"), root.join("home/.aws/credentials")];
        let mut out = vec![];
        complement(root, &Denied::new(&hidden), &mut out);
        out.sort();
        assert_eq!(out, vec![root.join("home/notes"), root.join("home/src")]);
    }
}
