//! One audit record, its canonical serialisation and its hash.
//!
//! A record is one JSON line. Its `hash` is computed over the **canonical
//! form**: the compact JSON of the record without `hash`, keys in this fixed
//! order (absent optional fields omitted):
//!
//! `v, seq, ts, kind, session, agent, run, skill, tool, toolCall, sandbox,
//! decision, reason, params, paramsDigest, exitCode, durationMs, bytesUp,
//! bytesDown, host, port, ip, path, detail, prev`
//!
//! Objects inside `params` and `detail` have their keys sorted (by UTF-8
//! bytes), strings use JSON's standard escapes, numbers their shortest
//! round-trip form. `hash` = hex SHA-256 of the canonical bytes — or, for a
//! keyed log, hex HMAC-SHA256 with the log's key — and `prev` is the
//! previous record's `hash` (`null` for the first record of the log).
//! Verification parses each line and recomputes both; it never trusts the
//! stored `hash` alone.

use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Current record version.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    pub v: u32,
    pub seq: u64,
    /// UTC, RFC 3339 with milliseconds (`2026-11-26T20:51:00.123Z`).
    pub ts: String,
    /// `exec`, `tool_call`, `file_op`, `net`, `approval`, `policy_change`,
    /// `violation`, `recovered`, `rotated`, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// `allow`, `deny`, `error`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Redacted parameters (see `redact.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// SHA-256 of the redacted parameters when they were too large to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_up: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_down: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    pub prev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// How record hashes are computed for a log.
#[derive(Clone)]
pub enum Hasher {
    Sha256,
    Hmac(hmac::Key),
}

impl Hasher {
    pub fn name(&self) -> &'static str {
        match self {
            Hasher::Sha256 => "sha256",
            Hasher::Hmac(_) => "hmac-sha256",
        }
    }
    pub fn hash(&self, bytes: &[u8]) -> String {
        self.hash_parts(&[bytes])
    }
    /// The hash of the concatenation of `parts` (without building it).
    pub fn hash_parts(&self, parts: &[&[u8]]) -> String {
        match self {
            Hasher::Sha256 => {
                let mut d = Sha256::new();
                for p in parts {
                    d.update(p);
                }
                hex(&d.finalize())
            }
            Hasher::Hmac(k) => {
                let mut c = hmac::Context::with_key(k);
                for p in parts {
                    c.update(p);
                }
                hex(c.sign().as_ref())
            }
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2).map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

/// serde_json's `Map` keeps keys sorted (its default `BTreeMap`), unless a
/// dependency turned on its `preserve_order` feature; checked once.
fn map_is_sorted() -> bool {
    static SORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SORTED.get_or_init(|| {
        let mut m = serde_json::Map::new();
        m.insert("b".into(), Value::Null);
        m.insert("a".into(), Value::Null);
        m.keys().next().map(String::as_str) == Some("a")
    })
}

/// `v` with every object's keys sorted (whatever serde_json's map type).
pub fn canonical_value(v: Value) -> Value {
    if map_is_sorted() {
        return v;
    }
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
            pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Value::Object(pairs.into_iter().map(|(k, v)| (k, canonical_value(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical_value).collect()),
        other => other,
    }
}

impl Record {
    /// Put nested objects in canonical key order (a no-op with serde_json's
    /// default sorted map).
    fn canonicalize(&mut self) {
        if !map_is_sorted() {
            self.params = self.params.take().map(canonical_value);
            self.detail = self.detail.take().map(canonical_value);
        }
    }

    /// The canonical bytes (the record without `hash`).
    pub fn canonical(&self) -> Vec<u8> {
        let mut r = self.clone();
        r.hash = None;
        r.canonicalize();
        serde_json::to_vec(&r).expect("a record always serialises")
    }

    /// Compute and set `hash`; return the line (without newline): the
    /// canonical bytes with `,"hash":"…"` before the closing brace.
    pub fn seal(&mut self, h: &Hasher) -> Vec<u8> {
        self.canonicalize();
        if self.duration_ms.is_some_and(|d| !d.is_finite()) {
            self.duration_ms = None;
        }
        self.hash = None;
        let mut line = serde_json::to_vec(self).expect("a record always serialises");
        let hash = h.hash(&line);
        line.pop(); // the closing brace
        line.extend_from_slice(b",\"hash\":\"");
        line.extend_from_slice(hash.as_bytes());
        line.extend_from_slice(b"\"}");
        self.hash = Some(hash);
        line
    }

    /// The stored hash matches the record's content.
    pub fn hash_ok(&self, h: &Hasher) -> bool {
        self.hash.as_deref() == Some(h.hash(&self.canonical()).as_str())
    }

    /// A record of `kind` with nothing else set (the writer fills v, seq,
    /// ts, prev and hash).
    pub fn new(kind: &str) -> Record {
        Record { kind: kind.to_string(), ..Default::default() }
    }

    /// Was this a refusal (for `sc audit --blocked`)?
    pub fn blocked(&self) -> bool {
        matches!(self.decision.as_deref(), Some("deny" | "denied" | "blocked"))
    }
}

/// A record made ready by its producer: redacted and serialised except for
/// what only the writer knows (`v`, `seq`, `prev`, `hash`). This is what
/// waits in the writer's queue — a few hundred bytes, not a parsed record —
/// and it moves the serialisation work off the writer thread.
#[derive(Debug, Clone)]
pub struct Prepared {
    ts: String,
    /// The canonical JSON of the fields from `kind` to `detail`, without
    /// braces.
    body: Vec<u8>,
}

/// `kind` … `detail` of a record, serialised exactly as in [`Record`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skill: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: &'a Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params_digest: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: &'a Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: &'a Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_up: &'a Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_down: &'a Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: &'a Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: &'a Option<Value>,
}

impl Prepared {
    /// Serialise `r` (already redacted) for the writer.
    pub fn new(mut r: Record) -> Prepared {
        r.canonicalize();
        if r.duration_ms.is_some_and(|d| !d.is_finite()) {
            r.duration_ms = None;
        }
        let b = Body {
            kind: &r.kind,
            session: &r.session,
            agent: &r.agent,
            run: &r.run,
            skill: &r.skill,
            tool: &r.tool,
            tool_call: &r.tool_call,
            sandbox: &r.sandbox,
            decision: &r.decision,
            reason: &r.reason,
            params: &r.params,
            params_digest: &r.params_digest,
            exit_code: &r.exit_code,
            duration_ms: &r.duration_ms,
            bytes_up: &r.bytes_up,
            bytes_down: &r.bytes_down,
            host: &r.host,
            port: &r.port,
            ip: &r.ip,
            path: &r.path,
            detail: &r.detail,
        };
        let mut body = serde_json::to_vec(&b).expect("a record always serialises");
        body.pop();
        body.remove(0);
        let ts = if r.ts.is_empty() { format_ts(now_ms()) } else { r.ts };
        Prepared { ts, body }
    }

    /// The line (with `\n`) and hash of this record as `seq` after `prev`:
    /// the same bytes as [`Record::seal`] would give.
    pub fn seal(&self, seq: u64, prev: Option<&str>, h: &Hasher) -> (Vec<u8>, String) {
        let mut line = Vec::with_capacity(self.body.len() + 200);
        line.extend_from_slice(b"{\"v\":");
        line.extend_from_slice(VERSION.to_string().as_bytes());
        line.extend_from_slice(b",\"seq\":");
        line.extend_from_slice(seq.to_string().as_bytes());
        line.extend_from_slice(b",\"ts\":");
        serde_json::to_writer(&mut line, &self.ts).expect("a string serialises");
        line.push(b',');
        line.extend_from_slice(&self.body);
        line.extend_from_slice(b",\"prev\":");
        serde_json::to_writer(&mut line, &prev).expect("a string serialises");
        line.push(b'}');
        let hash = h.hash(&line);
        line.pop();
        line.extend_from_slice(b",\"hash\":\"");
        line.extend_from_slice(hash.as_bytes());
        line.extend_from_slice(b"\"}\n");
        (line, hash)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_ts(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// Parse RFC 3339 UTC (`…Z`, optional fraction) or a date `YYYY-MM-DD`;
/// returns ms since the epoch.
pub fn parse_ts(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, mo as u32, d as u32) * 86_400_000;
    if b.len() > 10 {
        if !(b[10] == b'T' || b[10] == b' ') || b.len() < 19 || !s.ends_with('Z') {
            return None;
        }
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        ms += (h * 3600 + mi * 60 + se) * 1000;
        let frac = &s[19..s.len() - 1];
        if let Some(f) = frac.strip_prefix('.') {
            let f3: String = f.chars().chain("000".chars()).take(3).collect();
            ms += f3.parse::<i64>().ok()?;
        } else if !frac.is_empty() {
            return None;
        }
    }
    u64::try_from(ms).ok()
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_fixed_and_hash_detects_edits() {
        let mut r = Record::new("exec");
        r.v = VERSION;
        r.seq = 7;
        r.ts = "2026-11-26T20:51:00.123Z".into();
        r.params = Some(serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}}));
        r.exit_code = Some(0);
        r.prev = Some("ab".repeat(32));
        let line = r.seal(&Hasher::Sha256);
        let text = String::from_utf8(line).unwrap();
        assert!(text.starts_with(r#"{"v":1,"seq":7,"ts":"2026-11-26T20:51:00.123Z","kind":"exec","params":{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1},"exitCode":0,"prev":""#), "{text}");
        let back: Record = serde_json::from_str(&text).unwrap();
        assert!(back.hash_ok(&Hasher::Sha256));
        let mut edited = back.clone();
        edited.exit_code = Some(1);
        assert!(!edited.hash_ok(&Hasher::Sha256));
        let key = Hasher::Hmac(hmac::Key::new(hmac::HMAC_SHA256, b"k"));
        assert!(!back.hash_ok(&key), "a keyed log does not accept plain hashes");
    }

    #[test]
    fn prepared_lines_are_the_records_canonical_lines() {
        let mut r = Record::new("net");
        r.ts = "2026-11-26T20:51:00.123Z".into();
        r.session = Some("s \"quoted\" \u{e9}".into());
        r.params = Some(serde_json::json!({"z": [1, 2.5, null], "a": {"y": true}}));
        r.duration_ms = Some(1.25);
        r.port = Some(443);
        r.detail = Some(serde_json::json!({"k": "v"}));
        let h = Hasher::Hmac(hmac::Key::new(hmac::HMAC_SHA256, b"key"));
        for prev in [None, Some("ab".repeat(32))] {
            let (line, hash) = Prepared::new(r.clone()).seal(9, prev.as_deref(), &h);
            let mut full = r.clone();
            full.v = VERSION;
            full.seq = 9;
            full.prev = prev.clone();
            let mut want = full.seal(&h);
            want.push(b'\n');
            assert_eq!(String::from_utf8(line).unwrap(), String::from_utf8(want).unwrap());
            assert_eq!(Some(hash), full.hash);
        }
    }

    #[test]
    fn timestamps_round_trip() {
        for ms in [0u64, 1_795_724_295_972, 951_782_400_000 /* 2000-02-29 */, 4_102_444_799_999] {
            assert_eq!(parse_ts(&format_ts(ms)), Some(ms), "{}", format_ts(ms));
        }
        assert_eq!(format_ts(1_795_724_295_972), "2026-11-26T20:18:15.972Z");
        assert_eq!(parse_ts("2026-11-26"), Some(1_795_651_200_000));
        assert_eq!(parse_ts("2026-11-26T20:18:15Z"), Some(1_795_724_295_000));
        for bad in ["2026-13-01", "yesterday", "2026-11-26T20:18:15", "2026-11-26T25:00:00Z"] {
            assert_eq!(parse_ts(bad), None, "{bad}");
        }
    }
}
