//! The last protected-state scan of each writable root, kept between calls
//! in sharkcage's state directory (`<state>/scan/<digest of the root>.bin`,
//! 0600, hidden from every sandbox), so that a call re-reads only the
//! directories that changed since (see `protected.rs` for why that is
//! sound). It is only a cache: anything unreadable, from another version,
//! for another root or simply missing means "read everything".
//!
//! Format (little endian): magic `SCSCAN4\0`, root (u32 length + bytes),
//! rules digest (u64), scan time (i64), node count (u32), then per directory node (the root
//! first): dev, ino (u64), ctime seconds (i64) and nanoseconds (i64),
//! subdirectories (u32 count, each: name as u32 length + bytes, node index
//! u32), marks (u32 count, each: name, role u8). The file is written
//! without `fsync`: a torn cache fails to decode and means a full read.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::protected::{DirId, Node, Sub, Tree, NOT_SCANNED};
use crate::gitstate::Role;

const MAGIC: &[u8; 8] = b"SCSCAN4\0";
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

/// Encode a tree: its nodes reachable from the root (see [`Tree::reachable`]).
pub fn encode(t: &Tree) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let nodes = t.reachable();
    let mut v = Vec::with_capacity(64 + nodes.len() * 48);
    v.extend_from_slice(MAGIC);
    put_bytes(&mut v, t.root.as_os_str().as_bytes());
    v.extend_from_slice(&t.rules.to_le_bytes());
    v.extend_from_slice(&t.scanned_at.to_le_bytes());
    v.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
    for d in &nodes {
        v.extend_from_slice(&d.id.dev.to_le_bytes());
        v.extend_from_slice(&d.id.ino.to_le_bytes());
        v.extend_from_slice(&d.id.ctime.0.to_le_bytes());
        v.extend_from_slice(&d.id.ctime.1.to_le_bytes());
        v.extend_from_slice(&(d.subdirs.len() as u32).to_le_bytes());
        for s in &d.subdirs {
            put_bytes(&mut v, &s.name);
            v.extend_from_slice(&s.node.to_le_bytes());
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

/// Decode a tree; None for anything malformed, node indices included:
/// every node but the root is the subdirectory of exactly one other (the
/// walk puts nodes back in their slots, which needs one parent each).
pub fn decode(b: &[u8]) -> Option<Tree> {
    use std::os::unix::ffi::OsStrExt;
    let mut c = Cur { b, i: 0 };
    if c.take(8)? != MAGIC {
        return None;
    }
    let root = PathBuf::from(std::ffi::OsStr::from_bytes(c.bytes()?));
    let rules = c.u64()?;
    let scanned_at = c.i64()?;
    let n = c.u32()? as usize;
    let mut nodes = Vec::with_capacity(n.min(1 << 20));
    let mut has_parent = vec![false; n.min(1 << 24)];
    for _ in 0..n {
        let id = DirId { dev: c.u64()?, ino: c.u64()?, ctime: (c.i64()?, c.i64()?) };
        let ns = c.u32()? as usize;
        let mut subdirs = Vec::with_capacity(ns.min(1 << 16));
        for _ in 0..ns {
            let name = c.bytes()?.into();
            let node = c.u32()?;
            if node != NOT_SCANNED {
                let seen = has_parent.get_mut(node as usize)?;
                if node == 0 || *seen {
                    return None;
                }
                *seen = true;
            }
            subdirs.push(Sub { name, node });
        }
        let nm = c.u32()? as usize;
        let mut marks = Vec::with_capacity(nm.min(1 << 10));
        for _ in 0..nm {
            let name: Box<[u8]> = c.bytes()?.into();
            let role = *ROLES.get(*c.take(1)?.first()? as usize)?;
            marks.push((name, role));
        }
        nodes.push(Node { id, subdirs, marks });
    }
    (c.i == b.len()).then_some(Tree { root, rules, scanned_at, nodes })
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
        if let Some(t) = Mapped::open(&f).and_then(|m| decode(m.bytes())).filter(|t| &t.root == r) {
            v.push(t);
        }
    }
    v
}

/// A cache file mapped read-only (its pages come straight from the page
/// cache: no copy, no page fault per page). Cache files are replaced by a
/// rename, never rewritten in place, so a mapped file does not shrink
/// under the launcher (one truncated by hand would stop it with SIGBUS:
/// before the call, so nothing runs).
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    fn open(path: &Path) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path).ok()?;
        let len = usize::try_from(f.metadata().ok()?.len()).ok().filter(|&n| n > 0 && n as u64 <= MAX_BYTES)?;
        // SAFETY: a private read-only mapping of `len` bytes of our own open
        // file; unmapped in Drop, never written.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_POPULATE, f.as_raw_fd(), 0) };
        (ptr != libc::MAP_FAILED).then_some(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmap exactly the mapping made in `open`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Let go of trees at the end of a launcher's run without freeing them
/// node by node: after the sandbox was cloned, every page written (a free
/// writes to the chunk it frees) costs a copy-on-write fault, about 3 µs
/// each in a VM, while the process's exit a moment later returns all
/// memory at once. Only for the `sc` process, which exits after the call.
pub fn discard(trees: Vec<Tree>) {
    std::mem::forget(trees);
}

/// Keep `trees` for the next call (best effort: a cache).
pub fn save(trees: &[Tree]) {
    if trees.iter().all(|t| t.nodes.is_empty()) {
        return;
    }
    let Some(d) = dir() else { return };
    if crate::fileio::ensure_private_dir(&d).is_err() {
        return;
    }
    for t in trees.iter().filter(|t| !t.nodes.is_empty()) {
        if let Some(f) = file_for(&t.root) {
            let _ = write_unsynced(&f, &encode(t));
        }
    }
}

/// Temporary file (exclusive, never through a symlink) and rename; no sync.
fn write_unsynced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
    let r = f.write_all(data).and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// A scan to keep, written when dropped (after the call's result is out).
#[derive(Debug, Clone, Default)]
pub struct Pending(Option<Vec<Tree>>);

impl Pending {
    pub fn new(trees: Vec<Tree>) -> Pending {
        Pending(Some(trees))
    }
    pub fn save(&mut self) {
        if let Some(t) = self.0.take() {
            let t0 = std::time::Instant::now();
            save(&t);
            if std::env::var_os("SHARKCAGE_TIMING").is_some() {
                eprintln!("scan cache saved in {:?}", t0.elapsed());
            }
            discard(t);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.save();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_damage() {
        let nodes = vec![
            Node { id: DirId { dev: 1, ino: 2, ctime: (3, 4) }, subdirs: vec![Sub { name: b"a".as_slice().into(), node: 1 }, Sub { name: b"h".as_slice().into(), node: NOT_SCANNED }], marks: vec![(b".bashrc".as_slice().into(), Role::Startup)] },
            Node { id: DirId { dev: 1, ino: 5, ctime: (6, 7) }, subdirs: vec![], marks: vec![(b"config".as_slice().into(), Role::GitConfig)] },
        ];
        let expect = nodes.clone();
        let t = Tree { root: PathBuf::from("/w"), rules: 7, scanned_at: 99, nodes };
        let b = encode(&t);
        let back = decode(&b).unwrap();
        assert_eq!(back.root, t.root);
        assert_eq!(back.scanned_at, 99);
        assert_eq!(back.reachable(), expect);
        for cut in [0, 7, 20, b.len() - 1] {
            assert!(decode(&b[..cut]).is_none());
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(decode(&extra).is_none());
    }

    #[test]
    fn encode_keeps_only_reachable_nodes_and_decode_wants_one_parent_each() {
        let leaf = |ino| Node { id: DirId { dev: 1, ino, ctime: (0, 0) }, subdirs: vec![], marks: vec![] };
        let sub = |name: &[u8], node| Sub { name: name.into(), node };
        // Node 1 is left over (a directory gone), node 3 is reached from 2.
        let nodes = vec![
            Node { subdirs: vec![sub(b"b", 2)], ..leaf(10) },
            leaf(11),
            Node { subdirs: vec![sub(b"c", 3)], ..leaf(12) },
            leaf(13),
        ];
        let t = Tree { root: PathBuf::from("/w"), rules: 0, scanned_at: 0, nodes };
        let back = decode(&encode(&t)).unwrap();
        let inos: Vec<u64> = back.reachable().iter().map(|n| n.id.ino).collect();
        assert_eq!(inos, vec![10, 12, 13]);
        assert_eq!(back.nodes.len(), 3);
        // Two parents for one node, or the root as a child: not a tree (the
        // same raw form with one parent decodes).
        for (bad, ok) in [(vec![sub(b"b", 1)], true), (vec![sub(b"b", 1), sub(b"c", 1)], false), (vec![sub(b"b", 0)], false)] {
            let t = Tree { root: PathBuf::from("/w"), rules: 0, scanned_at: 0, nodes: vec![Node { subdirs: bad, ..leaf(1) }, leaf(2)] };
            // Encoded as is (the walk would never make it): the raw form.
            let mut v = Vec::new();
            v.extend_from_slice(MAGIC);
            put_bytes(&mut v, b"/w");
            v.extend_from_slice(&0u64.to_le_bytes());
            v.extend_from_slice(&0i64.to_le_bytes());
            v.extend_from_slice(&2u32.to_le_bytes());
            for i in 0..2 {
                let d = &t.nodes[i];
                for x in [d.id.dev, d.id.ino] {
                    v.extend_from_slice(&x.to_le_bytes());
                }
                v.extend_from_slice(&0i64.to_le_bytes());
                v.extend_from_slice(&0i64.to_le_bytes());
                v.extend_from_slice(&(d.subdirs.len() as u32).to_le_bytes());
                for s in &d.subdirs {
                    put_bytes(&mut v, &s.name);
                    v.extend_from_slice(&s.node.to_le_bytes());
                }
                v.extend_from_slice(&0u32.to_le_bytes());
            }
            assert_eq!(decode(&v).is_some(), ok);
        }
    }
}
