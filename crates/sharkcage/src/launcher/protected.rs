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
use crate::treewalk::{self, Type};

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
/// the root.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub root: PathBuf,
    /// Wall-clock seconds at the start of the scan.
    pub scanned_at: i64,
    pub nodes: Vec<Node>,
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

/// Levels that keep a descriptor open; deeper ones reopen from the root.
const FD_DEPTH: usize = 128;

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

/// A directory being walked.
struct Frame {
    /// Open descriptor (None: the root's, or a level below FD_DEPTH).
    fd: Option<OwnedFd>,
    rel: PathBuf,
    /// Its node in the new tree, and the next subdirectory to look at.
    node: u32,
    next: usize,
    /// Its node in the cached tree, if it was taken from there.
    cached: Option<u32>,
    /// Mode to put back when leaving (a directory opened by granting access).
    restore: Option<u32>,
}

struct Walker<'a> {
    root: &'a Path,
    root_fd: RawFd,
    /// Hidden paths and other roots inside this root, relative.
    skip: Vec<PathBuf>,
    /// The cached tree (its nodes are taken as they are reused).
    cache: Option<Tree>,
    trust: bool,
    extra_hooks: &'a [Vec<u8>],
    tree: Tree,
    out: &'a mut Scan,
    buf: Vec<u8>,
    euid: u32,
}

impl Walker<'_> {
    /// The cached node `i`, if it shows the directory `id` unchanged.
    fn trusted(&self, i: u32, id: &DirId) -> bool {
        let Some(c) = &self.cache else { return false };
        self.trust && c.nodes.get(i as usize).is_some_and(|n| n.id == *id && n.id.ctime.0 <= c.scanned_at - 2)
    }

    fn take_cached(&mut self, i: u32) -> Node {
        self.cache.as_mut().map(|c| std::mem::take(&mut c.nodes[i as usize])).unwrap_or_default()
    }

    /// Open `name` in `dir` for reading; if the caller owns it but may not
    /// read or search it, grant that for the scan (returns the old mode).
    fn open_readable(&self, dir: RawFd, name: &[u8]) -> Result<(OwnedFd, Option<u32>), i32> {
        match openat(dir, name, libc::O_RDONLY) {
            Err(libc::EACCES) => {}
            other => return other.map(|f| (f, None)),
        }
        let st = fstatat(dir, name).ok_or(libc::EACCES)?;
        if !is_dir(&st) || st.st_uid != self.euid {
            return Err(libc::EACCES);
        }
        let mode = st.st_mode & 0o7777;
        let c = cstr(name);
        // SAFETY: fchmodat of a directory entry we own, below `dir`.
        if unsafe { libc::fchmodat(dir, c.as_ptr(), mode | 0o500, 0) } != 0 {
            return Err(libc::EACCES);
        }
        match openat(dir, name, libc::O_RDONLY) {
            Ok(f) => Ok((f, Some(mode))),
            Err(e) => {
                // SAFETY: put the mode back.
                unsafe { libc::fchmodat(dir, c.as_ptr(), mode, 0) };
                Err(e)
            }
        }
    }

    /// Read a directory's entries into a node (marks and subdirectories).
    fn read(&mut self, fd: RawFd, base: &[u8], id: DirId) -> Option<Node> {
        let mut entries = Vec::new();
        if !treewalk::read_entries(fd, &mut self.buf, &mut entries) {
            return None;
        }
        self.out.read += 1;
        let has = |n: &[u8]| entries.iter().any(|e: &treewalk::DirEntry| e.name == n);
        let git_dir = gitstate::is_git_dir(base, has);
        let mut node = Node { id, subdirs: Vec::new(), marks: Vec::new() };
        for e in entries {
            let role = gitstate::role_of(base, git_dir, &e.name, e.ty).or_else(|| self.extra_hooks.contains(&e.name).then_some(Role::GitHooks));
            if let Some(r) = role {
                node.marks.push((e.name.clone().into_boxed_slice(), r));
            }
            if e.ty == Type::Dir {
                node.subdirs.push(Sub { name: e.name.into_boxed_slice(), node: NOT_SCANNED });
            }
        }
        Some(node)
    }

    /// Add a directory to the new tree (from the cache when unchanged,
    /// else read) and its marked entries to the output. Returns its index.
    fn visit(&mut self, fd: RawFd, rel: &Path, id: DirId, cached: Option<u32>) -> Option<(u32, bool)> {
        let (mut node, from_cache) = match cached.filter(|&i| self.trusted(i, &id)) {
            Some(i) => (self.take_cached(i), true),
            None => {
                let base = rel.file_name().or(self.root.file_name()).map(|n| n.as_bytes().to_vec()).unwrap_or_default();
                (self.read(fd, &base, id)?, false)
            }
        };
        if !from_cache {
            // Children of a re-read directory may still match cached nodes by name.
            if let Some(ci) = cached {
                if let Some(c) = &self.cache {
                    let old = &c.nodes[ci as usize].subdirs;
                    for s in &mut node.subdirs {
                        if let Some(o) = old.iter().find(|o| o.name == s.name) {
                            s.node = o.node;
                        }
                    }
                }
            }
        }
        for (name, role) in &node.marks {
            if let Some(e) = entry_at(fd, &self.root.join(rel).join(OsStr::from_bytes(name)), name, *role) {
                self.out.entries.push(e);
            }
        }
        // Until its children are visited, `subdirs[].node` holds the
        // cached indices; each is replaced by the new one as we go.
        self.tree.nodes.push(node);
        Some(((self.tree.nodes.len() - 1) as u32, from_cache))
    }

    fn skipped(&self, rel: &Path, name: &[u8]) -> bool {
        !self.skip.is_empty() && self.skip.iter().any(|s| rel.join(OsStr::from_bytes(name)).starts_with(s))
    }

    fn run(&mut self) {
        let Some(st) = fstat(self.root_fd) else { return };
        self.out.dirs += 1;
        let root_cached = self.cache.as_ref().filter(|c| !c.nodes.is_empty()).map(|_| 0u32);
        let Some((root_idx, from_cache)) = self.visit(self.root_fd, Path::new(""), dir_id(&st), root_cached) else {
            self.out.unreadable.push(self.root.to_path_buf());
            return;
        };
        let _ = from_cache;
        let mut stack = vec![Frame { fd: None, rel: PathBuf::new(), node: root_idx, next: 0, cached: root_cached, restore: None }];
        while let Some(top) = stack.last_mut() {
            let node = top.node as usize;
            if top.next >= self.tree.nodes[node].subdirs.len() {
                let done = stack.pop().unwrap();
                if let (Some(mode), Some(parent)) = (done.restore, stack.last()) {
                    let pfd = parent.fd.as_ref().map_or(self.root_fd, |f| f.as_raw_fd());
                    if let Some(n) = done.rel.file_name() {
                        let name = cstr(n.as_bytes());
                        // SAFETY: put back the mode of a directory we opened up.
                        unsafe { libc::fchmodat(pfd, name.as_ptr(), mode, 0) };
                    }
                }
                continue;
            }
            let i = top.next;
            top.next += 1;
            let depth = stack.len();
            let top = stack.last().unwrap();
            let sub = &mut self.tree.nodes[node].subdirs[i];
            let cached_child = (sub.node != NOT_SCANNED && top.cached.is_some()).then_some(sub.node);
            sub.node = NOT_SCANNED;
            let name = sub.name.clone();
            if self.skipped(&top.rel, &name) {
                continue;
            }
            // Deep levels have no descriptor: reopen the parent from the root.
            let deep = depth >= FD_DEPTH;
            let parent_owned = if deep { treewalk::open_beneath(self.root_fd, &top.rel) } else { None };
            let pfd = match (&parent_owned, &top.fd) {
                (Some(f), _) | (None, Some(f)) => f.as_raw_fd(),
                (None, None) => self.root_fd,
            };
            let Some(st) = fstatat(pfd, &name) else { continue };
            if !is_dir(&st) {
                continue; // replaced meanwhile: not a directory any more
            }
            self.out.dirs += 1;
            let id = dir_id(&st);
            // An unchanged leaf without marks costs nothing more.
            if let Some(ci) = cached_child.filter(|&ci| self.trusted(ci, &id)) {
                let c = &self.cache.as_ref().unwrap().nodes[ci as usize];
                if c.subdirs.is_empty() && c.marks.is_empty() {
                    let n = self.take_cached(ci);
                    self.tree.nodes.push(n);
                    let idx = (self.tree.nodes.len() - 1) as u32;
                    self.tree.nodes[node].subdirs[i].node = idx;
                    continue;
                }
            }
            let (fd, restore) = match self.open_readable(pfd, &name) {
                Ok(x) => x,
                Err(_) => {
                    self.out.unreadable.push(self.root.join(&top.rel).join(OsStr::from_bytes(&name)));
                    continue;
                }
            };
            // The entry must still be the directory we looked at.
            let (id, cached_child) = match fstat(fd.as_raw_fd()) {
                Some(s) if s.st_ino == st.st_ino && s.st_dev == st.st_dev && restore.is_none() => (id, cached_child),
                Some(s) => (dir_id(&s), None),
                None => continue,
            };
            let rel = top.rel.join(OsStr::from_bytes(&name));
            let Some((idx, _)) = self.visit(fd.as_raw_fd(), &rel, id, cached_child) else {
                self.out.unreadable.push(self.root.join(&rel));
                continue;
            };
            self.tree.nodes[node].subdirs[i].node = idx;
            let keep = if deep { None } else { Some(fd) };
            stack.push(Frame { fd: keep, rel, node: idx, next: 0, cached: cached_child, restore });
        }
    }
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
pub fn scan(roots: &[PathBuf], hidden: &[PathBuf], mut cache: Vec<Tree>, extra_hooks: &[Vec<u8>]) -> Scan {
    let mut out = Scan::default();
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    for root in roots {
        let started = now_secs();
        let Ok(fd) = treewalk::open_root(root) else {
            out.unreadable.push(root.clone());
            continue;
        };
        let skip: Vec<PathBuf> = hidden
            .iter()
            .chain(roots.iter())
            .filter(|p| p.starts_with(root) && *p != root)
            .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
            .collect();
        let mut w = Walker {
            root,
            root_fd: fd.as_raw_fd(),
            skip,
            cache: cache.iter().position(|t| &t.root == root).map(|i| cache.swap_remove(i)),
            trust: ctime_trusted(fd.as_raw_fd()),
            extra_hooks,
            tree: Tree { root: root.clone(), scanned_at: started, nodes: Vec::with_capacity(1024) },
            out: &mut out,
            buf: vec![0u8; 32 * 1024],
            euid,
        };
        w.run();
        let tree = std::mem::take(&mut w.tree);
        out.trees.push(tree);
    }
    out
}

/// Places an existing config makes git run or read, in a writable root.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derived {
    /// (path, role): hooks directories, included configs, programs.
    pub paths: Vec<(PathBuf, Role)>,
    /// Names that are hooks directories anywhere (relative global hooksPath).
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
    let roots = gitstate::Roots { writable, hidden };
    let mut d = Derived::default();
    let mut configs: Vec<(PathBuf, Option<PathBuf>)> = entries
        .iter()
        .filter(|e| e.role == Role::GitConfig && e.kind == Kind::File)
        .map(|e| {
            let gitdir = e.path.parent().unwrap_or(Path::new("/")).to_path_buf();
            // A `.git` directory's worktree is its parent.
            let worktree = (gitdir.file_name() == Some(OsStr::new(".git"))).then(|| gitdir.parent().unwrap_or(Path::new("/")).to_path_buf());
            (e.path.clone(), worktree)
        })
        .collect();
    let global: Vec<(PathBuf, Option<PathBuf>)> = outside_configs(writable);
    let n_inside = configs.len();
    configs.extend(global);
    let mut seen = std::collections::HashSet::new();
    let mut i = 0;
    while i < configs.len() {
        let (cfg, worktree) = configs[i].clone();
        let is_global = i >= n_inside && worktree.is_none();
        i += 1;
        if !seen.insert(cfg.clone()) || seen.len() > 256 {
            continue;
        }
        let Ok(text) = std::fs::read(&cfg) else { continue };
        let refs = gitstate::config::references(&text);
        let dir = cfg.parent().unwrap_or(Path::new("/")).to_path_buf();
        // Hooks and commands run in the worktree (a bare repository: its
        // git directory); includes are relative to the including file.
        let run_base = worktree.clone().unwrap_or_else(|| dir.clone());
        let add = |v: &str, base: &Path, role: Role, d: &mut Derived| {
            let v = v.trim();
            let v = match v.strip_prefix("~/") {
                Some(rest) => crate::policy::paths::primary_home().map(|h| h.join(rest).display().to_string()).unwrap_or_default(),
                None => v.to_string(),
            };
            if roots.inside(base, &v) {
                let p = crate::policy::paths::canonicalize_lenient(&crate::policy::paths::normalize(&base.join(&v)));
                if !d.paths.iter().any(|(q, _)| *q == p) {
                    d.paths.push((p, role));
                }
            }
        };
        for h in &refs.hooks_paths {
            if is_global && !Path::new(h.trim()).is_absolute() && !h.trim().starts_with("~/") {
                // Relative to every worktree: a name to watch everywhere.
                let first = Path::new(h.trim()).components().next().map(|c| c.as_os_str().as_bytes().to_vec()).unwrap_or_default();
                if !first.is_empty() && !d.hook_names.contains(&first) {
                    d.hook_names.push(first);
                }
                continue;
            }
            add(h, &run_base, Role::GitHooks, &mut d);
        }
        for inc in &refs.includes {
            add(inc, &dir, Role::GitConfig, &mut d);
            // Included files are read for references too.
            let p = if Path::new(inc.trim()).is_absolute() { PathBuf::from(inc.trim()) } else { dir.join(inc.trim()) };
            configs.push((p, worktree.clone()));
        }
        for p in &refs.programs {
            add(p, &run_base, Role::GitProgram, &mut d);
        }
    }
    d
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

#[cfg(test)]
mod tests;
