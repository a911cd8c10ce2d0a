//! From a policy to a [`Plan`]: everything the child needs, computed,
//! opened, compiled and allocated *before* the fork.
//!
//! The child and the worker only walk prepared vectors of C strings and make
//! system calls. This is what keeps the after-fork code small and free of
//! allocation (see `child.rs`).

use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use seccompiler::BpfProgram;

use super::{protected, ExecRequest, LaunchError, Violation};
use crate::layers::landlock::{LandlockInputs, LandlockPlan};
use crate::layers::limits::{Effective, HostFacts, Rlimits};
use crate::layers::quotas::Quotas;
use crate::layers::mounts::{MountInputs, MountPlan, PathOp};
use crate::layers::userns::IdMap;
use crate::layers::{caps, seccomp};
use crate::gitstate::Role;
use crate::policy::{env, paths, PolicyError};

/// Everything the after-fork code uses.
pub struct Plan {
    pub idmap: IdMap,
    pub mounts: MountPlan,
    pub landlock: LandlockPlan,
    pub seccomp: BpfProgram,
    /// Unix sockets the broker connects to (empty: no broker, no AF_UNIX).
    pub allow_unix: Vec<super::unix_target::UnixTarget>,
    /// The proxy for this call (None: no network at all).
    pub net: Option<NetPlan>,
    pub rlimits: Rlimits,
    /// Per-user kernel quotas PID 1 sets in the sandbox's user namespace.
    pub quotas: Quotas,
    pub last_cap: u32,
    pub hostname: CString,
    /// Candidate executable paths, tried in order (PATH search done here).
    pub exec_candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const libc::c_char>,
    pub envp: Vec<CString>,
    pub envp_ptrs: Vec<*const libc::c_char>,
    /// Reporting.
    pub cwd: PathBuf,
    pub writable: Vec<PathBuf>,
    pub hidden: Vec<PathBuf>,
    /// The read-deny rules themselves (see [`DenyRules`]).
    pub deny_rules: DenyRules,
    /// Paths re-opened inside hidden regions (allowRead).
    pub allow_read: Vec<PathBuf>,
    pub protected: Vec<PathBuf>,
    /// Protected entries as they were before the call (no symlink followed).
    pub protected_before: Vec<protected::Entry>,
    /// For the after-call check: protected paths that did not exist, names
    /// of hooks directories, and the scan to compare against.
    pub must_not_appear: Vec<(PathBuf, Role)>,
    pub hook_names: Vec<Vec<u8>>,
    /// Repository configs left writable (`allowGitConfig`) and a digest of
    /// their content before the call: one changed in place is judged.
    pub writable_configs: Vec<(PathBuf, Option<[u8; 32]>)>,
    /// Home directories for the scans (see `protected::homes`).
    pub homes: Vec<PathBuf>,
    pub protected_trees: Vec<protected::Tree>,
    /// The scan read directories (the kept cache is out of date).
    pub protected_dirty: bool,
    pub violations: Vec<Violation>,
    pub timeout_ms: u64,
    pub max_output_bytes: u64,
    /// The policy's limits as they apply on this host.
    pub limits: Effective,
    /// The private home layer in use (its key and directory), if any.
    pub home_layer: Option<(String, PathBuf)>,
}

/// The network part of a call: the sandbox gets the proxy's listeners on
/// its loopback, served by the launcher (`embedded`) or the gateway.
#[derive(Debug, Clone)]
pub struct NetPlan {
    pub rules: crate::proxy::rules::NetRules,
    /// The gateway's attach socket and this call's ticket.
    pub attach: Option<(PathBuf, String)>,
    /// The embedded proxy's resolver, with `--net-resolve`'s fixed answers.
    pub resolve: crate::proxy::resolve::SystemResolver,
    /// The domain entries, as reported.
    pub allowed: Vec<String>,
    /// An `host:22` entry is allowed (`GIT_SSH_COMMAND` is set).
    pub ssh: bool,
}

fn policy_err(req: &ExecRequest, key: &str, message: String) -> LaunchError {
    LaunchError::Policy(PolicyError::Resolve { source_name: req.policy_source.clone(), key: key.to_string(), message })
}

fn under_kernel_fs(p: &Path) -> bool {
    p.starts_with("/proc") || p.starts_with("/sys") || p.starts_with("/dev")
}

/// The read-deny rules as written (resolved, existing or not), for views
/// that last longer than one call (the file bridge).
#[derive(Debug, Clone, Default)]
pub struct DenyRules {
    pub paths: Vec<PathBuf>,
    pub globs: Vec<glob::Pattern>,
}

impl DenyRules {
    /// `p` or a directory above it is denied.
    pub fn denies(&self, p: &Path) -> bool {
        self.paths.iter().any(|d| p.starts_with(d)) || p.ancestors().any(|a| self.globs.iter().any(|g| g.matches_path(a)))
    }
}

/// What every phase of [`Plan::build`] reads: the request, the caller's
/// homes and the mandatory read-denies (which no policy can lift).
struct Ctx<'a> {
    req: &'a ExecRequest,
    homes: Vec<PathBuf>,
    home: Option<PathBuf>,
    mandatory: Vec<PathBuf>,
    /// Mandatory read-denies that did not exist when they were listed.
    mandatory_missing: std::collections::HashSet<PathBuf>,
    /// Create a writable root that does not exist yet (the real plan); a
    /// look at the roots before it (`writable_roots`) skips such a path.
    create_missing: bool,
}

/// Protected paths inside the writable roots, as found before the call.
struct Protected {
    /// Read-only binds (existing protected entries, symlink targets, `denyWrite`).
    paths: Vec<PathBuf>,
    /// Entries as they were (no symlink followed), for the after-call check.
    before: Vec<protected::Entry>,
    /// Paths that must not appear or are judged if they do (missing
    /// secrets, missing `denyWrite`, hooks directories and programs named
    /// by existing configs).
    must_not_appear: Vec<(PathBuf, Role)>,
    hook_names: Vec<Vec<u8>>,
    writable_configs: Vec<(PathBuf, Option<[u8; 32]>)>,
    homes: Vec<PathBuf>,
    trees: Vec<protected::Tree>,
    dirty: bool,
}

impl Plan {
    /// `allow_shift`: a root caller runs on an unprivileged host uid with
    /// idmapped mounts (see `layers::userns`); false for the retry when the
    /// host cannot make idmapped mounts.
    ///
    /// Phases, in order (each uses only what the ones before produced):
    /// network → hidden paths → allowRead → writable roots → working
    /// directory → protected paths → mount operations (with the root
    /// caller's shift) → Landlock → unix sockets and seccomp → command.
    /// `layer`: the call's private home layer (`home_layer::prepare`), used
    /// when the home may have one (see [`Ctx::home_layer_use`]).
    pub fn build(req: &ExecRequest, allow_shift: bool, layer: Option<&super::home_layer::Layer>) -> Result<Plan, LaunchError> {
        let pol = &req.policy;
        let net = network_plan(req)?;
        // With an ssh destination allowed, `GIT_SSH_COMMAND` runs this
        // launcher's `__connect` as ssh's ProxyCommand: it must be visible.
        let ssh_helper: Option<PathBuf> = net.as_ref().filter(|n| n.ssh).and_then(|_| std::env::current_exe().ok());
        let homes = paths::home_dirs();
        let home = homes.first().cloned();
        let (mandatory, mandatory_missing) = mandatory_denies(&homes);
        let cx = Ctx { req, homes, home, mandatory, mandatory_missing, create_missing: true };
        let mut violations = Vec::new();

        let (hidden, deny_rules) = cx.hidden_paths()?;
        let allow_read = cx.allow_read_paths(&hidden, ssh_helper.as_ref())?;
        let workspace = cx.workspace_root()?;
        let writable = cx.writable_roots(workspace.as_ref(), &mut violations)?;
        let cwd = working_dir(workspace.as_ref(), &hidden, &mut violations);
        let prot = cx.protected_paths(&writable, &hidden, &mut violations)?;

        // A root caller is shifted onto an unused host uid; the places it
        // works in reach it through idmapped mounts (layers::userns).
        // SAFETY: geteuid cannot fail.
        let shift = (allow_shift && unsafe { libc::geteuid() } == 0 && std::env::var_os("SHARKCAGE_NO_UID_SHIFT").is_none())
            .then(|| crate::layers::userns::SHIFT_BASE + std::process::id() % 1_000_000);
        let mut ops = mount_ops(&writable, &hidden, &allow_read, &prot.paths);
        if shift.is_some() {
            ops.extend(cx.shift_exposures(&writable, &hidden, &allow_read, &cwd));
        }
        let layer = layer.and_then(|l| cx.home_layer_use(l, &writable, &hidden, &mut violations));
        // Credential-free copies of the caller's tool configs (npm, pip, Docker…).
        let mut copies = super::config_copies::copies(&cx.home.iter().cloned().collect::<Vec<_>>(), |p| hidden.iter().any(|h| p.starts_with(h)));
        // Never inside something hidden for another reason (a denyRead of
        // the whole home): only the configs' own mandatory hiding is lifted.
        copies.retain(|c| !hidden.iter().any(|h| c.path.starts_with(h) && !cx.in_mandatory_list(h)));
        ops.extend(copies.iter().map(|c| PathOp::Content(c.path.clone())));
        let contents: Vec<(PathBuf, Vec<u8>)> = copies.into_iter().map(|c| (c.path, c.data)).collect();
        let mut home_mask = Vec::new();
        let layer = match (layer, cx.home.as_ref()) {
            (Some(l), Some(home)) => {
                let masked: Vec<&PathBuf> = cx.mandatory.iter().chain(&deny_rules.paths).collect();
                // Known for the mandatory ones; looked up for the policy's own.
                let mandatory: std::collections::HashSet<&Path> = cx.mandatory.iter().map(PathBuf::as_path).collect();
                let missing = |p: &Path| if mandatory.contains(p) { cx.mandatory_missing.contains(p) } else { p.symlink_metadata().is_err() };
                with_home_layer(&mut ops, home, l, &masked, &missing, &writable, &mut violations).map(|m| {
                    home_mask = m;
                    l
                })
            }
            _ => None,
        };
        let mounts = MountPlan::build(&MountInputs {
            ops: &ops,
            cwd: &cwd,
            tmpfs_bytes: pol.limits.tmpfs_bytes,
            idmapped: shift.is_some(),
            contents: &contents,
            home_layer: layer.map(|l| l.dir.as_path()),
            home_mask: &home_mask,
        });
        let exposed: Vec<PathBuf> = ops.iter().filter(|o| matches!(o, PathOp::ExposeRo(_))).map(|o| o.path().to_path_buf()).filter(|p| Some(p) != cx.home.as_ref()).collect();
        // Read-denies that do not exist yet count too: their parents' other
        // entries are granted one by one, so one created later gets nothing.
        // (Those in the caller's homes and the policy's own: other accounts'
        // homes are closed to the sandbox by their modes, and listing every
        // system account's home directory costs milliseconds.)
        let mut denied = hidden.clone();
        let mandatory: std::collections::HashSet<&Path> = cx.mandatory.iter().map(PathBuf::as_path).collect();
        let own = |p: &Path| !mandatory.contains(p) || cx.homes.iter().any(|h| p.starts_with(h));
        denied.extend(deny_rules.paths.iter().filter(|p| own(p) && (cx.mandatory_missing.contains(*p) || p.symlink_metadata().is_err())).cloned());
        let landlock = landlock_plan(&denied, &allow_read, &exposed, &writable, &mounts, pol, net.is_some())?;

        let allow_unix = cx.unix_socket_targets(&writable)?;
        let seccomp = seccomp::build(seccomp::FilterOptions { unix_broker: !allow_unix.is_empty(), exec_only: pol.filesystem.exec_only.is_some() }).map_err(|e| setup_error(&e))?;
        let cmd = cx.command(&cwd, net.as_ref(), ssh_helper.as_ref(), &mut violations)?;
        let timeout_ms = req.timeout_ms.unwrap_or(pol.limits.timeout_ms);
        let limits = Effective::resolve(&pol.limits, timeout_ms, &HostFacts::read());
        violations.extend(limits.notes.iter().map(|n| Violation::note("limits", n.clone())));

        Ok(Plan {
            idmap: IdMap::for_caller(shift),
            mounts,
            landlock,
            seccomp,
            allow_unix,
            net,
            rlimits: Rlimits::new(&limits),
            quotas: Quotas::prepare(),
            last_cap: caps::last_cap(),
            hostname: CString::new("sharkcage").unwrap(),
            exec_candidates: cmd.exec_candidates,
            argv: cmd.argv,
            argv_ptrs: cmd.argv_ptrs,
            envp: cmd.envp,
            envp_ptrs: cmd.envp_ptrs,
            cwd,
            writable,
            hidden,
            deny_rules,
            allow_read,
            protected: prot.paths,
            protected_before: prot.before,
            must_not_appear: prot.must_not_appear,
            hook_names: prot.hook_names,
            writable_configs: prot.writable_configs,
            homes: prot.homes,
            protected_trees: prot.trees,
            protected_dirty: prot.dirty,
            violations,
            timeout_ms,
            max_output_bytes: pol.limits.max_output_bytes,
            limits,
            home_layer: layer.map(|l| (l.key.clone(), l.dir.clone())),
        })
    }
}

/// The writable roots a call with `req` gets (as [`Plan::build`] computes
/// them), for paths the launcher resolves before the call without trusting
/// a symlink inside them (`paths::resolve_trusting`).
pub fn writable_roots(req: &ExecRequest) -> Result<Vec<PathBuf>, LaunchError> {
    let homes = paths::home_dirs();
    let (mandatory, mandatory_missing) = mandatory_denies(&homes);
    let cx = Ctx { req, home: homes.first().cloned(), mandatory, mandatory_missing, homes, create_missing: false };
    let workspace = cx.workspace_root()?;
    cx.writable_roots(workspace.as_ref(), &mut Vec::new())
}

/// The call's network: the proxy's rules (policy plus `--allow-domain`).
fn network_plan(req: &ExecRequest) -> Result<Option<NetPlan>, LaunchError> {
    let pol = &req.policy;
    let mut allowed_domains = pol.network.allowed_domains.clone();
    for (i, d) in req.extra_allow_domains.iter().enumerate() {
        crate::proxy::rules::Pattern::parse(d, false).map_err(|m| policy_err(req, &format!("--allow-domain[{i}]"), m))?;
        allowed_domains.push(d.clone());
    }
    let rules = crate::proxy::rules::NetRules::compile(&allowed_domains, &pol.network.denied_domains, &pol.network.denied_domain_reasons)
        .map_err(|m| policy_err(req, "network", m))?;
    let resolve = crate::proxy::resolve::SystemResolver::with_fixed(&req.net_resolve).map_err(LaunchError::Usage)?;
    Ok((!rules.is_empty() || req.net_attach.is_some())
        .then(|| NetPlan { ssh: rules.allows_ssh(), rules, attach: req.net_attach.clone(), resolve, allowed: allowed_domains }))
}

/// A writable root that does not exist yet is made when its parent is a
/// directory the caller owns and may write (never silently skipped);
/// otherwise the reason, for an error naming the path.
fn create_writable_root(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).ok_or_else(|| format!("{} does not exist", p.display()))?;
    let meta = std::fs::metadata(parent).map_err(|_| format!("{} does not exist, nor does its parent {}", p.display(), parent.display()))?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != euid {
        return Err(format!("{} does not exist, and its parent {} is not a directory of yours: create it first", p.display(), parent.display()));
    }
    let c = std::ffi::CString::new(parent.as_os_str().as_bytes()).map_err(|_| format!("{}: not a valid path", parent.display()))?;
    // SAFETY: access with a NUL-terminated path; nothing is written.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(format!("{} does not exist, and its parent {} is not writable: create it first", p.display(), parent.display()));
    }
    std::fs::create_dir(p).or_else(|e| if p.is_dir() { Ok(()) } else { Err(e) }).map_err(|e| format!("{} does not exist and cannot be created: {e}", p.display()))
}

/// The mandatory read-denies, canonical where they exist.
/// Also returns those known not to exist now (so later phases need not
/// look again).
fn mandatory_denies(homes: &[PathBuf]) -> (Vec<PathBuf>, std::collections::HashSet<PathBuf>) {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut mandatory: Vec<PathBuf> = Vec::new();
    // A root caller's sandbox may keep uid 0 (when it cannot be shifted),
    // so file modes alone do not keep other users' secrets from it: hide
    // them under every home.
    let mut secret_homes = homes.to_vec();
    if root {
        for h in paths::all_user_homes() {
            if !secret_homes.contains(&h) {
                secret_homes.push(h);
            }
        }
    }
    for h in &secret_homes {
        for rel in paths::MANDATORY_DENY_READ_HOME {
            mandatory.push(h.join(rel));
        }
    }
    mandatory.extend(paths::MANDATORY_DENY_READ_ABS.iter().map(PathBuf::from));
    if root {
        mandatory.extend(paths::MANDATORY_DENY_READ_ROOT.iter().map(PathBuf::from));
    }
    mandatory.extend(paths::MANDATORY_DENY_READ_RUN.iter().map(PathBuf::from));
    if let Some(j) = super::quarantine::journal_dir() {
        // sharkcage's own state: the pending-check journal and its parent.
        mandatory.push(j.parent().map(Path::to_path_buf).unwrap_or(j));
    }
    for var in ["OPENCLAW_STATE_DIR", "OPENCLAW_HOME", "SHARKCAGE_DATA_DIR", "SHARKCAGE_CONFIG_DIR", "SHARKCAGE_STATE_DIR"] {
        if let Some(v) = std::env::var_os(var) {
            let p = PathBuf::from(v);
            if p.is_absolute() && p != Path::new("/") {
                mandatory.push(p);
            }
        }
    }
    // Canonicalise only what exists; a missing path keeps its lexical form
    // (its home is already canonical). Whether a path's first component
    // under a home exists is read from one listing of that home, not one
    // lstat per path (several homes × dozens of names for a root caller).
    let listed: std::collections::HashMap<&Path, std::collections::HashSet<std::ffi::OsString>> = secret_homes
        .iter()
        .filter_map(|h| std::fs::read_dir(h).ok().map(|rd| (h.as_path(), rd.flatten().map(|e| e.file_name()).collect())))
        .collect();
    let surely_missing = |n: &Path| {
        secret_homes.iter().any(|h| {
            let first = n.strip_prefix(h).ok().and_then(|r| r.components().next());
            matches!((listed.get(h.as_path()), first), (Some(names), Some(c)) if !names.contains(c.as_os_str()))
        })
    };
    let mut missing = std::collections::HashSet::new();
    let mut mandatory: Vec<PathBuf> = mandatory
        .iter()
        .map(|p| {
            let n = paths::normalize(p);
            if !surely_missing(&n) && n.symlink_metadata().is_ok() {
                std::fs::canonicalize(&n).unwrap_or(n)
            } else {
                missing.insert(n.clone());
                n
            }
        })
        .collect();
    mandatory.sort();
    mandatory.dedup();
    (mandatory, missing)
}

/// Put the home overlay in place of the home's read-only exposure; the
/// read-denies under the home go into its mask (see `layers::mounts::MountInputs::home_mask`)
/// instead of being mounted over it, so that a secret the host creates there
/// later — even during the call — never shows through the overlay (Landlock,
/// which would refuse it without a layer, cannot tell the overlay's files
/// apart). Then drop from the layer whatever would shadow a path still
/// mounted under the home (see `home_layer::Layer::clear_paths`); paths
/// inside a writable root are reached through that root's bind.
fn with_home_layer(
    ops: &mut Vec<PathOp>,
    home: &Path,
    layer: &super::home_layer::Layer,
    denied: &[&PathBuf],
    missing: &dyn Fn(&Path) -> bool,
    writable: &[PathBuf],
    violations: &mut Vec<Violation>,
) -> Option<Vec<PathBuf>> {
    let mut with: Vec<PathOp> = ops.iter().filter(|o| !(matches!(o, PathOp::ExposeRo(_)) && o.path() == home)).cloned().collect();
    let mask = home_mask(&with, home, denied, missing);
    let masked: Vec<PathBuf> = mask.iter().map(|m| home.join(m)).collect();
    with.retain(|o| !(matches!(o, PathOp::HideDir(_) | PathOp::HideFile(_) | PathOp::Content(_)) && masked.iter().any(|m| o.path().starts_with(m))));
    let under: Vec<&Path> = with
        .iter()
        .map(PathOp::path)
        .filter(|p| p.starts_with(home) && *p != home && !writable.iter().any(|w| p.starts_with(w) && p != w))
        .collect();
    match layer.clear_paths(home, &under) {
        Ok(dropped) => {
            for d in dropped {
                violations.push(Violation::note("home-layer", format!("{} in the home layer was dropped: the sandbox mounts something there", d.display())));
            }
        }
        Err(why) => {
            // Never a layer that could hide or redirect a mounted path.
            violations.push(Violation::note("home-layer", format!("no home layer ({why}): the home is read-only for this call")));
            return None;
        }
    }
    with.push(PathOp::HomeLayer(home.to_path_buf()));
    *ops = with;
    Some(mask)
}

/// The read-denies strictly under the home that do not exist yet: the mask
/// holds them (one that exists is hidden by a mount over the overlay, which
/// covers whatever appears inside it later). Each becomes one whiteout at its
/// topmost missing directory below the home (`~/.cargo` for a missing
/// `~/.cargo/credentials.toml`: what the host creates there during the call
/// stays out of view, the sandbox may still make its own). Not one with
/// something mounted inside it (an OpenClaw workspace in `~/.openclaw`, an
/// `allowRead`), and not one reached through a symlink or a non-directory in
/// the home (its real place is elsewhere). `missing` answers for a path
/// without a system call where that is already known.
fn home_mask(ops: &[PathOp], home: &Path, denied: &[&PathBuf], missing: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut cands: Vec<&PathBuf> = denied.iter().copied().filter(|m| m.starts_with(home) && m.as_path() != home && missing(m)).collect();
    cands.sort_by_key(|m| m.components().count());
    cands.dedup();
    let hiding = |o: &PathOp| matches!(o, PathOp::HideDir(_) | PathOp::HideFile(_) | PathOp::Content(_));
    // Every place under the home at or above which something else is mounted.
    let mut mounted: std::collections::HashSet<&Path> = std::collections::HashSet::new();
    for o in ops.iter().filter(|o| !hiding(o) && o.path().starts_with(home)) {
        for a in o.path().ancestors().take_while(|a| *a != home) {
            if !mounted.insert(a) {
                break;
            }
        }
    }
    // What each directory on the way is: None = missing, Some(is_dir).
    let mut seen: std::collections::HashMap<PathBuf, Option<bool>> = std::collections::HashMap::new();
    let mut kind = |p: &Path| *seen.entry(p.to_path_buf()).or_insert_with(|| p.symlink_metadata().ok().map(|m| m.is_dir()));
    let mut mask: Vec<PathBuf> = Vec::new();
    'cands: for m in cands {
        let mut target: &Path = m;
        for a in m.ancestors().skip(1).take_while(|a| *a != home) {
            match kind(a) {
                None => target = a,
                Some(true) => {}
                Some(false) => continue 'cands,
            }
        }
        let rel = target.strip_prefix(home).expect("filtered above");
        // (Hiding at or inside it is what the mask does instead.)
        if mounted.contains(target) || mask.iter().any(|x| rel.starts_with(x)) {
            continue;
        }
        mask.push(rel.to_path_buf());
    }
    mask
}

impl Ctx<'_> {
    /// The home may get the private layer: it exists, is visible, is not
    /// itself writable, and the layer's storage is out of every writable
    /// root's reach. Otherwise `None` (with a note when it matters).
    fn home_layer_use<'l>(&self, layer: &'l super::home_layer::Layer, writable: &[PathBuf], hidden: &[PathBuf], violations: &mut Vec<Violation>) -> Option<&'l super::home_layer::Layer> {
        let home = self.home.as_ref()?;
        if !home.is_dir() || writable.iter().any(|w| home.starts_with(w)) {
            return None;
        }
        if hidden.iter().any(|h| home.starts_with(h)) {
            return None;
        }
        if let Some(w) = writable.iter().find(|w| layer.dir.starts_with(w)) {
            violations.push(Violation::note("home-layer", format!("no home layer: its storage {} is inside the writable {}", layer.dir.display(), w.display())));
            return None;
        }
        Some(layer)
    }

    /// `p` is itself one of the mandatory read-denies (not merely under one).
    fn in_mandatory_list(&self, p: &Path) -> bool {
        self.mandatory.iter().any(|m| m == p)
    }

    fn in_mandatory(&self, p: &Path) -> bool {
        self.mandatory.iter().any(|m| p.starts_with(m))
    }

    fn err(&self, key: &str, message: String) -> LaunchError {
        policy_err(self.req, key, message)
    }

    /// Hidden paths: the mandatory denies, `denyRead` and `--deny-read`,
    /// those that exist.
    fn hidden_paths(&self) -> Result<(Vec<PathBuf>, DenyRules), LaunchError> {
        let pol = &self.req.policy;
        let home = self.home.as_deref();
        let user_deny = paths::resolve_entries(&pol.filesystem.deny_read, home, true).map_err(|(i, m)| self.err(&format!("filesystem.denyRead[{i}]"), m))?;
        let mut hidden: Vec<PathBuf> = self.mandatory.clone();
        hidden.extend(user_deny);
        for d in &self.req.extra_deny_read {
            hidden.push(paths::resolve(d, home).map_err(|m| self.err("--deny-read", m))?);
        }
        // The rules themselves, for a view that outlives this moment (the
        // file bridge): paths that do not exist yet, and glob patterns.
        let mut rules = DenyRules { paths: hidden.iter().filter(|p| !under_kernel_fs(p) && p.as_path() != Path::new("/")).cloned().collect(), globs: Vec::new() };
        for e in pol.filesystem.deny_read.iter().filter(|e| !e.literal && e.path.contains(['*', '?', '['])) {
            let expanded = match e.path.strip_prefix("~/") {
                Some(rest) => home.map(|h| h.join(rest).display().to_string()).unwrap_or_default(),
                None => e.path.clone(),
            };
            if let Ok(p) = glob::Pattern::new(&expanded) {
                rules.globs.push(p);
            }
        }
        hidden.retain(|p| !self.mandatory_missing.contains(p) && !under_kernel_fs(p) && p != Path::new("/") && p.symlink_metadata().is_ok());
        hidden.sort();
        hidden.dedup();
        Ok((hidden, rules))
    }

    /// `allowRead` paths inside hidden regions (never inside a mandatory
    /// deny), plus what the launcher itself must expose.
    fn allow_read_paths(&self, hidden: &[PathBuf], ssh_helper: Option<&PathBuf>) -> Result<Vec<PathBuf>, LaunchError> {
        let allow_read = paths::resolve_entries(&self.req.policy.filesystem.allow_read, self.home.as_deref(), true)
            .map_err(|(i, m)| self.err(&format!("filesystem.allowRead[{i}]"), m))?;
        for (i, p) in allow_read.iter().enumerate() {
            if self.in_mandatory(p) {
                return Err(self.err(
                    &format!("filesystem.allowRead[{i}]"),
                    format!("{} is inside a mandatory read-deny (secrets, OpenClaw or sharkcage state), which no policy can lift", p.display()),
                ));
            }
        }
        let mut allow_read: Vec<PathBuf> = allow_read.into_iter().filter(|p| p.exists() && hidden.iter().any(|h| p.starts_with(h))).collect();
        for p in self.req.expose_read_only.iter().chain(ssh_helper) {
            let c = paths::canonicalize_lenient(p);
            // Like a workspace, a directory OpenClaw keeps in `~/.openclaw`
            // (an agent's workspace) may be read; nothing else hidden.
            if self.in_mandatory(&c) && !(c.is_dir() && self.inside_openclaw(&c)) {
                return Err(LaunchError::Usage(format!("--read-only {}: inside a mandatory read-deny (secrets, OpenClaw or sharkcage state); refusing", c.display())));
            }
            if c.exists() && !allow_read.contains(&c) {
                allow_read.push(c);
            }
        }
        Ok(allow_read)
    }

    /// Strictly inside `~/.openclaw` and inside no other mandatory deny.
    fn inside_openclaw(&self, c: &Path) -> bool {
        let openclaw: Vec<PathBuf> = self.homes.iter().map(|h| paths::canonicalize_lenient(&h.join(".openclaw"))).collect();
        !openclaw.iter().any(|o| o == c) && !self.mandatory.iter().any(|m| c.starts_with(m) && !openclaw.iter().any(|o| o == m))
    }

    /// The workspace, canonical; never inside a mandatory deny other than
    /// `~/.openclaw` (OpenClaw's own workspaces live there).
    fn workspace_root(&self) -> Result<Option<PathBuf>, LaunchError> {
        let Some(w) = &self.req.workspace else { return Ok(None) };
        let abs = if w.is_absolute() { w.clone() } else { std::env::current_dir().map_err(LaunchError::Io)?.join(w) };
        let c = std::fs::canonicalize(&abs).map_err(|e| LaunchError::Usage(format!("--workspace {}: {e}", abs.display())))?;
        if !c.is_dir() {
            return Err(LaunchError::Usage(format!("--workspace {}: not a directory", c.display())));
        }
        if under_kernel_fs(&c) {
            return Err(LaunchError::Usage(format!("--workspace {}: not allowed under /proc, /sys or /dev", c.display())));
        }
        let openclaw: Vec<PathBuf> = self.homes.iter().map(|h| paths::canonicalize_lenient(&h.join(".openclaw"))).collect();
        if openclaw.iter().any(|o| o == &c) {
            return Err(LaunchError::Usage(format!("--workspace {}: the OpenClaw state directory itself cannot be a workspace", c.display())));
        }
        if self.in_mandatory(&c) && !self.inside_openclaw(&c) {
            let m = self.mandatory.iter().find(|m| c.starts_with(m)).cloned().unwrap_or_default();
            return Err(LaunchError::Usage(format!("--workspace {}: inside the protected secret path {}; refusing", c.display(), m.display())));
        }
        Ok(Some(c))
    }

    /// The workspace plus `allowWrite` and `--allow-write`.
    fn writable_roots(&self, workspace: Option<&PathBuf>, violations: &mut Vec<Violation>) -> Result<Vec<PathBuf>, LaunchError> {
        let home = self.home.as_deref();
        let mut writable: Vec<PathBuf> = workspace.into_iter().cloned().collect();
        let allow_write = paths::resolve_entries(&self.req.policy.filesystem.allow_write, home, false)
            .map_err(|(i, m)| self.err(&format!("filesystem.allowWrite[{i}]"), m))?;
        let mut extra = Vec::new();
        for w in &self.req.extra_allow_write {
            extra.push(paths::resolve(w, home).map_err(|m| self.err("--allow-write", m))?);
        }
        for (i, p) in allow_write.iter().chain(extra.iter()).enumerate() {
            if self.in_mandatory(p) {
                return Err(self.err(
                    &format!("filesystem.allowWrite[{i}]"),
                    format!("{} is inside a mandatory read-deny (secrets, OpenClaw or sharkcage state); it cannot be made writable", p.display()),
                ));
            }
            if under_kernel_fs(p) {
                violations.push(Violation::note("policy", format!("allowWrite {} skipped: /dev, /proc and /sys are managed by the sandbox", p.display())));
                continue;
            }
            if !p.exists() {
                if !self.create_missing {
                    continue;
                }
                let key = if i < allow_write.len() { format!("filesystem.allowWrite[{i}]") } else { "--allow-write".to_string() };
                create_writable_root(p).map_err(|m| self.err(&key, m))?;
                violations.push(Violation::note("policy", format!("allowWrite {} did not exist: created it", p.display())));
            }
            if !writable.contains(p) {
                writable.push(p.clone());
            }
        }
        Ok(writable)
    }

    /// Protected entries inside the writable roots (see `protected.rs` and
    /// `gitstate`), what existing git configs make git run or read there,
    /// `denyWrite`, and secret paths that must not appear there.
    fn protected_paths(&self, writable: &[PathBuf], hidden: &[PathBuf], violations: &mut Vec<Violation>) -> Result<Protected, LaunchError> {
        let pol = &self.req.policy;
        let tl = std::time::Instant::now();
        let cache = super::scancache::load(writable);
        let n_cached = cache.len();
        let cache_load = tl.elapsed();
        // Global configs first: a relative `core.hooksPath` there names hooks
        // directories in every repository.
        let outside = protected::derived(&[], writable, hidden);
        let homes = protected::homes();
        let t0 = std::time::Instant::now();
        let scan = protected::scan(writable, hidden, &homes, cache, &outside.hook_names);
        if std::env::var_os("SHARKCAGE_TIMING").is_some() {
            eprintln!("protected scan before: {} dirs, {} read, {:?} (cache load {:?})", scan.dirs, scan.read, t0.elapsed(), cache_load);
        }
        for p in &scan.unreadable {
            violations.push(Violation::note("policy", format!("{} could not be examined for git or startup files before the call", p.display())));
        }
        let mut derived = protected::derived_inside(&scan.entries, writable, hidden);
        for p in outside.paths {
            if !derived.paths.contains(&p) {
                derived.paths.push(p);
            }
        }
        let mut paths_ro = Vec::new();
        let mut must_not_appear: Vec<(PathBuf, Role)> = Vec::new();
        let mut writable_configs = Vec::new();
        for e in &scan.entries {
            // allowGitConfig (srt): repository configs stay writable; what is
            // written is still judged after the call.
            let repo_config = e.role == Role::GitConfig && e.path.file_name().is_some_and(|n| n == "config" || n == "config.worktree");
            if pol.filesystem.allow_git_config && repo_config {
                writable_configs.push((e.path.clone(), super::quarantine::content_digest(&e.path)));
                continue;
            }
            match &e.kind {
                protected::Kind::File | protected::Kind::Dir => paths_ro.push(e.path.clone()),
                // A symlink cannot carry a mount; protect what it points at when
                // that is inside a writable root (elsewhere it is read-only anyway).
                protected::Kind::Symlink(_) => {
                    if let Ok(t) = std::fs::canonicalize(&e.path) {
                        paths_ro.push(t);
                    }
                }
                protected::Kind::Other => {}
            }
        }
        let mut before = scan.entries;
        for (p, role) in &derived.paths {
            match protected::entry_now(p, *role) {
                Some(e) => {
                    if matches!(e.kind, protected::Kind::File | protected::Kind::Dir) {
                        paths_ro.push(p.clone());
                    }
                    before.push(e);
                }
                None => must_not_appear.push((p.clone(), *role)),
            }
        }
        let deny_write = paths::resolve_entries(&pol.filesystem.deny_write, self.home.as_deref(), false)
            .map_err(|(i, m)| self.err(&format!("filesystem.denyWrite[{i}]"), m))?;
        // A mandatory secret path that does not exist but lies inside a
        // writable root (say `~/.ssh` under a writable home) must not be
        // created by the sandbox either (an authorized_keys file would be a
        // way back in): it gets the after-call check.
        for m in &self.mandatory {
            if m.symlink_metadata().is_err() && writable.iter().any(|w| m.starts_with(w) && m != w) {
                must_not_appear.push((m.clone(), Role::Deny));
            }
        }
        for p in deny_write {
            if writable.iter().any(|w| p.starts_with(w)) {
                if p.symlink_metadata().is_ok() {
                    paths_ro.push(p);
                } else {
                    must_not_appear.push((p, Role::Deny));
                }
            }
        }
        // A protected path is re-bound read-only from the host: it must be
        // inside a writable root and never where the sandbox sees nothing (a
        // symlink target could point into a hidden path). A workspace inside
        // a hidden directory (OpenClaw's `~/.openclaw/workspace`) is visible,
        // and so is what it holds.
        let roots = crate::gitstate::Roots { writable, hidden };
        paths_ro.retain(|p| !roots.hidden_at(p) && writable.iter().any(|w| p.starts_with(w)));
        paths_ro.sort();
        paths_ro.dedup();
        let dirty = scan.read > 0 || scan.trees.len() != n_cached;
        Ok(Protected { paths: paths_ro, before, must_not_appear, hook_names: outside.hook_names, writable_configs, homes, trees: scan.trees, dirty })
    }

    /// For a shifted root caller: the home directory as a read-only
    /// idmapped view, and a skeleton for the topmost directory on the way
    /// to each place it works in (writable roots, home, the working
    /// directory, allowRead) that "other" cannot search — never that
    /// directory's other contents. A working directory under a skeleton is
    /// itself exposed read-only (the command starts there).
    fn shift_exposures(&self, writable: &[PathBuf], hidden: &[PathBuf], allow_read: &[PathBuf], cwd: &Path) -> Vec<PathOp> {
        use std::os::unix::fs::PermissionsExt;
        let home = self.home.clone().filter(|h| h.is_dir() && !hidden.iter().any(|x| h.starts_with(x)));
        // (Inside a writable root the home is bound, idmapped, already.)
        let mut ops: Vec<PathOp> = home.iter().filter(|h| !writable.iter().any(|w| h.starts_with(w))).cloned().map(PathOp::ExposeRo).collect();
        // Below these, everything is reachable already: a writable root or
        // the home (idmapped binds), a hidden path (a tmpfs of ours).
        let reachable = |a: &Path| writable.iter().chain(home.iter()).chain(hidden.iter()).any(|r| a.starts_with(r));
        let mut targets: Vec<(&Path, bool)> = writable.iter().map(|w| (w.as_path(), false)).collect();
        targets.push((cwd, true));
        targets.extend(home.iter().map(|h| (h.as_path(), false)));
        targets.extend(allow_read.iter().map(|a| (a.as_path(), false)));
        let searchable = |a: &Path| std::fs::metadata(a).map(|m| m.permissions().mode() & 0o001 != 0).unwrap_or(true);
        for (t, is_cwd) in targets {
            let mut down: Vec<&Path> = t.ancestors().skip(1).filter(|a| *a != Path::new("/")).collect();
            down.reverse();
            let mut under_skeleton = false;
            for a in down {
                if reachable(a) {
                    break;
                }
                if !searchable(a) {
                    ops.push(PathOp::Skeleton(a.to_path_buf()));
                    under_skeleton = true;
                    break;
                }
            }
            // The command starts in the working directory: it must be
            // reachable, and enterable even when it is private itself.
            if is_cwd && !reachable(t) && (under_skeleton || !searchable(t)) {
                ops.push(PathOp::ExposeRo(t.to_path_buf()));
            }
        }
        ops
    }

    /// Unix sockets the broker may connect to (never inside a mandatory
    /// deny: the gateway proxy's attach socket lives there), resolved now,
    /// before the command runs (see `unix_target`).
    fn unix_socket_targets(&self, writable: &[PathBuf]) -> Result<Vec<super::unix_target::UnixTarget>, LaunchError> {
        let mut targets: Vec<super::unix_target::UnixTarget> = Vec::new();
        for (i, s) in self.req.policy.network.allow_unix_sockets.iter().enumerate() {
            let key = format!("network.allowUnixSockets[{i}]");
            let expanded = match s.strip_prefix("~/") {
                Some(rest) => self.home.as_ref().ok_or_else(|| self.err(&key, "no home directory is known for ~".into()))?.join(rest),
                None => PathBuf::from(s),
            };
            if !expanded.is_absolute() {
                return Err(self.err(&key, format!("path {s:?} is not absolute")));
            }
            let t = super::unix_target::UnixTarget::resolve(paths::normalize(&expanded), writable).map_err(|m| self.err(&key, m))?;
            if let Some(p) = t.names.iter().find(|p| self.in_mandatory(p)) {
                return Err(self.err(&key, format!("{} is inside a mandatory read-deny (secrets, OpenClaw or sharkcage state)", p.display())));
            }
            if !targets.iter().any(|o| o.canonical == t.canonical && o.names == t.names) {
                targets.push(t);
            }
        }
        Ok(targets)
    }

    /// The command: environment (allowlist, secret filter, proxy
    /// variables), argv and the executable candidates.
    fn command(&self, cwd: &Path, net: Option<&NetPlan>, ssh_helper: Option<&PathBuf>, violations: &mut Vec<Violation>) -> Result<Command, LaunchError> {
        let req = self.req;
        let mut fixed = vec![("TMPDIR".to_string(), "/tmp".to_string()), ("SHARKCAGE_SANDBOX".to_string(), "1".to_string())];
        if let Some(h) = &self.home {
            fixed.push(("HOME".into(), h.display().to_string()));
        }
        fixed.push(("PWD".into(), cwd.display().to_string()));
        if net.is_some() {
            fixed.extend(proxy_env(ssh_helper));
        }
        let envb = env::build(std::env::vars(), &req.env, &req.policy.env, &fixed);
        for w in &envb.withheld {
            violations.push(Violation::note("env", w.describe()));
        }
        let path_var = envb.vars.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone()).unwrap_or_default();
        if req.argv.is_empty() {
            return Err(LaunchError::Usage("no command given".into()));
        }
        let exec_candidates = exec_candidates(&req.argv[0], &path_var, cwd)?;
        let argv: Vec<CString> = req
            .argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| LaunchError::Usage("an argument contains a NUL byte".into())))
            .collect::<Result<_, _>>()?;
        let envp: Vec<CString> = envb
            .vars
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(|_| LaunchError::Usage(format!("environment value of {k} contains a NUL byte"))))
            .collect::<Result<_, _>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        Ok(Command { exec_candidates, argv, argv_ptrs, envp, envp_ptrs })
    }
}

/// The prepared command (C strings and their pointer arrays).
struct Command {
    exec_candidates: Vec<CString>,
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
}

/// Where the command finds the proxy, and ssh through it.
fn proxy_env(ssh_helper: Option<&PathBuf>) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let http = format!("http://127.0.0.1:{}", crate::proxy::HTTP_PORT);
    let socks = format!("socks5h://127.0.0.1:{}", crate::proxy::SOCKS_PORT);
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        v.push((k.into(), http.clone()));
    }
    for k in ["ALL_PROXY", "all_proxy"] {
        v.push((k.into(), socks.clone()));
    }
    for k in ["NO_PROXY", "no_proxy"] {
        v.push((k.into(), "localhost,127.0.0.1,::1".into()));
    }
    // Node ≥ 24's own clients (fetch, http.request with the default agent)
    // honour the variables above only with this set (Node 22.16–23: it needs
    // `--use-env-proxy` or this too; older Node: a proxy agent).
    v.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
    // ssh through the proxy: this launcher's `__connect` opens a CONNECT
    // tunnel and relays stdin/stdout (ssh's ProxyCommand).
    if let Some(exe) = ssh_helper.map(|p| p.display().to_string()).filter(|e| !e.contains(['\'', '"', '\\', '%', ' '])) {
        v.push(("GIT_SSH_COMMAND".into(), format!("ssh -o ProxyCommand='{exe} __connect %h %p'")));
    }
    v
}

/// Without a workspace the command starts where the caller is, if that
/// place is visible in the sandbox; else at `/`.
fn working_dir(workspace: Option<&PathBuf>, hidden: &[PathBuf], violations: &mut Vec<Violation>) -> PathBuf {
    if let Some(w) = workspace {
        return w.clone();
    }
    let here = std::env::current_dir().map(|d| paths::canonicalize_lenient(&d)).unwrap_or_else(|_| PathBuf::from("/"));
    let private = ["/tmp", "/var/tmp", "/dev", "/proc", "/sys"].iter().any(|p| here.starts_with(p));
    if private || hidden.iter().any(|h| here.starts_with(h)) {
        violations.push(Violation::note("policy", format!("working directory {} is not visible in the sandbox; starting in /", here.display())));
        PathBuf::from("/")
    } else {
        here
    }
}

/// The path operations of the filesystem view (see `layers::mounts`):
/// private tmpfs, writable roots, hidden paths, allowRead, protected paths;
/// the parents of protected and hidden paths inside writable roots pinned.
fn mount_ops(writable: &[PathBuf], hidden: &[PathBuf], allow_read: &[PathBuf], protected: &[PathBuf]) -> Vec<PathOp> {
    let mut ops = vec![PathOp::PrivateTmp(PathBuf::from("/tmp"))];
    if Path::new("/var/tmp").symlink_metadata().is_ok_and(|m| m.is_dir()) {
        ops.push(PathOp::PrivateTmp(PathBuf::from("/var/tmp")));
    }
    ops.extend(writable.iter().cloned().map(PathOp::Write));
    for h in hidden {
        let is_dir = h.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false);
        ops.push(if is_dir { PathOp::HideDir(h.clone()) } else { PathOp::HideFile(h.clone()) });
        // A hidden path inside a writable root (sharkcage's state in a
        // writable home, an audit directory in the workspace) must stay
        // where the launcher finds it after the call: renaming a parent
        // away and planting a symlink in its place would redirect what the
        // launcher writes there. A pin is a bind of the host directory, so
        // never one inside a hidden path (it would show what is hidden).
        ops.extend(pins(writable, h).into_iter().filter(|p| !hidden.iter().any(|x| p.path().starts_with(x))));
    }
    ops.extend(allow_read.iter().cloned().map(PathOp::AllowRead));
    for p in protected {
        ops.extend(pins(writable, p));
        ops.push(PathOp::Protect(p.clone()));
    }
    ops
}

/// Every directory between the deepest writable root containing `p` and
/// `p` becomes a mount point, so renaming a parent fails with EBUSY instead
/// of moving `p` (and its protection) away.
fn pins(writable: &[PathBuf], p: &Path) -> Vec<PathOp> {
    let mut v = Vec::new();
    if let Some(w) = writable.iter().filter(|w| p.starts_with(w) && p != w.as_path()).max_by_key(|w| w.components().count()) {
        let mut cur = p.parent();
        while let Some(a) = cur {
            if a == w.as_path() || !a.starts_with(w) {
                break;
            }
            v.push(PathOp::Pin(a.to_path_buf()));
            cur = a.parent();
        }
    }
    v
}

/// Landlock's read grants are the complement of the hidden set (existing
/// or not: a path that does not exist yet has no grant when it appears), which
/// means listing every directory on the way to a hidden path. The host's
/// own secret files (/etc/shadow, ssh host keys, /var/backups…) would cost a
/// walk of /etc and /var on every call; they stay hidden by the mount layer
/// (and by file modes for a non-root caller).
fn landlock_plan(hidden: &[PathBuf], allow_read: &[PathBuf], exposed: &[PathBuf], writable: &[PathBuf], mounts: &MountPlan, pol: &crate::policy::Policy, net: bool) -> Result<LandlockPlan, LaunchError> {
    let stdio = stdio_files();
    let system_secret = |h: &Path| paths::MANDATORY_DENY_READ_ABS.iter().chain(paths::MANDATORY_DENY_READ_ROOT).any(|a| h == Path::new(a));
    let landlock_hidden: Vec<PathBuf> = hidden.iter().filter(|h| !system_secret(h)).cloned().collect();
    let exec_only = match &pol.filesystem.exec_only {
        Some(list) => Some(super::exec_only::resolve(list).map_err(LaunchError::Usage)?),
        None => None,
    };
    LandlockPlan::build(&LandlockInputs {
        hidden: &landlock_hidden,
        allow_read,
        exposed,
        writable,
        allow_local_binding: pol.network.allow_local_binding.unwrap_or(true),
        connect_ports: if net { &[crate::proxy::HTTP_PORT, crate::proxy::SOCKS_PORT] } else { &[] },
        private_writable: &mounts.private_writable,
        prepared_files: &mounts.prepared_files,
        stdio_files: &stdio,
        exec_only: exec_only.as_deref(),
    })
    .map_err(|e| match e {
        crate::layers::landlock::LandlockError::ExecOnlyUnavailable => LaunchError::Unsupported(e.to_string()),
        e => setup_error(&e),
    })
}

/// A layer that could not be prepared: out of descriptors or memory (an
/// OS error somewhere in its source chain) is `LaunchError::Io` with that
/// errno, so callers tell it from a setup failure; anything else is `Setup`.
fn setup_error(e: &(dyn std::error::Error + 'static)) -> LaunchError {
    // (`e` is named by the caller's message: "preparing the sandbox: …".)
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(n) = x.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error) {
            if matches!(n, libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN | libc::ENOSPC) {
                return LaunchError::Io(std::io::Error::from_raw_os_error(n));
            }
        }
        cur = x.source();
    }
    LaunchError::Setup(e.to_string())
}

/// `execvpe` semantics, resolved before the fork: a name with a slash is
/// used as given (relative to the working directory); otherwise every PATH
/// entry is a candidate, tried in order by the worker.
fn exec_candidates(argv0: &OsStr, path_var: &str, cwd: &Path) -> Result<Vec<CString>, LaunchError> {
    let bytes = argv0.as_bytes();
    let to_c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| LaunchError::Usage("command contains a NUL byte".into()));
    if bytes.is_empty() {
        return Err(LaunchError::Usage("empty command".into()));
    }
    if bytes.contains(&b'/') {
        let p = Path::new(argv0);
        let full = if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) };
        return Ok(vec![to_c(&full)?]);
    }
    let mut out = Vec::new();
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let d = Path::new(dir);
        let full = if d.is_absolute() { d.join(argv0) } else { cwd.join(d).join(argv0) };
        out.push(to_c(&full)?);
    }
    if out.is_empty() {
        return Err(LaunchError::Usage(format!("{}: not found (empty PATH)", argv0.to_string_lossy())));
    }
    Ok(out)
}

/// The command's stdin, when it is a regular file or a terminal, opened
/// `O_PATH` with the access it was opened for, so Landlock can allow
/// reopening it through `/dev/stdin` (`/proc/self/fd/0`) — with exactly
/// that access: a file given read-only as stdin must not become writable
/// through a reopen. (stdout and stderr are always the launcher's pipes.)
fn stdio_files() -> Vec<(OwnedFd, bool, bool)> {
    let mut v = Vec::new();
    let fd = 0;
    // SAFETY: fstat/fcntl on fd 0, which may be closed (then they fail).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return v;
    }
    let fmt = st.st_mode & libc::S_IFMT;
    if fmt != libc::S_IFREG && fmt != libc::S_IFCHR {
        return v;
    }
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return v;
    }
    let acc = fl & libc::O_ACCMODE;
    let (read, write) = (acc == libc::O_RDONLY || acc == libc::O_RDWR, acc == libc::O_WRONLY || acc == libc::O_RDWR);
    let p = CString::new("/proc/self/fd/0").unwrap();
    // SAFETY: opening with O_PATH; ownership moves into OwnedFd.
    let r = unsafe { libc::open(p.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if r >= 0 {
        // SAFETY: r is a fresh descriptor we own.
        v.push((unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) }, read, write));
    }
    v
}
