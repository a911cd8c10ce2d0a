//! OpenClaw settings that open paths around the sandbox, for `sc doctor`.
//!
//! The gate (see the parent module) refuses what runs outside the sandbox in
//! a sandboxed session, but some settings decide whether a session is
//! sandboxed at all, or hand the model tools the gate will keep refusing.
//! Each finding is one plain line: the key, what it opens, and the fix.

use serde_json::Value;

/// Findings for an OpenClaw config (`openclaw.json`, parsed).
pub fn findings(cfg: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let defaults = &cfg["agents"]["defaults"];
    sandbox_findings("agents.defaults", &defaults["sandbox"], &mut out);
    code_mode_findings("tools.codeMode", cfg["tools"].get("codeMode"), &mut out);
    elevated_findings("tools.elevated", &cfg["tools"]["elevated"], &mut out);
    sandbox_tools_findings("tools.sandbox.tools", &cfg["tools"]["sandbox"]["tools"], &mut out);
    for (i, agent) in cfg["agents"]["list"].as_array().into_iter().flatten().enumerate() {
        let at = format!("agents.list[{i}]{}", agent["id"].as_str().map(|id| format!(" ({id})")).unwrap_or_default());
        if agent.get("sandbox").is_some() {
            sandbox_findings(&at, &agent["sandbox"], &mut out);
        }
        if let Some(cm) = agent["tools"].get("codeMode") {
            code_mode_findings(&format!("{at}.tools.codeMode"), Some(cm), &mut out);
        }
        elevated_findings(&format!("{at}.tools.elevated"), &agent["tools"]["elevated"], &mut out);
        sandbox_tools_findings(&format!("{at}.tools.sandbox.tools"), &agent["tools"]["sandbox"]["tools"], &mut out);
    }
    if cfg["plugins"]["entries"]["sharkcage"]["enabled"] == Value::Bool(false) {
        out.push("plugins.entries.sharkcage.enabled is false: neither the backend nor the tool-call gate is loaded".into());
    }
    out
}

fn sandbox_findings(at: &str, sb: &Value, out: &mut Vec<String>) {
    let backend = sb["backend"].as_str().unwrap_or("docker");
    let mode = sb["mode"].as_str().unwrap_or("off");
    if mode == "off" {
        out.push(format!("{at}.sandbox.mode is off: tool calls run on the host, unsandboxed (run `sc init`)"));
        return;
    }
    if backend != "sharkcage" {
        out.push(format!("{at}.sandbox.backend is {backend:?}: those sessions are not sandboxed by sharkcage and its gate does not judge them"));
    }
    if mode == "non-main" {
        out.push(format!("{at}.sandbox.mode is non-main: the main session's tool calls run on the host, unsandboxed (`sc init --mode all` sandboxes every session)"));
    }
}

fn code_mode_findings(at: &str, v: Option<&Value>, out: &mut Vec<String>) {
    let on = match v {
        None => Some("unset (\"auto\": on for models marked preferred)"),
        Some(Value::Bool(true)) => Some("true"),
        Some(Value::String(s)) if s == "auto" => Some("\"auto\" (on for models marked preferred)"),
        Some(Value::Object(o)) => match o.get("enabled") {
            Some(Value::Bool(true)) => Some("enabled"),
            Some(Value::String(s)) if s == "auto" => Some("enabled: \"auto\" (on for models marked preferred)"),
            _ => None,
        },
        _ => None,
    };
    if let Some(how) = on {
        out.push(format!(
            "{at} is {how}: Code Mode runs the model's JavaScript in the gateway, outside the sandbox; the gate refuses its cells in sandboxed sessions, so the model is left without tools — set it to false (`sc init` does when unset)"
        ));
    }
}

fn elevated_findings(at: &str, v: &Value, out: &mut Vec<String>) {
    if v["enabled"] == Value::Bool(true) {
        out.push(format!("{at}.enabled is true: exec with elevated runs on the host; the gate refuses it in sandboxed sessions, but unsandboxed sessions get it"));
    }
}

/// Tools a sandbox tool policy lets through that run in the gateway.
fn sandbox_tools_findings(at: &str, v: &Value, out: &mut Vec<String>) {
    for key in ["allow", "alsoAllow"] {
        for name in v[key].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let what = match name {
                "web_fetch" => "fetches from the gateway's network: the gate allows only destinations the sandbox's network policy allows",
                "web_search" | "x_search" => "sends queries from the gateway: the gate asks the user each time",
                "group:web" => "web tools run in the gateway: web_fetch is held to the network policy, searches need approval",
                "browser" => "drives a browser outside the sandbox: the gate refuses it",
                "group:plugins" | "bundle-mcp" | "*" => "plugin and MCP tools run wherever their plugin runs them: the gate refuses each unless listed in plugins.entries.sharkcage.config.gate.allowTools",
                _ => continue,
            };
            out.push(format!("{at}.{key} has {name:?}: it {what}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::findings;

    #[test]
    fn what_sc_init_writes_has_no_findings_and_each_opening_is_named() {
        let good = json!({"agents": {"defaults": {"sandbox": {"mode": "all", "backend": "sharkcage"}}}, "tools": {"codeMode": false}, "plugins": {"entries": {"sharkcage": {"enabled": true}}}});
        assert_eq!(findings(&good), Vec::<String>::new());
        let bad = json!({
            "agents": {"defaults": {"sandbox": {"mode": "non-main", "backend": "sharkcage"}}, "list": [{"id": "ops", "sandbox": {"mode": "all", "backend": "docker"}, "tools": {"codeMode": true}}]},
            "tools": {"elevated": {"enabled": true}, "sandbox": {"tools": {"alsoAllow": ["web_fetch", "browser", "read"]}}},
            "plugins": {"entries": {"sharkcage": {"enabled": false}}}
        });
        let f = findings(&bad).join("\n");
        for needle in ["non-main", "tools.codeMode is unset", "agents.list[0] (ops).tools.codeMode is true", "\"docker\"", "tools.elevated.enabled", "\"web_fetch\"", "\"browser\"", "enabled is false"] {
            assert!(f.contains(needle), "missing {needle:?} in:\n{f}");
        }
        assert!(!f.contains("\"read\""), "{f}");
    }
}
