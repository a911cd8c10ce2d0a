//! Files the launcher writes after a call — `--json`, the `--audit-dir` log,
//! the OpenClaw result file in sharkcage's state directory, the pending-check
//! journal — while the sandboxed command renames directories on the way and
//! plants symlinks in their place.
//!
//! Decided behaviour for `--json`: the directory is opened before the call
//! and the file is written into *that* directory, wherever the command moved
//! it (a note on stderr says where); if the command deleted it, the result is
//! lost with an error on stderr. Never is anything written through a planted
//! symlink. Hidden paths (sharkcage's state, an audit directory) inside a
//! writable root cannot be moved at all: every directory between the
//! writable root and them is a mount point (EBUSY).
//!
//! Every test judges the host: the symlink's target directory stays empty,
//! the file is where it should be. They pass as root and as an unprivileged
//! user.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn entries(d: &Path) -> Vec<String> {
    std::fs::read_dir(d).map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default()
}

/// An empty directory outside the workspace: a planted symlink's target.
fn outside(t: &T) -> PathBuf {
    let d = t.root.join("outside");
    std::fs::create_dir_all(&d).unwrap();
    set_mode(&d, 0o777);
    d
}

fn json_at(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).expect("JSON")
}

/// `--json ws/…/out.json`; the command renames a directory on the way and
/// puts a symlink (or a directory holding one) in its place. The result is
/// in the original directory, the user is told, nothing lands outside.
#[test]
fn json_result_follows_its_original_directory_not_a_planted_symlink() {
    let _g = shared();
    let t = T::new();
    let out = outside(&t);
    let cases = [
        ("results/out.json", "mv results results.old && ln -s {out} results", "results.old/out.json"),
        ("a/b/out.json", "mv a a.old && mkdir a && ln -s {out} a/b", "a.old/b/out.json"),
    ];
    for (rel, swap, landed) in cases {
        let json = t.ws.join(rel);
        std::fs::create_dir_all(json.parent().unwrap()).unwrap();
        let swap = swap.replace("{out}", &out.display().to_string());
        let o = t.sc().no_json().opt("--json").opt(json.as_os_str()).sh(&format!("{swap} && echo SWAPPED")).run();
        assert!(o.out().contains("SWAPPED"), "control: the swap must work: {}", o.all());
        assert!(entries(&out).is_empty(), "{rel}: the launcher wrote through the planted symlink: {:?}", entries(&out));
        let j = json_at(&t.ws.join(landed));
        assert_eq!(j["exitCode"], 0, "{j}");
        assert!(o.err().contains("--json") && o.err().contains("moved or replaced"), "{rel}: the user is not told: {}", o.err());
    }
}

/// The directory deleted and replaced by a symlink: nothing is written
/// outside; the error names `--json`.
#[test]
fn json_result_is_not_written_when_its_directory_was_deleted() {
    let _g = shared();
    let t = T::new();
    let out = outside(&t);
    let json = t.ws.join("results/out.json");
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    let o = t.sc().no_json().opt("--json").opt(json.as_os_str()).sh(&format!("rm -rf results && ln -s {} results && echo SWAPPED", out.display())).run();
    assert!(o.out().contains("SWAPPED"), "control: {}", o.all());
    assert!(entries(&out).is_empty(), "the launcher wrote through the planted symlink: {:?}", entries(&out));
    assert!(o.err().contains("--json") && o.err().contains("deleted"), "{}", o.err());
    assert_eq!(o.code, 0, "the command's status is kept: {}", o.all());
}

/// A symlink planted at the result's own name is replaced, not followed.
#[test]
fn json_result_replaces_a_symlink_at_its_name() {
    let _g = shared();
    let t = T::new();
    let victim = t.root.join("victim.txt");
    std::fs::write(&victim, "VICTIM").unwrap();
    set_mode(&victim, 0o666);
    let json = t.ws.join("out.json");
    let o = t.sc().no_json().opt("--json").opt(json.as_os_str()).sh(&format!("ln -s {} out.json && echo PLANTED", victim.display())).run();
    assert!(o.out().contains("PLANTED"), "control: {}", o.all());
    assert_eq!(read(&victim).as_deref(), Some("VICTIM"), "the result was written through the symlink");
    assert!(!json.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(json_at(&json)["exitCode"], 0);
}

/// `--audit-dir` inside the workspace: the command cannot move it or a
/// directory on its way (they are mount points in the sandbox), so the log
/// stays where it was and holds the call; nothing lands outside.
#[test]
fn audit_dir_in_the_workspace_cannot_be_redirected() {
    let _g = shared();
    let t = T::new();
    let out = outside(&t);
    let audit = t.ws.join("logs/audit");
    let marker = format!("audited-{}", t.id);
    let script = format!(
        "mv logs logs.old 2>/dev/null && echo MOVED-PARENT; mv logs/audit logs/x 2>/dev/null && echo MOVED-DIR; \
         rm -rf logs 2>/dev/null; ln -s {0} logs 2>/dev/null; ln -s {0} logs/audit 2>/dev/null; echo {marker}",
        out.display()
    );
    let o = t.sc().opt("--audit-dir").opt(audit.as_os_str()).sh(&script).run();
    assert!(o.out().contains(&marker), "control: {}", o.all());
    assert!(entries(&out).is_empty(), "the audit log went through a planted symlink: {:?}", entries(&out));
    assert!(!t.ws.join("logs.old").exists() && !t.ws.join("logs/x").exists(), "the audit directory was moved: {}", o.all());
    assert!(!audit.symlink_metadata().unwrap().file_type().is_symlink(), "the audit directory was replaced by a symlink");
    let a = Command::new(sc_bin()).args(["audit", "--dir"]).arg(&audit).arg("--json").output().unwrap();
    let recs = String::from_utf8_lossy(&a.stdout);
    assert!(recs.contains(&marker), "the call is not in the audit log at {}: {recs}\n{}", audit.display(), String::from_utf8_lossy(&a.stderr));
}

/// A writable home holding sharkcage's state directory: the command cannot
/// rename `~/.local` (or `~/.local/state`) away and plant
/// `~/.local/state/sharkcage` → elsewhere, so the next calls' journal and an
/// OpenClaw result file written there stay in the real state directory.
#[test]
fn state_dir_in_a_writable_home_cannot_be_swapped() {
    let _g = shared();
    let t = T::new();
    let out = outside(&t);
    let state = t.home.join(".local/state/sharkcage");
    std::fs::create_dir_all(state.join("results")).unwrap();
    let script = format!(
        "mv .local .x 2>/dev/null && echo MOVED; mv .local/state .local/s2 2>/dev/null && echo MOVED; \
         mkdir -p .local/state 2>/dev/null; ln -s {0} .local/state/sharkcage 2>/dev/null; rm -rf .local/state/sharkcage 2>/dev/null; \
         ln -s {0} .local/state/sharkcage 2>/dev/null; echo DONE",
        out.display()
    );
    let result = state.join("results/r.json");
    let o = Run::new(&t.home, &t.root).workspace(&t.home).no_json().opt("--json").opt(result.as_os_str()).sh(&script).run();
    assert!(o.out().contains("DONE"), "control: {}", o.all());
    // A second call in the same home: its journal goes to the state dir.
    let o2 = Run::new(&t.home, &t.root).workspace(&t.home).sh("echo second").run();
    o2.assert_ok();
    assert!(entries(&out).is_empty(), "sharkcage state was written through a planted symlink: {:?}", entries(&out));
    assert!(!t.home.join(".x").exists() && !t.home.join(".local/s2").exists(), "a parent of the state directory was renamed: {}", o.all());
    assert!(state.symlink_metadata().unwrap().is_dir(), "the state directory was replaced");
    assert!(state.join("pending").is_dir(), "the journal directory is in the real state dir");
    assert_eq!(json_at(&result)["exitCode"], 0);
    assert!(!o.out().contains("MOVED"), "{}", o.all());
}

/// The pin covers every hidden path inside a writable root, not only
/// sharkcage's: `~/.config` (holding the hidden `~/.config/gh`) cannot be
/// renamed to get the secret out from under its mask.
#[test]
fn parents_of_hidden_paths_in_a_writable_home_are_pinned() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("gh");
    t.plant_home(".config/gh/hosts.yml", &s);
    let o = Run::new(&t.home, &t.root).workspace(&t.home).sh("mv .config .c2 2>/dev/null && echo MOVED; cat .c2/gh/hosts.yml .config/gh/hosts.yml 2>/dev/null; true").run();
    o.assert_absent(&s);
    assert!(!t.home.join(".c2").exists(), "~/.config was renamed: {}", o.all());
    assert!(!o.out().contains("MOVED"), "{}", o.all());
    assert_eq!(read(&t.home.join(".config/gh/hosts.yml")).as_deref(), Some(s.as_str()));
}

/// A symlink planted in the workspace by an earlier call (`results` →
/// elsewhere) is not followed when the next call opens its `--json` or
/// `--audit-dir` directory: the call is refused (exit 2, nothing runs) with
/// an error naming the option, and nothing appears outside.
#[test]
fn json_and_audit_dir_never_follow_a_symlink_planted_by_an_earlier_call() {
    let _g = shared();
    let t = T::new();
    let out = outside(&t);
    let first = t.sc().sh(&format!("ln -s {} results && echo PLANTED", out.display())).run();
    assert!(first.out().contains("PLANTED"), "control: {}", first.all());
    let ran = t.ws.join("ran");
    for (opt, path) in [("--json", t.ws.join("results/out.json")), ("--audit-dir", t.ws.join("results/audit"))] {
        let o = t.sc().no_json().opt(opt).opt(path.as_os_str()).sh("echo ran > ran").run();
        assert!(entries(&out).is_empty(), "{opt}: the launcher wrote through a symlink planted earlier: {:?}", entries(&out));
        assert_eq!(o.code, 2, "{opt}: {}", o.all());
        assert!(o.err().contains(opt) && o.err().contains("symlink"), "{opt}: {}", o.err());
        assert!(!ran.exists(), "{opt}: the command ran");
    }
}
