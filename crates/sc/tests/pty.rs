//! `sc exec --pty`: the command gets a terminal of the sandbox's own for
//! stdin, stdout and stderr; the caller's input reaches it (from a pipe or
//! from a terminal, which is raw meanwhile and restored after), its window
//! size is passed on, and the call otherwise behaves as without --pty (exit
//! status, timeout, output cap, notices). The caller's terminal never
//! reaches the sandbox, and TIOCSTI stays refused.
//!
//! A "caller's terminal" here is a pty the test opens and gives `sc` as its
//! stdin, stdout and controlling terminal, as an interactive shell would.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A pty the test holds the master of; its slave is `sc`'s terminal.
struct CallerTerminal {
    master: std::fs::File,
    slave: OwnedFd,
    /// Everything `sc` wrote to the terminal so far.
    seen: Arc<Mutex<Vec<u8>>>,
}

impl CallerTerminal {
    fn new(rows: u16, cols: u16) -> CallerTerminal {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: openpty fills two descriptors; the winsize is read.
        let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // Not inherited by what other tests spawn meanwhile.
        for fd in [m, s] {
            // SAFETY: fcntl on our descriptors.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        // SAFETY: fresh descriptors we own.
        let (master, slave) = unsafe { (std::fs::File::from(OwnedFd::from_raw_fd(m)), OwnedFd::from_raw_fd(s)) };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut r, into) = (master.try_clone().unwrap(), seen.clone());
        // Drains the terminal until its last slave descriptor is closed.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = r.read(&mut buf) {
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        CallerTerminal { master, slave, seen }
    }

    /// `sc` on this terminal: stdin, stdout and controlling terminal; stderr piped.
    fn spawn(&self, run: Run) -> (Child, Option<std::path::PathBuf>) {
        let (mut c, json) = run.command();
        c.stdin(Stdio::from(self.slave.try_clone().unwrap())).stdout(Stdio::from(self.slave.try_clone().unwrap())).stderr(Stdio::piped());
        // SAFETY: setsid/ioctl between fork and exec, on the child's fd 0.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        (c.spawn().expect("spawn sc"), json)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    #[track_caller]
    fn wait_for(&self, needle: &str) {
        let ok = wait_until(Duration::from_secs(10), || self.text().contains(needle));
        assert!(ok, "{needle:?} never appeared on the terminal: {:?}", self.text());
    }

    /// Keys typed on the terminal.
    fn type_keys(&self, keys: &[u8]) {
        (&self.master).write_all(keys).unwrap();
    }

    fn set_size(&self, rows: u16, cols: u16) {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ on our master with a stack struct.
        assert_eq!(unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) }, 0);
    }

    fn settings(&self) -> Termios {
        Termios::of(self.slave.as_raw_fd())
    }
}

/// The comparable part of a terminal's settings.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Termios {
    iflag: u32,
    oflag: u32,
    cflag: u32,
    lflag: u32,
    cc: Vec<u8>,
}

impl Termios {
    fn of(fd: RawFd) -> Termios {
        // SAFETY: termios is plain old data; tcgetattr fills it.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr on our descriptor with a stack struct.
        assert_eq!(unsafe { libc::tcgetattr(fd, &mut t) }, 0, "tcgetattr: {}", std::io::Error::last_os_error());
        Termios { iflag: t.c_iflag, oflag: t.c_oflag, cflag: t.c_cflag, lflag: t.c_lflag, cc: t.c_cc.to_vec() }
    }

    fn raw(&self) -> bool {
        self.lflag & (libc::ICANON | libc::ECHO | libc::ISIG) == 0
    }
}

/// `(st_dev, st_rdev)` of the file `fd` refers to.
fn device_of(fd: RawFd) -> (u64, u64) {
    let m = std::fs::metadata(format!("/proc/self/fd/{fd}")).unwrap();
    (m.dev(), m.rdev())
}

/// Host processes holding a descriptor on the file with `(st_dev, st_ino)`
/// (those whose descriptors we may look at).
fn holders(dev: u64, ino: u64) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|f| std::fs::metadata(f.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino));
        if holds {
            v.push(pid);
        }
    }
    v
}

#[test]
fn stdin_stdout_and_stderr_are_a_terminal_only_with_pty() {
    let _g = shared();
    let t = T::new();
    let check = "test -t 0 && test -t 1 && test -t 2";
    let o = t.sc().opt("--pty").stdin(b"x\n".to_vec()).sh(check).run();
    assert_eq!(o.code, 0, "with --pty the streams are not a terminal: {}", o.all());
    assert_eq!(o.j()["exitCode"], 0, "{}", o.all());
    let o = t.sc().stdin(b"x\n".to_vec()).sh(check).run();
    assert_eq!(o.code, 1, "without --pty, on pipes, the streams were a terminal: {}", o.all());
}

#[test]
fn tty_names_a_terminal_of_the_sandbox_that_exists_inside() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().opt("--pty").sh("t=$(tty) && test -c \"$t\" && echo \"TTY:$t\" && ls -1 /dev/pts && test \"$(stat -L -c %t:%T /dev/stdin)\" = \"$(stat -L -c %t:%T $t)\" && echo SAME").run();
    o.assert_ok();
    let out = o.out();
    assert!(out.contains("TTY:/dev/pts/0"), "{}", o.all());
    assert!(out.contains("SAME"), "stdin is not the terminal tty names: {}", o.all());
    // The sandbox's devpts holds that one terminal: nothing of the host's.
    let pts: Vec<&str> = out.lines().map(str::trim).filter(|l| !l.starts_with("TTY:") && *l != "SAME").collect();
    assert_eq!(pts, ["0", "ptmx"], "{}", o.all());
}

#[test]
fn the_callers_terminal_is_not_reachable_from_inside() {
    let _g = shared();
    let t = T::new();
    let term = CallerTerminal::new(30, 90);
    let (host_dev, host_rdev) = device_of(term.slave.as_raw_fd());
    let sleep = unique_sleep(30);
    let script = format!("stat -L -c 'DEV %d %t %T' /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2; echo READY; sleep {sleep}");
    let (sc, json) = term.spawn(t.sc().opt("--pty").opt("--timeout=20").sh(&script));
    let start = Instant::now();
    term.wait_for("READY");
    // Inside: stdio are all on a devpts other than the caller's.
    let text = term.text();
    let inside: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("DEV "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (maj, min) = (u64::from_str_radix(f[1], 16).unwrap(), u64::from_str_radix(f[2], 16).unwrap());
            (f[0].parse().unwrap(), libc::makedev(maj as u32, min as u32))
        })
        .collect();
    assert_eq!(inside.len(), 3, "{text:?}");
    for d in &inside {
        assert_ne!(d.0, host_dev, "a descriptor inside is on the caller's devpts: {text:?}");
        assert_ne!(*d, (host_dev, host_rdev), "the caller's terminal is open inside: {text:?}");
    }
    // Outside: only sc and the test hold the caller's terminal, not the
    // sandbox's processes (all of them where we may look: as root).
    let m = std::fs::metadata(format!("/proc/self/fd/{}", term.slave.as_raw_fd())).unwrap();
    let held = holders(m.dev(), m.ino());
    assert!(held.contains(&(sc.id() as i32)), "control: sc itself was not found holding the terminal: {held:?}");
    // (READY is printed just before the shell starts the sleep.)
    wait_until(Duration::from_secs(5), || !pids_with_argv(&["sleep", &sleep]).is_empty());
    let sleepers = pids_with_argv(&["sleep", &sleep]);
    assert!(!sleepers.is_empty(), "control: the command is not running");
    let others: Vec<i32> = held.iter().copied().filter(|&p| p != sc.id() as i32 && p != std::process::id() as i32).collect();
    let names: Vec<String> = others.iter().map(|p| read(std::path::Path::new(&format!("/proc/{p}/cmdline"))).unwrap_or_default().replace('\0', " ")).collect();
    assert!(others.is_empty(), "processes other than sc hold the caller's terminal: {others:?} {names:?} (the command: {sleepers:?})");
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(sc.id() as i32, libc::SIGTERM) };
    let o = wait(sc, json, start);
    assert_eq!(o.j()["aborted"], true, "{}", o.all());
}

#[test]
fn the_window_size_is_passed_on_and_follows_changes() {
    let _g = shared();
    let t = T::new();
    let term = CallerTerminal::new(33, 101);
    let (sc, json) = term.spawn(t.sc().opt("--pty").opt("--timeout=20").sh("stty size; echo READY; read x; stty size"));
    let start = Instant::now();
    term.wait_for("READY");
    assert!(term.text().contains("33 101"), "the caller's size did not arrive: {:?}", term.text());
    term.set_size(44, 120);
    term.type_keys(b"\r");
    let o = wait(sc, json, start);
    assert_eq!(o.code, 0, "{}\nterminal: {:?}", o.all(), term.text());
    assert!(term.text().contains("44 120"), "the new size did not arrive: {:?}", term.text());
    // Without a terminal the command's starts at 80×24.
    let o = t.sc().opt("--pty").sh("stty size").run();
    assert!(o.out().contains("24 80"), "{}", o.all());
}

#[test]
fn piped_input_reaches_the_command_and_its_end_ends_it() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().opt("--pty").opt("--timeout=20").stdin(b"hello\n".to_vec()).sh("read x; echo got:$x").run();
    o.assert_ok();
    assert!(o.out().contains("got:hello"), "{}", o.all());
    // An unfinished last line, then the end: cat prints it and ends.
    let o = t.sc().opt("--pty").opt("--timeout=20").stdin(b"first\nlast-no-newline".to_vec()).cmd(["cat"]).run();
    assert_eq!(o.code, 0, "cat did not end at the input's end: {}", o.all());
    assert!(!o.j()["timedOut"].as_bool().unwrap(), "{}", o.all());
    assert_eq!(o.out().matches("last-no-newline").count(), 2, "echo and cat's copy expected: {}", o.all());
    // No input at all (/dev/null): the end still arrives.
    let o = t.sc().opt("--pty").opt("--timeout=20").cmd(["cat"]).run();
    assert_eq!(o.code, 0, "{}", o.all());
}

#[test]
fn exit_status_output_cap_and_notices_are_as_without_pty() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().opt("--pty").sh("echo out; echo err >&2; exit 7").run();
    assert_eq!(o.code, 7, "{}", o.all());
    assert_eq!(o.j()["exitCode"], 7);
    // One terminal: both streams arrive on stdout.
    assert!(o.out().contains("out") && o.out().contains("err"), "{}", o.all());
    let o = t.sc().opt("--pty").sh("kill -KILL $$").run();
    assert_eq!(o.code, 128 + 9, "{}", o.all());
    assert_eq!(o.j()["signal"], "SIGKILL", "{}", o.all());
    let o = t.sc().opt("--pty").opt("--max-output=100").sh("head -c 5000 /dev/zero | tr '\\0' x").run();
    assert!(o.stdout.len() <= 200, "output was not cut: {} bytes", o.stdout.len());
    assert_eq!(o.j()["truncated"], true, "{}", o.all());
    assert!(o.err().lines().any(|l| l.contains("sc: output cut after 100 bytes")), "{}", o.err());
}

#[test]
fn input_and_output_pass_byte_for_byte_to_the_last_one() {
    let _g = shared();
    let t = T::new();
    // Output: everything the command wrote before it exited arrives.
    let expected: Vec<u8> = (1..=100_000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
    let o = t.sc().opt("--pty").sh("stty -opost; seq 1 100000").run();
    o.assert_ok();
    assert_eq!(o.stdout.len(), expected.len(), "output lost or added");
    assert!(o.stdout == expected, "output changed on its way");
    // Input: sent once the terminal inside is raw, so it changes no byte.
    let data = pseudo_random(50_000, 7);
    let (mut sc, json) = t.sc().opt("--pty").opt("--timeout=20").stdin(vec![]).sh(&format!("stty raw -echo; echo READY; head -c {} | sha256sum", data.len())).spawn();
    let start = Instant::now();
    let mut out = sc.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("READY") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "sc ended before the command was ready: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let mut stdin = sc.stdin.take().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&sent));
    out.read_to_end(&mut seen).unwrap();
    writer.join().unwrap().unwrap();
    let o = wait(sc, json, start);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(String::from_utf8_lossy(&seen).contains(&host_sha256(&data)), "input changed on its way: {:?}", String::from_utf8_lossy(&seen));
}

#[test]
fn a_timeout_kills_the_whole_tree_and_is_announced() {
    let _g = shared();
    let t = T::new();
    let sleep = unique_sleep(30);
    let o = t.sc().opt("--pty").opt("--timeout=0.5").sh(&format!("sleep {sleep} & sleep {sleep}; wait")).run();
    assert_eq!(o.code, 124, "{}", o.all());
    assert_eq!(o.j()["timedOut"], true, "{}", o.all());
    assert!(o.err().lines().any(|l| l.starts_with("sc: timed out")), "{}", o.err());
    assert!(o.elapsed < Duration::from_secs(10), "{:?}", o.elapsed);
    let gone = wait_until(Duration::from_secs(3), || pids_with_argv(&["sleep", &sleep]).is_empty());
    let left = pids_with_argv(&["sleep", &sleep]);
    kill_all(&left);
    assert!(gone, "processes outlived the call: {left:?}");
}

#[test]
fn the_callers_terminal_is_raw_during_the_call_and_restored_after_it() {
    let _g = shared();
    let t = T::new();
    let term = CallerTerminal::new(24, 80);
    let before = term.settings();
    assert!(!before.raw(), "control: a fresh terminal is not raw");
    // A normal end.
    let (sc, json) = term.spawn(t.sc().opt("--pty").opt("--timeout=20").sh("echo READY1; read x; echo got:$x"));
    let start = Instant::now();
    term.wait_for("READY1");
    assert!(term.settings().raw(), "the caller's terminal is not raw during the call");
    term.type_keys(b"typed\r");
    let o = wait(sc, json, start);
    assert_eq!(o.code, 0, "{}", o.all());
    term.wait_for("got:typed");
    assert_eq!(term.settings(), before, "not restored after a normal end");
    // A timeout.
    let (sc, json) = term.spawn(t.sc().opt("--pty").opt("--timeout=1").sh("echo READY2; sleep 10"));
    term.wait_for("READY2");
    let o = wait(sc, json, Instant::now());
    assert_eq!(o.code, 124, "{}", o.all());
    assert_eq!(term.settings(), before, "not restored after a timeout");
    // A termination signal to sc.
    let (sc, json) = term.spawn(t.sc().opt("--pty").opt("--timeout=20").sh("echo READY3; sleep 10"));
    term.wait_for("READY3");
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(sc.id() as i32, libc::SIGTERM) };
    let o = wait(sc, json, Instant::now());
    assert_eq!(o.j()["aborted"], true, "{}", o.all());
    assert_eq!(term.settings(), before, "not restored after SIGTERM");
    // Ctrl-C is a key for the command's terminal, not a signal to sc.
    let (sc, json) = term.spawn(t.sc().opt("--pty").opt("--timeout=20").sh("trap 'echo INTERRUPTED; exit 5' INT; echo READY4; while :; do sleep 0.1; done"));
    term.wait_for("READY4");
    term.type_keys(b"\x03");
    let o = wait(sc, json, Instant::now());
    assert_eq!(o.code, 5, "{}\nterminal: {:?}", o.all(), term.text());
    term.wait_for("INTERRUPTED");
    assert_eq!(term.settings(), before, "not restored after Ctrl-C");
}

#[test]
fn tiocsti_is_refused_on_the_commands_terminal() {
    let _g = shared();
    let t = T::new();
    let term = CallerTerminal::new(24, 80);
    let (sc, json) = term.spawn(t.sc().opt("--pty").opt("--timeout=20").cmd([sc_bin(), "__probe", "tiocsti", "tiocsti_high_bits", "tioclinux"]));
    let o = wait(sc, json, Instant::now());
    o.assert_ok();
    term.wait_for("}");
    let text = term.text();
    let line = text.lines().find(|l| l.trim_start().starts_with('{')).unwrap_or_else(|| panic!("no probe output: {text:?}"));
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    for n in ["tiocsti", "tiocsti_high_bits", "tioclinux"] {
        assert_ne!(errno_of(&v, n), 0, "{n} succeeded on the command's terminal: {v}");
    }
}

#[test]
fn without_pty_what_the_command_sets_on_the_callers_terminal_does_not_outlive_the_call() {
    let _g = shared();
    let t = T::new();
    let term = CallerTerminal::new(24, 80);
    let before = term.settings();
    // The command's stdin is the caller's terminal (no --pty): it turns
    // echo off and makes it raw, then exits (and once is killed by a timeout).
    let (sc, json) = term.spawn(t.sc().opt("--timeout=20").sh("stty raw -echo && echo CHANGED"));
    let o = wait(sc, json, Instant::now());
    assert_eq!(o.code, 0, "{}", o.all());
    term.wait_for("CHANGED");
    assert_eq!(term.settings(), before, "the command's terminal settings outlived the call");
    let (sc, json) = term.spawn(t.sc().opt("--timeout=1").sh("stty raw -echo; echo CHANGED2; sleep 10"));
    term.wait_for("CHANGED2");
    let o = wait(sc, json, Instant::now());
    assert_eq!(o.code, 124, "{}", o.all());
    assert_eq!(term.settings(), before, "not restored after a timeout");
}
