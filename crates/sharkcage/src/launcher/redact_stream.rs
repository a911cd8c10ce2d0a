//! Values that must not leave the sandbox in the command's output: the
//! credentials sharkcage injected into a skill's sandbox (`system.env`, a
//! service's). The skill may use them; what it prints goes to the model and
//! the transcript, so each occurrence becomes `[sharkcage: redacted NAME]`.
//!
//! Streaming: a value may be split across two reads, so the last
//! `longest - 1` bytes of each read are held back until more output (or the
//! end) shows whether they start a value. Only calls with values to redact
//! pay for this; everything else is passed through as it arrives.

/// Redacts one output stream.
#[derive(Debug, Clone, Default)]
pub struct StreamRedactor {
    /// `(value, replacement)`, longest value first (a value inside another
    /// is redacted as part of the longer one).
    secrets: Vec<(Vec<u8>, Vec<u8>)>,
    hold: usize,
    carry: Vec<u8>,
}

/// Values shorter than this are not redacted (they would match everywhere).
pub const MIN_LEN: usize = 4;

impl StreamRedactor {
    /// `(name, value)` pairs; values shorter than [`MIN_LEN`] are skipped.
    pub fn new(values: &[(String, String)]) -> StreamRedactor {
        let mut secrets: Vec<(Vec<u8>, Vec<u8>)> = variants(values).into_iter().map(|(n, v)| (v.into_bytes(), format!("[sharkcage: redacted {n}]").into_bytes())).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        secrets.dedup_by(|a, b| a.0 == b.0);
        let hold = secrets.first().map(|s| s.0.len() - 1).unwrap_or(0);
        StreamRedactor { secrets, hold, carry: Vec::new() }
    }

    pub fn is_active(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// The output to pass on after `data` arrived.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if !self.is_active() {
            return data.to_vec();
        }
        self.carry.extend_from_slice(data);
        // Only positions whose whole longest value could already be here
        // are decided now; the rest waits.
        let until = self.carry.len().saturating_sub(self.hold);
        let (out, used) = self.replace(&self.carry, until, false);
        self.carry.drain(..used.min(self.carry.len()));
        out
    }

    /// What is held back, at the end of the stream. A stream that ends in
    /// the first bytes of a value (at least [`MIN_LEN`]) has them redacted
    /// too: the rest may follow on the other stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.carry);
        self.replace(&rest, rest.len(), true).0
    }

    /// `buf` with every value starting before `until` replaced; with `end`,
    /// a tail that begins a value too. Returns the output and how many
    /// bytes of `buf` it covers.
    fn replace(&self, buf: &[u8], until: usize, end: bool) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < until {
            if let Some((v, r)) = self.secrets.iter().find(|(v, _)| buf[i..].starts_with(v)) {
                out.extend_from_slice(r);
                i += v.len();
            } else if let Some((_, r)) = self.secrets.iter().find(|(v, _)| end && buf.len() - i >= MIN_LEN && v.starts_with(&buf[i..])) {
                out.extend_from_slice(r);
                i = buf.len();
            } else {
                out.push(buf[i]);
                i += 1;
            }
        }
        (out, i)
    }
}

/// Each value as given, lower-cased and upper-cased (host names come back
/// lower-cased from the proxy), without the ones shorter than [`MIN_LEN`].
fn variants(values: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, v) in values.iter().filter(|(_, v)| v.len() >= MIN_LEN) {
        for x in [v.clone(), v.to_lowercase(), v.to_uppercase()] {
            if !out.iter().any(|(_, o)| *o == x) {
                out.push((n.clone(), x));
            }
        }
    }
    out
}

/// `text` with every value (in any of its [`variants`], also as it appears
/// inside a JSON string) replaced: for the launcher's own notices and its
/// result, which name refused hosts and the like.
pub fn redact_text(text: &str, values: &[(String, String)]) -> String {
    let mut pairs = variants(values);
    for (n, v) in pairs.clone() {
        let json = serde_json::to_string(&v).unwrap_or_default();
        let inner = json.trim_matches('"').to_string();
        if inner != v {
            pairs.push((n, inner));
        }
    }
    pairs.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for (n, v) in pairs {
        if out.contains(&v) {
            out = out.replace(&v, &format!("[sharkcage: redacted {n}]"));
        }
    }
    out
}

/// A JSON value with the values redacted inside its strings (keys and
/// structure untouched).
pub fn redact_json(v: &mut serde_json::Value, values: &[(String, String)]) {
    match v {
        serde_json::Value::String(s) => {
            let r = redact_text(s, values);
            if r != *s {
                *s = r;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact_json(x, values)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|x| redact_json(x, values)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(values: &[(&str, &str)], chunks: &[&str]) -> String {
        let v: Vec<(String, String)> = values.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let mut r = StreamRedactor::new(&v);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.push(c.as_bytes()));
        }
        out.extend(r.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_are_redacted_across_any_split() {
        let text = "key=S3CRET-VALUE and again S3CRET-VALUE.";
        let want = "key=[sharkcage: redacted K] and again [sharkcage: redacted K].";
        for split in 0..=text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(run(&[("K", "S3CRET-VALUE")], &[a, b]), want, "split at {split}");
        }
        // Byte by byte.
        let bytes: Vec<String> = text.chars().map(|c| c.to_string()).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(run(&[("K", "S3CRET-VALUE")], &refs), want);
    }

    #[test]
    fn the_longer_value_wins_short_ones_are_skipped_and_nothing_else_changes() {
        assert_eq!(run(&[("A", "abcd"), ("B", "abcdefgh")], &["xxabcdefghxxabcdyy"]), "xx[sharkcage: redacted B]xx[sharkcage: redacted A]yy");
        assert_eq!(run(&[("A", "ab")], &["abab"]), "abab");
        assert_eq!(run(&[], &["plain output"]), "plain output");
        assert_eq!(run(&[("K", "S3CRET")], &["S3C"]), "S3C", "a short prefix at the end is kept as it is");
        assert_eq!(run(&[("K", "S3CRET-VALUE")], &["xS3CRET-"]), "x[sharkcage: redacted K]", "a stream ending in the start of a value");
        assert_eq!(run(&[("K", "SuperSecret")], &["supersecret.example.com"]), "[sharkcage: redacted K].example.com", "lower-cased too");
    }

    #[test]
    fn notices_and_results_are_redacted_too() {
        let v = vec![("K".to_string(), "Sup\"erSecret".to_string())];
        assert_eq!(redact_text("denied HTTP sup\"ersecret.example.com:80", &v), "denied HTTP [sharkcage: redacted K].example.com:80");
        let mut json = serde_json::json!({ "detail": "x Sup\"erSecret y", "mode": "none" });
        redact_json(&mut json, &[("K".into(), "mode".into()), ("K".into(), "Sup\"erSecret".into())]);
        assert_eq!(json, serde_json::json!({ "detail": "x [sharkcage: redacted K] y", "mode": "none" }), "keys untouched");
    }
}
