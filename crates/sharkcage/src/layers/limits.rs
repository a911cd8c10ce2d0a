//! Resource limits: processes, memory, file size, CPU; the wall-clock timeout
//! is the supervisor's (see `launcher::supervise`).
//!
//! Two mechanisms, reported separately in the result's `layers.limits`:
//! * **rlimits**, set in the worker before `execve`. `RLIMIT_NPROC` is
//!   counted per user namespace on Linux ≥ 5.14, so in the sandbox's fresh
//!   namespace it bounds the sandbox's own processes — but the kernel does
//!   not enforce it for host uid 0. `RLIMIT_AS` bounds each process's
//!   address space, `RLIMIT_FSIZE` file size, `RLIMIT_CPU` CPU seconds,
//!   `RLIMIT_CORE` is 0.
//! * **cgroups**, for a root caller that could not be shifted to an
//!   unprivileged host uid (see `userns`): a per-call `pids` and `memory`
//!   cgroup (v1 controllers, or a v2 subtree when delegated), because the
//!   kernel does not enforce RLIMIT_NPROC for host uid 0. A shifted root
//!   caller is bounded by RLIMIT_NPROC like anyone else (and spared the
//!   10–20 ms that moving a process into a v1 cgroup costs).
//!   The launcher puts PID 1 in them before it runs anything, and removes
//!   them after the call (killing anything left, though nothing can be).

use std::path::{Path, PathBuf};

use crate::policy::Limits;

/// rlimits prepared for the worker.
#[derive(Debug, Clone, Copy)]
pub struct Rlimits {
    pub nproc: u64,
    pub address_space: u64,
    pub fsize: u64,
    pub cpu_secs: u64,
}

impl Rlimits {
    pub fn from_policy(l: &Limits) -> Rlimits {
        Rlimits {
            nproc: l.max_processes,
            address_space: l.max_memory_bytes,
            fsize: l.max_file_size_bytes,
            // CPU time is a backstop behind the wall clock.
            cpu_secs: l.timeout_ms.div_ceil(1000) + 1,
        }
    }

    /// Apply in the worker (after fork, no allocation).
    pub fn apply(&self) -> Result<(), i32> {
        set(libc::RLIMIT_NPROC, self.nproc)?;
        set(libc::RLIMIT_AS, self.address_space)?;
        set(libc::RLIMIT_FSIZE, self.fsize)?;
        set(libc::RLIMIT_CPU, self.cpu_secs)?;
        set(libc::RLIMIT_CORE, 0)?;
        Ok(())
    }
}

fn set(res: libc::__rlimit_resource_t, v: u64) -> Result<(), i32> {
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid pointer to an rlimit struct.
    unsafe { libc::getrlimit(res, &mut cur) };
    // Never raise a limit the caller already has lower.
    let v = v.min(cur.rlim_max);
    let r = libc::rlimit { rlim_cur: v, rlim_max: v };
    // SAFETY: valid pointer to an rlimit struct.
    if unsafe { libc::setrlimit(res, &r) } != 0 {
        return Err(super::sys::errno());
    }
    Ok(())
}

/// Which cgroup mechanism bounds this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CgroupKind {
    V1,
    V2,
    None,
}

/// Per-call cgroups, created by the launcher before PID 1 runs anything.
#[derive(Debug)]
pub struct Cgroups {
    pub kind: CgroupKind,
    dirs: Vec<PathBuf>,
    pub pids_limited: bool,
    pub memory_limited: bool,
}

impl Cgroups {
    pub fn none() -> Cgroups {
        Cgroups { kind: CgroupKind::None, dirs: vec![], pids_limited: false, memory_limited: false }
    }

    /// Create cgroups for one call. Failure is not an error: the result
    /// reports which limits are cgroup-backed.
    pub fn create(name: &str, limits: &Limits) -> Cgroups {
        let v1_pids = Path::new("/sys/fs/cgroup/pids");
        let v1_mem = Path::new("/sys/fs/cgroup/memory");
        let mut cg = Cgroups::none();
        sweep_stale(&[v1_pids.join("sharkcage"), v1_mem.join("sharkcage")]);
        if v1_pids.join("cgroup.procs").exists() {
            let dir = v1_pids.join("sharkcage").join(name);
            if std::fs::create_dir_all(&dir).is_ok() {
                if std::fs::write(dir.join("pids.max"), limits.max_processes.to_string()).is_ok() {
                    cg.pids_limited = true;
                    cg.kind = CgroupKind::V1;
                }
                cg.dirs.push(dir);
            }
            if v1_mem.join("cgroup.procs").exists() {
                let dir = v1_mem.join("sharkcage").join(name);
                if std::fs::create_dir_all(&dir).is_ok() {
                    if std::fs::write(dir.join("memory.limit_in_bytes"), limits.max_memory_bytes.to_string()).is_ok() {
                        cg.memory_limited = true;
                        // Also bound swap where accounted, so the limit holds.
                        let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), limits.max_memory_bytes.to_string());
                    }
                    cg.dirs.push(dir);
                }
            }
            return cg;
        }
        // Pure cgroup v2: use our own cgroup's parent subtree if it is delegated to us.
        let root = Path::new("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            if let Some(own) = own_v2_cgroup() {
                let base = root.join(own.trim_start_matches('/'));
                let parent = base.parent().map(Path::to_path_buf).unwrap_or(base.clone());
                let dir = parent.join(format!("sharkcage-{name}"));
                if std::fs::create_dir(&dir).is_ok() {
                    cg.kind = CgroupKind::V2;
                    cg.pids_limited = std::fs::write(dir.join("pids.max"), limits.max_processes.to_string()).is_ok();
                    cg.memory_limited = std::fs::write(dir.join("memory.max"), limits.max_memory_bytes.to_string()).is_ok();
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                    cg.dirs.push(dir);
                }
            }
        }
        cg
    }

    /// Put `pid` into every cgroup we made.
    pub fn add(&self, pid: i32) -> bool {
        let mut ok = true;
        for d in &self.dirs {
            ok &= std::fs::write(d.join("cgroup.procs"), pid.to_string()).is_ok();
        }
        ok
    }

    /// Kill anything left and remove the cgroups.
    pub fn cleanup(&mut self) {
        for d in self.dirs.drain(..) {
            for _ in 0..100 {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                if procs.trim().is_empty() {
                    break;
                }
                for p in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: sending SIGKILL to a pid in our own per-call cgroup.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            let _ = std::fs::remove_dir(&d);
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Remove per-call cgroups left by launchers that were killed (SIGKILL gives
/// them no chance to clean up). A cgroup is stale when the launcher pid in
/// its name is gone and no process is in it.
fn sweep_stale(parents: &[PathBuf]) {
    for parent in parents {
        let Ok(rd) = std::fs::read_dir(parent) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
            // SAFETY: kill with signal 0 only checks for existence.
            let alive = unsafe { libc::kill(pid, 0) } == 0 || super::sys::errno() == libc::EPERM;
            if alive {
                continue;
            }
            let procs = std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
            if procs.trim().is_empty() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

fn own_v2_cgroup() -> Option<String> {
    let s = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    s.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string))
}
