//! The unix-socket broker: how `network.allowUnixSockets` is enforced.
//!
//! A seccomp filter cannot read a socket address (it is in the caller's
//! memory), and an address read by a supervisor can be changed by another
//! thread before the kernel reads it again, so "check, then let the kernel
//! continue" would not hold. Instead, when a policy allows unix sockets:
//! * the filter lets the command create AF_UNIX stream/seqpacket sockets
//!   (never datagram sockets, which `sendto` could aim anywhere) and sends
//!   every `connect` to this broker through a user-notification listener;
//! * the broker copies the address out of the command's memory once,
//!   confirms the notification is still live, takes a duplicate of the
//!   command's socket (`pidfd_getfd`), decides on its own copy of the
//!   address, and performs the `connect` itself on the duplicate. The
//!   command's socket is then connected (or the error is returned to it);
//!   nothing the command changes after the check can alter where it goes.
//!
//! Decisions:
//! * AF_UNIX to an absolute path listed in `allowUnixSockets` → connected to
//!   exactly the socket inode the listed path names on the host, never
//!   through a symlink, and as the sandbox's identity (see `unix_target`);
//!   a symlink on the path, a non-socket, a missing file, a socket the
//!   sandbox's identity may not use, other paths, relative paths and
//!   abstract names → EACCES / ECONNREFUSED, reported as a violation;
//! * TCP (AF_INET/AF_INET6 stream) → connected (by the broker, on its copy
//!   of the address) only to the proxy's ports on the sandbox's loopback when
//!   the call has network, EACCES otherwise — mirroring the Landlock rule
//!   that applies when the broker is not in the way;
//! * other sockets (UDP, netlink) → connected as asked (they stay in the
//!   sandbox's own network namespace, which only has loopback).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::unix_target::{self, ConnectError, UnixTarget};
use super::Violation;
use crate::policy::paths;

#[repr(C)]
#[derive(Clone, Copy)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;
/// Refusals reported in full; beyond this, only counted.
const MAX_EVENTS: usize = 64;

pub struct Broker {
    listener: OwnedFd,
    allowed: Vec<UnixTarget>,
    /// A shifted root caller's host id: connects are made as it.
    as_id: Option<u32>,
    /// TCP ports the command may connect to (the proxy's; empty without network).
    tcp_ports: Vec<u16>,
    /// Distinct refusals, each with how often it happened.
    refusals: Vec<(String, usize)>,
    pub refused: usize,
    pub connected: usize,
}

/// The port of an AF_INET/AF_INET6 socket address.
fn tcp_port(addr: &[u8]) -> Option<u16> {
    let family = u16::from_ne_bytes([*addr.first()?, *addr.get(1)?]) as i32;
    if family != libc::AF_INET && family != libc::AF_INET6 {
        return None;
    }
    Some(u16::from_be_bytes([*addr.get(2)?, *addr.get(3)?]))
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

impl Broker {
    pub fn new(listener: OwnedFd, allowed: Vec<UnixTarget>, as_id: Option<u32>, tcp_ports: Vec<u16>) -> Broker {
        Broker { listener, allowed, as_id, tcp_ports, refusals: vec![], refused: 0, connected: 0 }
    }

    pub fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Receive and answer one notification.
    pub fn handle(&mut self) {
        // SAFETY: the kernel requires a zeroed struct for NOTIF_RECV.
        let mut n: Notif = unsafe { std::mem::zeroed() };
        // SAFETY: ioctl with a pointer to a struct of the size encoded in the request.
        if unsafe { libc::ioctl(self.fd(), NOTIF_RECV, &mut n as *mut Notif) } != 0 {
            return; // the task died meanwhile (ENOENT) or nothing pending
        }
        let error = match self.decide(&n) {
            Ok(()) => 0,
            Err(e) => -e,
        };
        let resp = NotifResp { id: n.id, val: 0, error, flags: 0 };
        // SAFETY: ioctl with a pointer to a seccomp_notif_resp.
        unsafe { libc::ioctl(self.fd(), NOTIF_SEND, &resp as *const NotifResp) };
    }

    fn id_valid(&self, id: u64) -> bool {
        // SAFETY: ioctl with a pointer to the u64 id.
        unsafe { libc::ioctl(self.fd(), NOTIF_ID_VALID, &id as *const u64) == 0 }
    }

    fn refuse(&mut self, what: String, e: i32) -> Result<(), i32> {
        self.refused += 1;
        if let Some(r) = self.refusals.iter_mut().find(|r| r.0 == what) {
            r.1 += 1;
        } else if self.refusals.len() < MAX_EVENTS {
            self.refusals.push((what, 1));
        }
        Err(e)
    }

    /// The refusals as reported events (repeats folded into a count).
    pub fn events(&self) -> Vec<Violation> {
        let mut v: Vec<Violation> = self
            .refusals
            .iter()
            .map(|(w, n)| Violation::note("unix-socket", if *n > 1 { format!("{w} ({n} times)") } else { w.clone() }))
            .collect();
        let listed: usize = self.refusals.iter().map(|r| r.1).sum();
        if self.refused > listed {
            v.push(Violation::note("unix-socket", format!("{} more refused unix-socket connects", self.refused - listed)));
        }
        v
    }

    fn decide(&mut self, n: &Notif) -> Result<(), i32> {
        if n.data.nr != libc::SYS_connect as i32 {
            return Err(libc::ENOSYS);
        }
        let (fd, addr_ptr, len) = (n.data.args[0] as i32, n.data.args[1], n.data.args[2] as usize);
        let mut buf = [0u8; 128];
        if !(2..=buf.len()).contains(&len) {
            return Err(libc::EINVAL);
        }
        let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
        let remote = libc::iovec { iov_base: addr_ptr as *mut libc::c_void, iov_len: len };
        // SAFETY: reading `len` bytes of the caller's address into our buffer.
        let got = unsafe { libc::process_vm_readv(n.pid as i32, &local, 1, &remote, 1, 0) };
        if got != len as isize {
            return Err(libc::EFAULT);
        }
        // The pid read above must still be the task that made the call.
        if !self.id_valid(n.id) {
            return Err(libc::ESRCH);
        }
        // SAFETY: pidfd_open/pidfd_getfd return new descriptors we own.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, n.pid as i32, 0) } as i32;
        if pidfd < 0 {
            return Err(libc::ESRCH);
        }
        // SAFETY: pidfd is ours.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        // SAFETY: duplicate the caller's descriptor `fd` into ours.
        let sock = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) } as i32;
        if sock < 0 {
            return Err(libc::EBADF);
        }
        // SAFETY: sock is ours.
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        if !self.id_valid(n.id) {
            return Err(libc::ESRCH);
        }
        let domain = sockopt(&sock, libc::SO_DOMAIN).ok_or(libc::ENOTSOCK)?;
        let stype = sockopt(&sock, libc::SO_TYPE).ok_or(libc::ENOTSOCK)?;
        match domain {
            libc::AF_UNIX => self.unix(&sock, &buf[..len]),
            libc::AF_INET | libc::AF_INET6 if stype == libc::SOCK_STREAM => {
                if !self.tcp_ports.is_empty() && tcp_port(&buf[..len]).is_some_and(|p| self.tcp_ports.contains(&p)) {
                    // Our copy of the address; the namespace has only loopback.
                    // SAFETY: connect our duplicate with our own copy of the address.
                    let r = unsafe { libc::connect(sock.as_raw_fd(), buf.as_ptr().cast(), len as libc::socklen_t) };
                    return if r == 0 { Ok(()) } else { Err(errno()) };
                }
                Err(libc::EACCES)
            }
            _ => {
                // SAFETY: connect our duplicate with our own copy of the address.
                let r = unsafe { libc::connect(sock.as_raw_fd(), buf.as_ptr().cast(), len as libc::socklen_t) };
                if r == 0 {
                    Ok(())
                } else {
                    Err(errno())
                }
            }
        }
    }

    fn unix(&mut self, sock: &OwnedFd, addr: &[u8]) -> Result<(), i32> {
        let family = u16::from_ne_bytes([addr[0], addr[1]]);
        if family != libc::AF_UNIX as u16 {
            return Err(libc::EINVAL);
        }
        let path = &addr[2..];
        if path.first() == Some(&0) {
            let name = String::from_utf8_lossy(&path[1..]).into_owned();
            return self.refuse(format!("connect to abstract unix socket @{name} refused"), libc::ECONNREFUSED);
        }
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let p = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&path[..end]));
        if !p.is_absolute() {
            return self.refuse(format!("connect to unix socket {} refused: only absolute paths are brokered", p.display()), libc::EACCES);
        }
        let norm = paths::normalize(p);
        let Some(target) = self.allowed.iter().find(|t| t.accepts(&norm)) else {
            return self.refuse(format!("connect to unix socket {} refused: not in network.allowUnixSockets", norm.display()), libc::EACCES);
        };
        // SAFETY: geteuid cannot fail.
        let own_uid = unsafe { libc::geteuid() };
        match unix_target::connect(sock, target, self.as_id, own_uid) {
            Ok(()) => {
                self.connected += 1;
                Ok(())
            }
            Err(ConnectError::Refused(why)) => self.refuse(format!("connect to unix socket {} refused: {why}", norm.display()), libc::EACCES),
            Err(ConnectError::Failed(e)) => Err(e),
        }
    }
}

fn sockopt(fd: &OwnedFd, opt: libc::c_int) -> Option<i32> {
    let mut v: libc::c_int = 0;
    let mut l = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into an int.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, (&mut v as *mut libc::c_int).cast(), &mut l) };
    (r == 0).then_some(v)
}
