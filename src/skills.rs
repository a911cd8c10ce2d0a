//! `SkillGate`: the core crate's skill rules (`sharkcage::skills`) for the
//! OpenClaw glue: `judge` for the gate hook (run, ask or refuse), `resolve`
//! for the user's answer, `forExec` for the backend (the policy and the
//! variables one exec call really gets). One instance per gateway process:
//! it holds the one-time approvals in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use napi::{Env, Result};
use napi_derive::napi;
use serde::Deserialize;

use crate::error::{to_js, AddonError};
use sharkcage::skills::attribution::HostFs;
use sharkcage::skills::call::{self, Inputs, Judgement, KnownSkill, SkillCall};
use sharkcage::skills::capabilities::Context;
use sharkcage::skills::dispatch;
use sharkcage::skills::exec::{self, ExecInputs};
use sharkcage::skills::grants::{self, By, Decision, GrantRecord, GrantStore, Grants};
use sharkcage::skills::once::{Once, Tokens};
use sharkcage::skills::services::{ServiceStore, Services};
use sharkcage::skills::{prompt, Capability, Request};

#[napi(object)]
pub struct SkillGateOptions {
    /// sharkcage's state directory (grants.json); default: the usual one.
    pub state_dir: Option<String>,
    /// The operator's ceiling: `[{capability, scope?}]`; absent: none.
    #[napi(ts_type = "Array<{ capability: string, scope?: string[] }>")]
    pub ceiling: Option<serde_json::Value>,
    /// Capabilities never offered as "allow always".
    pub never_always: Option<Vec<String>>,
    /// Approved for every skill without a prompt: `[{capability, scope?}]`
    /// (still only what a skill declares, within the ceiling).
    #[napi(ts_type = "Array<{ capability: string, scope?: string[] }>")]
    pub auto_approve: Option<serde_json::Value>,
    /// How long a prompt waits (ms; the one-time approval outlives it by a minute).
    pub approval_timeout_ms: Option<u32>,
}

#[napi(object)]
pub struct SkillDir {
    pub name: String,
    /// The skill's directory on the host.
    pub dir: String,
    /// Other paths commands name it by: `[{written, host}]`.
    #[napi(ts_type = "Array<{ written: string, host: string }>")]
    pub mapped: Option<serde_json::Value>,
}

#[napi(object)]
pub struct SkillCallRequest {
    pub command: String,
    pub workdir: Option<String>,
    pub skills: Vec<SkillDir>,
    /// The sandbox's workspace (relative scope paths are relative to it).
    pub workspace: String,
    /// Destinations earlier calls of the skill were refused: the prompt may
    /// ask to widen its grant for them.
    pub refused: Option<Vec<RefusedDest>>,
}

#[napi(object)]
#[derive(Clone)]
pub struct RefusedDest {
    /// The skill whose call was refused.
    pub skill: String,
    pub host: String,
    pub port: u32,
}

/// The refusals of skill `name`.
fn refused_pairs(r: &Option<Vec<RefusedDest>>, name: &str) -> Vec<(String, u16)> {
    r.iter().flatten().filter(|d| d.skill == name).filter_map(|d| u16::try_from(d.port).ok().filter(|p| *p > 0).map(|p| (d.host.clone(), p))).collect()
}

/// What `resolve` recorded, and the skill's network entries now (for the
/// live scope of its running sandboxes).
#[napi(object)]
pub struct Resolution {
    pub skill: Option<String>,
    #[napi(ts_type = "Array<{ capability: string, scope: string[] }>")]
    pub recorded: serde_json::Value,
    pub domains: Vec<String>,
}

/// `decision`: "baseline" (no skill), "run" (everything asked for is
/// granted), "ask" (with the prompt and a one-time `token` to put in the
/// call's env on approval) or "block" (with `reason`).
#[napi(object)]
pub struct SkillJudgement {
    pub decision: String,
    pub reason: Option<String>,
    pub skill: Option<String>,
    pub identity: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub allowed_decisions: Option<Vec<String>>,
    pub token: Option<String>,
    /// sharkcage's id of this approval (in the audit log and the grants).
    pub approval_id: Option<String>,
    /// `[{capability, scope}]` asked for by the prompt.
    #[napi(ts_type = "Array<{ capability: string, scope: string[] }>")]
    pub missing: Option<serde_json::Value>,
    /// The part of `missing` that widens the grant beyond the declaration.
    #[napi(ts_type = "Array<{ capability: string, scope: string[] }>")]
    pub expansion: Option<serde_json::Value>,
    #[napi(ts_type = "Array<{ capability: string, scope: string[] }>")]
    pub granted: Option<serde_json::Value>,
}

#[napi(object)]
pub struct ExecForSkill {
    pub command: String,
    pub workdir: Option<String>,
    pub skills: Vec<SkillDir>,
    pub workspace: String,
    #[napi(ts_type = "object")]
    pub policy: serde_json::Value,
    pub env: Option<BTreeMap<String, String>>,
    /// Configured `system.env` values per skill name.
    #[napi(ts_type = "Record<string, Record<string, string>>")]
    pub values: Option<serde_json::Value>,
    /// Where verified copies of skill code are kept (a call with grants runs
    /// its copy; the caller exposes `expose` read-only to the sandbox).
    pub snapshot_root: Option<String>,
}

#[napi(object)]
pub struct ExecSkillPlan {
    pub skill: Option<String>,
    pub identity: Option<String>,
    pub approval_id: Option<String>,
    #[napi(ts_type = "Array<{ capability: string, scope: string[] }>")]
    pub applied: serde_json::Value,
    #[napi(ts_type = "object")]
    pub policy: serde_json::Value,
    pub env: BTreeMap<String, String>,
    pub notices: Vec<String>,
    /// With a skill's grants: run this argv directly (no shell).
    pub argv: Option<Vec<String>>,
    /// Injected variables whose values are redacted from the output.
    pub redact: Vec<String>,
    /// Host directories to expose read-only for this call (the copy of the
    /// skill's code it runs).
    pub expose: Vec<String>,
}

#[napi(object)]
pub struct SkillRunRequest {
    pub skill: String,
    pub tool: String,
    #[napi(ts_type = "unknown")]
    pub args: serde_json::Value,
    pub skills: Vec<SkillDir>,
    pub workspace: String,
    pub refused: Option<Vec<RefusedDest>>,
}

#[napi(object)]
pub struct SkillRunExec {
    pub skill: String,
    pub tool: String,
    #[napi(ts_type = "unknown")]
    pub args: serde_json::Value,
    pub skills: Vec<SkillDir>,
    pub workspace: String,
    #[napi(ts_type = "object")]
    pub policy: serde_json::Value,
    pub env: Option<BTreeMap<String, String>>,
    #[napi(ts_type = "Record<string, Record<string, string>>")]
    pub values: Option<serde_json::Value>,
    pub snapshot_root: Option<String>,
}

impl From<exec::ExecPlan> for ExecSkillPlan {
    fn from(p: exec::ExecPlan) -> Self {
        ExecSkillPlan {
            skill: p.skill,
            identity: p.identity,
            approval_id: p.approval_id,
            applied: requests_json(&p.applied),
            policy: p.policy,
            env: p.env,
            notices: p.notices,
            argv: p.argv,
            redact: p.redact,
            expose: p.expose.iter().map(|e| e.display().to_string()).collect(),
        }
    }
}

fn skill_values(v: Option<serde_json::Value>) -> std::result::Result<BTreeMap<String, BTreeMap<String, String>>, AddonError> {
    match v {
        Some(v) => serde_json::from_value(v).map_err(|e| AddonError::InvalidArg(format!("values: {e}"))),
        None => Ok(BTreeMap::new()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CeilingEntry {
    capability: Capability,
    #[serde(default)]
    scope: Vec<String>,
}

#[derive(Deserialize)]
struct Mapped {
    written: String,
    host: String,
}

/// The skill rules of one gateway.
#[napi]
pub struct SkillGate {
    store: GrantStore,
    ceiling: Option<Vec<Request>>,
    auto_approve: Vec<Request>,
    never_always: Vec<Capability>,
    timeout: Duration,
    tokens: Tokens,
}

fn requests_json(reqs: &[Request]) -> serde_json::Value {
    serde_json::Value::Array(reqs.iter().map(|r| serde_json::json!({ "capability": r.capability.name(), "scope": r.scope })).collect())
}

fn known(skills: &[SkillDir]) -> std::result::Result<Vec<KnownSkill>, AddonError> {
    skills
        .iter()
        .map(|s| {
            let mapped: Vec<Mapped> = match &s.mapped {
                Some(v) => serde_json::from_value(v.clone()).map_err(|e| AddonError::InvalidArg(format!("skills[{}].mapped: {e}", s.name)))?,
                None => vec![],
            };
            Ok(KnownSkill { name: s.name.clone(), dir: PathBuf::from(&s.dir), mapped: mapped.into_iter().map(|m| (PathBuf::from(m.written), PathBuf::from(m.host))).collect() })
        })
        .collect()
}

/// What [`SkillGate::plan`] needs of a call's request.
struct PlanCall<'a> {
    command: &'a str,
    workdir: Option<&'a Path>,
    workspace: &'a str,
    policy: &'a serde_json::Value,
    env: &'a Option<BTreeMap<String, String>>,
    values: &'a Option<serde_json::Value>,
    snapshot_root: &'a Option<String>,
}

/// What every judgement reads afresh (a revocation or a new service counts
/// on the next call).
struct Fresh {
    skills: Vec<KnownSkill>,
    grants: Grants,
    services: Services,
    service_list: Vec<sharkcage::skills::Service>,
    home: Option<PathBuf>,
}

impl Fresh {
    fn inputs<'a>(&'a self, gate: &'a SkillGate, workspace: &'a str) -> Inputs<'a> {
        Inputs { skills: &self.skills, grants: &self.grants, ceiling: gate.ceiling.as_deref(), auto_approve: &gate.auto_approve, history: Some(gate.store.dir()), cx: Context { workspace: Path::new(workspace), home: self.home.as_deref(), services: &self.service_list } }
    }
}

impl SkillGate {
    /// A judged call as it runs (exec and the dispatcher alike): the
    /// policy, the variables (values from `values` and the services), the
    /// one-time token in `env` taken and checked, the verified code copy.
    fn plan(&self, f: &Fresh, j: Judgement, c: PlanCall) -> std::result::Result<exec::ExecPlan, AddonError> {
        let inputs = f.inputs(self, c.workspace);
        let values = skill_values(c.values.clone())?;
        let lookup = |name: &str| values.get(name).cloned().unwrap_or_default();
        let creds = |name: &str| f.services.credentials(name);
        let snapshot_root = c.snapshot_root.as_deref().filter(|r| !r.is_empty()).map(Path::new);
        let x = ExecInputs { command: c.command, workdir: c.workdir, base_policy: c.policy, env: c.env.clone().unwrap_or_default(), tokens: &self.tokens, skill_values: &lookup, service_values: &creds, snapshot_root };
        exec::plan_judged(j, x, &inputs).map_err(AddonError::Policy)
    }

    fn fresh(&self, skills: &[SkillDir]) -> std::result::Result<Fresh, AddonError> {
        let grants = self.store.load().map_err(|e| AddonError::InvalidArg(format!("the grant store cannot be read: {e}")))?;
        let services = ServiceStore::at(self.store.dir()).load().map_err(|e| AddonError::InvalidArg(format!("the services cannot be read: {e}")))?;
        let service_list = services.list();
        Ok(Fresh { skills: known(skills)?, grants, services, service_list, home: sharkcage::policy::paths::primary_home() })
    }

    fn ask(&self, c: &SkillCall, command: &str) -> std::result::Result<SkillJudgement, AddonError> {
        let p = prompt::for_call(c, &self.never_always);
        let approval_id = grants::new_approval_id();
        let once = Once { skill: c.name.clone(), identity: c.identity.clone(), command: command.to_string(), capabilities: c.missing.clone(), expansion: c.expansion.clone(), approval_id: approval_id.clone() };
        let token = self.tokens.issue(once, self.timeout + Duration::from_secs(60)).map_err(|e| AddonError::from_io("issuing a one-time approval", &e))?;
        Ok(SkillJudgement {
            decision: "ask".into(),
            reason: None,
            skill: Some(c.name.clone()),
            identity: Some(c.identity.clone()),
            title: Some(p.title),
            description: Some(p.description),
            severity: Some(p.severity.into()),
            allowed_decisions: Some(p.decisions.iter().map(|d| d.to_string()).collect()),
            token: Some(token),
            approval_id: Some(approval_id),
            missing: Some(requests_json(&c.missing.iter().chain(c.expansion.iter()).cloned().collect::<Vec<_>>())),
            expansion: Some(requests_json(&c.expansion)),
            granted: Some(requests_json(&c.granted)),
        })
    }
}

/// A skill call with the widening earlier refusals ask for.
fn widen(j: Judgement, refused: &Option<Vec<RefusedDest>>, inputs: &Inputs) -> Judgement {
    match j {
        Judgement::Skill(mut c) => {
            let pairs = refused_pairs(refused, &c.name);
            c.ask_to_widen(&pairs, inputs);
            Judgement::Skill(c)
        }
        other => other,
    }
}

fn verdict(decision: &str, reason: Option<String>, c: Option<&SkillCall>) -> SkillJudgement {
    SkillJudgement {
        decision: decision.into(),
        reason,
        skill: c.map(|c| c.name.clone()),
        identity: c.map(|c| c.identity.clone()),
        title: None,
        description: None,
        severity: None,
        allowed_decisions: None,
        token: None,
        approval_id: None,
        missing: c.map(|c| requests_json(&c.missing)),
        expansion: None,
        granted: c.map(|c| requests_json(&c.granted)),
    }
}

#[napi]
impl SkillGate {
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<SkillGateOptions>) -> Result<Self> {
        let build = || -> std::result::Result<SkillGate, AddonError> {
            let o = options.unwrap_or(SkillGateOptions { state_dir: None, ceiling: None, never_always: None, auto_approve: None, approval_timeout_ms: None });
            let store = match o.state_dir.filter(|d| !d.is_empty()) {
                Some(d) => GrantStore::at(d),
                None => GrantStore::open_default().map_err(|e| AddonError::InvalidArg(e.to_string()))?,
            };
            let requests = |v: serde_json::Value, key: &str| -> std::result::Result<Vec<Request>, AddonError> {
                let entries: Vec<CeilingEntry> = serde_json::from_value(v).map_err(|e| AddonError::Policy(format!("skills.{key}: {e}")))?;
                Ok(entries.into_iter().map(|e| Request { capability: e.capability, reason: String::new(), scope: e.scope }).collect())
            };
            let ceiling = o.ceiling.map(|v| requests(v, "ceiling")).transpose()?;
            let auto_approve = o.auto_approve.map(|v| requests(v, "autoApprove")).transpose()?.unwrap_or_default();
            let never_always = o
                .never_always
                .unwrap_or_default()
                .iter()
                .map(|n| Capability::from_name(n).ok_or_else(|| AddonError::Policy(format!("skills.neverAllowAlways: {}", sharkcage::skills::capabilities::unknown_message(n)))))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let timeout = Duration::from_millis(u64::from(o.approval_timeout_ms.unwrap_or(120_000).clamp(1_000, 600_000)));
            Ok(SkillGate { store, ceiling, auto_approve, never_always, timeout, tokens: Tokens::new() })
        };
        build().map_err(|e| to_js(&env, e))
    }

    /// Judge one exec call before it runs.
    #[napi]
    pub fn judge(&self, env: Env, req: SkillCallRequest) -> Result<SkillJudgement> {
        let run = || -> std::result::Result<SkillJudgement, AddonError> {
            let f = self.fresh(&req.skills)?;
            let inputs = f.inputs(self, &req.workspace);
            let j = widen(call::judge(&req.command, req.workdir.as_deref().map(Path::new), &inputs, &HostFs), &req.refused, &inputs);
            self.decide(j, &req.command)
        };
        run().map_err(|e| to_js(&env, e))
    }

    /// Judge a `sharkcage_run {skill, tool, args}` call before it runs.
    #[napi]
    pub fn judge_run(&self, env: Env, req: SkillRunRequest) -> Result<SkillJudgement> {
        let run = || -> std::result::Result<SkillJudgement, AddonError> {
            let f = self.fresh(&req.skills)?;
            let inputs = f.inputs(self, &req.workspace);
            match dispatch::judge(&req.skill, &req.tool, &inputs) {
                Ok((j, _)) => self.decide(widen(j, &req.refused, &inputs), &dispatch::binding(&req.skill, &req.tool, &req.args)),
                Err(why) => Ok(verdict("block", Some(format!("sharkcage_run: {}", prompt::clean(&why))), None)),
            }
        };
        run().map_err(|e| to_js(&env, e))
    }

    /// How a `sharkcage_run` call runs: its entry's argv, the policy and the
    /// variables (a one-time token in `env` is taken and checked).
    #[napi]
    pub fn for_run(&self, env: Env, req: SkillRunExec) -> Result<ExecSkillPlan> {
        let run = || -> std::result::Result<ExecSkillPlan, AddonError> {
            let f = self.fresh(&req.skills)?;
            let (j, entry) = dispatch::judge(&req.skill, &req.tool, &f.inputs(self, &req.workspace)).map_err(AddonError::InvalidArg)?;
            let binding = dispatch::binding(&req.skill, &req.tool, &req.args);
            let call = PlanCall { command: &binding, workdir: None, workspace: &req.workspace, policy: &req.policy, env: &req.env, values: &req.values, snapshot_root: &req.snapshot_root };
            let mut p = self.plan(&f, j, call)?;
            // Without grants too, the dispatcher runs the skill's entry.
            p.argv = p.argv.or(Some(entry.argv));
            Ok(p.into())
        };
        run().map_err(|e| to_js(&env, e))
    }
}

impl SkillGate {
    /// What the gate does with a judged call (`binding`: what a one-time
    /// approval is bound to).
    fn decide(&self, j: Judgement, binding: &str) -> std::result::Result<SkillJudgement, AddonError> {
        let c = match j {
            Judgement::Skill(c) => c,
            Judgement::Baseline { reason } => return Ok(verdict("baseline", Some(reason), None)),
            _ => return Ok(verdict("baseline", None, None)),
        };
        let name = prompt::clean(&c.name);
        if let Some(e) = &c.error {
            return Ok(verdict("block", Some(format!("sharkcage: skill {name} cannot be run with its capabilities: {}", prompt::clean(e))), Some(&c)));
        }
        if !c.above_ceiling.is_empty() {
            return Ok(verdict("block", Some(format!("sharkcage: skill {name} asks for more than the operator allows ({}): refused", exec::describe(&c.above_ceiling))), Some(&c)));
        }
        if !c.denied.is_empty() {
            return Ok(verdict("block", Some(format!("sharkcage: the user denied skill {name} {}: refused (sc grants revoke {name} to decide again)", exec::describe(&c.denied))), Some(&c)));
        }
        if c.missing.is_empty() && c.expansion.is_empty() {
            return Ok(verdict("run", None, Some(&c)));
        }
        // The version asked about is kept: if it changes later, that prompt
        // can say what changed.
        if let Some(id) = &c.current {
            sharkcage::skills::identity::save_snapshot(self.store.dir(), id);
        }
        self.ask(&c, binding)
    }
}

#[napi]
impl SkillGate {
    /// The user's answer to an "ask": `allow-always` records the asked-for
    /// capabilities for this skill version (by: chat, with `approvalId`),
    /// a widening joined to the skill's existing grant; `allow-once` leaves
    /// the token for the call; anything else discards it.
    #[napi]
    pub fn resolve(&self, env: Env, token: String, decision: String, approval_id: Option<String>) -> Result<Resolution> {
        let run = || -> std::result::Result<Resolution, AddonError> {
            let none = Resolution { skill: None, recorded: requests_json(&[]), domains: vec![] };
            match decision.as_str() {
                "allow-once" => Ok(none),
                "allow-always" => {
                    let Some(o) = self.tokens.peek(&token) else { return Err(AddonError::InvalidArg("the approval is unknown or expired".into())) };
                    let id = approval_id.filter(|a| !a.is_empty()).unwrap_or(o.approval_id.clone());
                    let record = |r: &Request| GrantRecord { skill: o.skill.clone(), identity: o.identity.clone(), capability: r.capability, scope: r.scope.clone(), decision: Decision::AllowAlways, granted_at: grants::now(), by: By::Chat, approval_id: id.clone() };
                    let domains = self
                        .store
                        .update(|g| {
                            for r in &o.capabilities {
                                g.record(record(r));
                            }
                            for r in &o.expansion {
                                g.record_widening(record(r));
                            }
                            Ok(g.network_entries(&o.skill, &o.identity))
                        })
                        .map_err(|e| AddonError::InvalidArg(format!("the grant cannot be recorded: {e}")))?;
                    let all: Vec<Request> = o.capabilities.iter().chain(o.expansion.iter()).cloned().collect();
                    Ok(Resolution { skill: Some(o.skill.clone()), recorded: requests_json(&all), domains })
                }
                _ => {
                    self.tokens.discard(&token);
                    Ok(none)
                }
            }
        };
        run().map_err(|e| to_js(&env, e))
    }

    /// The policy and variables one exec call really gets (the backend's
    /// side: judged again, a one-time token taken from `env` and checked).
    #[napi]
    pub fn for_exec(&self, env: Env, req: ExecForSkill) -> Result<ExecSkillPlan> {
        let run = || -> std::result::Result<ExecSkillPlan, AddonError> {
            let f = self.fresh(&req.skills)?;
            let workdir = req.workdir.as_deref().map(Path::new);
            let j = call::judge(&req.command, workdir, &f.inputs(self, &req.workspace), &HostFs);
            let call = PlanCall { command: &req.command, workdir, workspace: &req.workspace, policy: &req.policy, env: &req.env, values: &req.values, snapshot_root: &req.snapshot_root };
            Ok(self.plan(&f, j, call)?.into())
        };
        run().map_err(|e| to_js(&env, e))
    }
}
