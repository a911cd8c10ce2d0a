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
//!   signed by another key than the log's.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use ring::signature::{UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use super::record::{unhex, Hasher, Record};
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
}

/// Bytes appended after the canonical form: `,"hash":"<64 hex>"}`.
const HASH_SUFFIX: usize = 9 + 64 + 2;

fn check_line(line: &[u8], h: &Hasher) -> Result<Record, String> {
    let r: Record = serde_json::from_slice(line).map_err(|e| format!("not a record: {e}"))?;
    if line.len() < HASH_SUFFIX + 2 || !line.ends_with(b"\"}") || &line[line.len() - HASH_SUFFIX..line.len() - HASH_SUFFIX + 9] != b",\"hash\":\"" {
        return Err("no hash at the end of the line".into());
    }
    let canon_prefix = &line[..line.len() - HASH_SUFFIX];
    let canon = r.canonical();
    if canon.len() != canon_prefix.len() + 1 || &canon[..canon.len() - 1] != canon_prefix {
        return Err("not in canonical form".into());
    }
    if !r.hash_ok(h) {
        return Err("hash does not match the content".into());
    }
    Ok(r)
}

/// Walk every segment; checkpoint heads to compare are looked up on the way.
pub fn walk(dir: &Path, keys: &Keys, expect: &BTreeMap<u64, (String, String)>) -> Result<(VerifyReport, Tail), AuditError> {
    let segs = store::scan(dir)?;
    let mut rep = VerifyReport { log_id: keys.meta.log_id.clone(), alg: keys.meta.alg.clone(), segments: segs.len(), ..Default::default() };
    let mut tail = Tail::default();
    // Every record, to classify gaps (seq → seen) — seqs only.
    let mut all: Vec<(u64, usize, usize)> = Vec::new(); // (seq, segment index, line index)
    let mut parsed: Vec<Vec<Result<Record, String>>> = Vec::new();
    let mut rotated_hashes: HashSet<(u64, String)> = HashSet::new();
    for (si, (_, path)) in segs.iter().enumerate() {
        let data = std::fs::read(path).map_err(|e| AuditError::Io(path.clone(), e))?;
        rep.bytes += data.len() as u64;
        let mut lines: Vec<Result<Record, String>> = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let end = match data[pos..].iter().position(|&b| b == b'\n') {
                Some(i) => pos + i,
                None => {
                    // Incomplete last line.
                    if si + 1 == segs.len() {
                        tail.torn = data[pos..].to_vec();
                    } else {
                        lines.push(Err("incomplete line in an older segment".into()));
                    }
                    break;
                }
            };
            let r = check_line(&data[pos..end], &keys.hasher);
            if let Ok(rec) = &r {
                all.push((rec.seq, si, lines.len()));
                if rec.kind == "rotated" {
                    if let (Some(s), Some(h)) = (rec.detail.as_ref().and_then(|d| d["deletedLastSeq"].as_u64()), rec.detail.as_ref().and_then(|d| d["deletedLastHash"].as_str())) {
                        rotated_hashes.insert((s, h.to_string()));
                    }
                }
            }
            lines.push(r);
            pos = end + 1;
        }
        if si + 1 == segs.len() {
            tail.good_len = (data.len() - tail.torn.len()) as u64;
        }
        parsed.push(lines);
    }
    let seen: HashSet<u64> = all.iter().map(|a| a.0).collect();
    let name = |si: usize| segs[si].1.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut expected: Option<u64> = None;
    let mut prev: Option<String> = None;
    let mut prev_seq = 0u64;
    let mut seen_so_far: HashSet<u64> = HashSet::new();
    let damage = |kind, seq, si: usize, detail: String| Some(Damage { kind, seq, segment: name(si), detail });
    'walk: for (si, lines) in parsed.iter().enumerate() {
        for (li, r) in lines.iter().enumerate() {
            let guess = expected.unwrap_or(1);
            let r = match r {
                Ok(r) => r,
                Err(why) => {
                    rep.damage = damage(DamageKind::Edited, guess, si, format!("line {}: {why}", li + 1));
                    break 'walk;
                }
            };
            match expected {
                None => {
                    // The first record of the oldest kept segment.
                    if r.seq == 1 {
                        if r.prev.is_some() {
                            rep.damage = damage(DamageKind::Edited, 1, si, "the first record links to a predecessor".into());
                            break 'walk;
                        }
                    } else {
                        let explained = r.prev.as_ref().is_some_and(|p| rotated_hashes.contains(&(r.seq - 1, p.clone())));
                        if !explained {
                            rep.damage = damage(DamageKind::Deleted, r.seq - 1, si, format!("records before seq {} are gone and no rotation record says so", r.seq));
                            break 'walk;
                        }
                    }
                    rep.first_seq = r.seq;
                }
                Some(exp) if r.seq == exp => {
                    if r.prev != prev {
                        rep.damage = damage(DamageKind::Edited, prev_seq, si, format!("record {} does not link to record {prev_seq} as stored (it was changed and re-hashed)", r.seq));
                        break 'walk;
                    }
                }
                Some(exp) if r.seq > exp => {
                    let (kind, what) = if seen.contains(&exp) { (DamageKind::Reordered, "appears later") } else { (DamageKind::Deleted, "is missing") };
                    rep.damage = damage(kind, exp, si, format!("seq {exp} {what}; found {} at line {}", r.seq, li + 1));
                    break 'walk;
                }
                Some(_) => {
                    let (kind, what) = if seen_so_far.contains(&r.seq) { (DamageKind::Inserted, "appears twice") } else { (DamageKind::Reordered, "comes after a larger seq") };
                    rep.damage = damage(kind, r.seq, si, format!("seq {} {what} (line {})", r.seq, li + 1));
                    break 'walk;
                }
            }
            if let Some((head, origin)) = expect.get(&r.seq) {
                if r.hash.as_deref() != Some(head.as_str()) {
                    rep.damage = damage(DamageKind::Edited, r.seq, si, format!("record {} differs from the signed checkpoint in {origin} (the log was rewritten)", r.seq));
                    break 'walk;
                }
            }
            seen_so_far.insert(r.seq);
            expected = Some(r.seq + 1);
            prev = r.hash.clone();
            prev_seq = r.seq;
            rep.records += 1;
        }
    }
    rep.last_seq = prev_seq;
    rep.head = prev.clone();
    tail.last_seq = prev_seq;
    tail.head = prev;
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
    if let Some((c, p)) = exported {
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
    let expect: BTreeMap<u64, (String, String)> = cps.iter().map(|(c, o)| (c.seq, (c.head.clone(), o.clone()))).collect();
    let (mut rep, _) = walk(dir, &keys, &if sig_damage.is_some() { BTreeMap::new() } else { expect })?;
    rep.checkpoints = n_local;
    if sig_damage.is_some() {
        rep.damage = sig_damage;
    }
    rep.ok = rep.damage.is_none();
    Ok(rep)
}
