//! `sc doctor`: a real smoke test of every layer on this host.
//!
//! Each check runs a real sandbox (the same code path as `sc exec`) and
//! judges the effect from outside: a planted secret must not appear in the
//! output, a write outside the workspace must leave no file, a host listener
//! must receive nothing. Syscall-level checks run `sc __probe` inside the
//! sandbox and compare the errno it saw. Nothing here trusts the sandboxed
//! command's own exit status.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::launcher::{self, supervise::Sinks, ExecOutcome, ExecRequest, LaunchError};
use crate::policy::Policy;

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Works as reported, but weaker than it could be on a better set-up host.
    pub warn: bool,
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: String) -> Check {
        Check { name, ok, warn: false, detail }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ok: bool,
    /// Set when the host cannot sandbox at all (and why, and the fix).
    pub unsupported: Option<String>,
    pub kernel: String,
    pub landlock_abi: i32,
    pub checks: Vec<Check>,
    pub layers: Option<crate::launcher::Layers>,
}

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let d = base.join(format!("sc-doctor-{}-{}", std::process::id(), i));
            if std::fs::create_dir(&d).is_ok() {
                return Ok(Scratch { dir: d });
            }
        }
        Err(std::io::Error::other("cannot create a scratch directory"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run argv in a sandbox, capturing output in a file (no pipe to fill up).
fn run_captured(req: &ExecRequest, scratch: &Path) -> Result<(ExecOutcome, String), LaunchError> {
    let out_path = scratch.join(".doctor-out");
    let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&out_path)?;
    let outcome = launcher::run(req, &Sinks { stdout: f.as_raw_fd(), stderr: f.as_raw_fd() })?;
    let mut s = String::new();
    std::fs::File::open(&out_path)?.read_to_string(&mut s)?;
    let _ = std::fs::remove_file(&out_path);
    Ok((outcome, s))
}

fn req(argv: &[&str], workspace: Option<&Path>, deny: Vec<String>) -> ExecRequest {
    let exe = std::env::current_exe().ok();
    ExecRequest {
        expose_read_only: exe.into_iter().collect(),
        policy: Policy::default(),
        policy_source: "<doctor>".into(),
        workspace: workspace.map(Path::to_path_buf),
        extra_deny_read: deny,
        timeout_ms: Some(20_000),
        // Probes leave nothing behind: no kept home layer.
        home_layer: crate::launcher::home_layer::Request::Off,
        argv: argv.iter().map(|a| a.into()).collect(),
        ..Default::default()
    }
}

pub fn run() -> Report {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let landlock_abi = crate::layers::host::landlock_abi().unwrap_or(0);
    let mut rep = Report { ok: false, unsupported: None, kernel, landlock_abi, checks: vec![], layers: None };
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "sc".into());
    let scratch = match Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            rep.checks.push(Check::new("scratch", false, e.to_string()));
            return rep;
        }
    };
    let ws = scratch.dir.join("workspace");
    let secret_dir = scratch.dir.join("secret");
    let _ = std::fs::create_dir(&ws);
    let _ = std::fs::create_dir(&secret_dir);
    let marker = format!("DOCTOR-SECRET-{}", std::process::id());
    let _ = std::fs::write(secret_dir.join("key"), &marker);

    // 1. namespaces, capabilities, no_new_privs, seccomp mode.
    match run_captured(&req(&[&exe, "__probe", "status", "hostname"], Some(&ws), vec![]), &scratch.dir) {
        Err(LaunchError::Unsupported(msg)) => {
            rep.unsupported = Some(msg);
            return rep;
        }
        Err(e) => rep.checks.push(Check::new("sandbox", false, e.to_string())),
        Ok((o, out)) => {
            rep.layers = Some(o.layers.clone());
            // SAFETY: geteuid cannot fail.
            let root = unsafe { libc::geteuid() } == 0;
            rep.checks.push(Check {
                name: "identity",
                warn: false,
                ok: !root || o.layers.identity.starts_with("shifted:"),
                detail: if root {
                    format!("root caller runs as {} (needs idmapped mounts to be shifted off host uid 0)", o.layers.identity)
                } else {
                    "the caller's own uid".to_string()
                },
            });
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
            let st = &v["status"];
            let caps_ok = ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"].iter().all(|k| st[k] == "0000000000000000");
            rep.checks.push(Check::new("namespaces", st["pid"] == 2 && v["hostname"] == "sharkcage", format!("pid {} in a new PID namespace, host name {}", st["pid"], v["hostname"])));
            rep.checks.push(Check::new("capabilities", caps_ok, format!("CapEff {} CapBnd {}", st["CapEff"], st["CapBnd"])));
            rep.checks.push(Check::new("no_new_privs", st["NoNewPrivs"] == "1", format!("NoNewPrivs {}", st["NoNewPrivs"])));
            rep.checks.push(Check::new("seccomp", st["Seccomp"] == "2", format!("Seccomp mode {}", st["Seccomp"])));
        }
    }

    // 2. filesystem: hidden secret, read-only host, writable workspace, private /tmp.
    let outside = scratch.dir.join("outside-write");
    let script = format!(
        "cat {key} 2>/dev/null; echo ws > ok.txt; echo x > {outside} 2>/dev/null; echo t > /tmp/.sc-doctor-tmp; true",
        key = secret_dir.join("key").display(),
        outside = outside.display()
    );
    match run_captured(&req(&["/bin/sh", "-c", &script], Some(&ws), vec![secret_dir.display().to_string()]), &scratch.dir) {
        Ok((_, out)) => {
            rep.checks.push(Check::new("hidden paths", !out.contains(&marker), "a planted secret in a denied directory was not readable".into()));
            rep.checks.push(Check::new("read-only host", !outside.exists(), "a write outside the workspace left no file".into()));
            rep.checks.push(Check::new("writable workspace", ws.join("ok.txt").exists(), "a write inside the workspace reached the host".into()));
            rep.checks.push(Check::new("private /tmp", !Path::new("/tmp/.sc-doctor-tmp").exists(), "a write to /tmp stayed inside the sandbox".into()));
        }
        Err(e) => rep.checks.push(Check::new("filesystem", false, e.to_string())),
    }

    // 3. syscall filter and network: effects of denied operations.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok();
    let port = listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port()).unwrap_or(9);
    let tcp = format!("connect-tcp:127.0.0.1:{port}");
    let probes = ["unix_socket", "io_uring_setup", "ptrace_traceme", "bpf", "perf_event_open", "userfaultfd", "keyctl", "unshare_user", "mount_tmpfs", "tiocsti", "x32_getpid", tcp.as_str()];
    let mut argv = vec![exe.as_str(), "__probe"];
    argv.extend(probes.iter());
    match run_captured(&req(&argv, Some(&ws), vec![]), &scratch.dir) {
        Ok((_, out)) => {
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
            let denied: Vec<&str> = probes[..probes.len() - 1].iter().copied().filter(|p| v[*p].as_i64().is_some_and(|e| e != 0)).collect();
            let allowed: Vec<&str> = probes[..probes.len() - 1].iter().copied().filter(|p| !denied.contains(p)).collect();
            rep.checks.push(Check {
                name: "syscall filter",
                warn: false,
                ok: allowed.is_empty(),
                detail: if allowed.is_empty() { format!("{} dangerous operations refused", denied.len()) } else { format!("NOT refused: {}", allowed.join(", ")) },
            });
            let mut got = false;
            if let Some(l) = &listener {
                let _ = l.set_nonblocking(true);
                got = l.accept().is_ok();
            }
            rep.checks.push(Check::new("network isolation", v[&tcp].as_i64().is_some_and(|e| e != 0) && !got, "a host loopback listener received nothing".into()));
        }
        Err(e) => rep.checks.push(Check::new("syscall filter", false, e.to_string())),
    }

    // 4. cleanup: a background process does not outlive the call.
    let tag = format!("{}.{}", 400 + std::process::id() % 500, std::process::id() % 1000);
    match run_captured(&req(&["/bin/sh", "-c", &format!("sleep {tag} & exit 0")], Some(&ws), vec![]), &scratch.dir) {
        Ok(_) => {
            let left = leftover_processes(&format!("sleep {tag}"));
            rep.checks.push(Check::new("process cleanup", left == 0, format!("{left} background processes left after the call")));
        }
        Err(e) => rep.checks.push(Check::new("process cleanup", false, e.to_string())),
    }

    // 5. nothing left behind runs: a planted hook and fsmonitor config are
    // moved aside, a plain new repository is kept.
    rep.checks.push(protected_state_check(&ws, &scratch.dir));

    // 6. resource bounds: memory for the sandbox as a whole.
    rep.checks.push(memory_check(&ws, &scratch.dir));
    rep.checks.push(home_layer_check(&ws, &scratch.dir));

    // 7. network proxy (last: its server thread and the launcher's proxy
    // runtime make this process multi-threaded; the sandbox child runs only
    // prepared system calls, so the clone is still safe, but no later check
    // depends on that).
    rep.checks.push(network_check(&exe, &ws, &scratch.dir));

    // 8. Landlock is reported, never silently missing.
    rep.checks.push(Check {
        name: "landlock",
        warn: false,
        ok: landlock_abi > 0,
        detail: if landlock_abi > 0 { format!("ABI {landlock_abi} (filesystem{}{})", if landlock_abi >= 4 { ", TCP" } else { "" }, if landlock_abi >= 6 { ", scoping" } else { "" }) } else { "not available: the mount layer still applies".into() },
    });
    rep.checks.extend(openclaw_check());
    rep.ok = rep.checks.iter().all(|c| c.ok);
    rep
}

/// The OpenClaw config, when there is one: settings that open paths around
/// the sandbox (`gate::settings`). Warnings, not failures: the sandbox works.
fn openclaw_check() -> Option<Check> {
    let path = std::env::var_os("SHARKCAGE_OPENCLAW_CONFIG")
        .or_else(|| std::env::var_os("OPENCLAW_STATE_DIR").map(|d| PathBuf::from(d).join("openclaw.json").into_os_string()))
        .map(PathBuf::from)
        .or_else(|| crate::policy::paths::primary_home().map(|h| h.join(".openclaw/openclaw.json")))?;
    let text = std::fs::read_to_string(&path).ok()?;
    let name = "openclaw config";
    let cfg: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Some(Check { name, ok: true, warn: true, detail: format!("{}:{}:{}: not strict JSON ({e}): its settings were not checked", path.display(), e.line(), e.column()) }),
    };
    let f = crate::gate::settings::findings(&cfg);
    Some(if f.is_empty() {
        Check::new(name, true, format!("{}: every session sandboxed by sharkcage, Code Mode off, nothing routed around the gate", path.display()))
    } else {
        Check { name, ok: true, warn: true, detail: format!("{}:\n    - {}", path.display(), f.join("\n    - ")) }
    })
}

/// Git state and startup files a call leaves behind, judged after it: a
/// hook, a config with `core.fsmonitor` and a `.bashrc` must not stay on the
/// host; a plain repository's config must.
fn protected_state_check(ws: &Path, dir: &Path) -> Check {
    let script = "mkdir -p evil/.git/hooks evil/.git/objects evil/.git/refs plain/.git/objects plain/.git/refs && \
        printf '#!/bin/sh\\ntrue\\n' > evil/.git/hooks/pre-commit && printf '[core]\\n\\tfsmonitor = true\\n' > evil/.git/config && \
        printf '[core]\\n\\trepositoryformatversion = 0\\n' > plain/.git/config && echo x > .bashrc";
    match run_captured(&req(&["/bin/sh", "-c", script], Some(ws), vec![]), dir) {
        Ok(_) => {
            let left: Vec<&str> = ["evil/.git/hooks/pre-commit", "evil/.git/config", ".bashrc"].into_iter().filter(|p| ws.join(p).symlink_metadata().is_ok()).collect();
            let kept = ws.join("plain/.git/config").exists();
            Check::new(
                "protected state",
                left.is_empty() && kept,
                if left.is_empty() && kept {
                    "a planted hook, fsmonitor config and .bashrc were moved aside after the call; a plain repository was kept".into()
                } else {
                    format!("left on the host: {}; plain repository kept: {kept}", left.join(", "))
                },
            )
        }
        Err(e) => Check::new("protected state", false, e.to_string()),
    }
}

/// The memory bound: with a memory cgroup, 128 MiB written into a tmpfs (not
/// any process's private memory) under a 64 MiB bound must be stopped; without
/// one the bound is per process only (`rlimit-data`), which is reported as a
/// warning with the reason, not as a failure.
/// A write under `$HOME` lands in a (temporary) home layer, not in the home.
fn home_layer_check(ws: &Path, dir: &Path) -> Check {
    let name = "home layer";
    let Some(home) = crate::policy::paths::primary_home() else {
        return Check { name, ok: true, warn: true, detail: "no home directory: nothing to layer".into() };
    };
    let probe = format!(".sc-doctor-home-{}", std::process::id());
    let mut r = req(&["/bin/sh", "-c", &format!("echo layered > ~/{probe} && cat ~/{probe}")], Some(ws), vec![]);
    r.home_layer = crate::launcher::home_layer::Request::Fresh;
    match run_captured(&r, dir) {
        Ok((o, out)) => {
            let leaked = home.join(&probe).exists();
            let _ = std::fs::remove_file(home.join(&probe));
            match (&o.layers.filesystem.home_layer, leaked) {
                (_, true) => Check::new(name, false, "a write under $HOME reached the real home".into()),
                (Some(_), false) if out.contains("layered") => Check::new(name, true, "writes under $HOME go to a private layer; the real home is untouched".into()),
                _ => Check {
                    name,
                    ok: true,
                    warn: true,
                    detail: format!(
                        "unavailable, the home is read-only in sandboxes ({})",
                        o.violations.iter().find(|v| v.kind == "home-layer").map(|v| v.detail.as_str()).unwrap_or("no overlay")
                    ),
                },
            }
        }
        Err(e) => Check::new(name, false, e.to_string()),
    }
}

fn memory_check(ws: &Path, dir: &Path) -> Check {
    let name = "memory bound";
    let mut r = req(&["/bin/sh", "-c", "head -c 134217728 /dev/zero > /dev/shm/fill && echo FILLED; rm -f /dev/shm/fill"], Some(ws), vec![]);
    r.policy.limits.max_memory_bytes = Some(64 << 20);
    r.policy.limits.tmpfs_bytes = 256 << 20;
    match run_captured(&r, dir) {
        Ok((o, out)) => {
            let l = &o.layers.limits;
            let filled = out.contains("FILLED");
            if l.memory_limit_by == "cgroup" {
                Check::new(
                    name,
                    !filled,
                    if filled { "NOT enforced: 128 MiB of shared memory fit under a 64 MiB memory cgroup".into() } else { format!("per sandbox (cgroup {}): processes, page cache, shared memory, tmpfs, kernel memory", l.cgroup.as_str()) },
                )
            } else {
                Check {
                    name,
                    ok: true,
                    warn: true,
                    detail: format!(
                        "per process only (RLIMIT_DATA): shared memory, memfds, page cache and kernel memory of a sandbox are not bounded ({})",
                        l.memory_cgroup_unavailable.as_deref().unwrap_or("no memory cgroup")
                    ),
                }
            }
        }
        Err(e) => Check::new(name, false, e.to_string()),
    }
}

/// An allowed name reaches a host server through the sandbox's proxy; a
/// name the policy does not list reaches nothing.
fn network_check(exe: &str, ws: &Path, dir: &Path) -> Check {
    use std::io::{Read, Write};
    let name = "network proxy";
    let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
        return Check::new(name, false, "cannot open a loopback listener for the check".into());
    };
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let marker = format!("DOCTOR-NET-{}", std::process::id());
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (m, n) = (marker.clone(), served.clone());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{m}", m.len()).as_bytes());
        }
    });
    let hex = |t: &str| crate::audit::record::hex(t.as_bytes());
    let via = |host: &str| format!("exchange:127.0.0.1:{}:{}", crate::proxy::HTTP_PORT, hex(&format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\nGET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")));
    let (ok_probe, denied_probe) = (via("doctor.test"), via("other.test"));
    let mut r = req(&[exe, "__probe", &ok_probe, &denied_probe], Some(ws), vec![]);
    r.extra_allow_domains = vec![format!("doctor.test:{port}")];
    r.net_resolve = vec!["doctor.test=127.0.0.1".into(), "other.test=127.0.0.1".into()];
    match run_captured(&r, dir) {
        Ok((_, out)) => {
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
            let reached = v[&ok_probe]["reply"].as_str().is_some_and(|t| t.contains(&marker));
            let refused = v[&denied_probe]["reply"].as_str().is_some_and(|t| t.starts_with("HTTP/1.1 403"));
            let count = served.load(std::sync::atomic::Ordering::SeqCst);
            Check {
                name,
                warn: false,
                ok: reached && refused && count == 1,
                detail: format!("allowed name reached the host server: {reached}; unlisted name refused (403): {refused}; server connections: {count} (expected 1)"),
            }
        }
        Err(e) => Check::new(name, false, e.to_string()),
    }
}

/// Count host processes whose command line equals `cmdline` (space-joined).
pub fn leftover_processes(cmdline: &str) -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else { return 0 };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).split('\0').filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ") == cmdline)
                .unwrap_or(false)
        })
        .count()
}

/// CLI entry: print the report; exit 0 all good, 1 some check failed, 3 cannot sandbox.
pub fn run_cli(json: bool) -> i32 {
    let rep = run();
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&rep).unwrap());
    } else {
        let _ = writeln!(out, "sharkcage doctor — kernel {}, Landlock ABI {}", rep.kernel, rep.landlock_abi);
        if let Some(u) = &rep.unsupported {
            let _ = writeln!(out, "✘ {u}");
        }
        for c in &rep.checks {
            let mark = match (c.ok, c.warn) {
                (false, _) => "✘",
                (true, true) => "⚠",
                (true, false) => "✔",
            };
            let _ = writeln!(out, "{mark} {:<20} {}", c.name, c.detail);
        }
        let warned = rep.checks.iter().any(|c| c.warn);
        let _ = writeln!(
            out,
            "{}",
            match (rep.ok, warned) {
                (false, _) => "Some layers do not work: see above.",
                (true, true) => "All layers work; see the ⚠ lines above (weaker bounds on this host, or settings that open paths around the sandbox).",
                (true, false) => "All layers work.",
            }
        );
    }
    if rep.unsupported.is_some() {
        3
    } else if rep.ok {
        0
    } else {
        1
    }
}
