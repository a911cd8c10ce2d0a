//! The code a skill call runs: a verified, immutable copy of the skill's
//! directory, never the live one.
//!
//! Judging a call hashes the skill's directory; the kernel would otherwise
//! open the files later, by path, in a directory another sandbox (or a
//! swapped symlink on the way to it) may change in between. So a call that
//! gets a skill's grants runs from `<root>/<hex digest>/`: a copy made by the
//! gateway, checked to have exactly the judged identity, in a place no
//! sandbox can write (under OpenClaw's state directory, which every sandbox
//! sees only read-only, and only this directory of it). A copy already
//! there is checked again before each use.

use std::path::{Path, PathBuf};

use super::copy::{copy_tree, Modes};
use super::identity;

/// Where the snapshots live by default: `<OpenClaw state>/sharkcage-skill-code`.
pub const DIR_NAME: &str = "sharkcage-skill-code";

/// The snapshot of `dir` for `digest` (made if missing), checked.
pub fn ensure(root: &Path, dir: &Path, digest: &str) -> Result<PathBuf, String> {
    let hex = digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).ok_or_else(|| format!("not an identity: {digest}"))?;
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755));
    let target = root.join(hex);
    if target.exists() {
        if matches_identity(&target, digest) {
            return Ok(target);
        }
        // Damaged or tampered with: replaced below.
        let aside = root.join(format!(".bad-{hex}-{}", std::process::id()));
        std::fs::rename(&target, &aside).map_err(|e| format!("{}: {e}", target.display()))?;
        let _ = std::fs::remove_dir_all(&aside);
    }
    let real = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = root.join(format!(".tmp-{hex}-{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""));
    let _ = std::fs::remove_dir_all(&tmp);
    let made = copy_tree(&real, &tmp, &real, Modes::Shared).and_then(|_| {
        if matches_identity(&tmp, digest) {
            Ok(())
        } else {
            Err("the skill changed while it was copied".to_string())
        }
    });
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, &target) {
        Ok(()) => Ok(target),
        // Another call made it meanwhile.
        Err(_) if matches_identity(&target, digest) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(target)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(format!("{}: {e}", target.display()))
        }
    }
}

/// The copy has exactly the judged identity, and none of its symlinks is
/// absolute or climbs out of it (it would be resolved again from the copy's
/// place when the code runs).
fn matches_identity(dir: &Path, digest: &str) -> bool {
    let Ok(id) = identity::identify(dir) else { return false };
    id.digest == digest
        && id.entries.iter().all(|(rel, e)| match e {
            identity::Entry::Symlink { target } => super::copy::link_stays_inside(Path::new(rel), Path::new(target)),
            _ => true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_exactly_the_judged_version_and_repaired_when_damaged() {
        let t = tempfile::tempdir().unwrap();
        let skill = t.path().join("skill");
        std::fs::create_dir(&skill).unwrap();
        std::fs::write(skill.join("run.sh"), "echo hi\n").unwrap();
        let id = identity::identify(&skill).unwrap().digest;
        let root = t.path().join("snap");
        let s = ensure(&root, &skill, &id).unwrap();
        assert_eq!(identity::identify(&s).unwrap().digest, id);
        // The live copy changes: the snapshot of the judged version refuses to be made from it.
        std::fs::remove_dir_all(&s).unwrap();
        std::fs::write(skill.join("run.sh"), "echo evil\n").unwrap();
        assert!(ensure(&root, &skill, &id).unwrap_err().contains("changed"));
        // A damaged snapshot is replaced, not used.
        std::fs::write(skill.join("run.sh"), "echo hi\n").unwrap();
        let s = ensure(&root, &skill, &id).unwrap();
        std::fs::write(s.join("run.sh"), "echo tampered\n").unwrap();
        let s = ensure(&root, &skill, &id).unwrap();
        assert_eq!(std::fs::read_to_string(s.join("run.sh")).unwrap(), "echo hi\n");
        // Nothing left over.
        let left: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // An absolute link (resolved again from the copy's place when the code
        // runs) is refused, also when a copy of that identity exists already.
        std::os::unix::fs::symlink(skill.join("run.sh"), skill.join("helper.sh")).unwrap();
        let id = identity::identify(&skill).unwrap().digest;
        assert!(ensure(&root, &skill, &id).is_err());
        let planted = root.join(id.strip_prefix("sha256:").unwrap());
        std::fs::create_dir(&planted).unwrap();
        std::fs::write(planted.join("run.sh"), "echo hi\n").unwrap();
        std::os::unix::fs::symlink(skill.join("run.sh"), planted.join("helper.sh")).unwrap();
        assert!(ensure(&root, &skill, &id).is_err(), "an existing copy with an absolute link was used");
    }
}
