//! The unix-socket broker (`network.allowUnixSockets`), attacked from inside:
//! the sandboxed command replaces a listed path (or a directory on its way)
//! with a symlink to a socket nobody listed, with a file or a fifo, or removes
//! it; and the peer of a brokered connection must see the sandbox's identity,
//! never the launcher's uid 0.
//!
//! Every test judges the effect on the host: what an unlisted listener
//! accepted (nothing), what a listed one received, which credentials it saw,
//! and what `violations` says. They pass as root (the sandbox shifted to an
//! unprivileged host uid) and as an unprivileged user.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use common::*;

/// `SO_PEERGROUPS` (x86-64).
const SO_PEERGROUPS: libc::c_int = 59;

/// A non-blocking listener that anyone may connect to (mode 0777), so that
/// only the broker's rules decide, not file permissions.
fn listener(p: &Path) -> UnixListener {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    let l = UnixListener::bind(p).unwrap_or_else(|e| panic!("bind {}: {e}", p.display()));
    l.set_nonblocking(true).unwrap();
    set_mode(p, 0o777);
    l
}

fn accepted(l: &UnixListener) -> usize {
    drain_accepts(|| l.accept())
}

fn policy(sockets: &[&Path]) -> String {
    let list: Vec<String> = sockets.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    format!(r#"{{"network": {{"allowUnixSockets": [{}]}}}}"#, list.join(","))
}

/// Run `script` in the sandbox, then `sc __probe connect-unix:PATH`; the
/// probe's errno for that connect, and the call's output.
fn swap_then_connect(t: &T, listed: &[&Path], script: &str, connect: &Path) -> (i64, Out) {
    let o = t.sc().policy(&policy(listed)).sh(&format!("{script}\n{} __probe connect-unix:{}", sc_bin(), connect.display())).run();
    let line = o.out().lines().last().unwrap_or_default().to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("probe JSON ({e}): {}", o.all()));
    (errno_of(&v, &format!("connect-unix:{}", connect.display())), o)
}

/// The refused unix-socket entries of `violations`.
fn unix_refusals(o: &Out) -> Vec<String> {
    o.j()["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == "unix-socket" && v["refused"] == true)
        .map(|v| v["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[track_caller]
fn assert_refusal(o: &Out, path: &Path, why: &str) {
    let r = unix_refusals(o);
    assert!(r.iter().any(|d| d.contains(&path.display().to_string()) && d.contains(why)), "no refusal of {} ({why}) in violations: {r:?}\n{}", path.display(), o.all());
}

/// A listed socket in the workspace, replaced during the call by a symlink to
/// an unlisted socket (one in the hidden ~/.ssh, one a host daemon's): the
/// unlisted listeners accept nothing, the command gets EACCES, and the
/// refusal is reported.
#[test]
fn symlink_at_a_listed_path_reaches_no_unlisted_socket() {
    let _g = shared();
    let t = T::new();
    let listed = t.ws.join("app.sock");
    let _legit = listener(&listed);
    let agent = t.home.join(".ssh/agent.sock");
    let daemon = t.root.join("daemon/d.sock");
    let l_agent = listener(&agent);
    let l_daemon = listener(&daemon);
    for (target, l) in [(&agent, &l_agent), (&daemon, &l_daemon)] {
        let (errno, o) = swap_then_connect(&t, &[&listed], &format!("rm -f app.sock && ln -s {} app.sock || echo SWAP-FAILED", target.display()), &listed);
        assert!(!o.out().contains("SWAP-FAILED"), "control: the swap must work: {}", o.all());
        assert_eq!(accepted(l), 0, "the unlisted socket {} received a connection", target.display());
        assert_eq!(errno, libc::EACCES as i64, "{}", o.all());
        assert_refusal(&o, &listed, "symlink");
        let _ = std::fs::remove_file(&listed);
    }
}

/// The same through a directory on the way: `run/` renamed and replaced by a
/// symlink to a directory holding an unlisted socket of the same name.
#[test]
fn symlinked_parent_directory_is_not_followed() {
    let _g = shared();
    let t = T::new();
    let listed = t.ws.join("run/app.sock");
    let _legit = listener(&listed);
    let l_daemon = listener(&t.root.join("daemon/app.sock"));
    let (errno, o) = swap_then_connect(&t, &[&listed], &format!("mv run run.old && ln -s {} run || echo SWAP-FAILED", t.root.join("daemon").display()), &listed);
    assert!(!o.out().contains("SWAP-FAILED"), "control: the swap must work: {}", o.all());
    assert_eq!(accepted(&l_daemon), 0, "an unlisted host socket received a connection through a symlinked directory");
    assert_eq!(errno, libc::EACCES as i64, "{}", o.all());
    assert_refusal(&o, &listed, "symlink");
}

/// A symlink planted at a listed path before the call (by an earlier call:
/// the workspace is writable) is not resolved at plan time either.
#[test]
fn symlink_planted_by_an_earlier_call_is_not_followed() {
    let _g = shared();
    let t = T::new();
    let daemon = t.root.join("daemon/d.sock");
    let l_daemon = listener(&daemon);
    let listed = t.ws.join("app.sock");
    std::os::unix::fs::symlink(&daemon, &listed).unwrap();
    let (errno, o) = swap_then_connect(&t, &[&listed], "true", &listed);
    assert_eq!(accepted(&l_daemon), 0, "the symlink's target received a connection");
    assert_eq!(errno, libc::EACCES as i64, "{}", o.all());
    assert_refusal(&o, &listed, "symlink");
}

/// A listed path replaced by a regular file or a fifo, or removed: refused
/// with EACCES and reported (not a kernel error the user never hears of).
#[test]
fn listed_path_replaced_by_file_or_fifo_or_removed_is_refused() {
    let _g = shared();
    let t = T::new();
    let listed = t.ws.join("app.sock");
    for (script, why) in [("echo x > app.sock", "not a socket"), ("mkfifo app.sock", "not a socket"), ("true", "does not exist")] {
        let _ = std::fs::remove_file(&listed);
        let l = listener(&listed);
        let (errno, o) = swap_then_connect(&t, &[&listed], &format!("rm -f app.sock && {script}"), &listed);
        assert_eq!(errno, libc::EACCES as i64, "{script}: {}", o.all());
        assert_refusal(&o, &listed, why);
        assert_eq!(accepted(&l), 0, "{script}: the unlinked listener received a connection");
    }
}

/// The legitimate case: a listed socket reached by the name as listed (a
/// host symlink outside every writable root, resolved before the call) and by
/// its canonical path; data goes both ways.
#[test]
fn listed_socket_round_trip_by_listed_and_canonical_name() {
    let _g = shared();
    let t = T::new();
    let real = t.root.join("srv/app.sock");
    let l = listener(&real);
    l.set_nonblocking(false).unwrap();
    std::os::unix::fs::symlink(t.root.join("srv"), t.root.join("alias")).unwrap();
    let alias = t.root.join("alias/app.sock");
    let server = std::thread::spawn(move || {
        let mut got = vec![];
        for _ in 0..2 {
            let (c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut line = String::new();
            BufReader::new(&c).read_line(&mut line).unwrap();
            (&c).write_all(format!("pong:{line}").as_bytes()).unwrap();
            got.push(line.trim().to_string());
        }
        got
    });
    let py = "import socket,sys\nfor i,p in enumerate(sys.argv[1:]):\n s=socket.socket(socket.AF_UNIX)\n s.connect(p)\n s.sendall(b'ping%d\\n'%i)\n print(s.makefile().readline().strip())";
    let o = t.sc().policy(&policy(&[&alias])).cmd(["python3", "-c", py, &alias.display().to_string(), &real.display().to_string()]).run();
    o.assert_ok();
    assert_eq!(o.out().lines().collect::<Vec<_>>(), ["pong:ping0", "pong:ping1"], "{}", o.all());
    assert_eq!(server.join().unwrap(), ["ping0", "ping1"]);
    assert_eq!(o.j()["layers"]["unixSockets"]["connected"], 2, "{}", o.all());
    assert!(unix_refusals(&o).is_empty(), "{}", o.all());
}

fn peer_cred(c: &UnixStream) -> libc::ucred {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt into a ucred of the size passed.
    let r = unsafe { libc::getsockopt(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut cred as *mut libc::ucred).cast(), &mut len) };
    assert_eq!(r, 0, "SO_PEERCRED");
    cred
}

fn peer_groups(c: &UnixStream) -> Vec<libc::gid_t> {
    let mut g = vec![0 as libc::gid_t; 256];
    let mut len = (g.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
    // SAFETY: getsockopt into a gid buffer of the size passed.
    let r = unsafe { libc::getsockopt(c.as_raw_fd(), libc::SOL_SOCKET, SO_PEERGROUPS, g.as_mut_ptr().cast(), &mut len) };
    assert_eq!(r, 0, "SO_PEERGROUPS");
    g.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
    g
}

/// A host listener sees the sandbox's identity in SO_PEERCRED and
/// SO_PEERGROUPS: the caller's uid for a normal caller; for a root caller the
/// unprivileged host id it was shifted to (`layers.identity`), no groups —
/// never uid 0.
#[test]
fn peer_sees_the_sandbox_identity() {
    let _g = shared();
    let t = T::new();
    let listed = t.ws.join("app.sock");
    let l = listener(&listed);
    let (errno, o) = swap_then_connect(&t, &[&listed], "true", &listed);
    assert_eq!(errno, 0, "{}", o.all());
    let (c, _) = l.accept().expect("the listed socket received the connection");
    let cred = peer_cred(&c);
    let groups = peer_groups(&c);
    let identity = o.j()["layers"]["identity"].as_str().unwrap().to_string();
    if is_root() {
        let shift: u32 = identity.strip_prefix("shifted:").unwrap_or_else(|| panic!("root caller not shifted: {identity}")).parse().unwrap();
        assert_eq!((cred.uid, cred.gid), (shift, shift), "the peer saw {}:{}, the sandbox is {identity}", cred.uid, cred.gid);
        assert!(groups.is_empty(), "the peer saw supplementary groups {groups:?}");
    } else {
        assert_eq!(cred.uid, euid(), "{identity}");
        assert!(!groups.contains(&0), "{groups:?}");
    }
    assert_ne!(cred.uid, 0, "the peer saw uid 0");
}

/// For a shifted root caller, host file permissions apply as to the sandbox:
/// a root-only socket (0600) and a socket in a root-only directory (0700)
/// are refused, though listed, and their listeners accept nothing.
#[test]
fn root_only_sockets_are_refused_for_a_shifted_root_caller() {
    let _g = shared();
    if !is_root() {
        eprintln!("SKIP: the uid shift applies to root callers");
        return;
    }
    let t = T::new();
    let only = t.root.join("srv/rootonly.sock");
    let l_only = listener(&only);
    set_mode(&only, 0o600);
    let hidden = t.root.join("private/p.sock");
    let l_hidden = listener(&hidden);
    set_mode(&t.root.join("private"), 0o700);
    for (p, l, what) in [(&only, &l_only, "a root-only (0600) socket"), (&hidden, &l_hidden, "a socket in a 0700 root directory")] {
        let (errno, o) = swap_then_connect(&t, &[&only, &hidden], "true", p);
        assert!(o.j()["layers"]["identity"].as_str().unwrap().starts_with("shifted:"), "{}", o.all());
        assert_eq!(accepted(l), 0, "{what} accepted the shifted sandbox's connection");
        assert_eq!(errno, libc::EACCES as i64, "{}: {}", p.display(), o.all());
        assert_refusal(&o, p, "may not connect");
    }
}
