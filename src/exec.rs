//! Running one command through the launcher, off the JS thread.
//!
//! `exec()` is a thin client of the `sharkcage-launcher` binary: it builds the
//! launcher's argv, spawns it on napi's tokio runtime, feeds stdin, gathers
//! stdout/stderr and reads the launcher's result document from fd 3. The
//! call's secret part (policy, environment values, network ticket) is never
//! on the argv, which every local user can read: it is in a sealed memfd the
//! launcher inherits as fd 4 (`--spec-fd=4`, see `sharkcage::callspec`).
//!
//! Process rules, because the Node process is multi-threaded:
//! - fork is always followed by exec (tokio/std `Command`). The only code run
//!   between them is our `pre_exec` hook, which makes the result pipe the
//!   child's fd 3 and the spec memfd its fd 4 with `dup2`/`fcntl`:
//!   async-signal-safe, no allocation.
//! - Every pipe we create is `O_CLOEXEC`, so a command spawned concurrently by
//!   another call (or by Node) cannot inherit it and hold it open.
//! - The child's environment is cleared: the launcher builds the sandbox's
//!   environment itself from the spec's variables, never from ours.
//! - Every call ends with the child reaped and all its pipes closed, whatever
//!   happens (abort, timeout, a launcher that never closes fd 3).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sharkcage::callspec::CallSpec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

use crate::error::AddonError;

/// The launcher's result fd. Fixed by the launcher's `--json-fd 3` argument.
const RESULT_FD: libc::c_int = 3;
/// The launcher's spec fd (`--spec-fd=4`).
const SPEC_FD: libc::c_int = 4;
/// After an abort's SIGTERM, how long the launcher has to tear the sandbox
/// down before it gets SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// With `timeoutMs`, how long past it we wait for the launcher to enforce the
/// timeout itself before we SIGTERM it.
const TIMEOUT_BACKSTOP: Duration = Duration::from_secs(5);
/// After the launcher exits, how long its pipes may stay open (held by some
/// escaped descendant) before we stop reading them.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Everything a call needs, already validated and owned (no JS values).
#[derive(Debug)]
pub struct ExecRequest {
    pub launcher: PathBuf,
    /// `--net-attach` when the gateway's proxy serves the call, `--read-only`.
    pub extra_args: Vec<String>,
    pub argv: Vec<String>,
    pub workspace: Option<String>,
    /// Policy, environment values and network ticket: never on argv.
    pub spec: CallSpec,
    pub stdin: Option<Vec<u8>>,
    pub timeout_ms: Option<u64>,
}

/// The launcher's fd-3 result document. Unknown fields are ignored so the
/// launcher can add some; missing ones take defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LauncherReport {
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub timed_out: bool,
    pub truncated: bool,
    pub duration_ms: Option<f64>,
    pub layers: Option<serde_json::Value>,
    pub violations: Option<Vec<serde_json::Value>>,
    pub network: Option<serde_json::Value>,
}

/// What a finished call hands back to the JS thread.
#[derive(Debug)]
pub struct ExecOutput {
    pub report: LauncherReport,
    pub duration_ms: f64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Set from the JS thread by the AbortSignal listener, awaited by the call.
#[derive(Default)]
pub struct AbortState {
    aborted: AtomicBool,
    notify: Notify,
}

impl AbortState {
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        // notify_one keeps a permit if nobody is waiting yet: no lost wake-up.
        self.notify.notify_one();
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// The launcher argv for `sc exec` (without the program itself). `spec_arg`
/// is `--spec-fd=N` or `--spec-file=PATH`: where the launcher finds what
/// must not be on a command line. Shared by `buildExecArgv` and `exec` so
/// the two cannot drift apart.
pub fn exec_args(
    spec_arg: &str,
    workspace: Option<&str>,
    timeout_ms: Option<u64>,
    json_fd: Option<i32>,
    extra: &[String],
    argv: &[String],
) -> Vec<String> {
    // `--opt=value` throughout: a value that starts with `-` (a workspace
    // named `-x`) must never be taken for an option. The spec comes first:
    // the launcher reads it before anything else.
    let mut args = vec!["exec".to_owned(), spec_arg.to_owned()];
    if let Some(ws) = workspace {
        args.push(format!("--workspace={ws}"));
    }
    if let Some(ms) = timeout_ms {
        args.push(format!("--timeout-ms={ms}"));
    }
    if let Some(fd) = json_fd {
        args.push(format!("--json-fd={fd}"));
    }
    args.extend(extra.iter().cloned());
    args.push("--".to_owned());
    args.extend(argv.iter().cloned());
    args
}

/// The few variables the launcher itself reads from the caller: where the
/// caller's home and OpenClaw/sharkcage state are (to hide them), and the
/// locale and PATH candidates for the sandbox's minimal environment. The
/// launcher filters what reaches the command; everything else of this
/// (gateway) process's environment, API keys included, is never passed.
pub fn launcher_context_env() -> Vec<(String, String)> {
    const NAMES: &[&str] = &["HOME", "USER", "LOGNAME", "PATH", "LANG", "LANGUAGE", "TERM", "TZ", "XDG_STATE_HOME", "OPENCLAW_STATE_DIR", "OPENCLAW_HOME"];
    std::env::vars()
        .filter(|(k, _)| NAMES.contains(&k.as_str()) || k.starts_with("LC_") || k.starts_with("SHARKCAGE_"))
        .collect()
}

/// The spec in a sealed memfd, moved to a descriptor above [`SPEC_FD`]
/// (close-on-exec: only the launcher gets it, as fd 4, through `pre_exec`).
fn spec_memfd(spec: &CallSpec) -> Result<OwnedFd, AddonError> {
    let fail = |e: std::io::Error| AddonError::from_io("cannot pass the call's spec to the launcher", &e);
    let fd = sharkcage::callspec::memfd(spec).map_err(fail)?;
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own; the new one is owned below.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, SPEC_FD + 1) };
    if high < 0 {
        return Err(fail(std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

pub fn validate_argv(argv: &[String]) -> Result<(), AddonError> {
    if argv.is_empty() {
        return Err(AddonError::InvalidArg(
            "the command to run must not be empty".to_owned(),
        ));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(AddonError::InvalidArg(
            "command arguments must not contain NUL bytes".to_owned(),
        ));
    }
    Ok(())
}

pub fn validate_env(env: &[(String, String)]) -> Result<(), AddonError> {
    for (name, value) in env {
        if name.is_empty() || name.contains('=') || name.contains('\0') || value.contains('\0') {
            return Err(AddonError::InvalidArg(format!(
                "invalid environment variable name or value: {name:?}"
            )));
        }
    }
    Ok(())
}

/// Run one call to completion. Never panics on I/O trouble: every failure is
/// an `AddonError`.
pub async fn run(
    req: ExecRequest,
    abort: Option<Arc<AbortState>>,
) -> Result<ExecOutput, AddonError> {
    if abort.as_ref().is_some_and(|a| a.is_aborted()) {
        return Err(AddonError::Aborted {
            stdout: Vec::new(),
            stderr: Vec::new(),
        });
    }
    let started = Instant::now();

    let (result_rx, result_tx) = cloexec_pipe()
        .map_err(|e| AddonError::from_io("cannot create the result pipe", &e))?;
    let spec = spec_memfd(&req.spec)?;

    let args = exec_args(
        &format!("--spec-fd={SPEC_FD}"),
        req.workspace.as_deref(),
        req.timeout_ms,
        Some(RESULT_FD),
        &req.extra_args,
        &req.argv,
    );
    let mut cmd = Command::new(&req.launcher);
    cmd.args(&args).env_clear().envs(launcher_context_env())
        .stdin(if req.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let tx_fd = result_tx.as_raw_fd();
    let spec_fd = spec.as_raw_fd();
    // SAFETY: the hook runs in the forked child before exec. It only calls
    // dup2/fcntl, which are async-signal-safe, on fd numbers copied in
    // beforehand; it allocates nothing and takes no locks. `last_os_error`
    // builds an io::Error from errno without allocating. `spec_fd` is above
    // 4 (see `spec_memfd`), so the first dup2 cannot overwrite it.
    unsafe {
        cmd.pre_exec(move || {
            let rc = if tx_fd == RESULT_FD {
                // dup2(3, 3) would keep O_CLOEXEC set; clear it instead.
                libc::fcntl(RESULT_FD, libc::F_SETFD, 0)
            } else {
                // dup2 leaves the new fd 3 without O_CLOEXEC, as wanted.
                libc::dup2(tx_fd, RESULT_FD)
            };
            if rc == -1 || libc::dup2(spec_fd, SPEC_FD) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }

    let spawned = cmd.spawn();
    // The child has its own copies now (or there is no child): close ours,
    // or the result pipe would never see EOF.
    drop(result_tx);
    drop(spec);
    let mut child = spawned
        .map_err(|e| AddonError::from_io(&format!("cannot start {}", req.launcher.display()), &e))?;

    let result_rx = tokio::net::unix::pipe::Receiver::from_owned_fd(result_rx)
        .map_err(|e| AddonError::from_io("cannot watch the result pipe", &e))?;

    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stdin_data = req.stdin;

    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut report_bytes = Vec::new();

    let (status, aborted, backstop_fired) = {
        let io = async {
            tokio::join!(
                feed_stdin(stdin, stdin_data),
                drain(stdout, &mut out),
                drain(stderr, &mut err),
                drain(Some(result_rx), &mut report_bytes),
            )
        };
        tokio::pin!(io);
        let supervised = supervise(&mut child, abort.as_deref(), req.timeout_ms, &mut io).await;
        // The launcher is gone; its pipes normally hit EOF with it. Don't wait
        // forever for an escaped descendant that still holds one.
        if !supervised.io_done {
            let _ = tokio::time::timeout(DRAIN_GRACE, &mut io).await;
        }
        (
            supervised.status,
            supervised.aborted,
            supervised.backstop_fired,
        )
    };
    // Any pipe still open was owned by `io`, which is dropped here.

    if aborted {
        return Err(AddonError::Aborted {
            stdout: out,
            stderr: err,
        });
    }
    let status =
        status.map_err(|e| AddonError::Spawn(format!("waiting for the launcher failed: {e}")))?;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;

    if report_bytes.iter().all(u8::is_ascii_whitespace) {
        let stderr_text = String::from_utf8_lossy(&err).into_owned();
        return match status.code() {
            _ if backstop_fired => Ok(ExecOutput {
                report: LauncherReport {
                    signal: signal_name(&status),
                    timed_out: true,
                    ..LauncherReport::default()
                },
                duration_ms,
                stdout: out,
                stderr: err,
            }),
            Some(2) => Err(AddonError::Policy(stderr_text)),
            Some(3) => Err(AddonError::UnsupportedHost(stderr_text)),
            _ => Err(AddonError::Spawn(format!(
                "the launcher {} without writing a result{}",
                describe(&status),
                if stderr_text.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", stderr_text.trim())
                }
            ))),
        };
    }
    let mut report: LauncherReport = serde_json::from_slice(&report_bytes).map_err(|e| {
        AddonError::Protocol(format!(
            "the launcher's result on fd 3 is not valid JSON: {e}"
        ))
    })?;
    if backstop_fired {
        report.timed_out = true;
    }
    Ok(ExecOutput {
        report,
        duration_ms,
        stdout: out,
        stderr: err,
    })
}

struct Supervised {
    status: std::io::Result<ExitStatus>,
    aborted: bool,
    backstop_fired: bool,
    io_done: bool,
}

/// Wait for the launcher while pumping its I/O; deliver an abort as SIGTERM
/// (then SIGKILL), and back up the launcher's own timeout.
async fn supervise<F: std::future::Future + Unpin>(
    child: &mut Child,
    abort: Option<&AbortState>,
    timeout_ms: Option<u64>,
    io: &mut F,
) -> Supervised {
    let pid = child.id();
    let far = Duration::from_secs(60 * 60 * 24 * 365);
    let backstop = tokio::time::sleep(
        timeout_ms.map_or(far, |ms| Duration::from_millis(ms) + TIMEOUT_BACKSTOP),
    );
    let kill_deadline = tokio::time::sleep(far);
    tokio::pin!(backstop, kill_deadline);
    let mut s = Supervised {
        status: Err(std::io::Error::other("not waited")),
        aborted: false,
        backstop_fired: false,
        io_done: false,
    };
    let mut term_sent = false;
    let abort_wait = async {
        match abort {
            Some(a) => a.notify.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(abort_wait);
    loop {
        tokio::select! {
            status = child.wait() => { s.status = status; break; }
            _ = &mut *io, if !s.io_done => { s.io_done = true; }
            _ = &mut abort_wait, if !s.aborted => {
                s.aborted = true;
                if !term_sent {
                    term_sent = true;
                    terminate(pid, &mut kill_deadline);
                }
            }
            _ = &mut backstop, if !s.backstop_fired => {
                s.backstop_fired = true;
                if !term_sent {
                    term_sent = true;
                    terminate(pid, &mut kill_deadline);
                }
            }
            _ = &mut kill_deadline, if term_sent => {
                // Ignored error: it can only mean the child is already gone.
                let _ = child.start_kill();
                kill_deadline.as_mut().reset(tokio::time::Instant::now() + far);
            }
        }
    }
    s
}

/// SIGTERM the launcher (it then tears the whole sandbox down) and arm the
/// SIGKILL deadline. Only called before `wait()` has returned, so the pid is
/// still ours (at worst a zombie) and cannot have been reused.
fn terminate(pid: Option<u32>, kill_deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>) {
    if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our
        // unreaped child (see above), so no unrelated process can be hit.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    kill_deadline
        .as_mut()
        .reset(tokio::time::Instant::now() + KILL_GRACE);
}

async fn feed_stdin(stdin: Option<tokio::process::ChildStdin>, data: Option<Vec<u8>>) {
    if let (Some(mut pipe), Some(data)) = (stdin, data) {
        // EPIPE just means the command did not read all of its input.
        let _ = pipe.write_all(&data).await;
        let _ = pipe.shutdown().await;
        // Dropping `pipe` closes it: the command sees EOF.
    }
}

/// Read `reader` to EOF into `buf`. Written so that whatever was read stays in
/// `buf` if this future is dropped half-way.
async fn drain<R: AsyncRead + Unpin>(reader: Option<R>, buf: &mut Vec<u8>) {
    let Some(mut reader) = reader else { return };
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// A pipe with both ends `O_CLOEXEC`; returns (read end, write end).
fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two c_ints for pipe2 to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn signal_name(status: &ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    status.signal().map(|sig| {
        let name = match sig {
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGILL => "SIGILL",
            libc::SIGTRAP => "SIGTRAP",
            libc::SIGABRT => "SIGABRT",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGUSR1 => "SIGUSR1",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGUSR2 => "SIGUSR2",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGALRM => "SIGALRM",
            libc::SIGTERM => "SIGTERM",
            libc::SIGSYS => "SIGSYS",
            libc::SIGXCPU => "SIGXCPU",
            libc::SIGXFSZ => "SIGXFSZ",
            _ => return format!("SIG{sig}"),
        };
        name.to_owned()
    })
}

fn describe(status: &ExitStatus) -> String {
    match (status.code(), signal_name(status)) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by {sig}"),
        _ => format!("ended ({status})"),
    }
}

/// `launcher doctor --json`: the parsed JSON it prints, whatever its shape.
pub async fn doctor(launcher: PathBuf) -> Result<serde_json::Value, AddonError> {
    let output = Command::new(&launcher)
        .args(["doctor", "--json"])
        .env_clear()
        .envs(launcher_context_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| AddonError::from_io(&format!("cannot start {}", launcher.display()), &e))?;
    // A host that fails some checks may exit non-zero and still print its
    // report: a parsable report wins over the exit status.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&output.stdout) {
        return Ok(value);
    }
    let stderr_text = String::from_utf8_lossy(&output.stderr).into_owned();
    Err(match output.status.code() {
        Some(2) => AddonError::Policy(stderr_text),
        Some(3) => AddonError::UnsupportedHost(stderr_text),
        _ => AddonError::Spawn(format!(
            "`{} doctor --json` {} without printing JSON{}",
            launcher.display(),
            describe(&output.status),
            if stderr_text.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", stderr_text.trim())
            }
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_args_shape() {
        let args = exec_args(
            "--spec-fd=4",
            Some("/w"),
            Some(1500),
            Some(3),
            &["--net-attach=/s".into()],
            &["echo".into(), "hi".into()],
        );
        assert_eq!(
            args,
            [
                "exec",
                "--spec-fd=4",
                "--workspace=/w",
                "--timeout-ms=1500",
                "--json-fd=3",
                "--net-attach=/s",
                "--",
                "echo",
                "hi"
            ]
        );
    }

    #[test]
    fn empty_argv_is_rejected() {
        assert!(validate_argv(&[]).is_err());
        assert!(validate_argv(&["true".into()]).is_ok());
    }

    #[test]
    fn bad_env_names_are_rejected() {
        assert!(validate_env(&[("A=B".into(), "x".into())]).is_err());
        assert!(validate_env(&[("".into(), "x".into())]).is_err());
        assert!(validate_env(&[("OK".into(), "x=y".into())]).is_ok());
    }

    #[test]
    fn report_defaults_and_unknown_fields() {
        let r: LauncherReport =
            serde_json::from_str(r#"{"exitCode":7,"future":1,"violations":[{"k":1}]}"#).unwrap();
        assert_eq!(r.exit_code, Some(7));
        assert!(!r.timed_out);
        assert_eq!(r.violations.unwrap().len(), 1);
    }
}
