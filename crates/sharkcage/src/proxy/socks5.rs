//! SOCKS5 (RFC 1928), CONNECT only, no authentication (the sandbox is
//! identified by the listener it reached, not by a credential it could read).
//!
//! The two handshake messages are parsed by the pure functions
//! [`parse_greeting`] and [`parse_request`] (fuzzed in `fuzz/`). There is no
//! SOCKS server crate with the maintenance record of `httparse`, and the
//! grammar is two fixed-layout messages, so they are written here, bounded
//! (a request is at most 262 bytes) and allocation-light.
//!
//! Replies: BIND and UDP ASSOCIATE get "command not supported" (7); a
//! refused destination "connection not allowed by ruleset" (2); a bad
//! address type 8; an upstream failure 4/5; anything malformed 1, and the
//! connection is closed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::host::{canonicalize, Host};
use super::relay::{relay, Counted, Counters};
use super::{Ctx, Outcome, Protocol};

/// A parse step: done with the value and the bytes used, or need more input.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<T> {
    Done(T, usize),
    Incomplete,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SocksError {
    #[error("not SOCKS version 5")]
    Version,
    #[error("no authentication methods offered")]
    NoMethods,
    #[error("reserved byte is not zero")]
    Reserved,
    #[error("unknown address type {0}")]
    AddressType(u8),
    #[error("empty domain name")]
    EmptyName,
}

/// What the client asked for.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Target {
    Ip(IpAddr),
    /// The name bytes as sent (checked and canonicalised by the caller).
    Name(Vec<u8>),
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Request {
    pub cmd: u8,
    pub target: Target,
    pub port: u16,
}

pub const CMD_CONNECT: u8 = 1;

/// `VER NMETHODS METHODS…` → whether "no authentication" (0) is offered.
pub fn parse_greeting(b: &[u8]) -> Result<Parse<bool>, SocksError> {
    if b.is_empty() {
        return Ok(Parse::Incomplete);
    }
    if b[0] != 5 {
        return Err(SocksError::Version);
    }
    let Some(&n) = b.get(1) else { return Ok(Parse::Incomplete) };
    if n == 0 {
        return Err(SocksError::NoMethods);
    }
    let end = 2 + n as usize;
    if b.len() < end {
        return Ok(Parse::Incomplete);
    }
    Ok(Parse::Done(b[2..end].contains(&0), end))
}

/// `VER CMD RSV ATYP DST.ADDR DST.PORT`.
pub fn parse_request(b: &[u8]) -> Result<Parse<Request>, SocksError> {
    if b.len() < 4 {
        if !b.is_empty() && b[0] != 5 {
            return Err(SocksError::Version);
        }
        return Ok(Parse::Incomplete);
    }
    if b[0] != 5 {
        return Err(SocksError::Version);
    }
    if b[2] != 0 {
        return Err(SocksError::Reserved);
    }
    let cmd = b[1];
    let (target, at) = match b[3] {
        1 => {
            if b.len() < 8 {
                return Ok(Parse::Incomplete);
            }
            (Target::Ip(IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7]))), 8)
        }
        4 => {
            if b.len() < 20 {
                return Ok(Parse::Incomplete);
            }
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[4..20]);
            (Target::Ip(IpAddr::V6(Ipv6Addr::from(o))), 20)
        }
        3 => {
            let Some(&len) = b.get(4) else { return Ok(Parse::Incomplete) };
            if len == 0 {
                return Err(SocksError::EmptyName);
            }
            let end = 5 + len as usize;
            if b.len() < end {
                return Ok(Parse::Incomplete);
            }
            (Target::Name(b[5..end].to_vec()), end)
        }
        t => return Err(SocksError::AddressType(t)),
    };
    if b.len() < at + 2 {
        return Ok(Parse::Incomplete);
    }
    let port = u16::from_be_bytes([b[at], b[at + 1]]);
    Ok(Parse::Done(Request { cmd, target, port }, at + 2))
}

fn reply(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

/// Read until `parse` completes (or the peer closes / sends too much).
async fn read_msg<T, S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>, parse: fn(&[u8]) -> Result<Parse<T>, SocksError>) -> Result<(T, usize), String> {
    loop {
        match parse(buf) {
            Ok(Parse::Done(v, n)) => return Ok((v, n)),
            Ok(Parse::Incomplete) => {}
            Err(e) => return Err(e.to_string()),
        }
        if buf.len() >= 600 {
            return Err("handshake too long".into());
        }
        let mut chunk = [0u8; 512];
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed during the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Serve one SOCKS5 connection from the sandbox.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(mut s: S, ctx: Arc<Ctx>) {
    let t0 = Instant::now();
    let hs = tokio::time::timeout(ctx.limits().header_timeout, async {
        let mut buf = Vec::with_capacity(64);
        let (noauth, used) = read_msg(&mut s, &mut buf, parse_greeting).await?;
        buf.drain(..used);
        if !noauth {
            let _ = s.write_all(&[5, 0xff]).await;
            return Err("client offers no method without authentication".to_string());
        }
        s.write_all(&[5, 0]).await.map_err(|e| e.to_string())?;
        let (req, used) = read_msg(&mut s, &mut buf, parse_request).await?;
        buf.drain(..used);
        Ok::<_, String>((req, buf))
    })
    .await;
    let (req, early) = match hs {
        Ok(Ok(v)) => v,
        Ok(Err(why)) => {
            let _ = s.write_all(&reply(1)).await;
            ctx.record_malformed(Protocol::Socks5, &why, t0);
            return;
        }
        Err(_) => {
            ctx.record_malformed(Protocol::Socks5, "handshake timed out", t0);
            return;
        }
    };
    let host = match &req.target {
        Target::Ip(a) => Ok(Host::Ip(super::host::unmap(*a))),
        Target::Name(n) => match std::str::from_utf8(n) {
            Ok(n) => canonicalize(n).map_err(|e| e.to_string()),
            Err(_) => Err("domain name is not UTF-8".to_string()),
        },
    };
    let host = match host {
        Ok(h) => h,
        Err(why) => {
            let _ = s.write_all(&reply(2)).await;
            // Only a name can fail here (an address is always a host).
            let sent = match &req.target {
                Target::Name(n) => String::from_utf8_lossy(n).into_owned(),
                Target::Ip(a) => a.to_string(),
            };
            ctx.record_refused(Protocol::Socks5, &sent, req.port, &format!("malformed host: {why}"), t0);
            return;
        }
    };
    if req.cmd != CMD_CONNECT {
        let _ = s.write_all(&reply(7)).await;
        let what = if req.cmd == 2 { "BIND" } else if req.cmd == 3 { "UDP ASSOCIATE" } else { "unknown command" };
        ctx.record_refused(Protocol::Socks5, &host.to_string(), req.port, &format!("SOCKS5 {what} is not supported (CONNECT only)"), t0);
        return;
    }
    let up = match ctx.open(Protocol::Socks5, &host, req.port, t0).await {
        Ok(u) => u,
        Err(o) => {
            let code = match o {
                Outcome::Denied => 2,
                Outcome::Refused => 5,
                Outcome::Unreachable => 4,
            };
            let _ = s.write_all(&reply(code)).await;
            return;
        }
    };
    if s.write_all(&reply(0)).await.is_err() {
        return;
    }
    let c = Counters::new();
    let mut upstream = Counted::new(up.stream, c.clone());
    // Bytes the client sent right after its request (optimistic data).
    if !early.is_empty() && upstream.write_all(&early).await.is_err() {
        return;
    }
    let end = relay(s, upstream, ctx.limits().idle, ctx.limits().total, ctx.stopped()).await;
    ctx.record_allowed(Protocol::Socks5, &host, req.port, up.ip, &c, end, t0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting() {
        assert_eq!(parse_greeting(&[5]), Ok(Parse::Incomplete));
        assert_eq!(parse_greeting(&[5, 2, 2]), Ok(Parse::Incomplete));
        assert_eq!(parse_greeting(&[5, 2, 2, 0]), Ok(Parse::Done(true, 4)));
        assert_eq!(parse_greeting(&[5, 1, 2]), Ok(Parse::Done(false, 3)));
        assert_eq!(parse_greeting(&[4, 1, 0]), Err(SocksError::Version));
        assert_eq!(parse_greeting(&[5, 0]), Err(SocksError::NoMethods));
    }

    #[test]
    fn request() {
        let r = parse_request(&[5, 1, 0, 3, 5, b'a', b'.', b'c', b'o', b'm', 1, 187]).unwrap();
        assert_eq!(r, Parse::Done(Request { cmd: 1, target: Target::Name(b"a.com".to_vec()), port: 443 }, 12));
        assert_eq!(parse_request(&[5, 1, 0, 1, 127, 0, 0, 1, 0]), Ok(Parse::Incomplete));
        assert!(matches!(parse_request(&[5, 1, 0, 1, 127, 0, 0, 1, 0, 80]), Ok(Parse::Done(Request { port: 80, .. }, 10))));
        assert!(matches!(parse_request(&[5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80]), Ok(Parse::Done(_, 22))));
        assert_eq!(parse_request(&[5, 1, 1, 1]), Err(SocksError::Reserved));
        assert_eq!(parse_request(&[5, 1, 0, 9]), Err(SocksError::AddressType(9)));
        assert_eq!(parse_request(&[5, 1, 0, 3, 0]), Err(SocksError::EmptyName));
    }
}
