//! The tool-call gate: which of an AI agent's tool calls may run in a
//! sandboxed session, judged from the tool's name, kind and parameters.
//!
//! The sandbox backend only sees what OpenClaw routes through it (shell
//! `exec` and the file tools). Everything else a model can call runs in the
//! gateway process, on the host: Code Mode's JavaScript `exec` (a `node:vm`
//! worker, not a security boundary), `web_fetch` from the gateway's own
//! network, host-control tools (`gateway`, `cron`, `nodes`, …). So in a
//! sandboxed session every call is judged here, by rule:
//!
//! * **runs in the sandbox** (shell `exec` without `elevated` or a host
//!   other than the sandbox, `process`, the file tools, catalog browsing):
//!   allowed;
//! * **Code Mode** (`toolKind: "code_mode_exec"`, or an `exec` whose
//!   parameters are `code` rather than `command`; its `wait`): refused —
//!   told apart by parameters, not by the name both share;
//! * **network from the gateway** (`web_fetch`): allowed only to a
//!   destination the sandbox's own proxy would allow (same [`NetRules`]),
//!   never to an address literal in a private range; `web_search` and
//!   message sends leave the host with what the model wrote: they need the
//!   user's approval;
//! * **host control** (config, automations, paired nodes, the browser,
//!   plugins, secrets, terminals, skill writing, remote exec): refused;
//! * **children** (`sessions_spawn`): only sandboxed ones (`sandbox:
//!   "require"` is set), never an external ACP harness;
//! * **wrappers** (`tool_call`): judged as the tool they call;
//! * **anything else** (a plugin's tool, a tool added by a later OpenClaw):
//!   refused unless the operator lists it in `allowTools`.
//!
//! One rule, used by the OpenClaw hook (through the addon) and by
//! `sc doctor`'s explanation of what is refused.

use serde_json::Value;

use crate::proxy::host::{canonicalize, Host};
use crate::proxy::rules::{NetRules, RuleDecision};

/// What the gate decided for one call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Verdict {
    Allow,
    /// Allowed with these parameters instead (e.g. a child forced into a sandbox).
    Rewrite(Value),
    /// Refused; the reason is for the person and the model.
    Block(String),
    /// Needs the user's decision first.
    Approve { title: String, description: String },
}

/// A tool call as the hook sees it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub tool: &'a str,
    /// OpenClaw's `toolKind` (`"code_mode_exec"` for a Code Mode cell).
    pub kind: Option<&'a str>,
    pub params: &'a Value,
}

/// The gate for one sandbox policy.
#[derive(Debug, Clone)]
pub struct Gate {
    rules: NetRules,
    allow_tools: Vec<String>,
}

/// How deep `tool_call` wrappers are followed.
const MAX_WRAP: usize = 4;

/// Tools whose work runs in the sandbox or touches nothing on the host.
const IN_SANDBOX: &[&str] = &[
    "read",
    "write",
    "edit",
    "apply_patch",
    "ls",
    "process",
    "sessions_yield",
    "tool_search",
    "tool_describe",
    "subagents",
    "agents_wait",
    "session_status",
    // Conversation state and the run's own answer: nothing on the host.
    "ask_user",
    "get_goal",
    "create_goal",
    "update_goal",
    "progress_card",
    "structured_output",
    "suggest_task",
    "dismiss_task",
    "heartbeat_respond",
    // sharkcage's own dispatcher: it runs a skill's entry in a sandbox of
    // its own, with that skill's grants (asked for by the plugin's gate).
    "sharkcage_run",
];

/// Tools that act on the host or the gateway itself, outside any sandbox.
const HOST_CONTROL: &[(&str, &str)] = &[
    ("gateway", "changes the gateway's configuration or restarts it"),
    ("openclaw", "delegates to OpenClaw itself (configuration, plugins)"),
    ("plugins", "installs or changes gateway plugins"),
    ("secrets", "reads or changes the gateway's secrets"),
    ("cron", "schedules automations that run later outside this sandbox"),
    ("automations", "schedules automations that run later outside this sandbox"),
    ("nodes", "runs commands on paired devices"),
    ("file_write", "writes files on paired devices"),
    ("file_fetch", "reads files on paired devices"),
    ("dir_list", "lists directories on paired devices"),
    ("dir_fetch", "reads directories on paired devices"),
    ("browser", "drives a browser outside the sandbox"),
    ("terminal", "types into terminals outside the sandbox"),
    ("computer", "controls the host's screen and input"),
    ("mobile_ui", "controls a device's screen and input"),
    ("crabbox", "runs commands on a remote machine"),
    ("skill_workshop", "writes skills that later run with their own grants"),
    ("sessions_send", "sends work to other sessions, which may not be sandboxed"),
    ("conversations_send", "sends messages into other conversations, which may not be sandboxed"),
    ("conversations_turn", "starts turns in other conversations, which may not be sandboxed"),
    ("screen", "captures the host's screen"),
    ("dashboard", "changes the gateway's dashboard"),
    ("github_publish", "publishes to GitHub with the gateway's credentials"),
    ("view_image", "reads files from the host outside the sandbox's file rules"),
    ("pdf", "reads files from the host outside the sandbox's file rules"),
    ("transcripts", "reads other sessions' transcripts"),
    ("sessions_history", "reads other sessions' transcripts"),
    ("sessions_search", "searches other sessions' transcripts"),
];

/// Tools that send what the model wrote off the host: the user decides.
const NEEDS_APPROVAL: &[(&str, &str)] = &[
    ("web_search", "sends a search query to the configured search provider"),
    ("x_search", "sends a search query to the configured search provider"),
    ("message", "sends a message to a chat channel or person"),
    ("tts", "sends text to a speech provider"),
    ("image_generate", "sends a prompt to an image provider and writes what comes back"),
    ("music_generate", "sends a prompt to a music provider and writes what comes back"),
    ("video_generate", "sends a prompt to a video provider and writes what comes back"),
];

impl Gate {
    /// `allowed`/`denied`: the policy's `network.allowedDomains` and
    /// `deniedDomains`; `allow_tools`: tool names the operator trusts.
    pub fn new(rules: NetRules, allow_tools: Vec<String>) -> Gate {
        Gate { rules, allow_tools }
    }

    pub fn judge(&self, call: Call) -> Verdict {
        self.judge_at(call, 0)
    }

    fn judge_at(&self, call: Call, depth: usize) -> Verdict {
        let tool = call.tool;
        if is_code_mode(call) {
            return Verdict::Block(
                "Code Mode runs JavaScript inside the gateway, outside the sandbox: refused in a sandboxed session. \
                 Use shell exec and the file tools, which run in the sandbox (set tools.codeMode to false)."
                    .into(),
            );
        }
        match tool {
            "exec" => judge_shell_exec(call.params),
            "tool_call" => self.unwrap(call.params, depth),
            "sessions_spawn" => judge_spawn(call.params),
            "web_fetch" => self.judge_fetch(call.params),
            t if IN_SANDBOX.contains(&t) => Verdict::Allow,
            t => {
                if let Some((_, why)) = HOST_CONTROL.iter().find(|(n, _)| *n == t) {
                    return Verdict::Block(format!("{t} {why}: refused in a sandboxed session"));
                }
                if let Some((_, why)) = NEEDS_APPROVAL.iter().find(|(n, _)| *n == t) {
                    return Verdict::Approve { title: format!("Allow {t}?"), description: format!("The sandboxed agent's {t} call {why}. Its parameters: {}", brief(call.params)) };
                }
                if self.allow_tools.iter().any(|a| a == t) {
                    return Verdict::Allow;
                }
                Verdict::Block(format!("{t} is not a tool sharkcage knows to run inside the sandbox: refused by default (an operator can allow it by name with the plugin's gate.allowTools)"))
            }
        }
    }

    /// `tool_call`: the tool it calls decides. OpenClaw takes the target from
    /// `id`, `toolId` or `name`, and the input from `args`, `input`, or the
    /// wrapper's other keys; every candidate pair is judged and the strictest
    /// verdict wins (a refusal, then an approval), so no spelling the bridge
    /// accepts reaches a tool the gate did not judge. A rewrite of an input
    /// is carried back where that input came from.
    fn unwrap(&self, params: &Value, depth: usize) -> Verdict {
        const TARGET_KEYS: [&str; 3] = ["id", "toolId", "name"];
        const INPUT_KEYS: [&str; 2] = ["args", "input"];
        if depth >= MAX_WRAP {
            return Verdict::Block("tool_call nested too deep: refused".into());
        }
        let targets: Vec<&str> = TARGET_KEYS.iter().filter_map(|k| params.get(*k)).map(|v| v.as_str().unwrap_or("")).collect();
        if targets.is_empty() || targets.iter().any(|t| t.trim().is_empty()) {
            return Verdict::Block("tool_call without a tool name it can be judged by: refused".into());
        }
        // Inputs: each named one, and the wrapper's own other keys.
        let mut rest = params.as_object().cloned().unwrap_or_default();
        for k in TARGET_KEYS.iter().chain(INPUT_KEYS.iter()) {
            rest.remove(*k);
        }
        let mut inputs: Vec<(Option<&str>, Value)> = INPUT_KEYS.iter().filter_map(|k| params.get(*k).map(|v| (Some(*k), v.clone()))).collect();
        inputs.push((None, Value::Object(rest)));
        let mut out = params.clone();
        let mut rewritten = false;
        let mut approve = None;
        for t in &targets {
            // A catalog id may carry a namespace (`core:exec`): the name is its last part.
            let name = t.rsplit([':', '/', '.']).next().unwrap_or(t).trim();
            for (at, input) in &inputs {
                match self.judge_at(Call { tool: name, kind: None, params: input }, depth + 1) {
                    Verdict::Allow => {}
                    Verdict::Block(r) => return Verdict::Block(r),
                    Verdict::Approve { title, description } => approve = approve.or(Some(Verdict::Approve { title, description })),
                    Verdict::Rewrite(new) => {
                        rewritten = true;
                        match (at, new) {
                            (Some(k), new) => out[*k] = new,
                            (None, Value::Object(m)) => {
                                if let Some(o) = out.as_object_mut() {
                                    o.extend(m);
                                }
                            }
                            (None, _) => return Verdict::Block("tool_call whose input cannot be rewritten: refused".into()),
                        }
                    }
                }
            }
        }
        match approve {
            Some(a) => a,
            None if rewritten => Verdict::Rewrite(out),
            None => Verdict::Allow,
        }
    }

    fn judge_fetch(&self, params: &Value) -> Verdict {
        let Some(raw) = params.get("url").and_then(Value::as_str) else {
            return Verdict::Block("web_fetch without a url: refused".into());
        };
        match self.destination_allowed(raw) {
            Ok(()) => Verdict::Allow,
            Err(why) => Verdict::Block(format!("web_fetch {}: {why} (the gateway fetches it, so the sandbox's network policy applies)", shown_url(raw))),
        }
    }

    /// The proxy's rule for a URL fetched on the sandbox's behalf.
    pub fn destination_allowed(&self, raw: &str) -> Result<(), String> {
        let u = url::Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!("scheme {} is not fetched", u.scheme()));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err("a URL with credentials in it is not fetched".into());
        }
        let host_text = match u.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            None => return Err("no host".into()),
        };
        let host = canonicalize(&host_text).map_err(|e| e.to_string())?;
        let port = u.port_or_known_default().unwrap_or(443);
        if let Host::Ip(a) = host {
            if let Some(kind) = crate::proxy::guard::classify(a) {
                if !self.rules.lists_address(a, port) {
                    return Err(format!("{a} is a {kind} address"));
                }
            }
        }
        if let Host::Name(n) = &host {
            if n == "localhost" || n.ends_with(".localhost") {
                return Err(format!("{n} is this machine"));
            }
        }
        match self.rules.decide(&host, port) {
            RuleDecision::Allowed { .. } => Ok(()),
            RuleDecision::Denied { reason, .. } => Err(reason),
            RuleDecision::NotAllowed => Err(format!("{host}:{port} is not in allowedDomains")),
        }
    }
}

/// A Code Mode cell: the kind OpenClaw gives it, or the shape of its
/// parameters (`code`, no shell `command`) whatever the name.
fn is_code_mode(call: Call) -> bool {
    if call.kind.is_some_and(|k| k.to_ascii_lowercase().contains("code_mode")) {
        return true;
    }
    // A shell exec never has `code`; Code Mode's `wait` never has `command`.
    let has = |k: &str| call.params.get(k).is_some();
    (call.tool == "exec" && has("code")) || (call.tool == "wait" && !has("command"))
}

/// Shell `exec` runs in the sandbox unless it asks to leave it.
fn judge_shell_exec(params: &Value) -> Verdict {
    // Any spelling that could mean "yes" (true, "true", 1, "yes") leaves the sandbox.
    let elevated = match params.get("elevated") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !matches!(s.trim().to_ascii_lowercase().as_str(), "" | "false" | "0" | "no" | "off"),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    };
    if elevated {
        return Verdict::Block("exec with elevated runs on the host, outside the sandbox: refused in a sandboxed session".into());
    }
    match params.get("host") {
        None | Some(Value::Null) => Verdict::Allow,
        Some(Value::String(h)) if matches!(h.trim().to_ascii_lowercase().as_str(), "auto" | "sandbox") => Verdict::Allow,
        Some(h) => Verdict::Block(format!("exec on host {} runs outside the sandbox: refused in a sandboxed session", brief(h))),
    }
}

/// A child session must be sandboxed too, and never an external harness.
fn judge_spawn(params: &Value) -> Verdict {
    if params.get("runtime").and_then(Value::as_str) == Some("acp") {
        return Verdict::Block("sessions_spawn with runtime \"acp\" starts an external agent harness on the host: refused in a sandboxed session".into());
    }
    if params.get("sandbox").and_then(Value::as_str) == Some("require") {
        return Verdict::Allow;
    }
    let mut p = params.clone();
    match p.as_object_mut() {
        Some(o) => {
            o.insert("sandbox".into(), Value::String("require".into()));
            Verdict::Rewrite(p)
        }
        None => Verdict::Block("sessions_spawn without parameters: refused".into()),
    }
}

/// A URL as shown in a refusal: bounded, without control characters.
fn shown_url(raw: &str) -> String {
    let clean: String = raw.chars().filter(|c| !c.is_control()).take(200).collect();
    if raw.chars().count() > 200 { format!("{clean}…") } else { clean }
}

/// Parameters for an approval prompt: bounded JSON.
fn brief(params: &Value) -> String {
    let s = params.to_string();
    let clean: String = s.chars().filter(|c| !c.is_control()).take(300).collect();
    if s.chars().count() > 300 { format!("{clean}…") } else { clean }
}

pub mod settings;

#[cfg(test)]
mod tests;
