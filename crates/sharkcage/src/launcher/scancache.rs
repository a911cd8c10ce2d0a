//! The last protected-state scan of each writable root, kept between calls
//! in sharkcage's state directory (`<state>/scan/<digest of the root>.bin`,
//! 0600, hidden from every sandbox), so that a call re-reads only the
//! directories that changed since (see `protected.rs` for why that is
//! sound). It is only a cache: anything unreadable, from another version,
//! for another root or simply missing means "read everything".
//!
//! Format (little endian): magic `SCSCAN2\0`, root (u32 length + bytes),
//! scan time (i64), count (u32), then per directory: relative path (u32 +
//! bytes), dev, ino (u64), ctime seconds (i64) and nanoseconds (i64),
//! subdirectory names (u32 count, each u32 + bytes), marks (u32 count, each
//! u32 + bytes + role u8).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::protected::{DirId, DirRec, Tree};
use crate::gitstate::Role;

const MAGIC: &[u8; 8] = b"SCSCAN2\0";
/// A cache larger than this is not read (a tree of ~1 M directories).
const MAX_BYTES: u64 = 256 << 20;

const ROLES: [Role; 9] = [
    Role::GitConfig,
    Role::GitHooks,
    Role::GitLink,
    Role::GitCommonDir,
    Role::GitDirBack,
    Role::GitTodo,
    Role::GitProgram,
    Role::Startup,
    Role::Deny,
];

fn dir() -> Option<PathBuf> {
    crate::fileio::state_dir().map(|d| d.join("scan"))
}

fn file_for(root: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let h = Sha256::digest(root.as_os_str().as_bytes());
    let hex: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
    dir().map(|d| d.join(format!("{hex}.bin")))
}

fn put_bytes(v: &mut Vec<u8>, b: &[u8]) {
    v.extend_from_slice(&(b.len() as u32).to_le_bytes());
    v.extend_from_slice(b);
}

/// Encode a tree.
pub fn encode(t: &Tree) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut v = Vec::with_capacity(64 + t.dirs.len() * 64);
    v.extend_from_slice(MAGIC);
    put_bytes(&mut v, t.root.as_os_str().as_bytes());
    v.extend_from_slice(&t.scanned_at.to_le_bytes());
    v.extend_from_slice(&(t.dirs.len() as u32).to_le_bytes());
    for (rel, d) in &t.dirs {
        put_bytes(&mut v, rel.as_os_str().as_bytes());
        v.extend_from_slice(&d.id.dev.to_le_bytes());
        v.extend_from_slice(&d.id.ino.to_le_bytes());
        v.extend_from_slice(&d.id.ctime.0.to_le_bytes());
        v.extend_from_slice(&d.id.ctime.1.to_le_bytes());
        v.extend_from_slice(&(d.subdirs.len() as u32).to_le_bytes());
        for s in &d.subdirs {
            put_bytes(&mut v, s);
        }
        v.extend_from_slice(&(d.marks.len() as u32).to_le_bytes());
        for (n, r) in &d.marks {
            put_bytes(&mut v, n);
            v.push(ROLES.iter().position(|x| x == r).unwrap_or(0) as u8);
        }
    }
    v
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Decode a tree; None for anything malformed.
pub fn decode(b: &[u8]) -> Option<Tree> {
    use std::os::unix::ffi::OsStrExt;
    let mut c = Cur { b, i: 0 };
    if c.take(8)? != MAGIC {
        return None;
    }
    let root = PathBuf::from(std::ffi::OsStr::from_bytes(c.bytes()?));
    let scanned_at = c.i64()?;
    let n = c.u32()? as usize;
    let mut dirs = HashMap::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let rel = PathBuf::from(std::ffi::OsStr::from_bytes(c.bytes()?));
        let id = DirId { dev: c.u64()?, ino: c.u64()?, ctime: (c.i64()?, c.i64()?) };
        let ns = c.u32()? as usize;
        let mut subdirs = Vec::with_capacity(ns.min(1 << 16));
        for _ in 0..ns {
            subdirs.push(c.bytes()?.to_vec());
        }
        let nm = c.u32()? as usize;
        let mut marks = Vec::with_capacity(nm.min(1 << 10));
        for _ in 0..nm {
            let name = c.bytes()?.to_vec();
            let role = *ROLES.get(*c.take(1)?.first()? as usize)?;
            marks.push((name, role));
        }
        dirs.insert(rel, DirRec { id, subdirs, marks });
    }
    (c.i == b.len()).then_some(Tree { root, scanned_at, dirs })
}

/// The cached trees of `roots` (those that exist and are whole).
pub fn load(roots: &[PathBuf]) -> Vec<Tree> {
    let mut v = Vec::new();
    for r in roots {
        let Some(f) = file_for(r) else { continue };
        let Ok(meta) = f.symlink_metadata() else { continue };
        if !meta.is_file() || meta.len() > MAX_BYTES {
            continue;
        }
        if let Some(t) = std::fs::read(&f).ok().and_then(|b| decode(&b)).filter(|t| &t.root == r) {
            v.push(t);
        }
    }
    v
}

/// Keep `trees` for the next call (best effort: a cache).
pub fn save(trees: &[Tree]) {
    let Some(d) = dir() else { return };
    if crate::fileio::ensure_private_dir(&d).is_err() {
        return;
    }
    for t in trees {
        if let Some(f) = file_for(&t.root) {
            let _ = crate::fileio::write_atomic(&f, &encode(t), 0o600);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_damage() {
        let mut dirs = HashMap::new();
        dirs.insert(PathBuf::from(""), DirRec { id: DirId { dev: 1, ino: 2, ctime: (3, 4) }, subdirs: vec![b"a".to_vec()], marks: vec![(b".bashrc".to_vec(), Role::Startup)] });
        dirs.insert(PathBuf::from("a"), DirRec { id: DirId { dev: 1, ino: 5, ctime: (6, 7) }, subdirs: vec![], marks: vec![(b"config".to_vec(), Role::GitConfig)] });
        let t = Tree { root: PathBuf::from("/w"), scanned_at: 99, dirs };
        let b = encode(&t);
        let back = decode(&b).unwrap();
        assert_eq!(back.root, t.root);
        assert_eq!(back.scanned_at, 99);
        assert_eq!(back.dirs, t.dirs);
        for cut in [0, 7, 20, b.len() - 1] {
            assert!(decode(&b[..cut]).is_none());
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(decode(&extra).is_none());
    }
}
