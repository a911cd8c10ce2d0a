//! Benchmark of the tamper-evident audit log (`sharkcage::audit`): durable
//! append rate, fire-and-forget rate, verification throughput and memory
//! under a burst, in one process and one run.
//!
//! Run:
//!
//! ```text
//! cargo run --release -p sharkcage --example audit_bench [BASE_DIR]
//! ```
//!
//! Every log lives in a fresh directory under `BASE_DIR` (default
//! `target/audit-bench/` in the repository), all deleted at the end.
//!
//! What it measures (records are realistic: kind `exec`/`net`/`tool_call`,
//! session, tool, decision, `params.command` of ~60 bytes, exitCode,
//! durationMs):
//! 1. durable appends/s with the default configuration
//!    (`AuditConfig::new`, `Durability::GroupCommit`, default
//!    `commit_interval`): 8 threads each call `append_blocking` in a loop for 5 s;
//!    every append waits for its durable acknowledgement;
//!    appends/s and ack latency percentiles. Then the fire-and-forget rate:
//!    `submit` 200 000 records, then `close()` (which syncs); records/s over
//!    the total. For context, two diagnostic variants of group commit
//!    (`commit_interval` 0; 64 producers) and the raw cost of one small
//!    `write` + `fdatasync` on the same file system;
//! 2. the same durable test with `Durability::PerRecord` (one `fdatasync`
//!    per record), and the ratio;
//! 3. verification of a 1 000 000-record log (`max_segment_bytes` 64 MiB,
//!    nothing rotated away): `verify::verify(dir, None)`, median of 3; the
//!    segments are in the page cache (just written), so this is CPU
//!    throughput, not disk. Then where that time goes: cumulative streaming
//!    passes over the lines (parse into a `Record`; + `canonical()`; + HMAC;
//!    = a copy of `check_line`), the rest of `verify` (keeping every parsed
//!    record, linking, dropping), the checkpoint signatures, and a leaner
//!    check (one serialisation, no clone) on 1 and 2 threads for comparison;
//! 4. memory under a burst: 1 000 000 `submit`s from one thread as fast as
//!    possible (producers never block), VmRSS sampled every 10 ms while the
//!    writer drains, then `close()`; peak increase and drain time. This
//!    burst is also what builds the log verified in 3 (it runs first, so
//!    that the process's peak is not inflated by earlier tests).
//!
//! It prints the machine context and a table, and, as the last line, one
//! JSON object with every figure. `AUDIT_BENCH_RECORDS` (default 1 000 000)
//! and `AUDIT_BENCH_SECS` (default 5) shrink it for a quick look;
//! `AUDIT_BENCH_ONLY=verify` runs only the burst that builds the log and
//! `verify` (for profiling with `perf`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::json;
use sharkcage::audit::record::{Hasher, Record};
use sharkcage::audit::verify::{read_checkpoints, verify};
use sharkcage::audit::{store, Audit, AuditConfig, Durability};

const PRODUCERS: usize = 8;
const MANY_PRODUCERS: usize = 64;
const PER_RECORD_SECS: f64 = 2.0;
const DIAG_SECS: f64 = 3.0;
const SUBMIT_RECORDS: u64 = 200_000;
const VERIFY_RUNS: usize = 3;
const BIG_SEGMENT: u64 = 64 * 1024 * 1024;
const FSYNC_PROBES: usize = 500;

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------
// Records and helpers

/// A realistic record: what a finished command, proxied request or tool call
/// leaves in the log (before the writer fills v, seq, ts, prev and hash).
fn record(i: u64) -> Record {
    let (kind, tool, command) = match i % 3 {
        0 => ("exec", "exec", format!("cd /home/dev/project && cargo test -p core --lib case_{:06}", i % 1_000_000)),
        1 => ("net", "web_fetch", format!("GET https://api.example.com/v1/items/{:08}?page=3&sort=asc", i % 100_000_000)),
        _ => ("tool_call", "read_file", format!("read /home/dev/project/src/modules/handler_{:06}.rs lines 1-200", i % 1_000_000)),
    };
    let mut r = Record::new(kind);
    r.session = Some(format!("sess-{:08x}", (i / 1000).wrapping_mul(0x9e37_79b9) as u32));
    r.tool = Some(tool.into());
    r.decision = Some("allow".into());
    r.params = Some(json!({ "command": command }));
    r.exit_code = Some(i.is_multiple_of(3) as i64);
    r.duration_ms = Some(3.25 + (i % 977) as f64 * 0.5);
    r
}

/// The per-run directory `name` under `base` (must not exist yet).
fn fresh(base: &Path, name: &str) -> PathBuf {
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Samples VmRSS every 10 ms on its own thread; `stop` returns the peak (KiB).
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start() -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = status_kib("VmRSS:");
            while !s2.load(Ordering::Relaxed) {
                peak = peak.max(status_kib("VmRSS:"));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak.max(status_kib("VmRSS:"))
        });
        RssSampler { stop, thread }
    }
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

// ---------------------------------------------------------------------------
// 1 and 2: durable appends

struct Durable {
    producers: usize,
    appends: u64,
    secs: f64,
    rate: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl Durable {
    fn json(&self) -> serde_json::Value {
        json!({"producers": self.producers, "appends": self.appends, "secs": round(self.secs, 3), "appendsPerSec": round(self.rate, 0),
               "ackP50Us": self.p50_us, "ackP99Us": self.p99_us, "ackMaxUs": self.max_us})
    }
}

/// `producers` threads, each `append_blocking` in a loop for `secs`.
fn durable(dir: &Path, producers: usize, secs: f64, cfg: impl FnOnce(&mut AuditConfig)) -> Durable {
    let mut c = AuditConfig::new(dir);
    cfg(&mut c);
    let audit = Arc::new(Audit::open(c).expect("open the audit log"));
    let start = Arc::new(Barrier::new(producers + 1));
    let run_for = Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..producers)
        .map(|t| {
            let (audit, start) = (audit.clone(), start.clone());
            std::thread::spawn(move || {
                let mut lat_us: Vec<u64> = Vec::with_capacity(1 << 16);
                let mut i = t as u64 * 1_000_000_000;
                start.wait();
                let t0 = Instant::now();
                while t0.elapsed() < run_for {
                    let a = Instant::now();
                    audit.append_blocking(record(i)).expect("durable append");
                    lat_us.push(a.elapsed().as_micros() as u64);
                    i += 1;
                }
                lat_us
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let mut lat: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = t0.elapsed().as_secs_f64();
    audit.close().expect("close");
    let rep = verify(dir, None).expect("verify");
    // `last_seq`, not `records`: rotation may have deleted old segments
    // (and added its own `rotated` records).
    assert!(rep.ok && rep.last_seq >= lat.len() as u64, "the durable log does not verify: {rep:?}");
    lat.sort_unstable();
    Durable {
        producers,
        appends: lat.len() as u64,
        secs: elapsed,
        rate: lat.len() as f64 / elapsed,
        p50_us: pct(&lat, 50.0),
        p99_us: pct(&lat, 99.0),
        max_us: lat.last().copied().unwrap_or(0),
    }
}

/// `submit` `n` records, then `close()`: (submit seconds, total seconds).
fn fire_and_forget(dir: &Path, n: u64) -> (f64, f64) {
    let audit = Audit::open(AuditConfig::new(dir)).expect("open the audit log");
    let t0 = Instant::now();
    for i in 0..n {
        audit.submit(record(i));
    }
    let submitted = t0.elapsed().as_secs_f64();
    audit.close().expect("close");
    (submitted, t0.elapsed().as_secs_f64())
}

/// The floor under any durable append: one ~330-byte `write` + `fdatasync`
/// on an O_APPEND file in the same file system (microseconds, sorted).
fn raw_fdatasync(dir: &Path) -> Vec<u64> {
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("probe");
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&p).unwrap();
    let line = [b'x'; 330];
    let mut v: Vec<u64> = (0..FSYNC_PROBES)
        .map(|_| {
            let a = Instant::now();
            f.write_all(&line).unwrap();
            f.sync_data().unwrap();
            a.elapsed().as_micros() as u64
        })
        .collect();
    drop(f);
    let _ = std::fs::remove_dir_all(dir);
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------
// 4: the burst (which also builds the log for 3)

struct Burst {
    records: u64,
    submit_secs: f64,
    drain_secs: f64,
    total_secs: f64,
    rss_before_kib: u64,
    rss_peak_kib: u64,
    hwm_before_kib: u64,
    hwm_after_kib: u64,
    rss_after_kib: u64,
}

fn burst(dir: &Path, n: u64) -> Burst {
    let mut c = AuditConfig::new(dir);
    c.max_segment_bytes = BIG_SEGMENT;
    // Nothing rotated away.
    c.retention = sharkcage::audit::retention::Retention { max_bytes: u64::MAX, hard_max_bytes: u64::MAX, max_age_days: 0 };
    let audit = Audit::open(c).expect("open the audit log");
    let (rss_before_kib, hwm_before_kib) = (status_kib("VmRSS:"), status_kib("VmHWM:"));
    let sampler = RssSampler::start();
    let t0 = Instant::now();
    for i in 0..n {
        audit.submit(record(i));
    }
    let submit_secs = t0.elapsed().as_secs_f64();
    audit.close().expect("close");
    let total_secs = t0.elapsed().as_secs_f64();
    let rss_peak_kib = sampler.stop();
    Burst {
        records: n,
        submit_secs,
        drain_secs: total_secs - submit_secs,
        total_secs,
        rss_before_kib,
        rss_peak_kib,
        hwm_before_kib,
        hwm_after_kib: status_kib("VmHWM:"),
        rss_after_kib: status_kib("VmRSS:"),
    }
}

// ---------------------------------------------------------------------------
// 3: verification

struct Verified {
    records: u64,
    bytes: u64,
    segments: usize,
    checkpoints: usize,
    runs: Vec<f64>,
    rss_peak_delta_kib: u64,
}

fn verify_runs(dir: &Path) -> Verified {
    let mut runs = Vec::new();
    let mut last = None;
    let rss0 = status_kib("VmRSS:");
    let sampler = RssSampler::start();
    for _ in 0..VERIFY_RUNS {
        let t = Instant::now();
        let rep = verify(dir, None).expect("verify");
        runs.push(t.elapsed().as_secs_f64());
        assert!(rep.ok, "the benchmark log does not verify: {:?}", rep.damage);
        last = Some(rep);
    }
    let peak = sampler.stop();
    let rep = last.unwrap();
    Verified { records: rep.records, bytes: rep.bytes, segments: rep.segments, checkpoints: rep.checkpoints, runs, rss_peak_delta_kib: peak.saturating_sub(rss0) }
}

/// Where `verify`'s time goes. Every pass streams over the lines of the
/// whole log (already in memory) and keeps nothing, so the differences
/// between passes are the cost of each step of `verify::check_line`; what
/// `verify` takes beyond `check_line` is the cost of keeping every parsed
/// record (`walk` holds them all until the end), the linking and the drop.
struct Breakdown {
    /// `std::fs::read` of every segment.
    read: f64,
    /// Parse each line into a `Record` (and drop it).
    parse: f64,
    /// ... + `Record::canonical()` once.
    parse_canonical: f64,
    /// ... + HMAC of it (one canonical form, one hash).
    parse_canonical_hash: f64,
    /// A copy of `check_line`: parse, `canonical()` compared with the line,
    /// `hash_ok` (which builds the canonical form again, then hashes).
    check_line: f64,
    /// Suggested: parse, take `hash` out, serialise the record once into a
    /// reused buffer (no clone), compare with the line, hash that buffer.
    lean: f64,
    /// The same, the lines split across 2 threads.
    lean_2_threads: f64,
    /// Reading and checking every checkpoint signature.
    checkpoints: f64,
}

/// The line before `,"hash":"<64 hex>"}`.
const HASH_SUFFIX: usize = 9 + 64 + 2;

/// `verify::check_line`'s work, copied (the module keeps it private).
fn check_line(line: &[u8], h: &Hasher) -> bool {
    let r: Record = serde_json::from_slice(line).expect("a record");
    let canon = r.canonical();
    canon.len() == line.len() - HASH_SUFFIX + 1 && canon[..canon.len() - 1] == line[..line.len() - HASH_SUFFIX] && r.hash_ok(h)
}

/// The suggested check: the same verdict with one serialisation and no
/// clone. (With serde_json's default `Map`, a `BTreeMap`, parsed objects
/// are already in canonical key order, so `canonical_value` is a no-op.)
fn lean_check(line: &[u8], h: &Hasher, buf: &mut Vec<u8>) -> bool {
    let mut r: Record = serde_json::from_slice(line).expect("a record");
    let stored = r.hash.take();
    buf.clear();
    serde_json::to_writer(&mut *buf, &r).expect("serialise");
    let prefix = &line[..line.len() - HASH_SUFFIX];
    buf.len() == prefix.len() + 1 && buf[..prefix.len()] == *prefix && stored.as_deref() == Some(h.hash(buf).as_str())
}

fn timed(f: impl FnOnce() -> usize, expect: usize) -> f64 {
    let t = Instant::now();
    let n = f();
    let s = t.elapsed().as_secs_f64();
    assert_eq!(n, expect, "every line checks");
    s
}

fn breakdown(dir: &Path) -> Breakdown {
    let keys = store::load_keys(dir, None).expect("keys");
    let h = &keys.hasher;
    let segs = store::scan(dir).expect("segments");

    let t = Instant::now();
    let data: Vec<Vec<u8>> = segs.iter().map(|(_, p)| std::fs::read(p).unwrap()).collect();
    let read = t.elapsed().as_secs_f64();
    let lines: Vec<&[u8]> = data.iter().flat_map(|d| d.split(|&b| b == b'\n').filter(|l| !l.is_empty())).collect();
    let n = lines.len();
    let parse_one = |l: &[u8]| serde_json::from_slice::<Record>(l).expect("a record");

    let parse = timed(|| lines.iter().map(|l| black_box(parse_one(l)).seq.min(1) as usize).sum(), n);
    let parse_canonical = timed(|| lines.iter().map(|l| (!black_box(parse_one(l).canonical()).is_empty()) as usize).sum(), n);
    let parse_canonical_hash = timed(|| lines.iter().map(|l| (!black_box(h.hash(&parse_one(l).canonical())).is_empty()) as usize).sum(), n);
    let check = timed(|| lines.iter().map(|l| check_line(l, h) as usize).sum(), n);
    let lean = timed(
        || {
            let mut buf = Vec::with_capacity(1024);
            lines.iter().map(|l| lean_check(l, h, &mut buf) as usize).sum()
        },
        n,
    );
    let lean_2_threads = timed(
        || {
            let (a, b) = lines.split_at(n / 2);
            std::thread::scope(|s| {
                let half = |ls: &[&[u8]]| {
                    let mut buf = Vec::with_capacity(1024);
                    ls.iter().map(|l| lean_check(l, h, &mut buf) as usize).sum::<usize>()
                };
                let ta = s.spawn(move || half(a));
                let nb = half(b);
                ta.join().unwrap() + nb
            })
        },
        n,
    );

    let t = Instant::now();
    let cps = read_checkpoints(dir).expect("checkpoints");
    assert!(cps.iter().all(|c| c.signature_ok()));
    let checkpoints = t.elapsed().as_secs_f64();

    Breakdown { read, parse, parse_canonical, parse_canonical_hash, check_line: check, lean, lean_2_threads, checkpoints }
}

// ---------------------------------------------------------------------------
// Machine context

fn fs_type(dir: &Path) -> (String, String) {
    let stat = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    // `stat -f` cannot tell ext4 from ext2/3 (same magic): the mount table can.
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mount = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && canon.starts_with(f[1])).then(|| (f[1].len(), format!("{} on {} ({})", f[2], f[1], f[0])))
        })
        .max_by_key(|m| m.0)
        .map(|m| m.1)
        .unwrap_or_default();
    (stat, mount)
}

fn first_line(path: &str, prefix: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(prefix))
        .map(|l| l.split_once(':').map(|x| x.1).unwrap_or(l).trim().to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------

fn main() {
    let arg = std::env::args().nth(1).map(PathBuf::from);
    let default_base = arg.is_none();
    let base = arg.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/audit-bench"));
    let run = base.join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&run).expect("create the benchmark directory");
    let run = std::fs::canonicalize(&run).unwrap_or(run);
    let n_big = env_num("AUDIT_BENCH_RECORDS", 1_000_000.0) as u64;
    let secs = env_num("AUDIT_BENCH_SECS", 5.0);
    let only_verify = std::env::var("AUDIT_BENCH_ONLY").is_ok_and(|v| v == "verify");

    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let cpu = first_line("/proc/cpuinfo", "model name");
    let (fs_stat, fs_mount) = fs_type(&run);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!("audit_bench: sharkcage::audit");
    println!("  machine: nproc {nproc}, kernel {kernel}, cpu {cpu}, loadavg at start {load}");
    println!("  directory: {} — stat -f -c %T: {fs_stat}; mount: {fs_mount}", run.display());
    println!();

    // 4 first (and it builds the log for 3): the process's peak RSS is clean.
    let big = run.join("big");
    eprintln!("[4] burst of {n_big} submits (also builds the log for 3) ...");
    let b = burst(&big, n_big);
    if only_verify {
        eprintln!("[3] verify x{VERIFY_RUNS} ...");
        let v = verify_runs(&big);
        println!("verify: {:.3} s median ({:?}), {:.1} MB/s", median(&v.runs), v.runs, v.bytes as f64 / 1e6 / median(&v.runs));
        let _ = std::fs::remove_dir_all(&run);
        return;
    }

    eprintln!("[1] raw fdatasync probe ...");
    let fsync = raw_fdatasync(&run.join("probe"));
    eprintln!("[1] group commit, {PRODUCERS} producers, {secs} s ...");
    let gc = durable(&fresh(&run, "group"), PRODUCERS, secs, |_| {});
    eprintln!("[1] fire-and-forget {SUBMIT_RECORDS} ...");
    let (ff_submit, ff_total) = fire_and_forget(&fresh(&run, "submit"), SUBMIT_RECORDS);
    eprintln!("[1] diagnostics: commit_interval 0; {MANY_PRODUCERS} producers ...");
    let gc0 = durable(&fresh(&run, "group-0ms"), PRODUCERS, DIAG_SECS, |c| c.commit_interval = Duration::ZERO);
    let gc_many = durable(&fresh(&run, "group-many"), MANY_PRODUCERS, DIAG_SECS, |_| {});
    eprintln!("[2] per-record fsync, {PRODUCERS} producers, {PER_RECORD_SECS} s ...");
    let pr = durable(&fresh(&run, "per-record"), PRODUCERS, PER_RECORD_SECS, |c| c.durability = Durability::PerRecord);
    eprintln!("[3] verify x{VERIFY_RUNS} + breakdown ...");
    let v = verify_runs(&big);
    let bd = breakdown(&big);

    // ---- table
    let ff_rate = SUBMIT_RECORDS as f64 / ff_total;
    let v_med = median(&v.runs);
    let v_mbs = v.bytes as f64 / 1e6 / v_med;
    let v_rps = v.records as f64 / v_med;
    let line_bytes = v.bytes as f64 / v.records as f64;
    let us_per = |s: f64| s * 1e6 / v.records as f64;
    let peak_delta_mib = b.rss_peak_kib.saturating_sub(b.rss_before_kib) as f64 / 1024.0;
    let hwm_delta_mib = b.hwm_after_kib.saturating_sub(b.hwm_before_kib) as f64 / 1024.0;
    let fsync_p50 = pct(&fsync, 50.0);
    let fsync_p99 = pct(&fsync, 99.0);
    // Each producer has one append in flight; the writer pauses
    // commit_interval after each sync: at most PRODUCERS records per cycle.
    let interval = AuditConfig::new("/").commit_interval;
    let gc_bound = PRODUCERS as f64 / (interval.as_secs_f64().max(fsync_p50 as f64 / 1e6));
    let pass = |ok: bool| if ok { "PASS" } else { "FAIL" };

    println!("1. Durable appends, group commit (default AuditConfig, commit_interval {interval:?}), {PRODUCERS} producers x append_blocking, {:.1} s", gc.secs);
    println!("   appends/s                                  {:>10.0}   (target >= 20000: {})", gc.rate, pass(gc.rate >= 20_000.0));
    println!("   ack latency p50 / p99 / max                {:>7} / {} / {} us   ({} appends)", gc.p50_us, gc.p99_us, gc.max_us, gc.appends);
    println!("   fire-and-forget: submit {SUBMIT_RECORDS} + close()  {:>10.0} records/s   (submit {:.3} s, total {:.3} s)", ff_rate, ff_submit, ff_total);
    println!("   diagnostics:");
    println!("     group commit, commit_interval 0, {PRODUCERS} producers    {:>8.0} appends/s   p50 {} us, p99 {} us", gc0.rate, gc0.p50_us, gc0.p99_us);
    println!("     group commit, default, {MANY_PRODUCERS} producers          {:>8.0} appends/s   p50 {} us, p99 {} us", gc_many.rate, gc_many.p50_us, gc_many.p99_us);
    println!("     raw 330-byte write + fdatasync (x{FSYNC_PROBES})       p50 {fsync_p50} us, p99 {fsync_p99} us  (=> {:.0} syncs/s)", 1e6 / fsync_p50.max(1) as f64);
    println!("     closed-loop bound, one sync per {interval:?} at most: {PRODUCERS} / max(interval, {fsync_p50} us) = {:.0} appends/s", gc_bound);
    println!();
    println!("2. Durable appends, PerRecord (fdatasync per record), {PRODUCERS} producers, {:.1} s", pr.secs);
    println!("   appends/s                                  {:>10.0}", pr.rate);
    println!("   ack latency p50 / p99 / max                {:>7} / {} / {} us   ({} appends)", pr.p50_us, pr.p99_us, pr.max_us, pr.appends);
    println!("   group commit / per record                  {:>10.2}x", gc.rate / pr.rate);
    println!();
    println!("3. Verify {} records, {:.1} MB in {} segments, {} checkpoints (files in the page cache: just written)", v.records, v.bytes as f64 / 1e6, v.segments, v.checkpoints);
    println!("   verify(dir, None), median of {VERIFY_RUNS}           {:>10.3} s   (runs: {})", v_med, v.runs.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", "));
    println!("   throughput                                 {:>10.1} MB/s   (target >= 300: {})", v_mbs, pass(v_mbs >= 300.0));
    println!("   records/s                                  {:>10.0}   ({:.0} bytes/line)", v_rps, line_bytes);
    println!("   verify's peak VmRSS increase               {:>10.1} MiB", v.rss_peak_delta_kib as f64 / 1024.0);
    let mbs = |secs: f64| v.bytes as f64 / 1e6 / secs;
    println!("   breakdown (streaming passes over the whole log, nothing kept; the last but one line is what keeping");
    println!("   every parsed Record until the end, linking and dropping them add inside verify):");
    for (name, secs) in [
        ("read the segments", bd.read),
        ("parse -> Record (and drop)", bd.parse),
        ("  + canonical() once", bd.parse_canonical - bd.parse),
        ("  + HMAC-SHA256 + hex", bd.parse_canonical_hash - bd.parse_canonical),
        ("  + 2nd canonical() in hash_ok, compares", bd.check_line - bd.parse_canonical_hash),
        ("= check_line for every line", bd.check_line),
        ("verify - read - check_line = keep + drop", v_med - bd.read - bd.check_line),
        ("checkpoint signatures", bd.checkpoints),
    ] {
        println!("     {name:<42} {secs:>7.3} s  {:>6.3} us", us_per(secs));
    }
    println!("   suggested check (1 serialisation, no clone, nothing kept):");
    println!("     1 thread                                   {:>7.3} s  {:>6.3} us  {:>7.1} MB/s", bd.lean, us_per(bd.lean), mbs(bd.read + bd.lean));
    println!("     2 threads (lines split in halves)          {:>7.3} s  {:>6.3} us  {:>7.1} MB/s", bd.lean_2_threads, us_per(bd.lean_2_threads), mbs(bd.read + bd.lean_2_threads));
    println!();
    println!("4. Burst: {} submits from one thread, then close()", b.records);
    println!("   submit time / drain after submit / total   {:.3} s / {:.3} s / {:.3} s   ({:.0} records/s written)", b.submit_secs, b.drain_secs, b.total_secs, b.records as f64 / b.total_secs);
    println!("   peak VmRSS increase (sampled every 10 ms)  {:>10.1} MiB   ({} -> peak {} KiB, {} KiB after close)", peak_delta_mib, b.rss_before_kib, b.rss_peak_kib, b.rss_after_kib);
    println!("   VmHWM increase                             {:>10.1} MiB   (~{:.0} bytes per submitted record at the peak)", hwm_delta_mib, b.rss_peak_kib.saturating_sub(b.rss_before_kib) as f64 * 1024.0 / b.records as f64);
    println!("   size_of::<Record>()                        {:>10} bytes (inline, before its strings and params map)", std::mem::size_of::<Record>());

    let j = json!({
        "bench": "audit",
        "machine": {"nproc": nproc, "kernel": kernel, "cpu": cpu, "fsType": fs_stat, "mount": fs_mount, "loadavgAtStart": load},
        "groupCommit": gc.json(),
        "fireAndForget": {"records": SUBMIT_RECORDS, "submitSecs": round(ff_submit, 3), "totalSecs": round(ff_total, 3), "recordsPerSec": round(ff_rate, 0)},
        "groupCommitInterval0": gc0.json(),
        "groupCommitManyProducers": gc_many.json(),
        "rawFdatasyncUs": {"p50": fsync_p50, "p99": fsync_p99, "n": FSYNC_PROBES},
        "groupCommitClosedLoopBound": round(gc_bound, 0),
        "perRecord": pr.json(),
        "groupOverPerRecord": round(gc.rate / pr.rate, 2),
        "verify": {"records": v.records, "bytes": v.bytes, "segments": v.segments, "checkpoints": v.checkpoints, "pageCache": true,
                   "runsSecs": v.runs.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(), "medianSecs": round(v_med, 3),
                   "mbPerSec": round(v_mbs, 1), "recordsPerSec": round(v_rps, 0), "rssPeakDeltaMiB": round(v.rss_peak_delta_kib as f64 / 1024.0, 1),
                   "breakdownSecs": {"read": round(bd.read, 3), "parse": round(bd.parse, 3), "parseCanonical": round(bd.parse_canonical, 3),
                                     "parseCanonicalHash": round(bd.parse_canonical_hash, 3), "checkLine": round(bd.check_line, 3),
                                     "keepLinkDrop": round(v_med - bd.read - bd.check_line, 3), "checkpoints": round(bd.checkpoints, 3),
                                     "leanCheck": round(bd.lean, 3), "leanCheck2Threads": round(bd.lean_2_threads, 3)},
                   "leanMBps": round(v.bytes as f64 / 1e6 / (bd.read + bd.lean), 1), "lean2ThreadsMBps": round(v.bytes as f64 / 1e6 / (bd.read + bd.lean_2_threads), 1)},
        "burst": {"records": b.records, "submitSecs": round(b.submit_secs, 3), "drainSecs": round(b.drain_secs, 3), "totalSecs": round(b.total_secs, 3),
                  "rssBeforeKiB": b.rss_before_kib, "rssPeakKiB": b.rss_peak_kib, "rssAfterKiB": b.rss_after_kib,
                  "peakRssDeltaMiB": round(peak_delta_mib, 1), "hwmDeltaMiB": round(hwm_delta_mib, 1),
                  "recordSizeOf": std::mem::size_of::<Record>()},
        "targets": {"groupCommitAppendsPerSec>=20000": gc.rate >= 20_000.0, "verifyMBps>=300": v_mbs >= 300.0},
    });

    let _ = std::fs::remove_dir_all(&run);
    if default_base {
        let _ = std::fs::remove_dir(&base); // only if now empty
    }
    println!();
    println!("{j}");
}
