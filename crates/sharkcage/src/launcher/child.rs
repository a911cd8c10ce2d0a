//! The after-fork code: PID 1 of the sandbox and the worker that becomes the
//! command. This is the only code that runs between `clone` and `execve`.
//!
//! Rules for this file: no allocation, no locks, no panics on purpose; only
//! system calls on data prepared in [`super::plan::Plan`]. Every failure is
//! reported through the error pipe as `(stage, errno)` and ends the process.
//!
//! PID 1 (new user, mount, PID, network, IPC, UTS, cgroup namespaces):
//! 1. with `--pty`, stdin becomes `/dev/null` (no terminal of the caller is
//!    held in the sandbox, `layers::pty`); `PR_SET_PDEATHSIG(SIGKILL)`, then
//!    wait for the launcher's go-ahead; EOF means the launcher died;
//! 2. on a cgroup v1 host, move ourselves into the call's cgroups by writing
//!    `"0"` into the `tasks` descriptors the launcher opened (`layers::cgroup`;
//!    on v2 we were born in ours), then close them — before anything else;
//! 3. write the uid/gid maps (`layers::userns`) — or, for a shifted root
//!    caller, take the maps the launcher wrote and become uid 0 inside; then
//!    lower the per-user kernel quotas of our user namespace (`layers::quotas`);
//! 4. set the host name; bring loopback up and, when the call has network,
//!    create the proxy's listeners on it and send them to the launcher
//!    (`layers::net`); build the filesystem view (`layers::mounts`); with
//!    `--pty`, open a terminal in the sandbox's own devpts, send its master
//!    to the launcher and keep its peer as fd 0 (`layers::pty`);
//! 5. add the Landlock rules for sandbox-only paths;
//! 6. become non-dumpable, fork the worker, and reap until the worker exits;
//!    then report the worker's wait status and exit, which makes the kernel
//!    kill every other process left in the PID namespace.
//!
//! Worker, in this order (each step needs the ones before it):
//! 1. `setsid` (no controlling terminal shared with the caller); with
//!    `--pty`, the sandbox's terminal becomes the controlling terminal and
//!    stdin, stdout and stderr; default signal mask and SIGPIPE disposition;
//! 2. rlimits (`layers::limits`); a fresh anonymous session keyring (before seccomp denies keyctl);
//! 3. `no_new_privs`; Landlock `restrict_self`;
//! 4. close every inherited descriptor beyond stdio;
//! 5. drop all capabilities (needs CAP_SETPCAP, so before the filter);
//! 6. seccomp, last (with the unix-socket broker: with a notification
//!    listener, which goes to the launcher over a socketpair);
//! 7. `execve` each prepared candidate path in turn.

use super::plan::Plan;
use crate::layers::{caps, fds, net, pty, seccomp, sys};

/// Stage codes reported through the error pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum Stage {
    Sync = 1,
    IdMap = 2,
    Hostname = 3,
    Mounts = 4,
    LandlockRules = 5,
    Fork = 6,
    Setsid = 7,
    Rlimits = 8,
    Keyring = 9,
    NoNewPrivs = 10,
    Landlock = 11,
    Caps = 12,
    Seccomp = 13,
    Exec = 14,
    Dumpable = 15,
    Network = 16,
    Cgroup = 17,
    Quotas = 18,
    Pty = 19,
}

impl Stage {
    pub fn from_u32(v: u32) -> Option<Stage> {
        use Stage::*;
        Some(match v {
            1 => Sync,
            2 => IdMap,
            3 => Hostname,
            4 => Mounts,
            5 => LandlockRules,
            6 => Fork,
            7 => Setsid,
            8 => Rlimits,
            9 => Keyring,
            10 => NoNewPrivs,
            11 => Landlock,
            12 => Caps,
            13 => Seccomp,
            14 => Exec,
            15 => Dumpable,
            16 => Network,
            17 => Cgroup,
            18 => Quotas,
            19 => Pty,
            _ => return None,
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            Stage::Sync => "waiting for the launcher",
            Stage::IdMap => "writing the user namespace id map",
            Stage::Hostname => "setting the host name",
            Stage::Mounts => "building the filesystem view",
            Stage::LandlockRules => "adding Landlock rules",
            Stage::Fork => "starting the worker",
            Stage::Setsid => "starting a new session",
            Stage::Rlimits => "setting resource limits",
            Stage::Keyring => "joining a fresh session keyring",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::Landlock => "enforcing Landlock",
            Stage::Caps => "dropping capabilities",
            Stage::Seccomp => "installing the seccomp filter",
            Stage::Exec => "executing the command",
            Stage::Dumpable => "making PID 1 non-dumpable",
            Stage::Network => "setting up the sandbox's loopback and proxy listeners",
            Stage::Cgroup => "entering the call's cgroup",
            Stage::Quotas => "lowering the sandbox's per-user kernel quotas",
            Stage::Pty => "giving the command its terminal",
        }
    }
}

/// Descriptors the child uses (numbers valid in the child).
#[derive(Debug, Clone, Copy)]
pub struct ChildFds {
    pub sync_r: i32,
    pub sync_w: i32,
    pub err_r: i32,
    pub err_w: i32,
    pub status_r: i32,
    pub status_w: i32,
    pub out_r: i32,
    pub out_w: i32,
    pub errout_r: i32,
    pub errout_w: i32,
    pub signal_fd: i32,
    /// Unix-socket broker: our end of a socketpair (-1 without a broker) and
    /// the launcher's end (closed here).
    pub notify_child: i32,
    pub notify_parent: i32,
    /// Shifted root caller: our end of the socket on which the launcher
    /// sends idmapped mounts (-1 otherwise), and the launcher's end.
    pub id_child: i32,
    pub id_parent: i32,
    /// Network: our end of the socket on which the proxy's listeners go to
    /// the launcher (-1 without network), and the launcher's end.
    pub net_child: i32,
    pub net_parent: i32,
    /// `--pty`: our end of the socket on which the terminal's master goes
    /// to the launcher (-1 without a terminal), the launcher's end, and the
    /// window size to give it.
    pub pty_child: i32,
    pub pty_parent: i32,
    pub pty_size: pty::WinSize,
    /// cgroup v1: `tasks` files of the call's cgroups, opened by the
    /// launcher (-1: unused).
    pub cgroup_tasks: [i32; crate::layers::cgroup::MAX_ATTACH],
}

/// Report `(stage, detail, errno)` and exit.
fn fail(fd: i32, stage: Stage, detail: u32, errno: i32) -> ! {
    let mut buf = [0u8; 12];
    buf[0..4].copy_from_slice(&(stage as u32).to_ne_bytes());
    buf[4..8].copy_from_slice(&detail.to_ne_bytes());
    buf[8..12].copy_from_slice(&errno.to_ne_bytes());
    sys::write_all(fd, &buf);
    // SAFETY: _exit never returns and runs no destructors or atexit handlers.
    unsafe { libc::_exit(127) }
}

/// PID 1. Never returns.
pub fn pid1(plan: &Plan, f: &ChildFds) -> ! {
    // SAFETY: closing the launcher's ends of our pipes and its signalfd;
    // dup2 of our pipe ends onto stdout/stderr. Plain fd syscalls.
    unsafe {
        for fd in [f.sync_w, f.err_r, f.status_r, f.out_r, f.errout_r, f.signal_fd, f.notify_parent, f.id_parent, f.net_parent, f.pty_parent] {
            if fd >= 0 {
                libc::close(fd);
            }
        }
        libc::dup2(f.out_w, 1);
        libc::dup2(f.errout_w, 2);
        libc::close(f.out_w);
        libc::close(f.errout_w);
    }
    let e = f.err_w;
    if f.pty_child >= 0 {
        if let Err(errno) = pty::detach_stdin() {
            fail(e, Stage::Pty, 0, errno);
        }
    }
    if let Err(errno) = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0) {
        fail(e, Stage::Sync, 0, errno);
    }
    let mut go = [0u8; 1];
    // SAFETY: read one byte into a stack buffer.
    let n = unsafe { libc::read(f.sync_r, go.as_mut_ptr().cast(), 1) };
    if n != 1 {
        // The launcher is gone (or refused to continue): run nothing.
        // SAFETY: _exit.
        unsafe { libc::_exit(126) }
    }
    // Into the call's cgroups before anything else runs; we are the only
    // thread, so the kernel moves us without its global lock.
    for (i, &fd) in f.cgroup_tasks.iter().enumerate() {
        if fd >= 0 {
            if let Err(errno) = sys::attach_self(fd) {
                fail(e, Stage::Cgroup, i as u32, errno);
            }
            sys::close(fd);
        }
    }

    if let Err(errno) = plan.idmap.apply() {
        fail(e, Stage::IdMap, 0, errno);
    }
    // A uid change (the shifted root caller's setresuid) clears the
    // parent-death signal: arm it again, then make sure the launcher did not
    // die in between. It holds the sync pipe's write end for the whole call,
    // so a hang-up there means it is gone.
    if let Err(errno) = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0) {
        fail(e, Stage::Sync, 1, errno);
    }
    let mut pfd = libc::pollfd { fd: f.sync_r, events: libc::POLLIN, revents: 0 };
    // SAFETY: poll on one stack pollfd, no wait; then close our end.
    unsafe {
        if libc::poll(&mut pfd, 1, 0) > 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            libc::_exit(126);
        }
        libc::close(f.sync_r);
    }
    if let Err((i, errno)) = plan.quotas.apply() {
        fail(e, Stage::Quotas, i, errno);
    }
    // SAFETY: sethostname with a prepared buffer and its length.
    if unsafe { libc::sethostname(plan.hostname.as_ptr(), plan.hostname.as_bytes().len()) } != 0 {
        fail(e, Stage::Hostname, 0, sys::errno());
    }
    if let Err(errno) = net::loopback_up() {
        fail(e, Stage::Network, 0, errno);
    }
    if f.net_child >= 0 {
        for (i, port) in [crate::proxy::HTTP_PORT, crate::proxy::SOCKS_PORT].into_iter().enumerate() {
            let l = match net::listen_loopback(port) {
                Ok(fd) => fd,
                Err(errno) => fail(e, Stage::Network, 1 + i as u32, errno),
            };
            if let Err(errno) = sys::send_fd(f.net_child, l) {
                fail(e, Stage::Network, 3, errno);
            }
            // SAFETY: closing our copy; the launcher holds the listener now.
            unsafe { libc::close(l) };
        }
        // SAFETY: closing our end of the net socket.
        unsafe { libc::close(f.net_child) };
    }
    if let Err((step, errno)) = plan.mounts.apply(f.id_child) {
        fail(e, Stage::Mounts, step, errno);
    }
    if f.id_child >= 0 {
        // SAFETY: closing our end of the id socket; all mounts arrived.
        unsafe { libc::close(f.id_child) };
    }
    if f.pty_child >= 0 {
        if let Err((step, errno)) = pty::allocate(f.pty_child, f.pty_size) {
            fail(e, Stage::Pty, step, errno);
        }
        sys::close(f.pty_child);
    }
    if let Err(errno) = plan.landlock.add_child_rules() {
        fail(e, Stage::LandlockRules, 0, errno);
    }
    if let Err(errno) = sys::prctl(libc::PR_SET_DUMPABLE, 0, 0) {
        fail(e, Stage::Dumpable, 0, errno);
    }

    // A raw fork (clone with SIGCHLD), not glibc's fork(): no atfork
    // handlers and no allocator locks, which another thread of the launcher
    // could have held at the moment of our own clone.
    // SAFETY: a fork-like clone (no new stack); the child only runs `worker`.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) } as i32;
    if pid < 0 {
        fail(e, Stage::Fork, 0, sys::errno());
    }
    if pid == 0 {
        worker(plan, f);
    }
    // PID 1 keeps nothing the worker's output or errors depend on.
    // SAFETY: closing our copies; the worker has its own.
    unsafe {
        libc::close(f.err_w);
        libc::close(0);
    }
    reap(pid, f.status_w)
}

/// Reap every child; when the worker exits, report its status and exit.
fn reap(worker: i32, status_w: i32) -> ! {
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut st, 0) };
        if r < 0 {
            if sys::errno() == libc::EINTR {
                continue;
            }
            // SAFETY: _exit.
            unsafe { libc::_exit(125) }
        }
        if r == worker {
            sys::write_all(status_w, &st.to_ne_bytes());
            // SAFETY: _exit; the kernel then kills the rest of the namespace.
            unsafe { libc::_exit(0) }
        }
    }
}

/// The worker. Never returns.
fn worker(plan: &Plan, f: &ChildFds) -> ! {
    let e = f.err_w;
    // SAFETY: plain syscalls; the sigset is a stack value.
    unsafe {
        libc::close(f.status_w);
        if libc::setsid() < 0 {
            fail(e, Stage::Setsid, 0, sys::errno());
        }
        if f.pty_child >= 0 {
            if let Err(errno) = pty::take_as_controlling() {
                fail(e, Stage::Pty, 10, errno);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in [libc::SIGPIPE, libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    if let Err(errno) = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0) {
        fail(e, Stage::Setsid, 1, errno);
    }
    if let Err(errno) = plan.rlimits.apply() {
        fail(e, Stage::Rlimits, 0, errno);
    }
    // KEYCTL_JOIN_SESSION_KEYRING (1) with a NULL name: a new anonymous
    // session keyring, so the caller's session keyring is out of reach.
    // SAFETY: keyctl with integer/NULL arguments.
    if unsafe { libc::syscall(libc::SYS_keyctl, 1, 0usize) } < 0 {
        fail(e, Stage::Keyring, 0, sys::errno());
    }
    if let Err(errno) = sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0) {
        fail(e, Stage::NoNewPrivs, 0, errno);
    }
    if let Err(errno) = plan.landlock.restrict_self() {
        fail(e, Stage::Landlock, 0, errno);
    }
    fds::close_inherited_except(&[e, f.notify_child]);
    if let Err(errno) = caps::drop_all(plan.last_cap) {
        fail(e, Stage::Caps, 0, errno);
    }
    if f.notify_child >= 0 {
        // With the unix-socket broker: install the filter with a listener
        // and hand the listener to the launcher before running anything.
        let listener = match seccomp::apply_with_listener(&plan.seccomp) {
            Ok(fd) => fd,
            Err(errno) => fail(e, Stage::Seccomp, 1, errno),
        };
        if let Err(errno) = sys::send_fd(f.notify_child, listener) {
            fail(e, Stage::Seccomp, 2, errno);
        }
        // SAFETY: closing our copies; the launcher holds the listener now.
        unsafe {
            libc::close(listener);
            libc::close(f.notify_child);
        }
    } else if let Err(errno) = seccomp::apply(&plan.seccomp) {
        fail(e, Stage::Seccomp, 0, errno);
    }
    let mut last = libc::ENOENT;
    for cand in &plan.exec_candidates {
        // SAFETY: prepared NUL-terminated argv/envp pointer arrays whose
        // strings live in `plan` for the whole call.
        unsafe { libc::execve(cand.as_ptr(), plan.argv_ptrs.as_ptr(), plan.envp_ptrs.as_ptr()) };
        let err = sys::errno();
        // Like execvp: keep looking on ENOENT/ENOTDIR; remember EACCES.
        if err == libc::EACCES {
            last = err;
        } else if err != libc::ENOENT && err != libc::ENOTDIR {
            last = err;
            break;
        }
    }
    fail(e, Stage::Exec, 0, last)
}
