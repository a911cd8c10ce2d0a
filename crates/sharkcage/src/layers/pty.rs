//! The command's pseudo-terminal (`sc exec --pty`), taken from the
//! sandbox's own devpts instance.
//!
//! The sandbox mounts a private devpts (`newinstance`, see `mounts`), so the
//! terminal is allocated there, by PID 1 after the mounts: `tty` and
//! `ttyname` work inside, `/dev/pts` shows that one terminal, and nothing of
//! the host's devpts is reachable. The alternative, `openpty` in the
//! launcher, would hand the command a host terminal whose name does not
//! exist inside.
//!
//! What this enforces:
//! * no terminal of the caller reaches the sandbox: PID 1 replaces its
//!   inherited stdin with `/dev/null` before anything else, its stdout and
//!   stderr are the launcher's pipes, and the worker's stdio are the
//!   sandbox's terminal only;
//! * the master side lives only in the launcher: PID 1 sends it over a
//!   socket (SCM_RIGHTS) and closes its copy before the worker exists;
//! * the peer is opened from the master itself (`TIOCGPTPEER`), never by a
//!   path lookup, with `O_NOCTTY` (PID 1 gets no controlling terminal);
//! * the window size is set before the command starts, so its first
//!   `TIOCGWINSZ` already sees the caller's.
//!
//! TIOCSTI and TIOCLINUX stay denied by the syscall filter (`seccomp`): the
//! command cannot push input into any terminal, its own included.
//!
//! After-fork code: stack values and system calls only.

use super::sys::{self, errno, SysResult};

/// A terminal's window size (rows and columns, then pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

impl WinSize {
    /// The size given when the caller has no terminal to copy it from.
    pub const DEFAULT: WinSize = WinSize { rows: 24, cols: 80, xpixel: 0, ypixel: 0 };

    /// The size of the terminal `fd`, if it is one (and reports a size).
    pub fn of(fd: i32) -> Option<WinSize> {
        // SAFETY: winsize is plain old data; zero is a valid value.
        let mut w: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ fills the stack struct.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut w) } != 0 || w.ws_row == 0 || w.ws_col == 0 {
            return None;
        }
        Some(WinSize { rows: w.ws_row, cols: w.ws_col, xpixel: w.ws_xpixel, ypixel: w.ws_ypixel })
    }

    /// Set this size on the terminal `fd` (on a master: on its peer, whose
    /// foreground process group gets SIGWINCH).
    pub fn apply(self, fd: i32) -> SysResult {
        let w = libc::winsize { ws_row: self.rows, ws_col: self.cols, ws_xpixel: self.xpixel, ws_ypixel: self.ypixel };
        // SAFETY: TIOCSWINSZ reads the stack struct.
        sys::check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &w) } as libc::c_long).map(|_| ())
    }
}

/// PID 1, first thing: stdin becomes `/dev/null`, so the caller's stdin
/// (perhaps its terminal) is not held anywhere in the sandbox.
pub fn detach_stdin() -> SysResult {
    // SAFETY: open with a static C string; dup2 onto 0; close our copy.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0 {
            return Err(errno());
        }
        let r = libc::dup2(null, 0);
        let e = errno();
        libc::close(null);
        if r < 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// Steps of [`allocate`], reported with its errno.
pub const STEP_OPEN: u32 = 1;
pub const STEP_UNLOCK: u32 = 2;
pub const STEP_PEER: u32 = 3;
pub const STEP_SIZE: u32 = 4;
pub const STEP_SEND: u32 = 5;
pub const STEP_STDIN: u32 = 6;

/// PID 1, after the mounts (the sandbox's own `/dev/pts` is in place):
/// open a new terminal there, set its window size, send its master over
/// `sock`, and make its peer our fd 0 (the worker's terminal).
pub fn allocate(sock: i32, size: WinSize) -> Result<(), (u32, i32)> {
    let at = |step: u32| move |e: i32| (step, e);
    // SAFETY: open with a static C string; the descriptor is closed below.
    let master = unsafe { libc::open(c"/dev/pts/ptmx".as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if master < 0 {
        return Err((STEP_OPEN, errno()));
    }
    let peer = unlock_and_open_peer(master);
    let sent = peer.and_then(|_| size.apply(master).map_err(at(STEP_SIZE))).and_then(|_| sys::send_fd(sock, master).map_err(at(STEP_SEND)));
    sys::close(master);
    let peer = peer?;
    let moved = sent.and_then(|_| {
        // SAFETY: dup2 of the peer onto stdin (replacing /dev/null).
        sys::check(unsafe { libc::dup2(peer, 0) } as libc::c_long).map(|_| ()).map_err(at(STEP_STDIN))
    });
    sys::close(peer);
    moved
}

/// Unlock the terminal behind `master` and open its peer without a path.
fn unlock_and_open_peer(master: i32) -> Result<i32, (u32, i32)> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the stack.
    if unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err((STEP_UNLOCK, errno()));
    }
    // SAFETY: TIOCGPTPEER returns a new descriptor for the peer.
    let peer = unsafe { libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if peer < 0 {
        return Err((STEP_PEER, errno()));
    }
    Ok(peer)
}

/// The worker, a new session leader: fd 0 (the terminal from [`allocate`])
/// becomes its controlling terminal, and its stdout and stderr too.
pub fn take_as_controlling() -> SysResult {
    // SAFETY: TIOCSCTTY with 0 (never steal); dup2 of fd 0 onto 1 and 2.
    unsafe {
        if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
            return Err(errno());
        }
        if libc::dup2(0, 1) < 0 || libc::dup2(0, 2) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}
