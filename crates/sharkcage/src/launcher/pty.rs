//! The launcher's end of `sc exec --pty`: it holds the master of the
//! sandbox's terminal (allocated inside, see `layers::pty`) and relays.
//!
//! * Input: the launcher's stdin goes to the master. A terminal on stdin is
//!   put in raw mode for the call (keys, Ctrl-C included, reach the command's
//!   terminal, whose line discipline turns them into signals inside) and
//!   restored whenever a [`Pty`] is dropped: normal end, timeout, abort by a
//!   signal, an error. A pipe on stdin works too: its end of file becomes the
//!   terminal's end-of-file character, so `cat` and `read` end (in canonical
//!   mode; a program that made its terminal raw sees no end, as at a terminal).
//! * Output: the master's output is the command's stdout and stderr
//!   together; the supervisor relays it like a pipe (the output cap holds).
//! * Window size: the caller's, read before the sandbox exists (or 80×24
//!   without a terminal), and again on every SIGWINCH.
//!
//! The master is never passed on (close-on-exec; the launcher forks nothing
//! after the sandbox's clone), and the caller's terminal never reaches the
//! sandbox: the command sees only its own terminal.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::layers::pty::WinSize;
use crate::layers::sys;

/// Bytes read from stdin at a time (the next read waits until they are in).
const CHUNK: usize = 4096;

/// The caller's terminal, if any: the first of `fds` that is one.
pub fn caller_terminal(fds: &[RawFd]) -> Option<RawFd> {
    // SAFETY: isatty on integer descriptors.
    fds.iter().copied().find(|&fd| unsafe { libc::isatty(fd) } == 1)
}

/// The size the command's terminal starts with.
pub fn initial_size(terminal: Option<RawFd>) -> WinSize {
    terminal.and_then(WinSize::of).unwrap_or(WinSize::DEFAULT)
}

/// A terminal in raw mode; its settings are restored on drop.
struct RawMode {
    _saved: Settings,
}

/// A terminal's settings, put back when this is dropped (on every way out
/// of a call). Without `--pty` the command's stdin may be the caller's own
/// terminal: whatever the command sets there (`stty -echo`, raw mode) does
/// not outlive the call.
pub struct Settings {
    fd: RawFd,
    saved: libc::termios,
}

impl Settings {
    /// `fd`'s settings when it is a terminal we may set: not one whose
    /// foreground belongs to another process group (that would stop us).
    pub fn save(fd: RawFd) -> Option<Settings> {
        if !in_foreground(fd) {
            return None;
        }
        // SAFETY: termios is plain old data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr on our stdin with a stack struct.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        Some(Settings { fd, saved })
    }
}

impl RawMode {
    /// Raw mode on `fd` (see [`Settings::save`] for when).
    fn enter(fd: RawFd) -> Option<RawMode> {
        let saved = Settings::save(fd)?;
        let mut raw = saved.saved;
        // SAFETY: cfmakeraw edits the stack copy; tcsetattr applies it.
        if unsafe {
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSADRAIN, &raw)
        } != 0
        {
            return None;
        }
        Some(RawMode { _saved: saved })
    }
}

/// `fd` is a terminal, and not the controlling terminal of a session in
/// which we are in the background (setting it would stop us with SIGTTOU).
fn in_foreground(fd: RawFd) -> bool {
    // SAFETY: isatty/tcgetpgrp/getpgrp on integer descriptors.
    unsafe {
        if libc::isatty(fd) != 1 {
            return false;
        }
        // -1 (ENOTTY): a terminal that is not ours to control; no job control.
        let fg = libc::tcgetpgrp(fd);
        fg == -1 || fg == libc::getpgrp()
    }
}

impl Drop for Settings {
    /// Restore, also from the background (a job stopped and resumed there
    /// meanwhile): with SIGTTOU blocked the kernel lets the change through
    /// instead of stopping us.
    fn drop(&mut self) {
        // SAFETY: sigset manipulation on stack values; restoring the
        // settings saved in `enter`; then the previous signal mask.
        unsafe {
            let mut ttou: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut ttou);
            libc::sigaddset(&mut ttou, libc::SIGTTOU);
            libc::sigprocmask(libc::SIG_BLOCK, &ttou, &mut old);
            libc::tcsetattr(self.fd, libc::TCSADRAIN, &self.saved);
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    }
}

/// The launcher's stdin on its way to the master.
struct Input {
    fd: RawFd,
    open: bool,
    pending: Vec<u8>,
    /// The last byte read (end of file needs to know whether a line is
    /// unfinished).
    last: Option<u8>,
}

/// The master of the command's terminal, the caller's side, and the relay
/// between them.
pub struct Pty {
    master: OwnedFd,
    input: Input,
    /// Where the window size comes from.
    terminal: Option<RawFd>,
    /// Declared last: the caller's terminal is restored after the rest.
    _raw: Option<RawMode>,
}

impl Pty {
    /// Start relaying: `master` from the sandbox, `stdin` the launcher's,
    /// `terminal` the caller's (for the window size).
    pub fn start(master: OwnedFd, stdin: RawFd, terminal: Option<RawFd>) -> std::io::Result<Pty> {
        // SAFETY: fcntl on the master we own (the launcher's copy only).
        if unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Pty { master, input: Input { fd: stdin, open: true, pending: Vec::new(), last: None }, terminal, _raw: RawMode::enter(stdin) })
    }

    /// The master: its output is the command's.
    pub fn master(&self) -> RawFd {
        self.master.as_raw_fd()
    }

    /// What to poll: the master (and for room, while input waits), then
    /// stdin (-1 while input waits or after its end).
    pub fn poll_fds(&self) -> [libc::pollfd; 2] {
        let waiting = !self.input.pending.is_empty();
        let master_events = libc::POLLIN | if waiting { libc::POLLOUT } else { 0 };
        let stdin = if self.input.open && !waiting { self.input.fd } else { -1 };
        [libc::pollfd { fd: self.master(), events: master_events, revents: 0 }, libc::pollfd { fd: stdin, events: libc::POLLIN, revents: 0 }]
    }

    /// Stdin is readable (or at its end): take what is there.
    pub fn read_input(&mut self) {
        let mut buf = [0u8; CHUNK];
        // SAFETY: reading into a stack buffer.
        let n = unsafe { libc::read(self.input.fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            self.input.pending.extend_from_slice(&buf[..n as usize]);
            self.input.last = Some(buf[n as usize - 1]);
            self.write_input();
        } else if n == 0 || !matches!(sys::errno(), libc::EINTR | libc::EAGAIN) {
            self.end_input();
        }
    }

    /// The master has room (or input just arrived): hand over what waits.
    pub fn write_input(&mut self) {
        while !self.input.pending.is_empty() {
            let p = &self.input.pending;
            // SAFETY: writing from a valid slice to the master.
            let n = unsafe { libc::write(self.master(), p.as_ptr().cast(), p.len()) };
            if n <= 0 {
                match if n == 0 { libc::EAGAIN } else { sys::errno() } {
                    libc::EINTR => continue,
                    libc::EAGAIN => return,
                    // The terminal is gone: nothing will read input again.
                    _ => {
                        self.input.pending.clear();
                        self.input.open = false;
                        return;
                    }
                }
            }
            self.input.pending.drain(..n as usize);
        }
    }

    /// Stdin ended: in canonical mode, the terminal's end-of-file character
    /// (twice after an unfinished line: the first only ends that line).
    fn end_input(&mut self) {
        self.input.open = false;
        // SAFETY: termios is plain old data; tcgetattr on a master reads
        // the settings of the command's side.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr with a stack struct.
        if unsafe { libc::tcgetattr(self.master(), &mut t) } != 0 || t.c_lflag & libc::ICANON == 0 {
            return;
        }
        let eof = t.c_cc[libc::VEOF];
        if self.input.last.is_some_and(|b| b != b'\n') {
            self.input.pending.push(eof);
        }
        self.input.pending.push(eof);
        self.write_input();
    }

    /// SIGWINCH: the caller's terminal changed size; so does the command's.
    pub fn resize(&self) {
        if let Some(size) = self.terminal.and_then(WinSize::of) {
            let _ = size.apply(self.master());
        }
    }
}
