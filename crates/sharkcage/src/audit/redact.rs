//! Secrets never reach the audit log: parameters are redacted before a
//! record is written.
//!
//! * A value under a key that names a secret (`token`, `apiKey`, `secret`,
//!   `password`, `passwd`, `authorization`, `cookie`, `credential`,
//!   `private_key`, `session_token`, …) becomes `"[redacted]"`.
//! * Inside any string, well-known secret shapes are replaced by
//!   `[redacted:<kind>]`: private key blocks, `Bearer`/`Basic` credentials
//!   and the word after a credential header (`Authorization: …`,
//!   `X-Api-Key: …`), the token shapes of `secretshape` (`sk-…`/`sk-ant-…`,
//!   GitHub, GitLab, Slack, SendGrid, AWS key ids, Google, Stripe, npm,
//!   JWTs, …), credentials in URLs (`scheme://user:pass@`, scheme-less
//!   `user:pass@host:port`, a secret query, fragment or path parameter, a
//!   webhook's path), `key=value` credentials (`password=`, `AccountKey=`,
//!   `-Dapp.password=`) and `NAME=value` / `--password value` pairs whose
//!   name looks secret — by the same rules that withhold environment
//!   variables (`DB_PASS=…`, `SENTRY_DSN=…`, `SSHPASS=…`).
//!
//! Parameters larger than [`MAX_PARAMS_BYTES`] after redaction are kept only
//! as a SHA-256 digest.

use serde_json::Value;

use crate::secretshape::{self, is_separator, key_looks_secret, trim_token};

/// Largest redacted parameter object kept in full.
pub const MAX_PARAMS_BYTES: usize = 8 * 1024;

/// Does a key or a `NAME=` in text name a secret? An upper-case
/// environment-style name by the shared name rules (`DB_PASS`,
/// `SENTRY_DSN`, not `TOKENIZERS_PARALLELISM`); any other key as a key of
/// structured data (`apiKey`) or of a `key=value` credential (`pwd`,
/// `AccountKey`, not `PasswordAuthentication`).
fn secret_key(k: &str) -> bool {
    if secretshape::env_style(k) && k.bytes().any(|b| b.is_ascii_uppercase()) && !k.bytes().any(|b| b.is_ascii_lowercase()) {
        return secretshape::name_rule(k).is_some();
    }
    key_looks_secret(k) || secretshape::pair_key_secret(k) || (secretshape::env_style(k) && secretshape::name_rule(k).is_some() && k.contains('_'))
}

/// Authorization schemes: the word after one is the credential.
const AUTH_SCHEMES: &[&str] = &["bearer", "basic", "token", "digest", "apikey"];

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
    let mut from = 0;
    while let Some(r) = secretshape::private_key_block(&out, from) {
        from = r.start + "[redacted:private-key]".len();
        out.replace_range(r, "[redacted:private-key]");
    }
    let words: Vec<&str> = out.split_inclusive(is_separator).collect();
    let mut res = String::with_capacity(out.len());
    let mut redact_next = false;
    for w in words {
        let (tok, sep) = match w.char_indices().last() {
            Some((i, c)) if is_separator(c) => (&w[..i], &w[i..]),
            _ => (w, ""),
        };
        let lower = tok.to_ascii_lowercase();
        if redact_next && !tok.is_empty() {
            // `Authorization: Basic xyz`: the scheme stays, the credential goes.
            let scheme = AUTH_SCHEMES.contains(&lower.as_str());
            res.push_str(if scheme { tok } else { "[redacted]" });
            res.push_str(sep);
            redact_next = scheme && !sep.is_empty();
            continue;
        }
        // `Bearer xyz`, `--password xyz`, `Authorization: xyz`: the next word.
        let header = lower.strip_suffix(':').is_some_and(|h| !h.is_empty() && !h.contains(['/', '=']) && secretshape::pair_key_secret(h));
        if AUTH_SCHEMES.contains(&lower.as_str()) || header || (lower.starts_with("--") && secret_key(&lower[2..]) && !lower.contains('=')) {
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
    // scheme://user:pass@host, scheme://TOKEN@host, ?access_token=…&…
    let creds = secretshape::url_credentials(tok);
    if !creds.is_empty() {
        let mut out = tok.to_string();
        for (r, _) in creds.into_iter().rev() {
            out.replace_range(r, "[redacted]");
        }
        return out;
    }
    // NAME=value / --name=value with a secret-looking name.
    if let Some((name, value)) = tok.split_once('=') {
        let n = name.trim_start_matches('-');
        if !value.is_empty() && (secret_key(n) || secretshape::pair_key_secret(name)) {
            return format!("{name}=[redacted]");
        }
        let rv = redact_token(value);
        if rv != value {
            return format!("{name}={rv}");
        }
    }
    let t = trim_token(tok);
    match secretshape::token_kind(t) {
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

    /// The environment filter's name rules and value shapes redact too.
    #[test]
    fn shared_rules_with_the_environment_filter() {
        let cmd = "export DB_PASS=hunter2 SENTRY_DSN=dsn-val; psql postgres://u:pgpw@db/app; git clone https://oauth2:glpat-abcdefghijklmnopqrst@gitlab.example/x; curl 'https://h/x?access_token=qtok&page=2'; echo glpat-zyxwvutsrqponmlkjihg";
        let out = redact_str(cmd);
        for secret in ["hunter2", "dsn-val", "pgpw", "glpat-abc", "qtok", "glpat-zyx"] {
            assert!(!out.contains(secret), "{secret} survived: {out}");
        }
        for kept in ["psql postgres://u:[redacted]@db/app", "page=2", "[redacted:gitlab-token]"] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
        let v = redact(&json!({"env": {"MYSQL_PWD": "p", "EDITOR": "vi"}}));
        assert_eq!(v["env"]["MYSQL_PWD"], "[redacted]");
        assert_eq!(v["env"]["EDITOR"], "vi");
        // The rules added with them: credential keys, headers, scheme-less URLs, new token shapes.
        let cmd = "export SSHPASS=sshpw1 LDAP_BINDPW=ldappw1 NONCE_SALT=salt1; PGCONN='host=db password=pgpw1'; \
            java -Dapi.password=jvmpw1 -jar x; curl -H 'Authorization: Basic dXNlcjpodW50ZXIy' -H 'X-Api-Key: hdrkey1' \
            'https://h/cb#access_token=fragtok1' https://u%3Aencpw1@h/ ; psql app:bare_pw1@db:5432/app; \
            echo SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG whsec_abcdefghijklmnopqrstuvwxyz012345 \
            xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAtMTIzNDU2Nzg5MA glsoat-abcdefghijklmnopqrst 'AccountKey=azkey1==;'";
        let out = redact_str(cmd);
        for secret in [
            "sshpw1", "ldappw1", "salt1", "pgpw1", "jvmpw1", "dXNlcjpodW50ZXIy", "hdrkey1", "fragtok1", "encpw1", "bare_pw1",
            "SG.abc", "whsec_abc", "xoxe.xoxp", "glsoat-abc", "azkey1",
        ] {
            assert!(!out.contains(secret), "{secret} survived: {out}");
        }
        for kept in ["Authorization: Basic [redacted]", "psql app:[redacted]@db:5432/app", "host=db", "[redacted:sendgrid-key]", "-jar x"] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
        // Look-alikes stay readable.
        let plain = "KEYMAP=us TOKENIZERS_PARALLELISM=false XDG_SESSION_TYPE=x11 ssh -o PasswordAuthentication=no git@github.com:o/r.git";
        assert_eq!(redact_str(plain), plain);
        // Not a key block: left alone.
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(redact_str(cert), cert);
    }
}
