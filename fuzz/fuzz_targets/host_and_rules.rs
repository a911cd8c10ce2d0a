//! Host canonicalisation, `host:port` splitting and rule-entry parsing on
//! arbitrary UTF-8, with invariants:
//! * canonicalize is idempotent on its own output (Display form);
//! * split_host_port splits losslessly;
//! * a parsed allow entry allows what it names, a parsed deny entry denies
//!   what it names, and a wildcard covers a subdomain but not its apex.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sharkcage::proxy::host::{canonicalize, split_host_port, Host};
use sharkcage::proxy::rules::{NetRules, Pattern, RuleDecision};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };

    if let Ok(h) = canonicalize(s) {
        let shown = h.to_string();
        let again = canonicalize(&shown);
        assert_eq!(again.as_ref(), Ok(&h), "canonicalize({s:?}) = {h:?}, but canonicalize({shown:?}) = {again:?}");
        // A canonical host is also a valid authority host part.
        assert_eq!(split_host_port(&shown), Ok((shown.as_str(), None)), "{shown:?}");
    }

    if let Ok((h, port)) = split_host_port(s) {
        let joined = match port {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        };
        assert_eq!(joined, s, "split_host_port({s:?}) = ({h:?}, {port:?})");
    }

    for deny in [false, true] {
        let Ok(p) = Pattern::parse(s, deny) else { continue };
        assert_eq!(p.raw, s);
        let (h, port) = split_host_port(s).expect("a parsed entry splits");
        let port = port.unwrap_or(443);
        let rules = if deny {
            NetRules { deny: vec![p.clone()], ..Default::default() }
        } else {
            NetRules { allow: vec![p.clone()], ..Default::default() }
        };
        // The host the entry names (a subdomain for `*.suffix`).
        let target = match h.strip_prefix("*.") {
            Some(suffix) => {
                let apex = canonicalize(suffix).expect("a parsed wildcard suffix canonicalizes");
                if let Host::Name(n) = &apex {
                    assert_eq!(rules.decide(&apex, port), RuleDecision::NotAllowed, "{s:?} covers its apex");
                    Some(Host::Name(format!("sub.{n}")))
                } else {
                    panic!("wildcard {s:?} with a non-name suffix {apex:?} was accepted");
                }
            }
            None if h == "*" => Some(Host::Name("any.example.net".into())),
            None => Some(canonicalize(h).expect("a parsed entry's host canonicalizes")),
        };
        if let Some(t) = target {
            let d = rules.decide(&t, port);
            if deny {
                assert!(matches!(d, RuleDecision::Denied { .. }), "deny entry {s:?} does not deny {t:?}:{port}: {d:?}");
            } else {
                assert!(matches!(d, RuleDecision::Allowed { .. }), "allow entry {s:?} does not allow {t:?}:{port}: {d:?}");
                assert_eq!(p.is_exact(), !h.starts_with("*."));
            }
        }
    }
});
