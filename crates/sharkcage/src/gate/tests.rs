use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn gate(allow: &[&str]) -> Gate {
    let a: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    Gate::new(NetRules::compile(&a, &[], &BTreeMap::new()).unwrap(), vec!["my_plugin_tool".into()])
}

fn judge(g: &Gate, tool: &str, kind: Option<&str>, params: Value) -> Verdict {
    g.judge(Call { tool, kind, params: &params })
}

fn blocked(v: &Verdict) -> bool {
    matches!(v, Verdict::Block(_))
}

#[test]
fn a_table_of_calls_and_what_the_gate_decides() {
    let g = gate(&["example.com", "*.github.com"]);
    // (tool, kind, params, expected: "allow" | "block" | "approve" | "rewrite")
    let cases: Vec<(&str, Option<&str>, Value, &str)> = vec![
        ("exec", None, json!({"command": "ls"}), "allow"),
        ("exec", None, json!({"command": "ls", "host": "sandbox"}), "allow"),
        ("exec", None, json!({"command": "ls", "host": "auto"}), "allow"),
        ("exec", None, json!({"command": "ls", "host": "gateway"}), "block"),
        ("exec", None, json!({"command": "ls", "host": "node"}), "block"),
        ("exec", None, json!({"command": "ls", "elevated": true}), "block"),
        // Code Mode: by kind, and by parameters whatever the kind says.
        ("exec", Some("code_mode_exec"), json!({"code": "1+1"}), "block"),
        ("exec", Some("code_mode_exec"), json!({"command": "1+1"}), "block"),
        ("exec", None, json!({"code": "process.exit()"}), "block"),
        ("wait", None, json!({"runId": "r1"}), "block"),
        ("read", None, json!({"path": "a"}), "allow"),
        ("write", None, json!({"path": "a", "content": "x"}), "allow"),
        ("edit", None, json!({"path": "a", "edits": []}), "allow"),
        ("apply_patch", None, json!({"input": "*** Begin Patch"}), "allow"),
        ("ls", None, json!({}), "allow"),
        ("process", None, json!({"action": "list"}), "allow"),
        ("tool_search", None, json!({"query": "x"}), "allow"),
        // Network from the gateway: the proxy's rule.
        ("web_fetch", None, json!({"url": "https://example.com/x"}), "allow"),
        ("web_fetch", None, json!({"url": "https://api.github.com/"}), "allow"),
        ("web_fetch", None, json!({"url": "https://evil.test/"}), "block"),
        ("web_fetch", None, json!({"url": "http://127.0.0.1:8080/"}), "block"),
        ("web_fetch", None, json!({"url": "http://169.254.169.254/latest/meta-data"}), "block"),
        ("web_fetch", None, json!({"url": "http://[::1]/"}), "block"),
        ("web_fetch", None, json!({"url": "http://localhost/"}), "block"),
        ("web_fetch", None, json!({"url": "https://user:pw@example.com/"}), "block"),
        ("web_fetch", None, json!({"url": "file:///etc/passwd"}), "block"),
        ("web_fetch", None, json!({"url": "https://example.com.evil.test/"}), "block"),
        // The proxy allows a name without a port on 80 and 443 only.
        ("web_fetch", None, json!({"url": "https://example.com:8443/"}), "block"),
        ("web_fetch", None, json!({"url": "http://example.com/"}), "allow"),
        ("web_fetch", None, json!({}), "block"),
        ("web_search", None, json!({"query": "x"}), "approve"),
        ("message", None, json!({"to": "x", "text": "y"}), "approve"),
        // Host control.
        ("gateway", None, json!({"action": "restart"}), "block"),
        ("cron", None, json!({"action": "add"}), "block"),
        ("nodes", None, json!({"action": "invoke"}), "block"),
        ("openclaw", None, json!({"message": "x"}), "block"),
        ("skill_workshop", None, json!({"action": "write"}), "block"),
        ("browser", None, json!({"action": "open"}), "block"),
        // Children are sandboxed, never an external harness.
        ("sessions_spawn", None, json!({"task": "x"}), "rewrite"),
        ("sessions_spawn", None, json!({"task": "x", "sandbox": "inherit"}), "rewrite"),
        ("sessions_spawn", None, json!({"task": "x", "sandbox": "require"}), "allow"),
        ("sessions_spawn", None, json!({"task": "x", "runtime": "acp"}), "block"),
        // Wrappers are judged as what they call.
        ("tool_call", None, json!({"id": "read", "args": {"path": "a"}}), "allow"),
        ("tool_call", None, json!({"id": "gateway", "args": {}}), "block"),
        ("tool_call", None, json!({"id": "core:nodes", "args": {}}), "block"),
        ("tool_call", None, json!({"id": "exec", "args": {"code": "x"}}), "block"),
        ("tool_call", None, json!({"id": "exec", "args": {"command": "ls", "elevated": true}}), "block"),
        ("tool_call", None, json!({"id": "tool_call", "args": {"id": "web_fetch", "args": {"url": "https://evil.test/"}}}), "block"),
        ("tool_call", None, json!({"id": "sessions_spawn", "args": {"task": "x"}}), "rewrite"),
        ("tool_call", None, json!({"args": {}}), "block"),
        // Every spelling OpenClaw's bridge accepts: toolId/name targets, input/top-level inputs.
        ("tool_call", None, json!({"id": "exec", "input": {"command": "id", "host": "gateway"}}), "block"),
        ("tool_call", None, json!({"id": "exec", "command": "id", "host": "gateway"}), "block"),
        ("tool_call", None, json!({"id": "x:read", "name": "gateway", "action": "config.apply"}), "block"),
        ("tool_call", None, json!({"toolId": "nodes"}), "block"),
        ("tool_call", None, json!({"name": "read", "path": "a"}), "allow"),
        ("tool_call", None, json!({"id": "sessions_spawn", "input": {"task": "x"}}), "rewrite"),
        ("tool_call", None, json!({"id": "web_search", "args": {"query": "x"}}), "approve"),
        ("tool_call", None, json!({"id": "", "args": {}}), "block"),
        // Parameter spellings that could mean "leave the sandbox".
        ("exec", None, json!({"command": "ls", "host": " Gateway "}), "block"),
        ("exec", None, json!({"command": "ls", "host": ["gateway"]}), "block"),
        ("exec", None, json!({"command": "ls", "host": {}}), "block"),
        ("exec", None, json!({"command": "ls", "host": " Sandbox"}), "allow"),
        ("exec", None, json!({"command": "ls", "elevated": "true"}), "block"),
        ("exec", None, json!({"command": "ls", "elevated": 1}), "block"),
        ("exec", None, json!({"command": "ls", "elevated": false}), "allow"),
        ("exec", None, json!({"command": "1+1", "code": "process.exit()"}), "block"),
        ("exec", Some("Code_Mode_Exec"), json!({"command": "ls"}), "block"),
        // Unknown tools are refused unless the operator allowed them.
        ("some_plugin_tool", None, json!({}), "block"),
        ("my_plugin_tool", None, json!({}), "allow"),
        ("view_image", None, json!({"path": "/etc/shadow"}), "block"),
        ("ask_user", None, json!({"question": "?"}), "allow"),
        ("structured_output", None, json!({}), "allow"),
        ("github_publish", None, json!({}), "block"),
        ("conversations_send", None, json!({}), "block"),
        ("image_generate", None, json!({"prompt": "x"}), "approve"),
        ("sessions_list", None, json!({}), "block"),
    ];
    for (tool, kind, params, want) in cases {
        let v = judge(&g, tool, kind, params.clone());
        let got = match &v {
            Verdict::Allow => "allow",
            Verdict::Block(_) => "block",
            Verdict::Approve { .. } => "approve",
            Verdict::Rewrite(_) => "rewrite",
        };
        assert_eq!(got, want, "{tool} {kind:?} {params}: {v:?}");
    }
}

#[test]
fn a_spawned_child_is_forced_into_a_sandbox_even_through_a_wrapper() {
    let g = gate(&[]);
    match judge(&g, "tool_call", None, json!({"id": "sessions_spawn", "args": {"task": "t", "sandbox": "inherit"}})) {
        Verdict::Rewrite(p) => assert_eq!(p["args"]["sandbox"], "require"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn nesting_is_bounded_and_refusals_say_why() {
    let g = gate(&[]);
    let mut p = json!({"id": "read", "args": {"path": "a"}});
    for _ in 0..10 {
        p = json!({"id": "tool_call", "args": p});
    }
    assert!(blocked(&judge(&g, "tool_call", None, p)));
    match judge(&g, "web_fetch", None, json!({"url": "https://evil.test/\u{1b}[8m"})) {
        Verdict::Block(r) => {
            assert!(r.contains("not in allowedDomains") || r.contains("not a valid"), "{r}");
            assert!(!r.contains('\u{1b}'), "{r:?}");
        }
        v => panic!("{v:?}"),
    }
    match judge(&g, "exec", Some("code_mode_exec"), json!({"code": "x"})) {
        Verdict::Block(r) => assert!(r.contains("Code Mode") && r.contains("tools.codeMode"), "{r}"),
        v => panic!("{v:?}"),
    }
}
