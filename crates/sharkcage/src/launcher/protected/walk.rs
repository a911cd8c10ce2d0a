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
//! anything else becomes a job. A directory of the last scan keeps its
//! node's slot (an unchanged one is not even copied: the last scan's tree
//! becomes this one in place), a new one gets the next free index, and the
//! links from parents that changed are patched in at the end.
//!
//! An unchanged directory with few subdirectories is not opened at all: its
//! subdirectories and marked entries are looked at by a short path from the
//! nearest opened ancestor ([`At`]), which saves an open, an `fstat` and a
//! close per directory (most of a `node_modules` tree). Such a lookup may
//! pass a symlink planted meanwhile on the way: what it finds is trusted
//! only when it is the very directory of the last scan (device, inode and
//! change time), and anything to read or open is opened without following
//! any symlink.
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

use super::{dir_id, entry_at, fstat, fstatat, is_dir, openat, DirId, Entry, Node, Scan, Sub, Tree, NOT_SCANNED};
use crate::gitstate::{self, Role};
use crate::treewalk::{self, Type};

/// Levels that keep a descriptor open; deeper ones reopen from the root.
pub const FD_DEPTH: usize = 128;
/// Trees with fewer directories (by their last scan) are walked on one thread.
const PARALLEL_FROM: usize = 2000;
/// An unchanged directory with this many subdirectories or more is opened
/// (one open costs about what 20 longer lookups do).
const OPEN_FROM: usize = 8;
/// At most this many components from an opened ancestor.
const VIA_MAX: usize = 4;

/// A directory as reached: a descriptor and the path below it (empty: the
/// descriptor is the directory itself).
#[derive(Clone)]
struct At {
    fd: Arc<OwnedFd>,
    via: Box<[u8]>,
}

impl At {
    /// The path of `name` in this directory, from `fd`.
    fn join(&self, name: &[u8]) -> Box<[u8]> {
        if self.via.is_empty() {
            return name.into();
        }
        let mut v = Vec::with_capacity(self.via.len() + 1 + name.len());
        v.extend_from_slice(&self.via);
        v.push(b'/');
        v.extend_from_slice(name);
        v.into()
    }

    fn components(&self) -> usize {
        if self.via.is_empty() { 0 } else { 1 + self.via.iter().filter(|&&c| c == b'/').count() }
    }

    /// A descriptor of the directory itself (`O_PATH`, opened without
    /// following any symlink when reached by a path), checked to be `id`.
    fn real(&self, id: &DirId) -> Option<Arc<OwnedFd>> {
        if self.via.is_empty() {
            return Some(self.fd.clone());
        }
        let fd = path_fd_beneath(self.fd.as_raw_fd(), Path::new(OsStr::from_bytes(&self.via)))?;
        let st = fstat(fd.as_raw_fd())?;
        (st.st_dev == id.dev && st.st_ino == id.ino).then(|| Arc::new(fd))
    }
}

/// A directory to visit.
struct Job {
    /// The parent's descriptor (None: reopen by `rel` from the root), or
    /// an opened ancestor's when `via` is set.
    parent: Option<Arc<OwnedFd>>,
    name: Box<[u8]>,
    /// An unchanged directory's path from the ancestor `parent` (see [`At`]).
    via: Option<Box<[u8]>>,
    /// Unchanged with few subdirectories: visited through `via`, not opened.
    light: bool,
    rel: PathBuf,
    /// What `fstatat` saw from the parent.
    st: libc::stat,
    /// The parent's node, the index of this entry in its `subdirs`, and
    /// the node that entry names now.
    link: (u32, usize, u32),
    /// This directory's node in the cached tree.
    cached: Option<u32>,
    depth: usize,
}

/// A directory opened up for the scan, to get its mode back.
struct Restore {
    depth: usize,
    parent: Arc<OwnedFd>,
    name: Box<[u8]>,
    /// The directory's device and inode: only that one gets its mode back.
    id: (u64, u64),
    mode: u32,
}

/// What one thread found.
#[derive(Default)]
struct Found {
    /// Nodes read (new or changed directories), by index.
    nodes: Vec<(u32, Node)>,
    /// Links that change: parent node, index in its `subdirs`, child node.
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
    /// The last scan's start, when there is one.
    scanned_at: Option<i64>,
    /// The last scan's nodes, which become this scan's: a directory keeps
    /// its slot (see `walk_root`). Only read during the walk: after the
    /// sandbox was cloned, every page written costs a copy-on-write fault.
    nodes: Vec<Node>,
    /// Slots below this index are the last scan's.
    base: u32,
    trust: bool,
    extra_hooks: &'a [Vec<u8>],
    euid: u32,
    /// The next index for a directory the last scan did not have.
    next: AtomicU32,
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared<'_> {
    /// The cached node `i`, if it shows the directory `id` unchanged.
    fn trusted(&self, i: u32, id: &DirId) -> bool {
        self.cached_is(i, |n| self.unchanged(n, id))
    }

    fn unchanged(&self, n: &Node, id: &DirId) -> bool {
        self.trust && self.scanned_at.is_some_and(|at| n.id == *id && n.id.ctime.0 <= at - 2)
    }

    /// Whether the cached node `i` exists and satisfies `pred`.
    fn cached_is(&self, i: u32, pred: impl FnOnce(&Node) -> bool) -> bool {
        self.cached(i).is_some_and(pred)
    }

    fn cached(&self, i: u32) -> Option<&Node> {
        if i < self.base { self.nodes.get(i as usize) } else { None }
    }

    /// The cached node `i` shows the directory `id` unchanged and has
    /// neither subdirectories nor marks (nothing more to look at): it stays
    /// as it is, in its slot.
    fn bare_leaf(&self, i: u32, id: &DirId) -> bool {
        self.cached_is(i, |n| self.unchanged(n, id) && n.subdirs.is_empty() && n.marks.is_empty())
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
        let id = (st.st_dev, st.st_ino);
        if !chmod_dir_at(dir, name, id, mode | 0o500) {
            return Err(libc::EACCES);
        }
        match openat(dir, name, libc::O_RDONLY) {
            Ok(f) if fstat(f.as_raw_fd()).is_some_and(|s| (s.st_dev, s.st_ino) == id) => Ok((f, Some(mode))),
            other => {
                chmod_dir_at(dir, name, id, mode);
                Err(other.err().unwrap_or(libc::EACCES))
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
        let dir_full = (!self.extra_hooks.is_empty()).then(|| self.root.join(rel));
        for e in entries {
            let role = gitstate::role_of(base, git_dir, &e.name, e.ty)
                .or_else(|| dir_full.as_deref().is_some_and(|d| gitstate::named_hooks(self.extra_hooks, d, &e.name)).then_some(Role::GitHooks))
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
    fn visit(&self, at: At, rel: &Path, id: DirId, cached: Option<u32>, depth: usize, buf: &mut [u8], f: &mut Found) -> Option<u32> {
        let raw = at.fd.as_raw_fd();
        // Unchanged: the last scan's node, read where it is; else read now.
        let fresh = match cached.filter(|&i| self.trusted(i, &id)) {
            Some(_) => None,
            None => {
                // Read only through a descriptor of the directory itself.
                if !at.via.is_empty() {
                    return None;
                }
                let mut n = self.read(raw, rel, id, buf, f)?;
                // Subdirectories of a re-read directory may still match cached nodes.
                if let Some(old) = cached.and_then(|i| self.cached(i)) {
                    for s in &mut n.subdirs {
                        if let Some(o) = old.subdirs.iter().find(|o| o.name == s.name) {
                            s.node = o.node;
                        }
                    }
                }
                Some(n)
            }
        };
        let node = match (&fresh, cached.and_then(|i| self.cached(i))) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => return None,
        };
        for (name, role) in &node.marks {
            if let Some(e) = entry_at(raw, &self.root.join(rel).join(OsStr::from_bytes(name)), &at.join(name), *role) {
                f.entries.push(e);
            }
        }
        // A directory of the last scan keeps its slot (decoding made sure
        // each slot has one parent); a new one gets the next free index.
        let idx = cached.filter(|&i| i < self.base).unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed));
        let mut jobs = Vec::new();
        let deep = depth + 1 >= FD_DEPTH;
        // This directory's own descriptor, opened when a subdirectory needs it.
        let mut real: Option<Option<Arc<OwnedFd>>> = None;
        for (i, sub) in node.subdirs.iter().enumerate() {
            let cached_child = (sub.node != NOT_SCANNED && cached.is_some()).then_some(sub.node);
            // Not examined: no node (links are recorded where they change).
            let none = |f: &mut Found| {
                if sub.node != NOT_SCANNED {
                    f.links.push((idx, i, NOT_SCANNED));
                }
            };
            if !self.skip.is_empty() && self.skipped(&rel.join(OsStr::from_bytes(&sub.name))) {
                none(f);
                continue;
            }
            let Some(st) = fstatat(raw, &at.join(&sub.name)) else {
                // Gone meanwhile is fine; anything else hides what is below.
                if crate::layers::sys::errno() != libc::ENOENT {
                    f.unreadable.push(self.root.join(rel).join(OsStr::from_bytes(&sub.name)));
                }
                none(f);
                continue;
            };
            if !is_dir(&st) {
                none(f);
                continue; // replaced meanwhile: not a directory any more
            }
            f.dirs += 1;
            // An unchanged leaf without marks costs nothing more (its node
            // stays where it is, and so does the link to it).
            if cached_child.is_some_and(|ci| self.bare_leaf(ci, &dir_id(&st))) {
                continue;
            }
            // Unchanged: reached by a path from the nearest opened ancestor,
            // and not opened at all when it has few subdirectories. Anything
            // else is opened below its own parent.
            let unchanged = cached_child.filter(|&ci| !deep && at.components() < VIA_MAX && self.trusted(ci, &dir_id(&st)));
            let light = unchanged.is_some_and(|ci| self.few_subdirs(ci));
            let (parent, via) = if deep {
                (None, None)
            } else if unchanged.is_some() && !at.via.is_empty() {
                (Some(at.fd.clone()), Some(at.join(&sub.name)))
            } else if at.via.is_empty() {
                (Some(at.fd.clone()), None)
            } else {
                match real.get_or_insert_with(|| at.real(&id)) {
                    Some(p) => (Some(p.clone()), None),
                    None => {
                        // Replaced since it was looked at: examined by the next scan.
                        f.unreadable.push(self.root.join(rel).join(OsStr::from_bytes(&sub.name)));
                        none(f);
                        continue;
                    }
                }
            };
            jobs.push(Job {
                parent,
                via,
                light,
                name: sub.name.clone(),
                rel: rel.join(OsStr::from_bytes(&sub.name)),
                st,
                link: (idx, i, sub.node),
                cached: cached_child,
                depth: depth + 1,
            });
        }
        if let Some(n) = fresh {
            f.nodes.push((idx, n));
        }
        self.push(jobs);
        Some(idx)
    }

    /// Whether the cached node `i` has few enough subdirectories to be
    /// visited without opening.
    fn few_subdirs(&self, i: u32) -> bool {
        self.cached_is(i, |n| n.subdirs.len() < OPEN_FROM)
    }

    /// One job: open the directory (checking it is still the one seen) and visit it.
    fn run_job(&self, j: Job, buf: &mut [u8], f: &mut Found) {
        let (parent, i, was) = j.link;
        let rel = j.rel.clone();
        let idx = self.open_job(j, f).and_then(|(at, id, cached, depth)| self.visit(at, &rel, id, cached, depth, buf, f));
        if idx.is_none() {
            f.unreadable.push(self.root.join(&rel));
        }
        let now = idx.unwrap_or(NOT_SCANNED);
        if now != was {
            f.links.push((parent, i, now));
        }
    }

    /// Where the job's directory is to be visited from: itself opened
    /// (checked to be the directory `fstatat` saw, else read as it is now),
    /// or, when light, its path from an ancestor.
    fn open_job(&self, j: Job, f: &mut Found) -> Option<(At, DirId, Option<u32>, usize)> {
        let seen = dir_id(&j.st);
        if let (true, Some(a), Some(via)) = (j.light, &j.parent, &j.via) {
            return Some((At { fd: a.clone(), via: via.clone() }, seen, j.cached, j.depth));
        }
        // An unchanged directory is not read: a path descriptor will do
        // (cheaper, and it needs no read right on the directory).
        let unchanged = j.cached.is_some_and(|ci| self.trusted(ci, &seen));
        let same = |fd: &OwnedFd| fstat(fd.as_raw_fd()).is_some_and(|s| s.st_ino == j.st.st_ino && s.st_dev == j.st.st_dev);
        if let (true, Some(a), Some(via)) = (unchanged, &j.parent, &j.via) {
            // From the ancestor by its path, no symlink followed.
            if let Some(fd) = path_fd_beneath(a.as_raw_fd(), Path::new(OsStr::from_bytes(via))).filter(|fd| same(fd)) {
                return Some((At { fd: Arc::new(fd), via: Box::default() }, seen, j.cached, j.depth));
            }
        }
        // Below its own parent: given, or opened now (from the ancestor, or
        // from the root for a deep one).
        let parent = match (&j.parent, &j.via) {
            (Some(p), None) => p.clone(),
            (Some(a), Some(via)) => Arc::new(path_fd_beneath(a.as_raw_fd(), Path::new(OsStr::from_bytes(via)).parent().unwrap_or(Path::new("")))?),
            (None, _) => Arc::new(path_fd_beneath(self.root_fd, j.rel.parent().unwrap_or(Path::new("")))?),
        };
        let pfd = parent.as_raw_fd();
        // Reached by a path but not the directory seen: read as it is now.
        let unchanged = unchanged && j.via.is_none();
        let (fd, restore) = if unchanged { openat(pfd, &j.name, libc::O_PATH).map(|f| (f, None)) } else { self.open_readable(pfd, &j.name) }.ok()?;
        // The entry must still be the directory `fstatat` saw.
        let (fd, restore, id, cached) = if same(&fd) && restore.is_none() && j.via.is_none() {
            (fd, restore, seen, j.cached)
        } else if unchanged {
            // Replaced meanwhile: read it as it is now.
            let (fd, restore) = self.open_readable(pfd, &j.name).ok()?;
            let s = fstat(fd.as_raw_fd())?;
            (fd, restore, dir_id(&s), None)
        } else {
            let s = fstat(fd.as_raw_fd())?;
            (fd, restore, dir_id(&s), None)
        };
        if let (Some(mode), Some(s)) = (restore, fstat(fd.as_raw_fd())) {
            f.restore.push(Restore { depth: j.depth, parent, name: j.name.clone(), id: (s.st_dev, s.st_ino), mode });
        }
        Some((At { fd: Arc::new(fd), via: Box::default() }, id, cached, j.depth))
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
    let (scanned_at, nodes) = cache.map_or((None, Vec::new()), |t| (Some(t.scanned_at), t.nodes));
    let base = nodes.len() as u32;
    let sh = Shared {
        root,
        homes,
        root_fd: root_fd.as_raw_fd(),
        skip,
        scanned_at,
        nodes,
        base,
        trust,
        extra_hooks,
        euid,
        next: AtomicU32::new(base),
        queue: Mutex::new(Queue::default()),
        ready: Condvar::new(),
    };
    let mut tree = Tree { root: root.to_path_buf(), rules: 0, scanned_at: started, nodes: Vec::new() };
    let Some(st) = fstat(root_fd.as_raw_fd()) else { return tree };
    let root_fd = Arc::new(root_fd);
    let mut first = Found { dirs: 1, ..Found::default() };
    let mut buf = vec![0u8; 32 * 1024];
    let root_cached = size_hint.filter(|&n| n > 0).map(|_| 0u32);
    if sh.visit(At { fd: root_fd.clone(), via: Box::default() }, Path::new(""), dir_id(&st), root_cached, 0, &mut buf, &mut first).is_none() {
        out.unreadable.push(root.to_path_buf());
        return tree;
    }
    // One thread more than CPUs, up to 4: the walk is system calls and hand-offs
    // through the queue, and a spare thread keeps every CPU busy while one
    // waits (measured on 2 CPUs: 18–20 ms added for 10 000 directories with
    // 3 threads, 25–27 ms with 2, in the same minutes).
    let threads = if size_hint.is_none_or(|n| n >= PARALLEL_FROM) { (std::thread::available_parallelism().map_or(1, |n| n.get()) + 1).min(4) } else { 1 };
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
    // Assemble in place: the last scan's nodes stay in their slots (those
    // of directories gone are left unreachable; `scancache::encode` drops
    // them), nodes read again replace theirs, new ones follow in index
    // order; then the links that changed.
    let mut nodes = sh.nodes;
    let mut read: Vec<(u32, Node)> = founds.iter_mut().flat_map(|f| f.nodes.drain(..)).collect();
    read.sort_unstable_by_key(|(i, _)| *i);
    for (i, node) in read {
        match nodes.get_mut(i as usize) {
            Some(slot) => *slot = node,
            None => {
                nodes.resize_with(i as usize, Node::default); // not expected: new indices are dense
                nodes.push(node);
            }
        }
    }
    let mut restore = Vec::new();
    for f in founds {
        for (parent, i, child) in f.links {
            if let Some(s) = nodes.get_mut(parent as usize).and_then(|p| p.subdirs.get_mut(i)) {
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
    tree.nodes = nodes;
    restore.sort_by_key(|r| std::cmp::Reverse(r.depth));
    for r in restore {
        chmod_dir_at(r.parent.as_raw_fd(), &r.name, r.id, r.mode);
    }
    tree
}

/// `chmod` of the directory `name` below `dir` if it still is the
/// directory `id` (device, inode): through an `O_PATH` descriptor of it
/// (no symlink followed), so a name a sandbox swapped for a symlink to a
/// file elsewhere never gets that mode.
fn chmod_dir_at(dir: RawFd, name: &[u8], id: (u64, u64), mode: u32) -> bool {
    let Ok(fd) = openat(dir, name, libc::O_PATH) else { return false };
    fstat(fd.as_raw_fd()).is_some_and(|s| (s.st_dev, s.st_ino) == id) && crate::fileio::chmod_fd(fd.as_raw_fd(), mode).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_mode_goes_back_only_to_the_directory_opened_up_never_through_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(d.path()).unwrap();
        let sub = d.path().join("d");
        std::fs::create_dir(&sub).unwrap();
        let m = std::fs::metadata(&sub).unwrap();
        let id = (m.dev(), m.ino());
        // The directory itself: changed.
        assert!(chmod_dir_at(dir.as_raw_fd(), b"d", id, 0o711));
        assert_eq!(std::fs::metadata(&sub).unwrap().mode() & 0o7777, 0o711);
        // Renamed away and a symlink to a file outside put in its place (a
        // concurrent sandbox): neither the file nor the moved directory changes.
        let victim = d.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&sub, d.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&victim, &sub).unwrap();
        assert!(!chmod_dir_at(dir.as_raw_fd(), b"d", id, 0o777));
        assert_eq!(std::fs::metadata(&victim).unwrap().mode() & 0o7777, 0o600);
        // Another directory under the same name: not the one opened up.
        std::fs::remove_file(&sub).unwrap();
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!chmod_dir_at(dir.as_raw_fd(), b"d", id, 0o777));
        assert_eq!(std::fs::metadata(&sub).unwrap().mode() & 0o7777, 0o700);
    }
}
