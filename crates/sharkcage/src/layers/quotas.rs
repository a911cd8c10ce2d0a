//! Per-user kernel quotas of the sandbox's user namespace: inotify instances
//! and watches, fanotify groups and marks.
//!
//! The kernel counts these per (user namespace, uid) and charges every
//! level up to the initial namespace: an inotify instance made in the
//! sandbox counts for the sandbox's uid in its namespace *and* for the
//! namespace's creator in the caller's namespace — the caller's uid, and for
//! a shifted root caller host uid 0 (the creator), not the shifted uid. So
//! without a limit of its own a sandbox can take the caller's whole quota
//! (128 inotify instances by default) and the caller's own processes (the
//! gateway) get EMFILE while the call runs.
//!
//! PID 1 holds CAP_SYS_RESOURCE in the sandbox's namespace, and
//! `/proc/sys/user/*` shows the opener's namespace: PID 1 writes an eighth
//! of the caller's limits there (after the id map, before the mounts, while
//! the host's /proc is still mounted), so the caller keeps the rest. The
//! command cannot raise them back: it has no capabilities and `/proc/sys` is
//! read-only inside. Per-user rlimit counters (pending signals, POSIX message
//! queues, locked memory) are `layers::limits`.

use std::collections::BTreeMap;
use std::ffi::CString;

use super::limits::USER_QUOTA_DIVISOR;
use super::sys;

/// The quotas, by sysctl name under `/proc/sys/user/`, with their report key.
const QUOTAS: [(&str, &str); 4] = [
    ("max_inotify_instances", "maxInotifyInstances"),
    ("max_inotify_watches", "maxInotifyWatches"),
    ("max_fanotify_groups", "maxFanotifyGroups"),
    ("max_fanotify_marks", "maxFanotifyMarks"),
];

/// Prepared before the fork: paths and values as C strings.
#[derive(Debug)]
pub struct Quotas {
    writes: Vec<(CString, CString)>,
    /// What the sandbox gets, by report key (quotas this kernel lacks are absent).
    pub report: BTreeMap<&'static str, u64>,
}

impl Quotas {
    /// An eighth of the caller's own limits (at least 1).
    pub fn prepare() -> Quotas {
        let mut writes = Vec::new();
        let mut report = BTreeMap::new();
        for (name, key) in QUOTAS {
            let path = format!("/proc/sys/user/{name}");
            let Some(caller) = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u64>().ok()) else { continue };
            let v = (caller / USER_QUOTA_DIVISOR).max(1);
            writes.push((CString::new(path).expect("static path"), CString::new(v.to_string()).expect("digits")));
            report.insert(key, v);
        }
        Quotas { writes, report }
    }

    /// In PID 1 (after fork, no allocation). Returns the failing quota's
    /// index and errno.
    pub fn apply(&self) -> Result<(), (u32, i32)> {
        for (i, (path, value)) in self.writes.iter().enumerate() {
            sys::write_file(path, value.as_bytes()).map_err(|e| (i as u32, e))?;
        }
        Ok(())
    }

    /// Which sysctl the `i`th write was (for error messages).
    pub fn describe(&self, i: u32) -> String {
        self.writes.get(i as usize).map(|(p, v)| format!("{} = {}", p.to_string_lossy(), v.to_string_lossy())).unwrap_or_else(|| format!("quota {i}"))
    }
}
