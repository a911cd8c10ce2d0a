//! The approval prompt for a skill call: what the person is asked, in plain
//! words, within OpenClaw's limits (title ≤ 80 characters, description ≤
//! 512), with a severity from the highest risk asked for and the decisions
//! offered (no "allow always" for capabilities the operator marks so).
//!
//! Everything from the skill (its name, reasons, scopes) is cleaned of
//! control and format characters first: a declaration must not be able to
//! forge lines of the prompt.

use super::call::SkillCall;
use super::capabilities::{Capability, Request, Risk};

pub const TITLE_MAX: usize = 80;
pub const DESCRIPTION_MAX: usize = 512;

/// What to show the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub title: String,
    pub description: String,
    /// `info`, `warning` or `critical`.
    pub severity: &'static str,
    /// A subset of `allow-once`, `allow-always`, `deny`.
    pub decisions: Vec<&'static str>,
}

/// The prompt for the `missing` part of `call`. `never_always`: the
/// capabilities the operator never offers as "allow always".
pub fn for_call(call: &SkillCall, never_always: &[Capability]) -> Prompt {
    // What it declares and lacks, then a widening after a refusal.
    let reqs: Vec<&Request> = call.missing.iter().chain(call.expansion.iter()).collect();
    let mut names: Vec<&str> = Vec::new();
    for r in &reqs {
        if !names.contains(&r.capability.name()) {
            names.push(r.capability.name());
        }
    }
    let title = cut(&format!("Skill {} wants: {}", clean(&call.name), names.join(", ")), TITLE_MAX);
    let mut d = String::new();
    if call.stale > 0 {
        d.push_str("It CHANGED since it was last approved; earlier grants no longer apply.\n");
        if let Some(c) = &call.changes {
            for l in c.lines() {
                d.push_str(&clean(l));
                d.push('\n');
            }
        }
    }
    for r in &call.missing {
        d.push_str(&line(r));
    }
    if !call.expansion.is_empty() {
        d.push_str("Refused in an earlier call; allowing it widens the grant:\n");
        for r in &call.expansion {
            d.push_str(&line(r));
        }
    }
    if !call.granted.is_empty() {
        let g: Vec<&str> = call.granted.iter().map(|r| r.capability.name()).collect();
        d.push_str(&format!("Already granted: {}.\n", g.join(", ")));
    }
    d.push_str(&format!("Code: {} ({})", clean(&call.dir.display().to_string()), short(&call.identity)));
    let max = reqs.iter().map(|r| r.capability.risk()).max().unwrap_or(Risk::Low);
    let severity = match max {
        Risk::Dangerous => "critical",
        Risk::High | Risk::Medium => "warning",
        Risk::Low => "info",
    };
    let always = !reqs.iter().any(|r| never_always.contains(&r.capability));
    let decisions = if always { vec!["allow-once", "allow-always", "deny"] } else { vec!["allow-once", "deny"] };
    Prompt { title, description: cut(&d, DESCRIPTION_MAX), severity, decisions }
}

fn line(r: &Request) -> String {
    let c = r.capability;
    let scope = if r.scope.is_empty() { String::new() } else { format!(" {}", r.scope.iter().map(|s| clean(s)).collect::<Vec<_>>().join(", ")) };
    let reason = if r.reason.is_empty() { String::new() } else { format!(" ({})", clean(&r.reason)) };
    format!("- {} [{} risk]: {}{}{}\n", c.name(), c.risk().as_str(), c.label(), scope, reason)
}

/// `sha256:` and the first 12 hex digits.
pub fn short(identity: &str) -> &str {
    let end = identity.char_indices().nth(19).map(|(i, _)| i).unwrap_or(identity.len());
    &identity[..end]
}

/// Control and format characters become spaces.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || is_format(c) { ' ' } else { c }).collect()
}

fn is_format(c: char) -> bool {
    matches!(c as u32, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xFEFF | 0xFFF9..=0xFFFB)
}

/// At most `max` characters, with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(missing: Vec<Request>) -> SkillCall {
        SkillCall { name: "weather\u{202e}x".into(), dir: "/w/skills/weather".into(), identity: "sha256:0123456789abcdef0123".into(), missing, ..SkillCall::default() }
    }

    fn req(c: Capability, scope: &[&str], reason: &str) -> Request {
        Request { capability: c, reason: reason.into(), scope: scope.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn lists_each_capability_scope_and_risk_in_limits() {
        let p = for_call(&call(vec![req(Capability::NetworkExternal, &["api.example.com"], "weather API"), req(Capability::SystemEnv, &["WEATHER_KEY"], "key\nDeny: fake line")]), &[]);
        assert_eq!(p.title, "Skill weather x wants: network.external, system.env");
        assert!(p.description.contains("- network.external [medium risk]: External Network api.example.com (weather API)"), "{}", p.description);
        assert!(p.description.contains("system.env [high risk]"));
        assert!(!p.description.contains("\nDeny: fake"), "a reason cannot forge a line");
        assert!(p.description.contains("sha256:0123456789ab"));
        assert_eq!(p.severity, "warning");
        assert_eq!(p.decisions, vec!["allow-once", "allow-always", "deny"]);
        let long = for_call(&call(vec![req(Capability::NetworkExternal, &["a.example.com"; 200], "x")]), &[]);
        assert!(long.description.chars().count() <= DESCRIPTION_MAX && long.title.chars().count() <= TITLE_MAX);
    }

    #[test]
    fn dangerous_is_critical_and_never_always_removes_the_choice() {
        let p = for_call(&call(vec![req(Capability::SystemExec, &[], "runs git")]), &[Capability::SystemExec]);
        assert_eq!(p.severity, "critical");
        assert_eq!(p.decisions, vec!["allow-once", "deny"]);
        let mut c = call(vec![req(Capability::NotifyPush, &[], "x")]);
        c.stale = 1;
        c.changes = Some("• changed run.sh\n• added evil\u{202e}.sh".into());
        let p = for_call(&c, &[]);
        assert_eq!(p.severity, "info");
        assert!(p.description.starts_with("It CHANGED"));
        assert!(p.description.contains("• changed run.sh\n• added evil .sh"), "{}", p.description);
    }
}
