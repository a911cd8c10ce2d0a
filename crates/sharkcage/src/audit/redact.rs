//! Secrets never reach the audit log: parameters are redacted before a
//! record is written.
//!
//! * A value under a key that names a secret (`token`, `apiKey`, `secret`,
//!   `password`, `passwd`, `authorization`, `cookie`, `credential`,
//!   `private_key`, `session_token`, …) becomes `"[redacted]"`.
//! * Inside any string, well-known secret shapes are replaced by
//!   `[redacted:<kind>]`: private key blocks, `Bearer`/`Basic` credentials,
//!   `sk-…`/`sk-ant-…` API keys, GitHub (`ghp_`, `github_pat_`, …), Slack
//!   (`xox?-`), AWS access key ids, Google API keys, JWTs, passwords in URLs
//!   (`scheme://user:pass@`), and `NAME=value` / `--password value` pairs
//!   whose name looks secret.
//!
//! Parameters larger than [`MAX_PARAMS_BYTES`] after redaction are kept only
//! as a SHA-256 digest.

use serde_json::Value;

/// Largest redacted parameter object kept in full.
pub const MAX_PARAMS_BYTES: usize = 8 * 1024;

fn secret_key(k: &str) -> bool {
    let k: String = k.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    ["token", "secret", "password", "passwd", "passphrase", "apikey", "authorization", "auth", "cookie", "credential", "privatekey", "accesskey", "clientsecret", "sessionkey"]
        .iter()
        .any(|s| k.contains(s))
        || k == "key"
        || k.ends_with("key") && k.len() <= 12 && k != "sessionkey" && k != "toolkey"
}

/// Redact a JSON value (objects, arrays and strings, recursively).
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let red = if secret_key(k) && !v.is_null() && !v.is_boolean() { Value::String("[redacted]".into()) } else { redact(v) };
                    (k.clone(), red)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        Value::String(s) => Value::String(redact_str(s)),
        other => other.clone(),
    }
}

/// Replace secret shapes inside free text.
pub fn redact_str(s: &str) -> String {
    let mut out = s.to_string();
    // Private key blocks, whole.
    while let Some(start) = out.find("-----BEGIN ") {
        let Some(hdr_end) = out[start + 11..].find("-----").map(|i| start + 11 + i + 5) else { break };
        let header = &out[start..hdr_end];
        if !header.contains("PRIVATE KEY") {
            // Not a key: stop looking at this one.
            let tail = redact_str(&out[hdr_end..]);
            return format!("{}{}", &out[..hdr_end], tail);
        }
        let end = out[hdr_end..].find("-----END ").and_then(|i| out[hdr_end + i + 9..].find("-----").map(|j| hdr_end + i + 9 + j + 5)).unwrap_or(out.len());
        out.replace_range(start..end, "[redacted:private-key]");
    }
    let words: Vec<&str> = out.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == ';').collect();
    let mut res = String::with_capacity(out.len());
    let mut redact_next = false;
    for w in words {
        let (tok, sep) = match w.char_indices().last() {
            Some((i, c)) if c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == ';' => (&w[..i], &w[i..]),
            _ => (w, ""),
        };
        if redact_next && !tok.is_empty() {
            res.push_str("[redacted]");
            res.push_str(sep);
            redact_next = false;
            continue;
        }
        let lower = tok.to_ascii_lowercase();
        // `Bearer xyz`, `--password xyz`, `-p xyz` style: the next word.
        if lower == "bearer" || lower == "basic" || (lower.starts_with("--") && secret_key(&lower[2..]) && !lower.contains('=')) {
            res.push_str(tok);
            res.push_str(sep);
            redact_next = !sep.is_empty();
            continue;
        }
        res.push_str(&redact_token(tok));
        res.push_str(sep);
    }
    res
}

fn redact_token(tok: &str) -> String {
    // NAME=value / --name=value with a secret-looking name.
    if let Some((name, value)) = tok.split_once('=') {
        let n = name.trim_start_matches('-');
        if !value.is_empty() && secret_key(n) {
            return format!("{name}=[redacted]");
        }
        let rv = redact_token(value);
        if rv != value {
            return format!("{name}={rv}");
        }
    }
    // scheme://user:pass@host
    if let Some(i) = tok.find("://") {
        let rest = &tok[i + 3..];
        if let Some(at) = rest.find('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!("{}://{}:[redacted]@{}", &tok[..i], &rest[..colon], &rest[at + 1..]);
            }
        }
    }
    let t = tok.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-' && c != '.');
    let kind = if (t.starts_with("sk-") || t.starts_with("sk_live_") || t.starts_with("sk_test_") || t.starts_with("rk_live_")) && t.len() >= 20 {
        Some("api-key")
    } else if ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-"].iter().any(|p| t.starts_with(p)) && t.len() >= 20 {
        Some("github-token")
    } else if t.len() >= 15 && t.starts_with("xox") && t.as_bytes().get(4) == Some(&b'-') {
        Some("slack-token")
    } else if t.len() == 20 && (t.starts_with("AKIA") || t.starts_with("ASIA")) && t.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        Some("aws-key-id")
    } else if t.starts_with("AIza") && t.len() >= 35 {
        Some("google-api-key")
    } else if t.starts_with("eyJ") && t.matches('.').count() == 2 && t.len() >= 30 {
        Some("jwt")
    } else if t.starts_with("npm_") && t.len() >= 36 {
        Some("npm-token")
    } else {
        None
    };
    match kind {
        Some(k) => tok.replace(t, &format!("[redacted:{k}]")),
        None => tok.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_shapes() {
        let v = redact(&json!({
            "command": "curl -H 'Authorization: Bearer abc.def.ghi' https://bob:hunter2@example.com/x; export OPENAI_API_KEY=sk-proj-aaaaaaaaaaaaaaaaaaaaaaaa; echo AKIAABCDEFGHIJKLMNOP; mysql --password s3cret",
            "apiKey": "plain-but-named",
            "env": {"GITHUB_TOKEN": "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "PATH": "/usr/bin"},
            "content": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\nrest",
            "path": "notes.txt",
            "count": 3,
        }));
        let s = v.to_string();
        for secret in ["abc.def.ghi", "hunter2", "sk-proj-aaaa", "AKIAABCDEFGHIJKLMNOP", "s3cret", "plain-but-named", "ghp_abc", "AAAA\n"] {
            assert!(!s.contains(secret), "{secret} survived: {s}");
        }
        for kept in ["https://bob:[redacted]@example.com/x", "/usr/bin", "notes.txt", "rest", "curl -H"] {
            assert!(s.contains(kept), "{kept} lost: {s}");
        }
        assert_eq!(v["count"], 3);
        assert_eq!(redact_str("ls -la /tmp"), "ls -la /tmp");
    }
}
