//! Name resolution for the proxy, injectable.
//!
//! The proxy resolves each allowed name exactly once per connection and
//! connects to an address from that answer (see `guard.rs`). Tests and
//! `sc exec --net-resolve NAME=IP` put fixed answers in front of the system
//! resolver, so a test name can point at 127.0.0.1 without touching
//! `/etc/hosts`.

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

/// The system resolver (getaddrinfo on tokio's blocking pool), with fixed
/// answers that take precedence.
#[derive(Debug, Default, Clone)]
pub struct SystemResolver {
    pub fixed: HashMap<String, Vec<IpAddr>>,
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
        Ok(SystemResolver { fixed })
    }
}

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, name: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            if let Some(v) = self.fixed.get(name) {
                return Ok(v.clone());
            }
            let addrs = tokio::net::lookup_host((name, port)).await?;
            let mut v: Vec<IpAddr> = Vec::new();
            for a in addrs {
                let ip = super::host::unmap(a.ip());
                if !v.contains(&ip) {
                    v.push(ip);
                }
            }
            if v.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
            }
            Ok(v)
        })
    }
}
