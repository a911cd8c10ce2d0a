//! Retention: which old segments rotation may delete, so that a flood can
//! never silently push history out of the log.
//!
//! Old rule: keep 5 segments of 5 MiB, delete the oldest — a sandbox that
//! wrote 25 MiB of refusals erased everything before them. Now:
//!
//! * History **covered by the last exported checkpoint** (every record of
//!   the segment is older than the checkpoint's seq; `sc audit checkpoint
//!   --export` records which one in [`EXPORTED_FILE`]) is deleted, oldest
//!   first, when the log is over [`Retention::max_bytes`] or the segment's
//!   newest record is older than [`Retention::max_age_days`]. The segment
//!   holding the checkpoint's own record stays, so the last exported
//!   checkpoint can always be verified against the log.
//! * History **newer than the last exported checkpoint** (all of it, if none
//!   was ever exported) is kept over the budget; each rotation that keeps it
//!   writes a `retention` record (decision `note`) saying how much and why.
//! * Only beyond [`Retention::hard_max_bytes`] is such history deleted, and
//!   then first a `retention` record (decision `deny`) names the seq range
//!   dropped and why, before the usual `rotated` record.
//! * The newest closed segment and the current one are never deleted.
//!
//! The operator sizes retention with `sc audit retention --max-bytes …
//! --hard-max-bytes … --max-age-days …`, stored in [`RETENTION_FILE`]; the
//! writer reads it at every rotation, so a running gateway follows changes.
//! Defaults: [`Retention::default`] (25 MiB budget, 100 MiB ceiling, no age
//! limit).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::record::{format_ts, now_ms};
use super::store::read_small;
use super::verify::Checkpoint;
use super::AuditError;

/// The operator's retention settings (all keys optional).
pub const RETENTION_FILE: &str = "retention.json";
/// The last checkpoint an operator exported.
pub const EXPORTED_FILE: &str = "exported.json";

const MIB: u64 = 1024 * 1024;
const DAY_MS: u64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// The log's size budget: exported history beyond it is deleted.
    pub max_bytes: u64,
    /// The ceiling: beyond it even unexported history is deleted (loudly).
    pub hard_max_bytes: u64,
    /// Exported history older than this is deleted (0: no age limit).
    pub max_age_days: u32,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention { max_bytes: 25 * MIB, hard_max_bytes: 100 * MIB, max_age_days: 0 }
    }
}

/// [`RETENTION_FILE`]: each key overrides the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
}

impl RetentionFile {
    /// The settings over `defaults`; the ceiling is never below the budget.
    pub fn apply(&self, defaults: Retention) -> Retention {
        let max_bytes = self.max_bytes.unwrap_or(defaults.max_bytes);
        Retention { max_bytes, hard_max_bytes: self.hard_max_bytes.unwrap_or(defaults.hard_max_bytes).max(max_bytes), max_age_days: self.max_age_days.unwrap_or(defaults.max_age_days) }
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    match read_small(path) {
        Ok(b) => Ok(Some(b)),
        Err(AuditError::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A JSON file of the audit directory, if it is there (a malformed one is
/// `Corrupt`, naming it).
fn load_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>, AuditError> {
    let p = dir.join(name);
    match read_optional(&p)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| AuditError::Corrupt(p, e.to_string())),
    }
}

/// Write a JSON file of the audit directory atomically, mode 0600.
fn save_json<T: Serialize>(dir: &Path, name: &str, v: &T) -> Result<(), AuditError> {
    let p = dir.join(name);
    crate::fileio::write_atomic(&p, serde_json::to_string_pretty(v).expect("serialises").as_bytes(), 0o600).map_err(|e| AuditError::Io(p, e))
}

/// The settings in `dir` (none: empty).
pub fn load_file(dir: &Path) -> Result<RetentionFile, AuditError> {
    Ok(load_json(dir, RETENTION_FILE)?.unwrap_or_default())
}

pub fn save_file(dir: &Path, f: &RetentionFile) -> Result<(), AuditError> {
    save_json(dir, RETENTION_FILE, f)
}

/// What `sc audit checkpoint --export` leaves behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exported {
    pub v: u32,
    pub seq: u64,
    pub head: String,
    /// The checkpoint's time.
    pub ts: String,
    pub exported_at: String,
    /// The log the checkpoint is of (absent in files written before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_id: Option<String>,
}

/// The last exported checkpoint of the log in `dir`, if any.
pub fn load_exported(dir: &Path) -> Result<Option<Exported>, AuditError> {
    load_json(dir, EXPORTED_FILE)
}

/// Record that `c` was exported (an older one never replaces a newer one).
pub fn mark_exported(dir: &Path, c: &Checkpoint) -> Result<Exported, AuditError> {
    if let Ok(Some(prev)) = load_exported(dir) {
        if prev.seq >= c.seq {
            return Ok(prev);
        }
    }
    let e = Exported { v: 1, seq: c.seq, head: c.head.clone(), ts: c.ts.clone(), exported_at: format_ts(now_ms()), log_id: Some(c.log_id.clone()) };
    save_json(dir, EXPORTED_FILE, &e)?;
    Ok(e)
}

/// What retention needs to know of a closed segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegInfo {
    pub n: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The newest record's time (ms since the epoch).
    pub last_ms: u64,
    pub last_hash: String,
}

/// Why a segment is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Exported (older than the checkpoint), and the log is over `max_bytes`.
    Budget,
    /// Exported, and older than `max_age_days`.
    Age,
    /// Not exported, but the log is over `hard_max_bytes`.
    HardLimit,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Budget => "budget",
            Cause::Age => "age",
            Cause::HardLimit => "hard-limit",
        }
    }
}

/// Unexported history kept although the log is over its budget or age.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub first_seq: u64,
    pub bytes: u64,
    pub over_bytes: u64,
    pub too_old: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub delete: Vec<(SegInfo, Cause)>,
    pub kept: Option<Kept>,
}

/// Which of the `closed` segments (oldest first; the current segment is not
/// among them) to delete, given the log's `total` size and the last
/// exported seq (see the module header).
pub fn plan(closed: &[SegInfo], total: u64, exported: Option<u64>, now: u64, r: &Retention) -> Plan {
    let mut p = Plan::default();
    let mut total = total;
    let cutoff = (r.max_age_days > 0).then(|| now.saturating_sub(r.max_age_days as u64 * DAY_MS));
    // The newest closed segment stays.
    for s in closed.iter().take(closed.len().saturating_sub(1)) {
        let over = total > r.max_bytes;
        let too_old = cutoff.is_some_and(|c| s.last_ms < c);
        if !over && !too_old {
            break;
        }
        let cause = if exported.is_some_and(|e| s.last_seq < e) {
            if over {
                Cause::Budget
            } else {
                Cause::Age
            }
        } else if total > r.hard_max_bytes {
            Cause::HardLimit
        } else {
            p.kept = Some(Kept { first_seq: s.first_seq, bytes: total, over_bytes: total.saturating_sub(r.max_bytes), too_old });
            break;
        };
        p.delete.push((s.clone(), cause));
        total -= s.bytes.min(total);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` segments of 10 bytes, 10 records each, one day apart (the last
    /// one `now`).
    fn segs(n: u64, now: u64) -> Vec<SegInfo> {
        (1..=n).map(|i| SegInfo { n: i, bytes: 10, first_seq: (i - 1) * 10 + 1, last_seq: i * 10, last_ms: now - (n - i) * DAY_MS, last_hash: format!("h{i}") }).collect()
    }

    const NOW: u64 = 1_795_724_295_972;

    #[test]
    fn within_budget_nothing_is_deleted() {
        let r = Retention { max_bytes: 100, hard_max_bytes: 200, max_age_days: 0 };
        assert_eq!(plan(&segs(5, NOW), 50, Some(50), NOW, &r), Plan::default());
    }

    #[test]
    fn exported_history_over_budget_is_deleted_oldest_first() {
        let r = Retention { max_bytes: 30, hard_max_bytes: 200, max_age_days: 0 };
        let p = plan(&segs(6, NOW), 60, Some(40), NOW, &r);
        assert_eq!(p.delete.iter().map(|(s, c)| (s.n, *c)).collect::<Vec<_>>(), [(1, Cause::Budget), (2, Cause::Budget), (3, Cause::Budget)]);
        assert_eq!(p.kept, None);
    }

    #[test]
    fn unexported_history_is_kept_and_reported_until_the_ceiling() {
        let r = Retention { max_bytes: 30, hard_max_bytes: 200, max_age_days: 0 };
        // Exported up to seq 15: segment 1 goes, segment 2 (seq 11–20) stays.
        let p = plan(&segs(6, NOW), 60, Some(15), NOW, &r);
        assert_eq!(p.delete.iter().map(|(s, _)| s.n).collect::<Vec<_>>(), [1]);
        assert_eq!(p.kept, Some(Kept { first_seq: 11, bytes: 50, over_bytes: 20, too_old: false }));
        // Never exported: nothing goes.
        let p = plan(&segs(6, NOW), 60, None, NOW, &r);
        assert!(p.delete.is_empty());
        assert_eq!(p.kept.unwrap().first_seq, 1);
        // Over the ceiling: unexported history goes, down to the ceiling.
        let r = Retention { max_bytes: 30, hard_max_bytes: 45, max_age_days: 0 };
        let p = plan(&segs(6, NOW), 60, None, NOW, &r);
        assert_eq!(p.delete.iter().map(|(s, c)| (s.n, *c)).collect::<Vec<_>>(), [(1, Cause::HardLimit), (2, Cause::HardLimit)]);
        assert_eq!(p.kept.unwrap().first_seq, 21);
    }

    #[test]
    fn age_deletes_exported_history_only() {
        let r = Retention { max_bytes: 1000, hard_max_bytes: 1000, max_age_days: 3 };
        let p = plan(&segs(6, NOW), 60, Some(60), NOW, &r);
        // Segment i's newest record is 6 - i days old: 1 and 2 are older than 3 days.
        assert_eq!(p.delete.iter().map(|(s, c)| (s.n, *c)).collect::<Vec<_>>(), [(1, Cause::Age), (2, Cause::Age)]);
        let p = plan(&segs(6, NOW), 60, None, NOW, &r);
        assert!(p.delete.is_empty());
        assert!(p.kept.unwrap().too_old);
    }

    #[test]
    fn the_newest_closed_segment_stays() {
        let r = Retention { max_bytes: 0, hard_max_bytes: 1000, max_age_days: 0 };
        let p = plan(&segs(2, NOW), 20, Some(20), NOW, &r);
        assert_eq!(p.delete.len(), 1);
        assert!(plan(&segs(1, NOW), 10, Some(20), NOW, &r).delete.is_empty());
    }

    #[test]
    fn the_segment_holding_the_exported_checkpoint_stays() {
        let r = Retention { max_bytes: 0, hard_max_bytes: 1000, max_age_days: 0 };
        // Exported at seq 20, the last record of segment 2.
        let p = plan(&segs(4, NOW), 40, Some(20), NOW, &r);
        assert_eq!(p.delete.iter().map(|(s, _)| s.n).collect::<Vec<_>>(), [1]);
        assert_eq!(p.kept.unwrap().first_seq, 11);
    }

    #[test]
    fn the_file_overrides_defaults_and_the_ceiling_is_never_below_the_budget() {
        let f: RetentionFile = serde_json::from_str(r#"{"maxBytes": 500000000}"#).unwrap();
        let r = f.apply(Retention::default());
        assert_eq!((r.max_bytes, r.hard_max_bytes, r.max_age_days), (500_000_000, 500_000_000, 0));
        assert!(serde_json::from_str::<RetentionFile>(r#"{"maxByte": 1}"#).is_err());
    }
}
