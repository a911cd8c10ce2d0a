//! `SandboxFs`: file operations for OpenClaw's file tools under the same
//! rules as `exec` (see the core crate's `fsbridge`). Synchronous: each
//! operation is a handful of system calls on the caller's thread.

use napi::bindgen_prelude::{Buffer, Either, Unknown};
use napi::{Env, Result};
use napi_derive::napi;

use crate::error::{to_js, AddonError};
use sharkcage::fsbridge::{FsBridge, FsError};
use sharkcage::launcher::{plan::Plan, ExecRequest};
use sharkcage::policy::Policy;

fn fs_err(env: &Env, e: FsError) -> napi::Error {
    to_js(env, AddonError::Fs { kind: e.kind(), message: e.to_string() })
}

#[napi(object)]
pub struct SandboxFsOptions {
    /// The sandbox's writable workspace (as `--workspace`).
    pub workspace: Option<String>,
    /// Host paths the sandbox reads (as `--read-only`).
    pub read_only: Option<Vec<String>>,
}

#[napi(object)]
pub struct FsStat {
    /// "file" | "directory" | "other"
    #[napi(js_name = "type")]
    pub kind: String,
    pub size: f64,
    pub mtime_ms: f64,
}

#[napi(object)]
pub struct FsDirEntry {
    pub name: String,
    pub is_directory: bool,
}

/// File operations of one sandbox (policy + workspace).
#[napi]
pub struct SandboxFs {
    bridge: FsBridge,
}

fn data_bytes(d: Either<String, Buffer>) -> Vec<u8> {
    match d {
        Either::A(s) => s.into_bytes(),
        Either::B(b) => b.to_vec(),
    }
}

#[napi]
impl SandboxFs {
    /// Build the view for `policy` and a workspace, with the same planning
    /// `sc exec` does (mandatory secrets, denyRead/allowRead, writable roots).
    #[napi(constructor)]
    pub fn new(env: Env, #[napi(ts_arg_type = "object")] policy: Unknown<'_>, options: Option<SandboxFsOptions>) -> Result<Self> {
        let json = crate::policy_to_json(&env, Some(policy)).map_err(|e| to_js(&env, e))?;
        let pol = Policy::from_json(&json, "policy").map_err(|e| to_js(&env, AddonError::Policy(e.to_string())))?;
        let (workspace, read_only) = match options {
            Some(o) => (o.workspace.filter(|w| !w.is_empty()), o.read_only.unwrap_or_default()),
            None => (None, vec![]),
        };
        let req = ExecRequest {
            policy: pol,
            policy_source: "policy".into(),
            workspace: workspace.map(Into::into),
            expose_read_only: read_only.into_iter().filter(|p| !p.is_empty()).map(Into::into).collect(),
            argv: vec!["true".into()],
            ..Default::default()
        };
        let plan = Plan::build(&req, false, None).map_err(|e| to_js(&env, AddonError::from_launch(e)))?;
        Ok(SandboxFs { bridge: FsBridge::from_plan(&plan) })
    }

    #[napi]
    pub fn read_file(&self, env: Env, path: String, max_bytes: Option<f64>) -> Result<Buffer> {
        self.bridge.read_file(&path, max_bytes.map(|m| m as u64)).map(Buffer::from).map_err(|e| fs_err(&env, e))
    }

    #[napi]
    pub fn stat(&self, env: Env, path: String) -> Result<Option<FsStat>> {
        Ok(self
            .bridge
            .stat(&path)
            .map_err(|e| fs_err(&env, e))?
            .map(|s| FsStat { kind: s.kind.to_string(), size: s.size as f64, mtime_ms: s.mtime_ms }))
    }

    #[napi]
    pub fn read_directory(&self, env: Env, path: String) -> Result<Vec<FsDirEntry>> {
        Ok(self
            .bridge
            .read_dir(&path)
            .map_err(|e| fs_err(&env, e))?
            .into_iter()
            .map(|(name, is_directory)| FsDirEntry { name, is_directory })
            .collect())
    }

    #[napi]
    pub fn write_file(&self, env: Env, path: String, #[napi(ts_arg_type = "string | Buffer")] data: Either<String, Buffer>, mkdir: Option<bool>) -> Result<()> {
        self.bridge.write_file(&path, &data_bytes(data), mkdir.unwrap_or(false)).map_err(|e| fs_err(&env, e))
    }

    /// "created", or "exists" when something is already there.
    #[napi(ts_return_type = "'created' | 'exists'")]
    pub fn create_file_exclusive(&self, env: Env, path: String, #[napi(ts_arg_type = "string | Buffer")] data: Either<String, Buffer>, mkdir: Option<bool>) -> Result<String> {
        let created = self.bridge.create_file_exclusive(&path, &data_bytes(data), mkdir.unwrap_or(false)).map_err(|e| fs_err(&env, e))?;
        Ok(if created { "created" } else { "exists" }.to_string())
    }

    #[napi]
    pub fn mkdirp(&self, env: Env, path: String) -> Result<()> {
        self.bridge.mkdirp(&path).map_err(|e| fs_err(&env, e))
    }

    #[napi]
    pub fn remove(&self, env: Env, path: String, recursive: Option<bool>, force: Option<bool>) -> Result<()> {
        self.bridge.remove(&path, recursive.unwrap_or(false), force.unwrap_or(false)).map_err(|e| fs_err(&env, e))
    }

    #[napi]
    pub fn rename(&self, env: Env, from: String, to: String) -> Result<()> {
        self.bridge.rename(&from, &to).map_err(|e| fs_err(&env, e))
    }
}
