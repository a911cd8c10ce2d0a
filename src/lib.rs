//! `@sharkcage/openclaw` native addon: the JavaScript face of sharkcage.
//!
//! Deliberately thin. Sandboxing needs a fresh, single-threaded process, which
//! a Node process is not, so nothing here sandboxes in-process: every export
//! drives the `sharkcage-launcher` binary (the `sc` crate) and translates
//! between JS values and its command line / JSON result. This file only holds
//! the exported functions and their JS-facing types; the work is in
//! `exec.rs`, the launcher lookup in `launcher.rs`, and `error.rs` is the one
//! place errors become JS errors with a stable `code`.

mod audit;
mod error;
mod exec;
mod fs;
mod gate;
mod launcher;
mod net;
mod skills;

use std::collections::BTreeMap;
use std::sync::Arc;

use napi::bindgen_prelude::{
    Buffer, Either, FnArgs, Function, FunctionRef, JsObjectValue, Object, ObjectRef, PromiseRaw,
    Unknown,
};
use napi::{Env, JsValue, Result, ValueType};
use napi_derive::napi;

use sharkcage::callspec::{self, CallSpec};

use crate::error::{to_js, AddonError};
use crate::exec::{AbortState, ExecOutput, ExecRequest};

/// Where the launcher binary is: `$SHARKCAGE_LAUNCHER`, else
/// `sharkcage-launcher` next to the loaded `.node` file. Throws with code
/// `ERR_SHARKCAGE_LAUNCHER_NOT_FOUND` naming the paths it tried.
#[napi]
pub fn launcher_path(env: &Env) -> Result<String> {
    launcher::resolve()
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| to_js(env, e))
}

#[napi(object)]
pub struct BuildExecArgvOptions {
    /// Host directory made the sandbox's writable workspace (`--workspace`).
    pub workspace: Option<String>,
    /// Variables for the command (in the call's spec file, never on the
    /// argv; the launcher still withholds secret-looking names and values
    /// the policy does not name).
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Where the launcher writes its result JSON (`--json FILE`: exit
    /// status, layers, violations), for the caller to collect afterwards.
    pub result_file: Option<String>,
    /// Labels and scope for the call's network (see `exec`).
    pub network: Option<net::NetworkOptions>,
    /// Host paths the command reads (`--read-only`): visible read-only, also
    /// to a root caller's sandbox when a directory above them is private.
    pub read_only: Option<Vec<String>>,
    /// Where the command's writes under `$HOME` go (`--home-layer`): a
    /// private layer kept per workspace (`"workspace"`, the default), a
    /// layer of this name (OpenClaw: the sandbox scope), `"fresh"` (empty,
    /// for this call only) or `"none"` (the home is read-only).
    pub home_layer: Option<String>,
    /// Give the command a terminal for its stdin, stdout and stderr (as
    /// `sc exec --pty`; its output all arrives on stdout).
    pub pty: Option<bool>,
    /// Lines the launcher prints on the command's stderr as it starts (for
    /// the person and the model: a skill's grants applied, and so on).
    pub notices: Option<Vec<String>>,
    /// Names of `env` variables whose values are redacted from the
    /// command's output (credentials sharkcage injected).
    pub redact: Option<Vec<String>>,
}

/// `--read-only=PATH` for each non-empty path.
fn read_only_args(paths: Option<Vec<String>>) -> Vec<String> {
    paths.unwrap_or_default().into_iter().filter(|p| !p.is_empty()).map(|p| format!("--read-only={p}")).collect()
}

/// `--home-layer=VALUE`, checked here so a bad value fails at the call.
fn home_layer_arg(v: Option<String>) -> std::result::Result<Option<String>, AddonError> {
    match v {
        None => Ok(None),
        Some(v) => sharkcage::launcher::home_layer::Request::parse(&v).map(|_| Some(format!("--home-layer={v}"))).map_err(|m| AddonError::InvalidArg(m.replace("--home-layer", "homeLayer"))),
    }
}

/// The environment for a process that runs the launcher argv from
/// `buildExecArgv`: only what the launcher itself reads (home, locale,
/// PATH, OpenClaw/sharkcage state locations) — the same allowlist `exec`
/// uses. Everything else of this process's environment stays out.
#[napi]
pub fn launcher_env() -> std::collections::HashMap<String, String> {
    exec::launcher_context_env().into_iter().collect()
}

/// The argv that runs `argv` inside the sandbox, for a program that spawns
/// processes itself: `[launcher, "exec", "--spec-file=PATH",
/// ("--workspace=WS")?, "--", ...argv]`. Nothing secret is on it: the
/// policy, the environment values and the network ticket are in PATH, a
/// private file in sharkcage's state directory (0600, hidden from every
/// sandbox) that the launcher deletes as it starts. If the argv is never
/// spawned, `discardExecArgv(argv)` deletes it (and files left over ten
/// minutes are deleted by the next call).
#[napi]
pub fn build_exec_argv(
    env: &Env,
    #[napi(ts_arg_type = "object")] policy: Unknown<'_>,
    argv: Vec<String>,
    options: Option<BuildExecArgvOptions>,
) -> Result<Vec<String>> {
    let build = || -> std::result::Result<Vec<String>, AddonError> {
        exec::validate_argv(&argv)?;
        let launcher = launcher::resolve()?;
        let policy_json = policy_to_json(env, Some(policy))?;
        // Validate with the same parser the launcher uses, so a bad policy
        // fails here, with its position and key, not later at spawn time.
        let policy = sharkcage::policy::Policy::from_json(&policy_json, "policy").map_err(|e| AddonError::Policy(e.to_string()))?;
        let (workspace, env_vars, result_file, network, read_only, home_layer, pty, notices, redact) = match options {
            Some(o) => (o.workspace.filter(|w| !w.is_empty()), o.env.unwrap_or_default(), o.result_file.filter(|f| !f.is_empty()), o.network, o.read_only, o.home_layer, o.pty.unwrap_or(false), o.notices.unwrap_or_default(), o.redact.unwrap_or_default()),
            None => (None, Default::default(), None, None, None, None, false, vec![], vec![]),
        };
        let env_pairs: Vec<(String, String)> = env_vars.into_iter().collect();
        exec::validate_env(&env_pairs)?;
        let attach = net::attach(&policy, network.as_ref())?;
        let mut extra: Vec<String> = attach.iter().map(net::Attach::arg).collect();
        extra.extend(read_only_args(read_only));
        extra.extend(home_layer_arg(home_layer)?);
        let spec = CallSpec { policy_json: Some(policy_json), env: env_pairs, net_ticket: attach.map(|a| a.ticket), pty, notices, redact };
        let dir = callspec::spec_dir().ok_or_else(|| AddonError::Spawn("no state directory for the call's spec (HOME is not set)".into()))?;
        let spec_file = callspec::write_file(&dir, &spec).map_err(|e| AddonError::Spawn(format!("cannot write the call's spec: {e}")))?;
        let mut out = vec![launcher.to_string_lossy().into_owned()];
        out.extend(exec::exec_args(
            &format!("--spec-file={}", spec_file.display()),
            workspace.as_deref(),
            None,
            None,
            &extra,
            &argv,
        ));
        if let Some(f) = result_file {
            // Before the `--` that ends the launcher's options.
            let at = out.iter().position(|a| a == "--").unwrap_or(out.len());
            out.insert(at, format!("--json={f}"));
        }
        Ok(out)
    };
    build().map_err(|e| to_js(env, e))
}

/// Delete the spec file of an argv from `buildExecArgv` that was never
/// spawned (a spawned launcher deleted it already). Returns whether there
/// was one to delete. Only a spec file in sharkcage's own state directory
/// is ever touched.
#[napi]
pub fn discard_exec_argv(env: &Env, argv: Vec<String>) -> Result<bool> {
    let discard = || -> std::result::Result<bool, AddonError> {
        let Some(path) = callspec::spec_file_of(&argv) else { return Ok(false) };
        let dir = callspec::spec_dir().ok_or_else(|| AddonError::InvalidArg("no state directory (HOME is not set)".into()))?;
        let path = std::path::Path::new(path);
        let existed = path.exists();
        callspec::discard(&dir, path).map_err(|e| AddonError::InvalidArg(format!("discardExecArgv: {e}")))?;
        Ok(existed)
    };
    discard().map_err(|e| to_js(env, e))
}

#[napi(object, object_to_js = false)]
pub struct ExecOptions<'env> {
    /// The command; a string runs as `["/bin/sh", "-c", command]`.
    #[napi(ts_type = "string[] | string")]
    pub command: Either<Vec<String>, String>,
    /// Host directory made the sandbox's writable workspace (`--workspace`).
    pub cwd: Option<String>,
    /// Environment of the sandboxed command (handed to the launcher off its
    /// command line). The caller's own environment is never passed through.
    pub env: Option<BTreeMap<String, String>>,
    /// Written to the command's stdin, which is then closed.
    #[napi(ts_type = "string | Buffer")]
    pub stdin: Option<Either<String, Buffer>>,
    /// The sandbox policy; default `{}`.
    #[napi(ts_type = "object")]
    pub policy: Option<Unknown<'env>>,
    /// Wall-clock limit, enforced by the launcher (`--timeout-ms`).
    pub timeout_ms: Option<f64>,
    /// Aborting kills the sandbox; the promise rejects with `ERR_SHARKCAGE_ABORTED`.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'env>>,
    /// Who the call works for (in every network event) and the scope whose
    /// `setNetworkPolicy` rules apply to it. With allowed domains or a
    /// scope, the call's network is served by this process's proxy.
    pub network: Option<net::NetworkOptions>,
    /// Host paths the command reads (`--read-only`): visible read-only, also
    /// to a root caller's sandbox when a directory above them is private.
    pub read_only: Option<Vec<String>>,
    /// Where the command's writes under `$HOME` go (`--home-layer`): a
    /// private layer kept per workspace (`"workspace"`, the default), a
    /// layer of this name (OpenClaw: the sandbox scope), `"fresh"` (empty,
    /// for this call only) or `"none"` (the home is read-only).
    pub home_layer: Option<String>,
    /// Give the command a terminal for its stdin, stdout and stderr (as
    /// `sc exec --pty`; its output all arrives in `stdout`).
    pub pty: Option<bool>,
    /// Names of `env` variables whose values are redacted from the output.
    pub redact: Option<Vec<String>>,
}

#[napi(object, use_nullable = true)]
pub struct ExecResult {
    /// Exit code of the command, or null if it was killed by a signal.
    pub exit_code: Option<i32>,
    /// Name of the signal that killed the command (`"SIGKILL"`), or null.
    pub signal: Option<String>,
    pub timed_out: bool,
    /// Output was cut at the policy's limit.
    pub truncated: bool,
    pub duration_ms: f64,
    pub stdout: Buffer,
    pub stderr: Buffer,
    /// Which sandbox layers were applied, as reported by the launcher.
    #[napi(ts_type = "Record<string, unknown>")]
    pub layers: serde_json::Value,
    /// Policy violations the launcher observed.
    #[napi(ts_type = "Array<Record<string, unknown>>")]
    pub violations: Vec<serde_json::Value>,
    /// The call's network: `mode` ("none" | "proxy"), `servedBy`, and
    /// `events` (every proxy decision: host, port, ip, bytes, reason).
    #[napi(ts_type = "Record<string, unknown>")]
    pub network: serde_json::Value,
}

/// Run a command in the sandbox. Resolves when it has finished, whatever its
/// exit status; rejects only when it could not be run (`err.code` is one of
/// the `ERR_SHARKCAGE_*` codes) or when `signal` aborts it.
#[napi]
pub fn exec<'env>(
    env: &'env Env,
    options: ExecOptions<'env>,
) -> Result<PromiseRaw<'env, ExecResult>> {
    let prepared = prepare_exec(env, options);
    let (req, signal, abort) = match prepared {
        Ok(p) => p,
        // Reject (not throw): callers only have to handle one failure path.
        Err(e) => return reject(env, e),
    };

    let mut listener = None;
    if let Some(signal) = signal {
        let not_a_signal = |e: napi::Error| {
            AddonError::InvalidArg(format!("`signal` is not an AbortSignal: {}", e.reason))
        };
        match signal.get_named_property::<Option<bool>>("aborted") {
            Ok(Some(true)) => {
                return reject(
                    env,
                    AddonError::Aborted {
                        stdout: Vec::new(),
                        stderr: Vec::new(),
                    },
                )
            }
            Ok(_) => {}
            Err(e) => return reject(env, not_a_signal(e)),
        }
        match AbortListener::attach(env, &signal, abort.clone()) {
            Ok(l) => listener = Some(l),
            Err(e) => return reject(env, not_a_signal(e)),
        }
    }

    env.spawn_future_with_callback(
        async move { Ok(exec::run(req, Some(abort)).await) },
        move |env, outcome| {
            if let Some(listener) = listener {
                listener.detach(env);
            }
            match outcome {
                Ok(output) => Ok(into_js_result(output)),
                Err(e) => Err(to_js(env, e)),
            }
        },
    )
}

/// Run `launcher doctor --json` and resolve with the parsed report.
#[napi(ts_return_type = "Promise<Record<string, unknown>>")]
pub fn doctor(env: &Env) -> Result<PromiseRaw<'_, serde_json::Value>> {
    let launcher = launcher::resolve();
    env.spawn_future_with_callback(
        async move {
            Ok(match launcher {
                Ok(launcher) => exec::doctor(launcher).await,
                Err(e) => Err(e),
            })
        },
        |env, outcome| outcome.map_err(|e| to_js(env, e)),
    )
}

/// A promise already rejected with `err`.
fn reject<T: napi::bindgen_prelude::ToNapiValue + 'static>(
    env: &Env,
    err: AddonError,
) -> Result<PromiseRaw<'_, T>> {
    env.spawn_future_with_callback(async move { Ok(err) }, |env, err| {
        Err::<T, _>(to_js(env, err))
    })
}

type Prepared<'env> = (ExecRequest, Option<Object<'env>>, Arc<AbortState>);

fn prepare_exec<'env>(
    env: &Env,
    options: ExecOptions<'env>,
) -> std::result::Result<Prepared<'env>, AddonError> {
    let argv = match options.command {
        Either::A(argv) => argv,
        Either::B(script) => vec!["/bin/sh".to_owned(), "-c".to_owned(), script],
    };
    exec::validate_argv(&argv)?;
    let child_env: Vec<(String, String)> = options.env.unwrap_or_default().into_iter().collect();
    exec::validate_env(&child_env)?;
    let timeout_ms = match options.timeout_ms {
        None => None,
        Some(ms) if ms.is_finite() && ms >= 0.0 => Some(ms.ceil() as u64),
        Some(ms) => {
            return Err(AddonError::InvalidArg(format!(
                "timeoutMs must be a finite, non-negative number, got {ms}"
            )))
        }
    };
    let policy_json = policy_to_json(env, options.policy)?;
    let stdin = options.stdin.map(|s| match s {
        Either::A(text) => text.into_bytes(),
        Either::B(buf) => buf.to_vec(),
    });
    // Parsed here only for the network rules; the launcher parses it again
    // itself (it trusts nothing from this process but its argv and spec).
    let parsed = sharkcage::policy::Policy::from_json(&policy_json, "policy").map_err(|e| AddonError::Policy(e.to_string()))?;
    let attach = net::attach(&parsed, options.network.as_ref())?;
    let mut extra_args: Vec<String> = attach.iter().map(net::Attach::arg).collect();
    extra_args.extend(read_only_args(options.read_only));
    extra_args.extend(home_layer_arg(options.home_layer)?);
    let req = ExecRequest {
        launcher: launcher::resolve()?,
        extra_args,
        argv,
        workspace: options.cwd.filter(|c| !c.is_empty()),
        spec: CallSpec { policy_json: Some(policy_json), env: child_env, net_ticket: attach.map(|a| a.ticket), pty: options.pty.unwrap_or(false), notices: vec![], redact: options.redact.clone().unwrap_or_default() },
        stdin,
        timeout_ms,
    };
    Ok((req, options.signal, Arc::new(AbortState::default())))
}

/// `JSON.stringify(policy)`, done by JavaScript itself so that key order,
/// `toJSON` and friends are exactly what the caller would get. `None`,
/// `undefined` and `null` mean the default policy `{}`.
fn policy_to_json(
    env: &Env,
    policy: Option<Unknown<'_>>,
) -> std::result::Result<String, AddonError> {
    js_to_json(env, policy, "the policy")
}

/// `JSON.stringify(value)` of a plain object (`None`/null/undefined → `{}`);
/// `what` names the value in errors.
fn js_to_json(
    env: &Env,
    policy: Option<Unknown<'_>>,
    what_is: &str,
) -> std::result::Result<String, AddonError> {
    let invalid = |what: String| AddonError::InvalidArg(format!("{what_is} {what}"));
    let Some(policy) = policy else {
        return Ok("{}".to_owned());
    };
    let ty = policy.get_type().map_err(|e| invalid(e.reason))?;
    match ty {
        ValueType::Undefined | ValueType::Null => return Ok("{}".to_owned()),
        ValueType::Object if !policy.is_array().unwrap_or(false) => {}
        _ => return Err(invalid("must be a plain object".to_owned())),
    }
    let stringify = || -> Result<Option<String>> {
        let json: Object<'_> = env.get_global()?.get_named_property("JSON")?;
        let stringify: Function<'_, Unknown<'_>, Option<String>> =
            json.get_named_property("stringify")?;
        stringify.apply(json, policy)
    };
    match stringify() {
        Ok(Some(text)) => Ok(text),
        Ok(None) => Err(invalid("is not JSON-serialisable".to_owned())),
        Err(e) => Err(invalid(format!("is not JSON-serialisable: {}", e.reason))),
    }
}

fn into_js_result(output: ExecOutput) -> ExecResult {
    let r = output.report;
    ExecResult {
        exit_code: r.exit_code,
        signal: r.signal,
        timed_out: r.timed_out,
        truncated: r.truncated,
        duration_ms: r.duration_ms.unwrap_or(output.duration_ms),
        stdout: output.stdout.into(),
        stderr: output.stderr.into(),
        layers: r
            .layers
            .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
        violations: r.violations.unwrap_or_default(),
        network: r.network.unwrap_or_else(|| serde_json::json!({"mode": "none", "events": []})),
    }
}

/// Append a record to the audit log (`{kind, session, agent, run, skill,
/// tool, toolCall, decision, reason, params, exitCode, durationMs, host,
/// port, ip, path, detail}`; unknown keys are errors). Parameters are
/// redacted and every string capped (256 bytes for names, 1 KiB for text,
/// plus the digest of the whole) before writing. Resolves with the record's
/// seq once it is durable — for a refusal counted in a summary instead
/// (repeats, or over its session's budget), the seq of the log's head;
/// rejects with `ERR_SHARKCAGE_AUDIT` if the log cannot be written.
#[napi(ts_return_type = "Promise<number>")]
pub fn audit_append<'env>(env: &'env Env, #[napi(ts_arg_type = "Record<string, unknown>")] record: Unknown<'env>) -> Result<PromiseRaw<'env, f64>> {
    let prepared = (|| -> std::result::Result<_, AddonError> {
        let json = js_to_json(env, Some(record), "the audit record")?;
        let r = audit::parse_input(&json)?;
        Ok((audit::audit()?, r))
    })();
    let (a, r) = match prepared {
        Ok(v) => v,
        Err(e) => return reject(env, e),
    };
    env.spawn_future_with_callback(
        async move { Ok(a.append(r).await.map(|s| s as f64).map_err(|e| AddonError::Audit(e.to_string()))) },
        |env, r| r.map_err(|e| to_js(env, e)),
    )
}

/// Write everything queued for the audit log, sign a final checkpoint and
/// stop the writer (call at process exit; blocks until durable).
#[napi]
pub fn audit_close(env: &Env) -> Result<()> {
    audit::close().map_err(|e| to_js(env, e))
}

#[napi(object)]
pub struct AuditVerifyOptions {
    /// An exported checkpoint file (`sc audit checkpoint --export`).
    pub checkpoint: Option<String>,
}

/// Verify the audit log: `{ok, records, firstSeq, lastSeq, head, damage:
/// {kind, seq, segment, detail} | null, …}`.
#[napi(ts_return_type = "Promise<Record<string, unknown>>")]
pub fn audit_verify(env: &Env, options: Option<AuditVerifyOptions>) -> Result<PromiseRaw<'_, serde_json::Value>> {
    let cp = options.and_then(|o| o.checkpoint);
    env.spawn_future_with_callback(
        async move {
            Ok(tokio::task::spawn_blocking(move || -> std::result::Result<serde_json::Value, AddonError> {
                let dir = audit::read_dir()?;
                let exported = match &cp {
                    Some(p) => {
                        let text = std::fs::read_to_string(p).map_err(|e| AddonError::Audit(format!("{p}: {e}")))?;
                        let c: sharkcage::audit::Checkpoint = serde_json::from_str(text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(""))
                            .map_err(|e| AddonError::Audit(format!("{p}: not a sharkcage checkpoint: {e}")))?;
                        Some((c, std::path::PathBuf::from(p)))
                    }
                    None => None,
                };
                let rep = sharkcage::audit::verify::verify(&dir, exported.as_ref().map(|(c, p)| (c, p.clone()))).map_err(|e| AddonError::Audit(e.to_string()))?;
                Ok(serde_json::to_value(rep).unwrap_or_default())
            })
            .await
            .unwrap_or_else(|e| Err(AddonError::Audit(e.to_string()))))
        },
        |env, r| r.map_err(|e| to_js(env, e)),
    )
}

/// Records of the audit log matching `filter` (`{tail, skill, tool, session,
/// kind, blocked, since, until}`), oldest first.
#[napi(ts_return_type = "Promise<Array<Record<string, unknown>>>")]
pub fn audit_query<'env>(env: &'env Env, #[napi(ts_arg_type = "Record<string, unknown>")] filter: Option<Unknown<'env>>) -> Result<PromiseRaw<'env, serde_json::Value>> {
    let f = (|| -> std::result::Result<sharkcage::audit::query::Filter, AddonError> {
        let json = js_to_json(env, filter, "the audit filter")?;
        let de = &mut serde_json::Deserializer::from_str(&json);
        serde_path_to_error::deserialize(de).map_err(|e| AddonError::InvalidArg(format!("audit filter: {}: {}", e.path(), e.inner())))
    })();
    let f = match f {
        Ok(f) => f,
        Err(e) => return reject(env, e),
    };
    env.spawn_future_with_callback(
        async move {
            Ok(tokio::task::spawn_blocking(move || -> std::result::Result<serde_json::Value, AddonError> {
                let recs = sharkcage::audit::query::query(&audit::read_dir()?, &f).map_err(|e| AddonError::Audit(e.to_string()))?;
                Ok(serde_json::to_value(recs).unwrap_or_default())
            })
            .await
            .unwrap_or_else(|e| Err(AddonError::Audit(e.to_string()))))
        },
        |env, r| r.map_err(|e| to_js(env, e)),
    )
}

/// Replace the network rules of `scope` (`{allowedDomains, deniedDomains,
/// deniedDomainReasons}`, checked like a policy's `network`). Every sandbox
/// started with `network.scope === scope` uses them for its next
/// connection, including sandboxes already running; nothing restarts.
#[napi]
pub fn set_network_policy(env: &Env, scope: String, #[napi(ts_arg_type = "object")] rules: Unknown<'_>) -> Result<()> {
    let set = || -> std::result::Result<(), AddonError> {
        let json = policy_to_json(env, Some(rules))?;
        net::set_scope(&scope, &json)
    };
    set().map_err(|e| to_js(env, e))
}

/// The listener: `() => abortState.abort()`, made from a Rust closure.
type ListenerFn<'env> = Function<'env, Unknown<'static>, ()>;
/// `signal.addEventListener('abort', listener, { once: true })`.
type AddListenerFn<'env> =
    Function<'env, FnArgs<(&'static str, ListenerFn<'env>, Object<'env>)>, Unknown<'env>>;
/// `signal.removeEventListener('abort', listener)`.
type RemoveListenerFn<'env> =
    Function<'env, FnArgs<(&'static str, ListenerFn<'env>)>, Unknown<'env>>;

/// The 'abort' listener one `exec` call puts on its AbortSignal, created from
/// a Rust closure. Removed again when the call settles, so a long-lived signal
/// shared by many calls does not collect listeners.
struct AbortListener {
    signal: ObjectRef<false>,
    listener: FunctionRef<Unknown<'static>, ()>,
}

impl AbortListener {
    fn attach(env: &Env, signal: &Object<'_>, abort: Arc<AbortState>) -> Result<Self> {
        let listener: ListenerFn<'_> =
            env.create_function_from_closure("sharkcageAbort", move |_ctx| {
                abort.abort();
                Ok(())
            })?;
        let add: AddListenerFn<'_> = signal.get_named_property("addEventListener")?;
        let mut opts = Object::new(env)?;
        opts.set_named_property("once", true)?;
        add.apply(signal, FnArgs::from(("abort", listener, opts)))?;
        Ok(Self {
            signal: signal.create_ref()?,
            listener: listener.create_ref()?,
        })
    }

    /// Remove the listener and drop the references. Runs on the JS thread.
    fn detach(self, env: &Env) {
        let remove = || -> Result<()> {
            let signal = self.signal.get_value(env)?;
            let listener = self.listener.borrow_back(env)?;
            let remove: RemoveListenerFn<'_> = signal.get_named_property("removeEventListener")?;
            remove.apply(signal, FnArgs::from(("abort", listener)))?;
            Ok(())
        };
        // Failing to remove it only leaves a listener that would set a flag
        // nobody reads; never worth failing the call for.
        let _ = remove();
        let _ = self.signal.unref(env);
    }
}
