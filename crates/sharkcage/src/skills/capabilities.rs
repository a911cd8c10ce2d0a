//! The 19 capabilities a skill can ask for, and exactly what each grants.
//!
//! The names, labels and risk levels are the predecessor's (kept so existing
//! declarations and approval records stay valid). What changed is that each
//! one now has a precise mapping to the sandbox policy, and a request the
//! engine cannot express exactly is an error ([`CapabilityError`]) — never a
//! silently weaker or wider policy (the predecessor ignored unknown names,
//! treated a missing scope as "any host" and mapped several names to
//! nothing).
//!
//! | capability | what it adds |
//! |---|---|
//! | `network.external` | each scope entry to `network.allowedDomains` (`host`, `*.suffix`, `host:port`; public destinations only: no `*`, no local names, no private/loopback IP literals) |
//! | `network.internal` | each scope entry (`host:port`, exact) to `network.allowedDomains` (exact entries reach local addresses through the proxy) |
//! | `system.files.read` | each scope path to `filesystem.allowRead` |
//! | `system.files.write` | each scope path to `filesystem.allowWrite` |
//! | `system.exec` | [`Exec::Any`]: the skill may start other programs (without it [`Exec::SkillOnly`]) |
//! | `system.env` | each named variable: injected by sharkcage ([`Grant::inject_env`]) and named in the policy's `env` |
//! | `home.*`, `data.*`, `fleet.*`, `notify.*`, `cost.api` | the serving [`Service`]'s endpoint to `network.allowedDomains`, its credential variables injected |
//!
//! Scope paths are absolute, `~/…` or relative to the workspace; no `..`,
//! no glob characters, never inside a mandatory read-deny. The launcher
//! checks again after resolving symlinks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::policy::{paths, PathEntry, Policy};
use crate::proxy::guard;
use crate::proxy::host::{canonicalize, split_host_port, Host};
use crate::proxy::rules::Pattern;

/// How much a capability lets a skill do, as the approval prompt shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
    Dangerous,
}

impl Risk {
    /// The predecessor's one-character icon (`.`, `~`, `!`, `X`).
    pub fn icon(self) -> char {
        match self {
            Risk::Low => '.',
            Risk::Medium => '~',
            Risk::High => '!',
            Risk::Dangerous => 'X',
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Dangerous => "dangerous",
        }
    }
}

/// How a capability maps to the policy (the rows of the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    External,
    Internal,
    FilesRead,
    FilesWrite,
    Exec,
    Env,
    /// Served by a configured [`Service`] of this family.
    Service,
}

macro_rules! capabilities {
    ($( $v:ident = $name:literal, $label:literal, $risk:ident, $kind:ident, $desc:literal; )*) => {
        /// One of the 19 capability names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Capability { $( $v, )* }

        /// Every capability, in the predecessor's order.
        pub const ALL: &[Capability] = &[ $( Capability::$v, )* ];

        impl Capability {
            pub fn name(self) -> &'static str { match self { $( Capability::$v => $name, )* } }
            /// The predecessor's short label ("External Network").
            pub fn label(self) -> &'static str { match self { $( Capability::$v => $label, )* } }
            pub fn risk(self) -> Risk { match self { $( Capability::$v => Risk::$risk, )* } }
            pub fn kind(self) -> Kind { match self { $( Capability::$v => Kind::$kind, )* } }
            /// What granting it means, in plain words, for approval prompts.
            pub fn description(self) -> &'static str { match self { $( Capability::$v => $desc, )* } }
        }
    };
}

capabilities! {
    NetworkExternal = "network.external", "External Network", Medium, External,
        "connect to the listed internet hosts (and nothing else) through sharkcage's proxy";
    NetworkInternal = "network.internal", "Internal Network", Medium, Internal,
        "connect to the listed local services (exact host:port) through sharkcage's proxy";
    HomeRead = "home.read", "Read Home State", Low, Service,
        "reach the configured home-automation service with its credentials, to read state";
    HomeControl = "home.control", "Control Devices", Medium, Service,
        "reach the configured home-automation service with its credentials, to control devices";
    HomeAutomation = "home.automation", "Trigger Automations", Medium, Service,
        "reach the configured home-automation service with its credentials, to trigger automations";
    DataMeals = "data.meals", "Meal Data", Low, Service,
        "reach the configured meal-data service with its credentials";
    DataHistory = "data.history", "Conversation History", Medium, Service,
        "reach the configured conversation-history service with its credentials";
    DataMemory = "data.memory", "Long-term Memory", Medium, Service,
        "reach the configured long-term memory service with its credentials";
    DataPreferences = "data.preferences", "User Preferences", Low, Service,
        "reach the configured user-preferences service with its credentials";
    FleetDispatch = "fleet.dispatch", "Dispatch Tasks", Medium, Service,
        "reach the configured fleet scheduler with its credentials, to dispatch tasks";
    FleetRead = "fleet.read", "Fleet Status", Low, Service,
        "reach the configured fleet scheduler with its credentials, to read status";
    FleetManage = "fleet.manage", "Manage Fleet", High, Service,
        "reach the configured fleet scheduler with its credentials, to manage the fleet";
    NotifySignal = "notify.signal", "Send Messages", High, Service,
        "reach the configured messaging service with its credentials, to send messages in your name";
    NotifyPush = "notify.push", "Push Notifications", Low, Service,
        "reach the configured push-notification service with its credentials";
    SystemFilesRead = "system.files.read", "Read Files", High, FilesRead,
        "read the listed files and folders, even where the sandbox would hide them (never secrets sharkcage always hides)";
    SystemFilesWrite = "system.files.write", "Write Files", Dangerous, FilesWrite,
        "change, create and delete files in the listed folders";
    SystemExec = "system.exec", "Run Programs", Dangerous, Exec,
        "start any program it can read, not only its own entry and interpreter";
    SystemEnv = "system.env", "Environment Variables", High, Env,
        "receive the values of the listed variables, which sharkcage injects into this skill's sandbox only";
    CostApi = "cost.api", "Paid API Calls", Medium, Service,
        "reach the configured paid API with its key (this can cost money)";
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Capability {
    pub fn from_name(s: &str) -> Option<Capability> {
        ALL.iter().copied().find(|c| c.name() == s)
    }

    /// The closest known name, for "did you mean" (edit distance ≤ 3, or a
    /// name ending with what was written, such as `exec` → `system.exec`).
    pub fn suggest(s: &str) -> Option<Capability> {
        let lower = s.to_ascii_lowercase();
        if let Some(c) = Capability::from_name(&lower) {
            return Some(c);
        }
        let best = ALL.iter().copied().map(|c| (strsim::damerau_levenshtein(&lower, c.name()), c)).min_by_key(|(d, _)| *d);
        match best {
            Some((d, c)) if d <= 3 => Some(c),
            _ => ALL.iter().copied().find(|c| !lower.is_empty() && c.name().ends_with(&format!(".{lower}"))),
        }
    }

    /// The service family: the part before the first dot (`home`, `data`, …).
    pub fn family(self) -> &'static str {
        self.name().split('.').next().unwrap_or_default()
    }
}

impl Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Capability::from_name(&s).ok_or_else(|| serde::de::Error::custom(unknown_message(&s)))
    }
}

/// "unknown capability "x"; did you mean …?" with the list of names.
pub fn unknown_message(s: &str) -> String {
    let hint = match Capability::suggest(s) {
        Some(c) => format!("did you mean \"{}\"? ", c.name()),
        None => String::new(),
    };
    let names: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
    format!("unknown capability {s:?}; {hint}known: {}", names.join(", "))
}

/// One requested (or granted) capability with its scope, as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub capability: Capability,
    /// Why the skill needs it, in the author's words (shown at approval).
    pub reason: String,
    /// What exactly: hosts, paths, variable names or service names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
}

/// A service that sharkcage holds the endpoint and credentials of
/// (`sc config add-service`). `family` is a capability-name prefix at a
/// dot boundary: `home` serves `home.read`, `home.control` and
/// `home.automation`; `data.meals` serves only `data.meals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Service {
    pub name: String,
    pub family: String,
    /// `host:port` (the port is required), reached as an exact entry.
    pub endpoint: String,
    /// Variables whose values sharkcage injects (`HA_URL`, `HA_TOKEN`).
    #[serde(default)]
    pub credential_env: Vec<String>,
}

impl Service {
    /// Does this service serve `c`?
    pub fn serves(&self, c: Capability) -> bool {
        c.kind() == Kind::Service && (c.name() == self.family || c.name().starts_with(&format!("{}.", self.family)))
    }

    fn check(&self) -> Result<(), CapabilityError> {
        let bad = |why: String| Err(CapabilityError::BadService { service: self.name.clone(), why });
        if !ALL.iter().any(|c| self.serves(*c)) {
            return bad(format!("family {:?} serves no capability (use home, data, fleet, notify, cost or one full name such as data.meals)", self.family));
        }
        if let Err(why) = exact_host_port(&self.endpoint) {
            return bad(format!("endpoint {:?}: {why}", self.endpoint));
        }
        for n in &self.credential_env {
            if let Err(why) = injectable_name(n) {
                return bad(format!("credential variable {n:?}: {why}"));
            }
        }
        Ok(())
    }
}

/// Check a service as `sc config add-service` stores it.
pub fn check_service(s: &Service) -> Result<(), CapabilityError> {
    s.check()
}

/// Where the skill's sandbox may start programs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exec {
    /// Only the skill's own entry and its interpreter (no `system.exec`).
    #[default]
    SkillOnly,
    /// Any program the sandbox can read (`system.exec`).
    Any,
}

/// Where an injected variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnvSource {
    /// The skill's own configuration (`system.env`).
    Skill,
    /// The named service's credentials.
    Service(String),
}

/// The policy keys a grant adds, in the policy file's own shape (what
/// [`Policy::from_json`] reads). Empty lists are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyFragment {
    #[serde(skip_serializing_if = "FsFragment::is_empty")]
    pub filesystem: FsFragment,
    #[serde(skip_serializing_if = "NetFragment::is_empty")]
    pub network: NetFragment,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FsFragment {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_read: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_write: Vec<String>,
}

impl PolicyFragment {
    /// Add these entries to a policy in its JSON form (each once; paths as
    /// literal entries). The result is still to be checked by
    /// [`Policy::from_json`], as every policy is.
    pub fn merge_into(&self, policy: &mut serde_json::Value) -> Result<(), String> {
        use serde_json::{json, Value};
        if !policy.is_object() {
            return Err("the policy is not a JSON object".into());
        }
        fn list<'a>(v: &'a mut Value, path: &[&str]) -> Result<&'a mut Vec<Value>, String> {
            let mut cur = v;
            for (i, k) in path.iter().enumerate() {
                let obj = cur.as_object_mut().ok_or_else(|| format!("{} is not an object", path[..i].join(".")))?;
                let last = i + 1 == path.len();
                cur = obj.entry(k.to_string()).or_insert_with(|| if last { json!([]) } else { json!({}) });
            }
            cur.as_array_mut().ok_or_else(|| format!("{} is not a list", path.join(".")))
        }
        let add = |v: &mut Value, path: &[&str], items: Vec<Value>| -> Result<(), String> {
            let l = list(v, path)?;
            for i in items {
                if !l.contains(&i) {
                    l.push(i);
                }
            }
            Ok(())
        };
        let paths = |ps: &[String]| ps.iter().map(|p| json!({ "path": p, "literal": true })).collect::<Vec<_>>();
        add(policy, &["filesystem", "allowRead"], paths(&self.filesystem.allow_read))?;
        add(policy, &["filesystem", "allowWrite"], paths(&self.filesystem.allow_write))?;
        add(policy, &["network", "allowedDomains"], self.network.allowed_domains.iter().map(|d| json!(d)).collect())?;
        add(policy, &["env"], self.env.iter().map(|d| json!(d)).collect())
    }
}

impl FsFragment {
    fn is_empty(&self) -> bool {
        self.allow_read.is_empty() && self.allow_write.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetFragment {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_domains: Vec<String>,
}

impl NetFragment {
    fn is_empty(&self) -> bool {
        self.allowed_domains.is_empty()
    }
}

/// Exactly what a set of granted capabilities means.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub policy: PolicyFragment,
    pub exec: Exec,
    /// Variables whose values sharkcage injects into this skill's sandbox
    /// only; each is also named in `policy.env` so the secret filter lets
    /// the injected value through.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub inject_env: BTreeMap<String, EnvSource>,
}

/// A base policy with a grant applied.
#[derive(Debug, Clone)]
pub struct SkillPolicy {
    pub policy: Policy,
    pub exec: Exec,
    pub inject_env: BTreeMap<String, EnvSource>,
}

/// What [`compile`] needs besides the requests.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Relative scope paths are relative to this (absolute) directory.
    pub workspace: &'a Path,
    /// The home `~/` and the home-relative mandatory denies refer to.
    pub home: Option<&'a Path>,
    pub services: &'a [Service],
}

/// A capability or scope that cannot be granted as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CapabilityError {
    #[error("{capability}: needs a scope: {why}")]
    NoScope { capability: Capability, why: &'static str },
    #[error("{capability}: takes no scope: {why}")]
    ScopeNotAccepted { capability: Capability, why: &'static str },
    #[error("{capability}: scope[{index}] {entry:?}: {why}")]
    BadScope { capability: Capability, index: usize, entry: String, why: String },
    #[error("{capability}: no service of family {family:?} is configured; add one with `sc config add-service`")]
    NoService { capability: Capability, family: &'static str },
    #[error("{capability}: several services serve it ({}); name one in the scope", services.join(", "))]
    AmbiguousService { capability: Capability, services: Vec<String> },
    #[error("service {service:?}: {why}")]
    BadService { service: String, why: String },
    #[error("{capability}: declared twice; merge the scopes into one entry")]
    Duplicate { capability: Capability },
}

/// The grant a set of capabilities means. Errors on the first request that
/// cannot be expressed exactly.
pub fn compile(requests: &[Request], cx: &Context) -> Result<Grant, CapabilityError> {
    let mut g = Grant::default();
    let mut seen = BTreeSet::new();
    for r in requests {
        if !seen.insert(r.capability) {
            return Err(CapabilityError::Duplicate { capability: r.capability });
        }
        add(&mut g, r, cx)?;
    }
    g.policy.env = g.inject_env.keys().cloned().collect();
    Ok(g)
}

/// `base` with the grant of `requests` applied.
pub fn apply(requests: &[Request], cx: &Context, base: &Policy) -> Result<SkillPolicy, CapabilityError> {
    let g = compile(requests, cx)?;
    Ok(g.applied_to(base))
}

impl Grant {
    /// `base` plus this grant's entries (each added once).
    pub fn applied_to(&self, base: &Policy) -> SkillPolicy {
        let mut p = base.clone();
        let entry = |s: &String| PathEntry { path: s.clone(), literal: true };
        push_new(&mut p.filesystem.allow_read, self.policy.filesystem.allow_read.iter().map(entry));
        push_new(&mut p.filesystem.allow_write, self.policy.filesystem.allow_write.iter().map(entry));
        push_new(&mut p.network.allowed_domains, self.policy.network.allowed_domains.iter().cloned());
        push_new(&mut p.env, self.policy.env.iter().cloned());
        SkillPolicy { policy: p, exec: self.exec, inject_env: self.inject_env.clone() }
    }
}

fn push_new<T: PartialEq>(v: &mut Vec<T>, items: impl Iterator<Item = T>) {
    for i in items {
        if !v.contains(&i) {
            v.push(i);
        }
    }
}

fn add(g: &mut Grant, r: &Request, cx: &Context) -> Result<(), CapabilityError> {
    let c = r.capability;
    let bad = |index: usize, why: String| CapabilityError::BadScope { capability: c, index, entry: r.scope[index].clone(), why };
    match c.kind() {
        Kind::External => {
            need_scope(r, "list the hosts (example.com, *.example.com, host:port); \"any host\" cannot be granted")?;
            for (i, e) in r.scope.iter().enumerate() {
                external_entry(e).map_err(|w| bad(i, w))?;
                push_new(&mut g.policy.network.allowed_domains, std::iter::once(e.clone()));
            }
        }
        Kind::Internal => {
            need_scope(r, "list each local service as host:port")?;
            for (i, e) in r.scope.iter().enumerate() {
                internal_entry(e).map_err(|w| bad(i, w))?;
                push_new(&mut g.policy.network.allowed_domains, std::iter::once(e.clone()));
            }
        }
        Kind::FilesRead | Kind::FilesWrite => {
            need_scope(r, "list the files or folders")?;
            for (i, e) in r.scope.iter().enumerate() {
                let p = scope_path(e, cx).map_err(|w| bad(i, w))?;
                let list = if c.kind() == Kind::FilesRead { &mut g.policy.filesystem.allow_read } else { &mut g.policy.filesystem.allow_write };
                push_new(list, std::iter::once(p));
            }
        }
        Kind::Exec => {
            if !r.scope.is_empty() {
                return Err(CapabilityError::ScopeNotAccepted {
                    capability: c,
                    why: "the sandbox cannot limit which programs run; without system.exec only the skill's own entry and interpreter may",
                });
            }
            g.exec = Exec::Any;
        }
        Kind::Env => {
            need_scope(r, "list the variable names")?;
            for (i, n) in r.scope.iter().enumerate() {
                injectable_name(n).map_err(|w| bad(i, w))?;
                if let Some(s) = cx.services.iter().find(|s| s.credential_env.contains(n)) {
                    return Err(bad(i, format!("a credential of service {:?}; request its capability instead", s.name)));
                }
                inject(g, n, EnvSource::Skill).map_err(|w| bad(i, w))?;
            }
        }
        Kind::Service => add_service(g, r, cx)?,
    }
    Ok(())
}

fn need_scope(r: &Request, why: &'static str) -> Result<(), CapabilityError> {
    if r.scope.is_empty() {
        return Err(CapabilityError::NoScope { capability: r.capability, why });
    }
    Ok(())
}

fn inject(g: &mut Grant, name: &str, from: EnvSource) -> Result<(), String> {
    match g.inject_env.get(name) {
        Some(prev) if *prev != from => Err(format!("also injected from {prev:?}; one variable, one source")),
        _ => {
            g.inject_env.insert(name.to_string(), from);
            Ok(())
        }
    }
}

fn add_service(g: &mut Grant, r: &Request, cx: &Context) -> Result<(), CapabilityError> {
    let c = r.capability;
    let serving: Vec<&Service> = cx.services.iter().filter(|s| s.serves(c)).collect();
    let chosen: Vec<&Service> = if r.scope.is_empty() {
        match serving.as_slice() {
            [] => return Err(CapabilityError::NoService { capability: c, family: c.family() }),
            [one] => vec![*one],
            many => return Err(CapabilityError::AmbiguousService { capability: c, services: many.iter().map(|s| s.name.clone()).collect() }),
        }
    } else {
        let mut v = Vec::new();
        for (i, name) in r.scope.iter().enumerate() {
            let s = serving.iter().find(|s| &s.name == name).ok_or_else(|| CapabilityError::BadScope {
                capability: c,
                index: i,
                entry: name.clone(),
                why: format!("no configured service of that name serves {c} (configured: {})", names(&serving)),
            })?;
            v.push(*s);
        }
        v
    };
    for s in chosen {
        s.check()?;
        push_new(&mut g.policy.network.allowed_domains, std::iter::once(s.endpoint.clone()));
        for n in &s.credential_env {
            inject(g, n, EnvSource::Service(s.name.clone())).map_err(|why| CapabilityError::BadService { service: s.name.clone(), why: format!("{n}: {why}") })?;
        }
    }
    Ok(())
}

fn names(s: &[&Service]) -> String {
    if s.is_empty() {
        return "none".into();
    }
    s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Names that only `localhost`-like or site-local networks resolve.
const LOCAL_SUFFIXES: &[&str] = &["localhost", "local", "internal", "home.arpa", "lan", "intranet", "corp", "consul"];

fn external_entry(e: &str) -> Result<(), String> {
    if e == "*" || e.starts_with("*:") {
        return Err("\"*\" would allow every host; list the hosts".into());
    }
    Pattern::parse(e, false)?;
    let (h, _) = split_host_port(e).map_err(|_| "expected host, *.suffix or host:port".to_string())?;
    let bare = h.strip_prefix("*.").unwrap_or(h);
    match canonicalize(bare.trim_start_matches('[').trim_end_matches(']')) {
        Ok(Host::Ip(ip)) => public_ip(ip),
        Ok(Host::Name(n)) => {
            if LOCAL_SUFFIXES.iter().any(|s| n == *s || n.ends_with(&format!(".{s}"))) {
                return Err("a local name; use network.internal for local services".into());
            }
            Ok(())
        }
        Err(err) => Err(err.to_string()),
    }
}

fn public_ip(ip: IpAddr) -> Result<(), String> {
    match guard::classify(ip) {
        Some(class) => Err(format!("a {class} address; network.external is for public destinations (use network.internal for local services)")),
        None => Ok(()),
    }
}

/// `host:port`, exact (no wildcard), port given.
fn exact_host_port(e: &str) -> Result<(), String> {
    let (_, port) = split_host_port(e).map_err(|_| "expected host:port".to_string())?;
    let p = Pattern::parse(e, false)?;
    if !p.is_exact() {
        return Err("a wildcard; name each service exactly as host:port".into());
    }
    if port.is_none() {
        return Err("no port; write host:port".into());
    }
    if let Some(ip) = p.ip() {
        if let Some(class @ ("cloud-metadata" | "link-local" | "unspecified" | "multicast" | "broadcast" | "reserved")) = guard::classify(ip) {
            return Err(format!("a {class} address, never a service"));
        }
    }
    Ok(())
}

fn internal_entry(e: &str) -> Result<(), String> {
    exact_host_port(e)
}

/// Variables the launcher always sets itself (a skill's value would be
/// overwritten), or that steer which program runs.
const LAUNCHER_ENV: &[&str] = &[
    "HOME", "TMPDIR", "PWD", "PATH", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
    "NO_PROXY", "no_proxy", "NODE_USE_ENV_PROXY", "GIT_SSH_COMMAND",
];

/// A variable name sharkcage can inject: a plain name (no `PREFIX*`
/// pattern: a value is injected per name), not one the launcher sets.
fn injectable_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 255
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !n.as_bytes()[0].is_ascii_digit();
    if n.ends_with('*') {
        return Err("a pattern; name each variable exactly (sharkcage injects values by name)".into());
    }
    if !ok {
        return Err("not a variable name (letters, digits, _; not starting with a digit)".into());
    }
    if LAUNCHER_ENV.contains(&n) {
        return Err("set by the launcher for every call; a skill cannot replace it".into());
    }
    if n.to_ascii_uppercase().starts_with("SHARKCAGE_") {
        return Err("SHARKCAGE_* names are reserved for sharkcage".into());
    }
    Ok(())
}

/// A scope path as the policy entry it becomes: `~/…` kept (the launcher
/// resolves it per call), relative ones joined to the workspace.
fn scope_path(e: &str, cx: &Context) -> Result<String, String> {
    if e.is_empty() || e.contains('\0') {
        return Err("an empty path or one with a NUL byte".into());
    }
    if e.contains(['*', '?', '[', ']', '{', '}']) {
        return Err("glob characters; list each path (the approval shows exactly what is granted)".into());
    }
    if Path::new(e).components().any(|c| c == Component::ParentDir) {
        return Err("\"..\"; write the path without it".into());
    }
    let (text, abs) = if e == "~" || e.starts_with("~/") {
        let home = cx.home.ok_or("no home directory is known for ~")?;
        (e.to_string(), home.join(e.trim_start_matches('~').trim_start_matches('/')))
    } else if e.starts_with('~') {
        return Err("~user paths are not supported; write ~/… or an absolute path".into());
    } else if e.starts_with('/') {
        (e.to_string(), PathBuf::from(e))
    } else {
        if !cx.workspace.is_absolute() {
            return Err("relative, and the workspace is not known as an absolute path".into());
        }
        let p = cx.workspace.join(e);
        (p.display().to_string(), p)
    };
    let abs = paths::normalize(&abs);
    if let Some(m) = mandatory_deny(&abs, cx.home) {
        return Err(format!("inside the mandatory read-deny {}, which no grant can lift", m.display()));
    }
    let out = text.trim_end_matches('/');
    Ok(if out.is_empty() { "/".to_string() } else { out.to_string() })
}

/// The mandatory read-deny `p` is (or is inside), if any.
fn mandatory_deny(p: &Path, home: Option<&Path>) -> Option<PathBuf> {
    let mut all: Vec<PathBuf> = paths::MANDATORY_DENY_READ_ABS
        .iter()
        .chain(paths::MANDATORY_DENY_READ_ROOT)
        .chain(paths::MANDATORY_DENY_READ_RUN)
        .map(PathBuf::from)
        .collect();
    if let Some(h) = home {
        all.extend(paths::MANDATORY_DENY_READ_HOME.iter().map(|r| h.join(r)));
    }
    all.into_iter().find(|m| p.starts_with(m))
}

/// The part of `requested` an operator ceiling allows, and what it refuses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intersection {
    pub allowed: Vec<Request>,
    /// Requests (or the scope entries of one) outside the ceiling.
    pub refused: Vec<Request>,
}

/// `requested ∩ ceiling`. A ceiling entry with an empty scope allows any
/// scope of that capability; otherwise each requested scope entry must be
/// covered by a ceiling entry: the same string, a `*.suffix` host entry
/// covering a subdomain (same port rule), or a path covering a path below
/// it. A request whose scope is partly covered is split.
pub fn intersect(requested: &[Request], ceiling: &[Request]) -> Intersection {
    let mut out = Intersection::default();
    for r in requested {
        let Some(cap) = ceiling.iter().find(|c| c.capability == r.capability) else {
            out.refused.push(r.clone());
            continue;
        };
        if cap.scope.is_empty() {
            out.allowed.push(r.clone());
            continue;
        }
        if r.scope.is_empty() {
            out.refused.push(r.clone());
            continue;
        }
        let (inside, outside): (Vec<String>, Vec<String>) = r.scope.iter().cloned().partition(|e| cap.scope.iter().any(|c| covers(r.capability, c, e)));
        if !inside.is_empty() {
            out.allowed.push(Request { scope: inside, ..r.clone() });
        }
        if !outside.is_empty() {
            out.refused.push(Request { scope: outside, ..r.clone() });
        }
    }
    out
}

fn covers(c: Capability, ceiling: &str, entry: &str) -> bool {
    if ceiling == entry {
        return true;
    }
    match c.kind() {
        Kind::External | Kind::Internal => host_covers(ceiling, entry),
        Kind::FilesRead | Kind::FilesWrite => !ceiling.is_empty() && Path::new(entry).starts_with(ceiling) && !entry.contains("/../"),
        _ => false,
    }
}

fn host_covers(ceiling: &str, entry: &str) -> bool {
    let (Ok((ch, cp)), Ok((eh, ep))) = (split_host_port(ceiling), split_host_port(entry)) else { return false };
    if cp.is_some() && cp != ep {
        return false;
    }
    if cp.is_none() && ep.is_some_and(|p| !crate::proxy::rules::DEFAULT_PORTS.contains(&p)) {
        return false;
    }
    let Some(suffix) = ch.strip_prefix("*.") else { return false };
    let Ok(Host::Name(suffix)) = canonicalize(suffix) else { return false };
    let bare = eh.strip_prefix("*.").unwrap_or(eh);
    match canonicalize(bare) {
        Ok(Host::Name(n)) => n.len() > suffix.len() + 1 && n.ends_with(&format!(".{suffix}")),
        _ => false,
    }
}
