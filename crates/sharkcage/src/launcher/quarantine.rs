//! Protected paths that did not exist when the call started.
//!
//! Existing protected paths (`.git/hooks`, `.bashrc`, `.vscode`, …) are
//! read-only mounts in the sandbox, and their parent directories are pinned,
//! so they cannot be written, removed or renamed away. A protected name that
//! does **not** exist yet cannot get a mount without creating a placeholder
//! on the host (which srt does, and which breaks concurrent calls), and
//! neither mounts nor Landlock can refuse the creation of one name while
//! allowing others in the same directory.
//!
//! So the launcher checks after the call, when every process of the
//! sandbox is dead: a protected path (or a missing `denyWrite` path) that
//! appeared during the call is moved aside to
//! `.<name>.sharkcage-quarantine-<pid>-<n>` in the same directory (never
//! deleted: it may be inspected and restored), and reported as a violation.
//! Nothing the sandbox wrote there is ever found at the protected path after
//! the call. The limit: during the call, a concurrent host process could
//! see it. This is reported in the README.

use std::path::{Path, PathBuf};

use super::plan::{scan_protected, Plan};
use super::Violation;

/// Check the writable roots again; quarantine what is new.
pub fn after_call(plan: &Plan) -> Vec<Violation> {
    let mut now = Vec::new();
    let mut ignored = Vec::new();
    for w in &plan.writable {
        scan_protected(w, plan.scan_depth, plan.allow_git_config, &plan.hidden, &mut now, &mut ignored);
    }
    for p in &plan.deny_write_missing {
        if p.symlink_metadata().is_ok() {
            now.push(p.clone());
        }
    }
    now.sort();
    now.dedup();
    let mut out = Vec::new();
    let mut n = 0u32;
    for p in now {
        if plan.protected.contains(&p) || plan.protected.iter().any(|q| p.starts_with(q)) {
            continue;
        }
        // Only what lies inside a writable root can have come from the sandbox.
        if !plan.writable.iter().any(|w| p.starts_with(w) && &p != w) {
            continue;
        }
        n += 1;
        match quarantine(&p, n) {
            Ok(dest) => out.push(Violation::note(
                "protected-path",
                format!("{} was created inside the sandbox; moved aside to {}", p.display(), dest.display()),
            )),
            Err(e) => out.push(Violation::note("protected-path", format!("{} was created inside the sandbox and could not be moved aside: {e}", p.display()))),
        }
    }
    out
}

fn quarantine(p: &Path, n: u32) -> std::io::Result<PathBuf> {
    let name = p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = p.parent().unwrap_or(Path::new("/"));
    let dest = dir.join(format!(".{}.sharkcage-quarantine-{}-{}", name.trim_start_matches('.'), std::process::id(), n));
    std::fs::rename(p, &dest)?;
    Ok(dest)
}
