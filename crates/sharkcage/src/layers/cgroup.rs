//! The per-sandbox bounds: one cgroup per call that holds every process of
//! the sandbox, with
//! * a **memory** limit for the sandbox as a whole — its processes, page
//!   cache, shared memory and memfds, its tmpfs, kernel memory (the per-process
//!   fallback, `RLIMIT_DATA` in `layers::limits`, covers none of these but
//!   private memory) — and swap bounded with it where swap is accounted;
//! * a **pids** limit (`maxProcesses`) where RLIMIT_NPROC does not hold: the
//!   kernel does not enforce it for host uid 0, so on v1 a pids cgroup is
//!   made for a root caller that could not be shifted (on v2 it is one more
//!   file in the same directory, so always);
//! * a lower **CPU share** than the default, so the caller (the gateway)
//!   wins under contention.
//!
//! Where it comes from, in order:
//! 1. `SHARKCAGE_CGROUP=<cgroup v2 directory>`: a subtree delegated to the
//!    caller (systemd `Delegate=yes`, see the README);
//! 2. a pure cgroup v2 host: `/sys/fs/cgroup/sharkcage` for root, the
//!    parent of the launcher's own cgroup otherwise (delegated if the caller
//!    owns it);
//! 3. a cgroup v1 (or hybrid) host, root only: `/sys/fs/cgroup/{memory,pids}/
//!    sharkcage/<call>`, and `/sys/fs/cgroup/cpu/sharkcage` for the share;
//! 4. none: the result says so (`layers.limits.memoryLimitBy` =
//!    `rlimit-data`) and `sc doctor` warns.
//!
//! How the sandbox gets in without migrating a running process (writing a
//! pid to `cgroup.procs` write-locks `cgroup_threadgroup_rwsem`, which waits
//! for an RCU grace period: 5–20 ms per call):
//! * v2: `clone3(CLONE_INTO_CGROUP)` with this call's directory — PID 1 is
//!   born in it (`launcher::supervise`);
//! * v1: the launcher opens `<dir>/tasks` before the clone (v1 checks the
//!   permission against the credentials of whoever opened the file), and PID
//!   1 — single-threaded, before anything else runs — writes `"0"` into each
//!   inherited descriptor: a thread moving itself skips that lock
//!   (`launcher::child`).
//!
//! Cost (v1, measured on the 2-core VM): creating a memory cgroup takes
//! ~140 µs, renaming one ~30 µs, configuring and opening it ~50 µs, PID 1's
//! self-attach ~30 µs, rmdir ~60–100 µs. So v1 memory cgroups are pooled:
//! a call claims one of two spares (`spare-0`, `spare-1`) by `rename`
//! (atomic: of two launchers only one gets it; the other makes its own),
//! and after the call renames it back when it is empty and holds (almost) no
//! charges — a memory cgroup keeps the charges of page cache its call left
//! behind, and those must not count against the next sandbox, so a cgroup
//! charged with more than [`RECYCLE_MAX_USAGE`] is removed instead. A call
//! that found no spare makes a fresh cgroup, which then fills the pool.
//! Sweeping happens while PID 1 builds the sandbox
//! ([`CallCgroup::housekeeping`]), off the call's critical path.
//!
//! Teardown: once PID 1 is reaped its PID namespace is empty, so the call's
//! directories are removed (or the memory one returned to the pool) right
//! away; anything still listed is killed first. Directories of launchers that were SIGKILLed are swept by a
//! later call (named `<launcher pid>-<n>`: the pid is gone and no process is
//! in them).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::limits::Effective;

const ROOT: &str = "/sys/fs/cgroup";
/// Per-call directories on v2 share their parent with other cgroups.
const V2_PREFIX: &str = "sharkcage-";
/// CPU weight: half the default (v1 `cpu.shares` 1024, v2 `cpu.weight` 100).
const V1_CPU_SHARES: &str = "512";
const V2_CPU_WEIGHT: &str = "50";
/// Spare v1 memory cgroups, claimed by rename.
const SPARES: [&str; 2] = ["spare-0", "spare-1"];
/// A used v1 memory cgroup charged with at most this much goes back to the pool.
pub const RECYCLE_MAX_USAGE: u64 = 1 << 20;

/// Which cgroup hierarchy bounds this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupKind {
    V1,
    V2,
    None,
}

impl CgroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupKind::V1 => "v1",
            CgroupKind::V2 => "v2",
            CgroupKind::None => "none",
        }
    }
}

/// The cgroup of one call.
#[derive(Debug)]
pub struct CallCgroup {
    pub kind: CgroupKind,
    /// The call's directory name (v1: the same in every hierarchy).
    name: Option<String>,
    /// Per-call directories, removed after the call.
    dirs: Vec<PathBuf>,
    /// v1: `tasks` files PID 1 moves itself into.
    tasks: Vec<OwnedFd>,
    /// v2: this call's directory, for `CLONE_INTO_CGROUP`.
    dir_fd: Option<OwnedFd>,
    pub memory: bool,
    pub pids: bool,
    pub cpu: bool,
    /// Swap is bounded together with memory (or the host has no swap accounting to bound).
    pub swap_bounded: bool,
    /// Why the sandbox has no per-sandbox memory bound.
    pub unavailable: Option<String>,
}

/// Most `tasks` descriptors PID 1 gets (memory, pids, cpu).
pub const MAX_ATTACH: usize = 3;

impl CallCgroup {
    pub fn none(why: String) -> CallCgroup {
        CallCgroup { kind: CgroupKind::None, name: None, dirs: vec![], tasks: vec![], dir_fd: None, memory: false, pids: false, cpu: false, swap_bounded: false, unavailable: Some(why) }
    }

    /// Create this call's cgroup; `pids_needed`: RLIMIT_NPROC will not hold
    /// (an unshifted root caller). Never an error: what could not be set up
    /// is reported (`unavailable`, the flags).
    pub fn create(limits: &Effective, pids_needed: bool) -> CallCgroup {
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        let name = format!("{}-{}", std::process::id(), unique_suffix());
        if let Some(p) = std::env::var_os("SHARKCAGE_CGROUP") {
            let p = PathBuf::from(p);
            if !p.is_absolute() || !p.join("cgroup.controllers").exists() {
                return CallCgroup::none(format!("SHARKCAGE_CGROUP={} is not a cgroup v2 directory", p.display()));
            }
            return v2_create(&p, &name, limits);
        }
        if Path::new(ROOT).join("cgroup.controllers").exists() {
            let parent = if euid == 0 {
                let p = Path::new(ROOT).join("sharkcage");
                if std::fs::create_dir(&p).is_ok() {
                    let _ = std::fs::write(p.join("cpu.weight"), V2_CPU_WEIGHT);
                }
                Some(p)
            } else {
                own_v2_cgroup().and_then(|own| Path::new(ROOT).join(own.trim_start_matches('/')).parent().map(Path::to_path_buf))
            };
            return match parent {
                Some(p) => v2_create(&p, &name, limits),
                None => CallCgroup::none("the launcher's own cgroup v2 is unknown".into()),
            };
        }
        if euid != 0 {
            return CallCgroup::none(format!(
                "cgroup v1 host and the caller (uid {euid}) is not root; on a cgroup v2 host, run the gateway in a delegated subtree (SHARKCAGE_CGROUP)"
            ));
        }
        let mut cg = v1_create(&name, limits);
        if pids_needed {
            cg.add_v1_pids(limits);
        }
        cg
    }

    /// The retry of a root caller that could not be shifted needs the pids
    /// limit RLIMIT_NPROC does not give it (v2 has one already).
    pub fn ensure_pids(&mut self, limits: &Effective) {
        if self.kind == CgroupKind::V1 && !self.pids {
            self.add_v1_pids(limits);
        }
    }

    fn add_v1_pids(&mut self, limits: &Effective) {
        let Some(name) = self.name.clone() else { return };
        let parent = Path::new(ROOT).join("pids/sharkcage");
        let r = (|| {
            ensure_dir(&parent)?;
            let d = parent.join(&name);
            std::fs::create_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            self.dirs.push(d.clone());
            write(&d, "pids.max", &limits.max_processes.to_string())?;
            open(&d.join("tasks"), libc::O_WRONLY)
        })();
        if let Ok(fd) = r {
            self.tasks.push(fd);
            self.pids = true;
        }
    }

    /// Work that is not on the call's critical path, done while PID 1 builds
    /// the sandbox: sweep cgroups of killed launchers.
    pub fn housekeeping(&self) {
        match self.kind {
            CgroupKind::V1 => {
                // A call's pids directory has the name of its memory one.
                let mem = Path::new(ROOT).join("memory/sharkcage");
                sweep_stale(&mem, "", &[&Path::new(ROOT).join("pids/sharkcage")]);
            }
            CgroupKind::V2 => {
                if let Some(parent) = self.dirs.first().and_then(|d| d.parent()) {
                    sweep_stale(parent, V2_PREFIX, &[]);
                }
            }
            CgroupKind::None => {}
        }
    }

    /// v1: the `tasks` descriptors PID 1 writes `"0"` into (-1: unused).
    pub fn attach_fds(&self) -> [i32; MAX_ATTACH] {
        let mut a = [-1; MAX_ATTACH];
        for (slot, fd) in a.iter_mut().zip(&self.tasks) {
            *slot = fd.as_raw_fd();
        }
        a
    }

    /// v2: the directory descriptor for `clone3(CLONE_INTO_CGROUP)`.
    pub fn clone_into(&self) -> Option<i32> {
        self.dir_fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Remove the call's directories, or return the v1 memory one to the
    /// pool (after PID 1 was reaped, so nothing should be left in them;
    /// anything that is gets killed).
    pub fn remove(&mut self) -> Result<(), String> {
        self.tasks.clear();
        self.dir_fd = None;
        let mut failed = Vec::new();
        for d in self.dirs.drain(..) {
            if self.kind == CgroupKind::V1 && d.parent().is_some_and(|p| p.ends_with("memory/sharkcage")) && recycle(&d) {
                continue;
            }
            if let Err(e) = remove_dir(&d) {
                failed.push(format!("{}: {e}", d.display()));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("per-call cgroup not removed ({}); the next call sweeps it", failed.join("; ")))
        }
    }
}

impl Drop for CallCgroup {
    fn drop(&mut self) {
        // Normally `remove` ran already; this covers early returns.
        let _ = self.remove();
    }
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Return a used v1 memory cgroup to the pool: empty, barely charged, and a
/// spare name free (kernfs refuses to rename onto an existing name).
fn recycle(d: &Path) -> bool {
    let empty = std::fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty());
    let usage = std::fs::read_to_string(d.join("memory.usage_in_bytes")).ok().and_then(|u| u.trim().parse::<u64>().ok());
    if !empty || usage.is_none_or(|u| u > RECYCLE_MAX_USAGE) {
        return false;
    }
    let parent = d.parent().unwrap_or(Path::new("/"));
    SPARES.iter().any(|s| std::fs::rename(d, parent.join(s)).is_ok())
}

/// rmdir, killing what is left and retrying while the kernel still lists
/// tasks (exiting processes leave a cgroup a little after they are reaped).
fn remove_dir(d: &Path) -> std::io::Result<()> {
    let mut last = None;
    for _ in 0..200 {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last = Some(e),
            Err(e) => return Err(e),
        }
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: SIGKILL to a process in this call's own cgroup.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err(last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EBUSY)))
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    std::fs::write(dir.join(file), value).map_err(|e| format!("{}/{file}: {e}", dir.display()))
}

fn open(p: &Path, flags: i32) -> Result<OwnedFd, String> {
    let c = CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{}: NUL in path", p.display()))?;
    // SAFETY: open on a C string; ownership of the new descriptor moves into OwnedFd.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!("{}: {}", p.display(), std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ensure_dir(p: &Path) -> Result<bool, String> {
    match std::fs::create_dir(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// cgroup v1 (root only): a per-call `memory` directory (a claimed spare
/// when there is one) and the shared `cpu` one; PID 1 attaches itself
/// through their `tasks` files.
fn v1_create(name: &str, limits: &Effective) -> CallCgroup {
    let root = Path::new(ROOT);
    let mut cg = CallCgroup::none(String::new());
    cg.kind = CgroupKind::V1;
    cg.name = Some(name.to_string());
    cg.unavailable = None;
    let mem_parent = root.join("memory/sharkcage");
    let mem = (|| {
        let d = mem_parent.join(name);
        let swap = !host_has_no_swap();
        if SPARES.iter().any(|s| std::fs::rename(mem_parent.join(s), &d).is_ok()) {
            match set_v1_memory(&d, limits.max_memory_bytes, swap) {
                Ok(bounded) => {
                    cg.dirs.push(d.clone());
                    cg.swap_bounded = bounded;
                    return open(&d.join("tasks"), libc::O_WRONLY);
                }
                // A recycled cgroup whose leftover charges exceed the new
                // limit: a fresh one instead.
                Err(_) => {
                    let _ = std::fs::remove_dir(&d);
                }
            }
        }
        ensure_dir(&mem_parent)?;
        std::fs::create_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        cg.dirs.push(d.clone());
        cg.swap_bounded = set_v1_memory(&d, limits.max_memory_bytes, swap)?;
        open(&d.join("tasks"), libc::O_WRONLY)
    })();
    match mem {
        Ok(fd) => {
            cg.tasks.push(fd);
            cg.memory = true;
        }
        Err(e) => cg.unavailable = Some(format!("no memory cgroup: {e}")),
    }
    if let Ok(fd) = v1_cpu_tasks(&root.join("cpu/sharkcage")) {
        cg.tasks.push(fd);
        cg.cpu = true;
    }
    if cg.tasks.is_empty() {
        cg.kind = CgroupKind::None;
    }
    cg
}

/// The shared v1 `cpu` cgroup of all sandboxes (its share is set when it
/// is made; an administrator may tune it): its `tasks` file.
fn v1_cpu_tasks(d: &Path) -> Result<OwnedFd, String> {
    open(&d.join("tasks"), libc::O_WRONLY).or_else(|_| {
        if ensure_dir(d)? {
            write(d, "cpu.shares", V1_CPU_SHARES)?;
        }
        open(&d.join("tasks"), libc::O_WRONLY)
    })
}

/// Set a v1 memory limit and, on a host with swap, memory + swap to the same
/// value (no room for swap). Returns whether swap is bounded. A recycled
/// cgroup has the previous call's values; `limit ≤ memsw` must hold after
/// each write, so the order depends on the direction.
fn set_v1_memory(d: &Path, bytes: u64, swap: bool) -> Result<bool, String> {
    let b = bytes.to_string();
    if !swap {
        write(d, "memory.limit_in_bytes", &b)?;
        return Ok(true);
    }
    if write(d, "memory.limit_in_bytes", &b).is_ok() {
        return Ok(write(d, "memory.memsw.limit_in_bytes", &b).is_ok());
    }
    // Raising: memsw first.
    let memsw = write(d, "memory.memsw.limit_in_bytes", &b).is_ok();
    write(d, "memory.limit_in_bytes", &b)?;
    Ok(memsw)
}

fn host_has_no_swap() -> bool {
    // SAFETY: sysinfo fills a plain struct we own.
    unsafe {
        let mut si: libc::sysinfo = std::mem::zeroed();
        libc::sysinfo(&mut si) == 0 && si.totalswap == 0
    }
}

/// cgroup v2: a per-call directory below `parent`, entered with
/// `CLONE_INTO_CGROUP`.
fn v2_create(parent: &Path, name: &str, limits: &Effective) -> CallCgroup {
    let r = (|| -> Result<CallCgroup, String> {
        let available = std::fs::read_to_string(parent.join("cgroup.controllers")).map_err(|e| format!("{}: {e}", parent.display()))?;
        let has = |c: &str| available.split_whitespace().any(|x| x == c);
        if !has("memory") {
            return Err(format!("{} has no memory controller (not delegated to this caller?)", parent.display()));
        }
        let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let missing: Vec<String> = ["memory", "pids", "cpu"].iter().filter(|c| has(c) && !enabled.split_whitespace().any(|x| x == **c)).map(|c| format!("+{c}")).collect();
        if !missing.is_empty() {
            write(parent, "cgroup.subtree_control", &missing.join(" "))?;
        }
        let d = parent.join(format!("{V2_PREFIX}{name}"));
        std::fs::create_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        let mut cg = CallCgroup::none(String::new());
        cg.kind = CgroupKind::V2;
        cg.name = Some(name.to_string());
        cg.unavailable = None;
        cg.dirs.push(d.clone());
        write(&d, "memory.max", &limits.max_memory_bytes.to_string())?;
        cg.memory = true;
        cg.swap_bounded = !d.join("memory.swap.max").exists() || write(&d, "memory.swap.max", "0").is_ok();
        // One OOM kill takes the whole sandbox, not a random process of it.
        let _ = write(&d, "memory.oom.group", "1");
        cg.pids = write(&d, "pids.max", &limits.max_processes.to_string()).is_ok();
        cg.cpu = write(&d, "cpu.weight", V2_CPU_WEIGHT).is_ok();
        cg.dir_fd = Some(open(&d, libc::O_PATH | libc::O_DIRECTORY)?);
        Ok(cg)
    })();
    r.unwrap_or_else(CallCgroup::none)
}

/// Remove per-call cgroups left by launchers that were killed (SIGKILL gives
/// them no chance to clean up): the launcher pid in the name is gone and no
/// process is in them. A stale name in `parent` is also removed from each
/// of `siblings` (the other v1 hierarchies).
fn sweep_stale(parent: &Path, prefix: &str, siblings: &[&Path]) {
    let Ok(rd) = std::fs::read_dir(parent) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        // SAFETY: kill with signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0 || super::sys::errno() == libc::EPERM;
        if !alive && std::fs::read_to_string(e.path().join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty()) {
            for s in siblings {
                let _ = std::fs::remove_dir(s.join(&name));
            }
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

fn own_v2_cgroup() -> Option<String> {
    let s = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    s.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string))
}
