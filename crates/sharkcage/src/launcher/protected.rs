//! The protected-state scan of the writable roots, before and after each
//! call: every entry the rule of `gitstate` names (git configs, hooks,
//! gitfiles, `commondir`, todo lists, startup files), at any depth, seen
//! as it is on disk — a symlink is an entry of its own, never followed.
//!
//! **Before** the call, the entries found become read-only binds (see
//! `plan.rs`), and the configs among them are read for what they make git
//! run or read (`core.hooksPath`, includes, programs): those places are
//! protected too when they lie in a writable root ([`derived`]). **After**
//! the call, `quarantine.rs` scans again and judges what is new or changed.
//!
//! **Nothing is skipped** but hidden paths (an empty read-only tmpfs in the
//! sandbox, so nothing can be written there) and nested writable roots
//! (scanned as roots of their own). A directory the caller cannot read but
//! owns (a sandbox can `chmod 300` what it made) is opened by granting the
//! owner read and search for the moment of the scan, then restored.
//!
//! **Cost.** A directory whose device, inode and change time (`ctime`,
//! which no unprivileged process can set back) are those of the last scan,
//! and whose `ctime` was at least two seconds older than that scan, has the
//! same entries as then: entries cannot be added, removed or renamed
//! without changing it, and a change after the scan gets a later `ctime`
//! even with one-second timestamps. Such a directory costs one `fstatat`
//! (and an `O_PATH` open if it has subdirectories) instead of a read. The
//! last scan of each root is kept in sharkcage's state directory
//! (`scancache.rs`), so only the first call in a workspace reads it all.
//! This is used only on filesystems known to keep `ctime` this way.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gitstate::{self, Role};
use crate::treewalk;

/// What an entry is on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
    Other,
}

/// An entry's identity. Not its change time: an existing entry is
/// read-only in the sandbox (and cannot be hard-linked from a writable
/// place), so only the host changes it — the user editing their own
/// `.vscode/settings.json` during a call is no reason to move it aside. A
/// kept file with a second hard link is never inert (see `gitstate::judge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Id {
    pub dev: u64,
    pub ino: u64,
}

/// One protected entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    pub role: Role,
    pub kind: Kind,
    pub id: Id,
}

/// A subdirectory entry of a scanned directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sub {
    pub name: Box<[u8]>,
    /// Its node in the same tree, or [`NOT_SCANNED`] (hidden, another root,
    /// unreadable).
    pub node: u32,
}

pub const NOT_SCANNED: u32 = u32::MAX;

/// A directory as a scan saw it: its identity, its subdirectories (all of
/// them, scanned or not) and its entries that have a role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub id: DirId,
    pub subdirs: Vec<Sub>,
    pub marks: Vec<(Box<[u8]>, Role)>,
}

/// A directory's identity for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirId {
    pub dev: u64,
    pub ino: u64,
    pub ctime: (i64, i64),
}

/// Every directory of one writable root, as last scanned; `nodes[0]` is
/// the root, and a node reaches its subdirectories' by index. Nodes not
/// reachable from the root (directories gone since the scan before) may be
/// left in place: the next scan keeps each directory's slot, so a tree of
/// many directories is not copied on every call; `scancache::encode` keeps
/// only reachable ones.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub root: PathBuf,
    /// A digest of the rules the marks were made under (see `rules_digest`).
    pub rules: u64,
    /// Wall-clock seconds at the start of the scan.
    pub scanned_at: i64,
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The nodes reachable from the root, in the order of a walk from it,
    /// with their subdirectories' indices renumbered to that order.
    pub fn reachable(&self) -> Vec<Node> {
        let mut out: Vec<Node> = Vec::new();
        let Some(root) = self.nodes.first() else { return out };
        let mut seen = vec![false; self.nodes.len()];
        seen[0] = true;
        out.push(root.clone());
        let mut i = 0;
        while i < out.len() {
            let mut subdirs = std::mem::take(&mut out[i].subdirs);
            for s in &mut subdirs {
                let c = s.node as usize;
                if s.node == NOT_SCANNED || c >= self.nodes.len() || seen[c] {
                    s.node = NOT_SCANNED;
                    continue;
                }
                seen[c] = true;
                s.node = out.len() as u32;
                out.push(self.nodes[c].clone());
            }
            out[i].subdirs = subdirs;
            i += 1;
        }
        out
    }
}

/// Result of a scan.
#[derive(Debug, Default)]
pub struct Scan {
    pub entries: Vec<Entry>,
    pub trees: Vec<Tree>,
    /// Directories visited, and those read (not taken from the cache).
    pub dirs: usize,
    pub read: usize,
    /// Directories that could not be examined (named in reports).
    pub unreadable: Vec<PathBuf>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn cstr(b: &[u8]) -> CString {
    CString::new(b).unwrap_or_else(|_| CString::new("\u{fffd}").unwrap())
}

fn fstatat(dir: RawFd, name: &[u8]) -> Option<libc::stat> {
    // A stack copy with a NUL: no allocation on the hot path.
    let mut buf = [0u8; 256];
    let c;
    let p = if name.len() < buf.len() && !name.contains(&0) {
        buf[..name.len()].copy_from_slice(name);
        buf.as_ptr().cast()
    } else {
        c = cstr(name);
        c.as_ptr()
    };
    // SAFETY: fstatat into a zeroed struct; `p` is NUL-terminated and below `dir`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstatat(dir, p, &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0).then_some(st)
}

fn fstat(fd: RawFd) -> Option<libc::stat> {
    // SAFETY: fstat into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

fn dir_id(st: &libc::stat) -> DirId {
    DirId { dev: st.st_dev, ino: st.st_ino, ctime: (st.st_ctime, st.st_ctime_nsec) }
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn openat(dir: RawFd, name: &[u8], flags: i32) -> Result<OwnedFd, i32> {
    let c = cstr(name);
    // SAFETY: openat below a directory descriptor; owned below.
    let fd = unsafe { libc::openat(dir, c.as_ptr(), flags | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(crate::layers::sys::errno());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Filesystems whose directory `ctime` changes with every entry change.
fn ctime_trusted(fd: RawFd) -> bool {
    // SAFETY: fstatfs into a zeroed struct.
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd, &mut sf) } != 0 {
        return false;
    }
    const KNOWN: [i64; 7] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0xF2F5_2010, 0x2FC1_2FC1, 0xCA45_1A4E];
    KNOWN.contains(&(sf.f_type as i64))
}

/// The entry `name` of the directory `dir`, as it is (no symlink followed).
fn entry_at(dir: RawFd, path: &Path, name: &[u8], role: Role) -> Option<Entry> {
    let st = fstatat(dir, name)?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink(std::fs::read_link(path).unwrap_or_default()),
        _ => Kind::Other,
    };
    Some(Entry { path: path.to_path_buf(), role, kind, id: Id { dev: st.st_dev, ino: st.st_ino } })
}

/// Scan the writable roots. `cache` holds earlier trees (same roots);
/// `extra_hooks` are names that are hooks directories wherever they appear
/// (a relative `core.hooksPath` of a global config).
pub fn scan(roots: &[PathBuf], hidden: &[PathBuf], homes: &[PathBuf], mut cache: Vec<Tree>, extra_hooks: &[Vec<u8>]) -> Scan {
    let mut out = Scan::default();
    for root in roots {
        let started = now_secs();
        let Some((fd, restore)) = open_root_readable(root) else {
            out.unreadable.push(root.clone());
            continue;
        };
        let skip: Vec<PathBuf> = hidden
            .iter()
            .chain(roots.iter())
            .filter(|p| p.starts_with(root) && *p != root)
            .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
            .collect();
        let homes: Vec<PathBuf> = homes.iter().filter_map(|h| h.strip_prefix(root).ok().map(Path::to_path_buf)).collect();
        let trust = ctime_trusted(fd.as_raw_fd());
        // A cache made under other rules (hooks names, homes) marks other entries.
        let rules = rules_digest(extra_hooks, &homes);
        let cached = cache.iter().position(|t| &t.root == root).map(|i| cache.swap_remove(i)).filter(|t| t.rules == rules);
        let mut tree = walk::walk_root(walk::Root { path: root, homes: &homes, fd, skip: &skip, cache: cached, trust, extra_hooks, started }, &mut out);
        tree.rules = rules;
        if let Some(mode) = restore {
            let _ = std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(mode));
        }
        out.trees.push(tree);
    }
    out.entries.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// A digest of what, besides the fixed rule, decides marks: hooks names
/// from global configs and where home directories are.
fn rules_digest(extra_hooks: &[Vec<u8>], homes: &[PathBuf]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"rules-1\0");
    for x in extra_hooks {
        h.update(x);
        h.update([0]);
    }
    h.update([1]);
    for x in homes {
        h.update(x.as_os_str().as_bytes());
        h.update([0]);
    }
    u64::from_le_bytes(h.finalize()[..8].try_into().unwrap())
}

/// Open a writable root for the scan. A root the caller owns but cannot
/// read or search (a command can `chmod 300 .` on its workspace) is opened
/// up for the scan; the old mode is returned to put back.
fn open_root_readable(root: &Path) -> Option<(OwnedFd, Option<u32>)> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let meta = root.symlink_metadata().ok()?;
    let mode = meta.mode() & 0o7777;
    let opened_up = euid != 0 && meta.is_dir() && meta.uid() == euid && mode & 0o500 != 0o500;
    if opened_up {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode | 0o500)).ok()?;
    }
    match treewalk::open_root(root) {
        Ok(fd) => Some((fd, opened_up.then_some(mode))),
        Err(_) => {
            if opened_up {
                let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode));
            }
            None
        }
    }
}

/// Home directories whose startup places (`gitstate::HOME_STARTUP`) count:
/// the caller's and every account's, canonical.
pub fn homes() -> Vec<PathBuf> {
    let mut homes = crate::policy::paths::home_dirs();
    for h in crate::policy::paths::all_user_homes() {
        let h = std::fs::canonicalize(&h).unwrap_or(h);
        if !homes.contains(&h) {
            homes.push(h);
        }
    }
    homes
}

/// Places an existing config makes git run or read, in a writable root.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derived {
    /// (path, role): hooks directories, included configs, programs.
    pub paths: Vec<(PathBuf, Role)>,
    /// Paths that are hooks directories below any directory (a relative
    /// `core.hooksPath` in a global config; see `gitstate::hooks_suffix`).
    pub hook_names: Vec<Vec<u8>>,
}

/// The git configs that apply to the writable roots besides those inside
/// them: the caller's global ones and the repository above each root.
pub fn outside_configs(writable: &[PathBuf]) -> Vec<(PathBuf, Option<PathBuf>)> {
    let mut v: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let home = crate::policy::paths::primary_home();
    if let Some(h) = &home {
        v.push((h.join(".gitconfig"), None));
        v.push((h.join(".config/git/config"), None));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        v.push((x.join("git/config"), None));
    }
    v.push((PathBuf::from("/etc/gitconfig"), None));
    for w in writable {
        for a in w.ancestors().skip(1) {
            let g = a.join(".git");
            if g.symlink_metadata().is_ok() {
                v.push((g.join("config"), Some(a.to_path_buf())));
                break;
            }
        }
    }
    v
}

/// Read the configs among `entries` (and the outside ones) for what they
/// make git run or read; keep what lies in a writable root.
pub fn derived(entries: &[Entry], writable: &[PathBuf], hidden: &[PathBuf]) -> Derived {
    derived_from(entries, writable, hidden, true)
}

/// [`derived`] from the configs among `entries` only (not the caller's
/// global ones, nor the repository above each root: a call cannot change
/// those — the after-call check).
pub fn derived_inside(entries: &[Entry], writable: &[PathBuf], hidden: &[PathBuf]) -> Derived {
    derived_from(entries, writable, hidden, false)
}

fn derived_from(entries: &[Entry], writable: &[PathBuf], hidden: &[PathBuf], outside: bool) -> Derived {
    let roots = gitstate::Roots { writable, hidden };
    let mut d = Derived::default();
    let mut added: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    // (config file, worktrees it applies to — where hooks and commands run;
    // none for a global config, whose relative hooksPath applies everywhere).
    // A repository's own config finds its worktrees only when it names
    // something to run (`None` until then: most configs name nothing, and
    // reading every repository's worktrees made each bridge operation slow).
    let mut configs: Vec<(PathBuf, Option<Vec<PathBuf>>, bool)> = Vec::new();
    for e in entries {
        match (e.role, &e.kind) {
            (Role::GitConfig, Kind::File) => configs.push((e.path.clone(), None, false)),
            // A gitfile: the git directory it names, and that one's common
            // directory, are where git takes this worktree's config from —
            // wherever they are (a linked worktree as the workspace).
            (Role::GitLink, Kind::File) => {
                let wt = e.path.parent().unwrap_or(Path::new("/")).to_path_buf();
                for cfg in gitfile_configs(&e.path) {
                    configs.push((cfg, Some(vec![wt.clone()]), false));
                }
            }
            _ => {}
        }
    }
    if outside {
        configs.extend(outside_configs(writable).into_iter().map(|(c, wt)| {
            let global = wt.is_none();
            (c, Some(wt.into_iter().collect()), global)
        }));
    }
    let mut seen = std::collections::HashSet::new();
    let mut i = 0;
    // Every config found is read; included files add at most 256 more.
    while i < configs.len() {
        let (cfg, worktrees, global) = configs[i].clone();
        i += 1;
        let Ok(text) = std::fs::read(&cfg) else { continue };
        let refs = gitstate::config::references(&text);
        if refs.hooks_paths.is_empty() && refs.includes.is_empty() && refs.programs.is_empty() {
            continue;
        }
        let dir = cfg.parent().unwrap_or(Path::new("/")).to_path_buf();
        let worktrees = worktrees.unwrap_or_else(|| worktrees_of(&dir));
        // Hooks and commands run in each worktree (a bare repository: its
        // git directory); includes are relative to the including file.
        let run_bases = if worktrees.is_empty() { vec![dir.clone()] } else { worktrees.clone() };
        for h in &refs.hooks_paths {
            if global && !Path::new(h.trim()).is_absolute() && !h.trim().starts_with("~/") {
                // Relative to every worktree, wherever one is made: the path
                // it names is a hooks directory below any directory (see
                // `gitstate::hooks_suffix`).
                if let Some(suffix) = gitstate::hooks_suffix(h) {
                    if !d.hook_names.contains(&suffix) {
                        d.hook_names.push(suffix);
                    }
                }
                continue;
            }
            for b in &run_bases {
                if let Some(p) = add_derived(&roots, h, b, Role::GitHooks, &mut d, &mut added) {
                    // husky keeps its hooks in `.husky/_` and they run the
                    // scripts one level up: protect that level too.
                    if p.file_name() == Some(OsStr::new("_")) {
                        if let Some(up) = p.parent() {
                            add_derived(&roots, &up.display().to_string(), b, Role::GitHooks, &mut d, &mut added);
                        }
                    }
                }
            }
        }
        for inc in &refs.includes {
            add_derived(&roots, inc, &dir, Role::GitConfig, &mut d, &mut added);
            // Included files are read for references too (once each).
            let p = if Path::new(inc.trim()).is_absolute() { PathBuf::from(inc.trim()) } else { dir.join(inc.trim()) };
            if seen.len() < 256 && seen.insert(p.clone()) {
                configs.push((p, Some(worktrees.clone()), global));
            }
        }
        for p in &refs.programs {
            for b in &run_bases {
                add_derived(&roots, p, b, Role::GitProgram, &mut d, &mut added);
            }
        }
    }
    d
}

/// Record `v` (relative to `base`, `~/` for the home) if it lies in a
/// writable root; returns where it leads.
fn add_derived(roots: &gitstate::Roots, v: &str, base: &Path, role: Role, d: &mut Derived, added: &mut std::collections::HashSet<PathBuf>) -> Option<PathBuf> {
    let v = v.trim();
    let v = match v.strip_prefix("~/") {
        Some(rest) => crate::policy::paths::primary_home().map(|h| h.join(rest).display().to_string()).unwrap_or_default(),
        None => v.to_string(),
    };
    if !roots.inside(base, &v) {
        return None;
    }
    let p = gitstate::resolve_physical(&base.join(&v))?;
    if added.insert(p.clone()) {
        d.paths.push((p.clone(), role));
    }
    Some(p)
}

/// The worktrees a git directory's config applies to: a `.git` directory's
/// parent; a worktree's own checkout (its `gitdir` file names `<wt>/.git`);
/// every linked worktree of a common directory (`worktrees/*/gitdir`).
/// None found (a bare repository): empty.
fn worktrees_of(gitdir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if gitdir.file_name() == Some(OsStr::new(".git")) {
        v.extend(gitdir.parent().map(Path::to_path_buf));
    }
    let back = |f: &Path| std::fs::read_to_string(f).ok().map(|s| PathBuf::from(s.trim_end_matches(['\n', '\r']))).and_then(|p| p.parent().map(Path::to_path_buf));
    v.extend(back(&gitdir.join("gitdir")));
    if let Ok(rd) = std::fs::read_dir(gitdir.join("worktrees")) {
        for e in rd.flatten().take(256) {
            v.extend(back(&e.path().join("gitdir")));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// The configs git reads for the worktree of the gitfile `f`: the named git
/// directory's `config.worktree`, and its common directory's `config`.
fn gitfile_configs(f: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(f) else { return vec![] };
    // As git reads it: only line ends are dropped.
    let Some(target) = text.strip_prefix("gitdir: ").map(|t| t.trim_end_matches(['\n', '\r'])) else { return vec![] };
    let base = f.parent().unwrap_or(Path::new("/"));
    let gitdir = if Path::new(target).is_absolute() { PathBuf::from(target) } else { base.join(target) };
    let mut v = vec![gitdir.join("config.worktree"), gitdir.join("config")];
    if let Ok(c) = std::fs::read_to_string(gitdir.join("commondir")) {
        let c = c.trim_end_matches(['\n', '\r']);
        let common = if Path::new(c).is_absolute() { PathBuf::from(c) } else { gitdir.join(c) };
        v.push(common.join("config"));
    }
    v
}

/// Identity of the entry at `path` with `role` as it is now (no symlink
/// followed), or None when nothing is there.
pub fn entry_now(path: &Path, role: Role) -> Option<Entry> {
    let parent = path.parent()?;
    let name = path.file_name()?;
    let c = CString::new(parent.as_os_str().as_bytes()).ok()?;
    // SAFETY: open the parent O_PATH; owned below.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    entry_at(fd.as_raw_fd(), path, name.as_bytes(), role)
}

mod walk;
#[cfg(test)]
pub(crate) use walk::FD_DEPTH;

#[cfg(test)]
mod tests;
