//! The sandbox's environment: built from nothing plus an allowlist.
//!
//! The caller's environment (for OpenClaw: the gateway's, which holds model
//! API keys and the gateway token) never passes whole. A variable reaches the
//! command only if its name is in the default set (`PATH`, `LANG`, `LC_*`,
//! `TERM`, `TZ`, …) or in the policy's `env` list. A name that looks secret
//! (`*TOKEN*`, `*KEY*`, `*SECRET*`, `*PASSWORD*`, `*_AUTH*`, cloud credential
//! names) passes only when the policy names it exactly: a prefix pattern such
//! as `AWS_*` never lets `AWS_SECRET_ACCESS_KEY` through.

/// Names passed through by default (exact, or prefix when ending in `*`).
pub const DEFAULT_PASS: &[&str] = &["PATH", "LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "COLORTERM", "NO_COLOR"];

/// Substrings (upper-cased match) that make a name look secret.
const SECRET_PARTS: &[&str] = &[
    "TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "_AUTH", "AUTH_", "CREDENTIAL",
    "COOKIE", "SESSION", "PRIVATE", "SIGNATURE",
];

/// Whole names or prefixes of cloud and service credentials.
const SECRET_PREFIXES: &[&str] = &[
    "AWS_", "AZURE_", "ARM_CLIENT", "GOOGLE_APPLICATION_CREDENTIALS", "GCP_", "GCLOUD_", "CLOUDSDK_",
    "GH_", "GITHUB_", "GITLAB_", "DIGITALOCEAN_", "DO_", "HEROKU_", "OPENAI_", "ANTHROPIC_",
    "OPENROUTER_", "HF_", "HUGGING", "NPM_CONFIG__AUTH", "DOCKER_", "KUBECONFIG", "VAULT_",
    "OPENCLAW_GATEWAY", "SSH_AUTH_SOCK", "GPG_AGENT", "DATABASE_URL", "PG", "MYSQL_PWD", "REDIS_URL",
];

/// Does `name` look like it holds a secret?
pub fn looks_secret(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    if SECRET_PARTS.iter().any(|p| up.contains(p)) {
        return true;
    }
    if up == "PATH" {
        return false;
    }
    SECRET_PREFIXES.iter().any(|p| up.starts_with(p))
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// The result of filtering: what passes, and the names that were dropped
/// because they look secret (reported, never their values).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SandboxEnv {
    pub vars: Vec<(String, String)>,
    pub dropped_secret: Vec<String>,
}

/// Build the sandbox environment.
///
/// * `inherited`: the caller's environment (candidates only);
/// * `explicit`: values the caller sets for this call (`--env K=V`); they
///   override inherited ones and still pass the secret filter;
/// * `allow`: the policy's `env` names;
/// * `fixed`: values the launcher always sets (`HOME`, `TMPDIR`, …), last.
pub fn build(
    inherited: impl IntoIterator<Item = (String, String)>,
    explicit: &[(String, String)],
    allow: &[String],
    fixed: &[(String, String)],
) -> SandboxEnv {
    let mut out = SandboxEnv::default();
    let named_exactly = |n: &str| allow.iter().any(|a| a == n);
    let passes = |n: &str| {
        DEFAULT_PASS.iter().any(|p| matches(p, n)) || allow.iter().any(|p| matches(p, n))
    };
    let put = |out: &mut SandboxEnv, k: String, v: String, from_explicit: bool| {
        if !from_explicit && !passes(&k) {
            return;
        }
        if looks_secret(&k) && !named_exactly(&k) {
            if !out.dropped_secret.contains(&k) {
                out.dropped_secret.push(k);
            }
            return;
        }
        out.vars.retain(|(ek, _)| ek != &k);
        out.vars.push((k, v));
    };
    for (k, v) in inherited {
        put(&mut out, k, v, false);
    }
    for (k, v) in explicit {
        put(&mut out, k.clone(), v.clone(), true);
    }
    for (k, v) in fixed {
        out.vars.retain(|(ek, _)| ek != k);
        out.vars.push((k.clone(), v.clone()));
    }
    if !out.vars.iter().any(|(k, _)| k == "PATH") {
        out.vars.push(("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()));
    }
    out.dropped_secret.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn secret_names() {
        for n in ["GITHUB_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "NPM_AUTH", "MY_AUTH_HEADER", "AWS_PROFILE", "anthropic_api_key"] {
            assert!(looks_secret(n), "{n}");
        }
        for n in ["PATH", "LANG", "LC_ALL", "TERM", "HOME", "EDITOR"] {
            assert!(!looks_secret(n), "{n}");
        }
    }

    #[test]
    fn default_set_and_secret_filter() {
        let inh = vec![s("PATH", "/bin"), s("LC_ALL", "C"), s("EDITOR", "vi"), s("GITHUB_TOKEN", "ghp_x"), s("OPENAI_API_KEY", "sk")];
        let e = build(inh.clone(), &[], &[], &[s("HOME", "/h")]);
        assert_eq!(e.vars, vec![s("PATH", "/bin"), s("LC_ALL", "C"), s("HOME", "/h")]);
        // A prefix pattern does not let secrets through, an exact name does.
        let e = build(inh.clone(), &[], &["GITHUB_*".into(), "EDITOR".into()], &[]);
        assert!(e.vars.contains(&s("EDITOR", "vi")));
        assert!(!e.vars.iter().any(|(k, _)| k == "GITHUB_TOKEN"));
        assert_eq!(e.dropped_secret, vec!["GITHUB_TOKEN".to_string()]);
        let e = build(inh, &[], &["GITHUB_TOKEN".into()], &[]);
        assert!(e.vars.contains(&s("GITHUB_TOKEN", "ghp_x")));
    }

    #[test]
    fn explicit_values_still_filtered() {
        let e = build(vec![], &[s("FOO", "1"), s("SECRET_THING", "x")], &[], &[]);
        assert!(e.vars.contains(&s("FOO", "1")));
        assert!(!e.vars.iter().any(|(k, _)| k == "SECRET_THING"));
        assert_eq!(e.dropped_secret, vec!["SECRET_THING".to_string()]);
    }

    #[test]
    fn fixed_values_win() {
        let e = build(vec![s("PATH", "/bin")], &[s("HOME", "/evil")], &["HOME".into()], &[s("HOME", "/h")]);
        assert_eq!(e.vars.iter().filter(|(k, _)| k == "HOME").count(), 1);
        assert!(e.vars.contains(&s("HOME", "/h")));
    }
}
