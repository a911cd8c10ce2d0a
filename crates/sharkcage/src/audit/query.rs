//! Reading the log with filters (for `sc audit` and `auditQuery`).

use std::path::Path;

use serde::Deserialize;

use super::record::{parse_ts, Record};
use super::store;
use super::AuditError;

/// What to select. Every field narrows; `tail` keeps the last N matches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    pub tail: Option<usize>,
    pub skill: Option<String>,
    pub tool: Option<String>,
    pub session: Option<String>,
    pub kind: Option<String>,
    /// Only refusals (`decision` deny, and violations).
    #[serde(default)]
    pub blocked: bool,
    /// RFC 3339 / `YYYY-MM-DD`, or relative: `30s`, `15m`, `2h`, `7d`.
    pub since: Option<String>,
    pub until: Option<String>,
}

/// `since`/`until` as ms since the epoch.
pub fn parse_time(s: &str, now_ms: u64) -> Result<u64, String> {
    if let Some(ms) = parse_ts(s) {
        return Ok(ms);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("{s:?}: expected a time (2026-11-26T10:00:00Z, 2026-11-26) or an age (30s, 15m, 2h, 7d)"))?;
    let mult = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h, d)")),
    };
    Ok(now_ms.saturating_sub(n.saturating_mul(mult)))
}

/// Records matching `f`, oldest first. Lines that do not parse are skipped
/// here (`sc audit verify` names them).
pub fn query(dir: &Path, f: &Filter) -> Result<Vec<Record>, AuditError> {
    let now = super::record::now_ms();
    let since = f.since.as_deref().map(|s| parse_time(s, now)).transpose().map_err(AuditError::Other)?;
    let until = f.until.as_deref().map(|s| parse_time(s, now)).transpose().map_err(AuditError::Other)?;
    if !dir.join(store::META).exists() {
        return Err(AuditError::NoLog(dir.to_path_buf()));
    }
    let mut out: Vec<Record> = Vec::new();
    for (_, path) in store::scan(dir)? {
        let data = std::fs::read(&path).map_err(|e| AuditError::Io(path.clone(), e))?;
        for line in data.split(|&b| b == b'\n') {
            let Ok(r) = serde_json::from_slice::<Record>(line) else { continue };
            let eq = |want: &Option<String>, have: &Option<String>| want.as_ref().is_none_or(|w| have.as_deref() == Some(w.as_str()));
            if !eq(&f.skill, &r.skill) || !eq(&f.tool, &r.tool) || !eq(&f.session, &r.session) || f.kind.as_ref().is_some_and(|k| *k != r.kind) {
                continue;
            }
            if f.blocked && !r.blocked() {
                continue;
            }
            let t = parse_ts(&r.ts).unwrap_or(0);
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                continue;
            }
            out.push(r);
            if let Some(n) = f.tail {
                if out.len() > n.saturating_mul(2).max(1024) {
                    out.drain(..out.len() - n);
                }
            }
        }
    }
    if let Some(n) = f.tail {
        if out.len() > n {
            out.drain(..out.len() - n);
        }
    }
    Ok(out)
}
