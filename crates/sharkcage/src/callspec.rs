//! The secret part of a launcher call travels off the command line.
//!
//! Any local user reads every process's command line (`ps -eo args`,
//! `/proc/<pid>/cmdline`). So what a call keeps to itself — the command's
//! environment values, the policy, the gateway's network ticket — is never
//! on the launcher's argv when the addon starts a call:
//! * `exec()` spawns the launcher itself and hands it a sealed memfd as an
//!   inherited descriptor ([`memfd`], `--spec-fd=N`);
//! * `buildExecArgv` returns an argv that OpenClaw spawns (no descriptor can
//!   be passed), so the spec goes to a file in sharkcage's state directory,
//!   which every sandbox has hidden ([`write_file`]): mode 0600 in a 0700
//!   directory, a random name, created exclusively; only its path is on argv
//!   (`--spec-file=PATH`). The launcher opens it without following a
//!   symlink, checks that file and directory are its own and that nobody
//!   else can read the file or change the directory, deletes it at once and
//!   reads it ([`take_file`]). A file whose spawn never happened is deleted
//!   by [`discard`] (OpenClaw's `finalizeExec`) or, once older than
//!   [`MAX_AGE`], by the next [`write_file`].
//!
//! The launcher reads its spec before anything else and closes the
//! descriptor; nothing of it reaches the sandbox. `sc exec --env`,
//! `--policy-json` and `--settings` stay for people at a shell.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::layers::sys;

/// Largest spec accepted (a policy is a few KiB).
pub const MAX_SPEC_BYTES: u64 = 16 * 1024 * 1024;
/// A spec file not taken within this time is stale: its spawn never happened.
pub const MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Name prefix and suffix of spec files.
const PREFIX: &str = "spec-";
const SUFFIX: &str = ".json";

/// What the launcher must get but no command line may show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CallSpec {
    /// The policy's JSON text (errors then point into it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_json: Option<String>,
    /// Variables for the command, `[name, value]` each (still filtered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// The gateway's one-time ticket for `--net-attach`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_ticket: Option<String>,
    /// Give the command a terminal (as `sc exec --pty`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pty: bool,
    /// Lines for the person and the model from whoever built the call (a
    /// skill's grants applied, a one-time approval refused), printed on
    /// stderr as the call starts (not with `--quiet`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// Names of `env` variables whose values are redacted from the
    /// command's output (credentials sharkcage injected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    #[error("{what} {where_}: {source}")]
    Io { what: &'static str, where_: String, source: std::io::Error },
    #[error("{where_}: refused: {why}")]
    Unsafe { where_: String, why: String },
    #[error("{where_}: larger than {MAX_SPEC_BYTES} bytes")]
    TooLarge { where_: String },
    #[error("{where_}: line {line} column {column}: `{key}`: {msg}")]
    Parse { where_: String, line: usize, column: usize, key: String, msg: String },
}

fn io(what: &'static str, where_: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> SpecError {
    let where_ = where_.to_string();
    move |source| SpecError::Io { what, where_, source }
}

impl CallSpec {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a spec serialises")
    }

    /// Parse a spec; `where_` names its source in errors.
    pub fn parse(bytes: &[u8], where_: &str) -> Result<CallSpec, SpecError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| SpecError::Parse {
            where_: where_.to_string(),
            line: e.inner().line(),
            column: e.inner().column(),
            key: e.path().to_string(),
            msg: without_position(&e.inner().to_string()),
        })
    }
}

/// serde_json's message without its trailing " at line L column C".
fn without_position(msg: &str) -> String {
    match msg.rsplit_once(" at line ") {
        Some((m, _)) => m.to_string(),
        None => msg.to_string(),
    }
}

/// Read everything from `f` (at most [`MAX_SPEC_BYTES`]).
fn read_limited(f: impl Read, where_: &str) -> Result<Vec<u8>, SpecError> {
    let mut buf = Vec::new();
    f.take(MAX_SPEC_BYTES + 1).read_to_end(&mut buf).map_err(io("cannot read", where_))?;
    if buf.len() as u64 > MAX_SPEC_BYTES {
        return Err(SpecError::TooLarge { where_: where_.to_string() });
    }
    Ok(buf)
}

/// `--spec-fd=N`: read the spec from an inherited descriptor (a memfd or a
/// file from its start, or a pipe to its end) and close it.
pub fn read_fd(fd: RawFd) -> Result<CallSpec, SpecError> {
    let where_ = format!("--spec-fd {fd}");
    // SAFETY: fcntl on an integer descriptor only asks whether it is open.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(SpecError::Unsafe { where_, why: "not an open descriptor beyond stdio".into() });
    }
    // SAFETY: the descriptor was handed to this process for the spec alone
    // and nothing else here owns it; it is closed when `file` drops.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // From the start of a memfd or file; a pipe has no offset (ESPIPE).
    // SAFETY: lseek on the descriptor we now own.
    unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_SET) };
    let bytes = read_limited(&file, &where_)?;
    CallSpec::parse(&bytes, &where_)
}

/// A sealed memfd holding `spec`, at offset 0, close-on-exec (the caller
/// moves it to the child's spec descriptor).
pub fn memfd(spec: &CallSpec) -> std::io::Result<OwnedFd> {
    // SAFETY: memfd_create with a static C string name; the descriptor is
    // owned below.
    let fd = unsafe { libc::memfd_create(c"sharkcage-spec".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.write_all(spec.to_json().as_bytes())?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl/lseek on the memfd we own.
    unsafe {
        if libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, seals) != 0 || libc::lseek(f.as_raw_fd(), 0, libc::SEEK_SET) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(f.into())
}

/// Where spec files go: `<state dir>/spec` (hidden from every sandbox).
pub fn spec_dir() -> Option<PathBuf> {
    crate::fileio::state_dir().map(|d| d.join("spec"))
}

/// 128 random bits in hex.
fn random_name() -> Result<String, SpecError> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| SpecError::Io { what: "cannot name", where_: "a spec file".into(), source: std::io::Error::other("no randomness") })?;
    Ok(format!("{PREFIX}{}{SUFFIX}", crate::audit::record::hex(&b)))
}

/// Is `name` one of our spec file names?
fn is_spec_name(name: &str) -> bool {
    name.strip_prefix(PREFIX).and_then(|r| r.strip_suffix(SUFFIX)).is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Write `spec` to a new file in `dir` (created 0700 if missing, and it must
/// be this user's and closed to others): mode 0600, random name, created
/// exclusively, never through a symlink. Stale spec files there go first.
pub fn write_file(dir: &Path, spec: &CallSpec) -> Result<PathBuf, SpecError> {
    crate::fileio::ensure_private_dir(dir).map_err(io("cannot create", dir.display()))?;
    let dirfd = open_private_dir(dir)?;
    sweep(&dirfd, MAX_AGE);
    let name = random_name()?;
    let path = dir.join(&name);
    let c = CString::new(name).expect("hex has no NUL");
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: openat relative to our directory descriptor, C string name;
    // the descriptor is owned below.
    let fd = unsafe { libc::openat(dirfd.as_raw_fd(), c.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return Err(io("cannot create", path.display())(std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if let Err(e) = f.write_all(spec.to_json().as_bytes()) {
        // SAFETY: unlinkat of the name we just created, in our directory.
        unsafe { libc::unlinkat(dirfd.as_raw_fd(), c.as_ptr(), 0) };
        return Err(io("cannot write", path.display())(e));
    }
    Ok(path)
}

/// `dir` opened, after checking it is a directory of this user that nobody
/// else can add, remove or rename entries in.
fn open_private_dir(dir: &Path) -> Result<OwnedFd, SpecError> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| SpecError::Unsafe { where_: dir.display().to_string(), why: "a NUL byte in the path".into() })?;
    // SAFETY: open with a C string; the descriptor is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io("cannot open", dir.display())(std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = sys::fstat(fd.as_raw_fd()).map_err(|e| io("cannot stat", dir.display())(std::io::Error::from_raw_os_error(e)))?;
    let unsafe_dir = |why: String| SpecError::Unsafe { where_: dir.display().to_string(), why };
    if st.st_uid != euid() {
        return Err(unsafe_dir(format!("the directory belongs to uid {}, not to this user ({})", st.st_uid, euid())));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(unsafe_dir(format!("the directory is writable by others (mode {:o})", st.st_mode & 0o7777)));
    }
    Ok(fd)
}

/// Remove spec files in `dir` older than `age` (their spawn never happened).
fn sweep(dir: &OwnedFd, age: Duration) {
    let Ok(rd) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(n) = name.to_str().filter(|n| is_spec_name(n)) else { continue };
        let old = e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok()).is_some_and(|d| d > age);
        if old {
            let c = CString::new(n).expect("hex has no NUL");
            // SAFETY: unlinkat of a spec file name in our directory.
            unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
        }
    }
}

/// `--spec-file=PATH`: open it (never through a symlink), check it is a
/// regular file of this user that nobody else can read, with one link, in
/// a directory nobody else can change; delete it; read and parse it. A file
/// that fails a check is left alone (it may not be ours).
pub fn take_file(path: &Path) -> Result<CallSpec, SpecError> {
    let where_ = path.display().to_string();
    let refuse = |why: String| SpecError::Unsafe { where_: where_.clone(), why };
    let (Some(dir), Some(name)) = (path.parent().filter(|p| !p.as_os_str().is_empty()), path.file_name()) else {
        return Err(refuse("not a path to a file".into()));
    };
    let dirfd = open_private_dir(dir).map_err(|e| match e {
        SpecError::Unsafe { why, .. } => refuse(format!("in {}: {why}", dir.display())),
        other => other,
    })?;
    let c = CString::new(name.as_bytes()).map_err(|_| refuse("a NUL byte in the name".into()))?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: openat relative to our directory descriptor, C string name;
    // the descriptor is owned below.
    let fd = unsafe { libc::openat(dirfd.as_raw_fd(), c.as_ptr(), flags) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ELOOP) {
            return Err(refuse("it is a symlink".into()));
        }
        return Err(io("cannot open", &where_)(e));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let st = sys::fstat(file.as_raw_fd()).map_err(|e| io("cannot stat", &where_)(std::io::Error::from_raw_os_error(e)))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(refuse("not a regular file".into()));
    }
    if st.st_uid != euid() {
        return Err(refuse(format!("it belongs to uid {}, not to this user ({})", st.st_uid, euid())));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(refuse(format!("others may read or change it (mode {:o}; it must be 0600)", st.st_mode & 0o7777)));
    }
    if st.st_nlink != 1 {
        return Err(refuse(format!("it has {} links", st.st_nlink)));
    }
    // Gone before it is even read: nothing of it outlives this moment.
    // SAFETY: unlinkat of the name we opened, in the directory we checked.
    if unsafe { libc::unlinkat(dirfd.as_raw_fd(), c.as_ptr(), 0) } != 0 {
        return Err(io("cannot delete", &where_)(std::io::Error::last_os_error()));
    }
    let bytes = read_limited(&file, &where_)?;
    CallSpec::parse(&bytes, &where_)
}

/// The `--spec-file=PATH` of a launcher argv, if any.
pub fn spec_file_of(argv: &[String]) -> Option<&str> {
    let end = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    argv[..end].iter().find_map(|a| a.strip_prefix("--spec-file="))
}

/// Delete the spec file `path` if the launcher has not taken it (the spawn
/// never happened). Only a spec file name directly in `dir` is touched.
pub fn discard(dir: &Path, path: &Path) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).filter(|n| is_spec_name(n));
    match name {
        Some(n) if path.parent() == Some(dir) => match std::fs::remove_file(dir.join(n)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        _ => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} is not a spec file of {}", path.display(), dir.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn spec() -> CallSpec {
        CallSpec { policy_json: Some(r#"{"env":["A"]}"#.into()), env: vec![("A".into(), "s3cret".into())], net_ticket: Some("t1".into()), pty: true, notices: vec![], redact: vec![] }
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn file_round_trip_is_private_and_taken_once() {
        let d = tmp();
        let dir = d.path().join("spec");
        let p = write_file(&dir, &spec()).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(is_spec_name(p.file_name().unwrap().to_str().unwrap()));
        assert_eq!(take_file(&p).unwrap(), spec());
        assert!(!p.exists(), "taken means deleted");
        assert!(matches!(take_file(&p), Err(SpecError::Io { .. })));
    }

    #[test]
    fn unsafe_files_are_refused_and_left_alone() {
        let d = tmp();
        let dir = d.path().join("spec");
        let p = write_file(&dir, &spec()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = take_file(&p).unwrap_err().to_string();
        assert!(e.contains("0600") && e.contains(&p.display().to_string()), "{e}");
        assert!(p.exists());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(take_file(&link).unwrap_err().to_string().contains("symlink"));
        let hard = dir.join("hard");
        std::fs::hard_link(&p, &hard).unwrap();
        assert!(take_file(&hard).unwrap_err().to_string().contains("2 links"));
        std::fs::remove_file(&hard).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(take_file(&p).unwrap_err().to_string().contains("writable by others"));
        assert!(p.exists());
    }

    #[test]
    fn memfd_and_pipe_descriptors() {
        let fd = memfd(&spec()).unwrap();
        let raw = fd.as_raw_fd();
        std::mem::forget(fd);
        assert_eq!(read_fd(raw).unwrap(), spec());
        // SAFETY: fcntl on a plain integer: the descriptor is closed now.
        assert!(unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0, "read_fd closes it");
        assert!(read_fd(1).is_err());
    }

    #[test]
    fn bad_specs_name_position_and_key() {
        let e = CallSpec::parse(br#"{"env":[["A","b"]],"netTicket":3}"#, "--spec-fd 4").unwrap_err().to_string();
        assert!(e.starts_with("--spec-fd 4: line 1 column") && e.contains("netTicket"), "{e}");
        let e = CallSpec::parse(br#"{"policy":"{}"}"#, "x").unwrap_err().to_string();
        assert!(e.contains("policy") && e.contains("unknown field"), "{e}");
    }

    #[test]
    fn stale_files_are_swept_and_discard_touches_only_spec_files() {
        let d = tmp();
        let dir = d.path().join("spec");
        let old = write_file(&dir, &spec()).unwrap();
        let f = std::fs::File::options().write(true).open(&old).unwrap();
        f.set_modified(std::time::SystemTime::now() - MAX_AGE - Duration::from_secs(5)).unwrap();
        let new = write_file(&dir, &spec()).unwrap();
        assert!(!old.exists() && new.exists());
        let other = dir.join("notes.txt");
        std::fs::write(&other, "x").unwrap();
        assert!(discard(&dir, &other).is_err() && other.exists());
        assert!(discard(&dir, &d.path().join(new.file_name().unwrap())).is_err() && new.exists());
        discard(&dir, &new).unwrap();
        assert!(!new.exists());
        discard(&dir, &new).unwrap();
        assert_eq!(spec_file_of(&["sc".into(), format!("--spec-file={}", new.display()), "--".into(), "--spec-file=x".into()]), Some(new.to_str().unwrap()));
    }
}
