//! Errors of the addon, and the one place where they cross into JavaScript.
//!
//! Inside the addon every failure is an [`AddonError`]. JavaScript callers need
//! something they can branch on, so [`to_js`] turns it into a real JS `Error`
//! whose `code` property is a stable string (`ERR_SHARKCAGE_*`). napi's own
//! `napi::Error` would put a napi `Status` ("GenericFailure") into `code`, so
//! the JS object is built here, on the JS thread, and handed back to napi as
//! the error value to throw or to reject the promise with.

use napi::bindgen_prelude::{Buffer, JsObjectValue, Object};
use napi::{Env, JsError};

/// Stable `code` strings. Part of the public API: never rename one.
pub mod codes {
    pub const LAUNCHER_NOT_FOUND: &str = "ERR_SHARKCAGE_LAUNCHER_NOT_FOUND";
    pub const POLICY: &str = "ERR_SHARKCAGE_POLICY";
    pub const SPAWN: &str = "ERR_SHARKCAGE_SPAWN";
    pub const ABORTED: &str = "ERR_SHARKCAGE_ABORTED";
    pub const UNSUPPORTED_HOST: &str = "ERR_SHARKCAGE_UNSUPPORTED_HOST";
    pub const INVALID_ARG: &str = "ERR_SHARKCAGE_INVALID_ARG";
    pub const PROTOCOL: &str = "ERR_SHARKCAGE_LAUNCHER_PROTOCOL";
    pub const FS_NOT_READABLE: &str = "ERR_SHARKCAGE_FS_NOT_READABLE";
    pub const FS_NOT_WRITABLE: &str = "ERR_SHARKCAGE_FS_NOT_WRITABLE";
    pub const FS_PROTECTED: &str = "ERR_SHARKCAGE_FS_PROTECTED";
    pub const FS_ESCAPES: &str = "ERR_SHARKCAGE_FS_ESCAPES";
    pub const FS_NOT_FOUND: &str = "ENOENT";
    pub const FS_IO: &str = "ERR_SHARKCAGE_FS_IO";
    pub const AUDIT: &str = "ERR_SHARKCAGE_AUDIT";
    pub const RESOURCES: &str = "ERR_SHARKCAGE_RESOURCES";
}

/// Every way an addon call can fail.
#[derive(Debug)]
pub enum AddonError {
    /// No launcher binary; `tried` lists each path looked at, with why.
    LauncherNotFound { tried: Vec<String> },
    /// The launcher rejected the policy or its arguments (exit 2, no result).
    Policy(String),
    /// The host cannot run the sandbox (launcher exit 3, no result).
    UnsupportedHost(String),
    /// The launcher could not be started, or died without a result.
    Spawn(String),
    /// The launcher wrote a result that is not the documented JSON.
    Protocol(String),
    /// The caller's AbortSignal fired. Output gathered so far is kept.
    Aborted { stdout: Vec<u8>, stderr: Vec<u8> },
    /// A bad argument from the caller (empty argv, bad env name, ...).
    InvalidArg(String),
    /// A file operation refused or failed (`SandboxFs`); the code follows
    /// the kind, and a missing path is a plain `ENOENT`.
    Fs { kind: &'static str, message: String },
    /// The audit log cannot be written or read (names the file and why).
    Audit(String),
    /// The gateway ran out of something (descriptors, memory, processes):
    /// not the policy's fault and not a refusal; retry later.
    Resources(String),
}

impl AddonError {
    pub fn code(&self) -> &'static str {
        match self {
            AddonError::LauncherNotFound { .. } => codes::LAUNCHER_NOT_FOUND,
            AddonError::Policy(_) => codes::POLICY,
            AddonError::UnsupportedHost(_) => codes::UNSUPPORTED_HOST,
            AddonError::Spawn(_) => codes::SPAWN,
            AddonError::Protocol(_) => codes::PROTOCOL,
            AddonError::Aborted { .. } => codes::ABORTED,
            AddonError::InvalidArg(_) => codes::INVALID_ARG,
            AddonError::Audit(_) => codes::AUDIT,
            AddonError::Resources(_) => codes::RESOURCES,
            AddonError::Fs { kind, .. } => match *kind {
                "not-readable" => codes::FS_NOT_READABLE,
                "not-writable" => codes::FS_NOT_WRITABLE,
                "protected" => codes::FS_PROTECTED,
                "escapes" => codes::FS_ESCAPES,
                "not-found" => codes::FS_NOT_FOUND,
                _ => codes::FS_IO,
            },
        }
    }

    pub fn message(&self) -> String {
        match self {
            AddonError::LauncherNotFound { tried } => format!(
                "sharkcage launcher not found; looked at: {}",
                tried.join("; ")
            ),
            AddonError::Policy(m) => non_empty(m, "the launcher rejected the policy"),
            AddonError::UnsupportedHost(m) => {
                non_empty(m, "this host cannot run the sharkcage sandbox")
            }
            AddonError::Spawn(m) | AddonError::Protocol(m) | AddonError::InvalidArg(m) | AddonError::Audit(m) => m.clone(),
            AddonError::Resources(m) => format!("{m} (the gateway is out of resources; nothing was refused by the policy)"),
            AddonError::Fs { message, .. } => message.clone(),
            AddonError::Aborted { .. } => "the operation was aborted".to_owned(),
        }
    }
}

impl AddonError {
    /// An OS error while starting or preparing a sandbox: out of resources
    /// (descriptors, memory, processes) is its own kind, never a policy error.
    pub fn from_io(context: &str, e: &std::io::Error) -> AddonError {
        let msg = format!("{context}: {e}");
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN | libc::ENOSPC) => AddonError::Resources(msg),
            _ => AddonError::Spawn(msg),
        }
    }

    /// A planning error of the core crate (`Plan::build`).
    pub fn from_launch(e: sharkcage::launcher::LaunchError) -> AddonError {
        use sharkcage::launcher::LaunchError;
        match e {
            LaunchError::Policy(_) | LaunchError::Usage(_) => AddonError::Policy(e.to_string()),
            LaunchError::Unsupported(m) => AddonError::UnsupportedHost(m),
            LaunchError::Io(io) => AddonError::from_io("preparing the sandbox", &io),
            other => AddonError::Spawn(other.to_string()),
        }
    }
}

impl std::fmt::Display for AddonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

fn non_empty(text: &str, fallback: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        fallback.to_owned()
    } else {
        text.to_owned()
    }
}

/// Build the JS `Error` for `err` (with `code`, and for an abort the partial
/// `stdout`/`stderr` Buffers) and wrap it as the `napi::Error` napi throws or
/// rejects with. Must run on the JS thread that owns `env`.
pub fn to_js(env: &Env, err: AddonError) -> napi::Error {
    let code = err.code();
    let message = err.message();
    let js = JsError::from(napi::Error::new(code, message)).into_unknown(*env);
    if let AddonError::Aborted { stdout, stderr } = err {
        // SAFETY: `js` was just created by `napi_create_error`, so it is an object.
        if let Ok(mut obj) = unsafe { js.cast::<Object>() } {
            // Best effort: the error is still correct without these fields.
            let _ = obj.set_named_property("name", "AbortError");
            let _ = obj.set_named_property("stdout", Buffer::from(stdout));
            let _ = obj.set_named_property("stderr", Buffer::from(stderr));
        }
    }
    napi::Error::from(js)
}
