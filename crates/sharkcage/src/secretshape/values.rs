//! Values that carry a credential, whatever they are called
//! ([`value_kind`]), and the spans of credentials inside URLs
//! ([`url_credentials`], which the audit redaction replaces).
//!
//! A value is read as words (split at [`is_separator`]); a word carries a
//! credential when it is
//! * a URL with one: `scheme://user:pass@host` (also `user%3Apass@`), a
//!   token as the user name, a secret query, fragment or path parameter
//!   (`?pass=`, `#access_token=`, `;password=`), a webhook URL; or
//!   scheme-less `user:pass@host[:port][/db]`;
//! * a word of a known token shape (`super::tokens`);
//! * a `key=value` pair whose key names the credential
//!   (`super::names::pair_key_secret`: libpq `password=`, ADO.NET
//!   `Password=`, Azure `AccountKey=`, JVM `-Dapp.password=`, git
//!   credential `password=`, header `x-honeycomb-team=`), also among pairs
//!   joined by `&`;
//! * or it follows `Bearer`, `Basic` (base64) or a credential header
//!   (`Authorization:`, `X-Api-Key:`).

use std::ops::Range;

use super::names::pair_key_secret;
use super::tokens::{token_kind, trim_token};

/// Does a word separate words of free text?
pub fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == ';'
}

/// The span of the first private key block (`-----BEGIN … PRIVATE KEY-----`
/// to its `-----END …-----`, or to the end) at or after `from`.
pub fn private_key_block(s: &str, from: usize) -> Option<Range<usize>> {
    let mut at = from;
    loop {
        let start = at + s.get(at..)?.find("-----BEGIN ")?;
        let hdr_end = start + 11 + s[start + 11..].find("-----")? + 5;
        if !s[start..hdr_end].contains("PRIVATE KEY") {
            at = hdr_end;
            continue;
        }
        let end = s[hdr_end..]
            .find("-----END ")
            .and_then(|i| s[hdr_end + i + 9..].find("-----").map(|j| hdr_end + i + 9 + j + 5))
            .unwrap_or(s.len());
        return Some(start..end);
    }
}

/// The parts of a URL-like word that are credentials, in order: the
/// password of `scheme://user:pass@host` (or `user%3Apass@`), a user name
/// of a known token shape (`https://ghp_…@github.com`), the path of a
/// webhook URL, and the value of every secret-named query, fragment or
/// path parameter (`?access_token=…`, `#access_token=…`, `;password=…`,
/// `&X-Amz-Signature=…`). A word without a scheme: the password of
/// `user:pass@host[:port][/path]`.
pub fn url_credentials(tok: &str) -> Vec<(Range<usize>, &'static str)> {
    let Some(scheme_end) = tok.find("://") else { return schemeless_password(tok).into_iter().collect() };
    let auth_start = scheme_end + 3;
    let auth_end = tok[auth_start..].find(['/', '?', '#']).map_or(tok.len(), |i| auth_start + i);
    let authority = &tok[auth_start..auth_end];
    let mut found: Vec<_> = userinfo_credential(authority).map(|(r, why)| (auth_start + r.start..auth_start + r.end, why)).into_iter().collect();
    let host = authority.rsplit('@').next().unwrap_or(authority);
    found.extend(webhook_path(host, tok, auth_end));
    found.extend(secret_params(tok, auth_end));
    found
}

/// The first of [`url_credentials`].
pub fn url_credential(tok: &str) -> Option<(Range<usize>, &'static str)> {
    url_credentials(tok).into_iter().next()
}

/// In `user:pass@host` (an authority), the password, or a user name of a
/// known token shape; `%3A` counts as the `:`.
fn userinfo_credential(authority: &str) -> Option<(Range<usize>, &'static str)> {
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let colon = userinfo.find(':').map(|c| c + 1).or_else(|| userinfo.to_ascii_lowercase().find("%3a").map(|c| c + 3));
    match colon {
        Some(p) if p < userinfo.len() => Some((p..at, "password in a URL")),
        None if token_kind(userinfo).is_some() => Some((0..at, "token in a URL")),
        _ => None,
    }
}

/// Hosts and path starts of webhook URLs, whose path is the credential.
const WEBHOOKS: &[(&str, &str)] = &[
    ("hooks.slack.com", "/services/"),
    ("discord.com", "/api/webhooks/"),
    ("discordapp.com", "/api/webhooks/"),
    ("webhook.office.com", "/webhookb2/"),
    ("chat.googleapis.com", "/v1/spaces/"),
];

/// The path of a webhook URL (`https://hooks.slack.com/services/…`).
fn webhook_path(host: &str, tok: &str, path_start: usize) -> Option<(Range<usize>, &'static str)> {
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let path_end = tok[path_start..].find(['?', '#']).map_or(tok.len(), |i| path_start + i);
    let path = &tok[path_start..path_end];
    let hit = WEBHOOKS.iter().any(|(h, p)| (host == *h || host.strip_suffix(h).is_some_and(|p| p.ends_with('.'))) && path.starts_with(p) && path.len() > p.len() + 8);
    hit.then_some((path_start..path_end, "webhook URL"))
}

/// The value of every secret-named parameter after the path: query
/// (`?`, `&`), fragment (`#`) and path parameters (`;`).
fn secret_params(tok: &str, path_start: usize) -> Vec<(Range<usize>, &'static str)> {
    let mut found = vec![];
    let Some(first) = tok[path_start..].find(['?', '#', ';']) else { return found };
    let mut pos = path_start + first + 1;
    for pair in tok[pos..].split(['?', '&', '#', ';']) {
        if let Some((k, v)) = pair.split_once('=') {
            if !v.is_empty() && param_key_secret(k) {
                let vs = pos + k.len() + 1;
                found.push((vs..vs + v.len(), "secret URL parameter"));
            }
        }
        pos += pair.len() + 1;
    }
    found
}

/// A URL parameter naming a secret (`access_token`, `pass`, `pwd`, `sig`,
/// `key`, `apikey`); not `authSource`, `token_type`.
fn param_key_secret(k: &str) -> bool {
    let n: String = k.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    pair_key_secret(k) || (n.ends_with("key") && n.len() <= 12)
}

/// The password of a scheme-less `user:pass@host[:port][/path]`
/// (`app:s3cret@db:5432/app`); not `image:tag@sha256:…` nor
/// `git@host:path`.
fn schemeless_password(tok: &str) -> Option<(Range<usize>, &'static str)> {
    let at = tok.rfind('@')?;
    let (user, pass) = tok[..at].split_once(':')?;
    let user_ok = !user.is_empty() && user.bytes().all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c)) && !user.eq_ignore_ascii_case("mailto");
    let pass_ok = !pass.is_empty() && !pass.contains('/');
    (user_ok && pass_ok && host_part(&tok[at + 1..])).then_some((user.len() + 1..at, "password in a URL"))
}

/// Is `s` a host, optionally with `:port`, `/path` or a Go DSN's
/// `tcp(…)`? Not a digest (`sha256:…`).
fn host_part(s: &str) -> bool {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')).unwrap_or(s.len());
    let (name, rest) = s.split_at(end);
    let digest = name.starts_with("sha") && name[3..].bytes().all(|c| c.is_ascii_digit());
    if name.is_empty() || !name.as_bytes()[0].is_ascii_alphanumeric() || digest {
        return false;
    }
    let after_port = match rest.strip_prefix(':') {
        Some(p) => p.trim_start_matches(|c: char| c.is_ascii_digit()).len() < p.len(),
        None => true,
    };
    let rest = rest.trim_start_matches(':').trim_start_matches(|c: char| c.is_ascii_digit());
    after_port && (rest.is_empty() || rest.starts_with('/') || (rest.starts_with('(') && ["tcp", "unix"].contains(&name)))
}

/// Values of a secret-named `key=` that are settings, not secrets
/// (`PasswordAuthentication=no` is caught by its key already).
const NOT_SECRET_VALUES: &[&str] = &["yes", "no", "true", "false", "on", "off", "none", "null", "0", "1", "required", "optional", "prompt"];

/// Why a value carries a credential, if it does: a private key block, or
/// a word that carries one ([`word_kind`], [`after_kind`]).
pub fn value_kind(value: &str) -> Option<&'static str> {
    if private_key_block(value, 0).is_some() {
        return Some("private key");
    }
    let words: Vec<&str> = value.split(is_separator).filter(|w| !w.is_empty()).collect();
    words.iter().enumerate().find_map(|(i, w)| i.checked_sub(1).and_then(|p| after_kind(words[p], w)).or_else(|| word_kind(w)))
}

/// A credential by the word before it: `Bearer <token>`, `Basic
/// <base64>`, `Authorization: <anything>`, `X-Api-Key: <anything>`.
fn after_kind(prev: &str, w: &str) -> Option<&'static str> {
    let t = trim_token(w);
    if prev.eq_ignore_ascii_case("bearer") && t.len() >= 8 {
        return Some("bearer credential");
    }
    if prev.eq_ignore_ascii_case("basic") && basic_credential(t) {
        return Some("basic credential");
    }
    let header = prev.strip_suffix(':')?;
    (header_name(header) && pair_key_secret(header)).then_some("credential header")
}

/// Does `t` look like the base64 of `user:password` (8 or more base64
/// characters, of at least two of upper case, lower case and digits)?
fn basic_credential(t: &str) -> bool {
    let b64 = t.bytes().all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c));
    let classes = [t.bytes().any(|c| c.is_ascii_uppercase()), t.bytes().any(|c| c.is_ascii_lowercase()), t.bytes().any(|c| !c.is_ascii_alphabetic())];
    t.len() >= 8 && b64 && classes.iter().filter(|c| **c).count() >= 2
}

/// Is `h` spelled like an HTTP header name (`X-Api-Key`)?
fn header_name(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// [`url_credential`] or [`token_kind`] of one word, or a credential among
/// its `&`-joined `key=value` pairs ([`pair_kind`]).
fn word_kind(w: &str) -> Option<&'static str> {
    if let Some((_, why)) = url_credential(w) {
        return Some(why);
    }
    if let Some(k) = token_kind(w) {
        return Some(k);
    }
    w.split('&').find_map(pair_kind)
}

/// What the value of `key=value` carries (`--token=ghp_…`,
/// `url=https://u:p@h`), or else a credential by its key (`password=…`).
fn pair_kind(p: &str) -> Option<&'static str> {
    let (k, v) = p.split_once('=')?;
    let by_key = !v.is_empty() && pair_key_secret(k) && !NOT_SECRET_VALUES.contains(&v.to_ascii_lowercase().as_str());
    word_kind(v).or(by_key.then_some("credential in a key=value pair"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_only_in_the_authority_or_a_secret_parameter() {
        let s = "postgres://u:p4ss@db.example/app";
        let (r, why) = url_credential(s).unwrap();
        assert_eq!((&s[r], why), ("p4ss", "password in a URL"));
        assert!(url_credential("https://example.com:8080/a@b").is_none());
        assert!(url_credential("ssh://git@github.com/x/y").is_none());
        assert!(url_credential("https://user:@host/").is_none());
        let s = "https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/x";
        assert_eq!(&s[url_credential(s).unwrap().0], "ghp_abcdefghijklmnopqrstuvwxyz0123");
        let s = "https://h/x?a=1&access_token=zzz&b=2";
        assert_eq!(&s[url_credential(s).unwrap().0], "zzz");
        let s = "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123";
        assert_eq!(&s[url_credential(s).unwrap().0], "abc123");
        assert!(url_credential("https://h/x?page=2&q=rust").is_none());
    }

    /// URL credentials: (word, the credential's text, why).
    const URL_CASES: &[(&str, &str, &str)] = &[
        ("https://user%3Ahunter2@host/", "hunter2", "password in a URL"),
        ("https://user%3ahunter2@host/", "hunter2", "password in a URL"),
        ("HTTPS://u:hunter2@host/", "hunter2", "password in a URL"),
        ("redis://:hunter2@cache:6379/0", "hunter2", "password in a URL"),
        ("https://host/path;password=hunter2", "hunter2", "secret URL parameter"),
        ("https://host/?pass=hunter2", "hunter2", "secret URL parameter"),
        ("https://host/?pwd=hunter2&x=1", "hunter2", "secret URL parameter"),
        ("https://host/#access_token=hunter2hunter2", "hunter2hunter2", "secret URL parameter"),
        ("https://app/cb#state=x&access_token=tok123&token_type=bearer", "tok123", "secret URL parameter"),
        ("mongodb+srv://app@c.example.net/?authMechanism=PLAIN&password=x", "x", "secret URL parameter"),
        ("user:hunter2@host:5432/db", "hunter2", "password in a URL"),
        ("app:s3cr3t@db.internal", "s3cr3t", "password in a URL"),
        ("root:p@ss@localhost:3306", "p@ss", "password in a URL"),
        ("user:pw1234@tcp(127.0.0.1:3306)/app", "pw1234", "password in a URL"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX", "/services/T000/B000/XXXXXXXXXXXXXXXX", "webhook URL"),
        ("https://discord.com/api/webhooks/123456/abcdefghij", "/api/webhooks/123456/abcdefghij", "webhook URL"),
    ];

    /// URL-like words without a credential.
    const URL_CLEAN: &[&str] = &[
        "git@github.com:org/repo.git", "nginx:1.25@sha256:0123456789abcdef", "registry.io/img:tag@sha256:abcdef",
        "@scope/pkg@1.2.3", "pkg:npm/foo@1.0", "mailto:alice@example.com", "https://u@host/", "https://host/?page=2#top",
        "https://host/a;b=c", "https://hooks.slack.com/", "alice@example.com", "a:b", "https://h/x?authSource=admin",
    ];

    #[test]
    fn url_credentials_by_shape() {
        for (w, secret, why) in URL_CASES {
            let found = url_credentials(w);
            assert!(found.iter().any(|(r, y)| &&w[r.clone()] == secret && y == why), "{w}: {found:?}");
        }
        for w in URL_CLEAN {
            assert!(url_credentials(w).is_empty(), "{w}: {:?}", url_credentials(w));
        }
    }

    /// Values that carry a credential: (value, why).
    const VALUES: &[(&str, &str)] = &[
        ("host=db user=app password=s3cretpw", "credential in a key=value pair"),
        ("Server=x;Database=y;User Id=sa;Password=Secret1;", "credential in a key=value pair"),
        ("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=ZmFrZQ==", "credential in a key=value pair"),
        ("BlobEndpoint=https://x.blob.core.windows.net/;SharedAccessSignature=sv=2021&sig=abc", "credential in a key=value pair"),
        ("-Dapi.password=hunter2 -Dgpg.passphrase=hunter3", "credential in a key=value pair"),
        ("-Xmx1g -Dspring.datasource.password=x", "credential in a key=value pair"),
        ("url=https://github.com username=x password=hunter2", "credential in a key=value pair"),
        ("pwd=hunter2", "credential in a key=value pair"),
        ("pass=hunter2", "credential in a key=value pair"),
        ("secret=abc", "credential in a key=value pair"),
        ("token=abc", "credential in a key=value pair"),
        ("access_token=abc", "credential in a key=value pair"),
        ("api_key=abc", "credential in a key=value pair"),
        ("apikey=abc", "credential in a key=value pair"),
        ("user=x&password=y", "credential in a key=value pair"),
        ("x-honeycomb-team=abcdef0123456789abcdef", "credential in a key=value pair"),
        ("Authorization=Basic dXNlcjpodW50ZXIy", "credential in a key=value pair"),
        ("api-key=abc,x-other=1", "credential in a key=value pair"),
        ("Authorization: Basic dXNlcjpodW50ZXIy", "credential header"),
        ("X-Api-Key: abcdef", "credential header"),
        ("Private-Token: abcdef", "credential header"),
        ("basic dXNlcjpodW50ZXIy", "basic credential"),
        ("Authorization: Bearer abcdefgh12345678", "credential header"),
        ("Bearer abcdefgh12345678", "bearer credential"),
        ("user:hunter2@host:5432/db", "password in a URL"),
        ("DSN=app:pw@db:5432", "password in a URL"),
        ("https://host/#access_token=hunter2hunter2", "secret URL parameter"),
        ("SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "sendgrid-key"),
    ];

    /// Values with no credential.
    const CLEAN: &[&str] = &[
        "https://pypi.org/simple", "ssh -o PasswordAuthentication=no -o BatchMode=yes", "--max-old-space-size=4096",
        "-D_FORTIFY_SOURCE=2 -O2", "-Dfile.encoding=UTF-8", "rs=0:di=01;34:ln=01;36:*.tar=01;31", "nixpkgs=/nix/var/nix",
        "a=b c=d", "Basic setup", "basic authentication", "token_type=bearer", "password_file=/run/secrets/db", "-mod=mod",
        "git@github.com:o/r.git", "unix:path=/run/user/1000/bus", "github.com/acme/*", "Bearer", "x11", "w0t0p0",
        "local/host:@/tmp/.ICE-unix/123,unix/host:/tmp/.ICE-unix/123", "/usr/lib/ssh/ssh-askpass",
    ];

    #[test]
    fn values_by_shape() {
        for (v, why) in VALUES {
            assert_eq!(value_kind(v), Some(*why), "{v}");
        }
        for v in CLEAN {
            assert_eq!(value_kind(v), None, "{v}");
        }
    }

    #[test]
    fn private_key_blocks() {
        let s = "a -----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE----- b -----BEGIN RSA PRIVATE KEY-----\ny\n-----END RSA PRIVATE KEY----- c";
        let r = private_key_block(s, 0).unwrap();
        assert!(s[r.clone()].starts_with("-----BEGIN RSA") && s[r].ends_with("KEY-----"));
        assert!(private_key_block("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----", 0).is_none());
    }
}
