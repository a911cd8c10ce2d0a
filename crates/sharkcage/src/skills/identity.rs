//! A skill's identity: a hash of its whole directory, so that a grant made
//! for one version of a skill never applies to another.
//!
//! What is hashed: every path below the directory (UTF-8, `/`-separated,
//! relative), its type, and for a regular file its contents and whether
//! any execute bit is set; for a symlink its target *string* — a symlink is
//! never followed, so one pointing at `/etc` hashes as the text `/etc`.
//! The walk opens each directory relative to its parent with `O_NOFOLLOW`
//! (`treewalk`) and each file with `O_NOFOLLOW`, so nothing swapped for a
//! symlink during the walk leads it outside the directory. Nothing is
//! skipped (`node_modules` code runs too); the walk is bounded
//! ([`Limits`]) and an unreadable directory, a name that is not UTF-8 or a
//! FIFO, socket or device is an error, never silently left out.
//!
//! The digest is SHA-256 over a canonical encoding with explicit lengths
//! (the predecessor's digest had no file boundaries), over entries sorted by
//! path. [`diff`] says what changed between two identities, for the prompt
//! that asks to approve a changed skill again.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::treewalk::{self, Descend, DirEntry, Type};

/// Bounds of one walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files, directories and symlinks together.
    pub max_entries: usize,
    /// Bytes of file contents together.
    pub max_bytes: u64,
    /// Directory levels below the skill directory.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_entries: 20_000, max_bytes: 256 * 1024 * 1024, max_depth: 32 }
    }
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Entry {
    Dir,
    File {
        /// Hex SHA-256 of the contents.
        sha256: String,
        size: u64,
        /// Any execute bit set.
        exec: bool,
    },
    Symlink {
        target: String,
    },
}

impl Entry {
    fn kind(&self) -> &'static str {
        match self {
            Entry::Dir => "directory",
            Entry::File { .. } => "file",
            Entry::Symlink { .. } => "symlink",
        }
    }
}

/// The identity of a skill directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `sha256:<64 hex>` over [`Identity::entries`].
    pub digest: String,
    /// Every entry by relative path.
    pub entries: BTreeMap<String, Entry>,
}

/// Why a directory could not be identified.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: a directory in it could not be read; a skill is identified whole or not at all")]
    Unreadable { path: String },
    #[error("{path}: the name is not UTF-8")]
    NotUtf8 { path: String },
    #[error("{path}: a {what}; a skill holds only files, directories and symlinks")]
    Unsupported { path: String, what: &'static str },
    #[error("{path}: more than {limit} entries; too large to identify")]
    TooManyEntries { path: String, limit: usize },
    #[error("{path}: more than {limit} bytes of files; too large to identify")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: deeper than {limit} levels")]
    TooDeep { path: String, limit: usize },
}

/// The identity of the skill in `dir`, with the default [`Limits`].
pub fn identify(dir: &Path) -> Result<Identity, IdentityError> {
    identify_with(dir, Limits::default())
}

struct Walk<'a> {
    root: &'a Path,
    limits: Limits,
    entries: BTreeMap<String, Entry>,
    bytes: u64,
    error: Option<IdentityError>,
}

/// The identity of the skill in `dir` within `limits`.
pub fn identify_with(dir: &Path, limits: Limits) -> Result<Identity, IdentityError> {
    let root = treewalk::open_root(dir).map_err(|e| IdentityError::Open { path: dir.display().to_string(), source: e })?;
    let state = RefCell::new(Walk { root: dir, limits, entries: BTreeMap::new(), bytes: 0, error: None });
    let stats = treewalk::walk(
        root.as_raw_fd(),
        |rel, e| {
            let mut w = state.borrow_mut();
            if w.error.is_some() {
                return Descend::No;
            }
            if rel.components().count() + 1 > limits.max_depth {
                let path = w.root.join(rel).join(std::ffi::OsStr::from_bytes(&e.name)).display().to_string();
                w.error = Some(IdentityError::TooDeep { path, limit: limits.max_depth });
                return Descend::No;
            }
            Descend::Yes
        },
        |v| {
            let mut w = state.borrow_mut();
            for e in v.entries {
                if w.error.is_some() {
                    return;
                }
                if let Err(err) = w.add(v.rel, v.fd, e) {
                    w.error = Some(err);
                }
            }
        },
    );
    let w = state.into_inner();
    if let Some(e) = w.error {
        return Err(e);
    }
    if stats.unreadable > 0 {
        return Err(IdentityError::Unreadable { path: dir.display().to_string() });
    }
    Ok(Identity { digest: digest(&w.entries), entries: w.entries })
}

impl Walk<'_> {
    fn add(&mut self, rel: &Path, dir_fd: RawFd, e: &DirEntry) -> Result<(), IdentityError> {
        let full = || self.root.join(rel).join(std::ffi::OsStr::from_bytes(&e.name)).display().to_string();
        let Some(name) = e.name_str() else { return Err(IdentityError::NotUtf8 { path: full() }) };
        let key = if rel.as_os_str().is_empty() { name.to_string() } else { format!("{}/{name}", rel.display()) };
        if self.entries.len() >= self.limits.max_entries {
            return Err(IdentityError::TooManyEntries { path: self.root.display().to_string(), limit: self.limits.max_entries });
        }
        let entry = match e.ty {
            Type::Dir => Entry::Dir,
            Type::Symlink => {
                let t = nix::fcntl::readlinkat(Some(dir_fd), name).map_err(|err| IdentityError::Read { path: full(), source: err.into() })?;
                let target = t.into_string().map_err(|_| IdentityError::NotUtf8 { path: full() })?;
                Entry::Symlink { target }
            }
            Type::File => self.file(dir_fd, name, &full)?,
            Type::Other => return Err(IdentityError::Unsupported { path: full(), what: "FIFO, socket or device" }),
        };
        self.entries.insert(key, entry);
        Ok(())
    }

    fn file(&mut self, dir_fd: RawFd, name: &str, full: &dyn Fn() -> String) -> Result<Entry, IdentityError> {
        let read_err = |err: std::io::Error| IdentityError::Read { path: full(), source: err };
        let f = open_file_at(dir_fd, name).map_err(read_err)?;
        let meta = f.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(IdentityError::Unsupported { path: full(), what: "non-regular file (replaced during the walk)" });
        }
        let exec = meta.permissions().mode() & 0o111 != 0;
        let left = self.limits.max_bytes.saturating_sub(self.bytes);
        let mut h = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        let mut r = f.take(left + 1);
        loop {
            let n = r.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
        }
        if size > left {
            return Err(IdentityError::TooLarge { path: self.root.display().to_string(), limit: self.limits.max_bytes });
        }
        self.bytes += size;
        Ok(Entry::File { sha256: hex(&h.finalize()), size, exec })
    }
}

/// Open `name` in `dir_fd` for reading, never through a symlink, never
/// blocking on a FIFO swapped in.
fn open_file_at(dir_fd: RawFd, name: &str) -> std::io::Result<File> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    let fd = nix::fcntl::openat(Some(dir_fd), name, flags, nix::sys::stat::Mode::empty())?;
    // SAFETY: `fd` was just returned by openat and is owned by nothing else;
    // the File takes sole ownership and closes it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The canonical digest of a set of entries: each entry as a type byte,
/// the path's length and bytes, then its data with explicit lengths.
pub fn digest(entries: &BTreeMap<String, Entry>) -> String {
    let mut h = Sha256::new();
    h.update(b"sharkcage-skill-tree-v1\0");
    let put = |h: &mut Sha256, b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    for (path, e) in entries {
        match e {
            Entry::Dir => h.update(b"d"),
            Entry::File { .. } => h.update(b"f"),
            Entry::Symlink { .. } => h.update(b"l"),
        }
        put(&mut h, path.as_bytes());
        match e {
            Entry::Dir => {}
            Entry::File { sha256, size, exec } => {
                h.update([u8::from(*exec)]);
                h.update(size.to_le_bytes());
                put(&mut h, sha256.as_bytes());
            }
            Entry::Symlink { target } => put(&mut h, target.as_bytes()),
        }
    }
    format!("sha256:{}", hex(&h.finalize()))
}

/// One difference between two identities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum Change {
    Added { path: String, entry: Entry },
    Removed { path: String, entry: Entry },
    /// A file removed and one with the same contents and execute bit added.
    Renamed { from: String, to: String },
    Content { path: String },
    /// The execute bit is now `exec`.
    Exec { path: String, exec: bool },
    Retargeted { path: String, from: String, to: String },
    TypeChanged { path: String, from: &'static str, to: &'static str },
}

impl Change {
    fn path(&self) -> &str {
        match self {
            Change::Added { path, .. }
            | Change::Removed { path, .. }
            | Change::Content { path }
            | Change::Exec { path, .. }
            | Change::Retargeted { path, .. }
            | Change::TypeChanged { path, .. } => path,
            Change::Renamed { to, .. } => to,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Change::Added { path, entry } => write!(f, "added {} {path}{}", entry.kind(), exec_note(entry)),
            Change::Removed { path, entry } => write!(f, "removed {} {path}", entry.kind()),
            Change::Renamed { from, to } => write!(f, "renamed {from} to {to}"),
            Change::Content { path } => write!(f, "changed {path}"),
            Change::Exec { path, exec: true } => write!(f, "made {path} executable"),
            Change::Exec { path, exec: false } => write!(f, "made {path} not executable"),
            Change::Retargeted { path, from, to } => write!(f, "symlink {path} now points to {to:?} (was {from:?})"),
            Change::TypeChanged { path, from, to } => write!(f, "{path} is now a {to} (was a {from})"),
        }
    }
}

fn exec_note(e: &Entry) -> &'static str {
    match e {
        Entry::File { exec: true, .. } => " (executable)",
        _ => "",
    }
}

/// What changed from `old` to `new`, sorted by path.
pub fn diff(old: &Identity, new: &Identity) -> Vec<Change> {
    let mut out = Vec::new();
    let mut removed: Vec<(&String, &Entry)> = old.entries.iter().filter(|(p, _)| !new.entries.contains_key(*p)).collect();
    let mut added: Vec<(&String, &Entry)> = new.entries.iter().filter(|(p, _)| !old.entries.contains_key(*p)).collect();
    // Renames: the same file contents and execute bit under a new path.
    removed.retain(|(rp, re)| {
        if !matches!(re, Entry::File { .. }) {
            return true;
        }
        match added.iter().position(|(_, ae)| ae == re) {
            Some(i) => {
                out.push(Change::Renamed { from: (*rp).clone(), to: added[i].0.clone() });
                added.remove(i);
                false
            }
            None => true,
        }
    });
    out.extend(removed.into_iter().map(|(p, e)| Change::Removed { path: p.clone(), entry: e.clone() }));
    out.extend(added.into_iter().map(|(p, e)| Change::Added { path: p.clone(), entry: e.clone() }));
    for (p, o) in &old.entries {
        if let Some(n) = new.entries.get(p) {
            changed(p, o, n, &mut out);
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

fn changed(p: &str, o: &Entry, n: &Entry, out: &mut Vec<Change>) {
    match (o, n) {
        (Entry::File { sha256: a, size: sa, exec: xa }, Entry::File { sha256: b, size: sb, exec: xb }) => {
            if a != b || sa != sb {
                out.push(Change::Content { path: p.to_string() });
            }
            if xa != xb {
                out.push(Change::Exec { path: p.to_string(), exec: *xb });
            }
        }
        (Entry::Symlink { target: a }, Entry::Symlink { target: b }) if a != b => {
            out.push(Change::Retargeted { path: p.to_string(), from: a.clone(), to: b.clone() });
        }
        _ if o.kind() != n.kind() => out.push(Change::TypeChanged { path: p.to_string(), from: o.kind(), to: n.kind() }),
        _ => {}
    }
}

/// Where the identities of approved skill versions are kept (in the state
/// directory, beside the grants), so a prompt for a changed skill can say
/// what changed. One file per digest; at most [`MAX_SNAPSHOTS`], oldest
/// dropped first.
pub const SNAPSHOT_DIR: &str = "identities";
pub const MAX_SNAPSHOTS: usize = 500;

fn snapshot_path(state: &Path, digest: &str) -> Option<PathBuf> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| state.join(SNAPSHOT_DIR).join(format!("{hex}.json")))
}

/// Keep `id` (best effort: a prompt without the diff still asks).
pub fn save_snapshot(state: &Path, id: &Identity) {
    let Some(path) = snapshot_path(state, &id.digest) else { return };
    if path.exists() {
        return;
    }
    let dir = state.join(SNAPSHOT_DIR);
    if crate::fileio::ensure_private_dir(&dir).is_err() {
        return;
    }
    if let Ok(text) = serde_json::to_vec(id) {
        let _ = crate::fileio::write_atomic(&path, &text, 0o600);
    }
    // Bounded: the oldest go.
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd.flatten().filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path()))).collect();
        if files.len() > MAX_SNAPSHOTS {
            files.sort();
            for (_, p) in files.iter().take(files.len() - MAX_SNAPSHOTS) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// A kept identity, if there is one (and it is what its name says).
pub fn load_snapshot(state: &Path, digest: &str) -> Option<Identity> {
    let text = std::fs::read(snapshot_path(state, digest)?).ok()?;
    let id: Identity = serde_json::from_slice(&text).ok()?;
    (id.digest == digest && self::digest(&id.entries) == digest).then_some(id)
}

/// The changes as lines for an approval prompt, at most `max` of them
/// (then "and N more").
pub fn describe(changes: &[Change], max: usize) -> String {
    let mut lines: Vec<String> = changes.iter().take(max).map(|c| format!("• {c}")).collect();
    if changes.len() > max {
        lines.push(format!("… and {} more", changes.len() - max));
    }
    lines.join("\n")
}
