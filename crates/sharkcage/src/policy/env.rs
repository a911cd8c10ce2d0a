//! The sandbox's environment: built from nothing plus an allowlist, with
//! secrets withheld by name and by value.
//!
//! The caller's environment (for OpenClaw: the gateway's, which holds model
//! API keys and the gateway token) never passes whole. A variable reaches the
//! command only if its name is in the default set (`PATH`, `LANG`, `LC_*`,
//! `TERM`, `TZ`, …) or in the policy's `env` list, or the caller sets it for
//! the call (`--env`). Even then it is withheld, and reported (its name and
//! why, never its value), when
//! * its name looks secret: a rule of `secretshape::NAME_RULES` (`*TOKEN*`,
//!   `PASS` as a word, `*DSN*`, `*WEBHOOK*`, a datastore's URL, …) or a
//!   provider family here ([`SECRET_PREFIXES`]: `AWS_*`, `GITHUB_*`, …);
//!   certificate-path names (`SSL_CERT_FILE`, `AWS_CA_BUNDLE`, …) name
//!   files and are never caught by a name rule;
//! * or its value carries a credential (`secretshape::value_kind`: a URL
//!   with a password, a known token shape, a private key block) — whatever
//!   the name: `PIP_INDEX_URL=https://user:token@host/` is withheld.
//!
//! Only the policy naming the variable exactly lets it through: a prefix
//! pattern such as `AWS_*` never passes `AWS_SECRET_ACCESS_KEY`.

use crate::secretshape;

/// Names passed through by default (exact, or prefix when ending in `*`).
pub const DEFAULT_PASS: &[&str] = &["PATH", "LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "COLORTERM", "NO_COLOR"];

/// Tool settings that pass by default: they change how a tool behaves or
/// where it fetches from, hold nothing secret by name, and a value that
/// carries a credential (a registry URL with a token) is still withheld.
pub const TOOL_SETTINGS_PASS: &[&str] = &[
    "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST",
    "PIP_PROGRESS_BAR", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONIOENCODING", "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL", "NPM_CONFIG_REGISTRY", "npm_config_registry", "YARN_REGISTRY", "GOPROXY", "GONOSUMDB",
    "GOPRIVATE", "GOFLAGS", "CARGO_TERM_COLOR", "CARGO_NET_GIT_FETCH_WITH_CLI", "CI", "FORCE_COLOR", "CLICOLOR",
];

/// A certificate-path variable (`SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`, …;
/// see `secretshape::is_cert_path_name`) passes by default when its value
/// names a file or directory the caller can read: it names trust anchors,
/// not a secret, and TLS behind a corporate proxy or mirror needs it.
fn cert_path_passes(name: &str, value: &str) -> bool {
    if !secretshape::is_cert_path_name(name) || !value.starts_with('/') || value.contains('\0') {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(value) else { return false };
    // SAFETY: access with a NUL-terminated path; no memory is written.
    std::path::Path::new(value).exists() && unsafe { libc::access(c.as_ptr(), libc::R_OK) } == 0
}

/// Name prefixes of cloud, forge and model-provider families: their tools
/// read credentials from many names, so the whole family is withheld.
/// DigitalOcean's short `DO_` only with what follows (`DO_API…`,
/// `DO_TOKEN`), so `DO_NOT_TRACK` passes; Hugging Face's `HF_` settings
/// (`HF_HOME`) pass and its tokens are `*TOKEN*` (`HF_TOKEN`).
pub const SECRET_PREFIXES: &[&str] = &[
    "AWS_", "AZURE_", "ARM_CLIENT", "GOOGLE_APPLICATION_CREDENTIALS", "GCP_", "GCLOUD_", "CLOUDSDK_",
    "GH_", "GITHUB_", "GITLAB_", "DIGITALOCEAN_", "DO_API", "DO_TOKEN", "DO_ACCESS", "DO_AUTH", "DO_SPACES",
    "HEROKU_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_", "NPM_CONFIG__AUTH", "DOCKER_", "KUBECONFIG", "VAULT_",
    "OPENCLAW_GATEWAY", "SSH_AUTH_SOCK", "GPG_AGENT", "PG",
];

/// Why a name looks secret: the pattern of the rule it matches.
pub fn name_reason(name: &str) -> Option<&'static str> {
    if let Some(r) = secretshape::name_rule(name) {
        return Some(r.pattern);
    }
    if secretshape::is_cert_path_name(name) {
        return None;
    }
    let up = name.to_ascii_uppercase();
    SECRET_PREFIXES.iter().find(|p| up.starts_with(*p)).copied()
}

/// Does `name` look like it holds a secret?
pub fn looks_secret(name: &str) -> bool {
    name_reason(name).is_some()
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Why a variable was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithheldWhy {
    /// Its name matches this rule (`*TOKEN*`, `PASS (a word)`, `AWS_`).
    Name(&'static str),
    /// Its value carries a credential of this kind (`password in a URL`).
    Value(&'static str),
}

/// A withheld variable: its name and why (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld {
    pub name: String,
    pub why: WithheldWhy,
}

impl Withheld {
    /// One line for `violations`.
    pub fn describe(&self) -> String {
        let why = match self.why {
            WithheldWhy::Name(rule) => format!("its name matches the secret rule {rule}"),
            WithheldWhy::Value(kind) => format!("its value carries a credential ({kind})"),
        };
        format!("variable {} withheld: {why}; only the policy's env naming it exactly passes it", self.name)
    }
}

/// Why `name=value` must be withheld, unless the policy names it exactly.
pub fn withhold_reason(name: &str, value: &str) -> Option<WithheldWhy> {
    if let Some(rule) = name_reason(name) {
        return Some(WithheldWhy::Name(rule));
    }
    secretshape::value_kind(value).map(WithheldWhy::Value)
}

/// The result of filtering: what passes, and what was withheld (reported by
/// name and reason, never by value).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SandboxEnv {
    pub vars: Vec<(String, String)>,
    pub withheld: Vec<Withheld>,
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
    let passes = |n: &str, v: &str| {
        DEFAULT_PASS.iter().any(|p| matches(p, n)) || TOOL_SETTINGS_PASS.contains(&n) || allow.iter().any(|p| matches(p, n)) || cert_path_passes(n, v)
    };
    let put = |out: &mut SandboxEnv, k: String, v: String, from_explicit: bool| {
        if !from_explicit && !passes(&k, &v) {
            return;
        }
        if !named_exactly(&k) {
            if let Some(why) = withhold_reason(&k, &v) {
                // The last value given decides; one report per name.
                out.vars.retain(|(ek, _)| ek != &k);
                out.withheld.retain(|w| w.name != k);
                out.withheld.push(Withheld { name: k, why });
                return;
            }
        }
        out.withheld.retain(|w| w.name != k);
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
        out.withheld.retain(|w| &w.name != k);
        out.vars.push((k.clone(), v.clone()));
    }
    if !out.vars.iter().any(|(k, _)| k == "PATH") {
        out.vars.push(("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()));
    }
    out.withheld.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    /// Names withheld by a name rule (each with a harmless value).
    const SECRET_NAMES: &[&str] = &[
        "GITHUB_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "NPM_AUTH", "MY_AUTH_HEADER", "AWS_PROFILE",
        "anthropic_api_key", "DB_PASS", "SMTP_PASS", "MYSQL_PWD", "APP_DB_PWD", "REDIS_PW", "GITLAB_PAT", "AZURE_DEVOPS_PAT",
        "MY_PAT", "CI_JOB_JWT", "CI_JOB_JWT_V2", "ID_JWT_FILE", "SENTRY_DSN", "DATABASE_DSN", "MONGODB_URI", "MONGO_URL",
        "POSTGRES_URL", "POSTGRESQL_HOST", "SLACK_WEBHOOK_URL", "DISCORD_WEBHOOK", "TEAMS_WEBHOOK_URL", "HTTP_BEARER",
        "SERVICE_APIKEY", "MY_API_KEY", "TLS_CERT_KEY", "DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "REDIS_URL", "REDIS_HOST",
        "AMQP_URL", "RABBITMQ_DEFAULT_PASS", "RABBITMQ_URI", "KAFKA_SASL_JAAS_CONFIG", "KAFKA_BROKERS", "NATS_URL",
        "CLICKHOUSE_URI", "ELASTICSEARCH_URL", "APP_DB_URL", "CELERY_BROKER_URL", "CACHE_URL", "JDBC_URL", "MSSQL_CONN",
        "ACTIVEMQ_URL", "AZURE_STORAGE_CONNECTION_STRING", "SQL_CONNSTR", "HTTP_AUTHORIZATION", "OAUTH_CLIENT_ID",
        "AUTHTOKEN", "NPM_CONFIG__AUTH", "SESSION_ID", "COOKIE_JAR", "GPG_PRIVATE", "REQUEST_SIGNATURE", "GOOGLE_APPLICATION_CREDENTIALS",
        "VAULT_ADDR", "PGPASSWORD", "PGHOST", "MY_CREDENTIALS_FILE", "SUPABASE_URL", "SSHPASS", "SMTPPASS", "MY_DBPASS",
        "LDAP_BINDPW", "SLAPD_ROOTPW", "ROOTPWD", "REGISTRY_CREDS", "JENKINS_CREDS", "GIT_CRED", "NONCE_SALT",
        "WP_LOGGED_IN_SALT", "AUTH_SALT", "DEPLOY_HMAC", "HMAC_SIGNING", "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "ANTHROPIC_CUSTOM_HEADERS", "HTTP_EXTRA_HEADER", "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN", "DO_API_TOKEN", "DO_TOKEN", "DO_SPACES_ID", "OAUTH2_CLIENT_ID",
        "APP_SESSION", "DB_PASS2", "VAULT_PASSCODE", "WALLET_MNEMONIC",
    ];

    /// Names no rule catches.
    const PLAIN_NAMES: &[&str] = &[
        "PATH", "LANG", "LC_ALL", "TERM", "HOME", "EDITOR", "PWD", "OLDPWD", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
        "PASSENGER_ENV", "COMPASS_DIR", "DB_HOST_COUNT_HINT", "PATTERN", "SPATIAL", "NODE_ENV", "RUST_LOG", "PIP_INDEX_URL",
        "HOMEPAGE_URL", "XAUTHORITY", "PW_TEST_REPORTER", "PWDEBUG", "SSH_TTY", "DO_NOT_TRACK", "GOPRIVATE",
        "TOKENIZERS_PARALLELISM", "HF_HOME", "HF_HUB_CACHE", "KEYMAP", "XKB_KEYMAP", "KEYBOARD_LAYOUT", "KEYCLOAK_URL",
        "TERM_SESSION_ID", "ITERM_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_ID", "XDG_SESSION_CLASS", "DESKTOP_SESSION",
        "DBUS_SESSION_BUS_ADDRESS", "SESSION_MANAGER", "FLASK_SESSION_TYPE", "BYPASS_CACHE", "SSH_ASKPASS", "GIT_ASKPASS",
        "DO_NOTHING", "CREDITS",
    ];

    /// Certificate paths: never caught by a name rule (not `AWS_` either).
    const CERT_NAMES: &[&str] = &[
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
        "AWS_CA_BUNDLE", "PIP_CERT", "CARGO_HTTP_CAINFO",
    ];

    /// Values that carry a credential, whatever the name: (value, kind).
    const SECRET_VALUES: &[(&str, &str)] = &[
        ("https://user:t0ken@pypi.example/simple", "password in a URL"),
        ("postgres://u:p@h/db", "password in a URL"),
        ("amqp://guest:guest@mq:5672/", "password in a URL"),
        ("https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r", "token in a URL"),
        ("https://api.example/v1?api_key=abcdef", "secret URL parameter"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github-token"),
        ("gho_abcdefghijklmnopqrstuvwxyz0123456789", "github-token"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github-token"),
        ("glpat-abcdefghij0123456789", "gitlab-token"),
        ("xoxb-1234567890-abcdefghij", "slack-token"),
        ("xoxp-1234567890-abcdefghij", "slack-token"),
        ("AKIAIOSFODNN7EXAMPLE", "aws-key-id"),
        ("ASIAIOSFODNN7EXAMPLE", "aws-key-id"),
        ("sk-proj-abcdefghijklmnopqrstuvwx", "api-key"),
        ("sk-ant-api03-abcdefghijklmnopqrstuvwx", "anthropic-key"),
        ("AIzaSyA-abcdefghijklmnopqrstuvwxyz01234", "google-api-key"),
        ("sk_live_abcdefghijklmnopqrstuvwx", "stripe-key"),
        ("rk_live_abcdefghijklmnopqrstuvwx", "stripe-key"),
        ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm-token"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZw", "jwt"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n", "private key"),
        ("Authorization: Bearer abcdefgh12345678", "credential header"),
        ("Bearer abcdefgh12345678", "bearer credential"),
        ("--token=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github-token"),
        ("Authorization=Basic dXNlcjpodW50ZXIy", "credential in a key=value pair"),
        ("Authorization: Basic dXNlcjpodW50ZXIy", "credential header"),
        ("x-honeycomb-team=abcdef0123456789abcdef", "credential in a key=value pair"),
        ("-Dapi.password=hunter2 -Dgpg.passphrase=hunter3", "credential in a key=value pair"),
        ("host=db user=app password=s3cretpw", "credential in a key=value pair"),
        ("Server=x;Database=y;User Id=sa;Password=Secret1;", "credential in a key=value pair"),
        ("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=ZmFrZWFjY291bnRrZXk=", "credential in a key=value pair"),
        ("url=https://github.com username=x password=hunter2", "credential in a key=value pair"),
        ("https://user%3Ahunter2@host/", "password in a URL"),
        ("https://host/path;password=hunter2", "credential in a key=value pair"),
        ("https://host/?pass=hunter2", "secret URL parameter"),
        ("https://host/#access_token=hunter2hunter2", "secret URL parameter"),
        ("user:hunter2@host:5432/db", "password in a URL"),
        ("xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAtMTIzNDU2Nzg5MA", "slack-token"),
        ("SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "sendgrid-key"),
        ("whsec_abcdefghijklmnopqrstuvwxyz012345", "stripe-webhook-secret"),
        ("glsoat-abcdefghijklmnopqrst", "gitlab-token"),
        ("GOCSPX-abcdefghijklmnopqrstuvwxyz12", "google-oauth-secret"),
    ];

    #[test]
    fn secret_names_are_withheld_by_name() {
        for n in SECRET_NAMES {
            assert!(looks_secret(n), "{n} should look secret");
            let e = build(vec![], &[s(n, "harmless")], &[], &[]);
            assert!(!e.vars.iter().any(|(k, _)| k == n), "{n} passed");
            assert!(matches!(e.withheld.as_slice(), [Withheld { name, why: WithheldWhy::Name(_) }] if name == n), "{n}: {:?}", e.withheld);
        }
        for n in PLAIN_NAMES.iter().chain(CERT_NAMES) {
            assert!(!looks_secret(n), "{n} should not look secret (rule {:?})", name_reason(n));
        }
    }

    #[test]
    fn credential_values_are_withheld_whatever_the_name() {
        for (v, kind) in SECRET_VALUES {
            let e = build(vec![s("PIP_INDEX_URL", v)], &[s("HARMLESS", v)], &["PIP_*".into()], &[]);
            assert!(e.vars.iter().all(|(_, val)| val != v), "{v} passed");
            let why = WithheldWhy::Value(kind);
            assert_eq!(e.withheld, vec![Withheld { name: "HARMLESS".into(), why }, Withheld { name: "PIP_INDEX_URL".into(), why }], "{v}");
            let line = e.withheld[0].describe();
            assert!(line.contains("HARMLESS") && line.contains(kind) && !line.contains(v), "{line}");
        }
        let clean = [
            "https://pypi.org/simple", "ssh://git@github.com/o/r", "/etc/ssl/certs/ca.pem", "sk-short", "a=b c=d", "Bearer",
            "-----BEGIN CERTIFICATE-----", "unix:path=/run/user/1000/bus", "github.com/acme/*", "ssh -o PasswordAuthentication=no",
            "--max-old-space-size=4096", "x11", "w0t0p0", "false", "us",
        ];
        for v in clean {
            assert!(secretshape::value_kind(v).is_none(), "{v}");
        }
    }

    /// Everyday variables that only looked secret pass when the caller or
    /// the policy provides them.
    #[test]
    fn look_alike_names_pass() {
        let vars = [
            s("DO_NOT_TRACK", "1"), s("GOPRIVATE", "github.com/acme/*"), s("TOKENIZERS_PARALLELISM", "false"), s("HF_HOME", "/tmp/hf"),
            s("KEYMAP", "us"), s("KEYCLOAK_URL", "https://kc.example"), s("TERM_SESSION_ID", "w0t0p0"), s("XDG_SESSION_TYPE", "x11"),
            s("XDG_SESSION_ID", "3"), s("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"), s("GIT_AUTHOR_NAME", "Alice"),
            s("OLDPWD", "/tmp"), s("SSH_TTY", "/dev/pts/0"),
        ];
        // Listed by a prefix pattern (which never lets a secret through), or set for the call.
        let allow: Vec<String> = vars.iter().map(|(k, _)| format!("{k}*")).collect();
        for e in [build(vars.to_vec(), &[], &allow, &[]), build(vec![], &vars, &[], &[])] {
            assert!(e.withheld.is_empty(), "{:?}", e.withheld);
            for v in &vars {
                assert!(e.vars.contains(v), "{v:?} missing");
            }
        }
    }

    /// The tool settings that pass by default are no secret by name.
    #[test]
    fn tool_settings_are_not_secret_names() {
        for n in TOOL_SETTINGS_PASS {
            assert!(!looks_secret(n), "{n}: {:?}", name_reason(n));
        }
    }

    #[test]
    fn exact_policy_names_pass_names_and_values() {
        let allow = vec!["DB_PASS".to_string(), "PIP_INDEX_URL".to_string()];
        let e = build(vec![s("DB_PASS", "x"), s("PIP_INDEX_URL", "https://u:p@h/")], &[], &allow, &[]);
        assert!(e.vars.contains(&s("DB_PASS", "x")) && e.vars.contains(&s("PIP_INDEX_URL", "https://u:p@h/")));
        assert!(e.withheld.is_empty());
    }

    #[test]
    fn cert_paths_pass_by_default_when_they_name_a_readable_file_and_tool_settings_pass() {
        let dir = std::env::temp_dir().join(format!("sc-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let inh = vec![
            s("SSL_CERT_FILE", ca.to_str().unwrap()),
            s("NODE_EXTRA_CA_CERTS", "/nonexistent/ca.pem"),
            s("REQUESTS_CA_BUNDLE", "relative/ca.pem"),
            s("SSL_CERT_DIR", dir.to_str().unwrap()),
            s("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
            s("PIP_INDEX_URL", "https://user:tok@pypi.example/simple"),
        ];
        let e = build(inh, &[], &[], &[]);
        let has = |k: &str| e.vars.iter().any(|(n, _)| n == k);
        assert!(has("SSL_CERT_FILE") && has("SSL_CERT_DIR") && has("PIP_DISABLE_PIP_VERSION_CHECK"), "{:?}", e.vars);
        assert!(!has("NODE_EXTRA_CA_CERTS") && !has("REQUESTS_CA_BUNDLE"), "a missing or relative path passed: {:?}", e.vars);
        assert!(!has("PIP_INDEX_URL") && e.withheld.iter().any(|w| w.name == "PIP_INDEX_URL"), "a registry URL with a token passed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cert_paths_pass_under_a_family_prefix() {
        let inh: Vec<_> = CERT_NAMES.iter().map(|n| s(n, "/etc/ssl/certs/ca-certificates.crt")).chain([s("AWS_SECRET_ACCESS_KEY", "x")]).collect();
        let allow: Vec<String> = CERT_NAMES.iter().map(|n| n.to_string()).chain(["AWS_*".to_string()]).collect();
        let e = build(inh, &[], &allow, &[]);
        for n in CERT_NAMES {
            assert!(e.vars.iter().any(|(k, _)| k == n), "{n} withheld: {:?}", e.withheld);
        }
        // AWS_CA_BUNDLE through `AWS_*` too, but not the secret.
        let e = build(vec![s("AWS_CA_BUNDLE", "/ca.pem"), s("AWS_SECRET_ACCESS_KEY", "x")], &[], &["AWS_*".into()], &[]);
        assert_eq!(e.vars.iter().filter(|(k, _)| k.starts_with("AWS_")).collect::<Vec<_>>(), vec![&s("AWS_CA_BUNDLE", "/ca.pem")]);
        assert_eq!(e.withheld, vec![Withheld { name: "AWS_SECRET_ACCESS_KEY".into(), why: WithheldWhy::Name("*SECRET*") }]);
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
        assert_eq!(e.withheld, vec![Withheld { name: "GITHUB_TOKEN".into(), why: WithheldWhy::Name("*TOKEN*") }]);
        let e = build(inh, &[], &["GITHUB_TOKEN".into()], &[]);
        assert!(e.vars.contains(&s("GITHUB_TOKEN", "ghp_x")));
    }

    #[test]
    fn explicit_values_still_filtered() {
        let e = build(vec![], &[s("FOO", "1"), s("SECRET_THING", "x")], &[], &[]);
        assert!(e.vars.contains(&s("FOO", "1")));
        assert!(!e.vars.iter().any(|(k, _)| k == "SECRET_THING"));
        assert_eq!(e.withheld.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["SECRET_THING"]);
    }

    #[test]
    fn fixed_values_win() {
        let e = build(vec![s("PATH", "/bin")], &[s("HOME", "/evil")], &["HOME".into()], &[s("HOME", "/h")]);
        assert_eq!(e.vars.iter().filter(|(k, _)| k == "HOME").count(), 1);
        assert!(e.vars.contains(&s("HOME", "/h")));
    }
}
