//! Credential-free copies of tool configs that mix settings and secrets.
//!
//! `~/.npmrc`, `~/.pypirc` and `~/.docker/config.json` are hidden (they hold
//! registry tokens), which also takes away what they set: the registry
//! mirror, the proxy, `always-auth`. pip's and yarn's configs are visible
//! and may hold a token in a URL. Each of these appears inside the sandbox
//! as a read-only copy with the credentials taken out, so settings still
//! apply and no secret is readable:
//! * ini-style files (`key = value`): a line whose key names a credential
//!   (`_authToken`, `_auth`, `_password`, `password`, `token`, … by the
//!   shared detector, `secretshape`) is dropped; a URL value keeps its
//!   address without its user and password; a value that otherwise carries
//!   a credential drops its line; so does any line that is not a comment,
//!   a section or a `key = value` (nothing unrecognised passes);
//! * Docker's `config.json`: `auth`, `identitytoken`, `registrytoken`,
//!   `password` and `username` are removed from every `auths` entry, and a
//!   top-level `identitytoken`; a file that is not JSON becomes `{}`.
//!
//! Only regular files up to 256 KiB are read (no symlink is followed); a
//! visible file gets a copy only when something was taken out.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::secretshape;

/// One copy to put in place of `path`.
#[derive(Debug, Clone)]
pub struct ConfigCopy {
    pub path: PathBuf,
    pub data: Vec<u8>,
    /// How many lines or fields were taken out or cut.
    pub removed: usize,
}

#[derive(Clone, Copy)]
enum Format {
    /// `key = value` (npm, pip, PyPI).
    Ini,
    /// `key: value` (yarn berry).
    Yaml,
    /// Docker's `config.json`.
    DockerJson,
}

/// The configs, relative to a home directory.
const FILES: &[(&str, Format)] = &[
    (".npmrc", Format::Ini),
    (".pypirc", Format::Ini),
    (".config/pip/pip.conf", Format::Ini),
    (".pip/pip.conf", Format::Ini),
    (".yarnrc.yml", Format::Yaml),
    (".docker/config.json", Format::DockerJson),
];

const MAX_BYTES: u64 = 256 * 1024;

/// Copies for the configs under `homes`; `hidden(p)` says whether the
/// sandbox would otherwise not see `p` at all.
pub fn copies(homes: &[PathBuf], hidden: impl Fn(&Path) -> bool) -> Vec<ConfigCopy> {
    let mut out = Vec::new();
    for h in homes {
        for (rel, format) in FILES {
            let path = h.join(rel);
            let Some(text) = read_small(&path) else { continue };
            let (data, removed) = match format {
                Format::Ini => redact_lines(&text, '='),
                Format::Yaml => redact_lines(&text, ':'),
                Format::DockerJson => redact_docker(&text),
            };
            if removed > 0 || hidden(&path) {
                out.push(ConfigCopy { path, data: data.into_bytes(), removed });
            }
        }
    }
    out
}

/// A regular file's text (not through a symlink), if small enough.
fn read_small(p: &Path) -> Option<String> {
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p).ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.len() > MAX_BYTES {
        return None;
    }
    let mut s = String::new();
    f.take(MAX_BYTES).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Keys npm and yarn use for credentials that a name rule may not catch.
const CREDENTIAL_KEYS: &[&str] = &["_auth", "_authtoken", "_password", "npmauthtoken", "npmauthident", "npmauthpassword", "auth"];

/// Whether a config key names a credential (its last `:`-part for npm's
/// `//registry/:_authToken`).
fn secret_key(key: &str) -> bool {
    let last = key.rsplit(':').next().unwrap_or(key).trim().trim_matches('"').trim_matches('\'');
    let lower = last.to_ascii_lowercase();
    CREDENTIAL_KEYS.contains(&lower.as_str()) || secretshape::key_looks_secret(last) || secretshape::pair_key_secret(last)
}

/// A value that only switches something (`always-auth=true`, `timeout=60`):
/// nothing secret, whatever the key says.
fn switch_value(v: &str) -> bool {
    let v = v.trim().trim_matches('"').to_ascii_lowercase();
    matches!(v.as_str(), "true" | "false" | "yes" | "no" | "on" | "off") || (!v.is_empty() && v.len() <= 6 && v.bytes().all(|b| b.is_ascii_digit()))
}

/// Line-based redaction with `sep` between key and value.
fn redact_lines(text: &str, sep: char) -> (String, usize) {
    let mut out = String::new();
    let mut removed = 0;
    for line in text.lines() {
        let t = line.trim();
        let keep = if t.is_empty() || t.starts_with('#') || t.starts_with(';') || (sep == '=' && t.starts_with('[')) {
            Some(line.to_string())
        } else {
            match line.split_once(sep) {
                Some((k, v)) if secret_key(k) && !switch_value(v) => None,
                Some((k, v)) => clean_value(v).map(|v| format!("{k}{sep}{v}")),
                // A YAML block key (`npmScopes:`) or list item carries no value itself.
                None if sep == ':' && t.starts_with('-') => clean_value(line),
                None => None,
            }
        };
        match keep {
            Some(l) => {
                // A line kept with its credentials cut counts as a change.
                removed += usize::from(l != line);
                out.push_str(&l);
                out.push('\n');
            }
            None => removed += 1,
        }
    }
    (out, removed)
}

/// A value without credentials: a URL loses its user and password; any
/// other value that carries one is dropped (None).
fn clean_value(v: &str) -> Option<String> {
    if secretshape::value_kind(v).is_none() && secretshape::url_credential(v.trim()).is_none() {
        return Some(v.to_string());
    }
    let trimmed = v.trim().trim_matches('"').trim_matches('\'');
    let mut u = url::Url::parse(trimmed).ok()?;
    u.set_username("").ok()?;
    u.set_password(None).ok()?;
    u.set_query(None);
    u.set_fragment(None);
    let s = u.to_string();
    (secretshape::value_kind(&s).is_none()).then(|| format!(" {s}"))
}

/// Docker's config without credentials.
fn redact_docker(text: &str) -> (String, usize) {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else { return ("{}\n".into(), 1) };
    let mut removed = 0;
    let mut strip = |o: &mut serde_json::Map<String, serde_json::Value>, keys: &[&str]| {
        for k in keys {
            removed += usize::from(o.remove(*k).is_some());
        }
    };
    if let Some(o) = v.as_object_mut() {
        strip(o, &["identitytoken"]);
        if let Some(auths) = o.get_mut("auths").and_then(|a| a.as_object_mut()) {
            for entry in auths.values_mut() {
                if let Some(e) = entry.as_object_mut() {
                    strip(e, &["auth", "identitytoken", "registrytoken", "password", "username"]);
                }
            }
        }
    } else {
        return ("{}\n".into(), 1);
    }
    (format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into())), removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_pip_and_yarn_settings_stay_and_credentials_go() {
        let npmrc = "registry=https://mirror.example/npm/\n//mirror.example/npm/:_authToken=npm_SECRETSECRETSECRETSECRETSECRETSECRET12\n_auth=dXNlcjpwYXNz\nalways-auth=true\n; comment\nSCSECRET-raw-line\nproxy=http://proxy.example:3128\n";
        let (out, n) = redact_lines(npmrc, '=');
        assert!(out.contains("registry=https://mirror.example/npm/") && out.contains("always-auth=true") && out.contains("proxy=http://proxy.example:3128"), "{out}");
        assert!(!out.contains("SECRET") && !out.contains("dXNlcjpwYXNz"), "{out}");
        assert_eq!(n, 3);
        let pip = "[global]\nindex-url = https://user:tok3n-SECRET@pypi.example/simple\ntimeout = 60\n";
        let (out, n) = redact_lines(pip, '=');
        assert!(out.contains("index-url =") && out.contains("pypi.example/simple") && out.contains("timeout = 60"), "{out}");
        assert!(!out.contains("tok3n-SECRET") && !out.contains("user:"), "{out}");
        assert_eq!(n, 1, "the URL is kept without its credentials (one line changed)");
        let pypirc = "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmcSECRET\n";
        let (out, _) = redact_lines(pypirc, '=');
        assert!(!out.contains("pypi-AgEI"), "{out}");
        let yarn = "npmRegistryServer: \"https://mirror.example\"\nnpmAuthToken: abcdefSECRET\nnpmScopes:\n  corp:\n    npmAuthToken: SECRET2\n";
        let (out, _) = redact_lines(yarn, ':');
        assert!(out.contains("npmRegistryServer") && !out.contains("SECRET"), "{out}");
    }

    #[test]
    fn docker_keeps_proxies_and_helpers_not_auths() {
        let cfg = r#"{"auths":{"registry.example":{"auth":"dXNlcjpTRUNSRVQ=","email":"a@b"}},"credsStore":"desktop","proxies":{"default":{"httpProxy":"http://p:3128"}},"identitytoken":"SECRET"}"#;
        let (out, n) = redact_docker(cfg);
        assert!(out.contains("httpProxy") && out.contains("credsStore") && out.contains("registry.example"), "{out}");
        assert!(!out.contains("dXNlcjpTRUNSRVQ=") && !out.contains("SECRET"), "{out}");
        assert_eq!(n, 2);
        assert_eq!(redact_docker("SCSECRET not json").0, "{}\n");
    }
}
