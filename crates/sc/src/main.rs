//! `sc`: the sharkcage command-line tool and sandbox launcher.
//!
//! `sc exec` runs one command in a fresh sandbox. It is also what the napi
//! addon and OpenClaw spawn: the namespace setup must happen in a
//! single-threaded process, and this binary is one (clap and the core
//! library start no threads).

mod init;
mod audit_cmd;
mod home_cmd;
mod skills_cmd;
mod skill_fetch;
mod config_cmd;
mod connect;
mod probe;

use std::io::Write;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sharkcage::callspec::{self, CallSpec};
use sharkcage::fileio::PinnedDir;
use sharkcage::launcher::{self, supervise::Sinks, ExecRequest, LaunchError};
use sharkcage::policy::Policy;

#[derive(Parser)]
#[command(name = "sc", version, about = "sharkcage: a kernel sandbox for AI-agent tool calls")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a command in a fresh sandbox.
    Exec(Box<ExecArgs>),
    /// Smoke-test every sandbox layer on this host and report what works.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make an existing OpenClaw config use the sharkcage sandbox backend
    /// (idempotent; keeps everything else; backs up the old file).
    Init {
        /// The OpenClaw config (default: $OPENCLAW_STATE_DIR/openclaw.json or ~/.openclaw/openclaw.json).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Which sessions are sandboxed: all, non-main.
        #[arg(long, default_value = "all")]
        mode: String,
        /// One sandbox per: session, agent, shared.
        #[arg(long, default_value = "session")]
        scope: String,
        /// The agent workspace: rw, ro, none.
        #[arg(long = "workspace-access", default_value = "rw")]
        workspace_access: String,
    },
    /// The private home layers sandboxes write $HOME into: `list`, `clear`.
    Home(home_cmd::HomeArgs),
    /// Show the audit log (what ran, what was blocked); `verify` it; sign and
    /// export a `checkpoint`.
    Audit(audit_cmd::AuditArgs),
    /// Skills installed into sharkcage: `add` (copy, hash, check), `list`, `show`.
    Skill(skills_cmd::SkillArgs),
    /// What skills may do: `list` every decision, `revoke` one.
    Grants(skills_cmd::GrantsArgs),
    /// Grant (or with --deny refuse) a skill's declared capabilities, pinned
    /// to its exact version; asks on the terminal unless --yes.
    Approve(skills_cmd::ApproveArgs),
    /// Which skill a command would be attributed to, which policy it gets and why.
    Explain(skills_cmd::ExplainArgs),
    /// The services skills reach (`show`, `add-service`, `remove-service`).
    Config(config_cmd::ConfigArgs),
    /// Internal: probes run inside the sandbox by `sc doctor` and the tests.
    #[command(name = "__probe", hide = true)]
    Probe { names: Vec<String> },
    /// ssh's ProxyCommand inside a sandbox (see GIT_SSH_COMMAND).
    #[command(name = "__connect", hide = true)]
    Connect { host: String, port: u16 },
}

#[derive(clap::Args)]
struct ExecArgs {
    /// Policy file (JSON; srt settings files work unchanged).
    #[arg(long, value_name = "FILE", conflicts_with = "policy_json")]
    settings: Option<PathBuf>,
    /// Policy as inline JSON.
    #[arg(long, value_name = "JSON")]
    policy_json: Option<String>,
    /// Writable directory that is also the working directory.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Extra writable path (repeatable).
    #[arg(long = "allow-write", value_name = "PATH")]
    allow_write: Vec<String>,
    /// Extra hidden path (repeatable).
    #[arg(long = "deny-read", value_name = "PATH")]
    deny_read: Vec<String>,
    /// A host path the command reads (repeatable): visible read-only, also
    /// to a root caller's sandbox when a directory above it is private.
    #[arg(long = "read-only", value_name = "PATH")]
    read_only: Vec<PathBuf>,
    /// Allowed network domain (repeatable).
    #[arg(long = "allow-domain", value_name = "DOMAIN")]
    allow_domain: Vec<String>,
    /// Answer NAME with IP in the proxy instead of asking DNS, like curl's
    /// --resolve (repeatable; NAME=IP[,IP…]). The policy still decides.
    #[arg(long = "net-resolve", value_name = "NAME=IP")]
    net_resolve: Vec<String>,
    /// Serve the network through a gateway's proxy at this unix socket
    /// (used by the OpenClaw addon, with the ticket in its spec or
    /// --net-ticket).
    #[arg(long = "net-attach", value_name = "SOCKET", hide = true)]
    net_attach: Option<PathBuf>,
    #[arg(long = "net-ticket", value_name = "TICKET", hide = true)]
    net_ticket: Option<String>,
    /// Read the call's secret part (policy, environment values, network
    /// ticket) from this inherited descriptor, then close it (the addon).
    #[arg(long = "spec-fd", value_name = "FD", conflicts_with = "spec_file", hide = true)]
    spec_fd: Option<i32>,
    /// The same from a private file, deleted once read (OpenClaw).
    #[arg(long = "spec-file", value_name = "PATH", hide = true)]
    spec_file: Option<PathBuf>,
    /// Wall-clock timeout in seconds.
    #[arg(long, value_name = "SECS", conflicts_with = "timeout_ms")]
    timeout: Option<f64>,
    /// Wall-clock timeout in milliseconds.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Set a variable for the command (repeatable; still secret-filtered).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Record the call (exec, violations, network decisions) in the audit
    /// log in DIR (created if new; see `sc audit`).
    #[arg(long = "audit-dir", value_name = "DIR")]
    audit_dir: Option<PathBuf>,
    /// Write the result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the result as JSON to an inherited descriptor.
    #[arg(long, value_name = "FD")]
    json_fd: Option<i32>,
    /// Memory of the whole sandbox, e.g. 2G (= limits.maxMemoryBytes).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Output passed through before it is cut, e.g. 64M (= limits.maxOutputBytes).
    #[arg(long = "max-output", value_name = "SIZE")]
    max_output: Option<String>,
    /// A unix socket the command may connect to, by absolute path (repeatable;
    /// = network.allowUnixSockets).
    #[arg(long = "allow-unix-socket", value_name = "PATH")]
    allow_unix_socket: Vec<String>,
    /// Let the command serve on its private loopback (the default; =
    /// network.allowLocalBinding true).
    #[arg(long = "allow-local-binding", conflicts_with = "no_local_binding")]
    allow_local_binding: bool,
    /// Refuse TCP bind, and every connect but the proxy's (=
    /// network.allowLocalBinding false).
    #[arg(long = "no-local-binding")]
    no_local_binding: bool,
    /// Where writes under $HOME go: a private layer kept per workspace
    /// (`workspace`, the default), a layer named NAME, or `none` (the home
    /// is read-only). The real home is never written.
    #[arg(long = "home-layer", value_name = "workspace|NAME|none")]
    home_layer: Option<String>,
    /// An empty home layer for this call only (removed after it).
    #[arg(long = "fresh-home", conflicts_with = "home_layer")]
    fresh_home: bool,
    /// Let the command change git configs (= filesystem.allowGitConfig).
    #[arg(long = "allow-git-config")]
    allow_git_config: bool,
    /// Give the command a terminal for its stdin, stdout and stderr (one of
    /// the sandbox's own, with your window size; its output all arrives on
    /// stdout). Your terminal is raw meanwhile and never reaches the command.
    #[arg(long)]
    pty: bool,
    /// No `sc:` notice lines on stderr (refusals, moved-aside files, withheld
    /// variables, timeouts, cut output); they stay in --json.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let code = match cli.cmd {
        Cmd::Skill(a) => skills_cmd::run_skill(a),
        Cmd::Grants(a) => skills_cmd::run_grants(a),
        Cmd::Approve(a) => match matches.subcommand_matches("approve").map(skills_cmd::pairs).unwrap_or(Ok(skills_cmd::Pairs(vec![]))) {
            Ok(p) => skills_cmd::run_approve(a, p),
            Err(m) => {
                eprintln!("sc: {m}");
                2
            }
        },
        Cmd::Explain(a) => skills_cmd::run_explain(a),
        Cmd::Config(a) => config_cmd::run(a),
        Cmd::Exec(a) => exec(*a),
        Cmd::Doctor { json } => sharkcage::doctor::run_cli(json),
        Cmd::Probe { names } => probe::run(&names),
        Cmd::Audit(a) => audit_cmd::run(a),
        Cmd::Home(a) => home_cmd::run(a),
        Cmd::Connect { host, port } => connect::run(&host, port),
        Cmd::Init { config, mode, scope, workspace_access } => init::run(init::InitArgs { config, mode, scope, workspace_access }),
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// `--json FILE`: its directory, opened before the call, and its name.
struct JsonDest {
    path: PathBuf,
    dir: PinnedDir,
    name: OsString,
}

impl JsonDest {
    /// `untrusted`: the call's writable roots (no symlink there is followed).
    fn open(path: &Path, untrusted: &[PathBuf]) -> Result<JsonDest, LaunchError> {
        let usage = |why: String| LaunchError::Usage(format!("--json {}: {why}", path.display()));
        let name = path.file_name().ok_or_else(|| usage("not a file name".into()))?.to_os_string();
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = PinnedDir::resolve(parent, untrusted)
            .and_then(|p| PinnedDir::open_exact(&p))
            .map_err(|e| usage(format!("cannot open its directory: {e}")))?;
        Ok(JsonDest { path: path.to_path_buf(), dir, name })
    }

    /// Write into the directory opened before the call — also when the
    /// command moved it away and put something else at its path (then the
    /// user is told where the file went).
    fn write(&self, json: &[u8]) {
        if let Some(why) = self.dir.moved() {
            eprintln!("sc: --json {}: its directory {why}; the result is written into that original directory", self.path.display());
        }
        if let Err(e) = self.dir.write_atomic(&self.name, json, 0o600) {
            eprintln!("sc: --json {}: {e}", self.path.display());
        }
    }
}

/// `--audit-dir DIR`: created (mode 0700) and opened before the call.
struct AuditDir {
    dir: PathBuf,
    pin: PinnedDir,
}

/// `untrusted`: the call's writable roots (no symlink there is followed).
fn open_audit_dir(dir: &Path, untrusted: &[PathBuf]) -> Result<AuditDir, LaunchError> {
    let usage = |e: std::io::Error| LaunchError::Usage(format!("--audit-dir {}: {e}", dir.display()));
    let real = PinnedDir::resolve(dir, untrusted).map_err(usage)?;
    sharkcage::fileio::create_private_dir_exact(&real).map_err(usage)?;
    Ok(AuditDir { dir: dir.to_path_buf(), pin: PinnedDir::open_exact(&real).map_err(usage)? })
}

impl AuditDir {
    /// Record the call. The writer works through the descriptor opened
    /// before the call (`/proc/self/fd/N`), so a path changed during the
    /// call cannot redirect it; the user is told if it was changed.
    fn record(&self, outcome: &launcher::ExecOutcome, argv: &[String], workspace: Option<&str>) {
        if let Some(why) = self.pin.moved() {
            eprintln!("sc: --audit-dir {}: the directory {why}; the record is written into that original directory", self.dir.display());
        }
        let anchor = self.pin.anchor();
        let recs = sharkcage::audit::events::exec(outcome, argv, workspace, &Default::default());
        let res = sharkcage::audit::Audit::open(sharkcage::audit::AuditConfig::new(&anchor)).and_then(|w| {
            for r in recs {
                w.submit(r);
            }
            // Everything queued is written and synced before close returns.
            w.close()
        });
        if let Err(e) = res {
            // Name the directory, not the descriptor the writer used.
            let msg = e.to_string().replace(&anchor.display().to_string(), &self.pin.path().display().to_string());
            eprintln!("sc: --audit-dir {}: {msg}", self.dir.display());
        }
    }
}

fn fail(e: &LaunchError) -> i32 {
    eprintln!("sc: {}", e);
    e.exit_code()
}

/// The call's secret part, read before anything else (see
/// `sharkcage::callspec`): from `--spec-fd` or `--spec-file`, else empty.
fn read_spec(a: &ExecArgs) -> Result<CallSpec, LaunchError> {
    let spec = match (a.spec_fd, &a.spec_file) {
        (Some(fd), _) => callspec::read_fd(fd),
        (None, Some(p)) => callspec::take_file(p),
        (None, None) => Ok(CallSpec::default()),
    };
    spec.map_err(|e| LaunchError::Usage(e.to_string()))
}

/// `--net-attach` and its ticket (from the spec or `--net-ticket`, not both).
fn net_attach(a: &ExecArgs, spec_ticket: Option<String>) -> Result<Option<(PathBuf, String)>, LaunchError> {
    let ticket = match (spec_ticket, &a.net_ticket) {
        (Some(_), Some(_)) => return Err(LaunchError::Usage("--net-ticket: the spec carries the ticket already".into())),
        (t, cli) => t.or_else(|| cli.clone()),
    };
    match (&a.net_attach, ticket) {
        (Some(sock), Some(t)) => Ok(Some((sock.clone(), t))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(LaunchError::Usage("--net-attach needs a ticket (in the spec or --net-ticket)".into())),
        (None, Some(_)) => Err(LaunchError::Usage("a network ticket needs --net-attach".into())),
    }
}

/// The policy: `--settings FILE`, `--policy-json`, or the spec's (one of them).
fn load_policy(a: &ExecArgs, spec_policy: Option<String>) -> Result<(Policy, String), LaunchError> {
    if spec_policy.is_some() && (a.settings.is_some() || a.policy_json.is_some()) {
        return Err(LaunchError::Usage("the policy is given twice: in the spec and by --settings/--policy-json".into()));
    }
    let (text, source) = match (&a.settings, a.policy_json.as_ref().or(spec_policy.as_ref())) {
        (Some(p), _) => (
            std::fs::read_to_string(p).map_err(|e| LaunchError::Policy(sharkcage::policy::PolicyError::Read { path: p.display().to_string(), source: e }))?,
            p.display().to_string(),
        ),
        (None, Some(j)) => (j.clone(), "<policy-json>".to_string()),
        (None, None) => ("{}".to_string(), "<default>".to_string()),
    };
    // Errors name the text as given; the flags are applied after.
    let mut policy = Policy::from_json(&text, &source)?;
    apply_flags(a, &text, &mut policy)?;
    Ok((policy, source))
}

/// "No cap" on output (larger than anything a call will write).
const UNCAPPED_OUTPUT: u64 = 1 << 62;

/// The flags for common policy keys, on top of the policy (`text` is its
/// source, to tell whether it sets an output cap itself).
fn apply_flags(a: &ExecArgs, text: &str, p: &mut Policy) -> Result<(), LaunchError> {
    if let Some(m) = &a.memory {
        p.limits.max_memory_bytes = Some(parse_size("--memory", m)?);
    }
    // A person's `sc exec` streams its output without a cap unless the
    // policy or --max-output sets one; the addon and OpenClaw keep theirs.
    let for_a_person = a.spec_fd.is_none() && a.spec_file.is_none() && a.json_fd.is_none();
    match &a.max_output {
        Some(m) => p.limits.max_output_bytes = parse_size("--max-output", m)?,
        None if for_a_person && !serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v["limits"].get("maxOutputBytes").is_some()) => {
            p.limits.max_output_bytes = UNCAPPED_OUTPUT;
        }
        None => {}
    }
    if a.allow_local_binding || a.no_local_binding {
        p.network.allow_local_binding = Some(a.allow_local_binding);
    }
    if a.allow_git_config {
        p.filesystem.allow_git_config = true;
    }
    if !a.allow_unix_socket.is_empty() {
        // Checked by the policy's own rules for allowUnixSockets.
        let extra = Policy::from_json(&serde_json::json!({ "network": { "allowUnixSockets": a.allow_unix_socket } }).to_string(), "--allow-unix-socket")?;
        p.network.allow_unix_sockets.extend(extra.network.allow_unix_sockets);
    }
    Ok(())
}

/// `1024`, `64K`, `512M`, `2G` (binary units; `KiB`/`MiB`/`GiB` too).
fn parse_size(flag: &str, s: &str) -> Result<u64, LaunchError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(LaunchError::Usage(format!("{flag} {s:?}: expected a size such as 512M or 2G"))),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| LaunchError::Usage(format!("{flag} {s:?}: expected a positive size such as 512M or 2G")))
}

/// `sc: …` lines on stderr: refusals, withheld variables, moved-aside
/// files, skipped or created paths, a replaced working directory, a
/// timeout, cut output. Notes about how a limit is enforced stay in --json.
fn print_notices(o: &launcher::ExecOutcome, redact: &[(String, String)]) {
    const MAX: usize = 20;
    let lines: Vec<String> = o
        .violations
        .iter()
        .filter(|v| v.kind != "limits")
        .map(|v| match v.kind.as_str() {
            "timeout" => format!("sc: timed out ({})", v.detail),
            "output" => format!("sc: {} (the rest was dropped)", v.detail),
            _ => format!("sc: {}", v.detail),
        })
        .map(|l| sharkcage::launcher::redact_stream::redact_text(&l, redact))
        .map(|l| l.chars().filter(|c| !c.is_control()).take(300).collect())
        .collect();
    let mut err = std::io::stderr().lock();
    for l in lines.iter().take(MAX) {
        let _ = writeln!(err, "{l}");
    }
    if lines.len() > MAX {
        let _ = writeln!(err, "sc: … and {} more (see --json)", lines.len() - MAX);
    }
}

/// Descriptors 0–2 that are closed become `/dev/null`, so nothing opened
/// later (a pipe to the sandbox, the terminal's master) takes their number
/// and is mistaken for stdio.
fn open_missing_stdio() {
    for fd in 0..3 {
        // SAFETY: fcntl asks whether `fd` is open; open takes the lowest free
        // number, which is `fd` (the ones below it are open).
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) < 0 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
}

fn exec(a: ExecArgs) -> i32 {
    open_missing_stdio();
    // First of all: the secret part of the call, off the command line. Its
    // descriptor is closed and its file deleted once read.
    let spec = match read_spec(&a) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // The result descriptor must not leak into the sandbox: mark it
    // close-on-exec now (the worker also closes every fd beyond stdio).
    if let Some(fd) = a.json_fd {
        // SAFETY: fcntl on an integer descriptor.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            eprintln!("sc: --json-fd {fd}: not an open descriptor");
            return 2;
        }
    }
    if !a.quiet {
        for n in spec.notices.iter().take(20) {
            let line: String = n.chars().filter(|c| !c.is_control()).take(300).collect();
            eprintln!("{line}");
        }
    }
    let (policy, source) = match load_policy(&a, spec.policy_json) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    for k in policy.ignored_keys() {
        eprintln!("sc: note: {source}: srt key `{k}` has no effect in sharkcage");
    }
    let mut env = Vec::new();
    for kv in &a.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
            _ => return fail(&LaunchError::Usage(format!("--env {kv:?}: expected NAME=VALUE"))),
        }
    }
    for (k, v) in spec.env {
        if k.is_empty() || k.contains('=') {
            return fail(&LaunchError::Usage(format!("spec: env name {k:?}: expected a name without '='")));
        }
        env.push((k, v));
    }
    // Values the caller injected that must not come back in the output.
    let redact: Vec<(String, String)> = spec.redact.iter().filter_map(|n| env.iter().find(|(k, _)| k == n).cloned()).collect();
    let net_attach = match net_attach(&a, spec.net_ticket) {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    let timeout_ms = match (a.timeout, a.timeout_ms) {
        (Some(s), _) if !(s > 0.0 && s.is_finite()) => return fail(&LaunchError::Usage("--timeout must be a positive number of seconds".into())),
        (Some(s), _) => Some((s * 1000.0).ceil() as u64),
        (None, Some(0)) => return fail(&LaunchError::Usage("--timeout-ms must be positive".into())),
        (None, ms) => ms,
    };
    let home_layer = match (a.fresh_home, a.home_layer.as_deref()) {
        (true, _) => launcher::home_layer::Request::Fresh,
        (false, None) => launcher::home_layer::Request::Workspace,
        (false, Some(v)) => match launcher::home_layer::Request::parse(v) {
            Ok(r) => r,
            Err(m) => return fail(&LaunchError::Usage(m)),
        },
    };
    let req = ExecRequest {
        home_layer,
        policy,
        policy_source: source,
        workspace: a.workspace,
        extra_allow_write: a.allow_write,
        extra_deny_read: a.deny_read,
        extra_allow_domains: a.allow_domain,
        net_attach,
        net_resolve: a.net_resolve,
        expose_read_only: a.read_only,
        timeout_ms,
        pty: a.pty || spec.pty,
        env,
        redact,
        argv: a.command,
    };
    // Directories written after the call are opened now, before the sandbox
    // exists, never through a symlink inside a writable root of the call,
    // and written through those descriptors (see `fileio`).
    let untrusted = if a.json.is_some() || a.audit_dir.is_some() {
        match launcher::plan::writable_roots(&req) {
            Ok(w) => w,
            Err(e) => return fail(&e),
        }
    } else {
        vec![]
    };
    let json_dest = match a.json.as_deref().map(|p| JsonDest::open(p, &untrusted)).transpose() {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    // The audit directory must not be reachable from the sandbox it records.
    let mut req = req;
    let audit_dir = match a.audit_dir.as_deref().map(|d| open_audit_dir(d, &untrusted)).transpose() {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    if let Some(d) = &audit_dir {
        req.extra_deny_read.push(d.pin.path().display().to_string());
    }
    let argv: Vec<String> = req.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let workspace = req.workspace.as_ref().map(|w| w.display().to_string());
    let outcome = match launcher::run(&req, &Sinks { stdout: 1, stderr: 2 }) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    // The audit writer starts only now: the sandbox is gone, so this
    // process may have threads.
    if let Some(d) = &audit_dir {
        d.record(&outcome, &argv, workspace.as_deref());
    }
    // One short line per thing the person should know (not for the addon,
    // which reads the result itself and tells its caller).
    if !a.quiet && a.json_fd.is_none() {
        print_notices(&outcome, &req.redact);
    }
    // Injected values never leave in the launcher's own words either (a
    // refused host name made of one, say).
    let json = if req.redact.is_empty() {
        serde_json::to_string(&outcome).expect("outcome serialises")
    } else {
        let mut v = serde_json::to_value(&outcome).expect("outcome serialises");
        sharkcage::launcher::redact_stream::redact_json(&mut v, &req.redact);
        v.to_string()
    };
    if let Some(d) = &json_dest {
        d.write(json.as_bytes());
    }
    if let Some(fd) = a.json_fd {
        sharkcage::layers::sys::write_all(fd, json.as_bytes());
        // SAFETY: closing the result descriptor we were handed.
        unsafe { libc::close(fd) };
    }
    outcome.process_exit_code()
}
