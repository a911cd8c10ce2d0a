//! The grant store: which skill (at which exact version) may use which
//! capability, and what the user refused. One file, `<state>/grants.json`,
//! owned by sharkcage: the state directory is hidden from every sandbox,
//! and the file is not `openclaw.json` (which an agent may be able to edit).
//!
//! * **Strict.** The file is versioned and read with unknown keys refused;
//!   a file that cannot be read is an error naming `line:column`, never an
//!   empty store and never "allow".
//! * **Atomic.** Written whole through [`fileio::write_atomic`] (mode 0600,
//!   the directory 0700): a reader sees the old file or the new one.
//! * **One writer at a time.** [`GrantStore::update`] holds an `flock` on
//!   the sibling `grants.lock` across load, change and save; readers need
//!   no lock (the rename is atomic). Nothing is cached: every lookup loads
//!   the file, so a revocation counts on the next call.
//! * **Pinned.** Every grant names the [`identity`](super::identity) digest
//!   of the skill it was given for; a grant for another digest never covers
//!   (the skill changed, its grants are gone until approved again).
//!
//! The file also records the skills `sc skill add` installed (name, pinned
//! digest, where they came from), so both change under the one lock.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::capabilities::{intersect, Capability, Request};
use crate::fileio;

/// The file format version this code reads and writes.
pub const VERSION: u32 = 1;
pub const FILE: &str = "grants.json";
pub const LOCK_FILE: &str = "grants.lock";
/// Largest grants file read.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// What the user decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    AllowAlways,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::AllowAlways => "allow-always",
            Decision::Deny => "deny",
        }
    }
}

/// Where the decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Cli,
    Chat,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            By::Cli => "cli",
            By::Chat => "chat",
        }
    }
}

/// One decision about one capability of one skill version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRecord {
    pub skill: String,
    /// `sha256:<hex>`: the skill directory's identity the decision is for.
    pub identity: String,
    pub capability: Capability,
    /// Empty: the whole capability (any scope).
    #[serde(default)]
    pub scope: Vec<String>,
    pub decision: Decision,
    /// RFC 3339 UTC.
    pub granted_at: String,
    pub by: By,
    pub approval_id: String,
}

impl GrantRecord {
    /// The decision as a request (capability and scope; no reason).
    pub fn as_request(&self) -> Request {
        Request { capability: self.capability, reason: String::new(), scope: self.scope.clone() }
    }
}

/// A skill installed by `sc skill add` into `<state>/skills/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Installed {
    /// The identity digest of the copy when it was installed.
    pub identity: String,
    /// Where it was copied from (as given).
    pub source: String,
    pub installed_at: String,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grants {
    pub version: u32,
    #[serde(default)]
    pub skills: BTreeMap<String, Installed>,
    #[serde(default)]
    pub grants: Vec<GrantRecord>,
}

impl Default for Grants {
    fn default() -> Self {
        Grants { version: VERSION, skills: BTreeMap::new(), grants: Vec::new() }
    }
}

/// The answer to "may this skill version do this?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Every requested capability and scope is granted.
    Covered,
    /// Some are granted; these (capabilities or scope entries) are not.
    Partial(Vec<Request>),
    /// The user refused these (a denial wins over any grant).
    Denied(Vec<Request>),
    /// Nothing is decided for this skill at this identity (never approved,
    /// or approved for another version of it).
    None,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GrantError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}{}: {message} (the grants file is not used; fix or remove it)", position(*line, *column))]
    Corrupt { path: String, line: usize, column: usize, message: String },
    #[error("{path}: format version {found}; this sharkcage reads version {VERSION}")]
    Version { path: String, found: u32 },
    #[error("{path}: larger than {MAX_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot lock: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("no state directory (set HOME or SHARKCAGE_STATE_DIR)")]
    NoStateDir,
}

fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

/// The store in one directory (normally [`fileio::state_dir`]).
#[derive(Debug, Clone)]
pub struct GrantStore {
    dir: PathBuf,
}

impl GrantStore {
    /// The store in sharkcage's state directory.
    pub fn open_default() -> Result<GrantStore, GrantError> {
        fileio::state_dir().map(GrantStore::at).ok_or(GrantError::NoStateDir)
    }

    pub fn at(dir: impl Into<PathBuf>) -> GrantStore {
        GrantStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The store as it is now; a missing file is an empty store.
    pub fn load(&self) -> Result<Grants, GrantError> {
        let path = self.path();
        let name = path.display().to_string();
        let f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Grants::default()),
            Err(e) => return Err(GrantError::Read { path: name, source: e }),
        };
        let mut text = String::new();
        use std::io::Read;
        f.take(MAX_BYTES + 1).read_to_string(&mut text).map_err(|e| GrantError::Read { path: name.clone(), source: e })?;
        if text.len() as u64 > MAX_BYTES {
            return Err(GrantError::TooLarge { path: name });
        }
        parse(&text, &name)
    }

    /// Load, change with `f`, check and save, holding the lock throughout.
    /// When `f` fails nothing is written.
    pub fn update<T>(&self, f: impl FnOnce(&mut Grants) -> Result<T, GrantError>) -> Result<T, GrantError> {
        fileio::ensure_private_dir(&self.dir).map_err(|e| GrantError::Write { path: self.dir.display().to_string(), source: e })?;
        let _lock = self.lock()?;
        let mut g = self.load()?;
        let out = f(&mut g)?;
        self.save(&g)?;
        Ok(out)
    }

    /// Run `f` holding the store's exclusive lock (other files kept beside
    /// the grants, the services, change under the same lock).
    pub fn locked<T>(&self, f: impl FnOnce() -> Result<T, GrantError>) -> Result<T, GrantError> {
        fileio::ensure_private_dir(&self.dir).map_err(|e| GrantError::Write { path: self.dir.display().to_string(), source: e })?;
        let _lock = self.lock()?;
        f()
    }

    /// The exclusive lock (released when the returned file is dropped).
    fn lock(&self) -> Result<std::fs::File, GrantError> {
        let path = self.dir.join(LOCK_FILE);
        let err = |e| GrantError::Lock { path: path.display().to_string(), source: e };
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(&path).map_err(err)?;
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(f);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(err(e));
            }
        }
    }

    fn save(&self, g: &Grants) -> Result<(), GrantError> {
        g.check()?;
        let mut text = serde_json::to_string_pretty(g).map_err(|e| GrantError::Invalid(e.to_string()))?;
        text.push('\n');
        let path = self.path();
        fileio::write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| GrantError::Write { path: path.display().to_string(), source: e })?;
        // An existing file keeps its mode through write_atomic's new file,
        // but make sure of 0600 whatever umask or earlier file there was.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| GrantError::Write { path: path.display().to_string(), source: e })
    }
}

/// Parse the file's text strictly.
pub fn parse(text: &str, name: &str) -> Result<Grants, GrantError> {
    // The version first, so a newer file says so instead of "unknown key".
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(found) = v.get("version").and_then(|v| v.as_u64()) {
            if found != u64::from(VERSION) {
                return Err(GrantError::Version { path: name.to_string(), found: found as u32 });
            }
        }
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    let g: Grants = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        GrantError::Corrupt {
            path: name.to_string(),
            line: inner.line(),
            column: inner.column(),
            message: if at.is_empty() || at == "." { msg } else { format!("{at}: {msg}") },
        }
    })?;
    g.check().map_err(|e| GrantError::Corrupt { path: name.to_string(), line: 0, column: 0, message: e.to_string() })?;
    Ok(g)
}

/// A skill name as stored: `[A-Za-z0-9._-]`, 1–64 characters, not
/// starting with a dot (it is also a directory name).
pub fn valid_skill_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!("skill name {s:?}: 1 to 64 characters"));
    }
    if s.starts_with('.') || s.starts_with('-') {
        return Err(format!("skill name {s:?}: must not start with '.' or '-'"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(format!("skill name {s:?}: only letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

fn valid_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

fn no_control(what: &str, s: &str) -> Result<(), GrantError> {
    if s.chars().any(char::is_control) {
        return Err(GrantError::Invalid(format!("{what} {s:?}: control characters")));
    }
    Ok(())
}

impl Grants {
    /// Every field well-formed (run before a save and after a load).
    pub fn check(&self) -> Result<(), GrantError> {
        if self.version != VERSION {
            return Err(GrantError::Invalid(format!("version {}: expected {VERSION}", self.version)));
        }
        for (name, s) in &self.skills {
            valid_skill_name(name).map_err(GrantError::Invalid)?;
            if !valid_digest(&s.identity) {
                return Err(GrantError::Invalid(format!("skills.{name}.identity {:?}: expected sha256:<64 hex>", s.identity)));
            }
            no_control("source", &s.source)?;
            no_control("installedAt", &s.installed_at)?;
        }
        for g in &self.grants {
            valid_skill_name(&g.skill).map_err(GrantError::Invalid)?;
            if !valid_digest(&g.identity) {
                return Err(GrantError::Invalid(format!("grant for {}: identity {:?}: expected sha256:<64 hex>", g.skill, g.identity)));
            }
            for s in &g.scope {
                no_control("scope", s)?;
            }
            no_control("grantedAt", &g.granted_at)?;
            no_control("approvalId", &g.approval_id)?;
        }
        Ok(())
    }

    /// Every decision, oldest first.
    pub fn list(&self) -> &[GrantRecord] {
        &self.grants
    }

    /// The decisions about `skill` (any identity).
    pub fn for_skill<'a>(&'a self, skill: &'a str) -> impl Iterator<Item = &'a GrantRecord> + 'a {
        self.grants.iter().filter(move |g| g.skill == skill)
    }

    /// Decisions about `skill` pinned to another identity than `identity`
    /// (the skill changed since; they cover nothing).
    pub fn stale(&self, skill: &str, identity: &str) -> usize {
        self.for_skill(skill).filter(|g| g.identity != identity).count()
    }

    /// Does the store cover `requested` for `skill` at `identity`?
    pub fn lookup(&self, skill: &str, identity: &str, requested: &[Request]) -> Lookup {
        let here: Vec<&GrantRecord> = self.for_skill(skill).filter(|g| g.identity == identity).collect();
        let of = |d: Decision| here.iter().filter(|g| g.decision == d).map(|g| g.as_request()).collect::<Vec<_>>();
        let denied = intersect(requested, &of(Decision::Deny)).allowed;
        if !denied.is_empty() {
            return Lookup::Denied(denied);
        }
        if requested.is_empty() {
            return Lookup::Covered;
        }
        if here.is_empty() {
            return Lookup::None;
        }
        let missing = intersect(requested, &of(Decision::AllowAlways)).refused;
        if missing.is_empty() {
            Lookup::Covered
        } else {
            Lookup::Partial(missing)
        }
    }

    /// Record a decision, replacing any earlier one about the same skill
    /// and capability (whatever identity it was pinned to).
    pub fn record(&mut self, g: GrantRecord) {
        self.grants.retain(|o| !(o.skill == g.skill && o.capability == g.capability));
        self.grants.push(g);
    }

    /// Record an allow-always widening: its scope joins an existing
    /// allow-always decision of the same skill, identity and capability
    /// (which keeps its own scope; an empty scope already covers all).
    pub fn record_widening(&mut self, g: GrantRecord) {
        if let Some(o) = self.grants.iter_mut().find(|o| o.skill == g.skill && o.capability == g.capability && o.identity == g.identity && o.decision == Decision::AllowAlways) {
            if !o.scope.is_empty() {
                for s in g.scope {
                    if !o.scope.contains(&s) {
                        o.scope.push(s);
                    }
                }
            }
            return;
        }
        self.record(g);
    }

    /// Every network entry (`network.external`/`network.internal` scope)
    /// granted always to `skill` at `identity`.
    pub fn network_entries(&self, skill: &str, identity: &str) -> Vec<String> {
        self.for_skill(skill)
            .filter(|g| g.identity == identity && g.decision == Decision::AllowAlways && matches!(g.capability, Capability::NetworkExternal | Capability::NetworkInternal))
            .flat_map(|g| g.scope.iter().cloned())
            .collect()
    }

    /// Remove the decisions about `skill` (only `capability`'s if given);
    /// returns how many were removed.
    pub fn revoke(&mut self, skill: &str, capability: Option<Capability>) -> usize {
        let before = self.grants.len();
        self.grants.retain(|g| !(g.skill == skill && capability.is_none_or(|c| c == g.capability)));
        before - self.grants.len()
    }
}

/// A fresh approval id: `ap-` and 16 hex digits from the kernel's random pool.
pub fn new_approval_id() -> String {
    let mut b = [0u8; 8];
    // SAFETY: getrandom into a buffer we own, of its length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = ((t as u64) ^ u64::from(std::process::id())).to_le_bytes();
    }
    format!("ap-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// Now, RFC 3339 UTC.
pub fn now() -> String {
    crate::audit::record::format_ts(crate::audit::record::now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const ID1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const ID2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn req(c: &str, scope: &[&str]) -> Request {
        Request { capability: Capability::from_name(c).unwrap(), reason: "r".into(), scope: scope.iter().map(|s| s.to_string()).collect() }
    }

    fn grant(skill: &str, id: &str, c: &str, scope: &[&str], d: Decision) -> GrantRecord {
        GrantRecord {
            skill: skill.into(),
            identity: id.into(),
            capability: Capability::from_name(c).unwrap(),
            scope: scope.iter().map(|s| s.to_string()).collect(),
            decision: d,
            granted_at: now(),
            by: By::Cli,
            approval_id: new_approval_id(),
        }
    }

    fn a_capability_with_scope() -> &'static str {
        "network.external"
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n != FILE && n != LOCK_FILE).collect()
    }

    #[test]
    fn file_is_0600_in_a_0700_directory() {
        let d = tempfile::tempdir().unwrap();
        let s = GrantStore::at(d.path().join("state"));
        s.update(|g| {
            g.record(grant("w", ID1, a_capability_with_scope(), &["api.example.com"], Decision::AllowAlways));
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(s.dir().join(LOCK_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn replaced_whole_and_a_failed_update_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let s = GrantStore::at(d.path());
        s.update(|g| {
            g.record(grant("w", ID1, a_capability_with_scope(), &["api.example.com"], Decision::AllowAlways));
            Ok(())
        })
        .unwrap();
        let before = std::fs::read(s.path()).unwrap();
        // The change fails half way: nothing is written.
        let r: Result<(), _> = s.update(|g| {
            g.revoke("w", None);
            Err(GrantError::Invalid("simulated failure".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(s.path()).unwrap(), before);
        // A change that would write an invalid file is refused before writing.
        let r = s.update(|g| {
            g.revoke("w", None);
            g.record(grant("bad\nname", ID1, "network.external", &[], Decision::AllowAlways));
            Ok(())
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(s.path()).unwrap(), before);
        // A write that fails at the rename (the name is a directory now):
        // its temporary file is removed.
        let moved = d.path().join("saved");
        std::fs::rename(s.path(), &moved).unwrap();
        std::fs::create_dir(s.path()).unwrap();
        std::fs::write(s.path().join("x"), "x").unwrap();
        assert!(s.save(&Grants::default()).is_err());
        std::fs::remove_dir_all(s.path()).unwrap();
        std::fs::rename(&moved, s.path()).unwrap();
        assert!(leftovers(d.path()).is_empty(), "left behind: {:?}", leftovers(d.path()));
        // Many successful writes leave no temporary file either.
        for i in 0..20 {
            s.update(|g| {
                g.record(grant(&format!("s{i}"), ID1, "network.external", &[], Decision::AllowAlways));
                Ok(())
            })
            .unwrap();
        }
        assert!(leftovers(d.path()).is_empty(), "left behind: {:?}", leftovers(d.path()));
        assert_eq!(s.load().unwrap().grants.len(), 21);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let s = GrantStore::at(dir);
                    for j in 0..5 {
                        s.update(|g| {
                            g.record(grant(&format!("s{i}-{j}"), ID1, "network.external", &[], Decision::AllowAlways));
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(GrantStore::at(&dir).load().unwrap().grants.len(), 40);
    }

    #[test]
    fn a_grant_covers_only_the_identity_it_is_pinned_to() {
        let mut g = Grants::default();
        g.record(grant("w", ID1, "network.external", &["api.example.com"], Decision::AllowAlways));
        let want = [req("network.external", &["api.example.com"])];
        assert_eq!(g.lookup("w", ID1, &want), Lookup::Covered);
        assert_eq!(g.lookup("w", ID2, &want), Lookup::None, "the skill changed: not covered");
        assert_eq!(g.stale("w", ID2), 1);
        assert_eq!(g.lookup("other", ID1, &want), Lookup::None);
        // More than granted: the rest is missing.
        let more = [req("network.external", &["api.example.com", "evil.example.net"]), req("system.env", &["HOME"])];
        match g.lookup("w", ID1, &more) {
            Lookup::Partial(m) => {
                assert_eq!(m.len(), 2, "{m:?}");
                assert_eq!(m[0].scope, vec!["evil.example.net".to_string()]);
            }
            o => panic!("{o:?}"),
        }
        // A denial wins.
        g.record(grant("w", ID1, "system.env", &[], Decision::Deny));
        assert!(matches!(g.lookup("w", ID1, &more), Lookup::Denied(d) if d.len() == 1));
    }

    #[test]
    fn revocation_is_seen_by_a_fresh_load() {
        let d = tempfile::tempdir().unwrap();
        let s = GrantStore::at(d.path());
        s.update(|g| {
            g.record(grant("w", ID1, "network.external", &["api.example.com"], Decision::AllowAlways));
            g.record(grant("w", ID1, "system.env", &["HOME"], Decision::AllowAlways));
            Ok(())
        })
        .unwrap();
        let want = [req("network.external", &["api.example.com"])];
        assert_eq!(s.load().unwrap().lookup("w", ID1, &want), Lookup::Covered);
        assert_eq!(s.update(|g| Ok(g.revoke("w", Capability::from_name("network.external")))).unwrap(), 1);
        let fresh = GrantStore::at(d.path()).load().unwrap();
        assert!(matches!(fresh.lookup("w", ID1, &want), Lookup::Partial(_)));
        assert_eq!(s.update(|g| Ok(g.revoke("w", None))).unwrap(), 1);
        assert_eq!(GrantStore::at(d.path()).load().unwrap().lookup("w", ID1, &want), Lookup::None);
    }

    #[test]
    fn a_corrupt_file_is_an_error_with_its_position_never_empty() {
        let d = tempfile::tempdir().unwrap();
        let s = GrantStore::at(d.path());
        std::fs::write(s.path(), "{\n  \"version\": 1,\n  \"grants\": [ {\"skill\": \"w\",, } ]\n}\n").unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(e.contains("grants.json:3:"), "{e}");
        // An unknown key is refused too (and named).
        std::fs::write(s.path(), "{\"version\": 1, \"grantz\": []}").unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(e.contains("grantz"), "{e}");
        // An unknown capability, a bad digest, a newer version.
        std::fs::write(s.path(), format!("{{\"version\":1,\"grants\":[{{\"skill\":\"w\",\"identity\":\"{ID1}\",\"capability\":\"root.everything\",\"decision\":\"allow-always\",\"grantedAt\":\"x\",\"by\":\"cli\",\"approvalId\":\"a\"}}]}}")).unwrap();
        assert!(s.load().is_err());
        std::fs::write(s.path(), "{\"version\":1,\"grants\":[{\"skill\":\"w\",\"identity\":\"md5:x\",\"capability\":\"system.env\",\"decision\":\"allow-always\",\"grantedAt\":\"x\",\"by\":\"cli\",\"approvalId\":\"a\"}]}").unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(e.contains("identity"), "{e}");
        std::fs::write(s.path(), "{\"version\": 2}").unwrap();
        assert!(matches!(s.load(), Err(GrantError::Version { found: 2, .. })));
        // An update over a corrupt file fails and leaves it as it was.
        std::fs::write(s.path(), "not json").unwrap();
        assert!(s.update(|_| Ok(())).is_err());
        assert_eq!(std::fs::read(s.path()).unwrap(), b"not json");
        // Empty is corrupt, not an empty store.
        std::fs::write(s.path(), "").unwrap();
        assert!(s.load().is_err());
    }

    #[test]
    fn a_symlink_at_the_file_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let s = GrantStore::at(d.path());
        let other = d.path().join("elsewhere.json");
        std::fs::write(&other, "{\"version\":1}").unwrap();
        std::os::unix::fs::symlink(&other, s.path()).unwrap();
        assert!(s.load().is_err());
    }
}
