//! Whole-file writes that a reader never sees half done, and that cannot be
//! redirected: the temporary file is created exclusively, never through a
//! symlink (`O_EXCL | O_NOFOLLOW`), in the target's own directory, synced,
//! and renamed over the target. Used for `sc exec --json` (the directory may
//! be a workspace the sandboxed command could write to), `sc init` and the
//! pending-check journal.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Write `data` to `path` atomically, creating it with `mode` if new.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0) ^ std::process::id();
    for _ in 0..100 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let tmp = dir.join(format!(".{base}.tmp-{seed:08x}"));
        let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(libc::O_NOFOLLOW).open(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let r = f.write_all(data).and_then(|_| f.sync_all()).and_then(|_| std::fs::rename(&tmp, path));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return r;
    }
    Err(std::io::Error::other("could not create a temporary file"))
}

/// sharkcage's private state directory: `$SHARKCAGE_STATE_DIR`, else
/// `$XDG_STATE_HOME/sharkcage`, else `~/.local/state/sharkcage`. Every
/// sandbox has it hidden (the launcher adds it to the hidden paths).
pub fn state_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(d) = std::env::var_os("SHARKCAGE_STATE_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(d.join("sharkcage"));
    }
    crate::policy::paths::primary_home().map(|h| h.join(".local/state/sharkcage"))
}

/// Create `dir` (and parents) and make it mode 0700.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_never_follows_a_planted_symlink() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out.json");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "KEEP").unwrap();
        // Plant symlinks at plausible temporary names; none may be followed.
        for i in 0..50 {
            let _ = std::os::unix::fs::symlink(&victim, d.path().join(format!(".out.json.tmp-{i:08x}")));
        }
        write_atomic(&target, b"{}", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"KEEP");
        write_atomic(&target, b"[1]", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"[1]");
    }
}
