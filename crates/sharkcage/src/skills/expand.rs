//! Widening a skill's network grant after a refusal ("scope expansion").
//!
//! A skill call that was refused a destination tells the model so (the
//! proxy's notice in the tool result). The next call of that skill may then
//! ask the user, through the same prompt, to let that destination through
//! as well. The request is built here by rule, never from what the model
//! writes:
//!
//! * a public name or address becomes a `network.external` entry (`host`,
//!   or `host:port` for a port other than 80 and 443);
//! * a local name or a private address becomes a `network.internal` entry
//!   (`host:port`, exact);
//! * what the engine would refuse to grant (metadata, link-local,
//!   multicast addresses, …) is never offered;
//! * the operator's ceiling cuts it, and what is already granted is left
//!   out.
//!
//! An approved expansion goes beyond the skill's declaration on purpose (the
//! user said so); it is recorded like any grant, pinned to the skill's hash.

use super::capabilities::{self, intersect, Capability, Context, Request};
use crate::proxy::host::{canonicalize, Host};

/// The requests that would let `refused` (`(host, port)` pairs) through,
/// and why any of them cannot be offered.
pub fn requests_for(refused: &[(String, u16)], cx: &Context) -> (Vec<Request>, Vec<String>) {
    let mut out: Vec<Request> = Vec::new();
    let mut why = Vec::new();
    for (host, port) in refused {
        let local = match canonicalize(host) {
            Ok(Host::Ip(ip)) => crate::proxy::guard::classify(ip).is_some(),
            Ok(Host::Name(n)) => is_local_name(&n),
            Err(e) => {
                why.push(format!("{host}: {e}"));
                continue;
            }
        };
        let shown = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        let (capability, entry) = if local {
            (Capability::NetworkInternal, format!("{shown}:{port}"))
        } else if *port == 80 || *port == 443 {
            (Capability::NetworkExternal, shown.clone())
        } else {
            (Capability::NetworkExternal, format!("{shown}:{port}"))
        };
        let r = Request { capability, reason: "refused in an earlier call; widens the grant".into(), scope: vec![entry] };
        if let Err(e) = capabilities::compile(std::slice::from_ref(&r), cx) {
            why.push(e.to_string());
            continue;
        }
        match out.iter_mut().find(|o| o.capability == capability) {
            Some(o) => {
                if !o.scope.contains(&r.scope[0]) {
                    o.scope.push(r.scope[0].clone());
                }
            }
            None => out.push(r),
        }
    }
    (out, why)
}

fn is_local_name(n: &str) -> bool {
    const LOCAL: &[&str] = &["localhost", "local", "internal", "home.arpa", "lan", "intranet", "corp", "consul"];
    !n.contains('.') || LOCAL.iter().any(|s| n == *s || n.ends_with(&format!(".{s}")))
}

/// `requested` cut by the ceiling, minus what `granted` already covers.
pub fn cut(requested: Vec<Request>, ceiling: Option<&[Request]>, granted: &[Request]) -> Vec<Request> {
    let within = match ceiling {
        Some(c) => intersect(&requested, c).allowed,
        None => requested,
    };
    intersect(&within, granted).refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cx() -> Context<'static> {
        Context { workspace: Path::new("/w"), home: None, services: &[] }
    }

    #[test]
    fn public_names_are_external_local_ones_internal_and_metadata_never() {
        let refused = vec![
            ("api.example.com".to_string(), 443),
            ("api.example.com".to_string(), 8443),
            ("localhost".to_string(), 3000),
            ("10.0.0.5".to_string(), 5432),
            ("169.254.169.254".to_string(), 80),
        ];
        let (r, why) = requests_for(&refused, &cx());
        assert_eq!(r.len(), 2, "{r:?}");
        let ext = r.iter().find(|x| x.capability == Capability::NetworkExternal).unwrap();
        assert_eq!(ext.scope, vec!["api.example.com".to_string(), "api.example.com:8443".to_string()]);
        let int = r.iter().find(|x| x.capability == Capability::NetworkInternal).unwrap();
        assert_eq!(int.scope, vec!["localhost:3000".to_string(), "10.0.0.5:5432".to_string()]);
        assert_eq!(why.len(), 1, "the metadata address is never offered: {why:?}");
    }

    #[test]
    fn the_ceiling_cuts_and_granted_entries_are_left_out() {
        let (r, _) = requests_for(&[("a.example.com".into(), 443), ("b.other.org".into(), 443)], &cx());
        let ceiling = [Request { capability: Capability::NetworkExternal, reason: String::new(), scope: vec!["*.example.com".into()] }];
        let c = cut(r.clone(), Some(&ceiling), &[]);
        assert_eq!(c[0].scope, vec!["a.example.com".to_string()]);
        let granted = [Request { capability: Capability::NetworkExternal, reason: String::new(), scope: vec!["a.example.com".into()] }];
        let c = cut(r, None, &granted);
        assert_eq!(c[0].scope, vec!["b.other.org".to_string()]);
    }
}
