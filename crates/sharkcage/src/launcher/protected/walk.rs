//! The walk behind [`super::scan`]: every directory of one writable root,
//! on up to four threads, never following a symlink.
//!
//! Work is a stack of directory jobs shared by the threads. A job is a
//! directory to open (by name below its parent's descriptor, or from the
//! root by path below [`FD_DEPTH`] levels, so the walk holds a bounded
//! number of descriptors at any depth). Processing one: open it, take its
//! record from the cache if it is unchanged (see the parent module for why
//! that is sound) or read it, report its marked entries, then `fstatat`
//! each subdirectory — an unchanged leaf without marks is done right there,
//! anything else becomes a job. Node indices are handed out as directories
//! are visited and each parent's link to a child is patched in at the end.
//!
//! A directory opened up for the scan (see `Walker::open_readable`) gets its
//! mode back only after the whole walk: its children are looked up through
//! it until then.
//!
//! Threads: this runs before the sandbox is cloned as well as after it;
//! the threads are scoped and joined before `scan` returns, so the launcher
//! is single-threaded again when it clones. A small tree (by its last scan)
//! is walked on the calling thread alone.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::{cstr, dir_id, entry_at, fstat, fstatat, is_dir, openat, DirId, Entry, Node, Scan, Sub, Tree, NOT_SCANNED};
use crate::gitstate::{self, Role};
use crate::treewalk::{self, Type};

/// Levels that keep a descriptor open; deeper ones reopen from the root.
pub const FD_DEPTH: usize = 128;
/// Trees with fewer directories (by their last scan) are walked on one thread.
const PARALLEL_FROM: usize = 2000;

/// A directory to visit.
struct Job {
    /// The parent's descriptor (None: reopen by `rel` from the root).
    parent: Option<Arc<OwnedFd>>,
    name: Box<[u8]>,
    rel: PathBuf,
    /// What `fstatat` saw from the parent.
    st: libc::stat,
    /// The parent's node and the index of this entry in its `subdirs`.
    link: (u32, usize),
    /// This directory's node in the cached tree.
    cached: Option<u32>,
    depth: usize,
}

/// A directory opened up for the scan, to get its mode back.
struct Restore {
    depth: usize,
    parent: Arc<OwnedFd>,
    name: Box<[u8]>,
    mode: u32,
}

/// What one thread found.
#[derive(Default)]
struct Found {
    nodes: Vec<(u32, Node)>,
    links: Vec<(u32, usize, u32)>,
    entries: Vec<Entry>,
    unreadable: Vec<PathBuf>,
    restore: Vec<Restore>,
    dirs: usize,
    read: usize,
}

/// Jobs waiting, jobs not finished (waiting or running), threads idle.
#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    open: usize,
    idle: usize,
}

struct Shared<'a> {
    root: &'a Path,
    /// Home directories inside this root, relative (see `gitstate::HOME_STARTUP`).
    homes: &'a [PathBuf],
    root_fd: RawFd,
    skip: &'a [PathBuf],
    cache: Option<(i64, Vec<Mutex<Node>>)>,
    trust: bool,
    extra_hooks: &'a [Vec<u8>],
    euid: u32,
    next: AtomicU32,
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared<'_> {
    /// The cached node `i`, if it shows the directory `id` unchanged.
    fn trusted(&self, i: u32, id: &DirId) -> bool {
        let Some((scanned_at, nodes)) = &self.cache else { return false };
        self.trust && nodes.get(i as usize).is_some_and(|n| n.lock().is_ok_and(|n| n.id == *id && n.id.ctime.0 <= scanned_at - 2))
    }

    /// The cached node `i` when it shows the directory `id` unchanged and it
    /// has neither subdirectories nor marks (nothing more to look at): taken.
    fn take_if_bare_leaf(&self, i: u32, id: &DirId) -> Option<Node> {
        let (scanned_at, nodes) = self.cache.as_ref()?;
        if !self.trust {
            return None;
        }
        let mut n = nodes.get(i as usize)?.lock().ok()?;
        (n.id == *id && n.id.ctime.0 <= scanned_at - 2 && n.subdirs.is_empty() && n.marks.is_empty()).then(|| std::mem::take(&mut *n))
    }

    fn take_cached(&self, i: u32) -> Node {
        self.cache.as_ref().and_then(|(_, n)| n.get(i as usize)).map(|m| m.lock().map(|mut g| std::mem::take(&mut *g)).unwrap_or_default()).unwrap_or_default()
    }

    fn skipped(&self, rel: &Path) -> bool {
        self.skip.iter().any(|s| rel.starts_with(s))
    }

    fn push(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let mut q = self.queue.lock().unwrap();
        q.open += jobs.len();
        q.jobs.extend(jobs);
        // Wake a waiting thread only if there is one (a wake-up is a syscall).
        let wake = q.idle > 0;
        drop(q);
        if wake {
            self.ready.notify_one();
        }
    }

    /// The next job, or None when every job is done.
    fn pop(&self) -> Option<Job> {
        let mut q = self.queue.lock().unwrap();
        loop {
            if let Some(j) = q.jobs.pop() {
                // More left: another waiting thread may take one.
                if !q.jobs.is_empty() && q.idle > 0 {
                    self.ready.notify_one();
                }
                return Some(j);
            }
            if q.open == 0 {
                return None;
            }
            q.idle += 1;
            q = self.ready.wait(q).unwrap();
            q.idle -= 1;
        }
    }

    fn done(&self) {
        let mut q = self.queue.lock().unwrap();
        q.open -= 1;
        let finished = q.open == 0 && q.idle > 0;
        drop(q);
        if finished {
            self.ready.notify_all();
        }
    }

    /// Open `name` below `dir` for reading; a directory the caller owns but
    /// may not read or search is opened up (the old mode is returned).
    fn open_readable(&self, dir: RawFd, name: &[u8]) -> Result<(OwnedFd, Option<u32>), i32> {
        match openat(dir, name, libc::O_RDONLY) {
            Err(libc::EACCES) => {}
            Err(e) => return Err(e),
            Ok(f) => {
                // Readable but not searchable (`chmod 600`): its entries could
                // be listed but not examined. Open it up as well.
                let Some(st) = fstat(f.as_raw_fd()) else { return Ok((f, None)) };
                if self.euid != 0 && st.st_uid == self.euid && st.st_mode & 0o500 != 0o500 {
                    let mode = st.st_mode & 0o7777;
                    // SAFETY: fchmod of a directory we own, through our descriptor.
                    if unsafe { libc::fchmod(f.as_raw_fd(), mode | 0o500) } == 0 {
                        return Ok((f, Some(mode)));
                    }
                }
                return Ok((f, None));
            }
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
    fn read(&self, fd: RawFd, rel: &Path, id: DirId, buf: &mut [u8], f: &mut Found) -> Option<Node> {
        let base = rel.file_name().or(self.root.file_name()).map(|n| n.as_bytes().to_vec()).unwrap_or_default();
        let base = base.as_slice();
        let in_home: Vec<&Path> = self.homes.iter().filter_map(|h| rel.strip_prefix(h).ok()).collect();
        let mut entries = Vec::new();
        if !treewalk::read_entries(fd, buf, &mut entries) {
            return None;
        }
        f.read += 1;
        let has = |n: &[u8]| entries.iter().any(|e: &treewalk::DirEntry| e.name == n);
        let git_dir = gitstate::is_git_dir(base, has);
        let mut node = Node { id, subdirs: Vec::new(), marks: Vec::new() };
        for e in entries {
            let role = gitstate::role_of(base, git_dir, &e.name, e.ty)
                .or_else(|| self.extra_hooks.contains(&e.name).then_some(Role::GitHooks))
                .or_else(|| in_home.iter().any(|h| gitstate::home_startup_typed(h, &e.name, e.ty)).then_some(Role::Startup));
            if let Some(r) = role {
                node.marks.push((e.name.clone().into_boxed_slice(), r));
            }
            if e.ty == Type::Dir {
                node.subdirs.push(Sub { name: e.name.into_boxed_slice(), node: NOT_SCANNED });
            }
        }
        Some(node)
    }

    /// Visit the open directory `fd` at `rel`: its node (cached or read),
    /// its marked entries, and jobs for its subdirectories.
    #[allow(clippy::too_many_arguments)]
    fn visit(&self, fd: Arc<OwnedFd>, rel: &Path, id: DirId, cached: Option<u32>, depth: usize, buf: &mut [u8], f: &mut Found) -> Option<u32> {
        let raw = fd.as_raw_fd();
        let mut node = match cached.filter(|&i| self.trusted(i, &id)) {
            Some(i) => self.take_cached(i),
            None => {
                let mut n = self.read(raw, rel, id, buf, f)?;
                // Subdirectories of a re-read directory may still match cached nodes.
                if let Some((_, nodes)) = cached.and(self.cache.as_ref()) {
                    if let Ok(old) = nodes[cached.unwrap() as usize].lock() {
                        for s in &mut n.subdirs {
                            if let Some(o) = old.subdirs.iter().find(|o| o.name == s.name) {
                                s.node = o.node;
                            }
                        }
                    }
                }
                n
            }
        };
        for (name, role) in &node.marks {
            if let Some(e) = entry_at(raw, &self.root.join(rel).join(OsStr::from_bytes(name)), name, *role) {
                f.entries.push(e);
            }
        }
        let idx = self.next.fetch_add(1, Ordering::Relaxed);
        let mut jobs = Vec::new();
        let deep = depth + 1 >= FD_DEPTH;
        for (i, sub) in node.subdirs.iter_mut().enumerate() {
            let cached_child = (sub.node != NOT_SCANNED && cached.is_some()).then_some(sub.node);
            sub.node = NOT_SCANNED;
            if !self.skip.is_empty() && self.skipped(&rel.join(OsStr::from_bytes(&sub.name))) {
                continue;
            }
            let Some(st) = fstatat(raw, &sub.name) else {
                // Gone meanwhile is fine; anything else hides what is below.
                if crate::layers::sys::errno() != libc::ENOENT {
                    f.unreadable.push(self.root.join(rel).join(OsStr::from_bytes(&sub.name)));
                }
                continue;
            };
            if !is_dir(&st) {
                continue; // replaced meanwhile: not a directory any more
            }
            f.dirs += 1;
            // An unchanged leaf without marks costs nothing more.
            if let Some(n) = cached_child.and_then(|ci| self.take_if_bare_leaf(ci, &dir_id(&st))) {
                let cidx = self.next.fetch_add(1, Ordering::Relaxed);
                f.nodes.push((cidx, n));
                f.links.push((idx, i, cidx));
                continue;
            }
            jobs.push(Job {
                parent: (!deep).then(|| fd.clone()),
                name: sub.name.clone(),
                rel: rel.join(OsStr::from_bytes(&sub.name)),
                st,
                link: (idx, i),
                cached: cached_child,
                depth: depth + 1,
            });
        }
        f.nodes.push((idx, node));
        self.push(jobs);
        Some(idx)
    }

    /// One job: open the directory (checking it is still the one seen) and visit it.
    fn run_job(&self, j: Job, buf: &mut [u8], f: &mut Found) {
        let parent_owned;
        let pfd = match &j.parent {
            Some(p) => p.as_raw_fd(),
            None => {
                let parent_rel = j.rel.parent().unwrap_or(Path::new(""));
                parent_owned = path_fd_beneath(self.root_fd, parent_rel);
                match &parent_owned {
                    Some(p) => p.as_raw_fd(),
                    None => {
                        f.unreadable.push(self.root.join(&j.rel));
                        return;
                    }
                }
            }
        };
        // An unchanged directory is not read: a path descriptor will do
        // (cheaper, and it needs no read right on the directory).
        let unchanged = j.cached.is_some_and(|ci| self.trusted(ci, &dir_id(&j.st)));
        let opened = if unchanged { openat(pfd, &j.name, libc::O_PATH).map(|f| (f, None)) } else { self.open_readable(pfd, &j.name) };
        let (fd, restore) = match opened {
            Ok(x) => x,
            Err(_) => {
                f.unreadable.push(self.root.join(&j.rel));
                return;
            }
        };
        // The entry must still be the directory `fstatat` saw.
        let (fd, restore, id, cached) = match fstat(fd.as_raw_fd()) {
            Some(s) if s.st_ino == j.st.st_ino && s.st_dev == j.st.st_dev && restore.is_none() => (fd, restore, dir_id(&j.st), j.cached),
            // Replaced (or opened up) meanwhile: read it as it is now.
            Some(_) if unchanged => match self.open_readable(pfd, &j.name) {
                Ok((fd, restore)) => match fstat(fd.as_raw_fd()) {
                    Some(s) => (fd, restore, dir_id(&s), None),
                    None => return,
                },
                Err(_) => {
                    f.unreadable.push(self.root.join(&j.rel));
                    return;
                }
            },
            Some(s) => (fd, restore, dir_id(&s), None),
            None => return,
        };
        if let (Some(mode), Some(p)) = (restore, &j.parent) {
            f.restore.push(Restore { depth: j.depth, parent: p.clone(), name: j.name.clone(), mode });
        } else if let Some(mode) = restore {
            // Opened from the root by path: restore through a fresh parent.
            if let Some(p) = path_fd_beneath(self.root_fd, j.rel.parent().unwrap_or(Path::new(""))) {
                f.restore.push(Restore { depth: j.depth, parent: Arc::new(p), name: j.name.clone(), mode });
            }
        }
        match self.visit(Arc::new(fd), &j.rel, id, cached, j.depth, buf, f) {
            Some(idx) => f.links.push((j.link.0, j.link.1, idx)),
            None => f.unreadable.push(self.root.join(&j.rel)),
        }
    }

    fn worker(&self) -> Found {
        let mut f = Found::default();
        let mut buf = vec![0u8; 32 * 1024];
        while let Some(j) = self.pop() {
            self.run_job(j, &mut buf, &mut f);
            self.done();
        }
        f
    }
}

/// An `O_PATH` descriptor of `rel` below `root`, no symlink followed, any
/// length (one component at a time when long: see `layers::sys`).
fn path_fd_beneath(root: RawFd, rel: &Path) -> Option<OwnedFd> {
    let c = std::ffi::CString::new(rel.as_os_str().as_bytes()).ok()?;
    let fd = crate::layers::sys::open_beneath(root, &c).ok()?;
    // SAFETY: a fresh descriptor we own.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// One writable root to walk.
pub(super) struct Root<'a> {
    pub path: &'a Path,
    /// Home directories inside it, relative.
    pub homes: &'a [PathBuf],
    pub fd: OwnedFd,
    /// Hidden paths and other roots inside it, relative.
    pub skip: &'a [PathBuf],
    /// Its last scan, and whether its filesystem keeps `ctime` faithfully.
    pub cache: Option<Tree>,
    pub trust: bool,
    pub extra_hooks: &'a [Vec<u8>],
    /// Wall-clock seconds when this scan started.
    pub started: i64,
}

/// Walk one writable root.
pub(super) fn walk_root(r: Root, out: &mut Scan) -> Tree {
    let Root { path: root, homes, fd: root_fd, skip, cache, trust, extra_hooks, started } = r;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let size_hint = cache.as_ref().map(|t| t.nodes.len());
    let sh = Shared {
        root,
        homes,
        root_fd: root_fd.as_raw_fd(),
        skip,
        cache: cache.map(|t| (t.scanned_at, t.nodes.into_iter().map(Mutex::new).collect())),
        trust,
        extra_hooks,
        euid,
        next: AtomicU32::new(0),
        queue: Mutex::new(Queue::default()),
        ready: Condvar::new(),
    };
    let mut tree = Tree { root: root.to_path_buf(), rules: 0, scanned_at: started, nodes: Vec::new() };
    let Some(st) = fstat(root_fd.as_raw_fd()) else { return tree };
    let root_fd = Arc::new(root_fd);
    let mut first = Found { dirs: 1, ..Found::default() };
    let mut buf = vec![0u8; 32 * 1024];
    let root_cached = size_hint.filter(|&n| n > 0).map(|_| 0u32);
    if sh.visit(root_fd.clone(), Path::new(""), dir_id(&st), root_cached, 0, &mut buf, &mut first).is_none() {
        out.unreadable.push(root.to_path_buf());
        return tree;
    }
    let threads = if size_hint.is_none_or(|n| n >= PARALLEL_FROM) { std::thread::available_parallelism().map_or(1, |n| n.get()).min(4) } else { 1 };
    let mut founds = vec![first];
    if threads > 1 {
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(|| sh.worker())).collect();
            founds.push(sh.worker());
            for h in helpers {
                founds.push(h.join().unwrap_or_default());
            }
        });
    } else {
        founds.push(sh.worker());
    }
    // Assemble: nodes by index, then the parent-to-child links.
    let n = sh.next.load(Ordering::Relaxed) as usize;
    tree.nodes = (0..n).map(|_| Node::default()).collect();
    let mut restore = Vec::new();
    for f in &mut founds {
        for (i, node) in f.nodes.drain(..) {
            tree.nodes[i as usize] = node;
        }
    }
    for f in founds {
        for (parent, i, child) in f.links {
            if let Some(s) = tree.nodes.get_mut(parent as usize).and_then(|p| p.subdirs.get_mut(i)) {
                s.node = child;
            }
        }
        out.entries.extend(f.entries);
        out.unreadable.extend(f.unreadable);
        out.dirs += f.dirs;
        out.read += f.read;
        restore.extend(f.restore);
    }
    // Modes back, deepest first (a parent opened up is still needed to reach its child).
    restore.sort_by_key(|r| std::cmp::Reverse(r.depth));
    for r in restore {
        let c = cstr(&r.name);
        // SAFETY: put back the mode of a directory we opened up for the scan.
        unsafe { libc::fchmodat(r.parent.as_raw_fd(), c.as_ptr(), r.mode, 0) };
    }
    tree
}
