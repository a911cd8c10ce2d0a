//! Where `sc skill add` takes a skill from besides a local directory: a
//! tarball (`.tar`, `.tar.gz`, `.tgz`) or a git repository. Either is
//! brought into a private scratch directory first; `sc skill add` then
//! treats that directory like any local one (hash, declaration, copy).
//!
//! * **Tarballs** are read in-process, entry by entry: only regular files
//!   and directories, each path made of plain names (no `/` at the start,
//!   no `..`), files created new (`O_EXCL`) with no symlink anywhere, so an
//!   archive cannot write outside the scratch directory or through a link.
//!   Anything else (symlinks, hard links, devices, FIFOs) is an error naming
//!   the member. Bounded: 20 000 entries, 256 MiB.
//! * **git** clones with `--depth 1`, no submodules, no hooks (an empty
//!   `core.hooksPath`), no terminal prompt; the `.git` directory is not
//!   part of the skill.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

const MAX_ENTRIES: usize = 20_000;
const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// What a source is.
pub enum Source {
    Dir(PathBuf),
    Tarball(PathBuf),
    Git(String),
}

pub fn classify(s: &str) -> Source {
    let lower = s.to_ascii_lowercase();
    if ["https://", "http://", "ssh://", "git://", "git@", "file://"].iter().any(|p| lower.starts_with(p)) || lower.ends_with(".git") {
        return Source::Git(s.to_string());
    }
    if [".tar", ".tar.gz", ".tgz"].iter().any(|x| lower.ends_with(x)) {
        return Source::Tarball(PathBuf::from(s));
    }
    Source::Dir(PathBuf::from(s))
}

/// Unpack `file` into `dst` (an empty directory of ours); the skill's root
/// (a single top-level directory is taken as the root).
pub fn unpack(file: &Path, dst: &Path) -> Result<PathBuf, String> {
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut magic = [0u8; 2];
    let gz = {
        let mut r = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
        r.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b]
    };
    let reader: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(f)) } else { Box::new(f) };
    let mut archive = tar::Archive::new(reader);
    let mut count = 0usize;
    let mut bytes = 0u64;
    let entries = archive.entries().map_err(|e| format!("{}: not a tar archive: {e}", file.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", file.display()))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(format!("{}: more than {MAX_ENTRIES} entries", file.display()));
        }
        let raw = entry.path().map_err(|e| format!("{}: a member name: {e}", file.display()))?.into_owned();
        let shown = raw.display().to_string();
        let rel = plain(&raw).ok_or_else(|| format!("{}: member {shown:?}: not a plain relative path (absolute, or with `..`); refused", file.display()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        let to = dst.join(&rel);
        if kind.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
        } else if kind.is_file() {
            if let Some(p) = to.parent() {
                std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            bytes += entry.header().size().unwrap_or(0);
            if bytes > MAX_BYTES {
                return Err(format!("{}: more than {MAX_BYTES} bytes", file.display()));
            }
            let exec = entry.header().mode().map(|m| m & 0o111 != 0).unwrap_or(false);
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(if exec { 0o700 } else { 0o600 })
                .custom_flags(libc::O_NOFOLLOW)
                .open(&to)
                .map_err(|e| format!("{}: member {shown:?}: {e}", file.display()))?;
            std::io::copy(&mut entry.by_ref().take(MAX_BYTES), &mut out).map_err(|e| format!("{}: member {shown:?}: {e}", file.display()))?;
        } else {
            return Err(format!("{}: member {shown:?}: a {}; a skill archive holds only files and directories", file.display(), kind_name(kind)));
        }
    }
    Ok(single_root(dst))
}

fn kind_name(k: tar::EntryType) -> &'static str {
    if k.is_symlink() {
        "symlink"
    } else if k.is_hard_link() {
        "hard link"
    } else if k.is_character_special() || k.is_block_special() {
        "device"
    } else if k.is_fifo() {
        "FIFO"
    } else {
        "special entry"
    }
}

/// `p` without `./` parts, if it is made of plain names only.
fn plain(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The one directory `dir` holds, if it holds nothing else; else `dir`.
fn single_root(dir: &Path) -> PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir).map(|r| r.flatten().collect()).unwrap_or_default();
    match entries.as_slice() {
        [one] if one.file_type().map(|t| t.is_dir()).unwrap_or(false) => one.path(),
        _ => dir.to_path_buf(),
    }
}

/// Clone `url` into `dst` (not existing yet); the skill's root, without `.git`.
pub fn clone(url: &str, dst: &Path) -> Result<PathBuf, String> {
    if url.starts_with('-') {
        return Err(format!("{url}: not a repository URL"));
    }
    let out = std::process::Command::new("git")
        .args(["-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never", "clone", "--quiet", "--depth", "1", "--no-recurse-submodules", "--", url])
        .arg(dst)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!("git clone {url}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    std::fs::remove_dir_all(dst.join(".git")).map_err(|e| format!("{}: {e}", dst.join(".git").display()))?;
    Ok(dst.to_path_buf())
}
