//! The sandbox policy: what a sandboxed call may read, write, reach and use.
//!
//! The JSON shape is a superset of the settings file of Anthropic's sandbox
//! runtime (`srt`): `filesystem` and `network` use srt's keys and meanings, so
//! an existing srt settings file loads unchanged; `limits` and `env` are ours.
//!
//! Parsing is strict. Unknown keys, wrong types, relative paths and out-of-range
//! numbers are errors that name the file, `line:column` and the key path
//! (see [`error::PolicyError`]). There is no fallback to a default policy on an
//! error: the caller gets the error and nothing runs.
//!
//! srt keys that would weaken the sandbox (`allowNestedUserNamespaces`,
//! `enableWeakerNestedSandbox`, `filesystem.disabled`) are refused, and srt keys
//! for features sharkcage does not have are refused rather than ignored,
//! except pure tool-location keys (`ripgrep`, `seccomp`, `bwrapPath`, …),
//! which cannot change what is enforced and are reported as ignored.

pub mod env;
pub mod error;
pub mod paths;
mod raw;

pub use error::PolicyError;
pub use raw::{FilesystemPolicy, Limits, NetworkPolicy, PathEntry, Policy};

use std::path::Path;

impl Policy {
    /// Parse a policy from JSON text. `source` names the text in errors
    /// (a file path, or `<inline>`).
    pub fn from_json(text: &str, source: &str) -> Result<Policy, PolicyError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let policy: Policy = match serde_path_to_error::deserialize(de) {
            Ok(p) => p,
            Err(e) => {
                let key = e.path().to_string();
                let inner = e.into_inner();
                return Err(PolicyError::Invalid {
                    source_name: source.to_string(),
                    line: inner.line(),
                    column: inner.column(),
                    key: if key == "." { String::new() } else { key },
                    message: strip_position(&inner.to_string()),
                });
            }
        };
        for k in policy.network.denied_domain_reasons.keys() {
            if !policy.network.denied_domains.contains(k) {
                return Err(PolicyError::Resolve {
                    source_name: source.to_string(),
                    key: format!("network.deniedDomainReasons.{k}"),
                    message: "not an entry of network.deniedDomains".into(),
                });
            }
        }
        Ok(policy)
    }

    /// Read and parse a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        Policy::from_json(&text, &path.display().to_string())
    }

    /// srt keys accepted so that srt files load, which change nothing here
    /// (tool locations, the violation filter); `sc` names them in a note.
    pub fn ignored_keys(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.ignore_violations.is_some() {
            v.push("ignoreViolations");
        }
        if self.mandatory_deny_search_depth.is_some() {
            v.push("mandatoryDenySearchDepth");
        }
        if self.ripgrep.is_some() {
            v.push("ripgrep");
        }
        if self.seccomp.is_some() {
            v.push("seccomp");
        }
        if self.bwrap_path.is_some() {
            v.push("bwrapPath");
        }
        if self.socat_path.is_some() {
            v.push("socatPath");
        }
        if self.java_agent_jar_path.is_some() {
            v.push("javaAgentJarPath");
        }
        v
    }
}

/// serde_json appends " at line L column C" to its messages; we print the
/// position ourselves in front, so drop the duplicate.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

#[cfg(test)]
mod tests;
