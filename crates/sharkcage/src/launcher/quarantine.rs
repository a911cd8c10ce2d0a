//! Protected paths that did not exist (or were different) when the call
//! started.
//!
//! Existing protected paths (`.git/hooks`, `.bashrc`, `.vscode`, …) are
//! read-only mounts in the sandbox, and their parent directories are pinned,
//! so they cannot be written, removed or renamed away. A protected name that
//! does **not** exist yet cannot get a mount without creating a placeholder
//! on the host (which srt does, and which breaks concurrent calls), and
//! neither mounts nor Landlock can refuse the creation of one name while
//! allowing others in the same directory.
//!
//! So the launcher checks after the call, when every process of the sandbox
//! is dead: it scans the writable roots again (`protected::scan`, no symlink
//! followed), judges every protected entry that is new or changed
//! (`gitstate::judge`: a new repository's plain config is inert, a config
//! that sets `core.fsmonitor` is not) and moves aside what is not inert — a
//! file, a directory, or a symlink — and every mandatory secret path or
//! `denyWrite` path that appeared. The move is a `renameat` inside the entry's own directory,
//! opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the
//! writable root, so it can never act outside a writable root. The new name
//! is `.<name>.sharkcage-quarantine-<pid>-<n>-<random>`: a name taken already
//! (a decoy) is retried with another, and a directory the command made
//! unwritable is opened up for the rename. Only if it still cannot be
//! renamed is the entry removed: state that would run never stays.
//!
//! If the launcher is killed (SIGKILL) before it can check, the check is not
//! lost: a journal entry written before the call (in sharkcage's state
//! directory, which the sandbox cannot see) lets the next `sc` run finish
//! it. The remaining limit: while the call runs, a concurrent host process
//! could see such an entry. This is stated in the README.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::protected::{self, Entry, Tree};
use super::Violation;
use crate::gitstate::{self, Role};

/// What the after-call check needs; also the journal record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub writable: Vec<PathBuf>,
    pub hidden: Vec<PathBuf>,
    pub before: Vec<Entry>,
    /// Protected paths that did not exist before the call, with their role.
    pub must_not_appear: Vec<(PathBuf, Role)>,
    /// Names that are hooks directories anywhere (a global relative `core.hooksPath`).
    pub hook_names: Vec<Vec<u8>>,
    /// Configs left writable during the call, with their content's digest
    /// before it (see `Plan::writable_configs`).
    #[serde(default)]
    pub writable_configs: Vec<(PathBuf, Option<[u8; 32]>)>,
    /// Home directories (their startup places count).
    #[serde(default)]
    pub homes: Vec<PathBuf>,
    /// Launcher pid and its start time (to tell a reused pid apart).
    pub pid: u32,
    pub start_time: u64,
}

impl Check {
    pub fn from_plan(plan: &Plan) -> Check {
        let pid = std::process::id();
        Check {
            writable: plan.writable.clone(),
            hidden: plan.hidden.clone(),
            before: plan.protected_before.clone(),
            must_not_appear: plan.must_not_appear.clone(),
            hook_names: plan.hook_names.clone(),
            writable_configs: plan.writable_configs.clone(),
            homes: plan.homes.clone(),
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
        }
    }
}

/// A path for a report: very deep ones (a command can nest directories
/// beyond `PATH_MAX`) shortened to their start and end.
fn shown(p: &Path) -> String {
    let s = p.display().to_string();
    if s.len() <= 400 {
        return s;
    }
    let head: String = s.chars().take(120).collect();
    let tail: String = s.chars().rev().take(200).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{head}…({} bytes)…{tail}", s.len())
}

/// A digest of a file's content (None: not a readable regular file); the
/// last component is not followed.
pub fn content_digest(p: &Path) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut r = f.take(64 << 20);
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return None,
        }
    }
    Some(h.finalize().into())
}

/// One entry to move aside, and why.
struct Finding {
    path: PathBuf,
    role: Role,
    why: String,
}

/// Check the writable roots again: judge what is new or changed (see
/// `gitstate`), move aside what is not inert. `cache` is the scan from
/// before the call (empty: read everything, as after a crash). Returns the
/// reports and the new scan, to keep for the next call.
pub fn after_call(check: &Check, cache: Vec<Tree>) -> (Vec<Violation>, Vec<Tree>, bool) {
    let t0 = std::time::Instant::now();
    let post = protected::scan(&check.writable, &check.hidden, &check.homes, cache, &check.hook_names);
    if std::env::var_os("SHARKCAGE_TIMING").is_some() {
        eprintln!("protected scan after: {} dirs, {} read, {:?}", post.dirs, post.read, t0.elapsed());
    }
    let roots = gitstate::Roots { writable: &check.writable, hidden: &check.hidden };
    // Lookups by path (a call can leave hundreds of thousands of entries:
    // nothing here may be quadratic).
    let mut before: std::collections::HashMap<&Path, Vec<&Entry>> = std::collections::HashMap::new();
    for b in &check.before {
        before.entry(b.path.as_path()).or_default().push(b);
    }
    let digests: std::collections::HashMap<&Path, &Option<[u8; 32]>> = check.writable_configs.iter().map(|(p, d)| (p.as_path(), d)).collect();
    let mut found: Vec<Finding> = Vec::new();
    let mut found_paths: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let add = |found: &mut Vec<Finding>, path: &Path, role: Role, found_paths: &mut std::collections::HashSet<PathBuf>| {
        if !found_paths.contains(path) {
            if let Err(why) = gitstate::judge(role, path, &roots) {
                found_paths.insert(path.to_path_buf());
                found.push(Finding { path: path.to_path_buf(), role, why });
            }
        }
    };
    for e in &post.entries {
        // The same file, and (for one left writable) the same content.
        let same = before.get(e.path.as_path()).is_some_and(|v| v.iter().any(|b| b.role == e.role && b.kind == e.kind && b.id == e.id));
        let unchanged = same && digests.get(e.path.as_path()).is_none_or(|d| content_digest(&e.path) == **d);
        if !unchanged {
            add(&mut found, &e.path, e.role, &mut found_paths);
        }
    }
    // What the configs that stay now name (a worktree added in the call has
    // its own `core.hooksPath` directory): judged where new or changed.
    let staying: Vec<Entry> = post.entries.iter().filter(|e| !found_paths.contains(&e.path)).cloned().collect();
    for (p, role) in protected::derived_inside(&staying, &check.writable, &check.hidden).paths {
        let Some(now) = protected::entry_now(&p, role) else { continue };
        let known = before.get(now.path.as_path()).is_some_and(|v| v.iter().any(|b| b.kind == now.kind && b.id == now.id));
        if !known {
            add(&mut found, &p, role, &mut found_paths);
        }
    }
    for (p, role) in &check.must_not_appear {
        if p.symlink_metadata().is_ok() {
            add(&mut found, p, *role, &mut found_paths);
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    let mut out = Vec::new();
    for p in &post.unreadable {
        out.push(Violation::note("protected-path", format!("{} could not be examined for git or startup files after the call", shown(p))));
    }
    // A parent moved aside takes its children with it.
    let mut done: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for (n, f) in found.into_iter().enumerate() {
        if f.path.ancestors().any(|a| done.contains(a)) {
            continue;
        }
        // The deepest writable root containing it (never the root itself).
        let Some(root) = check.writable.iter().filter(|w| f.path.starts_with(w) && f.path != **w).max_by_key(|w| w.components().count()) else {
            continue;
        };
        let what = format!("{}: a {} that {}", shown(&f.path), f.role.describe(), f.why);
        match neutralize(root, &f.path, n as u32 + 1) {
            Ok(Neutralized::Moved(dest)) => {
                out.push(Violation::note("protected-path", format!("{what}; moved aside to {}", shown(&dest))));
                done.insert(f.path);
            }
            Ok(Neutralized::Removed(why)) => {
                out.push(Violation::note("protected-path", format!("{what}; removed (it could not be moved aside: {why})")));
                done.insert(f.path);
            }
            Err(e) => out.push(Violation::note(
                "protected-path",
                format!("{what}; it could NOT be moved aside or removed ({e}): it may run on the host — remove it by hand"),
            )),
        }
    }
    (out, post.trees, post.read > 0)
}

/// What became of an entry that is not inert.
enum Neutralized {
    /// Renamed in its own directory.
    Moved(PathBuf),
    /// It could not be renamed (why), so it was removed.
    Removed(String),
}

/// Move `path` (inside `root`) aside to an unpredictable name in its own
/// directory, resolving the directory below `root` without following
/// symlinks. A name taken already (a decoy) is retried with another; a
/// directory the command made unwritable is opened up for the rename (as
/// the scan does for reading) and restored. If it still cannot be renamed,
/// it is removed: state that would run on the host does not stay.
fn neutralize(root: &Path, path: &Path, n: u32) -> std::io::Result<Neutralized> {
    use crate::layers::sys;
    let rel = path.strip_prefix(root).map_err(|_| std::io::Error::from_raw_os_error(libc::EXDEV))?;
    let name = rel.file_name().ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL));
    let root_fd = sys::open_path_no_symlinks(&c(root)?, libc::O_DIRECTORY).map_err(std::io::Error::from_raw_os_error)?;
    let dir_fd = sys::open_beneath(root_fd, &c(parent_rel)?);
    sys::close(root_fd);
    let dir_fd = dir_fd.map_err(std::io::Error::from_raw_os_error)?;
    let from = c(Path::new(name))?;
    let mut restore: Option<u32> = None;
    let mut last = std::io::Error::from_raw_os_error(libc::EIO);
    let mut moved = None;
    for _ in 0..16 {
        let new_name = format!(".{}.sharkcage-quarantine-{}-{}-{}", name.to_string_lossy().trim_start_matches('.'), std::process::id(), n, random_hex());
        let to = c(Path::new(&new_name))?;
        // SAFETY: renameat within one directory fd; the final component is not followed.
        if unsafe { libc::renameat2(dir_fd, from.as_ptr(), dir_fd, to.as_ptr(), libc::RENAME_NOREPLACE) } == 0 {
            moved = Some(path.with_file_name(new_name));
            break;
        }
        last = std::io::Error::last_os_error();
        match last.raw_os_error() {
            Some(libc::EEXIST) => continue,
            Some(libc::EACCES) | Some(libc::EPERM) if restore.is_none() => match open_up(dir_fd) {
                Some(mode) => restore = Some(mode),
                None => break,
            },
            _ => break,
        }
    }
    let out = match moved {
        Some(p) => Ok(Neutralized::Moved(p)),
        None => remove_entry(dir_fd, &from).map(|_| Neutralized::Removed(last.to_string())),
    };
    if let Some(mode) = restore {
        let _ = crate::fileio::chmod_fd(dir_fd, mode);
    }
    sys::close(dir_fd);
    out
}

/// Give the owner (the caller, who owns what the command made) write and
/// search rights on a directory; returns its old mode.
fn open_up(dir_fd: i32) -> Option<u32> {
    let st = crate::layers::sys::fstat(dir_fd).ok()?;
    let mode = st.st_mode & 0o7777;
    crate::fileio::chmod_fd(dir_fd, mode | 0o700).ok().map(|_| mode)
}

/// Remove `name` from `dir_fd`: a file or symlink, or a directory tree
/// (never following a symlink).
fn remove_entry(dir_fd: i32, name: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: unlinkat below our directory fd.
    if unsafe { libc::unlinkat(dir_fd, name.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EISDIR) && e.raw_os_error() != Some(libc::EPERM) {
        return Err(e);
    }
    let d = crate::layers::sys::openat2(dir_fd, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS)
        .map_err(std::io::Error::from_raw_os_error)?;
    let _ = crate::fileio::chmod_fd(d, 0o700);
    let mut entries = Vec::new();
    let ok = crate::treewalk::read_entries(d, &mut vec![0u8; 32 * 1024], &mut entries);
    let mut r = if ok { Ok(()) } else { Err(std::io::Error::last_os_error()) };
    for e in entries {
        if let Ok(c) = CString::new(e.name) {
            if let Err(x) = remove_entry(d, &c) {
                r = Err(x);
            }
        }
    }
    crate::layers::sys::close(d);
    r?;
    // SAFETY: rmdir of the emptied directory below our fd.
    if unsafe { libc::unlinkat(dir_fd, name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Eight random hex digits (a quarantine name the command cannot guess).
fn random_hex() -> String {
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Start time of a process (clock ticks since boot), from /proc/PID/stat.
fn process_start_time(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

// ---- the journal --------------------------------------------------------

/// Where pending checks are kept: `$SHARKCAGE_STATE_DIR`, else
/// `$XDG_STATE_HOME/sharkcage`, else `~/.local/state/sharkcage` — all hidden
/// from every sandbox by the mandatory read-deny list.
pub fn journal_dir() -> Option<PathBuf> {
    crate::fileio::state_dir().map(|d| d.join("pending"))
}

/// Create the journal directory (mode 0700) if it is missing.
pub fn ensure_journal_dir() {
    if let Some(dir) = journal_dir() {
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        }
    }
}

/// A pending check on disk: the journal directory, opened before the call
/// (see `fileio::PinnedDir`), and the record's name in it.
pub struct JournalEntry {
    dir: crate::fileio::PinnedDir,
    name: String,
}

/// Record a pending check before the call.
pub fn journal_begin(check: &Check) -> Option<JournalEntry> {
    // Nothing can appear when nothing is writable.
    if check.writable.is_empty() {
        return None;
    }
    let dir = journal_dir()?;
    std::fs::create_dir_all(&dir).ok()?;
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let dir = crate::fileio::PinnedDir::open(&dir).ok()?;
    let name = format!("{}-{}.json", check.pid, check.start_time);
    dir.write_atomic(name.as_ref(), &serde_json::to_vec(check).ok()?, 0o600).ok()?;
    Some(JournalEntry { dir, name })
}

/// Remove the record after the check, from the directory it was written to
/// (whatever happened to the path meanwhile); a note if the path changed.
pub fn journal_end(entry: Option<JournalEntry>) -> Option<Violation> {
    let e = entry?;
    let note = e.dir.moved().map(|why| Violation::note("journal", format!("sharkcage's pending-check directory {why}")));
    let _ = e.dir.remove(e.name.as_ref());
    note
}

/// Finish the checks of launchers that died before doing them.
pub fn recover() -> Vec<Violation> {
    let Some(dir) = journal_dir() else { return vec![] };
    let Ok(rd) = std::fs::read_dir(&dir) else { return vec![] };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let Some(check) = std::fs::read(&p).ok().and_then(|b| serde_json::from_slice::<Check>(&b).ok()) else {
            // A record we cannot read is kept for a human and reported.
            out.push(Violation::note("journal", format!("unreadable pending check {}", p.display())));
            continue;
        };
        let alive = process_start_time(check.pid).is_some_and(|t| t == check.start_time);
        if alive {
            continue;
        }
        let (mut v, trees, _) = after_call(&check, vec![]);
        super::scancache::save(&trees);
        for x in &mut v {
            x.detail = format!("(recovered from an interrupted call) {}", x.detail);
        }
        out.extend(v);
        let _ = std::fs::remove_file(&p);
    }
    out
}
