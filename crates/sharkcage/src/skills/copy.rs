//! Copying a skill's directory (for `sc skill add` and for the snapshots
//! skill calls run from): never through a symlink, a symlink copied as a
//! symlink only if it resolves inside the skill, nothing but files,
//! directories and such symlinks. The caller checks the copy's identity.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The modes of what is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modes {
    /// Only the caller reads it (`sc skill add`: 0700/0600).
    Private,
    /// Sandboxes read and run it, whatever uid they run as (0755/0644).
    Shared,
}

/// Copy `src` into `dst` (new); `root` is the canonical skill directory.
pub fn copy_tree(src: &Path, dst: &Path, root: &Path, modes: Modes) -> Result<(), String> {
    let (dir_mode, exec_mode, file_mode) = match modes {
        Modes::Private => (0o700, 0o700, 0o600),
        Modes::Shared => (0o755, 0o755, 0o644),
    };
    std::fs::create_dir(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(dir_mode)).map_err(|e| e.to_string())?;
    let mut entries: Vec<_> = std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))?.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let from = e.path();
        let to = dst.join(e.file_name());
        let m = std::fs::symlink_metadata(&from).map_err(|e| format!("{}: {e}", from.display()))?;
        let ft = m.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&from).map_err(|e| e.to_string())?;
            // Judged by its text too: the copy lives elsewhere, and an
            // absolute or climbing link would be resolved again from there,
            // onto whatever is at that path when the code runs.
            if !stays_inside(&from, &target, root) {
                return Err(format!("{}: a symlink that is absolute or climbs out of the skill ({}); refused", from.display(), target.display()));
            }
            match std::fs::canonicalize(&from) {
                Ok(real) if real.starts_with(root) => {}
                Ok(real) => return Err(format!("{}: a symlink leaving the skill (to {}); refused", from.display(), real.display())),
                Err(_) => return Err(format!("{}: a symlink that leads nowhere ({}); refused", from.display(), target.display())),
            }
            std::os::unix::fs::symlink(&target, &to).map_err(|e| e.to_string())?;
        } else if ft.is_dir() {
            copy_tree(&from, &to, root, modes)?;
        } else if ft.is_file() {
            let mut inp = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&from).map_err(|e| format!("{}: {e}", from.display()))?;
            let mode = if m.mode() & 0o111 != 0 { exec_mode } else { file_mode };
            let mut out = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&to).map_err(|e| format!("{}: {e}", to.display()))?;
            std::io::copy(&mut inp, &mut out).map_err(|e| format!("{}: {e}", from.display()))?;
            // The umask may have narrowed it.
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())?;
        } else {
            return Err(format!("{}: not a file, directory or symlink; refused", from.display()));
        }
    }
    Ok(())
}

/// Whether the symlink at `link` with text `target` stays inside `root` by
/// its text alone (relative, never climbing above `root`).
fn stays_inside(link: &Path, target: &Path, root: &Path) -> bool {
    match link.strip_prefix(root) {
        Ok(rel) => link_stays_inside(rel, target),
        Err(_) => false,
    }
}

/// Whether a symlink at `rel` (relative to the skill's root) with text
/// `target` stays inside the skill by its text alone.
pub fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    use std::path::Component;
    if target.is_absolute() {
        return false;
    }
    let mut depth = rel.parent().map(|p| p.components().count()).unwrap_or(0) as i64;
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_links_that_stay_inside_by_their_text_are_copied() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("skill");
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(root.join("lib/real.py"), "x").unwrap();
        std::os::unix::fs::symlink("lib/real.py", root.join("ok.py")).unwrap();
        std::os::unix::fs::symlink("../lib/real.py", root.join("lib/up.py")).unwrap();
        let real = std::fs::canonicalize(&root).unwrap();
        copy_tree(&real, &t.path().join("c1"), &real, Modes::Shared).unwrap();
        // An absolute link that resolves inside today is still refused.
        std::os::unix::fs::symlink(real.join("lib/real.py"), root.join("abs.py")).unwrap();
        assert!(copy_tree(&real, &t.path().join("c2"), &real, Modes::Shared).unwrap_err().contains("absolute or climbs"));
        std::fs::remove_file(root.join("abs.py")).unwrap();
        // So is one that climbs out and back in.
        std::os::unix::fs::symlink("../skill/lib/real.py", root.join("back.py")).unwrap();
        assert!(copy_tree(&real, &t.path().join("c3"), &real, Modes::Shared).unwrap_err().contains("absolute or climbs"));
    }
}
