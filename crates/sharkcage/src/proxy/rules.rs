//! Domain rules: `network.allowedDomains` / `deniedDomains` compiled into
//! patterns, and the decision for one destination.
//!
//! Grammar (one entry): `host[:port]` where host is
//! * an exact name (`example.com`; `localhost` is the only single label),
//! * `*.suffix` — strict subdomains of `suffix`, never the apex and never an
//!   IP address; the suffix needs at least two labels (`*.com` is refused),
//! * an IP literal (`10.1.2.3`, `[::1]`),
//! * `*` (every host) — in `deniedDomains` only.
//!
//! Both the entry and the destination are canonicalised with
//! [`super::host::canonicalize`] before comparison, so case, trailing dots,
//! IDNA and numeric IPv4 spellings cannot slip past.
//!
//! Ports: an entry with `:port` matches only that port. An allow entry
//! without a port matches only 80 and 443 (web traffic); a deny entry without
//! a port matches every port.
//!
//! Order: a deny match wins, then an allow match, then deny.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::host::{canonicalize, split_host_port, Host};

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatHost {
    Any,
    Exact(String),
    /// `*.suffix`, stored without the `*.`.
    Suffix(String),
    Ip(IpAddr),
}

/// One compiled entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    host: PatHost,
    port: Option<u16>,
    /// The entry as the user wrote it (for reasons and reports).
    pub raw: String,
}

/// Ports an allow entry without `:port` covers.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

impl Pattern {
    /// Parse one entry; `deny` allows the deny-only forms (`*`, `*:port`).
    pub fn parse(raw: &str, deny: bool) -> Result<Pattern, String> {
        let bad = |why: &str| Err(format!("invalid domain pattern {raw:?}: {why}"));
        if raw.contains("://") || raw.contains('/') {
            return bad("write a host name such as example.com or *.example.com, not a URL");
        }
        let (h, port) = match split_host_port(raw) {
            Ok(v) => v,
            Err(_) => return bad("expected host, host:port or [ipv6]:port with a port 1-65535"),
        };
        let host = if h == "*" {
            if !deny {
                return bad("\"*\" is only allowed in deniedDomains");
            }
            PatHost::Any
        } else if let Some(suffix) = h.strip_prefix("*.") {
            match canonicalize(suffix) {
                Ok(Host::Name(s)) if s.contains('.') => PatHost::Suffix(s),
                Ok(Host::Name(_)) => return bad("a wildcard needs at least two labels after \"*.\" (not *.com)"),
                Ok(Host::Ip(_)) => return bad("a wildcard cannot cover IP addresses"),
                Err(e) => return bad(&e.to_string()),
            }
        } else if h.contains('*') {
            return bad("\"*\" is only allowed as a leading \"*.\"");
        } else {
            match canonicalize(h) {
                Ok(Host::Name(n)) if n.contains('.') || n == "localhost" => PatHost::Exact(n),
                Ok(Host::Name(_)) => return bad("a name needs at least one dot (only \"localhost\" may be a single label)"),
                Ok(Host::Ip(a)) => PatHost::Ip(a),
                Err(e) => return bad(&e.to_string()),
            }
        };
        Ok(Pattern { host, port, raw: raw.to_string() })
    }

    fn port_matches(&self, port: u16, deny: bool) -> bool {
        match self.port {
            Some(p) => p == port,
            None => deny || DEFAULT_PORTS.contains(&port),
        }
    }

    fn host_matches(&self, host: &Host) -> bool {
        match (&self.host, host) {
            (PatHost::Any, _) => true,
            (PatHost::Exact(p), Host::Name(n)) => p == n,
            (PatHost::Suffix(s), Host::Name(n)) => n.len() > s.len() + 1 && n.ends_with(s.as_str()) && n.as_bytes()[n.len() - s.len() - 1] == b'.',
            (PatHost::Ip(p), Host::Ip(a)) => p == a,
            _ => false,
        }
    }

    /// An exact name or IP entry (not a wildcard).
    pub fn is_exact(&self) -> bool {
        matches!(self.host, PatHost::Exact(_) | PatHost::Ip(_))
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self.host {
            PatHost::Ip(a) => Some(a),
            _ => None,
        }
    }
}

/// The compiled `network` section of a policy.
#[derive(Debug, Clone, Default)]
pub struct NetRules {
    pub allow: Vec<Pattern>,
    pub deny: Vec<Pattern>,
    pub deny_reasons: BTreeMap<String, String>,
}

/// The rule decision for one destination (before address checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleDecision {
    /// Matched a deny entry; the reason text is the entry's or a default.
    Denied { entry: String, reason: String },
    /// Matched an allow entry.
    Allowed { entry: String, exact: bool },
    NotAllowed,
}

impl NetRules {
    pub fn compile(allowed: &[String], denied: &[String], reasons: &BTreeMap<String, String>) -> Result<NetRules, String> {
        let allow = allowed.iter().map(|d| Pattern::parse(d, false)).collect::<Result<Vec<_>, _>>()?;
        let deny = denied.iter().map(|d| Pattern::parse(d, true)).collect::<Result<Vec<_>, _>>()?;
        for k in reasons.keys() {
            if !denied.contains(k) {
                return Err(format!("deniedDomainReasons: {k:?} is not an entry of deniedDomains"));
            }
        }
        Ok(NetRules { allow, deny, deny_reasons: reasons.clone() })
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
    }

    /// Deny first, then allow, then deny.
    pub fn decide(&self, host: &Host, port: u16) -> RuleDecision {
        if let Some(d) = self.deny_match(host, port) {
            return d;
        }
        match self.allow.iter().find(|p| p.host_matches(host) && p.port_matches(port, false)) {
            Some(p) => RuleDecision::Allowed { entry: p.raw.clone(), exact: p.is_exact() },
            None => RuleDecision::NotAllowed,
        }
    }

    fn deny_match(&self, host: &Host, port: u16) -> Option<RuleDecision> {
        self.deny.iter().find(|p| p.host_matches(host) && p.port_matches(port, true)).map(|p| RuleDecision::Denied {
            entry: p.raw.clone(),
            reason: self.deny_reasons.get(&p.raw).cloned().unwrap_or_else(|| format!("denied by deniedDomains entry {:?}", p.raw)),
        })
    }

    /// A resolved address denied by an IP entry of `deniedDomains`.
    pub fn denies_address(&self, a: IpAddr, port: u16) -> bool {
        self.deny.iter().any(|p| p.ip() == Some(a) && p.port_matches(port, true))
    }

    /// The address is listed exactly (as an IP entry of `allowedDomains`).
    pub fn lists_address(&self, a: IpAddr, port: u16) -> bool {
        self.allow.iter().any(|p| p.ip() == Some(a) && p.port_matches(port, false))
    }

    /// Merge an overlay (for example a skill's approved domains) into these rules.
    pub fn merged(&self, other: &NetRules) -> NetRules {
        let mut r = self.clone();
        r.allow.extend(other.allow.iter().cloned());
        r.deny.extend(other.deny.iter().cloned());
        r.deny_reasons.extend(other.deny_reasons.clone());
        r
    }

    /// The allowed `host:22` entries (for `GIT_SSH_COMMAND`).
    pub fn allows_ssh(&self) -> bool {
        self.allow.iter().any(|p| p.port == Some(22))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> NetRules {
        let a: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        let d: Vec<String> = deny.iter().map(|s| s.to_string()).collect();
        NetRules::compile(&a, &d, &BTreeMap::new()).unwrap()
    }

    fn name(s: &str) -> Host {
        canonicalize(s).unwrap()
    }

    #[test]
    fn order_and_wildcards() {
        let r = rules(&["example.com", "*.github.com", "api.github.com:8443", "10.0.0.5:5432"], &["evil.github.com", "*:25"]);
        assert!(matches!(r.decide(&name("example.com"), 443), RuleDecision::Allowed { exact: true, .. }));
        assert!(matches!(r.decide(&name("EXAMPLE.com."), 80), RuleDecision::Allowed { .. }));
        assert_eq!(r.decide(&name("example.com"), 22), RuleDecision::NotAllowed, "no port: only 80/443");
        assert_eq!(r.decide(&name("www.example.com"), 443), RuleDecision::NotAllowed, "exact is exact");
        assert!(matches!(r.decide(&name("api.github.com"), 443), RuleDecision::Allowed { exact: false, .. }));
        assert!(matches!(r.decide(&name("api.github.com"), 8443), RuleDecision::Allowed { exact: true, .. }));
        assert_eq!(r.decide(&name("github.com"), 443), RuleDecision::NotAllowed, "apex is not a subdomain");
        assert_eq!(r.decide(&name("xgithub.com"), 443), RuleDecision::NotAllowed);
        assert!(matches!(r.decide(&name("evil.github.com"), 443), RuleDecision::Denied { .. }));
        assert!(matches!(r.decide(&name("example.com"), 25), RuleDecision::Denied { .. }));
        assert!(matches!(r.decide(&name("10.0.0.5"), 5432), RuleDecision::Allowed { exact: true, .. }));
        assert!(matches!(r.decide(&name("10.0.0.5"), 5433), RuleDecision::NotAllowed));
        // Wildcards never cover addresses.
        let w = rules(&["*.example.com"], &[]);
        assert_eq!(w.decide(&name("127.0.0.1"), 443), RuleDecision::NotAllowed);
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in ["*", "*.com", "*example.com", "a.*.com", "http://example.com", "example.com/", "::1", "example.com:0", "example.com:99999", "intranet", "exa mple.com", "user@example.com"] {
            assert!(Pattern::parse(bad, false).is_err(), "{bad}");
        }
        assert!(Pattern::parse("*", true).is_ok());
        assert!(Pattern::parse("*:22", true).is_ok());
        assert!(Pattern::parse("localhost:8080", false).is_ok());
        assert!(Pattern::parse("[::1]:8080", false).is_ok());
    }
}
