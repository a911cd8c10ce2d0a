//! Running one command in a fresh sandbox.
//!
//! [`run`] = [`plan::Plan::build`] (everything prepared, nothing forked) →
//! [`supervise::run`] (clone into new namespaces, `child.rs` sets up and
//! execs, the launcher relays output and enforces the timeout) →
//! [`ExecOutcome`] (what `sc exec --json` writes).
//!
//! This module must only be used from a single-threaded process: the
//! launcher binary `sc`. The napi addon never calls it; it spawns `sc`
//! (fork+exec only), because the Node process is multi-threaded.

pub mod child;
pub mod config_copies;
pub mod exec_only;
pub mod home_layer;
pub mod plan;
pub mod protected;
pub mod proxy_session;
pub mod pty;
pub mod quarantine;
pub mod redact_stream;
pub mod scancache;
pub mod supervise;
pub mod thread_identity;
pub mod unix_broker;
pub mod unix_target;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::layers::cgroup::CallCgroup;
use crate::layers::landlock::LandlockReport;
use crate::policy::{Policy, PolicyError};

/// Errors of a call. Exit codes: policy/usage 2, host cannot sandbox 3,
/// command not runnable 127, other setup failures 125.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    #[error("{0}: cannot run: {1}")]
    CommandNotRunnable(String, std::io::Error),
    /// The uid shift for a root caller needs idmapped mounts; the launcher
    /// retries without it.
    #[error("idmapped mounts unavailable: {0}")]
    IdmapUnavailable(String),
    /// The home overlay could not be mounted; the launcher retries without it.
    #[error("home layer unavailable: {0}")]
    HomeLayerUnavailable(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl LaunchError {
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::Policy(_) | LaunchError::Usage(_) => 2,
            LaunchError::Unsupported(_) => 3,
            LaunchError::CommandNotRunnable(_, e) if e.raw_os_error() == Some(libc::ENOENT) => 127,
            LaunchError::CommandNotRunnable(..) => 126,
            LaunchError::Setup(_) | LaunchError::Io(_) | LaunchError::IdmapUnavailable(_) | LaunchError::HomeLayerUnavailable(_) => 125,
        }
    }
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LaunchError::Policy(_) => "policy",
            LaunchError::Usage(_) => "usage",
            LaunchError::Unsupported(_) => "unsupported-host",
            LaunchError::Setup(_) | LaunchError::Io(_) | LaunchError::IdmapUnavailable(_) | LaunchError::HomeLayerUnavailable(_) => "setup",
            LaunchError::CommandNotRunnable(..) => "command-not-runnable",
        }
    }
}

/// A reported event: something refused, withheld or worth knowing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Violation {
    pub kind: String,
    pub detail: String,
    /// Something was refused or withheld (a secret variable, a connection,
    /// a unix socket, a protected path), as opposed to a note (output cut,
    /// timeout, how a limit is enforced…). The audit log's `deny`/`note`.
    pub refused: bool,
}

/// The kinds of [`Violation`] that are refusals.
const REFUSAL_KINDS: [&str; 4] = ["env", "network", "unix-socket", "protected-path"];

impl Violation {
    pub fn note(kind: &str, detail: String) -> Violation {
        Violation { kind: kind.to_string(), detail, refused: REFUSAL_KINDS.contains(&kind) }
    }
}

/// One call.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub policy: Policy,
    /// Names the policy in errors (file path or `<inline>`).
    pub policy_source: String,
    pub workspace: Option<PathBuf>,
    pub extra_allow_write: Vec<String>,
    pub extra_deny_read: Vec<String>,
    pub extra_allow_domains: Vec<String>,
    /// Serve the network through the gateway's proxy: its attach socket and
    /// the ticket it issued for this call (see `proxy::attach`).
    pub net_attach: Option<(PathBuf, String)>,
    /// Fixed answers for names (`NAME=IP`), for the embedded proxy.
    pub net_resolve: Vec<String>,
    /// Host paths made visible read-only even where the sandbox has its own
    /// private tmpfs (used by `sc doctor` to run its probe binary).
    pub expose_read_only: Vec<PathBuf>,
    pub timeout_ms: Option<u64>,
    /// Give the command a terminal (`--pty`): one of the sandbox's own, for
    /// its stdin, stdout and stderr, relayed by the launcher (`pty`).
    pub pty: bool,
    /// Explicit variables for this call (still pass the secret filter).
    pub env: Vec<(String, String)>,
    /// `(name, value)`: values redacted from the command's output (the
    /// credentials injected into a skill's sandbox).
    pub redact: Vec<(String, String)>,
    /// Which private home layer the call gets (see `home_layer`).
    pub home_layer: home_layer::Request,
    pub argv: Vec<OsString>,
}

/// What the supervisor observed.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The proxy's report (None: the call had no network).
    pub net: Option<proxy_session::NetOutcome>,
    /// Refused unix-socket connects (the broker's events).
    pub unix_events: Vec<Violation>,
    pub unix_connected: usize,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub aborted_by: Option<i32>,
    pub truncated: bool,
    pub duration: Duration,
}

/// Which layers were active for the call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layers {
    pub namespaces: Vec<&'static str>,
    pub filesystem: FsReport,
    pub landlock: LandlockReport,
    pub seccomp: bool,
    /// Unix sockets the command may connect to through the launcher's broker.
    pub unix_sockets: UnixReport,
    pub no_new_privs: bool,
    pub capabilities: &'static str,
    /// "caller" (the caller's own uid, mapped onto itself) or
    /// "shifted:<host uid>" (a root caller on an unprivileged host uid).
    pub identity: String,
    pub session_keyring: &'static str,
    pub limits: LimitsReport,
}

/// The call's network: the proxy, its rules, and every decision it made.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkReport {
    /// "none" (no network at all) or "proxy".
    pub mode: &'static str,
    /// "launcher" (embedded) or "gateway" (the OpenClaw addon's proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Where the command finds the proxy (inside its own network namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socks_proxy: Option<String>,
    pub allowed_domains: Vec<String>,
    pub events: Vec<crate::proxy::NetEvent>,
    /// Events beyond the per-call cap, only counted.
    pub dropped_events: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnixReport {
    /// "none" (no AF_UNIX socket at all) or "broker".
    pub mode: &'static str,
    pub allowed: Vec<PathBuf>,
    pub connected: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FsReport {
    pub read_only_root: bool,
    pub writable: Vec<PathBuf>,
    pub hidden: usize,
    pub protected: Vec<PathBuf>,
    /// The private home layer (absent: the home is read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_layer: Option<HomeLayerReport>,
}

/// Where the call's home writes went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HomeLayerReport {
    /// `workspace:<path>`, `default`, `name:<name>` or `fresh` (not kept).
    pub key: String,
    pub dir: PathBuf,
}

/// How each limit is enforced, with the effective values (see
/// `layers::limits`, `layers::cgroup`, `layers::quotas`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsReport {
    pub timeout_ms: u64,
    pub max_output_bytes: u64,
    pub max_processes: u64,
    /// "cgroup" (per-call pids cgroup), "rlimit" (RLIMIT_NPROC in the
    /// sandbox's user namespace) or "none" (root caller without cgroups).
    pub process_limit_by: &'static str,
    pub max_memory_bytes: u64,
    /// "cgroup": the whole sandbox (processes, page cache, shared memory,
    /// memfds, tmpfs, kernel memory); "rlimit-data": each process's private
    /// writable memory only (RLIMIT_DATA).
    pub memory_limit_by: &'static str,
    /// Why the sandbox has no memory cgroup (absent when it has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_cgroup_unavailable: Option<String>,
    /// The per-call cgroup's hierarchy: "v1", "v2" or "none".
    pub cgroup: crate::layers::cgroup::CgroupKind,
    /// "cgroup" (a CPU share below the default) or "none"; CPU time is
    /// always bounded by RLIMIT_CPU (the timeout).
    pub cpu_share_by: &'static str,
    /// Per process (RLIMIT_NOFILE).
    pub max_open_files: u64,
    pub max_file_size_bytes: u64,
    /// `/tmp`, `/var/tmp` and `/dev/shm` together.
    pub tmpfs_bytes: u64,
    /// Per-user kernel quotas of the sandbox's user namespace.
    pub user_quotas: std::collections::BTreeMap<&'static str, u64>,
}

/// The result of a call, as `sc exec --json` writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub timed_out: bool,
    pub aborted: bool,
    pub truncated: bool,
    pub duration_ms: f64,
    pub layers: Layers,
    pub network: NetworkReport,
    pub violations: Vec<Violation>,
    /// The protected-state scan, kept for the next call: written when this
    /// is dropped (or by [`ExecOutcome::keep_scan`]), after the result is out.
    #[serde(skip)]
    pub scan: scancache::Pending,
}

impl ExecOutcome {
    /// Write the protected-state scan for the next call now.
    pub fn keep_scan(&mut self) {
        self.scan.save();
    }

    /// The launcher's exit status: the command's, 128+signal when it was
    /// killed, 124 on timeout.
    pub fn process_exit_code(&self) -> i32 {
        if self.timed_out {
            return 124;
        }
        if let Some(c) = self.exit_code {
            return c;
        }
        match self.signal.as_deref().and_then(signal_number) {
            Some(n) => 128 + n,
            None => 125,
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    let names = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    names.iter().find(|(n, _)| *n == sig).map(|(_, s)| s.to_string()).unwrap_or_else(|| format!("SIG{sig}"))
}

/// A root caller on host uid 0, which RLIMIT_NPROC does not bound.
fn unshifted_root(plan: &plan::Plan) -> bool {
    plan.idmap.uid == 0 && plan.idmap.shift.is_none()
}

/// One line for each limit that is weaker than the policy asked.
fn limit_notes(req: &ExecRequest, plan: &plan::Plan, cg: &CallCgroup, process_limit_by: &str) -> Vec<Violation> {
    let mut v = Vec::new();
    if process_limit_by == "none" {
        v.push(Violation::note(
            "limits",
            "process limit not enforced: the caller is root and no pids cgroup could be created (the kernel ignores RLIMIT_NPROC for uid 0)".to_string(),
        ));
    }
    // The default memory bound is documented as "per sandbox where the host
    // allows it"; an explicit one that could only be per process is noted.
    if !cg.memory && req.policy.limits.max_memory_bytes.is_some() {
        v.push(Violation::note(
            "limits",
            format!(
                "maxMemoryBytes {} holds per process (RLIMIT_DATA), not for the sandbox as a whole: shared memory, memfds, page cache and kernel memory are not bounded ({})",
                plan.limits.max_memory_bytes,
                cg.unavailable.as_deref().unwrap_or("no memory cgroup")
            ),
        ));
    }
    if cg.memory && !cg.swap_bounded {
        v.push(Violation::note("limits", "the sandbox's swap use is not bounded with its memory (the host does not let the cgroup limit it)".to_string()));
    }
    v
}

fn signal_number(name: &str) -> Option<i32> {
    (1..=64).find(|&n| signal_name(n) == name)
}

/// The call's home layer and what happened preparing it; a layer that
/// cannot be prepared is a note, and the home is read-only.
fn prepare_home_layer(req: &ExecRequest) -> (Option<home_layer::Layer>, Vec<String>) {
    match home_layer::prepare(&req.home_layer, req.workspace.as_deref(), req.policy.limits.home_layer_bytes) {
        Ok(Some(mut l)) => {
            let notes = std::mem::take(&mut l.notes);
            (Some(l), notes)
        }
        Ok(None) => (None, Vec::new()),
        Err(why) => (None, vec![format!("no home layer ({why}): the home is read-only for this call")]),
    }
}

/// Build and run one sandboxed call, relaying output to `sinks`.
pub fn run(req: &ExecRequest, sinks: &supervise::Sinks) -> Result<ExecOutcome, LaunchError> {
    let t0 = std::time::Instant::now();
    // Without --pty the command's stdin may be the caller's terminal: its
    // settings are put back after the call, whatever the command set.
    let _terminal = if req.pty { None } else { pty::Settings::save(0) };
    // Checks left by a launcher that was killed before it could make them.
    let recovered = quarantine::recover();
    // The journal directory must exist before planning, so that it is among
    // the hidden paths of this very call (a workspace may contain it).
    quarantine::ensure_journal_dir();
    let tl = std::time::Instant::now();
    let (layer, mut layer_notes) = prepare_home_layer(req);
    let t_layer = tl.elapsed();
    let mut plan = plan::Plan::build(req, true, layer.as_ref())?;
    // One cgroup for the call (also for a retry: nothing entered it then).
    let mut cg = CallCgroup::create(&plan.limits, unshifted_root(&plan));
    plan.rlimits = plan.rlimits.with_memory_cgroup(cg.memory, plan.limits.max_memory_bytes);
    let check = quarantine::Check::from_plan(&plan);
    let journal = quarantine::journal_begin(&check);
    let t1 = t0.elapsed();
    let mut out = supervise::run(&plan, &cg, sinks, req.pty, &req.redact);
    let mut shift_note = None;
    if let Err(LaunchError::IdmapUnavailable(why)) = &out {
        // Nothing ran: the child got no go-ahead. Run with the identity map.
        shift_note = Some(Violation::note(
            "identity",
            format!("root caller not shifted to an unprivileged host uid ({why}); root-owned host files rely on read-only mounts and the hidden-path list"),
        ));
        plan = plan::Plan::build(req, false, layer.as_ref())?;
        cg.ensure_pids(&plan.limits);
        plan.rlimits = plan.rlimits.with_memory_cgroup(cg.memory, plan.limits.max_memory_bytes);
        out = supervise::run(&plan, &cg, sinks, req.pty, &req.redact);
    }
    if let Err(LaunchError::HomeLayerUnavailable(why)) = &out {
        // Nothing ran. Run with a read-only home.
        layer_notes.push(format!("no home layer ({why}): the home is read-only for this call"));
        let shift = plan.idmap.shift.is_some();
        plan = plan::Plan::build(req, shift, None)?;
        cg.ensure_pids(&plan.limits);
        plan.rlimits = plan.rlimits.with_memory_cgroup(cg.memory, plan.limits.max_memory_bytes);
        out = supervise::run(&plan, &cg, sinks, req.pty, &req.redact);
    }
    // PID 1 is reaped: the cgroup is empty.
    let cg_removed = cg.remove();
    let t2 = t0.elapsed();
    let (after, scan_trees, changed) = quarantine::after_call(&check, std::mem::take(&mut plan.protected_trees));
    // Nothing was read before or after the call: the kept scan is current.
    let scan_trees = if changed || plan.protected_dirty {
        scan_trees
    } else {
        scancache::discard(scan_trees);
        Vec::new()
    };
    let journal_note = quarantine::journal_end(journal);
    let tf = std::time::Instant::now();
    if let Some(l) = layer {
        layer_notes.extend(l.finish());
    }
    if std::env::var_os("SHARKCAGE_TIMING").is_some() {
        eprintln!("home layer: prepare {t_layer:?} finish {:?}", tf.elapsed());
    }
    let out = out?;
    if std::env::var_os("SHARKCAGE_TIMING").is_some() {
        eprintln!("plan {:?} run {:?}", t1, t2 - t1);
    }
    let mut violations = plan.violations.clone();
    violations.extend(layer_notes.into_iter().map(|n| Violation::note("home-layer", n)));
    violations.extend(shift_note);
    violations.extend(recovered);
    violations.extend(after);
    violations.extend(journal_note);
    violations.extend(out.unix_events.iter().cloned());
    if let Some(n) = &out.net {
        violations.extend(n.notes.iter().cloned());
        for e in n.events.iter().filter(|e| e.decision != crate::proxy::Decision::Allow) {
            violations.push(Violation::note("network", e.summary()));
        }
        if n.dropped > 0 {
            violations.push(Violation::note("network", format!("{} more network events not listed", n.dropped)));
        }
    }
    let network = match (&plan.net, &out.net) {
        (Some(np), Some(n)) => NetworkReport {
            mode: "proxy",
            served_by: Some(n.served_by),
            sandbox: Some(n.sandbox.clone()),
            http_proxy: Some(format!("127.0.0.1:{}", crate::proxy::HTTP_PORT)),
            socks_proxy: Some(format!("127.0.0.1:{}", crate::proxy::SOCKS_PORT)),
            allowed_domains: np.allowed.clone(),
            events: n.events.clone(),
            dropped_events: n.dropped,
        },
        _ => NetworkReport { mode: "none", served_by: None, sandbox: None, http_proxy: None, socks_proxy: None, allowed_domains: vec![], events: vec![], dropped_events: 0 },
    };
    if out.truncated {
        violations.push(Violation::note("output", format!("output cut after {} bytes", plan.max_output_bytes)));
    }
    let process_limit_by = if cg.pids {
        "cgroup"
    } else if !unshifted_root(&plan) {
        "rlimit"
    } else {
        "none"
    };
    violations.extend(limit_notes(req, &plan, &cg, process_limit_by));
    if let Err(e) = cg_removed {
        violations.push(Violation::note("limits", e));
    }
    if out.timed_out {
        violations.push(Violation::note("timeout", format!("killed after {} ms", plan.timeout_ms)));
    }
    Ok(ExecOutcome {
        exit_code: out.exit_code,
        signal: match out.aborted_by {
            Some(s) => Some(signal_name(s)),
            None => out.signal.map(signal_name),
        },
        timed_out: out.timed_out,
        aborted: out.aborted_by.is_some(),
        truncated: out.truncated,
        duration_ms: (out.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        layers: Layers {
            namespaces: vec!["user", "mount", "pid", "network", "ipc", "uts", "cgroup"],
            filesystem: FsReport {
                read_only_root: true,
                writable: plan.writable.clone(),
                hidden: plan.hidden.len(),
                protected: plan.protected.clone(),
                home_layer: plan.home_layer.clone().map(|(key, dir)| HomeLayerReport { key, dir }),
            },
            landlock: plan.landlock.report.clone(),
            seccomp: true,
            unix_sockets: UnixReport {
                mode: if plan.allow_unix.is_empty() { "none" } else { "broker" },
                allowed: unix_target::names(&plan.allow_unix),
                connected: out.unix_connected,
            },
            no_new_privs: true,
            capabilities: "none",
            identity: match plan.idmap.shift {
                Some(n) => format!("shifted:{n}"),
                None => "caller".to_string(),
            },
            session_keyring: "fresh",
            limits: LimitsReport {
                timeout_ms: plan.timeout_ms,
                max_output_bytes: plan.max_output_bytes,
                max_processes: plan.limits.max_processes,
                process_limit_by,
                max_memory_bytes: plan.limits.max_memory_bytes,
                memory_limit_by: if cg.memory { "cgroup" } else { "rlimit-data" },
                memory_cgroup_unavailable: if cg.memory { None } else { cg.unavailable.clone() },
                cgroup: cg.kind,
                cpu_share_by: if cg.cpu { "cgroup" } else { "none" },
                max_open_files: plan.limits.max_open_files,
                max_file_size_bytes: plan.limits.max_file_size_bytes,
                tmpfs_bytes: plan.limits.tmpfs_bytes,
                user_quotas: plan.quotas.report.clone(),
            },
        },
        network,
        violations,
        scan: scancache::Pending::new(scan_trees),
    })
}
