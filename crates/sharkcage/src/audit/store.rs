//! The audit directory: its files, keys and segments.
//!
//! ```text
//! <dir>/                     mode 0700
//!   meta.json                {v, logId, alg, created}            0600
//!   chain.key                HMAC-SHA256 key (keyed logs)        0600
//!   signing.pk8              Ed25519 checkpoint key (PKCS#8)     0600
//!   checkpoints.jsonl        signed checkpoints                  0600
//!   exported.json            the last checkpoint exported        0600
//!   retention.json           the operator's retention settings   0600
//!   audit-000001.jsonl …     record segments, oldest first       0600
//!   lock                     held (flock) by the one writer
//! ```
//!
//! Anything else in the directory is an error that names the file: a
//! verifier must not skip what it does not understand.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use super::record::{hex, parse_ts, unhex, Hasher, Record};
use super::retention::SegInfo;
use super::AuditError;

pub const META: &str = "meta.json";
pub const CHAIN_KEY: &str = "chain.key";
pub const SIGNING_KEY: &str = "signing.pk8";
pub const CHECKPOINTS: &str = "checkpoints.jsonl";
pub const LOCK: &str = "lock";
/// Every file the directory may hold besides its segments.
const KNOWN: [&str; 7] = [META, CHAIN_KEY, SIGNING_KEY, CHECKPOINTS, LOCK, super::retention::EXPORTED_FILE, super::retention::RETENTION_FILE];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    pub v: u32,
    pub log_id: String,
    /// "sha256" or "hmac-sha256".
    pub alg: String,
    pub created: String,
}

/// `audit-NNNNNN.jsonl`.
pub fn segment_name(n: u64) -> String {
    format!("audit-{n:06}.jsonl")
}

pub fn segment_number(name: &str) -> Option<u64> {
    let n = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if n.len() < 6 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The segments, oldest first; errors on foreign files.
pub fn scan(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let mut segs = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| AuditError::Io(dir.to_path_buf(), e))?;
    for e in rd {
        let e = e.map_err(|e| AuditError::Io(dir.to_path_buf(), e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = segment_number(&name) {
            segs.push((n, e.path()));
        } else if !KNOWN.contains(&name.as_str()) && !is_temp(&name) {
            return Err(AuditError::Foreign(e.path()));
        }
    }
    segs.sort();
    for w in segs.windows(2) {
        if w[1].0 != w[0].0 + 1 {
            return Err(AuditError::Corrupt(w[1].1.clone(), format!("segment {} is missing between {} and {}", segment_name(w[0].0 + 1), segment_name(w[0].0), segment_name(w[1].0))));
        }
    }
    Ok(segs)
}

/// A temporary file of an atomic write of one of the known files.
fn is_temp(name: &str) -> bool {
    [META, super::retention::EXPORTED_FILE, super::retention::RETENTION_FILE].iter().any(|k| name.starts_with(&format!(".{k}.tmp-")))
}

/// Size, first and last seq, newest time and last hash of a closed
/// segment, from its first and last lines only.
pub fn segment_info(n: u64, path: &Path) -> Option<SegInfo> {
    let f = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let first: Record = serde_json::from_slice(&first_line(&f, len)?).ok()?;
    let last: Record = serde_json::from_slice(&last_line(&f, len)?).ok()?;
    Some(SegInfo { n, bytes: len, first_seq: first.seq, last_seq: last.seq, last_ms: parse_ts(&last.ts).unwrap_or(0), last_hash: last.hash? })
}

fn read_at(f: &File, off: u64, n: u64) -> Option<Vec<u8>> {
    let mut v = vec![0u8; n as usize];
    std::os::unix::fs::FileExt::read_exact_at(f, &mut v, off).ok()?;
    Some(v)
}

/// The bytes before the first `\n`.
fn first_line(f: &File, len: u64) -> Option<Vec<u8>> {
    let mut n = 64 * 1024u64;
    loop {
        let chunk = read_at(f, 0, n.min(len))?;
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            return Some(chunk[..i].to_vec());
        }
        if n >= len {
            return None;
        }
        n *= 4;
    }
}

/// The last complete line (the file ends with `\n`), without it.
fn last_line(f: &File, len: u64) -> Option<Vec<u8>> {
    if len == 0 {
        return None;
    }
    let mut n = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(n);
        let chunk = read_at(f, start, len - start)?;
        let (nl, body) = chunk.split_last()?;
        if *nl != b'\n' {
            return None;
        }
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => return Some(body[i + 1..].to_vec()),
            None if start == 0 => return Some(body.to_vec()),
            None => n *= 4,
        }
    }
}

pub fn create_private(path: &Path, data: &[u8]) -> Result<(), AuditError> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path).map_err(|e| AuditError::Io(path.to_path_buf(), e))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| AuditError::Io(path.to_path_buf(), e))
}

pub fn read_small(path: &Path) -> Result<Vec<u8>, AuditError> {
    let mut f = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(|e| AuditError::Io(path.to_path_buf(), e))?;
    let mut v = Vec::new();
    Read::by_ref(&mut f).take(1 << 20).read_to_end(&mut v).map_err(|e| AuditError::Io(path.to_path_buf(), e))?;
    Ok(v)
}

/// The log's keys and identity.
pub struct Keys {
    pub meta: Meta,
    pub hasher: Hasher,
    pub signer: Option<Ed25519KeyPair>,
    pub public: Option<String>,
}

/// Load the log's meta and keys; with `create`, make a new log if the
/// directory has none.
pub fn load_keys(dir: &Path, create: Option<bool>) -> Result<Keys, AuditError> {
    let meta_path = dir.join(META);
    if !meta_path.exists() {
        let Some(keyed) = create else {
            return Err(AuditError::NoLog(dir.to_path_buf()));
        };
        if !scan(dir)?.is_empty() {
            return Err(AuditError::Corrupt(meta_path, "missing, but the directory has record segments".into()));
        }
        let rng = ring::rand::SystemRandom::new();
        let mut id = [0u8; 16];
        ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| AuditError::Other("no randomness".into()))?;
        if keyed && !dir.join(CHAIN_KEY).exists() {
            let mut k = [0u8; 32];
            ring::rand::SecureRandom::fill(&rng, &mut k).map_err(|_| AuditError::Other("no randomness".into()))?;
            create_private(&dir.join(CHAIN_KEY), hex(&k).as_bytes())?;
        }
        if !dir.join(SIGNING_KEY).exists() {
            let pk8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| AuditError::Other("cannot generate the signing key".into()))?;
            create_private(&dir.join(SIGNING_KEY), pk8.as_ref())?;
        }
        let meta = Meta { v: 1, log_id: hex(&id), alg: if keyed { "hmac-sha256" } else { "sha256" }.into(), created: super::record::format_ts(super::record::now_ms()) };
        crate::fileio::write_atomic(&meta_path, serde_json::to_string_pretty(&meta).unwrap().as_bytes(), 0o600).map_err(|e| AuditError::Io(meta_path.clone(), e))?;
    }
    let meta: Meta = serde_json::from_slice(&read_small(&meta_path)?).map_err(|e| AuditError::Corrupt(meta_path.clone(), e.to_string()))?;
    if meta.v != 1 || unhex(&meta.log_id).map(|b| b.len()) != Some(16) {
        return Err(AuditError::Corrupt(meta_path, "unknown version or malformed logId".into()));
    }
    let hasher = match meta.alg.as_str() {
        "sha256" => Hasher::Sha256,
        "hmac-sha256" => {
            let p = dir.join(CHAIN_KEY);
            let raw = read_small(&p)?;
            let k = std::str::from_utf8(&raw).ok().and_then(|s| unhex(s.trim())).filter(|k| k.len() == 32).ok_or_else(|| AuditError::Corrupt(p.clone(), "not a 32-byte hex key".into()))?;
            Hasher::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k))
        }
        other => return Err(AuditError::Corrupt(meta_path, format!("unknown alg {other:?}"))),
    };
    let sp = dir.join(SIGNING_KEY);
    let signer = if sp.exists() {
        Some(Ed25519KeyPair::from_pkcs8(&read_small(&sp)?).map_err(|_| AuditError::Corrupt(sp.clone(), "not an Ed25519 PKCS#8 key".into()))?)
    } else {
        None
    };
    let public = signer.as_ref().map(|s| hex(s.public_key().as_ref()));
    Ok(Keys { meta, hasher, signer, public })
}

/// Take the directory's writer lock, or say who holds it. Returns the lock
/// and what the previous writer left in it: `running pid N` if it never
/// closed (it crashed or was killed), `closed`, or nothing for a new log.
pub fn lock(dir: &Path) -> Result<(File, String), AuditError> {
    let p = dir.join(LOCK);
    let f = OpenOptions::new().read(true).write(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(&p).map_err(|e| AuditError::Io(p.clone(), e))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut who = String::new();
        let _ = (&f).read_to_string(&mut who);
        return Err(AuditError::InUse(dir.to_path_buf(), who.trim().to_string()));
    }
    let mut before = String::new();
    let _ = (&f).read_to_string(&mut before);
    mark(&f, &format!("running pid {}", std::process::id()));
    Ok((f, before.trim().to_string()))
}

/// Replace the lock file's text (and sync it).
pub fn mark(f: &File, text: &str) {
    use std::io::{Seek, SeekFrom};
    let mut f = f;
    let _ = f.set_len(0);
    let _ = f.seek(SeekFrom::Start(0));
    let _ = f.write_all(text.as_bytes());
    let _ = f.sync_data();
}

pub fn fsync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
