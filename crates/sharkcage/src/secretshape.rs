//! What a secret looks like, by name and by value: the one detector that the
//! sandbox's environment filter (`policy::env`) and the audit log's
//! redaction (`audit::redact`) both call, so a shape one of them knows the
//! other knows too.
//!
//! * Names ([`name_rule`]): rules over the upper-cased name and its words
//!   (split at every character that is not a letter or digit): `*TOKEN*`,
//!   `PASS` as a word, the URL of a datastore, … ([`NAME_RULES`], each with
//!   the reason it exists). Certificate-path names (`SSL_CERT_FILE`,
//!   `*_CA_BUNDLE`, …) name files, not secrets: [`is_cert_path_name`].
//! * Keys of structured data ([`key_looks_secret`]): `apiKey`, `password`,
//!   `authorization`, … (camelCase-aware, for JSON parameters).
//! * Values ([`value_kind`]): a private key block, credentials in a URL
//!   (`scheme://user:pass@host`, a secret query parameter), a `Bearer`
//!   credential, or a word of a known token shape ([`token_kind`]: GitHub,
//!   GitLab, Slack, AWS key ids, OpenAI/Anthropic, Google, Stripe, npm,
//!   JWTs, …).
//!
//! Rules, not lists of known names: a new service's `FOO_API_KEY`,
//! `FOO_DB_PASS` or `FOO_WEBHOOK_URL` is caught without being named here.

use std::ops::Range;

/// How a name rule matches (on the upper-cased name and its words).
#[derive(Debug, Clone, Copy)]
enum Match {
    /// Anywhere in the name.
    Part(&'static str),
    /// One word of the name is exactly this.
    Word(&'static str),
    /// The last word of a name of several words is exactly this.
    LastWord(&'static str),
    /// One word of the name starts with one of these.
    WordStart(&'static [&'static str]),
    /// A word that is `AUTH`, starts with it (not `AUTHOR`, `AUTHORITY`) or
    /// ends with it (`OAUTH`).
    Auth,
    /// A word naming a URL or connection, and one naming a datastore or a
    /// message broker.
    DatastoreUrl,
}

/// One name rule: the pattern shown to users and why it exists.
#[derive(Debug, Clone, Copy)]
pub struct NameRule {
    pub pattern: &'static str,
    pub why: &'static str,
    m: Match,
}

const fn rule(pattern: &'static str, why: &'static str, m: Match) -> NameRule {
    NameRule { pattern, why, m }
}

/// Datastores and brokers whose settings are withheld whatever their name
/// goes on to say (`REDIS_HOST` is where the password goes next).
const DATASTORE_FAMILIES: &[&str] = &[
    "MONGO", "POSTGRES", "MYSQL", "MARIADB", "REDIS", "MEMCACHE", "AMQP", "RABBITMQ", "KAFKA", "NATS", "MQTT",
    "ELASTICSEARCH", "OPENSEARCH", "CLICKHOUSE", "CASSANDRA", "COUCHDB", "COUCHBASE", "NEO4J", "INFLUX", "SUPABASE",
    "SNOWFLAKE", "PULSAR", "ACTIVEMQ", "ETCD",
];

/// Every name rule, in the order they are tried.
pub const NAME_RULES: &[NameRule] = &[
    rule("*TOKEN*", "access, refresh and API tokens", Match::Part("TOKEN")),
    rule("*SECRET*", "client and signing secrets", Match::Part("SECRET")),
    rule("*KEY*", "API keys (*APIKEY*, *API_KEY*), access keys, private and encryption keys (*CERT_KEY*)", Match::Part("KEY")),
    rule("*PASSWORD*", "passwords", Match::Part("PASSWORD")),
    rule("*PASSWD*", "passwords", Match::Part("PASSWD")),
    rule("*PASSPHRASE*", "passphrases of keys", Match::Part("PASSPHRASE")),
    rule("PASS (a word)", "short for password (DB_PASS, SMTP_PASS)", Match::Word("PASS")),
    rule("PWD (a word)", "short for password (MYSQL_PWD); the name PWD alone is the working directory", Match::Word("PWD")),
    rule("PW (the last word)", "short for password (REDIS_PW); not PW_… (Playwright's settings)", Match::LastWord("PW")),
    rule("PAT (a word)", "personal access tokens (GITLAB_PAT, AZURE_DEVOPS_PAT)", Match::Word("PAT")),
    rule("*JWT*", "signed identity tokens (CI_JOB_JWT)", Match::Part("JWT")),
    rule("*BEARER*", "bearer credentials", Match::Part("BEARER")),
    rule("AUTH… / …AUTH (a word)", "authorization headers and tokens (NPM_CONFIG__AUTH, HTTP_AUTHORIZATION, OAUTH_…); not AUTHOR, AUTHORITY", Match::Auth),
    rule("*CREDENTIAL*", "credentials and the files holding them", Match::Part("CREDENTIAL")),
    rule("*COOKIE*", "session cookies", Match::Part("COOKIE")),
    rule("*SESSION*", "session ids and session tokens", Match::Part("SESSION")),
    rule("*PRIVATE*", "private keys", Match::Part("PRIVATE")),
    rule("*SIGNATURE*", "signatures of signed requests and URLs", Match::Part("SIGNATURE")),
    rule("*DSN*", "data source names carry a password (databases) or a key (SENTRY_DSN)", Match::Part("DSN")),
    rule("*WEBHOOK*", "a webhook URL is itself the credential (SLACK_WEBHOOK_URL)", Match::Part("WEBHOOK")),
    rule("*DATABASE*", "database settings, often a URL with the password (DATABASE_URL)", Match::Part("DATABASE")),
    rule("*CONNECTION_STRING*", "connection strings carry account keys or passwords", Match::Part("CONNECTION_STRING")),
    rule("*CONNECTIONSTRING*", "connection strings carry account keys or passwords", Match::Part("CONNECTIONSTRING")),
    rule("CONNSTR (a word)", "connection strings carry account keys or passwords", Match::Word("CONNSTR")),
    rule(
        "a datastore or broker name (MONGO…, POSTGRES…, REDIS…, KAFKA…, …)",
        "datastore and broker settings: hosts, users, passwords, URLs with credentials",
        Match::WordStart(DATASTORE_FAMILIES),
    ),
    rule(
        "a datastore or broker URL (*DB_URL, *SQL_URI, *BROKER_URL, CACHE_URL, …)",
        "connection URLs carry the password (APP_DB_URL, CELERY_BROKER_URL, CACHE_URL)",
        Match::DatastoreUrl,
    ),
];

/// Words that name a URL or a connection.
const URL_WORDS: &[&str] = &["URL", "URLS", "URI", "URIS", "CONN", "CONNECTION"];

/// Does `word` name a datastore or a message broker?
fn datastore_word(word: &str) -> bool {
    const EXACT: &[&str] = &["DB", "DBS", "JDBC", "ODBC", "BROKER", "BROKERS", "QUEUE", "CACHE", "DATASOURCE", "AMQP", "AMQPS"];
    EXACT.contains(&word) || (word.len() > 2 && (word.ends_with("DB") || word.ends_with("SQL") || word.ends_with("MQ")))
}

/// An upper-cased name and its words.
struct Name {
    up: String,
    words: Vec<String>,
}

impl Name {
    fn new(name: &str) -> Name {
        let up = name.to_ascii_uppercase();
        let words = up.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect();
        Name { up, words }
    }

    fn word(&self, f: impl Fn(&str) -> bool) -> bool {
        self.words.iter().any(|w| f(w))
    }

    fn matches(&self, m: Match) -> bool {
        match m {
            Match::Part(p) => self.up.contains(p),
            // `PWD` alone is the working directory, not a password.
            Match::Word(w) => self.up != "PWD" && self.word(|x| x == w),
            Match::LastWord(w) => self.words.len() > 1 && self.words.last().is_some_and(|x| x == w),
            Match::WordStart(starts) => self.word(|x| starts.iter().any(|s| x.starts_with(s))),
            Match::Auth => self.word(|x| {
                let not_auth = ["AUTHOR", "AUTHORS", "AUTHORED", "AUTHORITY", "AUTHORITIES"].contains(&x);
                x == "AUTH" || (x.starts_with("AUTH") && !not_auth) || (x.len() > 4 && x.ends_with("AUTH"))
            }),
            Match::DatastoreUrl => self.word(|x| URL_WORDS.contains(&x)) && self.word(datastore_word),
        }
    }
}

/// The first name rule `name` matches, unless it is a certificate path.
pub fn name_rule(name: &str) -> Option<&'static NameRule> {
    if is_cert_path_name(name) {
        return None;
    }
    let n = Name::new(name);
    NAME_RULES.iter().find(|r| n.matches(r.m))
}

/// Certificate-path variables name files (CA bundles, trust directories),
/// not secrets; TLS behind a corporate proxy or a mirror needs them.
pub const CERT_PATH_NAMES: &[&str] = &[
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH", "AWS_CA_BUNDLE", "PIP_CERT", "CARGO_HTTP_CAINFO", "NPM_CONFIG_CAFILE", "HEX_CACERTS_PATH",
];

/// Endings of certificate-path names (`*_CA_BUNDLE`, `*_CAINFO`, …).
const CERT_PATH_ENDINGS: &[&str] = &["_CA_BUNDLE", "_CAINFO", "_CAPATH", "_CA_CERTS", "_CACERT", "_CACERTS", "_CAFILE", "_CA_FILE", "_CA_PATH", "_CA_DIR", "_CERT_FILE", "_CERT_DIR"];

/// Is `name` a certificate-path variable? Never when it also says
/// `TOKEN`, `SECRET`, `KEY`, `PASS`, `CREDENTIAL` or `PRIVATE`.
pub fn is_cert_path_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    let named = CERT_PATH_NAMES.contains(&up.as_str()) || CERT_PATH_ENDINGS.iter().any(|e| up.ends_with(e));
    named && !["TOKEN", "SECRET", "KEY", "PASS", "CREDENTIAL", "PRIVATE", "PWD"].iter().any(|p| up.contains(p))
}

/// Is `name` spelled like an environment variable (`DB_PASS`, `Path`)?
pub fn env_style(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Does a key of structured data (`apiKey`, `client_secret`,
/// `Authorization`) name a secret? Compared lower-cased with every
/// character but letters and digits dropped.
pub fn key_looks_secret(k: &str) -> bool {
    let k: String = k.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    ["token", "secret", "password", "passwd", "passphrase", "apikey", "authorization", "auth", "cookie", "credential", "privatekey", "accesskey", "clientsecret", "sessionkey"]
        .iter()
        .any(|s| k.contains(s))
        || k == "key"
        || k.ends_with("key") && k.len() <= 12 && k != "sessionkey" && k != "toolkey"
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

/// The parts of a URL-like word that are credentials: the password of
/// `scheme://user:pass@host`, a user name of a known token shape
/// (`https://ghp_…@github.com`), and the value of every secret-named query
/// parameter (`?access_token=…`, `&X-Amz-Signature=…`); in order.
pub fn url_credentials(tok: &str) -> Vec<(Range<usize>, &'static str)> {
    let mut found = vec![];
    let Some(scheme_end) = tok.find("://") else { return found };
    let auth_start = scheme_end + 3;
    let auth_len = tok[auth_start..].find(['/', '?', '#']).unwrap_or(tok.len() - auth_start);
    let authority = &tok[auth_start..auth_start + auth_len];
    if let Some(at) = authority.rfind('@') {
        let userinfo = &authority[..at];
        match userinfo.find(':') {
            Some(c) if c + 1 < userinfo.len() => found.push((auth_start + c + 1..auth_start + at, "password in a URL")),
            _ if token_kind(userinfo).is_some() => found.push((auth_start..auth_start + at, "token in a URL")),
            _ => {}
        }
    }
    let Some(q) = tok[auth_start + auth_len..].find('?').map(|i| auth_start + auth_len + i + 1) else { return found };
    let mut pos = q;
    for pair in tok[q..].split(['&', '#']) {
        if let Some((k, v)) = pair.split_once('=') {
            let lk = k.to_ascii_lowercase();
            if !v.is_empty() && (key_looks_secret(k) || lk.contains("signature") || lk == "sig") {
                let vs = pos + k.len() + 1;
                found.push((vs..vs + v.len(), "secret query parameter"));
            }
        }
        pos += pair.len() + 1;
    }
    found
}

/// The first of [`url_credentials`].
pub fn url_credential(tok: &str) -> Option<(Range<usize>, &'static str)> {
    url_credentials(tok).into_iter().next()
}

/// Known token shapes, by prefix: (prefix, shortest whole token, kind).
const TOKEN_PREFIXES: &[(&str, usize, &str)] = &[
    ("sk-ant-", 20, "anthropic-key"),
    ("sk-", 20, "api-key"),
    ("sk_live_", 20, "stripe-key"),
    ("sk_test_", 20, "stripe-key"),
    ("rk_live_", 20, "stripe-key"),
    ("rk_test_", 20, "stripe-key"),
    ("ghp_", 20, "github-token"),
    ("gho_", 20, "github-token"),
    ("ghu_", 20, "github-token"),
    ("ghs_", 20, "github-token"),
    ("ghr_", 20, "github-token"),
    ("github_pat_", 20, "github-token"),
    ("glpat-", 20, "gitlab-token"),
    ("gldt-", 20, "gitlab-token"),
    ("glrt-", 20, "gitlab-token"),
    ("glptt-", 20, "gitlab-token"),
    ("glcbt-", 20, "gitlab-token"),
    ("xapp-", 20, "slack-token"),
    ("AIza", 35, "google-api-key"),
    ("ya29.", 30, "google-oauth-token"),
    ("npm_", 36, "npm-token"),
    ("hf_", 30, "huggingface-token"),
    ("pypi-", 50, "pypi-token"),
    ("dckr_pat_", 20, "docker-token"),
    ("dop_v1_", 40, "digitalocean-token"),
];

/// The kind of token a single word is (`ghp_…` → `github-token`), if it
/// has a known shape. Punctuation around the word is ignored.
pub fn token_kind(word: &str) -> Option<&'static str> {
    let t = trim_token(word);
    if let Some(&(_, _, kind)) = TOKEN_PREFIXES.iter().find(|(p, min, _)| t.starts_with(p) && t.len() >= *min) {
        return Some(kind);
    }
    let b = t.as_bytes();
    if t.len() >= 15 && t.starts_with("xox") && b.get(4) == Some(&b'-') {
        return Some("slack-token");
    }
    if t.len() == 20 && (t.starts_with("AKIA") || t.starts_with("ASIA")) && b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        return Some("aws-key-id");
    }
    if t.starts_with("eyJ") && t.len() >= 30 && t.split('.').count() == 3 && t.split('.').all(|p| !p.is_empty()) {
        return Some("jwt");
    }
    None
}

/// A word without the punctuation around it (quotes, brackets, `:`).
pub fn trim_token(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-' && c != '.')
}

/// Does a word separate words of free text?
pub fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == ';'
}

/// Why a value carries a credential, if it does: a private key block, a
/// credential in a URL, a `Bearer` credential, or a word of a known token
/// shape (also as the value of `name=value` or `--opt=value`).
pub fn value_kind(value: &str) -> Option<&'static str> {
    if private_key_block(value, 0).is_some() {
        return Some("private key");
    }
    let mut after_bearer = false;
    for w in value.split(is_separator).filter(|w| !w.is_empty()) {
        if after_bearer && trim_token(w).len() >= 8 {
            return Some("bearer credential");
        }
        after_bearer = w.eq_ignore_ascii_case("bearer");
        if let Some(k) = word_kind(w) {
            return Some(k);
        }
    }
    None
}

/// [`url_credential`] or [`token_kind`] of one word, or of what follows
/// its `=` (`--token=ghp_…`, `url=https://u:p@h`).
fn word_kind(w: &str) -> Option<&'static str> {
    if let Some((_, why)) = url_credential(w) {
        return Some(why);
    }
    if let Some(k) = token_kind(w) {
        return Some(k);
    }
    w.split_once('=').and_then(|(_, v)| word_kind(v))
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

    #[test]
    fn private_key_blocks() {
        let s = "a -----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE----- b -----BEGIN RSA PRIVATE KEY-----\ny\n-----END RSA PRIVATE KEY----- c";
        let r = private_key_block(s, 0).unwrap();
        assert!(s[r.clone()].starts_with("-----BEGIN RSA") && s[r].ends_with("KEY-----"));
        assert!(private_key_block("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----", 0).is_none());
    }

    #[test]
    fn cert_paths_are_not_secret_names() {
        for n in CERT_PATH_NAMES.iter().copied().chain(["MY_TOOL_CA_BUNDLE", "aws_ca_bundle"]) {
            assert!(is_cert_path_name(n), "{n}");
            assert!(name_rule(n).is_none(), "{n}");
        }
        assert!(!is_cert_path_name("MY_SECRET_CA_BUNDLE"));
        assert!(!is_cert_path_name("SSL_KEY_FILE"));
    }
}
