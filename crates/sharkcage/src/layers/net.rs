//! The sandbox's network namespace: loopback up, and the proxy's listeners.
//!
//! A new network namespace has only `lo`, and it is down. When the call may
//! use the network, PID 1 (which holds CAP_NET_ADMIN over the namespace it
//! just created) brings `lo` up and creates the proxy's two listening
//! sockets on `127.0.0.1` inside the namespace, then passes them to the
//! launcher (`launcher/child.rs`). A socket stays in the namespace it was
//! created in, so the proxy outside accepts the sandbox's connections
//! without any process inside relaying them (see `proxy/mod.rs`).
//!
//! After-fork code: stack buffers and system calls only.

use super::sys::{errno, SysResult};

/// Bring `lo` up in the current network namespace.
pub fn loopback_up() -> SysResult {
    // SAFETY: an AF_INET datagram socket for the interface ioctls; the
    // ifreq is a zeroed stack value with the name "lo" written into it.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        let mut r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr);
        if r == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            r = libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
        }
        let e = errno();
        libc::close(s);
        if r != 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// A listening TCP socket on `127.0.0.1:port` (close-on-exec).
pub fn listen_loopback(port: u16) -> SysResult<i32> {
    // SAFETY: socket/setsockopt/bind/listen on a new descriptor with stack
    // arguments; closed on failure.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno());
        }
        let one: libc::c_int = 1;
        libc::setsockopt(s, libc::SOL_SOCKET, libc::SO_REUSEADDR, (&one as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = port.to_be();
        sa.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        if libc::bind(s, (&sa as *const libc::sockaddr_in).cast(), std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t) != 0
            || libc::listen(s, 1024) != 0
        {
            let e = errno();
            libc::close(s);
            return Err(e);
        }
        Ok(s)
    }
}
