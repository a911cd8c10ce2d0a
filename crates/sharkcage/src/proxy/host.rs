//! Host canonicalisation: the one spelling every network decision is made on.
//!
//! A request names its destination in many spellings that mean the same
//! host: `Example.COM.`, `127.1`, `0x7f.0.0.1`, `2130706433`, `0177.0.0.1`,
//! `[::ffff:127.0.0.1]`, Unicode names. Matching on the raw text would let a
//! spelling slip past a rule, so every target (and every rule) is turned into
//! a [`Host`] first:
//! * control characters, white space, `@` (userinfo), `%` (percent escapes
//!   and IPv6 zone ids), `/ \ ? #` and over-long names are refused;
//! * one trailing dot is dropped and the name is lower-cased;
//! * the name is parsed as a WHATWG URL host (the `url` crate): IDNA to
//!   punycode, and every numeric IPv4 shorthand (`127.1`, hex, octal, a
//!   single 32-bit number) becomes an address;
//! * IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address;
//! * what is left must be a DNS name of letters, digits, `-` and `_` labels.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A canonical destination host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// Lower-case ASCII (punycode) DNS name without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(a) => write!(f, "{a}"),
        }
    }
}

/// Why a host spelling was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    #[error("empty host")]
    Empty,
    #[error("host is longer than 253 characters")]
    TooLong,
    #[error("host contains a forbidden character {0:?}")]
    Forbidden(char),
    #[error("host is not a valid name or address")]
    Invalid,
}

/// Canonicalise a host as it appears in a request (bracketed IPv6 allowed).
pub fn canonicalize(raw: &str) -> Result<Host, HostError> {
    if raw.is_empty() {
        return Err(HostError::Empty);
    }
    if raw.len() > 300 {
        return Err(HostError::TooLong);
    }
    if let Some(c) = raw.chars().find(|&c| c.is_control() || c.is_whitespace() || matches!(c, '@' | '%' | '/' | '\\' | '?' | '#')) {
        return Err(HostError::Forbidden(c));
    }
    if let Some(inner) = raw.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(HostError::Invalid)?;
        let a: Ipv6Addr = inner.parse().map_err(|_| HostError::Invalid)?;
        return Ok(Host::Ip(unmap(IpAddr::V6(a))));
    }
    if raw.contains(':') {
        // Only a bare IPv6 address has colons here (ports were split off).
        let a: Ipv6Addr = raw.parse().map_err(|_| HostError::Invalid)?;
        return Ok(Host::Ip(unmap(IpAddr::V6(a))));
    }
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty() || trimmed.ends_with('.') {
        return Err(HostError::Invalid);
    }
    match url::Host::parse(trimmed).map_err(|_| HostError::Invalid)? {
        url::Host::Ipv4(a) => Ok(Host::Ip(IpAddr::V4(a))),
        url::Host::Ipv6(a) => Ok(Host::Ip(unmap(IpAddr::V6(a)))),
        url::Host::Domain(d) => {
            let d = d.to_ascii_lowercase();
            if d.len() > 253 {
                return Err(HostError::TooLong);
            }
            let ok = d.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            if !ok {
                return Err(HostError::Invalid);
            }
            Ok(Host::Name(d))
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
pub fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Split `host:port` / `[v6]:port` / `host` (authority syntax, no userinfo).
/// The port must be 1–65535 without a leading zero or sign.
pub fn split_host_port(s: &str) -> Result<(&str, Option<u16>), HostError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(HostError::Invalid)?;
        let rest = &s[end + 1..];
        if rest.is_empty() {
            (&s[..=end], None)
        } else {
            (&s[..=end], Some(rest.strip_prefix(':').ok_or(HostError::Invalid)?))
        }
    } else {
        match s.matches(':').count() {
            0 => (s, None),
            1 => {
                let (h, p) = s.split_once(':').unwrap();
                (h, Some(p))
            }
            // An IPv6 address must be bracketed when a port may follow.
            _ => return Err(HostError::Invalid),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).ok_or(HostError::Invalid)?),
    };
    Ok((host, port))
}

/// A decimal port 1–65535 without sign or leading zero.
pub fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) || p.starts_with('0') {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }

    #[test]
    fn spellings_of_one_host_agree() {
        for s in ["127.0.0.1", "127.1", "0x7f.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1", "0177.1", "127.0.0.1.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"] {
            assert_eq!(canonicalize(s), Ok(ip("127.0.0.1")), "{s}");
        }
        for s in ["Example.COM", "example.com.", "EXAMPLE.com."] {
            assert_eq!(canonicalize(s), Ok(Host::Name("example.com".into())), "{s}");
        }
        assert_eq!(canonicalize("bücher.example"), Ok(Host::Name("xn--bcher-kva.example".into())));
        assert_eq!(canonicalize("xn--bcher-kva.example"), Ok(Host::Name("xn--bcher-kva.example".into())));
        assert_eq!(canonicalize("[0:0:0:0:0:0:0:1]"), Ok(ip("::1")));
        // A full-width dot is a dot after IDNA mapping.
        assert_eq!(canonicalize("example\u{3002}com"), Ok(Host::Name("example.com".into())));
    }

    #[test]
    fn tricks_are_refused() {
        for s in ["", "exa mple.com", "example.com\r\nX: y", "user@example.com", "ex%61mple.com", "[fe80::1%25eth0]", "a/b", "example.com..", ".", "a..b", "1.2.3.4.5", "[::1", "ex\u{0}ample.com", "-\u{202e}.com"] {
            assert!(canonicalize(s).is_err(), "{s:?} accepted as {:?}", canonicalize(s));
        }
        assert!(canonicalize(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a.com:443"), Ok(("a.com", Some(443))));
        assert_eq!(split_host_port("[::1]:8080"), Ok(("[::1]", Some(8080))));
        assert_eq!(split_host_port("[::1]"), Ok(("[::1]", None)));
        assert_eq!(split_host_port("a.com"), Ok(("a.com", None)));
        for bad in ["a.com:", "a.com:0", "a.com:080", "a.com:65536", "a.com:+80", "::1:80", "[::1]80"] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
    }
}
