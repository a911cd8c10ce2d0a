//! Path rules turned into concrete host paths, and the mandatory lists that
//! no policy can lift.
//!
//! * `~` is the caller's home. Both `$HOME` and the passwd entry of the real
//!   uid count: when they differ, the mandatory denies are applied under both.
//! * Read-rule globs are expanded against what exists now (once per call).
//! * Paths are canonicalised (symlinks resolved) so a rule written through a
//!   symlink still covers the real location. A rule naming a path that does
//!   not exist is kept as written (it may be created later and then it is
//!   still covered by an ancestor rule, or it is simply absent).

use std::ffi::{CStr, OsString};
use std::path::{Component, Path, PathBuf};

use super::PathEntry;

/// Home-relative paths whose contents the sandbox can never read.
pub const MANDATORY_DENY_READ_HOME: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".config/gcloud",
    ".azure",
    ".kube",
    ".docker",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".config/gh",
    ".config/op",
    ".password-store",
    ".local/share/keyrings",
    ".openclaw",
    ".sharkcage",
    ".config/sharkcage",
    ".local/share/sharkcage",
    ".local/state/sharkcage",
    ".bash_history",
    ".zsh_history",
    // Credential stores of package managers, databases and cloud CLIs:
    // each file (or directory) holds tokens or passwords and little else.
    ".cargo/credentials.toml",
    ".cargo/credentials",
    ".gem/credentials",
    ".pgpass",
    ".my.cnf",
    ".vault-token",
    ".terraform.d/credentials.tfrc.json",
    ".s3cfg",
    ".boto",
    ".m2/settings-security.xml",
    ".composer/auth.json",
    ".config/composer/auth.json",
    ".config/rclone/rclone.conf",
    ".config/hub",
    ".config/glab-cli",
    ".config/doctl",
    ".config/hcloud",
    ".config/stripe",
    ".config/openstack",
    ".fly",
    ".oci",
    ".aliyun",
    // REPL and database shell histories (passwords typed at prompts).
    ".python_history",
    ".node_repl_history",
    ".psql_history",
    ".mysql_history",
    ".sqlite_history",
    ".rediscli_history",
];

/// Runtime secret places every sandbox is denied (per-user runtime dirs,
/// container and orchestrator secrets), whoever the caller is.
pub const MANDATORY_DENY_READ_RUN: &[&str] = &["/run/user", "/run/secrets", "/var/run/secrets"];

/// Absolute paths whose contents the sandbox can never read.
pub const MANDATORY_DENY_READ_ABS: &[&str] = &[
    "/etc/sharkcage",
    "/var/lib/sharkcage",
    "/opt/sharkcage/var",
    "/opt/sharkcage/etc",
    // Readable by a root caller's (mapped) uid 0 without any capability.
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssl/private",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_dsa_key",
];

/// Root-only host files and directories that a root caller's sandbox (which
/// keeps uid 0, the owner of root-owned files) could otherwise read. Not a
/// complete list: the README recommends running the gateway as an ordinary
/// user, where file modes protect everything not world-readable.
pub const MANDATORY_DENY_READ_ROOT: &[&str] = &[
    "/var/backups",
    "/var/log/auth.log",
    "/var/log/btmp",
    "/var/log/secure",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/security/opasswd",
    "/var/spool/cron",
    "/etc/ssh/sshd_config.d",
    "/var/lib/sudo",
    "/etc/NetworkManager/system-connections",
    "/etc/wireguard",
];

/// The caller's home directories (deduplicated): `$HOME` and the passwd home.
pub fn home_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(h) = std::env::var_os("HOME") {
        let p = PathBuf::from(h);
        if p.is_absolute() && p != Path::new("/") {
            v.push(p);
        }
    }
    if let Some(p) = passwd_home() {
        if p != Path::new("/") && !v.contains(&p) {
            v.push(p);
        }
    }
    // Also the canonical forms (a home reached through a symlink).
    let canon: Vec<PathBuf> = v.iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect();
    for c in canon {
        if !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

/// The primary home: `$HOME` if absolute, else the passwd entry.
pub fn primary_home() -> Option<PathBuf> {
    home_dirs().into_iter().next()
}

/// Identity of `/etc/passwd` (device, inode, size, change time): what the
/// passwd-derived answers below are remembered against.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

fn passwd_stamp() -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/etc/passwd").ok()?;
    Some((m.dev(), m.ino(), m.size(), m.ctime(), m.ctime_nsec()))
}

/// Remember `f()` for as long as `key` stays the same (per process).
fn remembered<K: PartialEq + Clone, V: Clone>(cell: &std::sync::Mutex<Option<(K, V)>>, key: K, f: impl FnOnce() -> V) -> V {
    if let Ok(g) = cell.lock() {
        if let Some((k, v)) = g.as_ref() {
            if *k == key {
                return v.clone();
            }
        }
    }
    let v = f();
    if let Ok(mut g) = cell.lock() {
        *g = Some((key, v.clone()));
    }
    v
}

/// Home directories of the accounts in the passwd database: those that
/// exist and are owned by their account (which skips system accounts whose
/// "home" is `/bin` or `/usr/sbin`), never `/`. Remembered while
/// `/etc/passwd` is unchanged (a call asks several times).
pub fn all_user_homes() -> Vec<PathBuf> {
    static CELL: std::sync::Mutex<Option<(Stamp, Vec<PathBuf>)>> = std::sync::Mutex::new(None);
    remembered(&CELL, passwd_stamp(), read_all_user_homes)
}

fn read_all_user_homes() -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut v = Vec::new();
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        let (Some(uid), Some(home)) = (f.get(2).and_then(|u| u.parse::<u32>().ok()), f.get(5)) else { continue };
        let p = PathBuf::from(home);
        if !p.is_absolute() || p == Path::new("/") || v.contains(&p) {
            continue;
        }
        if std::fs::metadata(&p).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            v.push(p);
        }
    }
    v
}

/// The passwd home of the real uid, remembered while `/etc/passwd` and
/// the uid are unchanged.
fn passwd_home() -> Option<PathBuf> {
    type Key = (u32, Stamp);
    static CELL: std::sync::Mutex<Option<(Key, Option<PathBuf>)>> = std::sync::Mutex::new(None);
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    remembered(&CELL, (uid, passwd_stamp()), read_passwd_home)
}

fn read_passwd_home() -> Option<PathBuf> {
    // SAFETY: getpwuid_r writes into our buffer and struct; we read the
    // returned pointer only when the call succeeded and it is non-null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0u8; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::getuid(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        let dir = CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned();
        let p = PathBuf::from(dir);
        p.is_absolute().then_some(p)
    }
}

/// Expand `~`, remove `.` and `..` lexically, and canonicalise the longest
/// existing prefix (so symlinked parents are resolved).
pub fn resolve(path: &str, home: Option<&Path>) -> Result<PathBuf, String> {
    let expanded = if path == "~" {
        home.ok_or("no home directory is known for ~")?.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.ok_or("no home directory is known for ~")?.join(rest)
    } else {
        PathBuf::from(path)
    };
    if !expanded.is_absolute() {
        return Err(format!("path {path:?} is not absolute"));
    }
    Ok(canonicalize_lenient(&normalize(&expanded)))
}

/// Lexical normalisation: drop `.`, apply `..` (never above `/`).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

/// Symlinks followed by [`resolve_trusting`] before giving up (the kernel's limit).
const MAX_HOPS: usize = 40;

/// Absolute `p` with symlinks resolved as the kernel would, except a symlink
/// that lies inside one of `untrusted` (a call's writable roots, where a
/// sandboxed command may have planted it): that one stays a path component,
/// so a later open with `RESOLVE_NO_SYMLINKS` fails on it. For paths the
/// launcher uses on the sandbox's behalf or writes to (listed unix sockets,
/// `--json`, `--audit-dir`).
pub fn resolve_trusting(p: &Path, untrusted: &[PathBuf]) -> PathBuf {
    // Components still to walk, the next one last.
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, p);
    let mut out = PathBuf::from("/");
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&c);
        let trusted = !untrusted.iter().any(|w| next.starts_with(w));
        match std::fs::read_link(&next) {
            Ok(target) if trusted && hops < MAX_HOPS => {
                hops += 1;
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                push_components(&mut todo, &target);
            }
            _ => out = next,
        }
    }
    out
}

/// Push `p`'s components onto the stack so that the first is popped first.
fn push_components(todo: &mut Vec<OsString>, p: &Path) {
    for c in p.components().rev() {
        match c {
            Component::Normal(n) => todo.push(n.to_os_string()),
            Component::ParentDir => todo.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

/// Canonicalise the longest existing prefix of `p` and append the rest.
pub fn canonicalize_lenient(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let mut missing = Vec::new();
    let mut cur = p.to_path_buf();
    loop {
        match cur.file_name() {
            Some(name) => missing.push(name.to_os_string()),
            None => return p.to_path_buf(),
        }
        if !cur.pop() {
            return p.to_path_buf();
        }
        if let Ok(c) = std::fs::canonicalize(&cur) {
            let mut out = c;
            for m in missing.iter().rev() {
                out.push(m);
            }
            return out;
        }
    }
}

/// Resolve a list of entries. Read rules (`globs == true`) expand glob
/// patterns against the filesystem now; a pattern matching nothing adds
/// nothing.
pub fn resolve_entries(entries: &[PathEntry], home: Option<&Path>, globs: bool) -> Result<Vec<PathBuf>, (usize, String)> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let has_glob = !e.literal && e.path.contains(['*', '?', '[']);
        if globs && has_glob {
            let expanded = if let Some(rest) = e.path.strip_prefix("~/") {
                home.ok_or((i, "no home directory is known for ~".to_string()))?.join(rest).display().to_string()
            } else {
                e.path.clone()
            };
            let paths = glob::glob(&expanded).map_err(|err| (i, format!("bad glob {:?}: {err}", e.path)))?;
            for p in paths.flatten() {
                let r = canonicalize_lenient(&normalize(&p));
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        } else {
            let r = resolve(&e.path, home).map_err(|m| (i, m))?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_and_dots() {
        let h = Path::new("/nonexistent-home-x");
        assert_eq!(resolve("~/a/../b/./c", Some(h)).unwrap(), PathBuf::from("/nonexistent-home-x/b/c"));
        assert_eq!(resolve("/x/../../etc", None).unwrap(), std::fs::canonicalize("/etc").unwrap());
        assert!(resolve("~/x", None).is_err());
    }

    #[test]
    fn symlinked_parent_is_resolved() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let r = resolve(&format!("{}/link/missing", d.path().display()), None).unwrap();
        assert_eq!(r, std::fs::canonicalize(&real).unwrap().join("missing"));
    }

    #[test]
    fn glob_expansion_for_read_rules() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.env"), "").unwrap();
        std::fs::write(d.path().join("b.env"), "").unwrap();
        std::fs::write(d.path().join("c.txt"), "").unwrap();
        let e = vec![PathEntry { path: format!("{}/*.env", d.path().display()), literal: false }];
        let r = resolve_entries(&e, None, true).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|p| p.extension().unwrap() == "env"));
    }
}
