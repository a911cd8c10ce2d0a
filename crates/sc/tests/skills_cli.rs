//! `sc skill`, `sc approve`, `sc grants`, `sc explain` end to end, each run
//! with the test's own HOME so the state directory (and its grants file) is
//! private to the test. Every claim is checked on disk or through a fresh
//! `sc` process: the grant file's mode, what a revocation leaves, that a
//! changed skill's grants no longer apply.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

fn state(t: &T) -> PathBuf {
    t.home.join(".local/state/sharkcage")
}

fn sc(t: &T, args: &[&str]) -> Output {
    Command::new(sc_bin())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &t.home)
        .current_dir(&t.root)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "status {:?}\nstdout:\n{}\nstderr:\n{}", o.status, out(o), err(o));
    out(o)
}

/// A skill directory `root/<name>` declaring network.external (two hosts)
/// and system.env (one variable), with a program `bin/run`.
fn make_skill(t: &T, name: &str) -> PathBuf {
    let d = t.root.join(name);
    std::fs::create_dir_all(d.join("bin")).unwrap();
    std::fs::write(
        d.join("sharkcage.json"),
        r#"{"version":1,"capabilities":[
            {"capability":"network.external","reason":"fetch forecasts","scope":["api.weather.example","cdn.weather.example"]},
            {"capability":"system.env","reason":"the API key","scope":["WEATHER_KEY"]}]}"#,
    )
    .unwrap();
    std::fs::write(d.join("bin/run"), "#!/bin/sh\necho forecast\n").unwrap();
    set_mode(&d.join("bin/run"), 0o755);
    d
}

fn program(t: &T, name: &str) -> String {
    state(t).join("skills").join(name).join("bin/run").display().to_string()
}

fn grants_json(t: &T) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(state(t).join("grants.json")).unwrap()).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn add_copies_hashes_and_shows_what_the_skill_asks_for() {
    let _g = shared();
    let t = T::new();
    let src = make_skill(&t, "weather");
    let o = ok(&sc(&t, &["skill", "add", src.to_str().unwrap()]));
    assert!(o.contains("identity  sha256:"), "{o}");
    assert!(o.contains("network.external") && o.contains("medium"), "{o}");
    assert!(o.contains("system.env") && o.contains("high"), "{o}");
    assert!(o.contains("api.weather.example"), "{o}");
    // A copy, not a link to the source.
    let copy = state(&t).join("skills/weather");
    assert_eq!(std::fs::read_to_string(copy.join("bin/run")).unwrap(), "#!/bin/sh\necho forecast\n");
    assert!(!std::fs::symlink_metadata(&copy).unwrap().file_type().is_symlink());
    assert_eq!(mode(&state(&t)), 0o700);
    assert_eq!(mode(&state(&t).join("grants.json")), 0o600);
    assert_eq!(grants_json(&t)["skills"]["weather"]["identity"].as_str().unwrap().len(), 7 + 64);

    let l = ok(&sc(&t, &["skill", "list"]));
    assert!(l.contains("weather") && l.contains(" ok "), "{l}");
    let s = ok(&sc(&t, &["skill", "show", "weather"]));
    assert!(s.contains("installed copy matches its pinned hash"), "{s}");
    assert!(s.contains("fetch forecasts") && s.contains("Decisions: none"), "{s}");
    assert!(!sc(&t, &["skill", "show", "nope"]).status.success());
}

#[test]
fn approve_list_revoke_and_explain() {
    let _g = shared();
    let t = T::new();
    let src = make_skill(&t, "weather");
    ok(&sc(&t, &["skill", "add", src.to_str().unwrap()]));
    let prog = program(&t, "weather");

    let e = ok(&sc(&t, &["explain", "--", &prog, "--city", "Oslo"]));
    assert!(e.contains("Skill: weather") && e.contains("nothing granted"), "{e}");

    let a = ok(&sc(&t, &["approve", "weather", "--yes"]));
    assert!(a.contains("Recorded allow-always"), "{a}");
    assert_eq!(mode(&state(&t).join("grants.json")), 0o600);
    let g = grants_json(&t);
    assert_eq!(g["version"], 1);
    assert_eq!(g["grants"].as_array().unwrap().len(), 2);
    assert_eq!(g["grants"][0]["by"], "cli");
    assert_eq!(g["grants"][0]["identity"], g["skills"]["weather"]["identity"]);

    let l = ok(&sc(&t, &["grants", "list"]));
    assert!(l.contains("allow-always") && l.contains("network.external") && l.contains("system.env"), "{l}");
    let e = ok(&sc(&t, &["explain", "--", &prog]));
    assert!(e.contains("everything it declares is granted"), "{e}");
    let b = ok(&sc(&t, &["explain", "--", "ls", "-la"]));
    assert!(b.contains("baseline") && b.contains("Why:"), "{b}");

    // Revoking one capability: the next call (a fresh process) lacks it.
    ok(&sc(&t, &["grants", "revoke", "weather", "--capability", "system.env"]));
    let e = ok(&sc(&t, &["explain", "--", &prog]));
    assert!(e.contains("not granted") && e.contains("system.env"), "{e}");
    assert!(!grants_json(&t)["grants"].to_string().contains("system.env"));
    // Nothing left to revoke is an error, not a silent success.
    assert!(!sc(&t, &["grants", "revoke", "weather", "--capability", "system.env"]).status.success());
    ok(&sc(&t, &["grants", "revoke", "weather"]));
    assert_eq!(grants_json(&t)["grants"].as_array().unwrap().len(), 0);
    let e = ok(&sc(&t, &["explain", "--", &prog]));
    assert!(e.contains("nothing granted"), "{e}");

    // Narrowed to one declared scope entry.
    ok(&sc(&t, &["approve", "weather", "--capability", "network.external", "--scope", "api.weather.example", "--yes"]));
    let g = grants_json(&t);
    assert_eq!(g["grants"].as_array().unwrap().len(), 1);
    assert_eq!(g["grants"][0]["scope"], serde_json::json!(["api.weather.example"]));
    let e = ok(&sc(&t, &["explain", "--", &prog]));
    assert!(e.contains("not granted") && e.contains("cdn.weather.example"), "{e}");

    // A denial is recorded as one.
    ok(&sc(&t, &["approve", "weather", "--capability", "system.env", "--deny", "--yes"]));
    let e = ok(&sc(&t, &["explain", "--", &prog]));
    assert!(e.contains("denied") && e.contains("system.env"), "{e}");

    // Every decision and revocation is in the audit log, which verifies.
    let log = ok(&sc(&t, &["audit"]));
    assert_eq!(log.matches("approval").count(), 5, "{log}");
    assert!(log.contains("revoke"), "{log}");
    ok(&sc(&t, &["audit", "verify"]));
}

#[test]
fn approve_refuses_what_is_not_declared_and_never_decides_unasked() {
    let _g = shared();
    let t = T::new();
    let src = make_skill(&t, "weather");
    ok(&sc(&t, &["skill", "add", src.to_str().unwrap()]));
    // No terminal and no --yes: nothing is decided.
    let o = sc(&t, &["approve", "weather"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("--yes"), "{}", err(&o));
    assert_eq!(grants_json(&t)["grants"].as_array().unwrap().len(), 0);
    for args in [
        vec!["approve", "weather", "--capability", "system.files.write", "--yes"],
        vec!["approve", "weather", "--capability", "network.external", "--scope", "evil.example.net", "--yes"],
        vec!["approve", "weather", "--capability", "no.such.thing", "--yes"],
        vec!["approve", "weather", "--scope", "api.weather.example", "--yes"],
        vec!["approve", "nosuchskill", "--yes"],
    ] {
        let o = sc(&t, &args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", out(&o));
        assert!(err(&o).starts_with("sc: "), "{args:?}: {}", err(&o));
    }
    assert_eq!(grants_json(&t)["grants"].as_array().unwrap().len(), 0);
}

#[test]
fn a_changed_skill_loses_its_grants() {
    let _g = shared();
    let t = T::new();
    let src = make_skill(&t, "weather");
    ok(&sc(&t, &["skill", "add", src.to_str().unwrap()]));
    ok(&sc(&t, &["approve", "weather", "--yes"]));
    let prog = program(&t, "weather");
    assert!(ok(&sc(&t, &["explain", "--", &prog])).contains("everything it declares is granted"));

    // The installed copy is changed behind sharkcage's back: baseline, and
    // it cannot be approved until it is added again.
    std::fs::write(state(&t).join("skills/weather/bin/run"), "#!/bin/sh\ncurl evil\n").unwrap();
    let e = ok(&sc(&t, &["explain", "--", &prog]));
    assert!(e.contains("Policy: baseline") && e.contains("changed"), "{e}");
    assert!(ok(&sc(&t, &["skill", "show", "weather"])).contains("CHANGED"));
    assert!(!sc(&t, &["approve", "weather", "--yes"]).status.success());

    // A new version added: the old grants stay recorded but cover nothing.
    std::fs::write(src.join("bin/run"), "#!/bin/sh\necho forecast v2\n").unwrap();
    let a = ok(&sc(&t, &["skill", "add", src.to_str().unwrap()]));
    assert!(a.contains("changed bin/run") && a.contains("no longer apply"), "{a}");
    let e = ok(&sc(&t, &["explain", "--", &prog]));
    assert!(e.contains("nothing granted") && e.contains("earlier version"), "{e}");
    assert!(ok(&sc(&t, &["grants", "list"])).contains("STALE"));
    // Approving again pins the new version and replaces the stale ones.
    ok(&sc(&t, &["approve", "weather", "--yes"]));
    let g = grants_json(&t);
    assert_eq!(g["grants"].as_array().unwrap().len(), 2);
    assert!(g["grants"].as_array().unwrap().iter().all(|r| r["identity"] == g["skills"]["weather"]["identity"]));
    assert!(ok(&sc(&t, &["explain", "--", &prog])).contains("everything it declares is granted"));
}

#[test]
fn add_refuses_symlinks_leaving_the_skill_and_unsupported_sources() {
    let _g = shared();
    let t = T::new();
    let src = make_skill(&t, "leaky");
    let secret = t.plant_home(".ssh/id_rsa", "SECRET");
    std::os::unix::fs::symlink(&secret, src.join("key")).unwrap();
    let o = sc(&t, &["skill", "add", src.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(err(&o).contains("symlink") && err(&o).contains("refused"), "{}", err(&o));
    assert!(!state(&t).join("skills/leaky").exists());
    let left: Vec<_> = std::fs::read_dir(state(&t).join("skills")).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // A symlink that stays inside is kept (as a symlink).
    std::fs::remove_file(src.join("key")).unwrap();
    std::os::unix::fs::symlink("bin/run", src.join("run")).unwrap();
    ok(&sc(&t, &["skill", "add", src.to_str().unwrap()]));
    assert_eq!(std::fs::read_link(state(&t).join("skills/leaky/run")).unwrap(), Path::new("bin/run"));
    // An unreachable URL or a missing tarball: an error, nothing left behind.
    for s in ["https://127.0.0.1:9/x/y.git", "missing-skill.tar.gz"] {
        let o = sc(&t, &["skill", "add", s]);
        assert!(!o.status.success(), "{s}: {}", out(&o));
        let left: Vec<_> = std::fs::read_dir(state(&t).join("skills")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with('.')).collect();
        assert!(left.is_empty(), "{s}: scratch left behind: {left:?}");
    }
    // A declaration that does not parse is refused; nothing installed.
    let bad = t.root.join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("sharkcage.json"), r#"{"version":1,"capabilities":[{"capability":"root.all","reason":"x"}]}"#).unwrap();
    let o = sc(&t, &["skill", "add", bad.to_str().unwrap()]);
    assert!(!o.status.success() && err(&o).contains("root.all"), "{}", err(&o));
    assert!(!state(&t).join("skills/bad").exists());
}

#[test]
fn a_corrupt_grants_file_is_an_error_never_a_grant() {
    let _g = shared();
    let t = T::new();
    let src = make_skill(&t, "weather");
    ok(&sc(&t, &["skill", "add", src.to_str().unwrap()]));
    ok(&sc(&t, &["approve", "weather", "--yes"]));
    let f = state(&t).join("grants.json");
    let mut text = std::fs::read_to_string(&f).unwrap();
    text.insert(text.len() - 2, ',');
    std::fs::write(&f, &text).unwrap();
    for args in [vec!["grants", "list"], vec!["skill", "list"], vec!["explain", "--", &program(&t, "weather")], vec!["approve", "weather", "--yes"]] {
        let o = sc(&t, &args);
        assert!(!o.status.success(), "{args:?}: {}", out(&o));
        assert!(err(&o).contains("grants.json:"), "{args:?}: {}", err(&o));
        assert!(!out(&o).contains("granted"), "{args:?}: {}", out(&o));
    }
    assert_eq!(std::fs::read_to_string(&f).unwrap(), text, "a failed command rewrote the file");
}

/// `sc config add-service|show|remove-service`: the credential comes from
/// the environment, is stored 0600 in the state directory, never printed;
/// bad input changes nothing; a sandbox cannot read the file.
#[test]
fn services_are_stored_privately_and_never_printed() {
    let _g = shared();
    let t = T::new();
    let secret = t.secret("ha-token");
    let add = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(sc_bin());
        c.args(args).env_clear().env("PATH", "/usr/bin:/bin").env("HOME", &t.home).current_dir(&t.root).stdin(Stdio::null());
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = add(&[("HA_TOKEN", &secret)], &["config", "add-service", "ha", "--family", "home", "--endpoint", "ha.lan:8123", "--credential", "HA_TOKEN"]);
    assert!(!format!("{}{}", out(&o), err(&o)).contains(&secret), "the credential was printed");
    ok(&o);
    let file = state(&t).join("services.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&file).unwrap().contains(&secret));
    let shown = ok(&sc(&t, &["config", "show"]));
    assert!(shown.contains("ha.lan:8123") && shown.contains("HA_TOKEN") && !shown.contains(&secret), "{shown}");
    let json = ok(&sc(&t, &["config", "show", "--json"]));
    assert!(!json.contains(&secret), "{json}");
    // A value is never taken from the command line; bad entries change nothing.
    let before = std::fs::read(&file).unwrap();
    let o = add(&[], &["config", "add-service", "x", "--family", "home", "--endpoint", "a.lan:1", "--credential", "NOT_SET"]);
    assert!(!o.status.success() && err(&o).contains("environment"), "{}", err(&o));
    let o = add(&[], &["config", "add-service", "x", "--family", "bogus", "--endpoint", "a.lan:1"]);
    assert!(!o.status.success() && err(&o).contains("bogus"), "{}", err(&o));
    let o = add(&[], &["config", "add-service", "x", "--family", "home", "--endpoint", "a.lan"]);
    assert!(!o.status.success() && err(&o).contains("endpoint"), "{}", err(&o));
    assert_eq!(std::fs::read(&file).unwrap(), before, "a refused change altered the file");
    // The sandbox cannot read it.
    let o = t.sh(&format!("cat {} || echo unreadable", file.display()));
    o.assert_absent(&secret);
    ok(&sc(&t, &["config", "remove-service", "ha"]));
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&secret));
    assert!(!sc(&t, &["config", "remove-service", "ha"]).status.success());
}


/// `sc skill add` from a tarball and from a git repository gives the same
/// installed skill (same identity) as from its directory; a tarball with a
/// symlink, an absolute or a `..` member is refused and writes nothing
/// outside; `sc skill remove` takes the copy and its decisions.
#[test]
fn add_from_tarball_and_git_and_remove() {
    let _g = shared();
    let t = T::new();
    let src = make_skill(&t, "weather");
    let dir_id = {
        ok(&sc(&t, &["skill", "add", src.to_str().unwrap()]));
        grants_json(&t)["skills"]["weather"]["identity"].as_str().unwrap().to_string()
    };
    ok(&sc(&t, &["skill", "remove", "weather"]));
    assert!(!state(&t).join("skills/weather").exists());
    // Tarball (gzip, one top-level directory, as `npm pack` makes them).
    let tgz = t.root.join("weather.tgz");
    let st = std::process::Command::new("tar").arg("-czf").arg(&tgz).arg("-C").arg(&t.root).arg("weather").status().unwrap();
    assert!(st.success());
    let o = ok(&sc(&t, &["skill", "add", tgz.to_str().unwrap()]));
    assert!(o.contains("weather.tgz"), "{o}");
    assert_eq!(grants_json(&t)["skills"]["weather"]["identity"].as_str().unwrap(), dir_id, "the tarball's skill differs from the directory's");
    ok(&sc(&t, &["approve", "weather", "--yes"]));
    let o = ok(&sc(&t, &["skill", "remove", "weather"]));
    assert!(o.contains("2 decision(s)"), "{o}");
    assert!(grants_json(&t)["grants"].as_array().unwrap().is_empty(), "decisions of a removed skill remain");
    assert!(!sc(&t, &["skill", "remove", "weather"]).status.success());
    // git (a local repository by its path ending in .git).
    let repo = t.root.join("weather-repo.git");
    let git = |args: &[&str], cwd: &Path| {
        let o = std::process::Command::new("git").args(args).current_dir(cwd).env("GIT_CONFIG_NOSYSTEM", "1").env("HOME", &t.home).output().unwrap();
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    git(&["init", "-q", "-b", "main"], &src);
    git(&["-c", "user.email=t@e", "-c", "user.name=t", "add", "-A"], &src);
    git(&["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "skill"], &src);
    git(&["clone", "-q", "--bare", src.to_str().unwrap(), repo.to_str().unwrap()], &t.root);
    std::fs::remove_dir_all(src.join(".git")).unwrap();
    ok(&sc(&t, &["skill", "add", repo.to_str().unwrap(), "--name", "weather"]));
    assert_eq!(grants_json(&t)["skills"]["weather"]["identity"].as_str().unwrap(), dir_id, "the cloned skill differs (or kept .git)");
    // Hostile tarballs: a symlink member, an absolute member, a `..` member.
    let evil = t.root.join("evil");
    for (name, build) in [
        ("link", "mkdir -p s && ln -s /etc/passwd s/link && tar -cf ../evil-link.tar s"),
        ("abs", "mkdir -p s && echo x > s/f && tar -cf ../evil-abs.tar -P --transform='s|^s/f|/tmp/sc-evil-abs|' s/f"),
        ("dotdot", "mkdir -p s && echo x > s/f && tar -cf ../evil-dotdot.tar --transform='s|^s/f|s/../../sc-evil-dotdot|' s/f"),
    ] {
        std::fs::create_dir_all(&evil).unwrap();
        let st = std::process::Command::new("sh").arg("-c").arg(build).current_dir(&evil).status().unwrap();
        assert!(st.success(), "{name}");
        let file = t.root.join(format!("evil-{name}.tar"));
        let o = sc(&t, &["skill", "add", file.to_str().unwrap(), "--name", "evil"]);
        assert!(!o.status.success(), "{name}: {}", out(&o));
        assert!(err(&o).contains("refused") || err(&o).contains("symlink"), "{name}: {}", err(&o));
        std::fs::remove_dir_all(&evil).unwrap();
    }
    assert!(!Path::new("/tmp/sc-evil-abs").exists() && !state(&t).join("sc-evil-dotdot").exists() && !t.root.join("sc-evil-dotdot").exists());
    assert!(!state(&t).join("skills/evil").exists());
}
