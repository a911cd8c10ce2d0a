//! Which policy one `exec` call runs with: the rule the gate (before the
//! call, to decide whether the user must be asked) and the backend (as it
//! builds the call, to decide what the kernel enforces) both apply, so they
//! cannot disagree.
//!
//! Order, and why it is this order:
//!
//! 1. **Attribute** the command ([`attribution::attribute`]): a call gets a
//!    skill's grants only if everything it executes is that skill's code.
//!    Anything else is the baseline policy, whatever was approved.
//! 2. **Identify** the skill's directory now ([`identity::identify`]): grants
//!    are pinned to that hash, so a skill changed since it was approved has
//!    none (and the prompt says so).
//! 3. **Read its declaration** now: what it may ask for at all. A
//!    declaration that cannot be read, or a capability the engine cannot
//!    express ([`capabilities::compile`]), is an error, never a silently
//!    weaker or wider policy.
//! 4. **The operator's ceiling** cuts the declaration: what lies above it is
//!    refused, never offered to the user.
//! 5. **The grant store** (read again on every call: a revocation counts on
//!    the next call): a denial wins; allow-always decisions pinned to this
//!    identity cover what they cover; the rest is *missing*.
//! 6. The backend applies only what is granted (plus a one-time approval
//!    for exactly this call, see [`super::once`]) to the base policy.

use std::path::{Path, PathBuf};

use super::attribution::{self, Attribution, Resolve, SkillPaths, SkillRoot};
use super::capabilities::{self, intersect, Context, Grant, Request};
use super::grants::{Decision, Grants};
use super::identity;
use super::manifest;

/// A skill the caller knows of: its name, its directory on the host, and
/// the other paths commands may name it by (its copy's path in the sandbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSkill {
    pub name: String,
    pub dir: PathBuf,
    /// `(written, host)`: a path commands use for the skill's directory and
    /// the host directory it stands for.
    pub mapped: Vec<(PathBuf, PathBuf)>,
}

impl KnownSkill {
    /// Its paths for attribution, under `key` (its index: two directories
    /// may hold skills of the same name, and each is judged by its own code).
    fn paths(&self, key: usize) -> SkillPaths {
        let mut roots = vec![SkillRoot::host(&self.dir)];
        roots.extend(self.mapped.iter().map(|(w, h)| SkillRoot::mapped(w, h)));
        SkillPaths { name: key.to_string(), roots }
    }
}

/// What one call attributed to a skill may do, and what it lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkillCall {
    pub name: String,
    /// The skill's directory on the host.
    pub dir: PathBuf,
    /// The file of the skill's code the command runs.
    pub host_file: PathBuf,
    /// The program the command starts (absolute: the skill's file or the
    /// interpreter) and its words after quote removal (`argv[0]` as written).
    pub program: PathBuf,
    pub argv: Vec<String>,
    /// Where the skill's own file is in `argv` (0: the program itself).
    pub code_at: usize,
    /// `sha256:<hex>` of the directory now.
    pub identity: String,
    /// What the skill declares.
    pub declared: Vec<Request>,
    /// Declared, but above the operator's ceiling: refused, never offered.
    pub above_ceiling: Vec<Request>,
    /// Refused by a recorded denial.
    pub denied: Vec<Request>,
    /// Covered by allow-always decisions pinned to this identity.
    pub granted: Vec<Request>,
    /// Within the ceiling, neither granted nor denied: what a prompt asks for.
    pub missing: Vec<Request>,
    /// Destinations an earlier call of this skill was refused, as requests
    /// that would widen its grant ([`super::expand`]); a prompt may ask.
    pub expansion: Vec<Request>,
    /// Decisions recorded for other versions of this skill (it changed).
    pub stale: usize,
    /// What changed since the version last decided about, as prompt lines.
    pub changes: Option<String>,
    /// The directory's identity now (every entry), kept when a prompt asks
    /// about this version.
    pub current: Option<identity::Identity>,
    /// Why nothing of the skill can be granted (its declaration cannot be
    /// read, or asks for what the engine cannot express). The call is
    /// refused, not run with a different policy than asked for.
    pub error: Option<String>,
}

/// Which policy a call gets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Judgement {
    Baseline { reason: String },
    Skill(Box<SkillCall>),
}

/// What judging needs besides the command.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub skills: &'a [KnownSkill],
    pub grants: &'a Grants,
    /// The operator's ceiling (`None`: no ceiling beyond the declaration).
    pub ceiling: Option<&'a [Request]>,
    /// What the operator approves for every skill without asking (still
    /// only what a skill declares, within the ceiling; a denial wins).
    pub auto_approve: &'a [Request],
    /// The state directory, where the identities of earlier versions are
    /// kept (`identity::load_snapshot`): a changed skill's prompt says what
    /// changed. `None`: it only says that it changed.
    pub history: Option<&'a Path>,
    pub cx: Context<'a>,
}

/// Judge one `exec` call (steps 1–5 of the module header).
pub fn judge(command: &str, workdir: Option<&Path>, inputs: &Inputs, fs: &dyn Resolve) -> Judgement {
    let paths: Vec<SkillPaths> = inputs.skills.iter().enumerate().map(|(i, s)| s.paths(i)).collect();
    let (key, host_file, program, argv, code_at) = match attribution::attribute(command, workdir, &paths, fs) {
        Attribution::Skill { name, host_file, program, argv, code_at, .. } => (name, host_file, program, argv, code_at),
        Attribution::Baseline { reason } => {
            // Reasons name skills by their key here: give them their names back.
            let reason = inputs.skills.iter().enumerate().fold(reason, |r, (i, s)| r.replace(&format!("skill `{i}`"), &format!("skill `{}`", s.name)));
            return Judgement::Baseline { reason };
        }
    };
    let Some(skill) = key.parse::<usize>().ok().and_then(|i| inputs.skills.get(i)) else {
        return Judgement::Baseline { reason: "the call's skill is not known".into() };
    };
    let mut call = judge_skill(skill, host_file, inputs);
    call.program = program;
    call.argv = argv;
    call.code_at = code_at;
    Judgement::Skill(Box::new(call))
}

/// Steps 2–5 for a call known to run `skill`'s code (`host_file`).
pub fn judge_skill(skill: &KnownSkill, host_file: PathBuf, inputs: &Inputs) -> SkillCall {
    let mut call = SkillCall { name: skill.name.clone(), dir: skill.dir.clone(), host_file, ..SkillCall::default() };
    match identity::identify(&skill.dir) {
        Ok(id) => {
            call.identity = id.digest.clone();
            call.current = Some(id);
        }
        Err(e) => {
            call.error = Some(format!("the skill's directory cannot be identified: {e}"));
            return call;
        }
    }
    call.stale = inputs.grants.stale(&skill.name, &call.identity);
    if call.stale > 0 {
        call.changes = what_changed(&skill.name, &call, inputs);
    }
    call.declared = match manifest::load_dir(&skill.dir) {
        Ok(d) => d.map(|d| d.capabilities).unwrap_or_default(),
        Err(e) => {
            call.error = Some(format!("its declaration cannot be used: {e}"));
            return call;
        }
    };
    if let Err(e) = capabilities::compile(&call.declared, &inputs.cx) {
        call.error = Some(format!("it asks for what sharkcage cannot enforce exactly: {e}"));
        return call;
    }
    let requested = match inputs.ceiling {
        Some(c) => {
            let i = intersect(&call.declared, c);
            call.above_ceiling = i.refused;
            i.allowed
        }
        None => call.declared.clone(),
    };
    let decided = |d: Decision| -> Vec<Request> {
        inputs.grants.for_skill(&skill.name).filter(|g| g.identity == call.identity && g.decision == d).map(|g| g.as_request()).collect()
    };
    let deny = decided(Decision::Deny);
    let mut allow = decided(Decision::AllowAlways);
    allow.extend(inputs.auto_approve.iter().cloned());
    let after_deny = intersect(&requested, &deny);
    call.denied = after_deny.allowed;
    let after_allow = intersect(&after_deny.refused, &allow);
    call.granted = after_allow.allowed;
    call.missing = after_allow.refused;
    // Approved widenings (scope entries beyond the declaration), still cut
    // by the ceiling and any denial.
    for extra in beyond(&decided(Decision::AllowAlways), &call.declared) {
        let within = match inputs.ceiling {
            Some(c) => intersect(&[extra], c).allowed,
            None => vec![extra],
        };
        for r in intersect(&within, &deny).refused {
            merge(&mut call.granted, r);
        }
    }
    call
}

/// The changes since the version of the skill last decided about.
fn what_changed(name: &str, call: &SkillCall, inputs: &Inputs) -> Option<String> {
    let state = inputs.history?;
    let last = inputs.grants.for_skill(name).filter(|g| g.identity != call.identity).max_by(|a, b| a.granted_at.cmp(&b.granted_at))?;
    let old = identity::load_snapshot(state, &last.identity)?;
    let changes = identity::diff(&old, call.current.as_ref()?);
    (!changes.is_empty()).then(|| identity::describe(&changes, 4))
}

/// The scope entries of `allow` that the declaration does not have.
fn beyond(allow: &[Request], declared: &[Request]) -> Vec<Request> {
    let mut out = Vec::new();
    for a in allow.iter().filter(|a| !a.scope.is_empty()) {
        for e in &a.scope {
            let one = Request { capability: a.capability, reason: String::new(), scope: vec![e.clone()] };
            if !intersect(std::slice::from_ref(&one), declared).refused.is_empty() {
                out.push(one);
            }
        }
    }
    out
}

/// Add `r` to `list`, joining the scope of a request of the same capability.
pub fn merge(list: &mut Vec<Request>, r: Request) {
    match list.iter_mut().find(|o| o.capability == r.capability) {
        Some(o) => {
            for s in r.scope {
                if !o.scope.contains(&s) {
                    o.scope.push(s);
                }
            }
        }
        None => list.push(r),
    }
}

impl SkillCall {
    /// What the call runs with: the granted requests plus `once` (a one-time
    /// approval of this exact call), each cut to what the declaration and
    /// the ceiling allow and no denial refuses.
    pub fn effective(&self, once: &[Request], once_expansion: &[Request]) -> Vec<Request> {
        let mut out = self.granted.clone();
        // The missing requests as declared, cut to what `once` covers: never a
        // scope or capability the declaration does not have.
        for r in intersect(&self.missing, once).allowed {
            merge(&mut out, r);
        }
        // A widening the user approved once (built by the gate by rule,
        // already cut by the ceiling when it was offered).
        for r in once_expansion {
            merge(&mut out, r.clone());
        }
        out
    }

    /// Ask to widen the grant for destinations earlier calls were refused
    /// (`(host, port)`); returns why any cannot be offered.
    pub fn ask_to_widen(&mut self, refused: &[(String, u16)], inputs: &Inputs) -> Vec<String> {
        if self.error.is_some() || refused.is_empty() {
            return vec![];
        }
        let (reqs, why) = super::expand::requests_for(refused, &inputs.cx);
        let mut have = self.granted.clone();
        for m in &self.missing {
            merge(&mut have, m.clone());
        }
        self.expansion = super::expand::cut(reqs, inputs.ceiling, &have);
        why
    }

    /// The grant `requests` mean (an error when one cannot be expressed).
    pub fn grant(&self, requests: &[Request], cx: &Context) -> Result<Grant, String> {
        capabilities::compile(requests, cx).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skills::capabilities::Capability;
    use crate::skills::grants::{By, GrantRecord};
    use crate::skills::attribution::HostFs;

    fn req(c: Capability, scope: &[&str]) -> Request {
        Request { capability: c, reason: "r".into(), scope: scope.iter().map(|s| s.to_string()).collect() }
    }

    fn skill_dir(t: &Path, manifest: &str) -> PathBuf {
        let d = t.join("skills/weather");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("SKILL.md"), manifest).unwrap();
        std::fs::write(d.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        d
    }

    const MD: &str = "---\nname: weather\ndescription: d\nmetadata: {\"sharkcage\": {\"version\": 1, \"capabilities\": [\
        {\"capability\": \"network.external\", \"reason\": \"api\", \"scope\": [\"api.example.com\"]},\
        {\"capability\": \"system.env\", \"reason\": \"key\", \"scope\": [\"WEATHER_KEY\"]}]}}\n---\nbody\n";

    fn record(id: &str, c: Capability, scope: &[&str], d: Decision) -> GrantRecord {
        GrantRecord { skill: "weather".into(), identity: id.into(), capability: c, scope: scope.iter().map(|s| s.to_string()).collect(), decision: d, granted_at: "2026-01-01T00:00:00Z".into(), by: By::Cli, approval_id: "ap-1".into() }
    }

    fn judge_with(dir: &Path, grants: &Grants, ceiling: Option<&[Request]>, command: &str) -> Judgement {
        let skills = vec![KnownSkill { name: "weather".into(), dir: dir.to_path_buf(), mapped: vec![] }];
        let ws = dir.parent().unwrap().parent().unwrap().to_path_buf();
        let inputs = Inputs { skills: &skills, grants, ceiling, auto_approve: &[], history: None, cx: Context { workspace: &ws, home: None, services: &[] } };
        judge(command, Some(&ws), &inputs, &HostFs)
    }

    fn skill(j: Judgement) -> SkillCall {
        match j {
            Judgement::Skill(s) => *s,
            other => panic!("expected a skill call, got {other:?}"),
        }
    }

    #[test]
    fn nothing_granted_everything_missing() {
        let t = tempfile::tempdir().unwrap();
        let d = skill_dir(t.path(), MD);
        let s = skill(judge_with(&d, &Grants::default(), None, &format!("sh {}/run.sh", d.display())));
        assert!(s.error.is_none(), "{:?}", s.error);
        assert!(s.granted.is_empty());
        assert_eq!(s.missing.len(), 2);
        assert!(s.effective(&[], &[]).is_empty(), "nothing granted means nothing applied");
    }

    #[test]
    fn a_compound_command_is_baseline() {
        let t = tempfile::tempdir().unwrap();
        let d = skill_dir(t.path(), MD);
        let j = judge_with(&d, &Grants::default(), None, &format!("sh {}/run.sh; curl evil.example", d.display()));
        assert!(matches!(j, Judgement::Baseline { .. }), "{j:?}");
    }

    #[test]
    fn grants_are_pinned_denials_win_and_the_ceiling_cuts() {
        let t = tempfile::tempdir().unwrap();
        let d = skill_dir(t.path(), MD);
        let cmd = format!("sh {}/run.sh", d.display());
        let id = skill(judge_with(&d, &Grants::default(), None, &cmd)).identity;
        let mut g = Grants::default();
        g.record(record(&id, Capability::NetworkExternal, &["api.example.com"], Decision::AllowAlways));
        g.record(record(&id, Capability::SystemEnv, &["WEATHER_KEY"], Decision::Deny));
        let s = skill(judge_with(&d, &g, None, &cmd));
        assert_eq!(s.granted.len(), 1);
        assert_eq!((s.granted[0].capability, s.granted[0].scope.clone()), (Capability::NetworkExternal, vec!["api.example.com".to_string()]));
        assert_eq!(s.denied.len(), 1);
        assert!(s.missing.is_empty());
        // A one-time approval cannot add what is denied.
        assert_eq!(s.effective(&[req(Capability::SystemEnv, &["WEATHER_KEY"])], &[]).len(), 1);
        // Changing the skill drops every grant.
        std::fs::write(d.join("run.sh"), "#!/bin/sh\necho changed\n").unwrap();
        let s2 = skill(judge_with(&d, &g, None, &cmd));
        assert!(s2.granted.is_empty() && s2.denied.is_empty());
        assert_eq!(s2.stale, 2);
        // The ceiling: only network.external within it; system.env above it.
        let ceiling = [req(Capability::NetworkExternal, &["*.example.com"])];
        let s3 = skill(judge_with(&d, &Grants::default(), Some(&ceiling), &cmd));
        assert_eq!(s3.above_ceiling.len(), 1);
        assert_eq!(s3.above_ceiling[0].capability, Capability::SystemEnv);
        assert_eq!(s3.missing.len(), 1);
    }

    #[test]
    fn an_approved_widening_counts_beyond_the_declaration_within_ceiling_and_denials() {
        let t = tempfile::tempdir().unwrap();
        let d = skill_dir(t.path(), MD);
        let cmd = format!("sh {}/run.sh", d.display());
        let id = skill(judge_with(&d, &Grants::default(), None, &cmd)).identity;
        let mut g = Grants::default();
        g.record(record(&id, Capability::NetworkExternal, &["api.example.com"], Decision::AllowAlways));
        g.record_widening(record(&id, Capability::NetworkExternal, &["cdn.example.org"], Decision::AllowAlways));
        let s = skill(judge_with(&d, &g, None, &cmd));
        assert_eq!(s.granted[0].scope, vec!["api.example.com".to_string(), "cdn.example.org".to_string()]);
        // The ceiling cuts a widening as it cuts the declaration.
        let ceiling = [req(Capability::NetworkExternal, &["*.example.com"]), req(Capability::SystemEnv, &[])];
        let s = skill(judge_with(&d, &g, Some(&ceiling), &cmd));
        assert_eq!(s.granted[0].scope, vec!["api.example.com".to_string()]);
        // Asking to widen: what is granted or missing is not asked again.
        let mut s = skill(judge_with(&d, &g, None, &cmd));
        let skills = vec![KnownSkill { name: "weather".into(), dir: d.clone(), mapped: vec![] }];
        let ws = t.path().to_path_buf();
        let inputs = Inputs { skills: &skills, grants: &g, ceiling: None, auto_approve: &[], history: None, cx: Context { workspace: &ws, home: None, services: &[] } };
        s.ask_to_widen(&[("cdn.example.org".into(), 443), ("new.example.net".into(), 443)], &inputs);
        assert_eq!(s.expansion.len(), 1);
        assert_eq!(s.expansion[0].scope, vec!["new.example.net".to_string()]);
    }

    #[test]
    fn auto_approved_capabilities_need_no_prompt_but_a_denial_still_wins() {
        let t = tempfile::tempdir().unwrap();
        let d = skill_dir(t.path(), MD);
        let cmd = format!("sh {}/run.sh", d.display());
        let skills = vec![KnownSkill { name: "weather".into(), dir: d.clone(), mapped: vec![] }];
        let ws = t.path().to_path_buf();
        let auto = [req(Capability::NetworkExternal, &[])];
        let g = Grants::default();
        let inputs = Inputs { skills: &skills, grants: &g, ceiling: None, auto_approve: &auto, history: None, cx: Context { workspace: &ws, home: None, services: &[] } };
        let s = skill(judge(&cmd, Some(&ws), &inputs, &HostFs));
        assert_eq!(s.granted.len(), 1);
        assert_eq!(s.granted[0].scope, vec!["api.example.com".to_string()], "only what the skill declares");
        assert_eq!(s.missing.len(), 1, "system.env is still asked for");
        let mut g = Grants::default();
        g.record(record(&s.identity, Capability::NetworkExternal, &[], Decision::Deny));
        let inputs = Inputs { grants: &g, ..inputs };
        let s = skill(judge(&cmd, Some(&ws), &inputs, &HostFs));
        assert!(s.granted.is_empty() && s.denied.len() == 1);
    }

    #[test]
    fn a_one_time_approval_applies_only_what_was_missing() {
        let t = tempfile::tempdir().unwrap();
        let d = skill_dir(t.path(), MD);
        let s = skill(judge_with(&d, &Grants::default(), None, &format!("sh {}/run.sh", d.display())));
        // A forged wider request: only the declared scope survives.
        let e = s.effective(&[req(Capability::NetworkExternal, &["api.example.com", "evil.example"]), req(Capability::SystemFilesWrite, &["/"])], &[]);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].capability, e[0].scope.clone()), (Capability::NetworkExternal, vec!["api.example.com".to_string()]));
    }

    #[test]
    fn an_inexpressible_declaration_is_an_error_not_a_policy() {
        let t = tempfile::tempdir().unwrap();
        let md = "---\nname: weather\ndescription: d\nmetadata: {\"sharkcage\": {\"version\": 1, \"capabilities\": [\
            {\"capability\": \"network.external\", \"reason\": \"api\", \"scope\": [\"localhost\"]}]}}\n---\n";
        let d = skill_dir(t.path(), md);
        let s = skill(judge_with(&d, &Grants::default(), None, &format!("sh {}/run.sh", d.display())));
        assert!(s.error.as_deref().is_some_and(|e| e.contains("local name")), "{:?}", s.error);
    }
}
