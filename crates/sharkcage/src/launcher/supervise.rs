//! The launcher's side of a call: create the sandbox, then relay its output
//! (up to `maxOutputBytes`), enforce the wall-clock timeout, forward
//! termination signals, and collect the exit status.
//!
//! The launcher stays outside every namespace and restriction of the
//! sandbox: it cannot be seen, signalled or traced from inside (the command
//! is in a new PID namespace, and Landlock scoping forbids signals that leave
//! its domain).
//!
//! With `--pty` the command's stdio is a terminal of the sandbox's own,
//! whose master arrives here from PID 1; `pty.rs` relays it (the caller's
//! stdin in, the command's output out through the same cap) and forwards
//! window-size changes (SIGWINCH).
//!
//! Teardown: killing PID 1 (SIGKILL) makes the kernel kill every process of
//! the sandbox's PID namespace, so a timeout, an abort (SIGTERM/SIGINT/SIGHUP
//! to the launcher) or the launcher's own death (PID 1 has
//! `PDEATHSIG=SIGKILL`) leaves nothing behind.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::child::{self, ChildFds, Stage};
use super::plan::Plan;
use super::redact_stream::StreamRedactor;
use super::{LaunchError, RunOutput};
use crate::layers::cgroup::CallCgroup;
use crate::layers::sys;

const NS_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP;

fn pipe() -> Result<(RawFd, RawFd), LaunchError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(LaunchError::Io(std::io::Error::last_os_error()));
    }
    Ok((fds[0], fds[1]))
}

/// A close-on-exec SOCK_SEQPACKET pair, or (-1, -1) when not `wanted`.
fn seqpacket_pair(wanted: bool) -> Result<(RawFd, RawFd), LaunchError> {
    if !wanted {
        return Ok((-1, -1));
    }
    let mut sv = [0; 2];
    // SAFETY: socketpair writes two descriptors into the array.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) } != 0 {
        return Err(LaunchError::Io(std::io::Error::last_os_error()));
    }
    Ok((sv[0], sv[1]))
}

fn close(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: closing a descriptor we own.
        unsafe { libc::close(fd) };
    }
}

/// Where the relay writes the command's output.
pub struct Sinks {
    pub stdout: RawFd,
    pub stderr: RawFd,
}

/// Run the plan in the call's cgroup `cg`. `sinks` receive the command's
/// stdout/stderr; with `pty`, the command gets a terminal (see `pty.rs`).
/// `redact`: `(name, value)` pairs whose values never reach the sinks
/// (see `redact_stream`).
pub fn run(plan: &Plan, cg: &CallCgroup, sinks: &Sinks, pty: bool, redact: &[(String, String)]) -> Result<RunOutput, LaunchError> {
    let start = Instant::now();
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (errout_r, errout_w) = pipe()?;
    // The unix-socket broker's listener and a shifted caller's idmapped
    // mounts travel from/to the child over these.
    let (notify_parent, notify_child) = seqpacket_pair(!plan.allow_unix.is_empty())?;
    let (id_parent, id_child) = seqpacket_pair(plan.idmap.shift.is_some())?;
    // The proxy's listeners travel from PID 1 to us over this.
    let (net_parent, net_child) = seqpacket_pair(plan.net.is_some())?;
    // The terminal's master travels from PID 1 to us over this.
    let (pty_parent, pty_child) = seqpacket_pair(pty)?;

    // Termination signals arrive on a signalfd instead of interrupting us.
    // SAFETY: sigset manipulation on a stack value; sigprocmask/signalfd.
    let (signal_fd, old_mask) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::sigaddset(&mut set, s);
        }
        if pty {
            libc::sigaddset(&mut set, libc::SIGWINCH);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        (libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK), old)
    };

    let cgroup_tasks = cg.attach_fds();
    // Read after SIGWINCH is blocked: a change from now on is not missed.
    let terminal = if pty { super::pty::caller_terminal(&[0, sinks.stdout, sinks.stderr]) } else { None };
    let pty_size = super::pty::initial_size(terminal);
    let fds = ChildFds { sync_r, sync_w, err_r, err_w, status_r, status_w, out_r, out_w, errout_r, errout_w, signal_fd, notify_child, notify_parent, id_child, id_parent, net_child, net_parent, pty_child, pty_parent, pty_size, cgroup_tasks };

    // A fork-like clone (no new stack, SIGCHLD on exit); on cgroup v2 born
    // in the call's cgroup (no migration, see `layers::cgroup`).
    let cloned = match cg.clone_into() {
        // SAFETY: the launcher is single-threaded here; the child only runs
        // `child::pid1`, which uses prepared data and never returns.
        Some(cg_fd) => unsafe { sys::clone_into_cgroup(NS_FLAGS as u64, cg_fd) },
        // SAFETY: as above.
        None => sys::check(unsafe { libc::syscall(libc::SYS_clone, (NS_FLAGS | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) }).map(|p| p as i32),
    };
    let pid = match cloned {
        Ok(pid) => pid,
        Err(errno) => {
            for fd in [sync_r, sync_w, err_r, err_w, status_r, status_w, out_r, out_w, errout_r, errout_w, signal_fd, notify_parent, notify_child, id_parent, id_child, net_parent, net_child, pty_parent, pty_child] {
                close(fd);
            }
            restore_mask(&old_mask);
            return Err(LaunchError::Unsupported(crate::layers::host::explain_userns_failure(errno, "creating the sandbox namespaces")));
        }
    };
    if pid == 0 {
        child::pid1(plan, &fds);
    }
    for fd in [sync_r, err_w, status_w, out_w, errout_w, notify_child, id_child, net_child, pty_child] {
        close(fd);
    }
    // Shifted root caller: write the child's id maps, then hand it the
    // idmapped mounts of the places it works in. Any failure: the child gets
    // no go-ahead (it exits) and the call is retried without the shift.
    // Shifted root caller: write the child's id maps before the go-ahead,
    // then hand it the idmapped mounts of the places it works in while it
    // builds its view (it takes them one by one: sending them all first
    // would block on a full socket once there are a few hundred). Any
    // failure: the child is killed before anything of the command ran, and
    // the call is retried without the shift.
    let shift_fail = |why: String, pid: i32| {
        close(sync_w);
        close(id_parent);
        kill_and_reap(pid);
        for fd in [err_r, status_r, out_r, errout_r, signal_fd, notify_parent, net_parent, pty_parent] {
            close(fd);
        }
        restore_mask(&old_mask);
        Err(LaunchError::IdmapUnavailable(why))
    };
    if let Some(shift) = plan.idmap.shift {
        if let Err(e) = plan.idmap.write_for(pid) {
            return shift_fail(format!("host id {shift}: {e}"), pid);
        }
    }
    // Go. The write end stays open for the whole call: PID 1 reads a
    // hang-up on it as the launcher's death.
    sys::write_all(sync_w, b"1");
    if let Some(shift) = plan.idmap.shift {
        if let Err(e) = send_idmapped(plan, pid, id_parent) {
            return shift_fail(format!("host id {shift}: {e}"), pid);
        }
        close(id_parent);
    }
    // While PID 1 builds the sandbox: cgroup upkeep off the critical path.
    cg.housekeeping();

    // Wait for exec (EOF on the error pipe) or a setup error.
    let mut buf = [0u8; 12];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into the remaining part of a stack buffer.
        let n = unsafe { libc::read(err_r, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    close(err_r);
    if got == buf.len() {
        let stage = u32::from_ne_bytes(buf[0..4].try_into().unwrap());
        let detail = u32::from_ne_bytes(buf[4..8].try_into().unwrap());
        let errno = i32::from_ne_bytes(buf[8..12].try_into().unwrap());
        kill_and_reap(pid);
        for fd in [status_r, out_r, errout_r, signal_fd, notify_parent, sync_w, net_parent, pty_parent] {
            close(fd);
        }
        restore_mask(&old_mask);
        let stage = Stage::from_u32(stage);
        return Err(match stage {
            Some(Stage::Exec) => LaunchError::CommandNotRunnable(plan.argv.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default(), std::io::Error::from_raw_os_error(errno)),
            Some(Stage::IdMap) => LaunchError::Unsupported(crate::layers::host::explain_userns_failure(errno, "writing the user namespace id map")),
            // The staging root and the first bind need only what any
            // sandboxing host has; failing there means the host cannot.
            Some(Stage::Mounts) if plan.mounts.is_home_layer_step(detail) => {
                LaunchError::HomeLayerUnavailable(format!("mounting the home overlay: {}", std::io::Error::from_raw_os_error(errno)))
            }
            Some(Stage::Mounts) if (detail >= 1000 && detail != 1014) || detail < 2 => LaunchError::Unsupported(crate::layers::host::explain_userns_failure(
                errno,
                &format!("{} ({})", Stage::Mounts.describe(), plan.mounts.describe_step(detail)),
            )),
            Some(Stage::Mounts) => LaunchError::Setup(format!(
                "{} failed at {}: {}",
                Stage::Mounts.describe(),
                plan.mounts.describe_step(detail),
                std::io::Error::from_raw_os_error(errno)
            )),
            Some(Stage::Quotas) => LaunchError::Setup(format!("{} failed at {}: {}", Stage::Quotas.describe(), plan.quotas.describe(detail), std::io::Error::from_raw_os_error(errno))),
            Some(s) => LaunchError::Setup(format!("{} failed: {}", s.describe(), std::io::Error::from_raw_os_error(errno))),
            None => LaunchError::Setup(format!("unknown setup stage {stage:?}")),
        });
    }

    // PID 1 sent the terminal's master before it started the worker.
    let master = if pty {
        let m = sys::recv_fd(pty_parent);
        close(pty_parent);
        match m {
            // SAFETY: the kernel installed this descriptor for us.
            Ok(fd) => Some(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }),
            Err(_) => {
                kill_and_reap(pid);
                for fd in [status_r, out_r, errout_r, signal_fd, notify_parent, sync_w, net_parent] {
                    close(fd);
                }
                restore_mask(&old_mask);
                return Err(LaunchError::Setup("the command's terminal did not arrive".into()));
            }
        }
    } else {
        None
    };

    // The worker sent its notification listener before it exec'd.
    let mut broker = if notify_parent >= 0 {
        let l = sys::recv_fd(notify_parent);
        close(notify_parent);
        match l {
            // SAFETY: the kernel installed this descriptor for us.
            Ok(fd) => Some(super::unix_broker::Broker::new(
                unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
                plan.allow_unix.clone(),
                plan.idmap.shift,
                if plan.net.is_some() { vec![crate::proxy::HTTP_PORT, crate::proxy::SOCKS_PORT] } else { vec![] },
            )),
            Err(_) => {
                kill_and_reap(pid);
                for fd in [status_r, out_r, errout_r, signal_fd, sync_w, net_parent] {
                    close(fd);
                }
                restore_mask(&old_mask);
                return Err(LaunchError::Setup("the unix-socket broker's listener did not arrive".into()));
            }
        }
    } else {
        None
    };

    // PID 1 sent the proxy's listeners before the worker started; serve
    // them (threads may start now: nothing forks after the clone).
    let mut net_notes = Vec::new();
    let mut proxy = None;
    if let Some(np) = &plan.net {
        let got = (sys::recv_fd(net_parent), sys::recv_fd(net_parent));
        close(net_parent);
        let started = match got {
            (Ok(h), Ok(s)) => super::proxy_session::ProxySession::start(np, h, s, &mut net_notes).map_err(|e| e.to_string()),
            (a, b) => {
                for fd in [a, b].into_iter().flatten() {
                    close(fd);
                }
                Err("the proxy's listeners did not arrive".to_string())
            }
        };
        match started {
            Ok(p) => proxy = Some(p),
            Err(why) => {
                kill_and_reap(pid);
                for fd in [status_r, out_r, errout_r, signal_fd, sync_w] {
                    close(fd);
                }
                restore_mask(&old_mask);
                return Err(LaunchError::Setup(format!("cannot start the network proxy: {why}")));
            }
        }
    }

    // The command runs. Relay until PID 1 reports.
    let deadline = start + Duration::from_millis(plan.timeout_ms);
    let r = StreamRedactor::new(redact);
    let mut relay = Relay { limit: plan.max_output_bytes, written: 0, truncated: false, sinks, redactors: [r.clone(), r] };
    let mut open_out = true;
    let mut open_err = true;
    let mut worker_status: Option<i32> = None;
    let mut status_open = true;
    let mut timed_out = false;
    let mut killed_by: Option<i32> = None;
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut broker_done: Option<super::unix_broker::Broker> = None;
    // From here on the caller's terminal may be raw: restored when `term` drops.
    let mut term = match master.map(|m| super::pty::Pty::start(m, 0, terminal)).transpose() {
        Ok(t) => t,
        Err(e) => {
            kill_and_reap(pid);
            for fd in [status_r, out_r, errout_r, signal_fd, sync_w] {
                close(fd);
            }
            restore_mask(&old_mask);
            return Err(LaunchError::Setup(format!("cannot relay the command's terminal: {e}")));
        }
    };
    let mut open_pty = term.is_some();

    while status_open || open_out || open_err || open_pty {
        let now = Instant::now();
        let timeout_ms: i32 = if !status_open {
            // PID 1 is gone: everything inside is dead; drain what is left.
            1000
        } else if now >= deadline {
            -2
        } else {
            (deadline - now).as_millis().min(i32::MAX as u128) as i32 + 1
        };
        if timeout_ms == -2 {
            timed_out = true;
            // PID 1 dies at once and the kernel kills the rest; reap it and
            // keep looping only to drain the output pipes.
            kill_and_reap(pid);
            status_open = false;
            continue;
        }
        let no_fd = libc::pollfd { fd: -1, events: 0, revents: 0 };
        let [pty_master, pty_stdin] = match &term {
            Some(t) if open_pty => t.poll_fds(),
            _ => [no_fd, no_fd],
        };
        let mut pfds = [
            libc::pollfd { fd: if open_out { out_r } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if open_err { errout_r } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if status_open { status_r } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if killed_by.is_none() { signal_fd } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: broker.as_ref().map_or(-1, |b| b.fd()), events: libc::POLLIN, revents: 0 },
            pty_master,
            pty_stdin,
        ];
        // SAFETY: poll over a stack array of pollfds.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            if sys::errno() == libc::EINTR {
                continue;
            }
            return Err(LaunchError::Io(std::io::Error::last_os_error()));
        }
        if n == 0 {
            if !status_open {
                // Output pipes held open by nothing alive: stop waiting.
                break;
            }
            continue;
        }
        if pfds[0].revents != 0 && !relay.pump(out_r, 1, &mut rbuf) {
            open_out = false;
        }
        if pfds[1].revents != 0 && !relay.pump(errout_r, 2, &mut rbuf) {
            open_err = false;
        }
        if pfds[2].revents != 0 {
            let mut sb = [0u8; 4];
            // SAFETY: reading 4 bytes into a stack buffer.
            let r = unsafe { libc::read(status_r, sb.as_mut_ptr().cast(), 4) };
            if r == 4 {
                worker_status = Some(i32::from_ne_bytes(sb));
            }
            if r <= 0 || r == 4 {
                status_open = false;
            }
        }
        if pfds[4].revents & libc::POLLIN != 0 {
            if let Some(b) = broker.as_mut() {
                b.handle();
            }
        } else if pfds[4].revents != 0 {
            // POLLHUP: no filtered task is left; keep the events, stop polling.
            if let Some(b) = broker.take() {
                broker_done = Some(b);
            }
        }
        if pfds[3].revents != 0 {
            // SAFETY: signalfd_siginfo is plain old data; zero is a valid value.
            let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reading one siginfo record into a zeroed struct.
            let r = unsafe { libc::read(signal_fd, (&mut si as *mut libc::signalfd_siginfo).cast(), std::mem::size_of::<libc::signalfd_siginfo>()) };
            if r > 0 && si.ssi_signo as i32 == libc::SIGWINCH {
                if let Some(t) = &term {
                    t.resize();
                }
            } else if r > 0 {
                killed_by = Some(si.ssi_signo as i32);
                kill_pid1(pid);
            }
        }
        if let Some(t) = term.as_mut().filter(|_| open_pty) {
            // After the signals: a resize is in place before input that follows it.
            if pfds[6].revents != 0 {
                t.read_input();
            }
            if pfds[5].revents & libc::POLLOUT != 0 {
                t.write_input();
            }
            if pfds[5].revents & !libc::POLLOUT != 0 && !relay.pump(t.master(), 1, &mut rbuf) {
                open_pty = false;
            }
        }
    }
    // The caller's terminal is itself again before anything more is written.
    drop(term);
    reap(pid);
    for fd in [status_r, out_r, errout_r, signal_fd, sync_w] {
        close(fd);
    }
    restore_mask(&old_mask);
    relay.finish();
    if relay.truncated {
        let msg = format!("\n[sharkcage: output truncated after {} bytes (limits.maxOutputBytes)]\n", relay.limit);
        sys::write_all(sinks.stderr, msg.as_bytes());
    }

    let (exit_code, signal) = if timed_out || killed_by.is_some() {
        (None, Some(libc::SIGKILL))
    } else if let Some(st) = worker_status {
        if libc::WIFEXITED(st) {
            (Some(libc::WEXITSTATUS(st)), None)
        } else if libc::WIFSIGNALED(st) {
            (None, Some(libc::WTERMSIG(st)))
        } else {
            (None, None)
        }
    } else {
        // PID 1 died without a report (killed from outside).
        (None, Some(libc::SIGKILL))
    };
    let broker = broker.or(broker_done);
    let net = proxy.map(|p| {
        let mut o = p.finish();
        net_notes.append(&mut o.notes);
        o.notes = net_notes;
        o
    });
    let (unix_events, unix_connected) = match broker {
        Some(b) => (b.events(), b.connected),
        None => (vec![], 0),
    };
    Ok(RunOutput {
        net,
        unix_events,
        unix_connected,
        exit_code,
        signal,
        timed_out,
        aborted_by: killed_by,
        truncated: relay.truncated,
        duration: start.elapsed(),
    })
}

fn kill_pid1(pid: i32) {
    // SAFETY: SIGKILL to our own child (PID 1 of the sandbox).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn kill_and_reap(pid: i32) {
    kill_pid1(pid);
    let _ = reap(pid);
}

/// Reap PID 1 (idempotent: ECHILD after the first time).
fn reap(pid: i32) -> Option<i32> {
    loop {
        let mut st = 0;
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
        if r == pid {
            return Some(st);
        }
        if r < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        return None;
    }
}

fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: restoring the signal mask saved above.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

struct Relay<'a> {
    limit: u64,
    written: u64,
    truncated: bool,
    sinks: &'a Sinks,
    /// stdout's and stderr's.
    redactors: [StreamRedactor; 2],
}

impl Relay<'_> {
    /// Read once from `fd`; forward within the output limit. False on EOF.
    fn pump(&mut self, fd: RawFd, which: u8, buf: &mut [u8]) -> bool {
        // SAFETY: reading into a valid buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return sys::errno() == libc::EINTR || sys::errno() == libc::EAGAIN;
        }
        if n == 0 {
            return false;
        }
        let r = &mut self.redactors[usize::from(which != 1)];
        if r.is_active() {
            let out = r.push(&buf[..n as usize]);
            self.forward(which, &out);
        } else {
            self.forward(which, &buf[..n as usize]);
        }
        true
    }

    /// Write within the output limit; what is beyond it is dropped (and
    /// the command keeps being drained, so it never blocks on a full pipe).
    fn forward(&mut self, which: u8, data: &[u8]) {
        let room = self.limit.saturating_sub(self.written);
        let take = (data.len() as u64).min(room) as usize;
        if take > 0 {
            let sink = if which == 1 { self.sinks.stdout } else { self.sinks.stderr };
            sys::write_all(sink, &data[..take]);
            self.written += take as u64;
        }
        if take < data.len() {
            self.truncated = true;
        }
    }

    /// What the redactors held back, at the end.
    fn finish(&mut self) {
        for (i, which) in [(0usize, 1u8), (1, 2)] {
            let rest = self.redactors[i].finish();
            self.forward(which, &rest);
        }
    }
}

/// Send a shifted child one idmapped detached mount per host bind of its
/// plan, in order (its id maps are written already).
fn send_idmapped(plan: &Plan, pid: i32, sock: RawFd) -> std::io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
    use std::os::fd::AsRawFd as _;
    for b in &plan.mounts.parent_binds {
        let m = sys::idmapped_tree(&b.src, b.set, ns.as_raw_fd())
            .map_err(|e| std::io::Error::new(std::io::Error::from_raw_os_error(e).kind(), format!("idmapped mount of {}: {}", b.src.display(), std::io::Error::from_raw_os_error(e))))?;
        let r = sys::send_fd(sock, m);
        close(m);
        r.map_err(std::io::Error::from_raw_os_error)?;
    }
    Ok(())
}
