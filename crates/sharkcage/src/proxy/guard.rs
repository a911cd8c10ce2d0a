//! The resolved-address guard (SSRF): which addresses a name may not lead to.
//!
//! The proxy resolves a name once and connects to the address it checked, so
//! a DNS answer that changes between check and connect (rebinding) changes
//! nothing. An address in one of these classes is refused unless the policy
//! names it exactly (the IP itself, or the name itself rather than a `*.`
//! wildcard — see `proxy::decide`):
//! loopback, unspecified, link-local (most cloud metadata endpoints),
//! private (RFC 1918, IPv6 ULA), CGNAT, multicast, broadcast, reserved,
//! documentation/benchmark ranges, cloud metadata addresses outside those
//! (Azure, Alibaba, AWS IPv6 `fd00:ec2::254`, …), and every address of the
//! host's own interfaces. IPv6 forms that embed an IPv4 address (mapped,
//! compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the
//! IPv4 address inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The class an address is refused for, or `None` for a public address.
pub fn classify(a: IpAddr) -> Option<&'static str> {
    match a {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return classify_v4(v4);
            }
            classify_v6(v6)
        }
    }
}

fn classify_v4(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    let n = u32::from(a);
    let within = |base: [u8; 4], bits: u32| -> bool {
        let b = u32::from(Ipv4Addr::from(base));
        let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
        n & mask == b & mask
    };
    // Metadata first, so it is named for what it is.
    if [[169, 254, 169, 254], [100, 100, 100, 200], [168, 63, 129, 16], [192, 0, 0, 192]].contains(&o) {
        return Some("cloud-metadata");
    }
    Some(if within([127, 0, 0, 0], 8) {
        "loopback"
    } else if within([0, 0, 0, 0], 8) {
        "unspecified"
    } else if within([169, 254, 0, 0], 16) {
        "link-local"
    } else if within([10, 0, 0, 0], 8) || within([172, 16, 0, 0], 12) || within([192, 168, 0, 0], 16) {
        "private"
    } else if within([100, 64, 0, 0], 10) {
        "cgnat"
    } else if within([224, 0, 0, 0], 4) {
        "multicast"
    } else if n == u32::MAX {
        "broadcast"
    } else if within([240, 0, 0, 0], 4) || within([192, 0, 0, 0], 24) {
        "reserved"
    } else if within([192, 0, 2, 0], 24) || within([198, 51, 100, 0], 24) || within([203, 0, 113, 0], 24) || within([198, 18, 0, 0], 15) {
        "documentation"
    } else {
        return None;
    })
}

fn classify_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a == "fd00:ec2::254".parse::<Ipv6Addr>().unwrap() || s[0] == 0xfd00 && s[1] == 0x0ec2 {
        return Some("cloud-metadata");
    }
    for m in ["fd20:ce::254", "fd00:c1::a9fe:a9fe", "fd00:42::42", "fd00:a9fe:a9fe::1", "fd00:100::100:200"] {
        if a == m.parse::<Ipv6Addr>().unwrap() {
            return Some("cloud-metadata");
        }
    }
    Some(if a.is_loopback() {
        "loopback"
    } else if a.is_unspecified() {
        "unspecified"
    } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
        "link-local"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "private"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
        "reserved" // discard-only 100::/64
    } else {
        return None;
    })
}

/// The IPv4 address inside an IPv6 form that carries one.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = a.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible ::a.b.c.d (but not :: and ::1 themselves).
    if s[..6].iter().all(|&x| x == 0) && !(s[6] == 0 && s[7] <= 1) {
        return Some(tail);
    }
    // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6].iter().all(|&x| x == 0) || s[2] == 1) {
        return Some(tail);
    }
    // 6to4 2002:AABB:CCDD::/48.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    None
}

/// The host's own interface addresses, refreshed at most every few seconds
/// (a service bound to 0.0.0.0 answers on the host's public address too).
pub struct ThisHost {
    cache: Mutex<(Option<Instant>, Vec<IpAddr>)>,
}

impl Default for ThisHost {
    fn default() -> Self {
        ThisHost { cache: Mutex::new((None, Vec::new())) }
    }
}

impl ThisHost {
    pub fn contains(&self, a: IpAddr) -> bool {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.0.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            c.1 = local_addresses();
            c.0 = Some(Instant::now());
        }
        c.1.contains(&a)
    }
}

fn local_addresses() -> Vec<IpAddr> {
    let mut v = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a linked list we free below; we only read
    // address fields of the family each entry says it has.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return v;
        }
        let mut p = ifap;
        while !p.is_null() {
            let sa = (*p).ifa_addr;
            if !sa.is_null() {
                match (*sa).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(sa as *const libc::sockaddr_in);
                        v.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(sa as *const libc::sockaddr_in6);
                        v.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<&'static str> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classes() {
        assert_eq!(c("127.0.0.1"), Some("loopback"));
        assert_eq!(c("127.255.1.2"), Some("loopback"));
        assert_eq!(c("::1"), Some("loopback"));
        assert_eq!(c("0.0.0.0"), Some("unspecified"));
        assert_eq!(c("::"), Some("unspecified"));
        assert_eq!(c("169.254.169.254"), Some("cloud-metadata"));
        assert_eq!(c("fd00:ec2::254"), Some("cloud-metadata"));
        assert_eq!(c("168.63.129.16"), Some("cloud-metadata"));
        assert_eq!(c("169.254.1.1"), Some("link-local"));
        assert_eq!(c("fe80::1"), Some("link-local"));
        assert_eq!(c("10.1.2.3"), Some("private"));
        assert_eq!(c("172.31.0.1"), Some("private"));
        assert_eq!(c("192.168.1.1"), Some("private"));
        assert_eq!(c("fd12::1"), Some("private"));
        assert_eq!(c("100.64.0.1"), Some("cgnat"));
        assert_eq!(c("224.0.0.1"), Some("multicast"));
        assert_eq!(c("ff02::1"), Some("multicast"));
        assert_eq!(c("255.255.255.255"), Some("broadcast"));
        // Embedded IPv4 forms.
        assert_eq!(c("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(c("::127.0.0.1"), Some("loopback"));
        assert_eq!(c("64:ff9b::a9fe:a9fe"), Some("cloud-metadata"));
        assert_eq!(c("2002:7f00:1::"), Some("loopback"));
        // Public.
        assert_eq!(c("93.184.216.34"), None);
        assert_eq!(c("172.32.0.1"), None);
        assert_eq!(c("2606:4700::1111"), None);
    }
}
