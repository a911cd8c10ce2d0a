//! What the engine and the proxy put in the audit log: records made from a
//! finished call ([`ExecOutcome`]) and from proxy decisions ([`NetEvent`]).

use serde_json::json;

use super::record::{format_ts, Record};
use crate::launcher::ExecOutcome;
use crate::proxy::{Decision, Labels, NetEvent, Protocol};

fn label(r: &mut Record, l: &Labels) {
    r.session = l.session.clone();
    r.agent = l.agent.clone();
    r.skill = l.skill.clone();
    r.tool_call = l.tool_call.clone();
}

/// One proxy decision.
pub fn net(e: &NetEvent) -> Record {
    let mut r = Record::new("net");
    r.ts = format_ts(e.ts);
    label(&mut r, &e.labels);
    r.sandbox = Some(e.sandbox.clone());
    r.tool = Some(
        match e.protocol {
            Protocol::Http => "http",
            Protocol::Connect => "connect",
            Protocol::Socks5 => "socks5",
        }
        .into(),
    );
    r.decision = Some(
        match e.decision {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Error => "error",
        }
        .into(),
    );
    r.reason = Some(e.reason.clone());
    if !e.host.is_empty() {
        r.host = Some(e.host.clone());
        r.port = Some(e.port);
    }
    r.ip = e.ip.map(|i| i.to_string());
    r.bytes_up = Some(e.bytes_up);
    r.bytes_down = Some(e.bytes_down);
    r.duration_ms = Some(e.duration_ms);
    r
}

/// A finished call: one `exec` record, one `violation` record per refusal
/// or note, and (for calls whose proxy ran in the launcher) its `net`
/// records. `argv` is recorded redacted.
pub fn exec(o: &ExecOutcome, argv: &[String], workspace: Option<&str>, labels: &Labels) -> Vec<Record> {
    let mut out = Vec::new();
    let mut r = Record::new("exec");
    label(&mut r, labels);
    r.tool = Some("exec".into());
    r.sandbox = o.network.sandbox.clone();
    r.decision = Some("allow".into());
    r.params = Some(json!({"argv": argv, "workspace": workspace}));
    r.exit_code = o.exit_code.map(i64::from);
    r.duration_ms = Some(o.duration_ms);
    r.detail = Some(json!({
        "signal": o.signal, "timedOut": o.timed_out, "aborted": o.aborted, "truncated": o.truncated,
        "identity": o.layers.identity, "landlockAbi": o.layers.landlock.abi, "network": o.network.mode,
    }));
    out.push(r);
    for v in &o.violations {
        // Network refusals become their own `net` records below.
        if v.kind == "network" && o.network.events.iter().any(|e| e.summary() == v.detail) {
            continue;
        }
        let mut r = Record::new("violation");
        label(&mut r, labels);
        r.tool = Some("exec".into());
        r.decision = Some(if v.refused { "deny" } else { "note" }.into());
        r.reason = Some(v.detail.clone());
        r.detail = Some(json!({"kind": v.kind}));
        out.push(r);
    }
    if o.network.served_by == Some("launcher") {
        out.extend(o.network.events.iter().map(|e| {
            let mut r = net(e);
            label(&mut r, labels);
            r
        }));
    }
    out
}
