//! Per-process resource limits (rlimits), and the effective values of the
//! policy's limits on this host. The per-sandbox bounds (memory, process
//! count, CPU share) are `layers::cgroup`; per-user kernel quotas of the
//! sandbox's user namespace are `layers::quotas`; the wall-clock timeout is
//! the supervisor's (`launcher::supervise`).
//!
//! Set in the worker before `execve`, soft = hard (the command cannot raise
//! them back), never above what the caller already has:
//! * `RLIMIT_NPROC`: counted per user namespace on Linux ≥ 5.14, so in the
//!   sandbox's fresh namespace it bounds the sandbox's own tasks (the kernel
//!   does not enforce it for host uid 0: the pids cgroup covers that);
//! * `RLIMIT_NOFILE` = `maxOpenFiles`: the host's file table (`fs.file-max`)
//!   is shared by everyone; one sandbox holds at most maxOpenFiles ×
//!   maxProcesses of it (see [`Effective`] for how that is kept small);
//! * `RLIMIT_DATA` = `maxMemoryBytes`, only when no memory cgroup bounds the
//!   sandbox: private writable memory per process. Unlike `RLIMIT_AS` it
//!   does not count `PROT_NONE` reservations, so WebAssembly and JIT
//!   runtimes (V8 reserves gigabytes of address space) keep working;
//! * `RLIMIT_FSIZE`, `RLIMIT_CPU` (the timeout plus one second: a backstop
//!   behind the wall clock), `RLIMIT_CORE` = 0;
//! * per-user counters that the kernel charges to the caller's uid at every
//!   namespace level (`RLIMIT_SIGPENDING`, `RLIMIT_MSGQUEUE`,
//!   `RLIMIT_MEMLOCK`): an eighth of the caller's, so a sandbox cannot use
//!   up the quota the caller's own processes need.

use crate::policy::Limits;

/// What one sandbox may take of a per-user quota of the caller.
pub const USER_QUOTA_DIVISOR: u64 = 8;
/// Share of the host's file table one sandbox may hold at most.
const FILE_TABLE_DIVISOR: u64 = 8;
/// `maxOpenFiles` when the policy does not say.
const DEFAULT_OPEN_FILES: u64 = 1024;
/// Below this, ordinary programs fail; the file-table clamp stops here.
const MIN_OPEN_FILES: u64 = 256;
/// `maxMemoryBytes` when the policy does not say: min(8 GiB, MemTotal / 2).
const DEFAULT_MEMORY_CAP: u64 = 8 << 30;

/// The host facts the effective limits depend on.
#[derive(Debug, Clone, Copy)]
pub struct HostFacts {
    pub mem_total: u64,
    /// `fs.file-max` (0: unknown).
    pub file_max: u64,
    /// The caller's hard `RLIMIT_NOFILE` (the sandbox never gets more).
    pub nofile_hard: u64,
}

impl HostFacts {
    pub fn read() -> HostFacts {
        // SAFETY: sysinfo fills a plain struct we own.
        let mem_total = unsafe {
            let mut si: libc::sysinfo = std::mem::zeroed();
            if libc::sysinfo(&mut si) == 0 {
                (si.totalram as u64).saturating_mul(si.mem_unit.max(1) as u64)
            } else {
                0
            }
        };
        let file_max = std::fs::read_to_string("/proc/sys/fs/file-max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let mut nofile = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: valid pointer to an rlimit struct.
        let nofile_hard = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile) } == 0 { nofile.rlim_max } else { u64::MAX };
        HostFacts { mem_total, file_max, nofile_hard }
    }
}

/// The policy's limits as they apply on this host.
#[derive(Debug, Clone)]
pub struct Effective {
    pub timeout_ms: u64,
    pub max_processes: u64,
    pub max_memory_bytes: u64,
    pub max_open_files: u64,
    pub max_file_size_bytes: u64,
    pub tmpfs_bytes: u64,
    /// One line per limit that differs from what the policy asked.
    pub notes: Vec<String>,
}

impl Effective {
    /// Defaults: `maxMemoryBytes` = min(8 GiB, MemTotal / 2); `maxOpenFiles`
    /// = 1024. Either value (default or explicit) is lowered so that
    /// maxOpenFiles × maxProcesses ≤ fs.file-max / 8, but not below 256; an
    /// explicit value that is lowered gets a note.
    pub fn resolve(l: &Limits, timeout_ms: u64, host: &HostFacts) -> Effective {
        let mut notes = Vec::new();
        let max_memory_bytes = l.max_memory_bytes.unwrap_or_else(|| match host.mem_total {
            0 => DEFAULT_MEMORY_CAP,
            t => DEFAULT_MEMORY_CAP.min(t / 2),
        });
        let asked_files = l.max_open_files.unwrap_or(DEFAULT_OPEN_FILES);
        let mut max_open_files = asked_files;
        if host.file_max > 0 {
            let share = host.file_max / FILE_TABLE_DIVISOR / l.max_processes.max(1);
            max_open_files = asked_files.min(share.max(MIN_OPEN_FILES));
            if max_open_files < asked_files && l.max_open_files.is_some() {
                notes.push(format!(
                    "maxOpenFiles lowered from {asked_files} to {max_open_files}: maxOpenFiles × maxProcesses ({}) stays within 1/{FILE_TABLE_DIVISOR} of the host's file table (fs.file-max {})",
                    l.max_processes, host.file_max
                ));
            }
            if max_open_files.saturating_mul(l.max_processes) > host.file_max / FILE_TABLE_DIVISOR {
                notes.push(format!(
                    "open files: maxOpenFiles {max_open_files} × maxProcesses {} may hold more than 1/{FILE_TABLE_DIVISOR} of the host's file table (fs.file-max {}); lower maxProcesses",
                    l.max_processes, host.file_max
                ));
            }
        }
        let max_open_files = max_open_files.min(host.nofile_hard);
        Effective { timeout_ms, max_processes: l.max_processes, max_memory_bytes, max_open_files, max_file_size_bytes: l.max_file_size_bytes, tmpfs_bytes: l.tmpfs_bytes, notes }
    }
}

/// rlimits prepared for the worker.
#[derive(Debug, Clone, Copy)]
pub struct Rlimits {
    pub nproc: u64,
    pub nofile: u64,
    /// `RLIMIT_DATA`; `None` when a memory cgroup bounds the sandbox.
    pub data: Option<u64>,
    pub fsize: u64,
    pub cpu_secs: u64,
    pub sigpending: u64,
    pub msgqueue: u64,
    pub memlock: u64,
}

impl Rlimits {
    /// `data` is filled in once it is known whether a memory cgroup
    /// applies ([`Rlimits::with_memory_cgroup`]); until then it is set.
    pub fn new(e: &Effective) -> Rlimits {
        let share = |res| (soft_limit(res) / USER_QUOTA_DIVISOR).max(1);
        Rlimits {
            nproc: e.max_processes,
            nofile: e.max_open_files,
            data: Some(e.max_memory_bytes),
            fsize: e.max_file_size_bytes,
            // CPU time is a backstop behind the wall clock.
            cpu_secs: e.timeout_ms.div_ceil(1000) + 1,
            sigpending: share(libc::RLIMIT_SIGPENDING),
            msgqueue: share(libc::RLIMIT_MSGQUEUE),
            memlock: share(libc::RLIMIT_MEMLOCK),
        }
    }

    /// A memory cgroup bounds the whole sandbox: no per-process data limit
    /// (it would only add failures the cgroup does not need).
    pub fn with_memory_cgroup(mut self, memory_cgroup: bool, max_memory_bytes: u64) -> Rlimits {
        self.data = (!memory_cgroup).then_some(max_memory_bytes);
        self
    }

    /// Apply in the worker (after fork, no allocation).
    pub fn apply(&self) -> Result<(), i32> {
        set(libc::RLIMIT_NPROC, self.nproc)?;
        set(libc::RLIMIT_NOFILE, self.nofile)?;
        if let Some(d) = self.data {
            set(libc::RLIMIT_DATA, d)?;
        }
        set(libc::RLIMIT_FSIZE, self.fsize)?;
        set(libc::RLIMIT_CPU, self.cpu_secs)?;
        set(libc::RLIMIT_CORE, 0)?;
        set(libc::RLIMIT_SIGPENDING, self.sigpending)?;
        set(libc::RLIMIT_MSGQUEUE, self.msgqueue)?;
        set(libc::RLIMIT_MEMLOCK, self.memlock)?;
        Ok(())
    }
}

/// The launcher's own soft limit (`RLIM_INFINITY` as `u64::MAX`).
fn soft_limit(res: libc::__rlimit_resource_t) -> u64 {
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid pointer to an rlimit struct.
    if unsafe { libc::getrlimit(res, &mut cur) } != 0 {
        return 0;
    }
    cur.rlim_cur
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host(file_max: u64) -> HostFacts {
        HostFacts { mem_total: 24 << 30, file_max, nofile_hard: u64::MAX }
    }

    #[test]
    fn defaults_follow_the_host() {
        let e = Effective::resolve(&Limits::default(), 1000, &HostFacts { mem_total: 4 << 30, file_max: 0, nofile_hard: u64::MAX });
        assert_eq!(e.max_memory_bytes, 2 << 30);
        assert_eq!(e.max_open_files, 1024);
        let e = Effective::resolve(&Limits::default(), 1000, &host(u64::MAX / 2));
        assert_eq!(e.max_memory_bytes, 8 << 30);
        assert!(e.notes.is_empty(), "{:?}", e.notes);
    }

    #[test]
    fn open_files_stay_within_an_eighth_of_the_file_table() {
        // 2.4 M files, 512 processes: 602 each, silently for the default.
        let e = Effective::resolve(&Limits::default(), 1000, &host(2_466_097));
        assert_eq!(e.max_open_files, 2_466_097 / 8 / 512);
        assert!(e.notes.is_empty(), "{:?}", e.notes);
        // An explicit value that is lowered is reported.
        let l = Limits { max_open_files: Some(10_000), ..Limits::default() };
        let e = Effective::resolve(&l, 1000, &host(2_466_097));
        assert_eq!(e.max_open_files, 602);
        assert!(e.notes[0].contains("lowered from 10000 to 602"), "{:?}", e.notes);
        // Never below the floor, and then the product is reported.
        let e = Effective::resolve(&Limits::default(), 1000, &host(100_000));
        assert_eq!(e.max_open_files, MIN_OPEN_FILES);
        assert!(e.notes.iter().any(|n| n.contains("lower maxProcesses")), "{:?}", e.notes);
    }
}
