//! The policy's JSON shape, with validation done during deserialisation so
//! that every error carries serde_json's `line:column` and the key path.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A whole policy. Every key is optional; an empty object `{}` is the
/// strictest policy (no writes outside the private `/tmp`, no network).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// JSON Schema reference, allowed so editors can validate the file.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub filesystem: FilesystemPolicy,
    #[serde(default)]
    pub network: NetworkPolicy,
    #[serde(default)]
    pub limits: Limits,
    /// Names of variables passed through from the caller's environment, on
    /// top of the minimal default set. Secret-looking names pass only when
    /// listed here by their exact name.
    #[serde(default, deserialize_with = "env_names")]
    pub env: Vec<String>,

    // ---- srt top-level keys -------------------------------------------
    /// srt: how deep to look for protected paths. sharkcage looks at every
    /// depth; accepted (1–10) so srt files load, and named by `ignored_keys`.
    #[serde(default, deserialize_with = "search_depth")]
    pub mandatory_deny_search_depth: Option<u8>,
    /// srt's violation filter. Accepted so srt files load; sharkcage reports
    /// every violation regardless (listed by `ignored_keys`).
    #[serde(default)]
    pub ignore_violations: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, deserialize_with = "must_be_false")]
    pub enable_weaker_nested_sandbox: Option<bool>,
    #[serde(default, deserialize_with = "must_be_false")]
    pub allow_nested_user_namespaces: Option<bool>,
    /// Tool-location keys of srt; they cannot change what is enforced.
    #[serde(default)]
    pub ripgrep: Option<serde_json::Value>,
    #[serde(default)]
    pub seccomp: Option<serde_json::Value>,
    #[serde(default)]
    pub bwrap_path: Option<String>,
    #[serde(default)]
    pub socat_path: Option<String>,
    #[serde(default)]
    pub java_agent_jar_path: Option<String>,
    #[serde(default, deserialize_with = "unsupported")]
    pub credentials: Option<()>,
    #[serde(default, deserialize_with = "unsupported")]
    pub git: Option<()>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilesystemPolicy {
    /// Writable roots. Mandatory protected paths inside them stay read-only.
    #[serde(default, deserialize_with = "write_paths")]
    pub allow_write: Vec<PathEntry>,
    /// Hidden paths (globs allowed). The mandatory denies are always added.
    #[serde(default, deserialize_with = "read_paths")]
    pub deny_read: Vec<PathEntry>,
    /// Re-opens paths inside `denyRead` regions (never inside mandatory ones).
    #[serde(default, deserialize_with = "read_paths")]
    pub allow_read: Vec<PathEntry>,
    /// Read-only carve-outs inside writable roots; wins over `allowWrite`.
    #[serde(default, deserialize_with = "write_paths")]
    pub deny_write: Vec<PathEntry>,
    /// Lifts only the `.git/config` protection.
    #[serde(default)]
    pub allow_git_config: bool,
    /// When set, the only files the call may start (`execve`): each listed
    /// file (with what the kernel opens to start it: its dynamic loader, its
    /// `#!` interpreter), or everything below a listed directory. Absolute
    /// paths, no globs; enforced by Landlock (refused on hosts without it).
    #[serde(default, deserialize_with = "exec_paths")]
    pub exec_only: Option<Vec<String>>,
    #[serde(default, deserialize_with = "must_be_false")]
    pub disabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicy {
    /// Hosts the proxy may reach: `example.com`, `*.example.com` (subdomains
    /// only), IP literals, each with an optional `:port` (without one: 80
    /// and 443). See `proxy/rules.rs`.
    #[serde(default, deserialize_with = "allowed_domains")]
    pub allowed_domains: Vec<String>,
    /// Checked before `allowedDomains`; also `*` and `*:port`.
    #[serde(default, deserialize_with = "denied_domains")]
    pub denied_domains: Vec<String>,
    #[serde(default)]
    pub denied_domain_reasons: BTreeMap<String, String>,
    /// sharkcage is always strict: anything not allowed is denied.
    #[serde(default)]
    pub strict_allowlist: Option<bool>,
    /// Unix socket paths the command may connect to (by absolute path; the
    /// launcher performs each connect, see `launcher/unix_broker.rs`).
    #[serde(default, deserialize_with = "unix_socket_paths")]
    pub allow_unix_sockets: Vec<String>,
    #[serde(default, deserialize_with = "must_be_false")]
    pub allow_all_unix_sockets: Option<bool>,
    /// Let the command listen on its own (private) loopback and connect to
    /// its own servers there. Default: yes (the sandbox's network namespace
    /// has nothing but that loopback: nothing of the host's is reachable);
    /// `false` refuses `bind` and any connect but the proxy's (Landlock TCP).
    #[serde(default)]
    pub allow_local_binding: Option<bool>,
    #[serde(default, deserialize_with = "unsupported")]
    pub http_proxy_port: Option<()>,
    #[serde(default, deserialize_with = "unsupported")]
    pub socks_proxy_port: Option<()>,
    #[serde(default, deserialize_with = "unsupported")]
    pub mitm_proxy: Option<()>,
    #[serde(default, deserialize_with = "unsupported")]
    pub parent_proxy: Option<()>,
    #[serde(default, deserialize_with = "unsupported")]
    pub tls_terminate: Option<()>,
    #[serde(default, deserialize_with = "unsupported")]
    pub denied_resolved_addresses: Option<()>,
}

/// Resource limits. Every field has a safe default; how each is enforced is
/// `layers::limits` (per process) and `layers::cgroup` (per sandbox).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    /// Wall-clock limit for the whole call; the process tree is killed after it.
    #[serde(default = "d_timeout", deserialize_with = "positive_u64")]
    pub timeout_ms: u64,
    /// stdout + stderr bytes passed through before output is cut.
    #[serde(default = "d_output", deserialize_with = "positive_u64")]
    pub max_output_bytes: u64,
    /// Processes (and threads) alive at once inside the sandbox.
    #[serde(default = "d_procs", deserialize_with = "positive_u64")]
    pub max_processes: u64,
    /// Memory of the whole sandbox (processes, page cache, shared memory,
    /// tmpfs, kernel memory) where a memory cgroup is available; each
    /// process's private writable memory (RLIMIT_DATA) otherwise. `None`:
    /// the host-derived default (`layers::limits::Effective`).
    #[serde(default, deserialize_with = "positive_u64_opt")]
    pub max_memory_bytes: Option<u64>,
    /// Open files per process (RLIMIT_NOFILE). `None`: the host-derived
    /// default, which keeps maxOpenFiles × maxProcesses within an eighth of
    /// the host's file table (`layers::limits::Effective`).
    #[serde(default, deserialize_with = "positive_u64_opt")]
    pub max_open_files: Option<u64>,
    /// Largest file a process may write (RLIMIT_FSIZE).
    #[serde(default = "d_fsize", deserialize_with = "positive_u64")]
    pub max_file_size_bytes: u64,
    /// Size of the one private tmpfs behind `/tmp`, `/var/tmp` and `/dev/shm`
    /// together.
    #[serde(default = "d_tmpfs", deserialize_with = "positive_u64")]
    pub tmpfs_bytes: u64,
    /// Size of a private home layer (`launcher::home_layer`) past which it
    /// is cleared before the next call.
    #[serde(default = "d_home_layer", deserialize_with = "positive_u64")]
    pub home_layer_bytes: u64,
}

fn d_timeout() -> u64 {
    10 * 60 * 1000
}
fn d_output() -> u64 {
    8 * 1024 * 1024
}
fn d_procs() -> u64 {
    512
}
fn d_fsize() -> u64 {
    4 * 1024 * 1024 * 1024
}
fn d_tmpfs() -> u64 {
    512 * 1024 * 1024
}
fn d_home_layer() -> u64 {
    4 * 1024 * 1024 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: d_timeout(),
            max_output_bytes: d_output(),
            max_processes: d_procs(),
            max_memory_bytes: None,
            max_open_files: None,
            max_file_size_bytes: d_fsize(),
            tmpfs_bytes: d_tmpfs(),
            home_layer_bytes: d_home_layer(),
        }
    }
}

/// A path rule: a string, or srt's `{ "path": "...", "literal": true }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEntry {
    pub path: String,
    /// `true`: glob characters are taken literally.
    pub literal: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPathEntry {
    Plain(String),
    Object(PathObject),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathObject {
    path: String,
    #[serde(default)]
    literal: bool,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn check_path_syntax<E: de::Error>(p: &str) -> Result<(), E> {
    if p.is_empty() {
        return Err(E::custom("path is empty"));
    }
    if p.contains('\0') {
        return Err(E::custom("path contains a NUL byte"));
    }
    if !(p.starts_with('/') || p == "~" || p.starts_with("~/")) {
        return Err(E::custom(format!(
            "path {p:?} is relative; write an absolute path or one starting with ~/"
        )));
    }
    Ok(())
}

fn path_list<'de, D: Deserializer<'de>>(d: D, globs: bool) -> Result<Vec<PathEntry>, D::Error> {
    struct V(bool);
    impl<'de> de::Visitor<'de> for V {
        type Value = Vec<PathEntry>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of paths")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(raw) = seq.next_element::<RawPathEntryChecked>()? {
                let e = raw.0;
                if !e.literal && has_glob(&e.path) {
                    if !self.0 {
                        return Err(de::Error::custom(format!(
                            "glob {:?} in a write rule: write rules take literal paths \
                             (use {{\"path\": ..., \"literal\": true}} for a name with glob characters)",
                            e.path
                        )));
                    }
                    if e.path.ends_with('/') {
                        return Err(de::Error::custom(format!(
                            "glob {:?} ends in '/' and could never match",
                            e.path
                        )));
                    }
                }
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V(globs))
}

/// One list element, validated as it is read so the error points at it.
struct RawPathEntryChecked(PathEntry);
impl<'de> Deserialize<'de> for RawPathEntryChecked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawPathEntry::deserialize(d).map_err(|_| {
            de::Error::custom("expected a path string or {\"path\": string, \"literal\": bool}")
        })?;
        let e = match raw {
            RawPathEntry::Plain(p) => PathEntry { path: p, literal: false },
            RawPathEntry::Object(o) => PathEntry { path: o.path, literal: o.literal },
        };
        check_path_syntax(&e.path)?;
        // srt strips a trailing "/**" from write rules; do the same everywhere.
        let mut e = e;
        if !e.literal {
            if let Some(stripped) = e.path.strip_suffix("/**") {
                if !stripped.is_empty() && !has_glob(stripped) {
                    e.path = stripped.to_string();
                }
            }
        }
        Ok(RawPathEntryChecked(e))
    }
}

fn write_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathEntry>, D::Error> {
    path_list(d, false)
}
fn read_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathEntry>, D::Error> {
    path_list(d, true)
}

fn exec_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for (i, p) in v.iter().enumerate() {
        check_path_syntax::<D::Error>(p).map_err(|e| de::Error::custom(format!("entry {i}: {e}")))?;
        if !p.starts_with('/') {
            return Err(de::Error::custom(format!("entry {i}: {p:?}: write an absolute path")));
        }
        if p.contains(['*', '?', '[']) || p.split('/').any(|c| c == "..") {
            return Err(de::Error::custom(format!("entry {i}: {p:?}: no globs or `..`; list each program")));
        }
    }
    Ok(Some(v))
}

fn unix_socket_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for p in &v {
        check_path_syntax::<D::Error>(p)?;
        if p.contains(['*', '?', '[']) {
            return Err(de::Error::custom(format!("unix socket {p:?}: globs are not supported; list each socket path")));
        }
        if p.len() >= 108 {
            return Err(de::Error::custom(format!("unix socket {p:?}: longer than a socket address can hold (107 bytes)")));
        }
    }
    Ok(v)
}

fn domain_list<'de, D: Deserializer<'de>>(d: D, deny: bool) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for (i, dom) in v.iter().enumerate() {
        crate::proxy::rules::Pattern::parse(dom, deny).map_err(|m| de::Error::custom(format!("entry {i}: {m}")))?;
    }
    Ok(v)
}

fn allowed_domains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    domain_list(d, false)
}

fn denied_domains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    domain_list(d, true)
}

fn env_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for n in &v {
        // A name, or a prefix pattern ending in `*` (such as `NODE_*`).
        let body = n.strip_suffix('*').unwrap_or(n);
        let ok = !body.is_empty()
            && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !body.as_bytes()[0].is_ascii_digit();
        if !ok {
            return Err(de::Error::custom(format!("invalid environment variable name {n:?}")));
        }
    }
    Ok(v)
}

fn search_depth<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    let v = u64::deserialize(d)?;
    if !(1..=10).contains(&v) {
        return Err(de::Error::custom(format!("must be between 1 and 10, got {v}")));
    }
    Ok(Some(v as u8))
}

fn positive_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v == 0 {
        return Err(de::Error::custom("must be greater than 0"));
    }
    Ok(v)
}

fn positive_u64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    positive_u64(d).map(Some)
}

fn must_be_false<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = bool::deserialize(d)?;
    if v {
        return Err(de::Error::custom(
            "refused: this srt option weakens the sandbox and sharkcage does not support it",
        ));
    }
    Ok(Some(false))
}

fn unsupported<'de, D: Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    let _ = serde::de::IgnoredAny::deserialize(d)?;
    Err(de::Error::custom(
        "this srt option is not supported by sharkcage; remove it (it is refused rather than ignored)",
    ))
}
