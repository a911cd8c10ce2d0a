//! `sc init`: make an existing OpenClaw configuration use the sharkcage
//! backend.
//!
//! Sets `agents.defaults.sandbox` to `{mode, backend: "sharkcage", scope,
//! workspaceAccess}` and `plugins.entries.sharkcage.enabled = true`, keeping
//! every other key (and an existing `plugins.entries.sharkcage.config`).
//! Idempotent: when nothing changes, nothing is written. Otherwise the old
//! file is kept as `openclaw.json.bak-<unix seconds>` and the new one is
//! written atomically (temporary file, fsync, rename), with the old mode.
//! A file that is not strict JSON (OpenClaw also reads JSON5) is left alone
//! with an error naming the position, never rewritten half-understood.

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
    match apply(&mut cfg, &a) {
        Err(m) => {
            eprintln!("sc init: {}: {m}; left unchanged", path.display());
            2
        }
        Ok(false) => {
            println!("{}: already uses the sharkcage sandbox backend; nothing changed", path.display());
            0
        }
        Ok(true) => match write(&path, &text, &cfg) {
            Ok(backup) => {
                println!("{}: now uses the sharkcage sandbox backend (previous version: {})", path.display(), backup.display());
                0
            }
            Err(e) => {
                eprintln!("sc init: {}: {e}; left unchanged", path.display());
                1
            }
        },
    }
}

fn write(path: &Path, old: &str, cfg: &Value) -> std::io::Result<PathBuf> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("."));
    let backup = dir.join(format!("{name}.bak-{stamp}"));
    let mut b = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&backup)?;
    b.write_all(old.as_bytes())?;
    b.sync_all()?;
    let mut text = serde_json::to_string_pretty(cfg).map_err(std::io::Error::other)?;
    text.push('\n');
    sharkcage::fileio::write_atomic(path, text.as_bytes(), mode)?;
    // Creation modes pass through the umask: restore the old mode exactly.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(backup)
}
