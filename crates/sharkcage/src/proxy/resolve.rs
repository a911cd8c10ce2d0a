//! Name resolution for the proxy, injectable.
//!
//! The proxy resolves each allowed name exactly once per connection and
//! connects to an address from that answer (see `guard.rs`). Tests and
//! `sc exec --net-resolve NAME=IP` put fixed answers in front of the system
//! resolver, so a test name can point at 127.0.0.1 without touching
//! `/etc/hosts`.
//!
//! The system's resolver configuration (`/etc/resolv.conf`, `/etc/hosts`) is
//! used through an asynchronous resolver (hickory), not `getaddrinfo` on the
//! runtime's blocking pool: a lookup the proxy gives up on is dropped, not
//! left holding a thread, so a sandbox that floods a silent name server
//! cannot grow the gateway's threads or slow other sandboxes' lookups. Each
//! query is bounded ([`QUERY_TIMEOUT`] × [`ATTEMPTS`]); how many lookups a
//! sandbox may have in flight is bounded by the proxy (`mod.rs`). Not
//! consulted: other NSS sources (mDNS, LDAP, systemd-resolved's own API —
//! its stub listener in resolv.conf is used).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns a canonical DNS name into addresses.
pub trait Resolver: Send + Sync + 'static {
    fn resolve<'a>(&'a self, name: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The system's resolver configuration, asynchronously, with fixed answers
/// that take precedence.
#[derive(Debug, Default, Clone)]
pub struct SystemResolver {
    pub fixed: HashMap<String, Vec<IpAddr>>,
    /// Name servers to ask instead of `/etc/resolv.conf`'s (tests, a
    /// gateway with its own resolver); empty: the system's.
    pub name_servers: Vec<std::net::SocketAddr>,
}

impl SystemResolver {
    /// Parse `NAME=IP[,IP…]` entries (names canonicalised like targets).
    pub fn with_fixed(entries: &[String]) -> Result<SystemResolver, String> {
        let mut fixed: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for e in entries {
            let (name, ips) = e.split_once('=').ok_or_else(|| format!("--net-resolve {e:?}: expected NAME=IP"))?;
            let name = match super::host::canonicalize(name) {
                Ok(super::host::Host::Name(n)) => n,
                _ => return Err(format!("--net-resolve {e:?}: {name:?} is not a host name")),
            };
            for ip in ips.split(',') {
                let a: IpAddr = ip.trim_matches(['[', ']']).parse().map_err(|_| format!("--net-resolve {e:?}: {ip:?} is not an IP address"))?;
                fixed.entry(name.clone()).or_default().push(a);
            }
        }
        Ok(SystemResolver { fixed, name_servers: Vec::new() })
    }
}

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, name: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            if let Some(v) = self.fixed.get(name) {
                return Ok(v.clone());
            }
            let _ = port;
            let r = resolver_for(&self.name_servers).map_err(|m| io::Error::new(io::ErrorKind::NotFound, m))?;
            // Fully qualified: no search-domain guessing for what the policy named.
            let fqdn = format!("{name}.");
            let answer = r.lookup_ip(fqdn.as_str()).await.map_err(|e| io::Error::new(io::ErrorKind::NotFound, brief(&e)))?;
            let mut v: Vec<IpAddr> = Vec::new();
            for a in answer.iter() {
                let ip = super::host::unmap(a);
                if !v.contains(&ip) {
                    v.push(ip);
                }
            }
            if v.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
            }
            // IPv4 first, as getaddrinfo does on most hosts.
            v.sort_by_key(|a| a.is_ipv6());
            Ok(v)
        })
    }
}

/// How long one query to a name server may take, and how many tries.
pub const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
pub const ATTEMPTS: usize = 2;

/// The resolver for these name servers (none: the system's, from
/// `/etc/resolv.conf` and `/etc/hosts`), built once and shared.
fn resolver_for(servers: &[std::net::SocketAddr]) -> Result<hickory_resolver::TokioResolver, String> {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    type Built = Vec<(Vec<std::net::SocketAddr>, Result<hickory_resolver::TokioResolver, String>)>;
    static BUILT: std::sync::Mutex<Built> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = built.iter().find(|(k, _)| k == servers) {
        return r.clone();
    }
    let mut b = if servers.is_empty() {
        hickory_resolver::Resolver::builder_tokio().map_err(|e| format!("no usable resolver configuration (/etc/resolv.conf): {e}"))
    } else {
        let mut c = ResolverConfig::default();
        for a in servers {
            let mut ns = NameServerConfig::udp_and_tcp(a.ip());
            for conn in &mut ns.connections {
                conn.port = a.port();
            }
            c.add_name_server(ns);
        }
        Ok(hickory_resolver::Resolver::builder_with_config(c, TokioRuntimeProvider::default()))
    };
    let r = b.as_mut().map_err(|e| e.clone()).map(|b| {
        let o = b.options_mut();
        o.timeout = QUERY_TIMEOUT;
        o.attempts = ATTEMPTS;
        o.ndots = 0;
    });
    let r = r.and_then(|_| b.and_then(|b| b.build().map_err(|e| format!("cannot start the resolver: {e}"))));
    built.push((servers.to_vec(), r.clone()));
    r
}

/// A resolver error in one short line.
fn brief(e: &hickory_resolver::net::NetError) -> String {
    let s = e.to_string();
    if s.contains("no record") || s.contains("NXDomain") || s.contains("NoRecordsFound") {
        "no such name".into()
    } else if s.contains("timed out") || s.contains("timeout") {
        "name server did not answer in time".into()
    } else {
        s.chars().take(200).collect()
    }
}
