//! Protected paths inside writable roots: which exist, found without ever
//! following a symlink.
//!
//! A protected entry is a path whose content would run code or change tools
//! on the host later: shell rc files, editor and agent configuration, and
//! the parts of a git directory that git executes or obeys (`hooks`,
//! `config`, `config.worktree`, `commondir`, which can redirect both). The
//! scan reports each entry as it is *on disk*: a file, a directory, or a
//! symlink with its target. A symlink at a protected name (or at `.git`,
//! `.claude`, `.config` themselves) is an entry of its own: pointing `.git` at
//! a directory the command made would otherwise smuggle in hooks.
//!
//! The same scan runs before the call (existing entries become read-only
//! mounts, see `plan.rs`) and after it (`quarantine.rs`: what is new or
//! changed is moved aside).

use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::policy::paths;

/// Names protected wherever they appear.
fn is_simple(name: &str) -> bool {
    paths::PROTECTED_NAMES.iter().any(|n| !n.contains('/') && *n == name)
}

/// Second components protected under a first component (`.git` → `hooks`…).
fn nested_under(first: &str, allow_git_config: bool) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = paths::PROTECTED_NAMES
        .iter()
        .filter_map(|n| n.split_once('/').filter(|(a, _)| *a == first).map(|(_, b)| b))
        .collect();
    if first == ".git" {
        v.extend(["commondir", "config.worktree"]);
        if allow_git_config {
            v.retain(|n| *n != "config");
        }
    }
    v
}

fn is_first_component(name: &str) -> bool {
    paths::PROTECTED_NAMES.iter().any(|n| n.split_once('/').is_some_and(|(a, _)| a == name))
}

/// What an entry is on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: Kind,
    /// Device and inode, to notice a replaced entry.
    pub id: (u64, u64),
}

fn entry(p: PathBuf) -> Option<Entry> {
    let m = p.symlink_metadata().ok()?;
    let kind = if m.file_type().is_symlink() {
        Kind::Symlink(std::fs::read_link(&p).unwrap_or_default())
    } else if m.is_dir() {
        Kind::Dir
    } else {
        Kind::File
    };
    Some(Entry { path: p, kind, id: (m.dev(), m.ino()) })
}

/// Result of a scan.
#[derive(Debug, Default)]
pub struct Scan {
    pub entries: Vec<Entry>,
    /// The scan hit its directory limit.
    pub truncated: bool,
}

/// Bound on directories visited per root.
pub const SCAN_DIR_LIMIT: usize = 50_000;

/// Scan `root` to `depth` levels (1 = only the root's own entries), skipping
/// `node_modules`, hidden paths, and never following symlinks.
pub fn scan(root: &Path, depth: u8, allow_git_config: bool, hidden: &[PathBuf]) -> Scan {
    let mut out = Scan::default();
    let mut queue: VecDeque<(PathBuf, u8)> = [(root.to_path_buf(), 0u8)].into();
    let mut visited = 0usize;
    while let Some((dir, d)) = queue.pop_front() {
        visited += 1;
        if visited > SCAN_DIR_LIMIT {
            out.truncated = true;
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name_os = e.file_name();
            let Some(name) = name_os.to_str() else { continue };
            let p = e.path();
            if hidden.iter().any(|h| p.starts_with(h)) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if is_simple(name) {
                out.entries.extend(entry(p.clone()));
            } else if is_first_component(name) {
                if ft.is_symlink() || (ft.is_file() && name == ".git") {
                    out.entries.extend(entry(p.clone()));
                } else if ft.is_dir() {
                    for sub in nested_under(name, allow_git_config) {
                        out.entries.extend(entry(p.join(sub)));
                    }
                }
            }
            if ft.is_dir() && d + 1 < depth && name != "node_modules" && name != ".git" {
                queue.push_back((p, d + 1));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_dirs_symlinks_without_following() {
        let d = tempfile::tempdir().unwrap();
        let w = d.path();
        std::fs::create_dir_all(w.join(".git/hooks")).unwrap();
        std::fs::write(w.join(".git/config"), "").unwrap();
        std::fs::write(w.join(".bashrc"), "").unwrap();
        std::fs::create_dir_all(w.join("sub/deeper/deepest")).unwrap();
        std::fs::write(w.join("sub/.mcp.json"), "").unwrap();
        std::fs::write(w.join("sub/deeper/deepest/.profile"), "").unwrap(); // depth 4: not seen
        std::os::unix::fs::symlink("nowhere", w.join(".zshrc")).unwrap();
        std::fs::create_dir_all(w.join("cd/commands")).unwrap();
        std::os::unix::fs::symlink("cd", w.join(".claude")).unwrap();
        let s = scan(w, 3, false, &[]);
        let mut got: Vec<String> = s.entries.iter().map(|e| e.path.strip_prefix(w).unwrap().display().to_string()).collect();
        got.sort();
        assert_eq!(got, vec![".bashrc", ".claude", ".git/config", ".git/hooks", ".zshrc", "sub/.mcp.json"]);
        let z = s.entries.iter().find(|e| e.path.ends_with(".zshrc")).unwrap();
        assert_eq!(z.kind, Kind::Symlink(PathBuf::from("nowhere")));
        // allowGitConfig lifts only the config.
        let s = scan(w, 3, true, &[]);
        assert!(!s.entries.iter().any(|e| e.path.ends_with(".git/config")));
        assert!(s.entries.iter().any(|e| e.path.ends_with(".git/hooks")));
    }
}
