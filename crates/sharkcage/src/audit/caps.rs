//! Field caps: no string of a record is larger than a small, fixed size.
//!
//! A hostile sandbox chooses many of the strings that end up in a record —
//! the host of a refused `CONNECT`, a file-tool path, the reason that quotes
//! them — and a 60 KB host per refusal let it flush the log's history with
//! a few hundred refusals. Every record passes through [`cap_record`] in the
//! writer's append path (`writer::prepare`), after redaction and before it
//! is queued and chained, so proxy records, `sc exec` records and the
//! addon's `auditAppend` records are all capped the same way.
//!
//! | field | cap |
//! |---|---|
//! | `kind`, `session`, `agent`, `run`, `skill`, `tool`, `toolCall`, `sandbox`, `decision`, `host`, `ip`, `paramsDigest` | [`NAME_CAP`] (256 bytes) |
//! | `reason`, `path` | [`TEXT_CAP`] (1 KiB) |
//! | every string inside `params` and `detail` | [`TEXT_CAP`] (1 KiB) |
//! | every object key inside `params` and `detail` | [`KEY_CAP`] (128 bytes) |
//! | `detail` as a whole | [`MAX_DETAIL_BYTES`] (8 KiB; beyond, only its size and digest) |
//! | `params` as a whole | `redact::MAX_PARAMS_BYTES` (8 KiB; beyond, only `paramsDigest`) |
//!
//! A capped string keeps its first bytes (cut on a UTF-8 character
//! boundary) followed by a marker naming what was cut and the SHA-256 of
//! the whole value: `…[+61234 bytes sha256:<64 hex>]`. The digest lets an
//! operator match the record against the full value found elsewhere. `ts`
//! is normalised to the writer's own format (RFC 3339 UTC, milliseconds).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::record::{hex, Record};

/// Names, labels, hosts, addresses.
pub const NAME_CAP: usize = 256;
/// Free text: reasons, paths, strings inside `params`/`detail`.
pub const TEXT_CAP: usize = 1024;
/// Object keys inside `params`/`detail`.
pub const KEY_CAP: usize = 128;
/// Largest `detail` kept in full (after its strings are capped).
pub const MAX_DETAIL_BYTES: usize = 8 * 1024;

/// `s` cut to at most `max` bytes on a character boundary, plus the marker
/// `…[+N bytes sha256:…]` when anything was cut. Unchanged if it fits.
pub fn cap_str(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = hex(&Sha256::digest(s.as_bytes()));
    format!("{}…[+{} bytes sha256:{digest}]", &s[..cut], s.len() - cut)
}

fn cap_opt(v: &mut Option<String>, max: usize) {
    if let Some(s) = v.as_mut() {
        if s.len() > max {
            *s = cap_str(s, max);
        }
    }
}

/// Every string and key inside `v` capped (structure kept).
pub fn cap_value(v: Value) -> Value {
    match v {
        Value::String(s) if s.len() > TEXT_CAP => Value::String(cap_str(&s, TEXT_CAP)),
        Value::Array(a) => Value::Array(a.into_iter().map(cap_value).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (if k.len() > KEY_CAP { cap_str(&k, KEY_CAP) } else { k }, cap_value(v))).collect::<Map<_, _>>()),
        other => other,
    }
}

/// `detail` with its strings capped; a `detail` still larger than
/// [`MAX_DETAIL_BYTES`] is replaced by its size and digest.
fn cap_detail(d: Value) -> Value {
    let capped = cap_value(d);
    let bytes = serde_json::to_vec(&capped).unwrap_or_default();
    if bytes.len() <= MAX_DETAIL_BYTES {
        return capped;
    }
    serde_json::json!({"capped": {"bytes": bytes.len(), "sha256": hex(&Sha256::digest(&bytes))}})
}

/// The record with every field within its cap (see the module header).
/// `params` is expected redacted already; its overall size rule
/// (`paramsDigest`) is applied by the caller, which knows the full value.
pub fn cap_record(mut r: Record) -> Record {
    for f in [&mut r.session, &mut r.agent, &mut r.run, &mut r.skill, &mut r.tool, &mut r.tool_call, &mut r.sandbox, &mut r.decision, &mut r.host, &mut r.ip, &mut r.params_digest] {
        cap_opt(f, NAME_CAP);
    }
    cap_opt(&mut r.reason, TEXT_CAP);
    cap_opt(&mut r.path, TEXT_CAP);
    if r.kind.len() > NAME_CAP {
        r.kind = cap_str(&r.kind, NAME_CAP);
    }
    // `params` arrive capped (`writer::redact_record` caps them while it
    // decides between the value and its digest); `ts` is stamped there too.
    r.detail = r.detail.map(cap_detail);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_string_keeps_its_head_and_names_the_rest_with_its_digest() {
        let host = format!("{}.example.com", "a".repeat(60_000));
        let c = cap_str(&host, NAME_CAP);
        let digest = hex(&Sha256::digest(host.as_bytes()));
        assert_eq!(c, format!("{}…[+{} bytes sha256:{digest}]", "a".repeat(256), host.len() - 256));
        assert_eq!(cap_str("short", NAME_CAP), "short");
        assert_eq!(cap_str(&"x".repeat(NAME_CAP), NAME_CAP), "x".repeat(NAME_CAP), "exactly the cap is kept whole");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // 'é' is two bytes: a cut at an odd byte would split one.
        let s = "é".repeat(1000);
        for max in [1, 3, 255, 256, 257] {
            let c = cap_str(&s, max);
            let head = c.split('…').next().unwrap();
            assert!(head.len() <= max && head.len() + 1 >= max, "{max}: {}", head.len());
            assert!(head.chars().all(|ch| ch == 'é'));
        }
    }

    #[test]
    fn every_field_of_a_record_is_capped() {
        let big = "Z".repeat(70_000);
        let mut r = Record::new("file_op");
        r.ts = "2026-11-26T20:18:15Z".into();
        for f in [&mut r.session, &mut r.agent, &mut r.run, &mut r.skill, &mut r.tool, &mut r.tool_call, &mut r.sandbox, &mut r.decision, &mut r.host, &mut r.ip, &mut r.reason, &mut r.path] {
            *f = Some(big.clone());
        }
        // Parameters are capped by `cap_value` (the writer does it while redacting).
        r.params = Some(cap_value(serde_json::json!({"command": big, "nested": [{"deep": big}], big.clone(): 1})));
        r.detail = Some(serde_json::json!({"note": big}));
        let c = cap_record(r);
        let line = serde_json::to_string(&c).unwrap();
        assert!(line.len() < 20 * 1024, "{}", line.len());
        assert!(!line.contains(&"Z".repeat(TEXT_CAP + 1)));
        assert!(c.host.unwrap().contains(&format!("sha256:{}", hex(&Sha256::digest(big.as_bytes())))));
        assert_eq!(c.params.as_ref().unwrap()["nested"][0]["deep"].as_str().unwrap().len(), TEXT_CAP + "…[+ bytes sha256:]".len() + 5 + 64);
        // A detail of many small strings is still bounded as a whole.
        let mut r = Record::new("x");
        r.detail = Some(Value::Array((0..5000).map(|i| Value::String(format!("item-{i}"))).collect()));
        let d = cap_record(r).detail.unwrap();
        assert!(d["capped"]["bytes"].as_u64().unwrap() > MAX_DETAIL_BYTES as u64, "{d}");
    }
}
