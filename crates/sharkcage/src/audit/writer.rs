//! The writer: one per audit directory, fed through a channel, committing
//! in groups.
//!
//! Producers call [`Audit::submit`] (fire and forget) or [`Audit::append`]
//! (resolves once the record is durable); neither ever waits for the disk.
//! The writer thread takes what is queued (up to [`MAX_BATCH`] records),
//! writes it with one `write`, `fdatasync`s, and only then acknowledges —
//! so an acknowledged record survives `kill -9` and power loss. Group
//! commit: while one sync runs, new records queue up and become the next
//! batch. `commit_interval` sets a minimum time from the start of one sync
//! to the start of the next (default 200 µs: at most 5000 syncs a second; a
//! sync takes ~0.15 ms on our machines, so the pause rarely adds latency,
//! and under load batches grow instead of syncs).
//!
//! Order of steps that matters:
//! 1. on open: take the directory lock; load keys; walk the whole chain —
//!    a chain whose head cannot be verified is refused with the reason
//!    (nothing is appended to it); a torn last line (an interrupted write)
//!    is cut back to the last complete line and a `recovered` record saying
//!    what was cut is the first thing written;
//! 2. every record is redacted and capped (`caps.rs`) on the producer's
//!    thread; refusals then pass the aggregator (`aggregate.rs`) on the
//!    writer thread, which writes them or counts them in a summary written
//!    later (when due, when too many are pending, and at close);
//! 3. rotation: when a segment would grow past `max_segment_bytes`, the
//!    next segment is started (the chain continues: its first record links
//!    to the last of the previous one); old segments are deleted as
//!    `retention.rs` decides, each after a `rotated` record naming it, its
//!    last seq and hash (and, for history newer than the last exported
//!    checkpoint, a `retention` record saying what is dropped and why) is
//!    written and synced;
//! 4. checkpoints: every `checkpoint_every` records or `checkpoint_interval`
//!    (also when idle, and at shutdown), an Ed25519 signature over (log id,
//!    seq, head hash, time) is appended to `checkpoints.jsonl` and synced.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::sync::mpsc;

use serde_json::json;
use tokio::sync::oneshot;

use super::aggregate::{AggConfig, Aggregator, Refusal};
use super::record::{format_ts, hex, now_ms, parse_ts, Prepared, Record};
use super::retention::{self, Cause, Retention, SegInfo};
use super::store::{self, Keys};
use super::verify::{self, Checkpoint};
use super::AuditError;

/// How the writer makes records durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// One `fdatasync` per batch, at most every `commit_interval`.
    GroupCommit,
    /// One `fdatasync` per record (slow; for comparison).
    PerRecord,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// New logs: HMAC-SHA256 chain with a key in the directory.
    pub keyed: bool,
    pub max_segment_bytes: u64,
    /// Defaults for what `retention.json` in the directory does not set.
    pub retention: Retention,
    pub aggregate: AggConfig,
    pub commit_interval: Duration,
    pub durability: Durability,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
}

impl AuditConfig {
    pub fn new(dir: impl Into<PathBuf>) -> AuditConfig {
        AuditConfig {
            dir: dir.into(),
            keyed: true,
            max_segment_bytes: 5 * 1024 * 1024,
            retention: Retention::default(),
            aggregate: AggConfig::default(),
            commit_interval: Duration::from_micros(200),
            durability: Durability::GroupCommit,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

type Ack = oneshot::Sender<Result<u64, String>>;

/// Records per commit at most (bounds the writer's working memory).
pub const MAX_BATCH: usize = 4096;

/// A queued record: its serialised form, the refusal in it (if it is one
/// the aggregator may fold), and, for `append`, who waits for its seq.
struct Msg {
    rec: Prepared,
    fold: Option<Box<Refusal>>,
    ack: Option<Ack>,
}

/// A running writer. Dropping it (or [`Audit::close`]) flushes, syncs and
/// writes a final checkpoint.
pub struct Audit {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub log_id: String,
    pub dir: PathBuf,
    /// The writer stopped on an I/O error (every later append fails).
    broken: Arc<Mutex<Option<String>>>,
}

impl Audit {
    /// Open (or create) the log in `cfg.dir` and start the writer thread.
    pub fn open(cfg: AuditConfig) -> Result<Audit, AuditError> {
        crate::fileio::ensure_private_dir(&cfg.dir).map_err(|e| AuditError::Io(cfg.dir.clone(), e))?;
        let (lock, before) = store::lock(&cfg.dir)?;
        let keys = store::load_keys(&cfg.dir, Some(cfg.keyed))?;
        let mut w = Writer::resume(&cfg, keys, lock, &before)?;
        let log_id = w.keys.meta.log_id.clone();
        let (tx, rx) = mpsc::channel();
        let broken = Arc::new(Mutex::new(None));
        let b2 = broken.clone();
        let thread = std::thread::Builder::new()
            .name("sc-audit".into())
            .spawn(move || {
                w.run(rx);
                if let Some(e) = w.broken.take() {
                    *b2.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                }
            })
            .map_err(|e| AuditError::Io(cfg.dir.clone(), e))?;
        Ok(Audit { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)), log_id, dir: cfg.dir, broken })
    }

    fn send(&self, m: Msg) -> bool {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|tx| tx.send(m).is_ok())
    }

    /// Queue a record; never blocks. The record is redacted, capped and
    /// serialised here, on the producer's thread.
    pub fn submit(&self, r: Record) {
        self.send(prepare(r, None));
    }

    /// Queue a record; resolves with its seq once it is durable. A refusal
    /// the aggregator counts instead of writing resolves with the seq of the
    /// log's head at that moment (its summary follows later).
    pub async fn append(&self, r: Record) -> Result<u64, AuditError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(prepare(r, Some(tx))) {
            return Err(AuditError::Closed);
        }
        rx.await.map_err(|_| AuditError::Closed)?.map_err(AuditError::Write)
    }

    /// [`Audit::append`] for code without a runtime.
    pub fn append_blocking(&self, r: Record) -> Result<u64, AuditError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(prepare(r, Some(tx))) {
            return Err(AuditError::Closed);
        }
        rx.blocking_recv().map_err(|_| AuditError::Closed)?.map_err(AuditError::Write)
    }

    /// Stop the writer: everything queued is written and synced, and a
    /// final checkpoint is signed.
    pub fn close(&self) -> Result<(), AuditError> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        match self.broken.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(e) => Err(AuditError::Write(e)),
            None => Ok(()),
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

struct Writer {
    dir: PathBuf,
    cfg: AuditConfig,
    keys: Keys,
    _lock: File,
    seg: u64,
    file: File,
    seg_bytes: u64,
    seq: u64,
    head: Option<String>,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    last_sync: Instant,
    pending: Vec<Prepared>,
    broken: Option<String>,
    agg: Aggregator,
    /// Closed segments' first/last records (they never change).
    seg_info: BTreeMap<u64, SegInfo>,
}

/// What one commit collects before its `write` + `fdatasync`.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    acks: Vec<(Ack, u64)>,
    delete_after: Vec<PathBuf>,
}

impl Writer {
    fn resume(cfg: &AuditConfig, keys: Keys, lock: File, before: &str) -> Result<Writer, AuditError> {
        let dir = cfg.dir.clone();
        let (rep, tail) = verify::walk(&dir, &keys, &Default::default())?;
        if let Some(d) = rep.damage.as_ref().filter(|d| d.kind != verify::DamageKind::TornTail) {
            return Err(AuditError::Broken(d.clone()));
        }
        let segs = store::scan(&dir)?;
        let seg = segs.last().map(|s| s.0).unwrap_or(1);
        let path = dir.join(store::segment_name(seg));
        let mut pending = Vec::new();
        if !tail.torn.is_empty() {
            // Cut the interrupted write back to the last complete line.
            let f = OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(&path).map_err(|e| AuditError::Io(path.clone(), e))?;
            f.set_len(tail.good_len).and_then(|_| f.sync_all()).map_err(|e| AuditError::Io(path.clone(), e))?;
            let preview: String = String::from_utf8_lossy(&tail.torn[..tail.torn.len().min(96)]).chars().map(|c| if c.is_control() { '.' } else { c }).collect();
            let mut r = Record::new("recovered");
            r.reason = Some(format!("cut an incomplete last line ({} bytes) left by an interrupted write", tail.torn.len()));
            r.detail = Some(json!({"segment": store::segment_name(seg), "offset": tail.good_len, "cutBytes": tail.torn.len(), "cutSha256": hex(&<sha2::Sha256 as sha2::Digest>::digest(&tail.torn)), "preview": preview}));
            pending.push(prepare_internal(r));
        } else if let Some(who) = before.strip_prefix("running ") {
            // The previous writer never closed: say so, even though nothing
            // had to be cut (every acknowledged record is in the log).
            let mut r = Record::new("recovered");
            r.reason = Some(format!("the previous writer ({who}) stopped without closing; the log ends at seq {} and verifies", tail.last_seq));
            r.detail = Some(json!({"previousWriter": who, "lastSeq": tail.last_seq, "cutBytes": 0}));
            pending.push(prepare_internal(r));
        }
        let file = OpenOptions::new().append(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(&path).map_err(|e| AuditError::Io(path.clone(), e))?;
        let seg_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        if segs.is_empty() {
            store::fsync_dir(&dir);
        }
        Ok(Writer {
            dir,
            cfg: cfg.clone(),
            keys,
            _lock: lock,
            seg,
            file,
            seg_bytes,
            seq: tail.last_seq,
            head: tail.head,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            last_sync: Instant::now().checked_sub(cfg.commit_interval).unwrap_or_else(Instant::now),
            pending,
            broken: None,
            agg: Aggregator::new(cfg.aggregate.clone()),
            seg_info: BTreeMap::new(),
        })
    }

    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        let mut batch: Vec<Msg> = Vec::new();
        if !self.pending.is_empty() {
            self.commit(&mut batch);
        }
        loop {
            let m = match self.wake_at() {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(t) => rx.recv_timeout(t.saturating_duration_since(Instant::now())),
            };
            match m {
                Ok(m) => batch.push(m),
                // Summaries or a checkpoint are due; nothing new arrived.
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.commit(&mut batch);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if self.cfg.durability == Durability::GroupCommit {
                // `last_sync` is when the previous sync *started*.
                let since = self.last_sync.elapsed();
                if since < self.cfg.commit_interval {
                    std::thread::sleep(self.cfg.commit_interval - since);
                }
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
        }
        // Shutdown: what the aggregator still counts, the final checkpoint,
        // then mark the log closed cleanly.
        self.pending.extend(self.agg.drain().into_iter().map(prepare_internal));
        if !self.pending.is_empty() {
            self.commit(&mut batch);
        }
        if self.broken.is_none() && self.since_checkpoint > 0 {
            let _ = self.checkpoint();
        }
        if self.broken.is_none() {
            store::mark(&self._lock, "closed");
        }
    }

    /// When the writer must wake up without a new record: the next due
    /// summary, or the next timed checkpoint (None: nothing to do; also
    /// once the writer is broken, so that it never spins).
    fn wake_at(&self) -> Option<Instant> {
        if self.broken.is_some() {
            return None;
        }
        let signs = self.keys.signer.is_some() && self.since_checkpoint > 0;
        let cp = signs.then(|| self.last_checkpoint + self.cfg.checkpoint_interval);
        match (self.agg.next_due(), cp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fail(&mut self, e: String, batch: &mut Vec<Msg>) {
        self.broken = Some(e.clone());
        for m in batch.drain(..) {
            if let Some(ack) = m.ack {
                let _ = ack.send(Err(e.clone()));
            }
        }
    }

    /// A write failed: every record of the batch gets the error, and the
    /// writer stops (the next start recovers the segment's tail).
    fn abort(&mut self, e: std::io::Error, acks: Vec<(Ack, u64)>, batch: &mut Vec<Msg>) {
        let msg = format!("writing {}: {e}", self.dir.join(store::segment_name(self.seg)).display());
        for (a, _) in acks {
            let _ = a.send(Err(msg.clone()));
        }
        self.fail(msg, batch)
    }

    /// Seal `p` as the next record and add its line to `buf`.
    fn seal_into(&mut self, p: &Prepared, buf: &mut Vec<u8>) -> u64 {
        let (line, hash) = p.seal(self.seq + 1, self.head.as_deref(), &self.keys.hasher);
        self.seq += 1;
        self.head = Some(hash);
        self.since_checkpoint += 1;
        buf.extend_from_slice(&line);
        self.seq
    }

    fn write_sync(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.last_sync = Instant::now();
        self.file.write_all(buf)?;
        self.file.sync_data()?;
        self.seg_bytes += buf.len() as u64;
        Ok(())
    }

    /// Add `r` to the batch as the next record (rotating first if it would
    /// overflow the segment); its seq.
    fn add(&mut self, r: &Prepared, b: &mut Batch) -> std::io::Result<u64> {
        let (mut line, mut hash) = r.seal(self.seq + 1, self.head.as_deref(), &self.keys.hasher);
        // Rotate before a line that would overflow a non-empty segment.
        let used = self.seg_bytes + b.buf.len() as u64;
        if used > 0 && used + line.len() as u64 > self.cfg.max_segment_bytes {
            let buf = std::mem::take(&mut b.buf);
            self.write_sync(&buf)?;
            self.rotate(&mut b.buf, &mut b.delete_after)?;
            // After the rotation record(s): this record's seq and prev.
            (line, hash) = r.seal(self.seq + 1, self.head.as_deref(), &self.keys.hasher);
        }
        self.seq += 1;
        self.head = Some(hash);
        self.since_checkpoint += 1;
        b.buf.extend_from_slice(&line);
        if self.cfg.durability == Durability::PerRecord {
            let buf = std::mem::take(&mut b.buf);
            self.write_sync(&buf)?;
        }
        Ok(self.seq)
    }

    fn commit(&mut self, batch: &mut Vec<Msg>) {
        if let Some(e) = self.broken.clone() {
            return self.fail(e, batch);
        }
        let mut b = Batch { buf: Vec::with_capacity(batch.len() * 320), ..Default::default() };
        let now = Instant::now();
        let mut records: Vec<Msg> = std::mem::take(&mut self.pending).into_iter().map(|rec| Msg { rec, fold: None, ack: None }).collect();
        records.append(batch);
        let mut records = records.into_iter();
        while let Some(m) = records.next() {
            if m.fold.as_deref().is_some_and(|f| !self.agg.admit(f, now)) {
                // Counted in a summary: the caller gets the head's seq.
                b.acks.extend(m.ack.map(|a| (a, self.seq)));
                continue;
            }
            if let Err(e) = self.add(&m.rec, &mut b) {
                b.acks.extend(m.ack.map(|a| (a, 0)));
                let mut rest: Vec<Msg> = records.collect();
                return self.abort(e, b.acks, &mut rest);
            }
            b.acks.extend(m.ack.map(|a| (a, self.seq)));
        }
        for r in self.agg.due(now) {
            if let Err(e) = self.add(&prepare_internal(r), &mut b) {
                return self.abort(e, b.acks, &mut Vec::new());
            }
        }
        if !b.buf.is_empty() {
            let buf = std::mem::take(&mut b.buf);
            if let Err(e) = self.write_sync(&buf) {
                return self.abort(e, b.acks, &mut Vec::new());
            }
        }
        // Durable: acknowledge, then delete what the rotation records announced.
        for (a, seq) in b.acks {
            let _ = a.send(Ok(seq));
        }
        if !b.delete_after.is_empty() {
            for p in &b.delete_after {
                let _ = std::fs::remove_file(p);
            }
            store::fsync_dir(&self.dir);
        }
        if self.since_checkpoint >= self.cfg.checkpoint_every || (self.since_checkpoint > 0 && self.last_checkpoint.elapsed() >= self.cfg.checkpoint_interval) {
            if let Err(e) = self.checkpoint() {
                self.broken = Some(e);
            }
        }
    }

    /// Start the next segment; announce (in `buf`) and schedule the deletion
    /// of the old segments retention lets go (see `retention.rs`).
    fn rotate(&mut self, buf: &mut Vec<u8>, delete_after: &mut Vec<PathBuf>) -> std::io::Result<()> {
        buf.clear();
        self.seg += 1;
        let path = self.dir.join(store::segment_name(self.seg));
        self.file = OpenOptions::new().append(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(&path)?;
        self.seg_bytes = 0;
        store::fsync_dir(&self.dir);
        let segs = store::scan(&self.dir).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut closed = Vec::new();
        // Segments this batch already deletes are not planned again.
        for (n, p) in segs.iter().filter(|(n, p)| *n != self.seg && !delete_after.contains(p)) {
            match self.seg_info.get(n).cloned().or_else(|| store::segment_info(*n, p)) {
                Some(i) => closed.push(i),
                // Unreadable: nothing is deleted (verify names the damage).
                None => return Ok(()),
            }
        }
        self.seg_info = closed.iter().map(|i| (i.n, i.clone())).collect();
        let total = closed.iter().map(|i| i.bytes).sum();
        let (settings, exported) = self.retention_state(buf);
        let plan = retention::plan(&closed, total, exported, now_ms(), &settings);
        if let Some(k) = &plan.kept {
            let mut r = Record::new("retention");
            r.decision = Some("note".into());
            let why = if k.over_bytes > 0 { format!("the log is {} bytes over its retention budget of {}", k.over_bytes, settings.max_bytes) } else { format!("it is older than {} days", settings.max_age_days) };
            r.reason = Some(format!("keeping seq {}–{} ({} bytes) although {why}: it is newer than the last exported checkpoint ({}); export one (sc audit checkpoint --export) or raise the budget (sc audit retention)", k.first_seq, self.seq, k.bytes, seq_or_none(exported)));
            r.detail = Some(json!({"keptFirstSeq": k.first_seq, "keptLastSeq": self.seq, "bytes": k.bytes, "overBytes": k.over_bytes, "tooOld": k.too_old, "exportedSeq": exported, "retention": settings}));
            self.seal_into(&prepare_internal(r), buf);
        }
        for (s, cause) in plan.delete {
            let name = store::segment_name(s.n);
            if cause == Cause::HardLimit {
                let mut r = Record::new("retention");
                r.decision = Some("deny".into());
                r.reason = Some(format!("dropping seq {}–{} ({name}, {} bytes), newer than the last exported checkpoint ({}): the log is over its hard limit of {} bytes", s.first_seq, s.last_seq, s.bytes, seq_or_none(exported), settings.hard_max_bytes));
                r.detail = Some(json!({"droppedFirstSeq": s.first_seq, "droppedLastSeq": s.last_seq, "segment": name, "bytes": s.bytes, "exportedSeq": exported, "retention": settings}));
                self.seal_into(&prepare_internal(r), buf);
            }
            let mut r = Record::new("rotated");
            r.reason = Some(format!("deleted the oldest segment {name} (seq {}–{}): {}", s.first_seq, s.last_seq, cause_text(cause, &settings)));
            r.detail = Some(json!({"deletedSegment": name, "deletedFirstSeq": s.first_seq, "deletedLastSeq": s.last_seq, "deletedLastHash": s.last_hash, "cause": cause.name(), "exportedSeq": exported}));
            self.seal_into(&prepare_internal(r), buf);
            self.seg_info.remove(&s.n);
            delete_after.push(self.dir.join(name));
        }
        Ok(())
    }

    /// The retention settings and the last exported seq; a file that cannot
    /// be read is reported in `buf` and the defaults (or nothing exported)
    /// are used.
    fn retention_state(&mut self, buf: &mut Vec<u8>) -> (Retention, Option<u64>) {
        let mut problems = Vec::new();
        let settings = retention::load_file(&self.dir).map(|f| f.apply(self.cfg.retention)).unwrap_or_else(|e| {
            problems.push(e.to_string());
            self.cfg.retention
        });
        let exported = retention::load_exported(&self.dir).unwrap_or_else(|e| {
            problems.push(e.to_string());
            None
        });
        for p in problems {
            let mut r = Record::new("retention");
            r.decision = Some("error".into());
            r.reason = Some(format!("{p}; using the defaults"));
            self.seal_into(&prepare_internal(r), buf);
        }
        (settings, exported.map(|e| e.seq))
    }

    fn checkpoint(&mut self) -> Result<(), String> {
        let (Some(signer), Some(public), Some(head)) = (&self.keys.signer, &self.keys.public, &self.head) else { return Ok(()) };
        let ts = format_ts(now_ms());
        let msg = Checkpoint::message(&self.keys.meta.log_id, self.seq, head, &ts);
        let sig = hex(signer.sign(&msg).as_ref());
        let c = Checkpoint { v: 1, log_id: self.keys.meta.log_id.clone(), seq: self.seq, head: head.clone(), ts, public: public.clone(), sig };
        let p = self.dir.join(store::CHECKPOINTS);
        let mut f = OpenOptions::new().append(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut line = serde_json::to_vec(&c).unwrap();
        line.push(b'\n');
        f.write_all(&line).and_then(|_| f.sync_data()).map_err(|e| format!("{}: {e}", p.display()))?;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }
}

/// Secrets out (`redact.rs`), every field within its cap (`caps.rs`),
/// then serialised for the queue; the one path every record takes.
fn prepare(r: Record, ack: Option<Ack>) -> Msg {
    let (r, ts_ms) = stamped(super::caps::cap_record(redact_record(r)));
    let fold = Refusal::of(&r, ts_ms).map(Box::new);
    Msg { rec: Prepared::new(r), fold, ack }
}

/// The writer's own records (and summaries): capped, never folded.
fn prepare_internal(r: Record) -> Prepared {
    Prepared::new(stamped(super::caps::cap_record(redact_record(r))).0)
}

/// The record's time, read once: its own when it is one, else now (an
/// empty or malformed `ts` is replaced), in the log's canonical form.
fn stamped(mut r: Record) -> (Record, u64) {
    let ms = parse_ts(&r.ts).unwrap_or_else(now_ms);
    r.ts = format_ts(ms);
    (r, ms)
}

fn seq_or_none(s: Option<u64>) -> String {
    s.map(|s| format!("seq {s}")).unwrap_or_else(|| "none was exported".into())
}

fn cause_text(c: Cause, r: &Retention) -> String {
    match c {
        Cause::Budget => format!("over the retention budget of {} bytes, covered by the exported checkpoint", r.max_bytes),
        Cause::Age => format!("older than {} days, covered by the exported checkpoint", r.max_age_days),
        Cause::HardLimit => format!("over the hard limit of {} bytes (see the retention record before this one)", r.hard_max_bytes),
    }
}

/// Secrets out of `params`, `detail` and `reason`; parameters whose
/// strings are capped (`caps.rs`) and still larger than
/// `MAX_PARAMS_BYTES` are kept only as the digest of the redacted whole.
fn redact_record(mut r: Record) -> Record {
    use super::redact::{redact, redact_str, MAX_PARAMS_BYTES};
    if let Some(p) = r.params.take() {
        let red = super::record::canonical_value(redact(&p));
        let capped = super::caps::cap_value(red.clone());
        if serde_json::to_vec(&capped).map_or(true, |b| b.len() > MAX_PARAMS_BYTES) {
            let bytes = serde_json::to_vec(&red).unwrap_or_default();
            r.params_digest = Some(hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
        } else {
            r.params = Some(capped);
        }
    }
    r.detail = r.detail.map(|d| redact(&d));
    r.reason = r.reason.map(|s| redact_str(&s));
    r
}

#[cfg(test)]
mod stamp_tests {
    use super::*;

    #[test]
    fn a_record_time_is_read_once_and_written_in_the_canonical_form() {
        let mut r = Record::new("x");
        r.ts = "2026-11-26T20:18:15Z".into();
        let (r, ms) = stamped(r);
        assert_eq!(r.ts, "2026-11-26T20:18:15.000Z");
        assert_eq!(Some(ms), parse_ts(&r.ts));
        let mut bad = Record::new("x");
        bad.ts = "yesterday".into();
        let before = now_ms();
        let (bad, ms) = stamped(bad);
        assert!(ms >= before && ms <= now_ms(), "a malformed time is replaced by now");
        assert_eq!(parse_ts(&bad.ts), Some(ms), "the written time is the one the fold used");
    }
}
