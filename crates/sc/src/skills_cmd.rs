//! `sc skill`, `sc grants`, `sc approve`, `sc explain`: install skills into
//! sharkcage's state, decide what they may do, and see which policy a
//! command would get. The decisions live in `<state>/grants.json` (see
//! `sharkcage::skills::grants`); every lookup reads it again, so a
//! revocation counts on the next call.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sharkcage::skills::attribution::{self, Attribution, HostFs, SkillPaths, SkillRoot};
use sharkcage::skills::grants::{self, By, Decision, GrantError, GrantRecord, GrantStore, Grants, Installed, Lookup};
use sharkcage::skills::identity::{self, Identity};
use sharkcage::skills::manifest::{self, Declaration};
use sharkcage::skills::{Capability, Request};

use crate::skill_fetch;

#[derive(clap::Args)]
pub struct SkillArgs {
    #[command(subcommand)]
    cmd: SkillCmd,
}

#[derive(clap::Subcommand)]
enum SkillCmd {
    /// Copy a skill into sharkcage's state, check its declaration, show what
    /// it asks for and its identity hash: from a directory, a tarball
    /// (.tar, .tar.gz, .tgz) or a git repository URL.
    Add {
        /// The skill's directory, tarball or git URL.
        source: String,
        /// Install under this name (default: the declaration's, else the
        /// directory's).
        #[arg(long)]
        name: Option<String>,
    },
    /// The installed skills.
    List,
    /// One installed skill: declaration, risk, hash, grants.
    Show { skill: String },
    /// Remove an installed skill and its decisions.
    Remove { skill: String },
}

#[derive(clap::Args)]
pub struct GrantsArgs {
    #[command(subcommand)]
    cmd: GrantsCmd,
}

#[derive(clap::Subcommand)]
enum GrantsCmd {
    /// Every decision: skill, capability, scope, allow or deny, for which version.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a skill's decisions (all, or one capability's). Takes effect
    /// on the next call.
    Revoke {
        skill: String,
        #[arg(long, value_name = "C")]
        capability: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    skill: String,
    /// A capability to decide (repeatable; default: every declared one).
    #[arg(long, value_name = "C")]
    capability: Vec<String>,
    /// Narrow the capability before it to this declared scope entry
    /// (repeatable).
    #[arg(long, value_name = "S")]
    scope: Vec<String>,
    /// Record a denial instead of a grant.
    #[arg(long)]
    deny: bool,
    /// Do not ask (automation).
    #[arg(long)]
    yes: bool,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// The command, as the agent would run it.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

fn err(msg: impl std::fmt::Display) -> i32 {
    eprintln!("sc: {msg}");
    1
}

fn store() -> Result<GrantStore, GrantError> {
    GrantStore::open_default()
}

fn skills_dir(s: &GrantStore) -> PathBuf {
    s.dir().join("skills")
}

// Characters that could forge text never reach the terminal (the one rule
// the approval prompt uses too).
use sharkcage::skills::prompt::{clean, short};

fn print_requests(reqs: &[Request]) {
    if reqs.is_empty() {
        println!("  (declares no capability: runs with the baseline policy only)");
    }
    for r in reqs {
        let c = r.capability;
        println!("  [{}] {:<9} {} ({}): {}", c.risk().icon(), c.risk().as_str(), c.name(), c.label(), clean(&r.reason));
        if !r.scope.is_empty() {
            println!("      scope: {}", r.scope.iter().map(|s| clean(s)).collect::<Vec<_>>().join(", "));
        }
    }
}

pub fn run_skill(a: SkillArgs) -> i32 {
    match a.cmd {
        SkillCmd::Add { source, name } => add_from(&source, name),
        SkillCmd::List => list_skills(),
        SkillCmd::Show { skill } => show(&skill),
        SkillCmd::Remove { skill } => remove(&skill),
    }
}

/// Copy `src` into `dst` (new): the one copy rule (`skills::copy`).
fn copy_tree(src: &Path, dst: &Path, root: &Path) -> Result<(), String> {
    sharkcage::skills::copy::copy_tree(src, dst, root, sharkcage::skills::copy::Modes::Private)
}



/// The declaration of an installed copy, or why it cannot be read.
fn declaration(dir: &Path) -> Result<Option<Declaration>, String> {
    manifest::load_dir(dir).map_err(|e| e.to_string())
}

/// `sc skill add SOURCE`: a tarball or a git URL is brought into a private
/// scratch directory first, then added like a directory.
fn add_from(source: &str, name: Option<String>) -> i32 {
    let fetched = match skill_fetch::classify(source) {
        skill_fetch::Source::Dir(d) => return add(&d, source, name),
        other => other,
    };
    let store = match store() {
        Ok(s) => s,
        Err(e) => return err(e),
    };
    let scratch = skills_dir(&store).join(format!(".fetch-{}", std::process::id()));
    let made = sharkcage::fileio::ensure_private_dir(store.dir())
        .and_then(|_| sharkcage::fileio::ensure_private_dir(&skills_dir(&store)))
        .and_then(|_| {
            let _ = std::fs::remove_dir_all(&scratch);
            std::fs::create_dir(&scratch)?;
            std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o700))
        });
    if let Err(e) = made {
        return err(format!("{}: {e}", scratch.display()));
    }
    let root = match fetched {
        skill_fetch::Source::Tarball(f) => skill_fetch::unpack(&f, &scratch),
        skill_fetch::Source::Git(url) => skill_fetch::clone(&url, &scratch.join("repo")),
        skill_fetch::Source::Dir(_) => unreachable!(),
    };
    let code = match root {
        Ok(r) => add(&r, source, name),
        Err(e) => err(e),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    code
}

fn add(source: &Path, shown_source: &str, name: Option<String>) -> i32 {
    let src_str = source.display().to_string();
    let root = match std::fs::canonicalize(source) {
        Ok(r) if r.is_dir() => r,
        Ok(_) => return err(format!("{src_str}: not a directory")),
        Err(e) => return err(format!("{src_str}: {e}")),
    };
    // Bounds, refuses special files, and is compared with the copy below.
    let src_id = match identity::identify(&root) {
        Ok(i) => i,
        Err(e) => return err(e),
    };
    let decl = match declaration(&root) {
        Ok(d) => d,
        Err(e) => return err(e),
    };
    let name = name.or_else(|| decl.as_ref().and_then(|d| d.name.clone())).or_else(|| root.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default();
    if let Err(e) = grants::valid_skill_name(&name) {
        return err(format!("{e} (give another with --name)"));
    }
    let store = match store() {
        Ok(s) => s,
        Err(e) => return err(e),
    };
    let dir = skills_dir(&store);
    if let Err(e) = sharkcage::fileio::ensure_private_dir(store.dir()).and_then(|_| sharkcage::fileio::ensure_private_dir(&dir)) {
        return err(format!("{}: {e}", dir.display()));
    }
    let tmp = dir.join(format!(".add-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let cleanup = |m: String| {
        let _ = std::fs::remove_dir_all(&tmp);
        err(m)
    };
    if let Err(e) = copy_tree(&root, &tmp, &root) {
        return cleanup(e);
    }
    let id = match identity::identify(&tmp) {
        Ok(i) => i,
        Err(e) => return cleanup(e.to_string()),
    };
    if id.digest != src_id.digest {
        return cleanup(format!("{src_str}: changed while it was copied; try again"));
    }
    // The copy's declaration is the one enforced (its paths name the copy).
    let decl = match declaration(&tmp) {
        Ok(d) => d,
        Err(e) => return cleanup(e),
    };
    let dest = dir.join(&name);
    let res = store.update(|g| {
        let old = g.skills.get(&name).cloned();
        let old_id = identity::identify(&dest).ok();
        if dest.exists() {
            let aside = dir.join(format!(".old-{name}-{}", std::process::id()));
            std::fs::rename(&dest, &aside).map_err(|e| GrantError::Invalid(format!("{}: {e}", dest.display())))?;
            let _ = std::fs::remove_dir_all(&aside);
        }
        std::fs::rename(&tmp, &dest).map_err(|e| GrantError::Invalid(format!("{}: {e}", dest.display())))?;
        g.skills.insert(name.clone(), Installed { identity: id.digest.clone(), source: shown_source.to_string(), installed_at: grants::now() });
        Ok((old, old_id, g.stale(&name, &id.digest)))
    });
    let (old, old_id, stale) = match res {
        Ok(r) => r,
        Err(e) => return cleanup(e.to_string()),
    };
    println!("Installed skill {name} from {}", clean(shown_source));
    println!("  into      {}", dest.display());
    println!("  identity  {}", id.digest);
    match &old {
        Some(o) if o.identity == id.digest => println!("  unchanged since it was last added"),
        Some(o) => {
            println!("  replaces  {} (the earlier version)", short(&o.identity));
            if let Some(oi) = old_id {
                let d = identity::diff(&oi, &id);
                if !d.is_empty() {
                    println!("{}", identity::describe(&d, 10).lines().map(|l| format!("    {}", clean(l))).collect::<Vec<_>>().join("\n"));
                }
            }
            if stale > 0 {
                println!("  its {stale} earlier decision(s) are for the old version and no longer apply: approve again (sc approve {name})");
            }
        }
        None => {}
    }
    match &decl {
        Some(d) => {
            println!("Declares ({}):", d.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
            print_requests(&d.capabilities);
        }
        None => println!("Declares nothing: it runs with the baseline policy only."),
    }
    if decl.as_ref().is_some_and(|d| !d.capabilities.is_empty()) {
        println!("Nothing is granted yet: sc approve {name}");
    }
    0
}

/// `sc skill remove NAME`: the copy and every decision about it.
fn remove(name: &str) -> i32 {
    if let Err(e) = grants::valid_skill_name(name) {
        return err(e);
    }
    let store = match store() {
        Ok(s) => s,
        Err(e) => return err(e),
    };
    let dir = skills_dir(&store);
    let dest = dir.join(name);
    let res = store.update(|g| {
        let known = g.skills.remove(name).is_some();
        let revoked = g.revoke(name, None);
        if !known && !dest.exists() {
            return Err(GrantError::Invalid(format!("no installed skill named {name:?}")));
        }
        if dest.exists() {
            let aside = dir.join(format!(".removed-{name}-{}", std::process::id()));
            std::fs::rename(&dest, &aside).map_err(|e| GrantError::Invalid(format!("{}: {e}", dest.display())))?;
            let _ = std::fs::remove_dir_all(&aside);
        }
        Ok(revoked)
    });
    match res {
        Ok(revoked) => {
            println!("Removed skill {name} and its {revoked} decision(s).");
            audit(name, "revoked", "skill removed", Some(serde_json::json!({ "decisions": revoked })));
            0
        }
        Err(e) => err(e),
    }
}

/// The installed copy's identity now, against the pinned one.
fn current_identity(store: &GrantStore, name: &str) -> Result<Identity, String> {
    identity::identify(&skills_dir(store).join(name)).map_err(|e| e.to_string())
}

fn load(store: &GrantStore) -> Result<Grants, i32> {
    store.load().map_err(err)
}

/// The store and what it holds now (every command starts here).
fn open() -> Result<(GrantStore, Grants), i32> {
    let store = store().map_err(err)?;
    let g = load(&store)?;
    Ok((store, g))
}

fn list_skills() -> i32 {
    let (store, g) = match open() {
        Ok(x) => x,
        Err(c) => return c,
    };
    if g.skills.is_empty() {
        println!("No skills installed (sc skill add <dir>).");
        return 0;
    }
    for (name, s) in &g.skills {
        let state = match current_identity(&store, name) {
            Ok(i) if i.digest == s.identity => "ok",
            Ok(_) => "CHANGED since added",
            Err(_) => "MISSING or unreadable",
        };
        let (allow, deny) = g.for_skill(name).filter(|r| r.identity == s.identity).fold((0, 0), |(a, d), r| match r.decision {
            Decision::AllowAlways => (a + 1, d),
            Decision::Deny => (a, d + 1),
        });
        let max = declaration(&skills_dir(&store).join(name)).ok().flatten().and_then(|d| d.capabilities.iter().map(|r| r.capability.risk()).max());
        println!(
            "{name:<24} {}  {state:<20} risk {:<9} granted {allow}, denied {deny}",
            short(&s.identity),
            max.map(|r| r.as_str()).unwrap_or("none")
        );
    }
    0
}

fn show(name: &str) -> i32 {
    let (store, g) = match open() {
        Ok(x) => x,
        Err(c) => return c,
    };
    let Some(s) = g.skills.get(name) else {
        return err(format!("{name}: not installed (sc skill list)"));
    };
    let dir = skills_dir(&store).join(name);
    println!("Skill {name}");
    println!("  directory {}", dir.display());
    println!("  source    {}", clean(&s.source));
    println!("  added     {}", clean(&s.installed_at));
    println!("  pinned    {}", s.identity);
    match current_identity(&store, name) {
        Ok(i) if i.digest == s.identity => println!("  installed copy matches its pinned hash"),
        Ok(i) => println!("  installed copy CHANGED: now {} (its grants do not apply; sc skill add it again)", i.digest),
        Err(e) => println!("  installed copy cannot be identified: {e}"),
    }
    match declaration(&dir) {
        Ok(Some(d)) => {
            println!("Declares:");
            print_requests(&d.capabilities);
        }
        Ok(None) => println!("Declares nothing."),
        Err(e) => println!("Declaration unreadable: {e}"),
    }
    let mine: Vec<&GrantRecord> = g.for_skill(name).collect();
    if mine.is_empty() {
        println!("Decisions: none");
    } else {
        println!("Decisions:");
        for r in mine {
            print_grant(r, Some(&s.identity));
        }
    }
    0
}

fn print_grant(r: &GrantRecord, pinned: Option<&str>) {
    let scope = if r.scope.is_empty() { "(any scope)".to_string() } else { r.scope.iter().map(|s| clean(s)).collect::<Vec<_>>().join(", ") };
    let stale = match pinned {
        Some(p) if p != r.identity => "  [STALE: for another version of the skill]",
        None => "  [skill not installed]",
        _ => "",
    };
    println!(
        "  {:<12} {:<20} {scope}  for {}  by {} at {} ({}){stale}",
        r.decision.as_str(),
        r.capability.name(),
        short(&r.identity),
        r.by.as_str(),
        clean(&r.granted_at),
        clean(&r.approval_id)
    );
}

pub fn run_grants(a: GrantsArgs) -> i32 {
    let store = match store() {
        Ok(s) => s,
        Err(e) => return err(e),
    };
    match a.cmd {
        GrantsCmd::List { json } => {
            let g = match load(&store) {
                Ok(g) => g,
                Err(c) => return c,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&g.grants).unwrap_or_default());
                return 0;
            }
            if g.grants.is_empty() {
                println!("No decisions recorded.");
            }
            let mut skills: Vec<&str> = g.grants.iter().map(|r| r.skill.as_str()).collect();
            skills.dedup();
            skills.sort();
            skills.dedup();
            for s in skills {
                println!("{s}:");
                for r in g.for_skill(s) {
                    print_grant(r, g.skills.get(s).map(|i| i.identity.as_str()));
                }
            }
            0
        }
        GrantsCmd::Revoke { skill, capability } => {
            let cap = match capability.as_deref().map(|c| Capability::from_name(c).ok_or_else(|| sharkcage::skills::capabilities::unknown_message(c))).transpose() {
                Ok(c) => c,
                Err(m) => return err(m),
            };
            match store.update(|g| Ok(g.revoke(&skill, cap))) {
                Ok(0) => err(format!("{skill}: no decision{} to revoke", cap.map(|c| format!(" about {c}")).unwrap_or_default())),
                Ok(n) => {
                    println!("Revoked {n} decision(s) about {skill}{}; the next call runs without them.", cap.map(|c| format!(" ({c})")).unwrap_or_default());
                    audit(&skill, "revoke", &format!("revoked {n} decision(s){}", cap.map(|c| format!(" about {c}")).unwrap_or_default()), None);
                    0
                }
                Err(e) => err(e),
            }
        }
    }
}

/// Record an approval or revocation in the audit log (best effort: a
/// failure is told, the decision stands).
fn audit(skill: &str, decision: &str, reason: &str, detail: Option<serde_json::Value>) {
    let Some(dir) = sharkcage::audit::default_dir() else { return };
    let mut r = sharkcage::audit::record::Record::new("approval");
    r.skill = Some(skill.to_string());
    r.tool = Some("cli".into());
    r.decision = Some(decision.to_string());
    r.reason = Some(reason.to_string());
    r.detail = detail;
    let res = sharkcage::audit::Audit::open(sharkcage::audit::AuditConfig::new(&dir)).and_then(|w| {
        w.submit(r);
        w.close()
    });
    if let Err(e) = res {
        eprintln!("sc: note: the audit log ({}): {e}", dir.display());
    }
}

/// `--capability C --scope S …` as given: each scope belongs to the
/// capability before it on the command line.
pub struct Pairs(pub Vec<(String, Vec<String>)>);

pub fn pairs(m: &clap::ArgMatches) -> Result<Pairs, String> {
    let caps: Vec<(usize, String)> = match (m.indices_of("capability"), m.get_many::<String>("capability")) {
        (Some(i), Some(v)) => i.zip(v.cloned()).collect(),
        _ => vec![],
    };
    let scopes: Vec<(usize, String)> = match (m.indices_of("scope"), m.get_many::<String>("scope")) {
        (Some(i), Some(v)) => i.zip(v.cloned()).collect(),
        _ => vec![],
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut all: Vec<(usize, bool, String)> = caps.into_iter().map(|(i, c)| (i, true, c)).chain(scopes.into_iter().map(|(i, s)| (i, false, s))).collect();
    all.sort_by_key(|x| x.0);
    for (_, is_cap, v) in all {
        if is_cap {
            out.push((v, vec![]));
        } else {
            match out.last_mut() {
                Some(l) => l.1.push(v),
                None => return Err(format!("--scope {v:?}: give --capability first; a scope narrows the capability before it")),
            }
        }
    }
    Ok(Pairs(out))
}

pub fn run_approve(a: ApproveArgs, pairs: Pairs) -> i32 {
    let (store, g) = match open() {
        Ok(x) => x,
        Err(c) => return c,
    };
    let name = a.skill;
    let Some(inst) = g.skills.get(&name) else {
        return err(format!("{name}: not installed (sc skill add <dir> first)"));
    };
    let dir = skills_dir(&store).join(&name);
    match current_identity(&store, &name) {
        // Kept, so a later prompt for a changed version can say what changed.
        Ok(i) if i.digest == inst.identity => identity::save_snapshot(store.dir(), &i),
        Ok(i) => return err(format!("{name}: the installed copy changed since it was added (now {}); add it again with sc skill add and review it", short(&i.digest))),
        Err(e) => return err(e),
    }
    let decl = match declaration(&dir) {
        Ok(Some(d)) => d,
        Ok(None) => return err(format!("{name}: declares no capability; there is nothing to approve")),
        Err(e) => return err(e),
    };
    // What to decide: every declared capability, or the ones named (each
    // narrowed to the scopes named), always within the declaration.
    let mut chosen: Vec<Request> = Vec::new();
    if pairs.0.is_empty() {
        chosen = decl.capabilities.clone();
    }
    for (c, scopes) in &pairs.0 {
        let Some(cap) = Capability::from_name(c) else {
            return err(sharkcage::skills::capabilities::unknown_message(c));
        };
        let Some(d) = decl.capabilities.iter().find(|r| r.capability == cap) else {
            return err(format!("{name} does not declare {cap}; only what a skill declares can be approved"));
        };
        for s in scopes {
            if !d.scope.contains(s) {
                return err(format!("{name} does not declare scope {:?} for {cap} (declared: {})", clean(s), if d.scope.is_empty() { "none".into() } else { d.scope.join(", ") }));
            }
        }
        if chosen.iter().any(|r| r.capability == cap) {
            return err(format!("--capability {cap} given twice"));
        }
        chosen.push(Request { capability: cap, reason: d.reason.clone(), scope: if scopes.is_empty() { d.scope.clone() } else { scopes.clone() } });
    }
    let verb = if a.deny { "DENY" } else { "ALLOW (always, until revoked)" };
    println!("{verb} for skill {name}, version {}:", short(&inst.identity));
    for r in &chosen {
        let c = r.capability;
        println!("  [{}] {} risk: {} ({})", c.risk().icon(), c.risk().as_str(), c.name(), c.label());
        println!("      it may {}", c.description());
        if !r.scope.is_empty() {
            println!("      only: {}", r.scope.iter().map(|s| clean(s)).collect::<Vec<_>>().join(", "));
        }
        println!("      the skill says why: {}", clean(&r.reason));
    }
    println!("This applies only to this exact version; if the skill changes, it must be approved again.");
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return err("not a terminal: nothing was decided; review on a terminal, or pass --yes to decide without asking");
        }
        print!("Record this? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            println!("Nothing was decided.");
            return 1;
        }
    }
    let id = grants::new_approval_id();
    let pinned = inst.identity.clone();
    let decision = if a.deny { Decision::Deny } else { Decision::AllowAlways };
    let res = store.update(|g| {
        // Checked again under the lock: the skill may have been re-added.
        if g.skills.get(&name).map(|s| s.identity.as_str()) != Some(pinned.as_str()) {
            return Err(GrantError::Invalid(format!("{name} was replaced meanwhile; review it again")));
        }
        for r in &chosen {
            g.record(GrantRecord {
                skill: name.clone(),
                identity: pinned.clone(),
                capability: r.capability,
                scope: r.scope.clone(),
                decision,
                granted_at: grants::now(),
                by: By::Cli,
                approval_id: id.clone(),
            });
        }
        Ok(())
    });
    if let Err(e) = res {
        return err(e);
    }
    let caps: Vec<&str> = chosen.iter().map(|r| r.capability.name()).collect();
    println!("Recorded {} ({}): {}", decision.as_str(), id, caps.join(", "));
    audit(
        &name,
        decision.as_str(),
        &format!("{} {}", decision.as_str(), caps.join(", ")),
        Some(serde_json::json!({ "approvalId": id, "identity": pinned, "capabilities": chosen.iter().map(|r| serde_json::json!({"capability": r.capability.name(), "scope": r.scope})).collect::<Vec<_>>() })),
    );
    0
}

pub fn run_explain(a: ExplainArgs) -> i32 {
    let (store, g) = match open() {
        Ok(x) => x,
        Err(c) => return c,
    };
    let command = a.command.join(" ");
    let skills: Vec<SkillPaths> = g.skills.keys().map(|n| SkillPaths { name: n.clone(), roots: vec![SkillRoot::host(skills_dir(&store).join(n))] }).collect();
    let cwd = std::env::current_dir().ok();
    println!("Command: {}", clean(&command));
    let att = attribution::attribute(&command, cwd.as_deref(), &skills, &HostFs);
    let (name, host_file) = match &att {
        Attribution::Skill { name, host_file, .. } => (name.clone(), host_file.clone()),
        Attribution::Baseline { reason } => {
            println!("Policy: baseline (no skill's grants)");
            println!("Why: {}", clean(reason));
            return 0;
        }
        _ => {
            println!("Policy: baseline");
            return 0;
        }
    };
    println!("Skill: {name} (runs its code {})", host_file.display());
    let pinned = g.skills.get(&name).map(|s| s.identity.clone()).unwrap_or_default();
    let current = match current_identity(&store, &name) {
        Ok(i) => i.digest,
        Err(e) => {
            println!("Policy: baseline");
            println!("Why: the installed copy cannot be identified: {e}");
            return 0;
        }
    };
    if current != pinned {
        println!("Policy: baseline");
        println!("Why: the installed copy changed since it was added (pinned {}, now {}); its grants do not apply", short(&pinned), short(&current));
        return 0;
    }
    let requested = match declaration(&skills_dir(&store).join(&name)) {
        Ok(d) => d.map(|d| d.capabilities).unwrap_or_default(),
        Err(e) => {
            println!("Policy: baseline");
            println!("Why: its declaration cannot be read: {e}");
            return 0;
        }
    };
    let granted: Vec<&GrantRecord> = g.for_skill(&name).filter(|r| r.identity == current && r.decision == Decision::AllowAlways).collect();
    match g.lookup(&name, &current, &requested) {
        Lookup::Covered if requested.is_empty() => println!("Policy: baseline (the skill declares no capability)"),
        Lookup::Covered => println!("Policy: skill {name}, everything it declares is granted"),
        Lookup::Partial(missing) => {
            println!("Policy: skill {name}, with only what is granted; not granted:");
            print_requests(&missing);
        }
        Lookup::Denied(d) => {
            println!("Policy: skill {name}; the user denied:");
            print_requests(&d);
        }
        Lookup::None => {
            println!("Policy: skill {name} with nothing granted (approve with: sc approve {name})");
            let stale = g.stale(&name, &current);
            if stale > 0 {
                println!("  ({stale} decision(s) are for an earlier version and do not apply)");
            }
        }
    }
    if !granted.is_empty() {
        println!("Granted:");
        for r in granted {
            print_grant(r, Some(&current));
        }
    }
    0
}
