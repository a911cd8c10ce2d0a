//! `sc init`: make an existing OpenClaw configuration use the sharkcage
//! backend.
//!
//! Sets `agents.defaults.sandbox` to `{mode, backend: "sharkcage", scope,
//! workspaceAccess}` and `plugins.entries.sharkcage.enabled = true`, keeping
//! every other key (and an existing `plugins.entries.sharkcage.config`).
//! When `tools.codeMode` is not set, it becomes `false`: Code Mode runs the
//! model's JavaScript inside the gateway, outside any sandbox, and the
//! sharkcage gate refuses it in sandboxed sessions — with it off the model
//! gets shell and file tools, which run in the sandbox. An explicit setting
//! is kept (and reported).
//!
//! How the file is written:
//! * a symlinked config is updated at its target (what OpenClaw reads), never
//!   replaced by a regular file beside a stale target;
//! * one `sc init` at a time (an exclusive lock on a lock file beside it),
//!   and the file is re-read under the lock: an edit made meanwhile is not
//!   lost (the run stops and says so);
//! * the old file is kept as `openclaw.json.bak-<unix seconds>`, mode 0600
//!   (it holds the gateway token), and only the newest three backups are
//!   kept;
//! * the new file is written atomically (temporary file, fsync, rename) with
//!   the old mode.
//!
//! Idempotent: when nothing changes, nothing is written. A file that is not
//! strict JSON (OpenClaw also reads JSON5) is left alone with an error
//! naming the position, never rewritten half-understood.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

pub struct InitArgs {
    pub config: Option<PathBuf>,
    pub mode: String,
    pub scope: String,
    pub workspace_access: String,
}

fn default_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("OPENCLAW_STATE_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(d.join("openclaw.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".openclaw/openclaw.json"))
}

fn obj<'a>(v: &'a mut Value, key: &str, path: &str) -> Result<&'a mut Map<String, Value>, String> {
    let m = v.as_object_mut().ok_or_else(|| format!("{path} is not an object"))?;
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    e.as_object_mut().ok_or_else(|| format!("{path}.{key} is not an object"))
}

/// Apply the settings to a parsed config; returns whether anything changed.
pub fn apply(cfg: &mut Value, a: &InitArgs) -> Result<bool, String> {
    let before = cfg.clone();
    let sandbox = json!({ "mode": a.mode, "backend": "sharkcage", "scope": a.scope, "workspaceAccess": a.workspace_access });
    {
        let agents = obj(cfg, "agents", "")?;
        let defaults = agents.entry("defaults").or_insert_with(|| json!({}));
        let defaults = defaults.as_object_mut().ok_or("agents.defaults is not an object")?;
        match defaults.get_mut("sandbox").and_then(Value::as_object_mut) {
            Some(existing) => {
                for (k, v) in sandbox.as_object().unwrap() {
                    existing.insert(k.clone(), v.clone());
                }
            }
            None => {
                defaults.insert("sandbox".into(), sandbox);
            }
        }
    }
    {
        let tools = obj(cfg, "tools", "")?;
        if !tools.contains_key("codeMode") {
            tools.insert("codeMode".into(), json!(false));
        }
    }
    {
        // The skill dispatcher (sharkcage_run) is a plugin tool, which
        // OpenClaw hides in sandboxed sessions unless allowed there.
        let tools = obj(cfg, "tools", "")?;
        let sandbox = tools.entry("sandbox").or_insert_with(|| json!({}));
        let sandbox = sandbox.as_object_mut().ok_or("tools.sandbox is not an object")?;
        let st = sandbox.entry("tools").or_insert_with(|| json!({}));
        let st = st.as_object_mut().ok_or("tools.sandbox.tools is not an object")?;
        let also = st.entry("alsoAllow").or_insert_with(|| json!([]));
        let also = also.as_array_mut().ok_or("tools.sandbox.tools.alsoAllow is not a list")?;
        if !also.iter().any(|v| v == "sharkcage_run" || v == "sharkcage" || v == "group:plugins") {
            also.push(json!("sharkcage_run"));
        }
    }
    {
        let plugins = obj(cfg, "plugins", "")?;
        let entries = plugins.entry("entries").or_insert_with(|| json!({}));
        let entries = entries.as_object_mut().ok_or("plugins.entries is not an object")?;
        let sc = entries.entry("sharkcage").or_insert_with(|| json!({}));
        let sc = sc.as_object_mut().ok_or("plugins.entries.sharkcage is not an object")?;
        sc.insert("enabled".into(), json!(true));
    }
    Ok(*cfg != before)
}

pub fn run(a: InitArgs) -> i32 {
    for (name, v, allowed) in [
        ("--mode", &a.mode, &["all", "non-main"][..]),
        ("--scope", &a.scope, &["session", "agent", "shared"][..]),
        ("--workspace-access", &a.workspace_access, &["rw", "ro", "none"][..]),
    ] {
        if !allowed.contains(&v.as_str()) {
            eprintln!("sc init: {name} {v:?}: expected one of {}", allowed.join(", "));
            return 2;
        }
    }
    let Some(path) = a.config.clone().or_else(default_config_path) else {
        eprintln!("sc init: no OpenClaw config found: set HOME or pass --config FILE");
        return 2;
    };
    // A symlinked config is updated where it points (what OpenClaw reads).
    let path = match std::fs::canonicalize(&path) {
        Ok(real) => {
            if real != path {
                println!("{} is a symlink: updating its target {}", path.display(), real.display());
            }
            real
        }
        Err(e) => {
            eprintln!("sc init: {}: {e} (run `openclaw` once to create it, or pass --config)", path.display());
            return 2;
        }
    };
    let _lock = match lock(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sc init: {}: cannot take the lock ({e}); left unchanged", path.display());
            return 1;
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sc init: {}: {e} (run `openclaw` once to create it, or pass --config)", path.display());
            return 2;
        }
    };
    let mut cfg: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "sc init: {}:{}:{}: not strict JSON ({e}); left unchanged — set the keys with `openclaw config set` instead",
                path.display(),
                e.line(),
                e.column()
            );
            return 2;
        }
    };
    let code_mode_before = cfg.get("tools").and_then(|t| t.get("codeMode")).cloned();
    match apply(&mut cfg, &a) {
        Err(m) => {
            eprintln!("sc init: {}: {m}; left unchanged", path.display());
            2
        }
        Ok(false) => {
            println!("{}: already uses the sharkcage sandbox backend; nothing changed", path.display());
            report_code_mode(code_mode_before.as_ref());
            0
        }
        Ok(true) => match write(&path, &text, &cfg) {
            Ok(backup) => {
                println!("{}: now uses the sharkcage sandbox backend (previous version: {})", path.display(), backup.display());
                report_code_mode(code_mode_before.as_ref());
                0
            }
            Err(e) => {
                eprintln!("sc init: {}: {e}; left unchanged", path.display());
                1
            }
        },
    }
}

/// Say what happens to Code Mode.
fn report_code_mode(before: Option<&Value>) {
    match before {
        None => println!("tools.codeMode: false (Code Mode would run the model's JavaScript in the gateway, outside the sandbox)"),
        Some(Value::Bool(false)) => {}
        Some(v) => println!(
            "tools.codeMode is {v} (kept): in sandboxed sessions the sharkcage gate refuses Code Mode cells, which run in the gateway outside the sandbox; set it to false to give the model sandboxed shell and file tools"
        ),
    }
}

/// An exclusive lock held while the config is read and replaced (a lock
/// file beside it: the config itself is replaced by rename).
fn lock(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock_path = path.parent().unwrap_or(Path::new(".")).join(format!(".{name}.sc-init.lock"));
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&lock_path)?;
    // SAFETY: flock on a descriptor we own; released when the file is dropped.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

/// Keep the newest `keep` backups made by `sc init` of this file.
fn prune_backups(path: &Path, keep: usize) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!("{name}.bak-");
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut found: Vec<(u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let stamp = n.strip_prefix(&prefix)?.parse::<u64>().ok()?;
            e.file_type().ok().filter(|t| t.is_file()).map(|_| (stamp, e.path()))
        })
        .collect();
    found.sort();
    let extra = found.len().saturating_sub(keep);
    for (_, p) in found.into_iter().take(extra) {
        let _ = std::fs::remove_file(p);
    }
}

fn write(path: &Path, old: &str, cfg: &Value) -> std::io::Result<PathBuf> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("."));
    // The file must still be what was read (an edit made before the lock
    // was taken by someone not using it would otherwise be lost).
    if std::fs::read_to_string(path)? != old {
        return Err(std::io::Error::other("the file changed while sc init was running; run it again"));
    }
    // A backup holds the gateway token: 0600 whatever the config's mode.
    let mut backup = dir.join(format!("{name}.bak-{stamp}"));
    let mut n = 0;
    let mut b = loop {
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&backup) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                n += 1;
                backup = dir.join(format!("{name}.bak-{}", stamp + n));
            }
            r => break r?,
        }
    };
    b.write_all(old.as_bytes())?;
    b.sync_all()?;
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o600))?;
    let mut text = serde_json::to_string_pretty(cfg).map_err(std::io::Error::other)?;
    text.push('\n');
    sharkcage::fileio::write_atomic(path, text.as_bytes(), mode)?;
    // Creation modes pass through the umask: restore the old mode exactly.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    prune_backups(path, 3);
    Ok(backup)
}
