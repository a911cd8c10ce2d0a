//! The gateway's proxy: one `sharkcage::proxy::Proxy` on the addon's Tokio
//! runtime, serving every sandbox this process starts.
//!
//! Started on first use. Each `exec`/`buildExecArgv` call with network
//! registers the call's rules and labels under a one-time ticket and passes
//! `--net-attach=SOCKET` to the launcher, and the ticket in the call's spec
//! (off the command line, see `sharkcage::callspec`); the launcher hands the
//! sandbox's listeners over (see `proxy/attach.rs`). If the gateway cannot
//! start (for example a state directory path too long for a unix socket),
//! calls go without the attach options and the launcher serves its own
//! proxy with the same rules, and says so in its violations.
//!
//! Scopes: a call may name a scope (an OpenClaw skill, say); `setNetworkPolicy`
//! replaces that scope's extra rules, and every running sandbox of the scope
//! uses them for its next connection.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use sharkcage::proxy::attach::Gateway;
use sharkcage::proxy::resolve::SystemResolver;
use sharkcage::proxy::rules::NetRules;
use sharkcage::proxy::{Labels, NetLimits, Proxy};

use crate::error::AddonError;

static GATEWAY: OnceLock<Result<Arc<Gateway>, String>> = OnceLock::new();

/// Longest unix socket path (sun_path is 108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

fn socket_path() -> Result<PathBuf, String> {
    let dir = sharkcage::fileio::state_dir().ok_or("no state directory (HOME is not set)")?.join("run");
    let p = dir.join(format!("proxy-{}.sock", std::process::id()));
    if p.as_os_str().len() > SUN_PATH_MAX {
        return Err(format!("{} is too long for a unix socket", p.display()));
    }
    // Sockets of gateways that are gone.
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("proxy-").and_then(|r| r.strip_suffix(".sock")).and_then(|p| p.parse::<u32>().ok()) {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    Ok(p)
}

/// The gateway, started on first use (on napi's runtime).
pub fn gateway() -> Result<Arc<Gateway>, String> {
    GATEWAY
        .get_or_init(|| {
            let path = socket_path()?;
            // Open the audit log here (on the caller's thread), not in the
            // first proxy event on a runtime worker: opening verifies the chain.
            let _ = crate::audit::audit();
            let proxy = Proxy::new(Arc::new(SystemResolver::default()));
            // Every proxy decision goes to the audit log too.
            proxy.set_sink(Some(Arc::new(|ev: &sharkcage::proxy::NetEvent| {
                if let Ok(a) = crate::audit::audit() {
                    a.submit(sharkcage::audit::events::net(ev));
                }
            })));
            napi::bindgen_prelude::within_runtime_if_available(|| Gateway::start(proxy, path)).map_err(|e| e.to_string())
        })
        .clone()
}

/// Who a call works for, and the scope whose approvals apply to it.
#[napi_derive::napi(object)]
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    /// OpenClaw session key.
    pub session: Option<String>,
    pub agent: Option<String>,
    pub skill: Option<String>,
    /// The tool call this sandbox runs.
    pub tool_call: Option<String>,
    /// Rules set with `setNetworkPolicy(scope, …)` apply to this call too,
    /// including changes made while it runs.
    pub scope: Option<String>,
}

/// This call's hand-over to the gateway's proxy: the socket (on the
/// launcher's argv, `--net-attach`) and the one-time ticket (in the call's
/// spec, never on argv).
#[derive(Debug, Clone)]
pub struct Attach {
    pub socket: PathBuf,
    pub ticket: String,
}

impl Attach {
    pub fn arg(&self) -> String {
        format!("--net-attach={}", self.socket.display())
    }
}

/// Register the call with the gateway's proxy, or not (no network: no
/// domains and no scope; or no gateway: the launcher serves its own proxy).
pub fn attach(pol: &sharkcage::policy::Policy, opts: Option<&NetworkOptions>) -> Result<Option<Attach>, AddonError> {
    let n = &pol.network;
    let rules = NetRules::compile(&n.allowed_domains, &n.denied_domains, &n.denied_domain_reasons).map_err(AddonError::Policy)?;
    let scope = opts.and_then(|o| o.scope.clone()).filter(|s| !s.is_empty());
    if rules.is_empty() && scope.is_none() {
        return Ok(None);
    }
    let Ok(gw) = gateway() else { return Ok(None) };
    let labels = opts
        .map(|o| Labels { session: o.session.clone(), agent: o.agent.clone(), skill: o.skill.clone(), tool_call: o.tool_call.clone() })
        .unwrap_or_default();
    let ticket = gw.register(labels, rules, scope, NetLimits::default()).map_err(|e| AddonError::Spawn(format!("cannot register the call with the proxy: {e}")))?;
    Ok(Some(Attach { socket: gw.socket_path().to_path_buf(), ticket }))
}

/// `setNetworkPolicy`'s argument: the domain keys of a policy's `network`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScopeRules {
    #[serde(default)]
    allowed_domains: Vec<String>,
    #[serde(default)]
    denied_domains: Vec<String>,
    #[serde(default)]
    denied_domain_reasons: std::collections::BTreeMap<String, String>,
}

/// Replace a scope's rules; new connections of its sandboxes use them.
pub fn set_scope(scope: &str, json: &str) -> Result<(), AddonError> {
    if scope.is_empty() {
        return Err(AddonError::InvalidArg("the scope name must not be empty".into()));
    }
    let de = &mut serde_json::Deserializer::from_str(json);
    let r: ScopeRules = serde_path_to_error::deserialize(de).map_err(|e| AddonError::Policy(format!("network rules for scope {scope:?}: {}: {}", e.path(), e.inner())))?;
    let rules = NetRules::compile(&r.allowed_domains, &r.denied_domains, &r.denied_domain_reasons).map_err(|m| AddonError::Policy(format!("network rules for scope {scope:?}: {m}")))?;
    let gw = gateway().map_err(|e| AddonError::Spawn(format!("the network proxy is not running: {e}")))?;
    gw.proxy().scope(scope).set(rules);
    // The change itself is on the record.
    if let Ok(a) = crate::audit::audit() {
        let mut rec = sharkcage::audit::Record::new("policy_change");
        rec.tool = Some("setNetworkPolicy".into());
        rec.decision = Some("allow".into());
        rec.reason = Some(format!("network rules of scope {scope:?} replaced"));
        rec.detail = Some(serde_json::json!({"scope": scope, "allowedDomains": r.allowed_domains, "deniedDomains": r.denied_domains}));
        a.submit(rec);
    }
    Ok(())
}
