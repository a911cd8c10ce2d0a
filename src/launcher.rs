//! Where the `sharkcage-launcher` binary is.
//!
//! The addon never sandboxes anything in-process (Node is multi-threaded, and
//! the sandbox needs a fresh single-threaded process); it runs the launcher.
//! The lookup order is the same as `bin/sc.js` uses, so both agree:
//!   1. `$SHARKCAGE_LAUNCHER`, if set and non-empty (and then nothing else:
//!      an explicit override that points nowhere is an error, not a fallback);
//!   2. `sharkcage-launcher` in the directory of the loaded `.node` file. The
//!      generated `index.js` loads the `.node` from the package root first and
//!      from `@sharkcage/openclaw-linux-x64-gnu` second, and the launcher ships
//!      beside it in both places.

use std::ffi::{CStr, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::AddonError;

pub const ENV_VAR: &str = "SHARKCAGE_LAUNCHER";
pub const FILE_NAME: &str = "sharkcage-launcher";

/// Resolve the launcher. Reads the process environment, so call it on the JS
/// thread (Node's `process.env` writes are not synchronised with other threads).
pub fn resolve() -> Result<PathBuf, AddonError> {
    resolve_with(std::env::var_os(ENV_VAR))
}

fn resolve_with(env_value: Option<OsString>) -> Result<PathBuf, AddonError> {
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        let path = std::path::absolute(PathBuf::from(&value)).unwrap_or_else(|_| value.into());
        return match check_executable(&path) {
            Ok(()) => Ok(path),
            Err(why) => Err(AddonError::LauncherNotFound {
                tried: vec![format!("{} (from ${ENV_VAR}): {why}", path.display())],
            }),
        };
    }
    let dir = match module_dir() {
        Ok(dir) => dir,
        Err(why) => {
            return Err(AddonError::LauncherNotFound {
                tried: vec![format!(
                    "${ENV_VAR} (unset); the addon's own directory: {why}"
                )],
            })
        }
    };
    let path = dir.join(FILE_NAME);
    match check_executable(&path) {
        Ok(()) => Ok(path),
        Err(why) => Err(AddonError::LauncherNotFound {
            tried: vec![
                format!("${ENV_VAR} (unset)"),
                format!("{} (next to the loaded .node file): {why}", path.display()),
            ],
        }),
    }
}

fn check_executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("not executable".to_owned());
    }
    Ok(())
}

/// The directory holding the shared object this code was loaded from.
fn module_dir() -> Result<PathBuf, String> {
    // Any function of this library will do; this one is as good as any.
    let addr = module_dir as *const () as *const libc::c_void;
    // SAFETY: `Dl_info` is a plain C struct of pointers, for which all-zero is
    // a valid value; dladdr overwrites it on success.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the dynamic loader's tables; `addr` points into
    // this loaded object and `info` is a valid, writable Dl_info.
    let found = unsafe { libc::dladdr(addr, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return Err("dladdr() could not name the loaded .node file".to_owned());
    }
    // SAFETY: on success dli_fname is a NUL-terminated string owned by the
    // loader that stays valid while the object is loaded (we copy it now).
    let fname = unsafe { CStr::from_ptr(info.dli_fname) };
    let file = PathBuf::from(OsStr::from_bytes(fname.to_bytes()));
    let file = std::path::absolute(&file).unwrap_or(file);
    file.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} has no parent directory", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_pointing_nowhere_is_an_error_naming_the_path() {
        let err = resolve_with(Some("/nonexistent/sc-launcher".into())).unwrap_err();
        let msg = err.message();
        assert!(msg.contains("/nonexistent/sc-launcher"), "{msg}");
        assert!(msg.contains(ENV_VAR), "{msg}");
    }

    #[test]
    fn override_must_be_executable() {
        let file = std::env::temp_dir().join(format!("sc-not-exec-{}", std::process::id()));
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve_with(Some(file.clone().into())).unwrap_err();
        std::fs::remove_file(&file).unwrap();
        assert!(
            err.message().contains("not executable"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn override_that_exists_wins() {
        assert_eq!(
            resolve_with(Some("/bin/sh".into())).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
