//! Secret-looking names: environment-style names ([`name_rule`] over
//! [`NAME_RULES`]), keys of structured data ([`key_looks_secret`]) and keys
//! of `key=value` pairs inside text ([`pair_key_secret`]).
//!
//! A name rule matches the upper-cased name or its words (split at every
//! character that is not a letter or digit; a word's trailing digits are
//! dropped, so `OAUTH2` is `OAUTH`). Words that only look secret
//! (`KEYBOARD`, `TOKENIZERS`, `GOPRIVATE`, a desktop `XDG_SESSION_TYPE`,
//! `BYPASS`) are told apart by rule, not by listing the secrets.

/// How a name rule matches (on the upper-cased name and its words).
#[derive(Debug, Clone, Copy)]
enum Match {
    /// Anywhere in the name.
    Part(&'static str),
    /// Anywhere in the name once these harmless words are taken out
    /// (`KEY`, but not the `KEY` of `KEYBOARD`).
    PartBut(&'static str, &'static [&'static str]),
    /// One word of the name is exactly this.
    Word(&'static str),
    /// A word ends in one of these (or is one), unless it is one of the
    /// listed words (`SSHPASS`, not `BYPASS`).
    WordEnd(&'static [&'static str], &'static [&'static str]),
    /// A word ends in `PW` (`REDIS_PW`, `LDAP_BINDPW`), except a leading
    /// `PW` word (Playwright's `PW_…`).
    PwEnd,
    /// One word of the name starts with one of these.
    WordStart(&'static [&'static str]),
    /// A word that is `AUTH`, starts with it (not `AUTHOR`, `AUTHORITY`) or
    /// ends with it (`OAUTH`).
    Auth,
    /// A word naming a session, unless the session is a desktop, terminal
    /// or message bus one ([`SESSION_OWNERS`], [`SESSION_SETTINGS`]).
    Session,
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

/// Words with `KEY` in them that name no key: keyboards, keymaps, Keycloak
/// (whose secrets say `SECRET`/`PASSWORD`), zsh's `KEYTIMEOUT`, `MONKEY`, …
const NOT_KEYS: &[&str] = &[
    "KEYBOARD", "KEYMAP", "KEYCLOAK", "KEYTIMEOUT", "KEYWORD", "KEYSYM", "KEYCODE", "KEYPAD", "KEYBIND", "KEYLAYOUT",
    "KEYREPEAT", "KEYNOTE", "KEYSTONE", "MONKEY", "DONKEY", "TURKEY", "HOCKEY", "WHISKEY", "JOCKEY",
];

/// Words ending in `PASS` that are no password: English words, and
/// `ASKPASS` (the program that asks for one: `SSH_ASKPASS`, `GIT_ASKPASS`).
const NOT_PASSWORDS: &[&str] = &[
    "ASKPASS", "BYPASS", "COMPASS", "ENCOMPASS", "SURPASS", "TRESPASS", "OVERPASS", "UNDERPASS", "FLYPASS", "MULTIPASS",
    "HIGHPASS", "LOWPASS", "BANDPASS", "ALLPASS", "ONEPASS", "TWOPASS", "SINGLEPASS", "FIRSTPASS", "SECONDPASS",
];

/// First words of desktop, terminal and bus sessions (`XDG_SESSION_ID`,
/// `TERM_SESSION_ID`, `DBUS_SESSION_BUS_ADDRESS`, `DESKTOP_SESSION`): ids
/// and addresses of the local login, not credentials.
const SESSION_OWNERS: &[&str] = &["XDG", "TERM", "ITERM", "DBUS", "DESKTOP", "WT", "KONSOLE", "TMUX", "SCREEN", "GNOME", "KDE", "VTE"];

/// Words after `SESSION` that make it a setting, not a session id
/// (`*_SESSION_TYPE`, `SESSION_MANAGER`, `*_SESSION_BUS_ADDRESS`).
const SESSION_SETTINGS: &[&str] = &["TYPE", "CLASS", "DESKTOP", "BUS", "MANAGER", "SEAT", "NAME", "TIMEOUT"];

/// Every name rule, in the order they are tried.
pub const NAME_RULES: &[NameRule] = &[
    rule("*TOKEN*", "access, refresh and API tokens; not TOKENIZER(S)", Match::PartBut("TOKEN", &["TOKENIZE"])),
    rule("*SECRET*", "client and signing secrets", Match::Part("SECRET")),
    rule(
        "*KEY*",
        "API keys (*APIKEY*, *API_KEY*), access keys, private and encryption keys (*CERT_KEY*); not KEYBOARD, KEYMAP, KEYCLOAK",
        Match::PartBut("KEY", NOT_KEYS),
    ),
    rule("*PASSWORD*", "passwords", Match::Part("PASSWORD")),
    rule("*PASSWD*", "passwords", Match::Part("PASSWD")),
    rule("*PASSPHRASE*", "passphrases of keys", Match::Part("PASSPHRASE")),
    rule("*PASSCODE*", "passcodes and PINs", Match::Part("PASSCODE")),
    rule(
        "PASS (a word or a word's end)",
        "short for password (DB_PASS, SSHPASS, SMTPPASS); not English words (BYPASS, COMPASS, SURPASS)",
        Match::WordEnd(&["PASS"], NOT_PASSWORDS),
    ),
    rule(
        "PWD (a word or a word's end)",
        "short for password (MYSQL_PWD, ROOTPWD); the names PWD and OLDPWD are working directories",
        Match::WordEnd(&["PWD"], &["OLDPWD"]),
    ),
    rule("PW (a word's end)", "short for password (REDIS_PW, LDAP_BINDPW); not a leading PW_… (Playwright's settings)", Match::PwEnd),
    rule("PAT (a word)", "personal access tokens (GITLAB_PAT, AZURE_DEVOPS_PAT)", Match::Word("PAT")),
    rule("*CREDS*, CRED (a word)", "credentials (REGISTRY_CREDS, JENKINS_CREDS, GIT_CRED)", Match::Part("CREDS")),
    rule("*CREDS*, CRED (a word)", "credentials (REGISTRY_CREDS, JENKINS_CREDS, GIT_CRED)", Match::Word("CRED")),
    rule("*CREDENTIAL*", "credentials and the files holding them", Match::Part("CREDENTIAL")),
    rule("*JWT*", "signed identity tokens (CI_JOB_JWT)", Match::Part("JWT")),
    rule("*BEARER*", "bearer credentials", Match::Part("BEARER")),
    rule("*HMAC*", "HMAC signing keys (DEPLOY_HMAC, WEBHOOK_HMAC_KEY)", Match::Part("HMAC")),
    rule("*SALT*", "salts of password hashes and signed cookies (NONCE_SALT, WP_LOGGED_IN_SALT)", Match::Part("SALT")),
    rule("*MNEMONIC*", "wallet seed phrases", Match::Part("MNEMONIC")),
    rule(
        "AUTH… / …AUTH (a word)",
        "authorization headers and tokens (NPM_CONFIG__AUTH, HTTP_AUTHORIZATION, OAUTH_…); not AUTHOR, AUTHORITY",
        Match::Auth,
    ),
    rule(
        "…HEADER(S) (a word's end)",
        "headers a client or exporter sends carry API keys and Authorization (OTEL_EXPORTER_OTLP_HEADERS, ANTHROPIC_CUSTOM_HEADERS, HTTP_EXTRAHEADER)",
        Match::WordEnd(&["HEADER", "HEADERS"], &[]),
    ),
    rule("*COOKIE*", "session cookies", Match::Part("COOKIE")),
    rule(
        "*SESSION*",
        "session ids and session tokens; not desktop, terminal or bus sessions (XDG_SESSION_TYPE, TERM_SESSION_ID, DBUS_SESSION_BUS_ADDRESS, *_SESSION_TYPE)",
        Match::Session,
    ),
    rule("*PRIVATE*", "private keys; not GOPRIVATE (Go's list of private module paths)", Match::PartBut("PRIVATE", &["GOPRIVATE"])),
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

/// Names that are never secret: the shell's working directories.
const NEVER_SECRET: &[&str] = &["PWD", "OLDPWD"];

/// An upper-cased name and its words (trailing digits dropped).
struct Name {
    up: String,
    words: Vec<String>,
}

impl Name {
    fn new(name: &str) -> Name {
        let up = name.to_ascii_uppercase();
        let words = up
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(|w| w.trim_end_matches(|c: char| c.is_ascii_digit()))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        Name { up, words }
    }

    fn word(&self, f: impl Fn(&str) -> bool) -> bool {
        self.words.iter().any(|w| f(w))
    }

    fn matches(&self, m: Match) -> bool {
        match m {
            Match::Part(p) => self.up.contains(p),
            Match::PartBut(p, harmless) => harmless.iter().fold(self.up.clone(), |s, h| s.replace(h, " ")).contains(p),
            Match::Word(w) => self.word(|x| x == w),
            Match::WordEnd(ends, not) => self.word(|x| ends.iter().any(|e| x.ends_with(e)) && !not.contains(&x)),
            Match::PwEnd => self.words.iter().enumerate().any(|(i, x)| x.ends_with("PW") && (i > 0 || x.len() > 2)),
            Match::WordStart(starts) => self.word(|x| starts.iter().any(|s| x.starts_with(s))),
            Match::Auth => self.word(auth_word),
            Match::Session => self.session_secret(),
            Match::DatastoreUrl => self.word(|x| URL_WORDS.contains(&x)) && self.word(datastore_word),
        }
    }

    /// A word naming a session, unless the name belongs to a desktop,
    /// terminal or bus session or the next word makes it a setting.
    fn session_secret(&self) -> bool {
        let Some(i) = self.words.iter().position(|w| w.contains("SESSION")) else { return false };
        let owned = i > 0 && SESSION_OWNERS.contains(&self.words[0].as_str());
        let setting = self.words.get(i + 1).is_some_and(|n| SESSION_SETTINGS.contains(&n.as_str()));
        !owned && !setting
    }
}

/// `AUTH`, a word starting with it (not `AUTHOR`, `AUTHORITY`) or ending
/// with it (`OAUTH`).
fn auth_word(x: &str) -> bool {
    let not_auth = ["AUTHOR", "AUTHORS", "AUTHORED", "AUTHORITY", "AUTHORITIES"].contains(&x);
    x == "AUTH" || (x.starts_with("AUTH") && !not_auth) || (x.len() > 4 && x.ends_with("AUTH"))
}

/// The first name rule `name` matches, unless it is a certificate path or
/// a working directory.
pub fn name_rule(name: &str) -> Option<&'static NameRule> {
    if is_cert_path_name(name) || NEVER_SECRET.contains(&name.to_ascii_uppercase().as_str()) {
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
    named && !["TOKEN", "SECRET", "KEY", "PASS", "CREDENTIAL", "CREDS", "PRIVATE", "PWD"].iter().any(|p| up.contains(p))
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
    if key_is_setting(&k) || (k.contains("author") && !k.contains("authoriz")) {
        return false;
    }
    ["token", "secret", "password", "passwd", "passphrase", "apikey", "authorization", "auth", "cookie", "credential", "privatekey", "accesskey", "clientsecret", "sessionkey"]
        .iter()
        .any(|s| k.contains(s))
        || k == "key"
        || k.ends_with("key") && k.len() <= 12 && k != "sessionkey" && k != "toolkey"
}

/// Keys of `key=value` pairs (and `Name: value` headers) whose value is the
/// credential, exactly (compared lower-cased, letters and digits only).
const PAIR_KEYS: &[&str] = &[
    "pass", "pwd", "pw", "pswd", "key", "sig", "auth", "sas", "creds", "cred", "privatetoken", "xhoneycombteam",
];

/// Parts of keys of `key=value` pairs whose value is the credential
/// (`password=`, `AccountKey=`, `SharedAccessSignature=`, `api_key=`,
/// `Ocp-Apim-Subscription-Key:`).
const PAIR_KEY_PARTS: &[&str] = &[
    "password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "accountkey", "privatekey",
    "sharedaccess", "signature", "credential", "authorization", "cookie", "subscriptionkey", "functionskey", "masterkey",
    "licensekey", "signingkey", "encryptionkey",
];

/// Endings of keys that configure a secret rather than hold it
/// (`password_file=`, `token_type=`, `PasswordAuthentication=`).
const PAIR_KEY_SETTINGS: &[&str] = &[
    "file", "path", "dir", "url", "uri", "type", "length", "len", "policy", "prompt", "authentication", "required",
    "mode", "method", "env", "name", "id", "version", "expiry", "expires", "ttl", "format", "algorithm", "size",
];

/// Does a key (lower-cased, letters and digits only) configure a secret
/// or a tokenizer rather than hold a secret?
fn key_is_setting(n: &str) -> bool {
    n.contains("tokeniz") || PAIR_KEY_SETTINGS.iter().any(|s| n.ends_with(s))
}

/// Does the key of a `key=value` pair inside text name the credential
/// (`password`, `pwd`, `AccountKey`, `-Dapp.db.password`, `x-api-key`)?
/// A JVM property counts by its last dotted part; keys that configure a
/// secret (`password_file`, `token_type`) do not count.
pub fn pair_key_secret(k: &str) -> bool {
    let k = k.strip_prefix("-D").unwrap_or(k).trim_start_matches('-');
    let last = k.rsplit('.').next().unwrap_or(k);
    let n: String = last.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if n.is_empty() || key_is_setting(&n) {
        return false;
    }
    PAIR_KEYS.contains(&n.as_str())
        || PAIR_KEY_PARTS.iter().any(|p| n.contains(p))
        || (n.ends_with("pass") && !NOT_PASSWORDS.iter().any(|w| w.eq_ignore_ascii_case(&n)))
        || (n.ends_with("pwd") && n != "oldpwd")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names a rule catches, with the rule's pattern.
    const CAUGHT: &[(&str, &str)] = &[
        ("SSHPASS", "PASS (a word or a word's end)"),
        ("SMTPPASS", "PASS (a word or a word's end)"),
        ("DB_PASS2", "PASS (a word or a word's end)"),
        ("MY_APP_DBPASS", "PASS (a word or a word's end)"),
        ("PASS", "PASS (a word or a word's end)"),
        ("ROOTPWD", "PWD (a word or a word's end)"),
        ("MYSQL_PWD", "PWD (a word or a word's end)"),
        ("LDAP_BINDPW", "PW (a word's end)"),
        ("SLAPD_ROOTPW", "PW (a word's end)"),
        ("REDIS_PW", "PW (a word's end)"),
        ("ADMINPW", "PW (a word's end)"),
        ("VAULT_PASSCODE", "*PASSCODE*"),
        ("REGISTRY_CREDS", "*CREDS*, CRED (a word)"),
        ("JENKINS_CREDS", "*CREDS*, CRED (a word)"),
        ("DOCKERHUB_CREDS_USR", "*CREDS*, CRED (a word)"),
        ("GIT_CRED", "*CREDS*, CRED (a word)"),
        ("NONCE_SALT", "*SALT*"),
        ("WP_LOGGED_IN_SALT", "*SALT*"),
        ("PASSWORD_SALT", "*PASSWORD*"),
        ("SALT", "*SALT*"),
        ("DEPLOY_HMAC", "*HMAC*"),
        ("HMAC", "*HMAC*"),
        ("WALLET_MNEMONIC", "*MNEMONIC*"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "…HEADER(S) (a word's end)"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "…HEADER(S) (a word's end)"),
        ("ANTHROPIC_CUSTOM_HEADERS", "…HEADER(S) (a word's end)"),
        ("HTTP_EXTRA_HEADER", "…HEADER(S) (a word's end)"),
        ("GIT_HTTP_EXTRAHEADER", "…HEADER(S) (a word's end)"),
        ("OAUTH2_CLIENT_ID", "AUTH… / …AUTH (a word)"),
        ("SESSION_ID", "*SESSION*"),
        ("APP_SESSION", "*SESSION*"),
        ("FLASK_SESSION_ID", "*SESSION*"),
        ("HF_TOKEN", "*TOKEN*"),
        ("TOKENIZER_API_TOKEN", "*TOKEN*"),
        ("KEYBOARD_API_KEY", "*KEY*"),
        ("KEYCLOAK_CLIENT_SECRET", "*SECRET*"),
        ("KEYCLOAK_ADMIN_PASSWORD", "*PASSWORD*"),
        ("KEYSTORE_PATH", "*KEY*"),
        ("XDG_SESSION_TOKEN", "*TOKEN*"),
        ("GOPRIVATE_KEY", "*KEY*"),
        ("SSH_PRIVATE", "*PRIVATE*"),
    ];

    /// Names no rule catches.
    const PLAIN: &[&str] = &[
        "PWD", "OLDPWD", "PATH", "HOME", "SSH_TTY", "GIT_AUTHOR_NAME", "BYPASS_CACHE", "COMPASS_DIR", "NO_PROXY_BYPASS",
        "SURPASS", "PASSENGER_ENV", "PW_TEST_REPORTER", "PWDEBUG", "PW", "KEYMAP", "XKB_KEYMAP", "CONSOLE_KEYMAP",
        "KEYBOARD", "KEYBOARD_LAYOUT", "KEYCLOAK_URL", "KEYCLOAK_REALM", "KEYTIMEOUT", "TOKENIZERS_PARALLELISM",
        "TOKENIZER_PATH", "GOPRIVATE", "TERM_SESSION_ID", "ITERM_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_ID",
        "XDG_SESSION_CLASS", "XDG_SESSION_DESKTOP", "DESKTOP_SESSION", "DBUS_SESSION_BUS_ADDRESS", "SESSION_MANAGER",
        "FLASK_SESSION_TYPE", "WT_SESSION", "HF_HOME", "DO_NOT_TRACK", "CREDITS", "SHOW_CREDITS", "HEADLESS",
        "LEADER_ELECTION", "MONKEY_PATCH", "SSH_ASKPASS", "GIT_ASKPASS", "SUDO_ASKPASS", "VSCODE_GIT_ASKPASS_NODE",
    ];

    #[test]
    fn name_rules_catch_their_names_and_spare_the_rest() {
        for (n, pattern) in CAUGHT {
            assert_eq!(name_rule(n).map(|r| r.pattern), Some(*pattern), "{n}");
        }
        for n in PLAIN {
            assert!(name_rule(n).is_none(), "{n} caught by {:?}", name_rule(n).map(|r| r.pattern));
        }
    }

    #[test]
    fn pair_keys() {
        for k in [
            "password", "Password", "pwd", "pass", "passphrase", "secret", "token", "access_token", "AccountKey",
            "SharedAccessSignature", "api_key", "apikey", "-Dfoo.password", "-Dgpg.passphrase", "spring.datasource.password",
            "x-api-key", "X-Honeycomb-Team", "Authorization", "Proxy-Authorization", "Ocp-Apim-Subscription-Key", "sig",
            "client_secret", "dbpass", "Private-Token", "Cookie",
        ] {
            assert!(pair_key_secret(k), "{k}");
        }
        for k in [
            "user", "host", "Server", "Database", "User Id", "AccountName", "DefaultEndpointsProtocol", "url", "username",
            "password_file", "token_type", "PasswordAuthentication", "authMechanism", "authSource", "bypass", "compass",
            "oldpwd", "-Dfile.encoding", "page", "tokenizer", "sslmode", "keyid", "askpass",
        ] {
            assert!(!pair_key_secret(k), "{k}");
        }
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
