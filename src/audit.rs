//! The gateway's audit writer: one per state directory, opened on first use.
//!
//! The proxy's decisions reach it directly (the proxy's event sink); the
//! OpenClaw glue adds tool calls, execs, violations and file operations
//! through `auditAppend`. `auditQuery` and `auditVerify` read the log.

use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use sharkcage::audit::{Audit, AuditConfig, Record};

use crate::error::AddonError;

static AUDIT: OnceLock<Result<Arc<Audit>, String>> = OnceLock::new();

fn dir() -> Result<std::path::PathBuf, String> {
    sharkcage::audit::default_dir().ok_or_else(|| "no state directory (HOME is not set)".to_string())
}

/// The writer, opened on first use. An error (a chain that does not verify,
/// another writer on the directory) is kept and returned to every caller.
pub fn audit() -> Result<Arc<Audit>, AddonError> {
    AUDIT
        .get_or_init(|| Audit::open(AuditConfig::new(dir()?)).map(Arc::new).map_err(|e| e.to_string()))
        .clone()
        .map_err(AddonError::Audit)
}

/// What a caller may set on a record (the writer sets v, seq, prev, hash).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    kind: String,
    ts: Option<String>,
    session: Option<String>,
    agent: Option<String>,
    run: Option<String>,
    skill: Option<String>,
    tool: Option<String>,
    tool_call: Option<String>,
    sandbox: Option<String>,
    decision: Option<String>,
    reason: Option<String>,
    params: Option<serde_json::Value>,
    exit_code: Option<i64>,
    duration_ms: Option<f64>,
    bytes_up: Option<u64>,
    bytes_down: Option<u64>,
    host: Option<String>,
    port: Option<u16>,
    ip: Option<String>,
    path: Option<String>,
    detail: Option<serde_json::Value>,
}

/// Parse a caller's record (unknown keys are errors, naming the key).
pub fn parse_input(json: &str) -> Result<Record, AddonError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    let i: Input = serde_path_to_error::deserialize(de).map_err(|e| AddonError::InvalidArg(format!("audit record: {}: {}", e.path(), e.inner())))?;
    let kind_ok = !i.kind.is_empty() && i.kind.len() <= 32 && i.kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if !kind_ok {
        return Err(AddonError::InvalidArg(format!("audit record: kind {:?} must be lower-case letters and _", i.kind)));
    }
    if let Some(ts) = &i.ts {
        if sharkcage::audit::record::parse_ts(ts).is_none() {
            return Err(AddonError::InvalidArg(format!("audit record: ts {ts:?} is not RFC 3339 UTC")));
        }
    }
    Ok(Record {
        kind: i.kind,
        ts: i.ts.unwrap_or_default(),
        session: i.session,
        agent: i.agent,
        run: i.run,
        skill: i.skill,
        tool: i.tool,
        tool_call: i.tool_call,
        sandbox: i.sandbox,
        decision: i.decision,
        reason: i.reason,
        params: i.params,
        exit_code: i.exit_code,
        duration_ms: i.duration_ms,
        bytes_up: i.bytes_up,
        bytes_down: i.bytes_down,
        host: i.host,
        port: i.port,
        ip: i.ip,
        path: i.path,
        detail: i.detail,
        ..Default::default()
    })
}

/// The directory `auditQuery`/`auditVerify` read.
pub fn read_dir() -> Result<std::path::PathBuf, AddonError> {
    dir().map_err(AddonError::Audit)
}

/// Flush and close the writer (the final checkpoint is signed). Later
/// appends fail. For process exit.
pub fn close() -> Result<(), AddonError> {
    match AUDIT.get() {
        Some(Ok(a)) => a.close().map_err(|e| AddonError::Audit(e.to_string())),
        _ => Ok(()),
    }
}
