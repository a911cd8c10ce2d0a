//! `sc init` on real files: the config gains the sharkcage backend and keeps
//! everything else; a backup is made; a second run changes nothing; a file
//! that is not strict JSON is left byte-for-byte unchanged.

use std::path::Path;
use std::process::Command;

fn sc() -> Command {
    Command::new(std::env::var("SC_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sc").to_string()))
}

fn backups(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".bak-")).count()
}

#[test]
fn init_sets_backend_keeps_the_rest_and_is_idempotent() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("openclaw.json");
    std::fs::write(
        &cfg,
        r#"{"models":{"mode":"merge"},"agents":{"defaults":{"workspace":"/w","sandbox":{"mode":"off","prune":{"idleHours":2}}}},"plugins":{"entries":{"sharkcage":{"config":{"policy":{"env":["EDITOR"]}}},"other":{"enabled":false}}},"gateway":{"auth":{"token":"keep-me"}}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = sc().arg("init").arg("--config").arg(&cfg).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let sb = &v["agents"]["defaults"]["sandbox"];
    assert_eq!(sb["backend"], "sharkcage");
    assert_eq!(sb["mode"], "all");
    assert_eq!(sb["scope"], "session");
    assert_eq!(sb["workspaceAccess"], "rw");
    assert_eq!(sb["prune"]["idleHours"], 2, "other sandbox keys kept");
    assert_eq!(v["agents"]["defaults"]["workspace"], "/w");
    assert_eq!(v["plugins"]["entries"]["sharkcage"]["enabled"], true);
    assert_eq!(v["plugins"]["entries"]["sharkcage"]["config"]["policy"]["env"][0], "EDITOR", "plugin config kept");
    assert_eq!(v["plugins"]["entries"]["other"]["enabled"], false);
    assert_eq!(v["gateway"]["auth"]["token"], "keep-me");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777, 0o600, "file mode kept");
    assert_eq!(backups(d.path()), 1);
    // Idempotent: nothing written the second time.
    let before = std::fs::read(&cfg).unwrap();
    let o = sc().arg("init").arg("--config").arg(&cfg).output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing changed"));
    assert_eq!(std::fs::read(&cfg).unwrap(), before);
    assert_eq!(backups(d.path()), 1);
}

#[test]
fn init_refuses_what_it_cannot_rewrite_faithfully() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("openclaw.json");
    let json5 = "{\n  // a comment\n  agents: {},\n}\n";
    std::fs::write(&cfg, json5).unwrap();
    let o = sc().arg("init").arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("openclaw.json:2:"), "names file and position: {err}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), json5, "left unchanged");
    assert_eq!(backups(d.path()), 0);
    // Bad option values and a missing file are errors too.
    let o = sc().args(["init", "--workspace-access", "all"]).arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = sc().arg("init").arg("--config").arg(d.path().join("missing.json")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn init_turns_code_mode_off_unless_set_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("openclaw.json");
    std::fs::write(&cfg, r#"{"agents":{}}"#).unwrap();
    let o = sc().arg("init").arg("--config").arg(&cfg).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("tools.codeMode: false"), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(v["tools"]["codeMode"], false);
    // An explicit setting is kept, and the consequence is reported.
    std::fs::write(&cfg, r#"{"tools":{"codeMode":true}}"#).unwrap();
    let o = sc().arg("init").arg("--config").arg(&cfg).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("refuses Code Mode"), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(v["tools"]["codeMode"], true);
}

#[test]
fn init_lets_sandboxed_sessions_see_the_skill_dispatcher_once() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("openclaw.json");
    std::fs::write(&cfg, r#"{"tools":{"sandbox":{"tools":{"alsoAllow":["browser"]}}}}"#).unwrap();
    for _ in 0..2 {
        let o = sc().arg("init").arg("--config").arg(&cfg).output().unwrap();
        assert!(o.status.success(), "{o:?}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(v["tools"]["sandbox"]["tools"]["alsoAllow"], serde_json::json!(["browser", "sharkcage_run"]));
}

#[test]
fn init_updates_a_symlinked_config_at_its_target_and_keeps_the_link() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let real_dir = d.path().join("dotfiles");
    std::fs::create_dir(&real_dir).unwrap();
    let target = real_dir.join("openclaw.json");
    std::fs::write(&target, r#"{"gateway":{"auth":{"token":"T0KEN"}}}"#).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = d.path().join("openclaw.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = sc().arg("init").arg("--config").arg(&link).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the symlink was replaced by a file");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(v["agents"]["defaults"]["sandbox"]["backend"], "sharkcage", "the target was not updated");
    assert_eq!(v["gateway"]["auth"]["token"], "T0KEN");
    // The backup is beside the target, and only its owner can read it (it holds the token).
    let baks: Vec<_> = std::fs::read_dir(&real_dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".bak-")).collect();
    assert_eq!(baks.len(), 1);
    assert_eq!(baks[0].metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o644, "the config keeps its mode");
}

#[test]
fn concurrent_inits_serialise_and_keep_at_most_three_backups() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("openclaw.json");
    std::fs::write(&cfg, r#"{"gateway":{"auth":{"token":"T0KEN"}}}"#).unwrap();
    let kids: Vec<_> = (0..8)
        .map(|i| {
            sc().arg("init").arg("--config").arg(&cfg).args(["--mode", if i % 2 == 0 { "all" } else { "non-main" }]).arg("--scope").arg(["session", "agent", "shared"][i % 3]).spawn().unwrap()
        })
        .collect();
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).expect("the config is valid JSON after concurrent runs");
    assert_eq!(v["agents"]["defaults"]["sandbox"]["backend"], "sharkcage");
    assert_eq!(v["gateway"]["auth"]["token"], "T0KEN");
    assert!(backups(d.path()) <= 3, "{} backups", backups(d.path()));
    assert!(backups(d.path()) >= 1);
}
