//! What a secret looks like, by name and by value: the one detector that the
//! sandbox's environment filter (`policy::env`) and the audit log's
//! redaction (`audit::redact`) both call, so a shape one of them knows the
//! other knows too.
//!
//! * Names ([`name_rule`], in [`names`]): rules over the upper-cased name and
//!   its words (split at every character that is not a letter or digit):
//!   `*TOKEN*`, `PASS` as a word or a word's ending (`SSHPASS`, not
//!   `BYPASS`), the URL of a datastore, … ([`NAME_RULES`], each with the
//!   reason it exists). Certificate-path names (`SSL_CERT_FILE`,
//!   `*_CA_BUNDLE`, …) name files, not secrets: [`is_cert_path_name`].
//! * Keys of structured data ([`key_looks_secret`]): `apiKey`, `password`,
//!   `authorization`, … (camelCase-aware, for JSON parameters), and keys of
//!   `key=value` pairs inside text ([`pair_key_secret`]: `password=`,
//!   `AccountKey=`, `-Dapp.password=`, `x-honeycomb-team=`).
//! * Values ([`value_kind`], in [`values`]): a private key block,
//!   credentials in a URL (`scheme://user:pass@host`, scheme-less
//!   `user:pass@host:port`, a secret query, fragment or path parameter), a
//!   `Bearer`/`Basic` credential or a credential header, a `key=value`
//!   credential (libpq, ADO.NET, Azure, JVM options, git credentials), or a
//!   word of a known token shape ([`token_kind`], in [`tokens`]: GitHub,
//!   GitLab, Slack, SendGrid, Stripe, AWS key ids, OpenAI/Anthropic, Google,
//!   npm, JWTs, …).
//!
//! Rules, not lists of known names: a new service's `FOO_API_KEY`,
//! `FOO_DB_PASS` or `FOO_WEBHOOK_URL` is caught without being named here.

pub mod names;
pub mod tokens;
pub mod values;

pub use names::{env_style, is_cert_path_name, key_looks_secret, name_rule, pair_key_secret, NameRule, CERT_PATH_NAMES, NAME_RULES};
pub use tokens::{token_kind, trim_token};
pub use values::{is_separator, private_key_block, url_credential, url_credentials, value_kind};
