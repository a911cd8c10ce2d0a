//! Helpers for the black-box tests of `sc`: per-test directories with a fake
//! HOME full of planted secrets, a builder that runs the real `sc exec`, and
//! host-side observers (/proc scans, listeners).
//!
//! Where the test directories live matters: inside the sandbox `/tmp`,
//! `/var/tmp` and `/dev/shm` are private, so a fake HOME under the host's
//! /tmp would be invisible inside and every "secret is hidden" test would
//! pass for the wrong reason. The base directory is therefore, in order:
//! `$SC_TEST_TMPDIR`; cargo's `CARGO_TARGET_TMPDIR` (target/tmp) if we can
//! write there; `$HOME` (e.g. /home/sctest when run as that user); only then
//! the system temp dir. Tests that depend on it check, inside the same
//! sandbox, that a harmless file of the fake HOME *is* readable.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The `sc` binary under test: `$SC_BIN` if set (a copy outside directories
/// that are private inside the sandbox, see scripts/test.js), else cargo's.
pub fn sc_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| std::env::var("SC_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sc").to_string()))
}
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static LOCK: RwLock<()> = RwLock::new(());
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Every test holds this; the few tests that count the test process's own
/// descriptors take [`exclusive`] instead.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    LOCK.read().unwrap_or_else(|e| e.into_inner())
}
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    LOCK.write().unwrap_or_else(|e| e.into_inner())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// A unique id for names, ports-free markers, sleep durations.
pub fn uniq() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}x{}x{:x}", std::process::id(), n, t)
}

/// A unique fractional duration for `sleep` so /proc scans find only ours.
pub fn unique_sleep(base: u32) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{}.{}{:03}", base, std::process::id() % 1000, n % 1000)
}

fn writable_dir(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { return false };
    // SAFETY: access(2) on a valid C string.
    p.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0
}

pub fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        if let Some(d) = std::env::var_os("SC_TEST_TMPDIR") {
            let d = PathBuf::from(d);
            std::fs::create_dir_all(&d).ok();
            return d;
        }
        let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let _ = std::fs::create_dir_all(&target_tmp);
        if writable_dir(&target_tmp) {
            return target_tmp;
        }
        if let Some(h) = std::env::var_os("HOME").map(PathBuf::from) {
            if h.is_absolute() && !h.starts_with("/tmp") && !h.starts_with("/var/tmp") && !h.starts_with("/dev/shm") && writable_dir(&h) {
                return h;
            }
        }
        eprintln!("WARNING: using the system temp dir for test files; the fake HOME is invisible inside the sandbox, set SC_TEST_TMPDIR");
        std::env::temp_dir()
    })
}

/// One test's directory: `root/home` (fake HOME) and `root/ws` (workspace).
pub struct T {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub ws: PathBuf,
    pub id: String,
    /// Text of `home/notes.txt`: readable inside, proves HOME is visible.
    pub notes: String,
}

impl T {
    pub fn new() -> T {
        let dir = tempfile::Builder::new().prefix("sc-test-").tempdir_in(base_dir()).expect("temp dir");
        let root = std::fs::canonicalize(dir.path()).unwrap();
        // World-traversable, so a test that runs `sc` as another user works.
        set_mode(&root, 0o755);
        let home = root.join("home");
        let ws = root.join("ws");
        std::fs::create_dir(&home).unwrap();
        std::fs::create_dir(&ws).unwrap();
        let id = uniq();
        let notes = format!("NOTES-VISIBLE-{id}");
        std::fs::write(home.join("notes.txt"), &notes).unwrap();
        T { _dir: dir, root, home, ws, id, notes }
    }

    /// A unique secret marker.
    pub fn secret(&self, tag: &str) -> String {
        format!("SCSECRET-{tag}-{}", self.id)
    }

    /// Write `content` at `rel` under HOME (parents created); returns the path.
    pub fn plant_home(&self, rel: &str, content: &str) -> PathBuf {
        plant(&self.home.join(rel), content)
    }
    pub fn plant_ws(&self, rel: &str, content: &str) -> PathBuf {
        plant(&self.ws.join(rel), content)
    }

    /// `sc exec` with HOME = fake home and --workspace = ws.
    pub fn sc(&self) -> Run {
        Run::new(&self.home, &self.root).workspace(&self.ws)
    }
    /// `sc exec ... -- sh -c SCRIPT`.
    pub fn sh(&self, script: &str) -> Out {
        self.sc().sh(script).run()
    }
    /// `sc exec ... -- sc __probe NAMES...`, parsed.
    pub fn probe(&self, names: &[&str]) -> serde_json::Value {
        self.sc().probe(names)
    }
}

pub fn plant(p: &Path, content: &str) -> PathBuf {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, content).unwrap();
    p.to_path_buf()
}

pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn read(p: &Path) -> Option<String> {
    std::fs::read(p).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A configured `sc exec` call.
pub struct Run {
    home: PathBuf,
    cwd: PathBuf,
    workspace: Option<PathBuf>,
    pre: Vec<OsString>,
    cmd: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    json: bool,
}

/// What a call produced.
#[derive(Debug)]
pub struct Out {
    /// Exit code of `sc` (128+n if `sc` itself died of signal n).
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub json: Option<serde_json::Value>,
    pub elapsed: Duration,
}

impl Out {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// stdout + stderr + the JSON result, for "secret absent" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}\n{}", self.out(), self.err(), self.json.as_ref().map(|j| j.to_string()).unwrap_or_default())
    }
    pub fn j(&self) -> &serde_json::Value {
        self.json.as_ref().unwrap_or_else(|| panic!("no --json result; stderr: {}", self.err()))
    }
    #[track_caller]
    pub fn assert_absent(&self, needle: &str) {
        assert!(!self.all().contains(needle), "{needle:?} leaked into the output:\n{}", self.all());
    }
    #[track_caller]
    pub fn assert_ok(&self) {
        assert_eq!(self.code, 0, "sc failed (code {}):\nstdout: {}\nstderr: {}", self.code, self.out(), self.err());
    }
}

impl Run {
    pub fn new(home: &Path, cwd: &Path) -> Run {
        Run {
            home: home.to_path_buf(),
            cwd: cwd.to_path_buf(),
            workspace: None,
            pre: vec![],
            cmd: vec![],
            env: vec![],
            stdin: None,
            json: true,
        }
    }
    pub fn workspace(mut self, ws: &Path) -> Run {
        self.workspace = Some(ws.to_path_buf());
        self
    }
    pub fn no_workspace(mut self) -> Run {
        self.workspace = None;
        self
    }
    pub fn cwd(mut self, p: &Path) -> Run {
        self.cwd = p.to_path_buf();
        self
    }
    /// An `sc exec` option (before `--`).
    pub fn opt(mut self, a: impl Into<OsString>) -> Run {
        self.pre.push(a.into());
        self
    }
    pub fn policy(self, json: &str) -> Run {
        self.opt("--policy-json").opt(json)
    }
    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn stdin(mut self, data: Vec<u8>) -> Run {
        self.stdin = Some(data);
        self
    }
    pub fn no_json(mut self) -> Run {
        self.json = false;
        self
    }
    pub fn cmd<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, argv: I) -> Run {
        self.cmd = argv.into_iter().map(Into::into).collect();
        self
    }
    pub fn sh(self, script: &str) -> Run {
        self.cmd(["sh", "-c", script])
    }
    pub fn probe(self, names: &[&str]) -> serde_json::Value {
        let mut argv: Vec<String> = vec![sc_bin().into(), "__probe".into()];
        argv.extend(names.iter().map(|s| s.to_string()));
        let out = self.cmd(argv).run();
        out.assert_ok();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {}\nstderr: {}", out.out(), out.err()))
    }

    /// The `Command` (the JSON path is returned so callers can read it).
    pub fn command(&self) -> (Command, Option<PathBuf>) {
        let mut c = Command::new(sc_bin());
        c.env_clear().env("PATH", SAFE_PATH).env("HOME", &self.home).env("LANG", "C.UTF-8").current_dir(&self.cwd);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.arg("exec");
        if let Some(w) = &self.workspace {
            c.arg("--workspace").arg(w);
        }
        let json = if self.json {
            let p = self.cwd_for_json().join(format!(".sc-result-{}.json", uniq()));
            c.arg("--json").arg(&p);
            Some(p)
        } else {
            None
        };
        c.args(&self.pre).arg("--").args(&self.cmd);
        (c, json)
    }

    fn cwd_for_json(&self) -> PathBuf {
        // Outside the workspace, so the sandboxed command cannot touch it.
        self.home.parent().map(Path::to_path_buf).unwrap_or_else(|| self.cwd.clone())
    }

    pub fn spawn(&self) -> (Child, Option<PathBuf>) {
        let (mut c, json) = self.command();
        c.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        (c.spawn().expect("spawn sc"), json)
    }

    pub fn run(&self) -> Out {
        let (mut c, json) = self.command();
        c.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = c.spawn().expect("spawn sc");
        let writer = self.stdin.clone().map(|data| {
            let mut si = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = si.write_all(&data);
            })
        });
        let out = child.wait_with_output().expect("wait sc");
        if let Some(w) = writer {
            w.join().unwrap();
        }
        finish(out.status, out.stdout, out.stderr, json, start.elapsed())
    }
}

pub fn finish(status: std::process::ExitStatus, stdout: Vec<u8>, stderr: Vec<u8>, json: Option<PathBuf>, elapsed: Duration) -> Out {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let json = json.and_then(|p| {
        let v = std::fs::read(&p).ok().map(|b| serde_json::from_slice(&b).expect("--json output is JSON"));
        let _ = std::fs::remove_file(&p);
        v
    });
    Out { code, stdout, stderr, json, elapsed }
}

/// Collect a spawned call.
pub fn wait(child: Child, json: Option<PathBuf>, start: Instant) -> Out {
    let out = child.wait_with_output().expect("wait sc");
    finish(out.status, out.stdout, out.stderr, json, start.elapsed())
}

// ---- host-side observers ---------------------------------------------------

/// PIDs of host processes whose argv is exactly `argv`.
pub fn pids_with_argv(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0u8])).collect();
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return v };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            if c == want {
                v.push(pid);
            }
        }
    }
    v
}

/// PIDs of host processes whose command line contains `needle`.
pub fn pids_with_cmdline_containing(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return v };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let s = String::from_utf8_lossy(&c).replace('\0', " ");
            if s.contains(needle) {
                v.push(pid);
            }
        }
    }
    v
}

/// Wait until `f` is true (polling), up to `max`.
pub fn wait_until(max: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + max;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kill leftovers (so one failing test does not leave sleeps behind).
pub fn kill_all(pids: &[i32]) {
    for &p in pids {
        // SAFETY: SIGKILL to a pid we found running our unique command line.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

/// Number of open descriptors of this process.
pub fn own_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0).saturating_sub(1)
}

/// Non-blocking accept: the number of connections a listener has queued.
pub fn drain_accepts<L>(mut accept: impl FnMut() -> std::io::Result<L>) -> usize {
    let mut n = 0;
    loop {
        match accept() {
            Ok(_) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return n,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Read everything currently readable from a non-blocking reader.
pub fn read_available(r: &mut impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return v,
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return v,
        }
    }
}

/// errno value of a probe result (panics if it is not a number).
#[track_caller]
pub fn errno_of(v: &serde_json::Value, name: &str) -> i64 {
    v.get(name).and_then(|x| x.as_i64()).unwrap_or_else(|| panic!("probe {name}: no number in {v}"))
}

/// Deterministic pseudo-random bytes.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `sha256sum` of bytes, computed by the host's coreutils.
pub fn host_sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum on the host");
    let mut si = c.stdin.take().unwrap();
    let d = data.to_vec();
    let w = std::thread::spawn(move || si.write_all(&d));
    let out = c.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

pub fn which(name: &str) -> Option<PathBuf> {
    SAFE_PATH.split(':').map(|d| Path::new(d).join(name)).find(|p| p.exists())
}

/// Per-call cgroups a SIGKILLed launcher (pid `pid`) could not remove
/// (root callers only). Removes the empty ones and returns what it found,
/// so tests that kill the launcher leave nothing on the host.
pub fn remove_leaked_cgroups(pid: u32) -> Vec<PathBuf> {
    let list = || {
        let mut v = vec![];
        for c in ["pids", "memory"] {
            let Ok(rd) = std::fs::read_dir(Path::new("/sys/fs/cgroup").join(c).join("sharkcage")) else { continue };
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&format!("{pid}-")) {
                    v.push(e.path());
                }
            }
        }
        v
    };
    let found = list();
    // The sandbox's processes may still be exiting: retry while busy.
    wait_until(Duration::from_secs(3), || {
        for d in list() {
            let _ = std::fs::remove_dir(d);
        }
        list().is_empty()
    });
    found
}
