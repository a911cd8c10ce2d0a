//! `ToolGate`: the core crate's tool-call gate (`sharkcage::gate`) for the
//! OpenClaw hook. Built once per policy; `judge` is synchronous and pure.

use napi::bindgen_prelude::Unknown;
use napi::{Env, Result};
use napi_derive::napi;

use crate::error::{to_js, AddonError};
use sharkcage::gate::{Call, Gate, Verdict};
use sharkcage::policy::Policy;
use sharkcage::proxy::rules::NetRules;

#[napi(object)]
pub struct ToolGateOptions {
    /// Tool names the operator trusts beyond the built-in rules.
    pub allow_tools: Option<Vec<String>>,
}

/// What the gate decided: `decision` is "allow", "rewrite" (with `params`),
/// "block" (with `reason`) or "approve" (with `title` and `description`).
#[napi(object)]
pub struct GateVerdict {
    pub decision: String,
    pub reason: Option<String>,
    #[napi(ts_type = "Record<string, unknown>")]
    pub params: Option<serde_json::Value>,
    pub title: Option<String>,
    pub description: Option<String>,
}

/// The tool-call gate of one sandbox policy.
#[napi]
pub struct ToolGate {
    gate: Gate,
}

#[napi]
impl ToolGate {
    #[napi(constructor)]
    pub fn new(env: Env, #[napi(ts_arg_type = "object")] policy: Unknown<'_>, options: Option<ToolGateOptions>) -> Result<Self> {
        let build = || -> std::result::Result<Gate, AddonError> {
            let json = crate::policy_to_json(&env, Some(policy))?;
            let pol = Policy::from_json(&json, "policy").map_err(|e| AddonError::Policy(e.to_string()))?;
            let rules = NetRules::compile(&pol.network.allowed_domains, &pol.network.denied_domains, &pol.network.denied_domain_reasons)
                .map_err(|m| AddonError::Policy(format!("policy: network: {m}")))?;
            Ok(Gate::new(rules, options.and_then(|o| o.allow_tools).unwrap_or_default()))
        };
        build().map(|gate| ToolGate { gate }).map_err(|e| to_js(&env, e))
    }

    /// Judge one call (`toolName`, OpenClaw's `toolKind`, its `params`).
    #[napi]
    pub fn judge(&self, tool_name: String, tool_kind: Option<String>, #[napi(ts_arg_type = "Record<string, unknown>")] params: Option<serde_json::Value>) -> GateVerdict {
        let params = params.unwrap_or(serde_json::Value::Object(Default::default()));
        let v = self.gate.judge(Call { tool: &tool_name, kind: tool_kind.as_deref(), params: &params });
        let mut out = GateVerdict { decision: String::new(), reason: None, params: None, title: None, description: None };
        match v {
            Verdict::Allow => out.decision = "allow".into(),
            Verdict::Rewrite(p) => {
                out.decision = "rewrite".into();
                out.params = Some(p);
            }
            Verdict::Block(r) => {
                out.decision = "block".into();
                out.reason = Some(r);
            }
            Verdict::Approve { title, description } => {
                out.decision = "approve".into();
                out.title = Some(title);
                out.description = Some(description);
            }
            _ => {
                out.decision = "block".into();
                out.reason = Some("the gate has no rule for this verdict: refused".into());
            }
        }
        out
    }
}
