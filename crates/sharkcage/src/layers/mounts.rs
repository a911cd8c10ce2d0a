//! The sandbox's filesystem view, built in a private mount namespace.
//!
//! What the command sees:
//! * the host's root, **read-only**, `nosuid`, `nodev` (one recursive bind
//!   and one recursive `mount_setattr`);
//! * writable roots (the workspace, `allowWrite`) bound read-write on top;
//! * hidden paths (mandatory secrets, `denyRead`): an empty read-only tmpfs
//!   over a directory, an empty mode-000 file over a file; `allowRead`
//!   re-binds read-only inside them;
//! * protected paths inside writable roots (`.git/hooks`, `.bashrc`, …,
//!   `denyWrite`) bound read-only onto themselves; every directory between
//!   the writable root and a protected path becomes a mount point ("pin"), so
//!   renaming a parent fails with EBUSY instead of moving the protection away;
//! * one private tmpfs of `tmpfsBytes` behind `/tmp`, `/var/tmp` and
//!   `/dev/shm` (a subdirectory of it bound to each), so the three together
//!   hold at most `tmpfsBytes` — and at most `tmpfsBytes` / 4096 inodes, since
//!   an inode costs kernel memory that `size` does not count;
//! * a minimal `/dev` (null, zero, full, random, urandom, tty, a private
//!   devpts), read-only;
//! * a fresh `/proc` for the sandbox's PID namespace with `/proc/sys`,
//!   `/proc/sysrq-trigger`, `/proc/irq`, `/proc/bus`, `/proc/fs` read-only and
//!   `/proc/kcore`, `/proc/keys`, `/proc/timer_list`, … masked (Docker's
//!   lists); `/sys` read-only with `/sys/firmware` masked.
//!
//! Ordering: all user-visible path operations are sorted by depth, shallow
//! first, so a deeper rule always lands on top of a shallower one (a hidden
//! directory inside a writable root stays hidden; a workspace inside a hidden
//! directory is visible; a protected file inside a workspace is read-only).
//! Ties on one path resolve write < hide < allowRead < pin < protect.
//!
//! Step order in the child (after `clone`, before anything else runs):
//! 1. make every mount private (no propagation back to the host);
//! 2. mount a tmpfs staging root on `/tmp`, `pivot_root` into it, so the host
//!    is at `/oldroot` and the new view is assembled at `/newroot`; mount the
//!    shared tmpfs at `/shared` in it, with one mode-1777 subdirectory per
//!    private place;
//! 3. bind `/oldroot` → `/newroot` recursively and make it read-only;
//! 4. the sorted path operations;
//! 5. `/dev`, `/proc`, `/sys` masks;
//! 6. `pivot_root` into `/newroot` and detach the staging root and the host.
//!
//! Nothing is ever created on the host: mount points that do not exist are
//! made only inside the private tmpfs mounts.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::sys::{self, SysResult};

const MS_BIND: libc::c_ulong = libc::MS_BIND;
const MS_REC: libc::c_ulong = libc::MS_REC;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// A path operation, in host coordinates (resolved, absolute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathOp {
    /// A subdirectory of the shared private tmpfs (only `/tmp`, `/var/tmp`).
    PrivateTmp(PathBuf),
    /// Bind read-only so that an idmapped view makes it reachable (the home
    /// directory, or a working directory under a skeleton, for a shifted
    /// root caller).
    ExposeRo(PathBuf),
    /// Replace a directory that the sandbox's identity cannot search (on
    /// the way to a place it works in, for a shifted root caller) by an
    /// empty tmpfs that holds only the mount points down to those places,
    /// sealed read-only: the path becomes searchable, the directory's other
    /// contents stay out of view.
    Skeleton(PathBuf),
    /// The home directory as an overlay: the host's home read-only under
    /// the call's private layer (`MountInputs::home_layer`), writable.
    HomeLayer(PathBuf),
    /// Bind read-write.
    Write(PathBuf),
    /// Hide a directory (empty read-only tmpfs).
    HideDir(PathBuf),
    /// Hide a file (empty mode-000 file).
    HideFile(PathBuf),
    /// Re-expose read-only inside a hidden region.
    AllowRead(PathBuf),
    /// Make a directory a mount point (read-write) so it cannot be renamed.
    Pin(PathBuf),
    /// Read-only self-bind.
    Protect(PathBuf),
    /// A read-only file with prepared content (`MountInputs::contents`) in
    /// place of a config file (a credential-free copy, on top of its hiding).
    Content(PathBuf),
}

impl PathOp {
    pub fn path(&self) -> &Path {
        match self {
            PathOp::PrivateTmp(p)
            | PathOp::ExposeRo(p)
            | PathOp::Skeleton(p)
            | PathOp::HomeLayer(p)
            | PathOp::Write(p)
            | PathOp::HideDir(p)
            | PathOp::HideFile(p)
            | PathOp::AllowRead(p)
            | PathOp::Pin(p)
            | PathOp::Protect(p)
            | PathOp::Content(p) => p,
        }
    }
    fn rank(&self) -> u8 {
        match self {
            PathOp::PrivateTmp(_) => 0,
            PathOp::ExposeRo(_) | PathOp::Skeleton(_) | PathOp::HomeLayer(_) => 0,
            PathOp::Write(_) => 1,
            PathOp::HideDir(_) | PathOp::HideFile(_) => 2,
            PathOp::AllowRead(_) => 3,
            PathOp::Pin(_) => 4,
            PathOp::Protect(_) => 5,
            PathOp::Content(_) => 6,
        }
    }
}

/// Sort operations: shallow first; on one path, by rank. Duplicate
/// operations are removed.
pub fn order(mut ops: Vec<PathOp>) -> Vec<PathOp> {
    ops.sort_by(|a, b| {
        let da = a.path().components().count();
        let db = b.path().components().count();
        da.cmp(&db).then(a.path().cmp(b.path())).then(a.rank().cmp(&b.rank()))
    });
    ops.dedup();
    ops
}

/// One prepared step for the child. Everything is a C string already.
#[derive(Debug)]
enum Step {
    /// Bind a host path (relative to `/oldroot`) onto a path (relative to
    /// `/newroot`), both resolved with `openat2(RESOLVE_NO_SYMLINKS |
    /// RESOLVE_BENEATH)` and joined with `open_tree` + `move_mount`, so a
    /// symlink swapped in after planning cannot redirect either end.
    /// With `from_parent`, the detached (idmapped) mount comes from the
    /// launcher over the id socket instead of being cloned here.
    BindHost { src: CString, dst: CString, recursive: bool, set: u64, from_parent: bool },
    /// Bind a subdirectory of the shared tmpfs (relative to the staging
    /// root) onto a path relative to `/newroot`.
    BindShared { sub: CString, dst: CString },
    /// A new tmpfs on a path relative to `/newroot` (resolved the same way).
    Tmpfs { dst: CString, size: CString, mode: CString, nr_inodes: Option<CString>, attrs: u64 },
    /// Make the tmpfs mounted at a path (relative to `/newroot`) read-only,
    /// after mount points were created in it.
    SealRo { dst: CString },
    /// The staging root's empty mode-000 file, read-only, on a path relative to `/newroot`.
    HideFile { dst: CString },
    /// Mount the home overlay (see [`overlay_home`]): `lower` (the host's
    /// home) and `state` (the layer's directory, holding `upper` and
    /// `work`) are host paths relative to `/oldroot`, or with `from_parent`
    /// two idmapped mounts from the launcher, in that order.
    /// `mask`: the home's mask layer (`MountInputs::home_mask`), prepared.
    Overlay { lower: CString, state: CString, dst: CString, from_parent: bool, mask: PreparedMask },
    /// Write `data` to a new file `stage` in the staging root and bind it,
    /// read-only, on a path relative to `/newroot`.
    Content { stage: CString, data: Vec<u8>, dst: CString },
    Mkdir(CString),
    Touch(CString),
    Symlink(CString, CString),
    Mount { src: Option<CString>, dst: CString, fstype: Option<CString>, flags: libc::c_ulong, data: Option<CString> },
    SetAttr { path: CString, recursive: bool, set: u64, clear: u64 },
    Remount { path: CString, flags: libc::c_ulong },
}

/// The prepared mount plan.
#[derive(Debug)]
pub struct MountPlan {
    steps: Vec<Step>,
    /// Where the staging tmpfs goes (`/tmp`, in our private mount namespace).
    stage: CString,
    stage_opts: CString,
    /// The shared private tmpfs: options, and its subdirectories (relative
    /// to the staging root), one per private place.
    shared_opts: CString,
    shared_dirs: Vec<CString>,
    old: CString,
    new: CString,
    cwd: CString,
    dot: CString,
    root: CString,
    /// Mount points in the final view that are private and writable: the
    /// tmpfs mounts and the home overlay (for Landlock).
    pub private_writable: Vec<PathBuf>,
    /// Files whose content the plan prepared (`PathOp::Content`): readable
    /// (for Landlock, which would otherwise refuse them as hidden).
    pub prepared_files: Vec<PathBuf>,
    /// Host binds the launcher prepares as idmapped detached mounts, in the
    /// order the child receives them (shifted root callers only).
    pub parent_binds: Vec<ParentBind>,
}

/// One idmapped bind the launcher makes: host path and mount attributes.
#[derive(Debug, Clone)]
pub struct ParentBind {
    pub src: PathBuf,
    pub set: u64,
}

pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

const STAGE: &str = "/tmp";
/// Where the shared private tmpfs is mounted in the staging root.
const SHARED: &str = "shared";

/// The shared tmpfs's subdirectory for a private place: `/var/tmp` →
/// `shared/var-tmp`.
fn shared_sub(p: &Path) -> CString {
    let name = p.to_string_lossy().trim_start_matches('/').replace('/', "-");
    c(format!("{SHARED}/{name}"))
}

fn c(p: impl AsRef<[u8]>) -> CString {
    CString::new(p.as_ref().to_vec()).expect("paths were checked for NUL bytes")
}

/// `p` without its leading `/` (empty for `/`), for `openat2` below a root fd.
fn rel(p: &Path) -> CString {
    c(p.strip_prefix("/").unwrap_or(p).as_os_str().as_bytes())
}

fn newroot(p: &Path) -> CString {
    let mut v = b"/newroot".to_vec();
    if p != Path::new("/") {
        v.extend_from_slice(p.as_os_str().as_bytes());
    }
    c(v)
}

/// Inputs for [`MountPlan::build`].
pub struct MountInputs<'a> {
    pub ops: &'a [PathOp],
    pub cwd: &'a Path,
    pub tmpfs_bytes: u64,
    /// Shifted root caller: every host bind is an idmapped mount made by the launcher.
    pub idmapped: bool,
    /// The data of each `PathOp::Content`.
    pub contents: &'a [(PathBuf, Vec<u8>)],
    /// The private home layer's directory (`PathOp::HomeLayer`).
    pub home_layer: Option<&'a Path>,
    /// Paths relative to the home that its overlay shows as absent: the
    /// mask is the topmost lower layer, so what the host's home holds there
    /// — now, or created later, during the call — never shows through.
    pub home_mask: &'a [PathBuf],
}

/// The home's mask (`MountInputs::home_mask`) as the child builds it: one
/// whiteout (a character device 0:0, which needs no privilege) per path,
/// below `.sc-hl-mask` in the staging root, their directories made first
/// (shallow first).
#[derive(Debug)]
struct PreparedMask {
    dirs: Vec<CString>,
    whiteouts: Vec<CString>,
}

impl PreparedMask {
    fn new(mask: &[PathBuf]) -> PreparedMask {
        let under = |p: &Path| {
            let mut v = HL_MASK.to_bytes().to_vec();
            v.push(b'/');
            v.extend_from_slice(p.as_os_str().as_bytes());
            c(v)
        };
        let dirs: HashSet<&Path> = mask.iter().flat_map(|m| m.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty())).collect();
        let mut dirs: Vec<&Path> = dirs.into_iter().collect();
        dirs.sort_by_key(|d| d.components().count());
        PreparedMask { dirs: dirs.into_iter().map(under).collect(), whiteouts: mask.iter().map(|m| under(m)).collect() }
    }

    /// Run in the child, in the staging root.
    fn build(&self) -> SysResult {
        sys::mkdir(HL_MASK, 0o755)?;
        for d in &self.dirs {
            sys::mkdir(d, 0o755)?;
        }
        for p in &self.whiteouts {
            // SAFETY: mknod of a whiteout in our own staging tmpfs.
            sys::check(unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR, 0) } as libc::c_long)?;
        }
        Ok(())
    }
}

/// Docker's masked and read-only /proc and /sys paths.
const PROC_READONLY: &[&str] = &["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"];
const PROC_MASK_FILES: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/key-users",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/kallsyms",
    "/proc/kmsg",
    "/proc/kpagecount",
    "/proc/kpageflags",
    "/proc/kpagecgroup",
    "/proc/config.gz",
    "/proc/vmallocinfo",
];
const PROC_MASK_DIRS: &[&str] = &["/proc/acpi", "/proc/scsi", "/proc/asound", "/proc/driver", "/proc/pressure"];
const SYS_MASK_DIRS: &[&str] = &["/sys/firmware", "/sys/devices/virtual/powercap", "/sys/kernel/debug", "/sys/kernel/security"];
const DEV_SHM: &str = "/dev/shm";
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

impl MountPlan {
    /// Phases: drop no-op hides → find the hidden directories that need
    /// mount points inside them (sealed read-only after) → steps for the
    /// path operations → `/dev` → `/proc` and `/sys`.
    pub fn build(inp: &MountInputs) -> MountPlan {
        let ops = effective_ops(order(inp.ops.to_vec()));
        let seal = seal_targets(&ops);
        let mut steps = Vec::new();
        // 3. the read-only host root: done first in `apply`.
        // 4. path operations.
        let parent_binds = path_steps(&ops, &seal, inp, &mut steps);
        // 5. /dev, /proc, /sys.
        dev_steps(&mut steps);
        proc_sys_steps(&mut steps);
        let mut private_writable: Vec<PathBuf> = ops
            .iter()
            .filter_map(|o| match o {
                PathOp::PrivateTmp(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        private_writable.push(PathBuf::from(DEV_SHM));
        let prepared_files: Vec<PathBuf> = ops.iter().filter(|o| matches!(o, PathOp::Content(_))).map(|o| o.path().to_path_buf()).collect();
        // The staging root holds the prepared files too.
        let stage_kib = 64 + inp.contents.iter().map(|(_, d)| d.len() / 1024 + 4).sum::<usize>();
        let shared_dirs = private_writable.iter().map(|p| shared_sub(p)).collect();
        // The home overlay is writable in the final view too. (Landlock
        // skips a mount point when it walks up from a mount on top of it:
        // the overlay's own root needs the rule, not the host's home.)
        private_writable.extend(ops.iter().filter(|o| matches!(o, PathOp::HomeLayer(_))).map(|o| o.path().to_path_buf()));
        MountPlan {
            steps,
            stage: c(STAGE),
            stage_opts: c(format!("size={stage_kib}k,mode=0700")),
            shared_opts: c(format!("size={},nr_inodes={},mode=0755", inp.tmpfs_bytes, (inp.tmpfs_bytes / 4096).max(4096))),
            shared_dirs,
            old: c("/oldroot"),
            new: c("/newroot"),
            cwd: c(inp.cwd.as_os_str().as_bytes()),
            dot: c("."),
            root: c("/"),
            private_writable,
            prepared_files,
            parent_binds,
        }
    }
    /// Run in the child (PID 1, new user + mount namespace, full
    /// capabilities in it). Returns the failing step's index and errno.
    pub fn apply(&self, parent_sock: i32) -> Result<(), (u32, i32)> {
        let at = |i: u32| move |e: i32| (i, e);
        // 1. nothing propagates back to the host.
        sys::mount(None, &self.root, None, libc::MS_REC | libc::MS_PRIVATE, None).map_err(at(1000))?;
        // 2. staging root.
        let tmpfs = c_static(b"tmpfs\0");
        sys::mount(Some(tmpfs), &self.stage, Some(tmpfs), libc::MS_NOSUID | libc::MS_NODEV, Some(&self.stage_opts)).map_err(at(1001))?;
        sys::chdir(&self.stage).map_err(at(1002))?;
        sys::mkdir(c_static(b"oldroot\0"), 0o755).map_err(at(1003))?;
        sys::mkdir(c_static(b"newroot\0"), 0o755).map_err(at(1004))?;
        sys::touch(c_static(b".sc-empty\0"), 0).map_err(at(1005))?;
        pivot_root(&self.dot, c_static(b"oldroot\0")).map_err(at(1006))?;
        sys::chdir(&self.root).map_err(at(1007))?;
        // The shared private tmpfs, in the staging root (detached with it at
        // the end; its subdirectories stay bound in the new view).
        let shared = c_static(b"shared\0");
        sys::mkdir(shared, 0o755).map_err(at(1015))?;
        sys::mount(Some(tmpfs), shared, Some(tmpfs), libc::MS_NOSUID | libc::MS_NODEV, Some(&self.shared_opts)).map_err(at(1015))?;
        for d in &self.shared_dirs {
            sys::mkdir(d, 0o1777).and_then(|_| sys::chmod(d, 0o1777)).map_err(at(1015))?;
        }
        // 3. the host root, read-only, at /newroot (fd-based like every
        // host bind; then reopen /newroot so lookups see the new mount).
        // (Both paths are in our own staging tmpfs: a plain bind is safe.)
        sys::mount(Some(&self.old), &self.new, None, MS_BIND | MS_REC, None).map_err(at(1008))?;
        sys::mount_setattr(&self.new, true, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0).map_err(at(1008))?;
        // cwd is the staging root; RESOLVE_BENEATH takes relative names only.
        let old_fd = sys::open_beneath(libc::AT_FDCWD, c_static(b"oldroot\0")).map_err(at(1009))?;
        let new_fd = sys::open_beneath(libc::AT_FDCWD, c_static(b"newroot\0")).map_err(at(1009))?;
        let empty_fd = sys::open_beneath(libc::AT_FDCWD, c_static(b".sc-empty\0")).map_err(at(1009))?;
        // 4–5.
        let fds = Fds { old: old_fd, new: new_fd, empty: empty_fd, parent: parent_sock };
        for (i, s) in self.steps.iter().enumerate() {
            run_step(s, &fds).map_err(at(i as u32))?;
        }
        sys::close(old_fd);
        sys::close(new_fd);
        sys::close(empty_fd);
        // 6. enter the new root; detach the staging root with the host under it.
        sys::chdir(&self.new).map_err(at(1010))?;
        pivot_root(&self.dot, &self.dot).map_err(at(1011))?;
        // SAFETY: umount2 on a C string path.
        if unsafe { libc::umount2(self.dot.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err((1012, sys::errno()));
        }
        sys::chdir(&self.root).map_err(at(1013))?;
        sys::chdir(&self.cwd).map_err(at(1014))?;
        Ok(())
    }

    /// The failing step `i` is the home overlay (the call can run without it).
    pub fn is_home_layer_step(&self, i: u32) -> bool {
        matches!(self.steps.get(i as usize), Some(Step::Overlay { .. }))
    }

    /// Describe a failing step for error messages (parent side).
    pub fn describe_step(&self, i: u32) -> String {
        match i {
            1000 => "making mounts private".into(),
            1001..=1007 => "preparing the staging root".into(),
            1015 => "mounting the private tmpfs".into(),
            1008 | 1009 => "binding the read-only host root".into(),
            1010..=1013 => "entering the new root".into(),
            1014 => format!("changing to the working directory {:?}", self.cwd),
            i => match self.steps.get(i as usize) {
                Some(s) => format!("{s:?}"),
                None => format!("mount step {i}"),
            },
        }
    }
}

fn is_tmpfs(o: &PathOp) -> bool {
    matches!(o, PathOp::PrivateTmp(_) | PathOp::HideDir(_) | PathOp::Skeleton(_))
}

/// Operations by path, for "the deepest operation strictly above `p`" in
/// O(depth) instead of a scan over every operation (quadratic in the number
/// of protected paths: thousands of repositories made planning take seconds).
/// On one path the last operation added wins (the highest rank, as `order`
/// sorts them).
#[derive(Default)]
struct OpIndex<'a> {
    by_path: HashMap<&'a Path, &'a PathOp>,
}

impl<'a> OpIndex<'a> {
    fn new(ops: &'a [PathOp]) -> Self {
        let mut index = OpIndex::default();
        ops.iter().for_each(|o| index.add(o));
        index
    }
    fn add(&mut self, op: &'a PathOp) {
        self.by_path.insert(op.path(), op);
    }
    fn nearest_above(&self, p: &Path) -> Option<&'a PathOp> {
        p.ancestors().skip(1).find_map(|a| self.by_path.get(a).copied())
    }
}

/// Hiding something inside a tmpfs of ours is a no-op: drop those (ops are
/// sorted shallow-first, so ancestors are decided first).
fn effective_ops(ops: Vec<PathOp>) -> Vec<PathOp> {
    let keep: Vec<bool> = {
        let mut index = OpIndex::default();
        ops.iter()
            .map(|op| {
                let inside_tmpfs = index.nearest_above(op.path()).is_some_and(is_tmpfs);
                let keep = !(inside_tmpfs && matches!(op, PathOp::HideDir(_) | PathOp::HideFile(_)));
                if keep {
                    index.add(op);
                }
                keep
            })
            .collect()
    };
    ops.into_iter().zip(keep).filter_map(|(op, keep)| keep.then_some(op)).collect()
}

/// A target whose nearest enclosing operation is a tmpfs we mount (a
/// private /tmp, or a hidden directory) needs its mount point created inside
/// that tmpfs — never on the host. A hidden directory that gets such mount
/// points is mounted writable and sealed read-only once they are in place.
fn seal_targets(ops: &[PathOp]) -> Vec<PathBuf> {
    let index = OpIndex::new(ops);
    let mut seal: Vec<PathBuf> = ops.iter().filter(|o| matches!(o, PathOp::Skeleton(_))).map(|o| o.path().to_path_buf()).collect();
    let mut seen: HashSet<PathBuf> = seal.iter().cloned().collect();
    for op in ops {
        if matches!(op, PathOp::HideDir(_) | PathOp::HideFile(_)) {
            continue;
        }
        if let Some(PathOp::HideDir(h)) = index.nearest_above(op.path()) {
            if seen.insert(h.clone()) {
                seal.push(h.clone());
            }
        }
    }
    seal
}

/// Steps for the sorted path operations; returns the binds the launcher
/// makes (idmapped) for a shifted root caller, in the order they are used.
fn path_steps(ops: &[PathOp], seal: &[PathBuf], inp: &MountInputs, steps: &mut Vec<Step>) -> Vec<ParentBind> {
    let mut parent_binds = Vec::new();
    let index = OpIndex::new(ops);
    let sealed: HashSet<&Path> = seal.iter().map(PathBuf::as_path).collect();
    for op in ops {
        let p = op.path();
        let is_dir = std::fs::metadata(p).map(|m| m.is_dir()).unwrap_or(true);
        // Mount points inside a tmpfs of ours.
        if let Some(root) = index.nearest_above(p).filter(|o| is_tmpfs(o)).map(|o| o.path().to_path_buf()) {
            let mut cur = root.clone();
            let rel: Vec<_> = p.strip_prefix(&root).unwrap().components().collect();
            for (i, comp) in rel.iter().enumerate() {
                cur.push(comp);
                if i + 1 == rel.len() && !is_dir {
                    steps.push(Step::Touch(newroot(&cur)));
                } else {
                    steps.push(Step::Mkdir(newroot(&cur)));
                }
            }
        }
        let dst = rel(p);
        let mut bind = |set: u64| {
            if inp.idmapped {
                parent_binds.push(ParentBind { src: p.to_path_buf(), set });
            }
            Step::BindHost { src: rel(p), dst: dst.clone(), recursive: true, set, from_parent: inp.idmapped }
        };
        let step = match op {
            PathOp::PrivateTmp(_) => Step::BindShared { sub: shared_sub(p), dst: dst.clone() },
            PathOp::Write(_) | PathOp::Pin(_) => bind(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
            PathOp::AllowRead(_) | PathOp::Protect(_) | PathOp::ExposeRo(_) => bind(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
            PathOp::HideDir(_) | PathOp::Skeleton(_) if sealed.contains(p) => Step::Tmpfs {
                dst: dst.clone(),
                size: c("64k"),
                mode: c("0755"),
                nr_inodes: None,
                attrs: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            },
            PathOp::HideDir(_) | PathOp::Skeleton(_) => Step::Tmpfs {
                dst: dst.clone(),
                size: c("4k"),
                mode: c("0755"),
                nr_inodes: Some(c("2")),
                attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            },
            PathOp::HideFile(_) => Step::HideFile { dst: dst.clone() },
            PathOp::HomeLayer(_) => {
                let state = inp.home_layer.expect("a home layer op comes with its directory");
                if inp.idmapped {
                    parent_binds.push(ParentBind { src: p.to_path_buf(), set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV });
                    parent_binds.push(ParentBind { src: state.to_path_buf(), set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV });
                }
                Step::Overlay { lower: rel(p), state: rel(state), dst: dst.clone(), from_parent: inp.idmapped, mask: PreparedMask::new(inp.home_mask) }
            }
            PathOp::Content(_) => Step::Content {
                stage: c(format!(".sc-content-{}", steps.len())),
                data: inp.contents.iter().find(|(cp, _)| cp == p).map(|(_, d)| d.clone()).unwrap_or_default(),
                dst: dst.clone(),
            },
        };
        steps.push(step);
    }
    for h in seal {
        steps.push(Step::SealRo { dst: rel(h) });
    }
    parent_binds
}

/// A minimal read-only `/dev`: a few device nodes bound from the host, the
/// usual symlinks, a private devpts and `/dev/shm` from the shared tmpfs.
fn dev_steps(steps: &mut Vec<Step>) {
    let tmpfs = Some(c("tmpfs"));
    steps.push(Step::Mount {
        src: tmpfs.clone(),
        dst: c("/newroot/dev"),
        fstype: tmpfs.clone(),
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
        data: Some(c("size=64k,mode=0755")),
    });
    for n in DEV_NODES {
        if Path::new("/dev").join(n).exists() {
            steps.push(Step::Touch(c(format!("/newroot/dev/{n}"))));
            steps.push(Step::Mount { src: Some(c(format!("/oldroot/dev/{n}"))), dst: c(format!("/newroot/dev/{n}")), fstype: None, flags: MS_BIND, data: None });
        }
    }
    for (target, name) in [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx")] {
        steps.push(Step::Symlink(c(target), c(format!("/newroot/dev/{name}"))));
    }
    steps.push(Step::Mkdir(c("/newroot/dev/pts")));
    steps.push(Step::Mount {
        src: Some(c("devpts")),
        dst: c("/newroot/dev/pts"),
        fstype: Some(c("devpts")),
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
        data: Some(c("newinstance,ptmxmode=0666,mode=0620")),
    });
    steps.push(Step::Mkdir(newroot(Path::new(DEV_SHM))));
    steps.push(Step::BindShared { sub: shared_sub(Path::new(DEV_SHM)), dst: rel(Path::new(DEV_SHM)) });
    steps.push(Step::Remount { path: c("/newroot/dev"), flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC });
}

/// A fresh `/proc` for the sandbox's PID namespace with Docker's read-only
/// and masked paths; `/sys` masks.
fn proc_sys_steps(steps: &mut Vec<Step>) {
    let tmpfs = Some(c("tmpfs"));
    let empty_file = c("/.sc-empty");
    let ro_tmpfs_opts = c("size=4k,nr_inodes=2,mode=0755");
    steps.push(Step::Mount {
        src: Some(c("proc")),
        dst: c("/newroot/proc"),
        fstype: Some(c("proc")),
        flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        data: None,
    });
    for p in PROC_READONLY.iter().filter(|p| Path::new(p).exists()) {
        let d = newroot(Path::new(p));
        steps.push(Step::Mount { src: Some(d.clone()), dst: d.clone(), fstype: None, flags: MS_BIND | MS_REC, data: None });
        steps.push(Step::SetAttr { path: d, recursive: true, set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, clear: 0 });
    }
    for p in PROC_MASK_FILES.iter().filter(|p| Path::new(p).exists()) {
        let d = newroot(Path::new(p));
        steps.push(Step::Mount { src: Some(empty_file.clone()), dst: d.clone(), fstype: None, flags: MS_BIND, data: None });
        steps.push(Step::SetAttr { path: d, recursive: false, set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, clear: 0 });
    }
    for p in PROC_MASK_DIRS.iter().chain(SYS_MASK_DIRS).filter(|p| Path::new(p).is_dir()) {
        steps.push(Step::Mount {
            src: tmpfs.clone(),
            dst: newroot(Path::new(p)),
            fstype: tmpfs.clone(),
            flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: Some(ro_tmpfs_opts.clone()),
        });
    }
}

fn c_static(b: &'static [u8]) -> &'static CStr {
    CStr::from_bytes_with_nul(b).expect("static C string")
}

fn pivot_root(new: &CStr, old: &CStr) -> SysResult {
    // SAFETY: pivot_root with two valid C strings.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, new.as_ptr(), old.as_ptr()) };
    sys::check(rc).map(|_| ())
}

struct Fds {
    old: i32,
    new: i32,
    empty: i32,
    /// Socket on which the launcher sends idmapped mounts (-1: none).
    parent: i32,
}

/// Bind `src` (below `src_root`) onto `dst` (below `dst_root`) without
/// following symlinks at either end; attributes set before attaching.
fn bind_host(src_root: i32, src: &CStr, dst_root: i32, dst: &CStr, recursive: bool, set: u64) -> SysResult {
    let s = sys::open_beneath(src_root, src)?;
    let m = sys::clone_tree(s, recursive);
    sys::close(s);
    let m = m?;
    let r = sys::setattr_fd(m, set, 0).and_then(|_| {
        let d = sys::open_beneath(dst_root, dst)?;
        let r = sys::move_mount_fd(m, d);
        sys::close(d);
        r
    });
    sys::close(m);
    r
}

fn run_step(s: &Step, fds: &Fds) -> SysResult {
    match s {
        Step::BindHost { dst, from_parent: true, .. } => {
            let m = sys::recv_fd(fds.parent)?;
            let r = sys::open_beneath(fds.new, dst).and_then(|d| {
                let r = sys::move_mount_fd(m, d);
                sys::close(d);
                r
            });
            sys::close(m);
            r
        }
        Step::BindHost { src, dst, recursive, set, from_parent: false } => bind_host(fds.old, src, fds.new, dst, *recursive, *set),
        // The staging root is the working directory while steps run.
        Step::BindShared { sub, dst } => bind_host(libc::AT_FDCWD, sub, fds.new, dst, false, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
        Step::Tmpfs { dst, size, mode, nr_inodes, attrs } => {
            // A path PID 1 cannot even reach (EACCES on the way: a shifted
            // root caller and a mode-700 directory of another owner) is out
            // of the command's reach too — it has strictly fewer rights —
            // so there is nothing to hide. Only hiding may skip; binds fail.
            let hiding = attrs & MOUNT_ATTR_RDONLY != 0 || nr_inodes.is_some();
            let d = match sys::open_beneath(fds.new, dst) {
                Err(libc::EACCES) if hiding => return Ok(()),
                other => other?,
            };
            sys::close(d);
            let m = sys::new_tmpfs(size, mode, nr_inodes.as_deref(), *attrs)?;
            let r = sys::open_beneath(fds.new, dst).and_then(|d| {
                let r = sys::move_mount_fd(m, d);
                sys::close(d);
                r
            });
            sys::close(m);
            r
        }
        Step::SealRo { dst } => {
            let d = sys::open_beneath(fds.new, dst)?;
            let r = sys::setattr_fd_one(d, MOUNT_ATTR_RDONLY, 0);
            sys::close(d);
            r
        }
        Step::HideFile { dst } => {
            // Unreachable for PID 1 means unreachable for the command (above).
            match sys::open_beneath(fds.new, dst) {
                Err(libc::EACCES) => return Ok(()),
                Ok(d) => sys::close(d),
                Err(e) => return Err(e),
            }
            let m = sys::clone_tree(fds.empty, false)?;
            let r = sys::setattr_fd(m, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0).and_then(|_| {
                let d = sys::open_beneath(fds.new, dst)?;
                let r = sys::move_mount_fd(m, d);
                sys::close(d);
                r
            });
            sys::close(m);
            r
        }
        Step::Content { stage, data, dst } => {
            // SAFETY: create a new file in our own staging tmpfs (cwd); the
            // descriptor is closed right after the write.
            let fd = unsafe { libc::open(stage.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW, 0o444 as libc::c_uint) };
            if fd < 0 {
                return Err(sys::errno());
            }
            sys::write_all(fd, data);
            sys::close(fd);
            let src = sys::open_beneath(libc::AT_FDCWD, stage)?;
            let m = sys::clone_tree(src, false);
            sys::close(src);
            let m = m?;
            let r = sys::setattr_fd(m, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0).and_then(|_| {
                let d = sys::open_beneath(fds.new, dst)?;
                let r = sys::move_mount_fd(m, d);
                sys::close(d);
                r
            });
            sys::close(m);
            r
        }
        Step::Overlay { lower, state, dst, from_parent, mask } => overlay_home(fds, lower, state, dst, *from_parent, mask),
        Step::Mkdir(p) => sys::mkdir(p, 0o755),
        Step::Touch(p) => sys::touch(p, 0o644),
        Step::Symlink(t, p) => sys::symlink(t, p),
        Step::Mount { src, dst, fstype, flags, data } => sys::mount(src.as_deref(), dst, fstype.as_deref(), *flags, data.as_deref()),
        Step::SetAttr { path, recursive, set, clear } => sys::mount_setattr(path, *recursive, *set, *clear),
        Step::Remount { path, flags } => sys::mount(None, path, None, libc::MS_REMOUNT | flags, None),
    }
}

/// Staging-root names for the home overlay's parts (after the first
/// `pivot_root` the staging root is `/`, so the overlay's options name them
/// absolutely, with no character that needs escaping).
const HL_LOWER: &CStr = c".sc-hl-lower";
const HL_STATE: &CStr = c".sc-hl-state";
const HL_MASK: &CStr = c".sc-hl-mask";
const HL_RO: &CStr = c".sc-hl-ro";
const HL_HOME: &CStr = c".sc-hl-home";
const HL_RO_OPTS: &CStr = c"lowerdir=/.sc-hl-mask:/.sc-hl-lower";
const HL_OPTS: &CStr = c"lowerdir=/.sc-hl-ro,upperdir=/.sc-hl-state/upper,workdir=/.sc-hl-state/work,userxattr,volatile,xino=off";

/// The writable home: two overlays, built in the staging root and bound
/// onto the home in the new view.
///
/// 1. the host's home (read-only) and the layer's directory are attached in
///    the staging root (overlayfs takes only layers in its own mount
///    namespace), opened without following symlinks, or received idmapped
///    from the launcher for a shifted root caller;
/// 2. a read-only overlay of the home under its mask (whiteouts at the
///    secret paths that do not exist yet; see `MountInputs::home_mask`). It is needed anyway: the layer lives inside the home
///    (sharkcage's state), and overlayfs refuses an upper directory below a
///    lower one of the same filesystem — this overlay is a filesystem of
///    its own;
/// 3. the writable overlay: that, under `upper`/`work` of the layer,
///    `volatile`: no sync of the layer's whole filesystem when the sandbox
///    ends (hundreds of milliseconds on a busy disk; see
///    `home_layer::Layer::settle_volatile` for what a host crash means);
///    `xino=off`: with idmapped layers (a shifted root caller) the automatic
///    choice made this mount take ~2 ms instead of ~0.2 (measured); objects
///    keep the real filesystem's device and inode numbers (unique pairs);
///    only merged directories may share an inode number with one of another layer;
/// 4. bound onto the home in `/newroot`. The hidden paths and everything
///    else under the home are mounted on top afterwards (the sorted path
///    operations), as without a layer: overlayfs does not show the host
///    home's submounts, so nothing mounted there before would be seen.
fn overlay_home(fds: &Fds, lower: &CStr, state: &CStr, dst: &CStr, from_parent: bool, mask: &PreparedMask) -> SysResult {
    for d in [HL_LOWER, HL_STATE, HL_RO, HL_HOME] {
        sys::mkdir(d, 0o700)?;
    }
    mask.build()?;
    attach_layer(fds, lower, HL_LOWER, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, from_parent)?;
    attach_layer(fds, state, HL_STATE, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, from_parent)?;
    let overlay = c"overlay";
    sys::mount(Some(overlay), HL_RO, Some(overlay), libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV, Some(HL_RO_OPTS))?;
    sys::mount(Some(overlay), HL_HOME, Some(overlay), libc::MS_NOSUID | libc::MS_NODEV, Some(HL_OPTS))?;
    bind_host(libc::AT_FDCWD, HL_HOME, fds.new, dst, false, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
}

/// Attach a host directory (or the launcher's idmapped mount of it) at
/// `at` in the staging root (the working directory).
fn attach_layer(fds: &Fds, src: &CStr, at: &CStr, set: u64, from_parent: bool) -> SysResult {
    let m = if from_parent {
        sys::recv_fd(fds.parent)?
    } else {
        let s = sys::open_beneath(fds.old, src)?;
        let m = sys::clone_tree(s, false);
        sys::close(s);
        let m = m?;
        if let Err(e) = sys::setattr_fd(m, set, 0) {
            sys::close(m);
            return Err(e);
        }
        m
    };
    let r = sys::open_beneath(libc::AT_FDCWD, at).and_then(|d| {
        let r = sys::move_mount_fd(m, d);
        sys::close(d);
        r
    });
    sys::close(m);
    r
}
