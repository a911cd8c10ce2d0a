//! File operations under the sandbox's rules, without a sandbox launch.
//!
//! OpenClaw's file tools (`read`, `write`, `edit`, `apply_patch`, `ls`) go
//! through a backend "fs bridge". This is its core: each operation resolves
//! its path the way the sandbox would see it and applies the same policy as
//! `sc exec` (the same [`Plan`] computes both), in Rust, with no shell and no
//! per-operation process:
//! * **reads**: anywhere the sandbox can read — never a hidden path (the
//!   mandatory secrets, `denyRead` minus `allowRead`), never the private
//!   `/tmp`, `/var/tmp`, `/dev`, `/proc`, `/sys`;
//! * **writes** (write, create, mkdir, remove, rename): only inside writable
//!   roots, never at a protected name (`.git/hooks`, `.bashrc`, `.vscode`, …,
//!   also when it does not exist yet — here a name *can* be refused) and
//!   never inside a hidden path;
//! * **resolution**: inside a writable root every path is opened below the
//!   root's descriptor with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`,
//!   so neither `..` nor a symlink can leave it; a path elsewhere is opened
//!   without magic links and its real location is checked after opening;
//! * **atomicity**: a write goes to an exclusive temporary file in the target
//!   directory, is synced, and is renamed into place; an exclusive create is
//!   `renameat2(RENAME_NOREPLACE)`, so of two racing creators exactly one wins.
//!
//! Errors are [`FsError`] with a stable kind, for the JS layer to map.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::launcher::plan::Plan;
use crate::policy::paths;
use crate::treewalk::Type;

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    #[error("{0}: outside what the sandbox may read")]
    NotReadable(PathBuf),
    #[error("{0}: outside the writable roots")]
    NotWritable(PathBuf),
    #[error("{path}: refused: {reason}")]
    Protected { path: PathBuf, reason: String },
    #[error("{0}: a symlink or '..' leads outside the writable root")]
    Escapes(PathBuf),
    #[error("{0}: not found")]
    NotFound(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl FsError {
    /// Stable machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            FsError::NotReadable(_) => "not-readable",
            FsError::NotWritable(_) => "not-writable",
            FsError::Protected { .. } => "protected",
            FsError::Escapes(_) => "escapes",
            FsError::NotFound(_) => "not-found",
            FsError::Io { .. } => "io",
        }
    }
}

/// What a path is.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub kind: &'static str, // "file" | "directory" | "other"
    pub size: u64,
    pub mtime_ms: f64,
}

/// The policy view for file operations of one sandbox.
pub struct FsBridge {
    hidden: Vec<PathBuf>,
    allow_read: Vec<PathBuf>,
    writable: Vec<PathBuf>,
    cwd: PathBuf,
    /// Protected places found by the plan's scan that no name rule covers
    /// (hooks directories, included configs and programs named by
    /// existing git configs; `denyWrite`).
    protected: Vec<PathBuf>,
    /// Whose rights host I/O uses.
    identity: Identity,
    /// Home directories (their startup places, `gitstate::HOME_STARTUP`).
    homes: Vec<PathBuf>,
    /// The read-deny rules, also for paths that appear later (a new
    /// `~/.ssh/id_ed25519`, a file matching a `denyRead` glob).
    deny: crate::launcher::plan::DenyRules,
    /// Names that are hooks directories anywhere (a relative
    /// `core.hooksPath` in a global git config).
    hook_names: Vec<Vec<u8>>,
    /// The repository configs and gitfiles in the writable roots when the
    /// view was made: what they name is judged as they are at each
    /// operation (a worktree added later takes their relative paths).
    configs: Vec<(PathBuf, crate::gitstate::Role)>,
}

/// Whose rights the bridge's host I/O uses: the same as the sandbox's.
#[derive(Debug, Clone)]
pub enum Identity {
    /// The process's own: for a normal caller, the sandbox *is* the caller.
    Caller,
    /// A root process (a root gateway): a root caller's sandbox runs on an
    /// unprivileged host id, with idmapped views of the places it works in
    /// (`places`: writable roots, the home directory, allowRead). So the
    /// bridge, for the operation's thread only, is a stranger (`id`)
    /// elsewhere, and root without permission-overriding capabilities in
    /// those places (see `launcher::thread_identity`).
    ShiftedRoot { id: u32, places: Vec<PathBuf> },
}

impl Identity {
    /// The identity `sc exec` would give this process's sandbox for `plan`.
    pub fn for_process(plan: &Plan) -> Identity {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 || std::env::var_os("SHARKCAGE_NO_UID_SHIFT").is_some() {
            return Identity::Caller;
        }
        let mut places = plan.writable.clone();
        places.extend(plan.allow_read.iter().cloned());
        if let Some(h) = paths::primary_home().filter(|h| h.is_dir() && !plan.hidden.iter().any(|x| h.starts_with(x))) {
            places.push(std::fs::canonicalize(&h).unwrap_or(h));
        }
        Identity::ShiftedRoot { id: crate::layers::userns::SHIFT_BASE, places }
    }
}

const PRIVATE: &[&str] = &["/tmp", "/var/tmp", "/dev", "/proc", "/sys"];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FsError + '_ {
    move |source| {
        if source.raw_os_error() == Some(libc::ENOENT) {
            FsError::NotFound(path.to_path_buf())
        } else if source.raw_os_error() == Some(libc::EXDEV) || source.raw_os_error() == Some(libc::ELOOP) {
            FsError::Escapes(path.to_path_buf())
        } else {
            FsError::Io { path: path.to_path_buf(), source }
        }
    }
}

fn cstr(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// `openat2` with the given flags and resolve mode.
fn openat2(dirfd: i32, path: &Path, flags: i32, mode: u32, resolve: u64) -> std::io::Result<OwnedFd> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: mode as u64, resolve };
    let p = if path.as_os_str().is_empty() { CString::new(".").unwrap() } else { cstr(path)? };
    // SAFETY: openat2 with a valid open_how; the new fd is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_openat2, dirfd, p.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

const BENEATH: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// The real path of an open descriptor.
fn real_path(fd: &OwnedFd) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl FsBridge {
    /// A view from explicit lists (canonical absolute paths).
    pub fn new(hidden: Vec<PathBuf>, allow_read: Vec<PathBuf>, writable: Vec<PathBuf>, cwd: PathBuf) -> FsBridge {
        FsBridge { hidden, allow_read, writable, cwd, protected: vec![], identity: Identity::Caller, homes: vec![], deny: Default::default(), hook_names: vec![], configs: vec![] }
    }

    /// The same view with host I/O done as `identity`.
    pub fn with_identity(mut self, identity: Identity) -> FsBridge {
        self.identity = identity;
        self
    }

    /// The view of a prepared plan: the same hidden paths and writable
    /// roots `sc exec` would use for this policy and workspace.
    pub fn from_plan(plan: &Plan) -> FsBridge {
        let mut protected = plan.protected.clone();
        protected.extend(plan.must_not_appear.iter().map(|(p, _)| p.clone()));
        FsBridge {
            hidden: plan.hidden.clone(),
            allow_read: plan.allow_read.clone(),
            writable: plan.writable.clone(),
            cwd: plan.cwd.clone(),
            protected,
            identity: Identity::for_process(plan),
            homes: plan.homes.clone(),
            deny: plan.deny_rules.clone(),
            hook_names: plan.hook_names.clone(),
            configs: plan.protected_before.iter().filter(|e| matches!(e.role, crate::gitstate::Role::GitConfig | crate::gitstate::Role::GitLink)).map(|e| (e.path.clone(), e.role)).collect(),
        }
    }

    /// Absolute, lexically normalised form of a tool's path.
    pub fn absolute(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        let joined = if p.is_absolute() { p.to_path_buf() } else { self.cwd.join(p) };
        paths::normalize(&joined)
    }

    /// Hidden as in the sandbox's mount view: under a hidden path, unless a
    /// deeper allowRead path or writable root re-exposes it (the workspace
    /// inside `~/.openclaw` is visible although `~/.openclaw` is hidden).
    fn hidden(&self, p: &Path) -> bool {
        let reopened = |h: &Path| self.allow_read.iter().chain(self.writable.iter()).any(|w| w.starts_with(h) && w != h && p.starts_with(w));
        if self.hidden.iter().any(|h| p.starts_with(h) && !reopened(h)) {
            return true;
        }
        // Rules for what did not exist when this view was made.
        self.deny.paths.iter().any(|h| p.starts_with(h) && !reopened(h))
            || (!self.deny.globs.is_empty() && p.ancestors().any(|a| self.deny.globs.iter().any(|g| g.matches_path(a)) && !reopened(a)))
    }

    /// The writable root containing `p` (deepest) and `p` relative to it.
    fn writable_root(&self, p: &Path) -> Option<(&Path, PathBuf)> {
        self.writable
            .iter()
            .filter(|w| p.starts_with(w))
            .max_by_key(|w| w.components().count())
            .map(|w| (w.as_path(), p.strip_prefix(w).unwrap().to_path_buf()))
    }

    /// The writable root `root`, opened; refused when the path no longer
    /// leads to it (a root replaced by a symlink would take every write
    /// below it elsewhere).
    fn root_fd(root: &Path) -> std::io::Result<OwnedFd> {
        let c = cstr(root)?;
        // SAFETY: open the root directory O_PATH; owned below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if real_path(&fd)? != root {
            return Err(std::io::Error::other(format!("{} is no longer the writable directory it was (moved or replaced)", root.display())));
        }
        Ok(fd)
    }

    /// Run one operation's host I/O with the sandbox's rights (see
    /// [`Identity`]); `place`: the path is in a place the sandbox works in.
    fn as_sandbox<T>(&self, place: bool, f: impl FnOnce() -> Result<T, FsError>) -> Result<T, FsError> {
        let r = match &self.identity {
            Identity::Caller => return f(),
            Identity::ShiftedRoot { .. } if place => crate::launcher::thread_identity::run_as_root_owner(f),
            Identity::ShiftedRoot { id, .. } => crate::launcher::thread_identity::run_as(*id, f),
        };
        r.unwrap_or_else(|e| Err(FsError::Io { path: PathBuf::new(), source: std::io::Error::other(format!("cannot take the sandbox's identity: {}", std::io::Error::from_raw_os_error(e))) }))
    }

    fn in_place(&self, p: &Path) -> bool {
        match &self.identity {
            Identity::Caller => true,
            Identity::ShiftedRoot { places, .. } => places.iter().any(|q| p.starts_with(q)),
        }
    }

    /// Open for reading, under the read rules and with the sandbox's
    /// rights: in a place it works in only if the file really is there.
    fn open_read(&self, path: &str, flags: i32) -> Result<(OwnedFd, PathBuf), FsError> {
        let p = self.absolute(path);
        let denied = |e: FsError| match e {
            FsError::Io { source, .. } if source.raw_os_error() == Some(libc::EACCES) => FsError::NotReadable(p.clone()),
            e => e,
        };
        let place = self.in_place(&p);
        let (fd, real) = self.as_sandbox(place, || self.open_read_as_is(path, flags)).map_err(denied)?;
        if place && !self.in_place(&real) {
            return self.as_sandbox(false, || self.open_read_as_is(path, flags)).map_err(denied);
        }
        Ok((fd, real))
    }

    fn open_read_as_is(&self, path: &str, flags: i32) -> Result<(OwnedFd, PathBuf), FsError> {
        let p = self.absolute(path);
        // A hidden path looks the same whether it exists or not: refused
        // before anything is opened, and a missing path is refused too when
        // where it would be (after symlinks) is hidden.
        if self.hidden(&p) {
            return Err(FsError::NotReadable(p));
        }
        let opened = if let Some((root, rel)) = self.writable_root(&p) {
            Self::root_fd(root).map_err(io(&p)).and_then(|rfd| openat2(rfd.as_raw_fd(), &rel, flags, 0, BENEATH).map_err(io(&p)))
        } else {
            openat2(libc::AT_FDCWD, &p, flags, 0, libc::RESOLVE_NO_MAGICLINKS).map_err(io(&p))
        };
        let fd = match opened {
            Err(e) if self.hidden(&would_be_at(&p)) => {
                drop(e);
                return Err(FsError::NotReadable(p));
            }
            r => r?,
        };
        // Judge where it really is, after symlinks.
        let real = real_path(&fd).map_err(io(&p))?;
        if self.hidden(&real) || self.hidden(&p) || PRIVATE.iter().any(|x| real.starts_with(x) && self.writable_root(&real).is_none()) {
            return Err(FsError::NotReadable(p));
        }
        Ok((fd, real))
    }

    pub fn read_file(&self, path: &str, max_bytes: Option<u64>) -> Result<Vec<u8>, FsError> {
        // Non-blocking: a FIFO a sandbox made must not hang the gateway in
        // open(); only regular files are read (not a FIFO, socket or device).
        let (fd, _) = self.open_read(path, libc::O_RDONLY | libc::O_NONBLOCK)?;
        // SAFETY: fstat into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io(&self.absolute(path))(std::io::Error::last_os_error()));
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(FsError::Io { path: self.absolute(path), source: std::io::Error::other("not a regular file (a directory, FIFO, socket or device): not read") });
        }
        let mut f = std::fs::File::from(fd);
        let mut buf = Vec::new();
        match max_bytes {
            Some(m) => (&mut f).take(m).read_to_end(&mut buf),
            None => f.read_to_end(&mut buf),
        }
        .map_err(io(&self.absolute(path)))?;
        Ok(buf)
    }

    pub fn stat(&self, path: &str) -> Result<Option<Stat>, FsError> {
        let (fd, _) = match self.open_read(path, libc::O_PATH) {
            Ok(x) => x,
            Err(FsError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        // SAFETY: fstat into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io(&self.absolute(path))(std::io::Error::last_os_error()));
        }
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => "file",
            libc::S_IFDIR => "directory",
            _ => "other",
        };
        Ok(Some(Stat { kind, size: st.st_size as u64, mtime_ms: st.st_mtime as f64 * 1000.0 + st.st_mtime_nsec as f64 / 1e6 }))
    }

    /// Directory entries (name, is a directory), hidden ones left out.
    pub fn read_dir(&self, path: &str) -> Result<Vec<(String, bool)>, FsError> {
        let (fd, real) = self.open_read(path, libc::O_RDONLY | libc::O_DIRECTORY)?;
        // Read through the descriptor: no second open, no second check.
        let mut entries = Vec::new();
        if !crate::treewalk::read_entries(fd.as_raw_fd(), &mut vec![0u8; 32 * 1024], &mut entries) {
            return Err(io(&real)(std::io::Error::last_os_error()));
        }
        let mut out = Vec::new();
        for e in entries {
            let name = std::ffi::OsStr::from_bytes(&e.name);
            if self.hidden(&real.join(name)) {
                continue;
            }
            out.push((name.to_string_lossy().into_owned(), e.ty == crate::treewalk::Type::Dir));
        }
        out.sort();
        Ok(out)
    }

    /// The one rule for creating or changing `rel` below `root` (see
    /// `gitstate::bridge_refusal`), plus the plan's protected places.
    /// `ty`: what the last component is or will be.
    fn refusal(&self, root_fd: &OwnedFd, root: &Path, rel: &Path, shown: &Path, creating: bool, ty: Type) -> Result<(), FsError> {
        self.refusal_by_name(root_fd, root, rel, shown, creating, ty)?;
        let full = root.join(rel);
        named_by_configs(&self.config_places(&full), &full, shown)
    }

    /// [`Self::refusal`] without what repository configs name (for callers
    /// that look that up once for many paths, or checked it already).
    fn refusal_by_name(&self, root_fd: &OwnedFd, root: &Path, rel: &Path, shown: &Path, creating: bool, ty: Type) -> Result<(), FsError> {
        let full = root.join(rel);
        if let Some(p) = self.protected.iter().find(|p| full.starts_with(p)) {
            return Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("{} is protected (git runs or reads it, or the policy denies writes there)", p.display()) });
        }
        // Startup places of a home directory (`~/bin`, user site-packages…).
        for h in &self.homes {
            let Ok(in_home) = full.strip_prefix(h) else { continue };
            let mut dir = PathBuf::new();
            let n = in_home.components().count();
            for (i, c) in in_home.components().enumerate() {
                let name = c.as_os_str().as_bytes();
                if crate::gitstate::home_startup_typed(&dir, name, if i + 1 == n { ty } else { Type::Dir }) {
                    return Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("{} in a home directory runs when a shell or tool starts", dir.join(c).display()) });
                }
                dir.push(c);
            }
        }
        if let Some(h) = crate::gitstate::under_named_hooks(&self.hook_names, &full) {
            return Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("{} is a hooks directory (a relative core.hooksPath in a global git config names it below every worktree)", h.display()) });
        }
        match crate::gitstate::bridge_refusal(root_fd.as_raw_fd(), rel, creating, ty) {
            Some(reason) => Err(FsError::Protected { path: shown.to_path_buf(), reason }),
            None => Ok(()),
        }
    }

    /// Places the repositories make git run or read, as their configs and
    /// worktrees are now: a worktree added after this view was made (by a
    /// call) takes a relative `core.hooksPath` or program with it. The
    /// configs known when the view was made, and each `.git` on the way up
    /// from `full` to its writable root (a gitfile made since), are read.
    fn config_places(&self, full: &Path) -> Vec<PathBuf> {
        use crate::gitstate::Role;
        use crate::launcher::protected::{self, Kind};
        let Some((root, _)) = self.writable_root(full) else { return Vec::new() };
        let mut entries: Vec<protected::Entry> = self.configs.iter().filter_map(|(p, role)| protected::entry_now(p, *role)).collect();
        for dir in full.ancestors().skip(1).take_while(|a| a.starts_with(root)) {
            let dot_git = dir.join(".git");
            match protected::entry_now(&dot_git, Role::GitLink) {
                Some(e) if e.kind == Kind::File => entries.push(e),
                Some(e) if e.kind == Kind::Dir => entries.extend(protected::entry_now(&dot_git.join("config"), Role::GitConfig)),
                _ => {}
            }
        }
        if entries.is_empty() {
            return Vec::new();
        }
        protected::derived_inside(&entries, &self.writable, &self.hidden).paths.into_iter().map(|(p, _)| p).collect()
    }

    /// The rule for `name` in the directory `dfd`, where that really is now.
    fn verdict_at(&self, dfd: &OwnedFd, name: &CString, p: &Path, ty: Type) -> Result<(), FsError> {
        real_path(dfd).map_err(io(p)).and_then(|real| match self.writable_root(&real) {
            Some((root, rel)) => {
                let root = root.to_path_buf();
                let rfd = Self::root_fd(&root).map_err(io(p))?;
                self.refusal(&rfd, &root, &rel.join(std::ffi::OsStr::from_bytes(name.as_bytes())), p, true, ty)
            }
            None => Err(FsError::Escapes(p.to_path_buf())),
        })
    }

    /// A directory moved to `to` brings its contents along: each entry is
    /// judged at the place it would have there (a directory with
    /// `git/config` renamed to `.config` is a startup file). Bounded: a
    /// directory of more than 10 000 entries is not moved.
    fn subtree_allowed_at(&self, ffd: &OwnedFd, fname: &CString, tfd: &OwnedFd, tname: &CString, shown: &Path) -> Result<(), FsError> {
        let dest_dir = real_path(tfd).map_err(io(shown))?;
        let Some((root, dest_rel)) = self.writable_root(&dest_dir) else { return Err(FsError::Escapes(shown.to_path_buf())) };
        let root = root.to_path_buf();
        let dest = dest_rel.join(std::ffi::OsStr::from_bytes(tname.as_bytes()));
        let rfd = Self::root_fd(&root).map_err(io(shown))?;
        // What configs name is looked up once for the whole move.
        let places = self.config_places(&root.join(&dest));
        // Not a directory: judged by its own name and type already.
        each_below(ffd, fname, shown, Some(10_000), |_, rel, e| {
            let rel = dest.join(rel).join(std::ffi::OsStr::from_bytes(&e.name));
            match self.refusal_by_name(&rfd, &root, &rel, shown, true, e.ty).and_then(|_| named_by_configs(&places, &root.join(&rel), shown)) {
                Err(FsError::Protected { reason, .. }) => Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("it would bring {} there: {reason}", rel.display()) }),
                _ => Ok(()),
            }
        })
    }

    /// A directory holding a hidden or protected path cannot be renamed,
    /// replaced or removed: that would take the path out from under its
    /// rule (in the sandbox, such a directory is a mount point: EBUSY).
    /// So is a writable root or a read-only place itself, or a directory
    /// above one (moving the workspace away and a symlink into its place
    /// would take later writes and calls elsewhere).
    fn not_above_protected(&self, dfd: &OwnedFd, name: &CString, shown: &Path) -> Result<(), FsError> {
        let dir = real_path(dfd).map_err(io(shown))?;
        let full = dir.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
        let held = self.protected.iter().chain(self.hidden.iter()).chain(self.deny.paths.iter()).find(|p| p.starts_with(&full) && **p != full);
        if let Some(p) = held {
            return Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("it holds {}, which the sandbox may not move or remove", p.display()) });
        }
        if let Some(p) = self.writable.iter().chain(self.allow_read.iter()).find(|p| p.starts_with(&full)) {
            let what = if *p == full { "it is".to_string() } else { format!("it holds {}, which is", p.display()) };
            return Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("{what} a place the sandbox works in, which it may not move, replace or remove") });
        }
        Ok(())
    }

    /// A directory moved or removed may hold what a deny pattern hides now
    /// (a `.env` made after the session started): not without it. Walks the
    /// directory when patterns exist; `limit` bounds the entries looked at.
    fn holds_no_hidden(&self, dfd: &OwnedFd, name: &CString, shown: &Path, limit: Option<usize>) -> Result<(), FsError> {
        if self.deny.globs.is_empty() {
            return Ok(());
        }
        // Not a directory: its own path was judged.
        each_below(dfd, name, shown, limit, |base, rel, e| {
            let p = base.join(rel).join(std::ffi::OsStr::from_bytes(&e.name));
            if self.hidden(&p) {
                return Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("it holds {}, which is hidden from the sandbox", p.display()) });
            }
            Ok(())
        })
    }

    /// Check a write target and open its parent directory (creating it
    /// when `mkdir`). Returns the parent fd and the final name.
    /// `ty`: what the entry will be (creating), or `None` for what it is now.
    fn write_target(&self, path: &str, mkdir: bool, creating: bool, ty: Option<Type>) -> Result<(OwnedFd, CString, PathBuf), FsError> {
        let p = self.absolute(path);
        let Some((root, rel)) = self.writable_root(&p) else { return Err(FsError::NotWritable(p)) };
        if rel.as_os_str().is_empty() {
            return Err(FsError::NotWritable(p));
        }
        if self.hidden(&p) {
            return Err(FsError::NotWritable(p));
        }
        let name = rel.file_name().ok_or_else(|| FsError::NotWritable(p.clone()))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let rfd = Self::root_fd(root).map_err(io(&p))?;
        let ty = ty.unwrap_or_else(|| type_at(&rfd, &rel));
        self.refusal(&rfd, root, &rel, &p, creating, ty)?;
        if mkdir {
            self.mkdir_beneath(&rfd, root, parent, &p)?;
        }
        let dfd = openat2(rfd.as_raw_fd(), parent, libc::O_PATH | libc::O_DIRECTORY, 0, BENEATH).map_err(io(&p))?;
        let real = real_path(&dfd).map_err(io(&p))?;
        // The parent may be reached through an in-root symlink: judge the
        // real place too (hidden there as well: `l/secret` with `l -> .`).
        match self.writable_root(&real) {
            Some((real_root, real_rel)) if !self.hidden(&real) && !self.hidden(&real.join(name)) => {
                let real_root = real_root.to_path_buf();
                let rrfd = Self::root_fd(&real_root).map_err(io(&p))?;
                self.refusal(&rrfd, &real_root, &real_rel.join(name), &p, creating, ty)?;
            }
            Some(_) => return Err(FsError::NotWritable(p)),
            None => return Err(FsError::Escapes(p)),
        }
        Ok((dfd, cstr(Path::new(name)).map_err(io(&p))?, p))
    }

    fn mkdir_beneath(&self, rfd: &OwnedFd, root: &Path, rel: &Path, shown: &Path) -> Result<(), FsError> {
        let mut cur = PathBuf::new();
        // What configs name, looked up once for the deepest directory.
        let places = self.config_places(&root.join(rel));
        for c in rel.components() {
            if let Component::Normal(n) = c {
                cur.push(n);
                self.refusal_by_name(rfd, root, &cur, shown, true, Type::Dir)?;
                named_by_configs(&places, &root.join(&cur), shown)?;
                let parent = cur.parent().unwrap_or(Path::new(""));
                let pfd = openat2(rfd.as_raw_fd(), parent, libc::O_PATH | libc::O_DIRECTORY, 0, BENEATH).map_err(io(shown))?;
                let name = cstr(Path::new(n)).map_err(io(shown))?;
                // SAFETY: mkdirat below a directory fd.
                if unsafe { libc::mkdirat(pfd.as_raw_fd(), name.as_ptr(), 0o777) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(io(shown)(e));
                    }
                }
            }
        }
        Ok(())
    }

    /// Write a whole file atomically (temporary file + rename).
    pub fn write_file(&self, path: &str, data: &[u8], mkdir: bool) -> Result<(), FsError> {
        self.as_sandbox(true, || self.write_file_as_is(path, data, mkdir))
    }

    fn write_file_as_is(&self, path: &str, data: &[u8], mkdir: bool) -> Result<(), FsError> {
        let (dfd, name, p) = self.write_target(path, mkdir, true, Some(Type::File))?;
        let tmp = self.write_temp(&dfd, &name, data, &p)?;
        // SAFETY: renameat within one directory fd.
        if unsafe { libc::renameat(dfd.as_raw_fd(), tmp.as_ptr(), dfd.as_raw_fd(), name.as_ptr()) } != 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: remove our temporary file.
            unsafe { libc::unlinkat(dfd.as_raw_fd(), tmp.as_ptr(), 0) };
            return Err(io(&p)(e));
        }
        self.still_allowed(&dfd, &name, &p)
    }

    /// After a write lands: the directory may have become something else
    /// meanwhile (a sandbox turning it into a git directory, say). Judged
    /// again where it really is now; refused writes are taken back.
    fn still_allowed(&self, dfd: &OwnedFd, name: &CString, p: &Path) -> Result<(), FsError> {
        let verdict = self.verdict_at(dfd, name, p, Type::File);
        if verdict.is_err() {
            // SAFETY: unlinkat of the name we just wrote, in its directory fd.
            unsafe { libc::unlinkat(dfd.as_raw_fd(), name.as_ptr(), 0) };
        }
        verdict
    }

    /// Create a file only if nothing is there: `Ok(true)` created,
    /// `Ok(false)` it exists. Atomic: the content appears whole or not at all.
    pub fn create_file_exclusive(&self, path: &str, data: &[u8], mkdir: bool) -> Result<bool, FsError> {
        self.as_sandbox(true, || self.create_file_exclusive_as_is(path, data, mkdir))
    }

    fn create_file_exclusive_as_is(&self, path: &str, data: &[u8], mkdir: bool) -> Result<bool, FsError> {
        let (dfd, name, p) = self.write_target(path, mkdir, true, Some(Type::File))?;
        let tmp = self.write_temp(&dfd, &name, data, &p)?;
        // SAFETY: renameat2(RENAME_NOREPLACE) within one directory fd.
        let rc = unsafe { libc::renameat2(dfd.as_raw_fd(), tmp.as_ptr(), dfd.as_raw_fd(), name.as_ptr(), libc::RENAME_NOREPLACE) };
        let e = std::io::Error::last_os_error();
        if rc != 0 {
            // SAFETY: remove our temporary file.
            unsafe { libc::unlinkat(dfd.as_raw_fd(), tmp.as_ptr(), 0) };
            if e.raw_os_error() == Some(libc::EEXIST) {
                return Ok(false);
            }
            return Err(io(&p)(e));
        }
        Ok(true)
    }

    fn write_temp(&self, dfd: &OwnedFd, name: &CString, data: &[u8], p: &Path) -> Result<CString, FsError> {
        let dir = openat2(dfd.as_raw_fd(), Path::new(""), libc::O_RDONLY | libc::O_DIRECTORY, 0, BENEATH).map_err(io(p))?;
        for n in 0..100u32 {
            let tmp = CString::new(format!(".{}.sc-tmp-{}-{}", name.to_string_lossy(), std::process::id(), n)).unwrap();
            // SAFETY: openat with O_CREAT|O_EXCL|O_NOFOLLOW in our directory fd.
            let fd = unsafe { libc::openat(dir.as_raw_fd(), tmp.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0o644) };
            if fd < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EEXIST) {
                    continue;
                }
                return Err(io(p)(e));
            }
            // SAFETY: a fresh descriptor we own.
            let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let r = f.write_all(data).and_then(|_| f.sync_all());
            if let Err(e) = r {
                // SAFETY: remove the partial temporary file.
                unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
                return Err(io(p)(e));
            }
            return Ok(tmp);
        }
        Err(FsError::Io { path: p.to_path_buf(), source: std::io::Error::other("no free temporary name") })
    }

    /// `mkdir -p` inside a writable root.
    pub fn mkdirp(&self, path: &str) -> Result<(), FsError> {
        self.as_sandbox(true, || self.mkdirp_as_is(path))
    }

    fn mkdirp_as_is(&self, path: &str) -> Result<(), FsError> {
        let p = self.absolute(path);
        let Some((root, rel)) = self.writable_root(&p) else { return Err(FsError::NotWritable(p)) };
        let rfd = Self::root_fd(root).map_err(io(&p))?;
        self.mkdir_beneath(&rfd, root, &rel, &p)
    }

    /// Remove a file or (with `recursive`) a directory tree.
    pub fn remove(&self, path: &str, recursive: bool, force: bool) -> Result<(), FsError> {
        self.as_sandbox(true, || self.remove_as_is(path, recursive, force))
    }

    fn remove_as_is(&self, path: &str, recursive: bool, force: bool) -> Result<(), FsError> {
        let (dfd, name, p) = match self.write_target(path, false, false, None) {
            Err(FsError::NotFound(_)) if force => return Ok(()),
            other => other?,
        };
        self.not_above_protected(&dfd, &name, &p)?;
        self.holds_no_hidden(&dfd, &name, &p, None)?;
        let dir = openat2(dfd.as_raw_fd(), Path::new(""), libc::O_RDONLY | libc::O_DIRECTORY, 0, BENEATH).map_err(io(&p))?;
        // SAFETY: unlinkat within our directory fd (a symlink is removed, not followed).
        if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOENT) if force => Ok(()),
            Some(libc::EISDIR) | Some(libc::EPERM) if recursive => {
                let sub = openat2(dir.as_raw_fd(), Path::new(name.to_str().unwrap_or("")), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0, BENEATH | libc::RESOLVE_NO_SYMLINKS)
                    .map_err(io(&p))?;
                remove_tree(&sub).map_err(io(&p))?;
                // SAFETY: rmdir the now empty directory.
                if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
                    return Err(io(&p)(std::io::Error::last_os_error()));
                }
                Ok(())
            }
            Some(libc::EISDIR) => {
                // SAFETY: rmdir of an (expected) empty directory.
                if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
                    return Err(io(&p)(std::io::Error::last_os_error()));
                }
                Ok(())
            }
            _ => Err(io(&p)(e)),
        }
    }

    /// Rename inside the writable roots; neither end may be protected.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FsError> {
        self.as_sandbox(true, || self.rename_as_is(from, to))
    }

    fn rename_as_is(&self, from: &str, to: &str) -> Result<(), FsError> {
        let (ffd, fname, fp) = self.write_target(from, false, false, None)?;
        // What arrives at `to` is what is at `from` now (a symlink named
        // `.cargo` is a startup place, a file named so is not).
        let moving = type_at(&ffd, Path::new(std::ffi::OsStr::from_bytes(fname.as_bytes())));
        let (tfd, tname, tp) = self.write_target(to, false, true, Some(moving))?;
        self.not_above_protected(&ffd, &fname, &fp)?;
        self.not_above_protected(&tfd, &tname, &tp)?;
        self.holds_no_hidden(&ffd, &fname, &fp, Some(10_000))?;
        self.subtree_allowed_at(&ffd, &fname, &tfd, &tname, &tp)?;
        let fdir = openat2(ffd.as_raw_fd(), Path::new(""), libc::O_RDONLY | libc::O_DIRECTORY, 0, BENEATH).map_err(io(&fp))?;
        let tdir = openat2(tfd.as_raw_fd(), Path::new(""), libc::O_RDONLY | libc::O_DIRECTORY, 0, BENEATH).map_err(io(&fp))?;
        // SAFETY: renameat between two directory fds.
        if unsafe { libc::renameat(fdir.as_raw_fd(), fname.as_ptr(), tdir.as_raw_fd(), tname.as_ptr()) } != 0 {
            return Err(io(&fp)(std::io::Error::last_os_error()));
        }
        // What arrived may have changed between the check and the move
        // (a concurrent sandbox): judged again there, else moved back.
        let arrived = type_at(&tfd, Path::new(std::ffi::OsStr::from_bytes(tname.as_bytes())));
        if let Err(e) = self.verdict_at(&tfd, &tname, &tp, arrived).and_then(|_| self.subtree_allowed_at(&tfd, &tname, &tfd, &tname, &tp)) {
            // SAFETY: renameat back between the same two directory fds.
            unsafe { libc::renameat(tdir.as_raw_fd(), tname.as_ptr(), fdir.as_raw_fd(), fname.as_ptr()) };
            return Err(e);
        }
        Ok(())
    }
}

/// Where `p` leads as the kernel would resolve it, symlinks followed even
/// when what they name does not exist (a dangling `ws/l -> ~/.ssh/missing`
/// leads to `~/.ssh/missing`), so a hidden place is judged the same whether
/// anything is there or not. At most 40 symlinks, as the kernel.
fn would_be_at(p: &Path) -> PathBuf {
    use std::collections::VecDeque;
    use std::path::Component;
    let mut out = PathBuf::from("/");
    let mut todo: VecDeque<std::ffi::OsString> = p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    }).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&c);
        match std::fs::read_link(&next) {
            Ok(target) if hops < 40 => {
                hops += 1;
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                for (i, t) in target.components().filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_os_string()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                }).enumerate() {
                    todo.insert(i, t);
                }
            }
            _ => out = next,
        }
    }
    out
}

/// Refused when `full` lies in one of `places` (see `FsBridge::config_places`).
fn named_by_configs(places: &[PathBuf], full: &Path, shown: &Path) -> Result<(), FsError> {
    match places.iter().find(|p| full.starts_with(p)) {
        Some(p) => Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("{} is named by a git config (hooks, an include or a program git runs)", p.display()) }),
        None => Ok(()),
    }
}

/// Every entry below the directory `name` in `dir` (nothing when it is not
/// a directory, no symlink followed), given to `check` with the directory's
/// real path and the entry's directory relative to it, until `check` refuses
/// or more than `limit` entries were seen (refused: too big to move).
fn each_below(dir: &OwnedFd, name: &CString, shown: &Path, limit: Option<usize>, mut check: impl FnMut(&Path, &Path, &crate::treewalk::DirEntry) -> Result<(), FsError>) -> Result<(), FsError> {
    let Ok(src) = openat2(dir.as_raw_fd(), Path::new(std::ffi::OsStr::from_bytes(name.as_bytes())), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0, BENEATH | libc::RESOLVE_NO_SYMLINKS) else {
        return Ok(());
    };
    let base = real_path(&src).map_err(io(shown))?;
    let found: std::cell::RefCell<Result<(), FsError>> = std::cell::RefCell::new(Ok(()));
    let n = std::cell::Cell::new(0usize);
    crate::treewalk::walk(
        src.as_raw_fd(),
        |_, _| if found.borrow().is_err() { crate::treewalk::Descend::No } else { crate::treewalk::Descend::Yes },
        |v| {
            for e in v.entries {
                n.set(n.get() + 1);
                if found.borrow().is_err() {
                    return;
                }
                if let Some(l) = limit.filter(|&l| n.get() > l) {
                    *found.borrow_mut() = Err(FsError::Protected { path: shown.to_path_buf(), reason: format!("a directory of more than {l} entries is not moved by the file tools") });
                    return;
                }
                if let Err(e) = check(&base, v.rel, e) {
                    *found.borrow_mut() = Err(e);
                }
            }
        },
    );
    found.into_inner()
}

/// The type of the entry `rel` below `dir` (not following a symlink);
/// a file when there is none yet.
fn type_at(dir: &OwnedFd, rel: &Path) -> Type {
    let Ok(c) = (if rel.as_os_str().is_empty() { Ok(CString::new(".").unwrap()) } else { cstr(rel) }) else { return Type::File };
    // SAFETY: fstatat into a zeroed struct, below our directory fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Type::File;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Type::Dir,
        libc::S_IFLNK => Type::Symlink,
        libc::S_IFREG => Type::File,
        _ => Type::Other,
    }
}

/// Remove everything inside the directory `dir` without following symlinks.
fn remove_tree(dir: &OwnedFd) -> std::io::Result<()> {
    let names: Vec<std::ffi::OsString> = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?.flatten().map(|e| e.file_name()).collect();
    for n in names {
        let c = CString::new(n.as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: unlinkat within our directory fd.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } == 0 {
            continue;
        }
        let sub = openat2(dir.as_raw_fd(), Path::new(&n), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0, BENEATH | libc::RESOLVE_NO_SYMLINKS)?;
        remove_tree(&sub)?;
        // SAFETY: rmdir the emptied subdirectory.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
