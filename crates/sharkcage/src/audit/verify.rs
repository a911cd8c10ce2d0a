//! Verification: every record's hash recomputed, every link checked, every
//! checkpoint's signature checked, and the first damage named.
//!
//! A line verifies when it parses as a [`Record`], re-serialises to exactly
//! its own bytes before `,"hash":…` (the canonical form), and its `hash` is
//! the SHA-256 (or keyed HMAC) of those bytes. Walking the records in order
//! (segments oldest first), each must carry the next `seq` and the previous
//! record's `hash` in `prev`. The first problem is classified:
//! * `torn-tail` — the last line of the newest segment is incomplete (a
//!   crash mid-write); the writer cuts it on its next start and records that;
//! * `edited` — a line does not parse or its hash does not match; or its
//!   own hash matches but the next record's `prev` does not (it was changed
//!   and re-hashed without the key); or a signed checkpoint names another
//!   hash for its seq (the chain was rewritten);
//! * `deleted` — a `seq` is skipped and never appears later; also old
//!   segments gone without a `rotated` record saying so;
//! * `reordered` — a `seq` is skipped but appears later, or comes back
//!   after a larger one;
//! * `inserted` — a `seq` appears a second time;
//! * `truncated` — a checkpoint names a `seq` beyond the end of the log;
//! * `bad-signature` — a checkpoint's signature does not verify, or it was
//!   signed by another key than the log's;
//! * `checkpoint-rotated-away` — the exported checkpoint given to `verify`
//!   names a seq older than the oldest record kept: rotation deleted the
//!   history it vouches for, so it can no longer be checked (the detail says
//!   whether a `rotated` record announced the deletion). Never plain OK.
//! * `exported-checkpoint-missing` — `exported.json` (what `sc audit
//!   checkpoint --export` leaves in the directory) says a checkpoint at
//!   seq N was exported, but the log ends before N (segments truncated or
//!   wiped, along with `checkpoints.jsonl`), or it names another log (the
//!   log was replaced). Checked on every `verify`, with or without
//!   `--checkpoint`; the record at N must also carry the exported head
//!   (`edited` otherwise). History rotated past N is not damage when the
//!   chain's own `rotated` records announce it (the report says so).
//!   Whoever can delete the whole directory can delete `exported.json` as
//!   well: the exported copy kept elsewhere (`--checkpoint FILE`) is what
//!   proves history.
//!
//! The report also counts `retention` records with decision `deny`: history
//! newer than the last exported checkpoint that retention dropped (loudly)
//! because the log was over its hard limit.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ring::signature::{UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use super::record::{unhex, Hasher};
use super::retention::{self, EXPORTED_FILE};
use super::store::{self, Keys};
use super::AuditError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DamageKind {
    Edited,
    Deleted,
    Inserted,
    Reordered,
    Truncated,
    BadSignature,
    TornTail,
    CheckpointRotatedAway,
    ExportedCheckpointMissing,
}

impl DamageKind {
    pub fn name(self) -> &'static str {
        match self {
            DamageKind::Edited => "edited",
            DamageKind::Deleted => "deleted",
            DamageKind::Inserted => "inserted",
            DamageKind::Reordered => "reordered",
            DamageKind::Truncated => "truncated",
            DamageKind::BadSignature => "bad-signature",
            DamageKind::TornTail => "torn-tail",
            DamageKind::CheckpointRotatedAway => "checkpoint-rotated-away",
            DamageKind::ExportedCheckpointMissing => "exported-checkpoint-missing",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Damage {
    pub kind: DamageKind,
    /// The first bad seq.
    pub seq: u64,
    pub segment: String,
    pub detail: String,
}

/// A signed checkpoint, as stored and exported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    pub v: u32,
    pub log_id: String,
    pub seq: u64,
    pub head: String,
    pub ts: String,
    /// Ed25519 public key (hex) that made `sig`.
    #[serde(rename = "pub")]
    pub public: String,
    pub sig: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Signed<'a> {
    v: u32,
    log_id: &'a str,
    seq: u64,
    head: &'a str,
    ts: &'a str,
}

impl Checkpoint {
    /// The signed bytes: `{"v","logId","seq","head","ts"}` compact, in order.
    pub fn message(log_id: &str, seq: u64, head: &str, ts: &str) -> Vec<u8> {
        serde_json::to_vec(&Signed { v: 1, log_id, seq, head, ts }).unwrap()
    }
    pub fn signature_ok(&self) -> bool {
        let (Some(p), Some(s)) = (unhex(&self.public), unhex(&self.sig)) else { return false };
        UnparsedPublicKey::new(&ED25519, p).verify(&Checkpoint::message(&self.log_id, self.seq, &self.head, &self.ts), &s).is_ok()
    }
}

#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub ok: bool,
    pub log_id: String,
    pub alg: String,
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub head: Option<String>,
    pub checkpoints: usize,
    /// `retention` records saying unexported history was dropped.
    pub retention_drops: u64,
    /// The seq of the last exported checkpoint `exported.json` records, when
    /// there is one (checked against the log).
    pub exported_seq: Option<u64>,
    /// That checkpoint's record was deleted by an announced rotation.
    pub exported_rotated_away: bool,
    pub damage: Option<Damage>,
}

/// Where the walk ended (for the writer's resume).
#[derive(Debug, Clone, Default)]
pub struct Tail {
    pub last_seq: u64,
    pub head: Option<String>,
    /// Newest segment: byte length of its complete lines, and the torn
    /// bytes after them.
    pub good_len: u64,
    pub torn: Vec<u8>,
    /// What the kept `rotated` records say was deleted: (last seq, hash).
    pub rotated: Vec<(u64, String)>,
}

/// Bytes appended after the canonical form: `,"hash":"<64 hex>"}`.
const HASH_SUFFIX: usize = 9 + 64 + 2;

/// What the walk keeps of a verified line.
struct Line {
    seq: u64,
    prev: Option<String>,
    hash: String,
    /// A `rotated` record: (deletedLastSeq, deletedLastHash).
    rotated: Option<(u64, String)>,
    /// A `retention` record that dropped history.
    dropped: bool,
}

/// Parse and check one line. The writer hashes the canonical bytes and
/// appends `,"hash":"…"` before the closing brace, so the hashed bytes are
/// exactly the line's prefix plus `}`: the hash is checked over the bytes as
/// stored (any changed byte is an edit), and the line must parse as a
/// record (known keys only, none twice) for its seq and prev to count.
fn check_line(line: &[u8], h: &Hasher) -> Result<Line, String> {
    let r: View = serde_json::from_slice(line).map_err(|e| format!("not a record: {e}"))?;
    let n = line.len();
    if n < HASH_SUFFIX + 2 || !line.ends_with(b"\"}") || &line[n - HASH_SUFFIX..n - HASH_SUFFIX + 9] != b",\"hash\":\"" {
        return Err("no hash at the end of the line".into());
    }
    let stored = r.hash.ok_or("no hash")?;
    if h.hash_parts(&[&line[..n - HASH_SUFFIX], b"}"]) != *stored {
        return Err("hash does not match the content".into());
    }
    let rotated = if r.kind == "rotated" {
        let d: Option<serde_json::Value> = r.detail.and_then(|d| serde_json::from_str(d.get()).ok());
        d.and_then(|d| Some((d["deletedLastSeq"].as_u64()?, d["deletedLastHash"].as_str()?.to_string())))
    } else {
        None
    };
    let dropped = r.kind == "retention" && r.decision.as_deref() == Some("deny");
    Ok(Line { seq: r.seq, prev: r.prev.map(|p| p.into_owned()), hash: stored.into_owned(), rotated, dropped })
}

/// A record as the verifier reads it: the same keys and types as
/// [`super::Record`] (unknown or repeated keys are errors), without copying strings.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // fields are read to validate their types
struct View<'a> {
    v: u32,
    seq: u64,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    session: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    run: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    skill: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_call: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sandbox: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    decision: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    params_digest: Option<Cow<'a, str>>,
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default)]
    duration_ms: Option<f64>,
    #[serde(default)]
    bytes_up: Option<u64>,
    #[serde(default)]
    bytes_down: Option<u64>,
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    detail: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    prev: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    hash: Option<Cow<'a, str>>,
}

/// Check every complete line of `data` on all cores; returns the lines'
/// results in order and the offset where each line ends (after its '\n').
/// Each line's check result and the offset just after it.
type Checked = Vec<(Result<Line, String>, usize)>;

fn check_all(data: &[u8], h: &Hasher) -> (Checked, usize) {
    let mut bounds = Vec::new();
    let mut pos = 0;
    while let Some(i) = data[pos..].iter().position(|&b| b == b'\n') {
        bounds.push((pos, pos + i));
        pos += i + 1;
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let chunk = bounds.len().div_ceil(threads).max(1);
    let results: Vec<Checked> = std::thread::scope(|sc| {
        let hs: Vec<_> = bounds.chunks(chunk).map(|part| sc.spawn(move || part.iter().map(|&(a, b)| (check_line(&data[a..b], h), b + 1)).collect())).collect();
        hs.into_iter().map(|t| t.join().unwrap_or_default()).collect()
    });
    (results.into_iter().flatten().collect(), pos)
}

/// Does a record with `seq` appear at or after byte `from` of segment `si`,
/// or in a later segment? (Only asked once damage is found.)
fn appears_later(segs: &[(u64, PathBuf)], si: usize, from: usize, seq: u64) -> bool {
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    for (i, (_, p)) in segs.iter().enumerate().skip(si) {
        let Ok(data) = std::fs::read(p) else { continue };
        let start = if i == si { from.min(data.len()) } else { 0 };
        if data[start..].split(|&b| b == b'\n').any(|l| serde_json::from_slice::<SeqOnly>(l).is_ok_and(|x| x.seq == seq)) {
            return true;
        }
    }
    false
}

/// Walk every segment, streaming: each line is checked and linked to the
/// one before as it is read; nothing but the chain's state is kept.
/// Checkpoint heads to compare (`seq → (hash, where from)`) are looked up
/// on the way.
pub fn walk(dir: &Path, keys: &Keys, expect: &BTreeMap<u64, (String, String)>) -> Result<(VerifyReport, Tail), AuditError> {
    let segs = store::scan(dir)?;
    let mut rep = VerifyReport { log_id: keys.meta.log_id.clone(), alg: keys.meta.alg.clone(), segments: segs.len(), ..Default::default() };
    let mut tail = Tail::default();
    let name = |si: usize| segs[si].1.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut expected: Option<u64> = None;
    let mut prev: Option<String> = None;
    let mut prev_seq = 0u64;
    let mut first_seq = 0u64;
    // The oldest kept record, when it is not seq 1: its `prev` must be
    // announced by a `rotated` record (checked at the end).
    let mut unexplained: Option<(u64, String, usize)> = None;
    let mut rotated: Vec<(u64, String)> = Vec::new();
    let damage = |kind, seq, si: usize, detail: String| Some(Damage { kind, seq, segment: name(si), detail });
    'walk: for (si, (_, path)) in segs.iter().enumerate() {
        let data = std::fs::read(path).map_err(|e| AuditError::Io(path.clone(), e))?;
        rep.bytes += data.len() as u64;
        let newest = si + 1 == segs.len();
        let (lines, complete) = check_all(&data, &keys.hasher);
        if complete < data.len() {
            if newest {
                tail.torn = data[complete..].to_vec();
            } else {
                rep.damage = damage(DamageKind::Edited, prev_seq + 1, si, "an incomplete line in an older segment".into());
            }
        }
        for (li0, (checked, pos)) in lines.into_iter().enumerate() {
            let li = li0 + 1;
            let line = match checked {
                Ok(l) => l,
                Err(why) => {
                    rep.damage = damage(DamageKind::Edited, expected.unwrap_or(prev_seq + 1), si, format!("line {li}: {why}"));
                    break 'walk;
                }
            };
            match expected {
                None => {
                    if line.seq == 1 {
                        if line.prev.is_some() {
                            rep.damage = damage(DamageKind::Edited, 1, si, "the first record links to a predecessor".into());
                            break 'walk;
                        }
                    } else {
                        unexplained = Some((line.seq, line.prev.clone().unwrap_or_default(), si));
                    }
                    first_seq = line.seq;
                }
                Some(exp) if line.seq == exp => {
                    if line.prev != prev {
                        rep.damage = damage(DamageKind::Edited, prev_seq, si, format!("record {} does not link to record {prev_seq} as stored (it was changed and re-hashed)", line.seq));
                        break 'walk;
                    }
                }
                Some(exp) if line.seq > exp => {
                    let (kind, what) = if appears_later(&segs, si, pos, exp) { (DamageKind::Reordered, "appears later") } else { (DamageKind::Deleted, "is missing") };
                    rep.damage = damage(kind, exp, si, format!("seq {exp} {what}; found {} at line {li}", line.seq));
                    break 'walk;
                }
                Some(_) => {
                    let (kind, what) = if line.seq >= first_seq { (DamageKind::Inserted, "appears twice") } else { (DamageKind::Reordered, "comes after a larger seq") };
                    rep.damage = damage(kind, line.seq, si, format!("seq {} {what} (line {li})", line.seq));
                    break 'walk;
                }
            }
            if let Some((head, origin)) = expect.get(&line.seq) {
                if *head != line.hash {
                    rep.damage = damage(DamageKind::Edited, line.seq, si, format!("record {} differs from the signed checkpoint in {origin} (the log was rewritten)", line.seq));
                    break 'walk;
                }
            }
            rotated.extend(line.rotated);
            rep.retention_drops += line.dropped as u64;
            expected = Some(line.seq + 1);
            prev = Some(line.hash);
            prev_seq = line.seq;
            rep.records += 1;
        }
        if newest {
            tail.good_len = (data.len() - tail.torn.len()) as u64;
        }
        if rep.damage.is_some() {
            break;
        }
    }
    if rep.damage.is_none() {
        if let Some((seq, p, si)) = unexplained {
            if !rotated.iter().any(|(s, h)| *s == seq - 1 && *h == p) {
                rep.damage = damage(DamageKind::Deleted, seq - 1, si, format!("records before seq {seq} are gone and no rotation record says so"));
            }
        }
    }
    rep.first_seq = first_seq;
    rep.last_seq = prev_seq;
    rep.head = prev.clone();
    tail.last_seq = prev_seq;
    tail.head = prev;
    tail.rotated = rotated;
    if rep.damage.is_none() && !tail.torn.is_empty() {
        rep.damage = damage(DamageKind::TornTail, prev_seq + 1, segs.len() - 1, format!("{} bytes after the last complete line (an interrupted write)", tail.torn.len()));
    }
    if rep.damage.is_none() {
        if let Some((&seq, (_, origin))) = expect.range(prev_seq + 1..).next() {
            rep.damage = Some(Damage {
                kind: DamageKind::Truncated,
                seq: prev_seq + 1,
                segment: if segs.is_empty() { String::new() } else { name(segs.len() - 1) },
                detail: format!("the log ends at seq {prev_seq}, but the checkpoint in {origin} is at seq {seq}"),
            });
        }
    }
    Ok((rep, tail))
}

/// Read the checkpoints file (each line must parse).
pub fn read_checkpoints(dir: &Path) -> Result<Vec<Checkpoint>, AuditError> {
    let p = dir.join(store::CHECKPOINTS);
    let data = match std::fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(AuditError::Io(p, e)),
    };
    let mut v = Vec::new();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let c: Checkpoint = serde_json::from_slice(line).map_err(|e| AuditError::Corrupt(p.clone(), format!("line {}: {e}", i + 1)))?;
        v.push(c);
    }
    Ok(v)
}

/// Verify the log in `dir`, optionally against an exported checkpoint.
pub fn verify(dir: &Path, exported: Option<(&Checkpoint, PathBuf)>) -> Result<VerifyReport, AuditError> {
    let keys = store::load_keys(dir, None)?;
    let mut cps: Vec<(Checkpoint, String)> = read_checkpoints(dir)?.into_iter().map(|c| (c, store::CHECKPOINTS.to_string())).collect();
    let n_local = cps.len();
    if let Some((c, ref p)) = exported {
        if c.log_id != keys.meta.log_id {
            return Err(AuditError::Other(format!("{}: the checkpoint is for log {}, this log is {}", p.display(), c.log_id, keys.meta.log_id)));
        }
        cps.push((c.clone(), p.display().to_string()));
    }
    // Signatures first: a checkpoint that does not verify proves nothing.
    let sig_damage = cps.iter().find_map(|(c, origin)| {
        let why = if !c.signature_ok() {
            Some("the signature does not verify")
        } else if keys.public.as_deref().is_some_and(|p| p != c.public) {
            Some("signed by another key than this log's (the signing key was replaced)")
        } else if c.log_id != keys.meta.log_id {
            Some("names another log")
        } else {
            None
        };
        why.map(|w| Damage { kind: DamageKind::BadSignature, seq: c.seq, segment: origin.clone(), detail: format!("checkpoint at seq {}: {w}", c.seq) })
    });
    let mut expect: BTreeMap<u64, (String, String)> = cps.iter().map(|(c, o)| (c.seq, (c.head.clone(), o.clone()))).collect();
    // What `sc audit checkpoint --export` left behind: the record at its seq
    // must still be there, with its head.
    let recorded = retention::load_exported(dir)?;
    let mut exported_damage = None;
    if let Some(e) = &recorded {
        if let Some(other) = e.log_id.as_deref().filter(|l| *l != keys.meta.log_id) {
            exported_damage = Some(Damage {
                kind: DamageKind::ExportedCheckpointMissing,
                seq: e.seq,
                segment: EXPORTED_FILE.to_string(),
                detail: format!("the checkpoint at seq {} exported at {} is of log {other}, but this log is {} (the log was replaced); verify against the exported copy with --checkpoint", e.seq, e.exported_at, keys.meta.log_id),
            });
        } else if let Some((head, origin)) = expect.get(&e.seq).filter(|(h, _)| *h != e.head) {
            exported_damage = Some(Damage {
                kind: DamageKind::Edited,
                seq: e.seq,
                segment: EXPORTED_FILE.to_string(),
                detail: format!("the checkpoint at seq {} exported at {} has head {}, the one in {origin} has {}", e.seq, e.exported_at, short(&e.head), short(head)),
            });
        } else {
            expect.entry(e.seq).or_insert_with(|| (e.head.clone(), EXPORTED_FILE.to_string()));
        }
    }
    let (mut rep, tail) = walk(dir, &keys, &if sig_damage.is_some() { BTreeMap::new() } else { expect.clone() })?;
    rep.checkpoints = n_local;
    rep.exported_seq = recorded.as_ref().map(|e| e.seq);
    if sig_damage.is_some() {
        rep.damage = sig_damage;
    } else if exported_damage.is_some() && rep.damage.as_ref().is_none_or(|d| d.kind == DamageKind::TornTail) {
        rep.damage = exported_damage;
    }
    // The log ends before the exported checkpoint that exported.json
    // records (and no other checkpoint says so first): say that.
    if let (Some(d), Some(e)) = (rep.damage.as_mut(), recorded.as_ref()) {
        if d.kind == DamageKind::Truncated && expect.range(rep.last_seq + 1..).next().is_some_and(|(_, (_, o))| o == EXPORTED_FILE) {
            *d = Damage {
                kind: DamageKind::ExportedCheckpointMissing,
                seq: e.seq,
                segment: EXPORTED_FILE.to_string(),
                detail: format!(
                    "the checkpoint at seq {} (head {}) was exported at {}, but the log ends at seq {}: its history was truncated or deleted (with the local checkpoints); verify against the exported copy with --checkpoint",
                    e.seq,
                    short(&e.head),
                    e.exported_at,
                    rep.last_seq
                ),
            };
        }
    }
    if rep.damage.is_none() {
        rep.damage = exported.and_then(|(c, p)| rotated_away(c, &p.display().to_string(), &rep, &tail));
    }
    // exported.json's checkpoint older than the oldest record kept: the walk
    // found the deletion announced by the chain's own `rotated` records (it
    // reports `deleted` otherwise).
    if let Some(e) = &recorded {
        rep.exported_rotated_away = rep.damage.is_none() && rep.records > 0 && e.seq < rep.first_seq;
    }
    rep.ok = rep.damage.is_none();
    Ok(rep)
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

/// The exported checkpoint `c` names a seq no longer in the log (older
/// than the oldest record kept): say so, and whether it was announced.
fn rotated_away(c: &Checkpoint, origin: &str, rep: &VerifyReport, tail: &Tail) -> Option<Damage> {
    if rep.records == 0 || c.seq >= rep.first_seq {
        return None;
    }
    let announced = tail.rotated.iter().map(|(s, _)| *s).filter(|s| *s >= c.seq).max();
    let how = match announced {
        Some(s) => format!("rotated records say segments up to seq {s} were deleted"),
        None => "no rotated record kept in the log covers it".to_string(),
    };
    Some(Damage {
        kind: DamageKind::CheckpointRotatedAway,
        seq: c.seq,
        segment: origin.to_string(),
        detail: format!("history rotated past the checkpoint's seq {}: the oldest record kept is seq {} ({how}); the records it vouches for are gone and cannot be checked", c.seq, rep.first_seq),
    })
}
