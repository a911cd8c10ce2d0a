//! Black-box tests of the `sc` launcher: every test runs the real binary and
//! judges what happened *on the host* (files, processes, listeners, the
//! launcher's own output), never only the sandboxed command's exit code.
//!
//! They pass as root and as an unprivileged user. See `common/mod.rs` for
//! where the per-test directories live and why.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

// =============================================================================
// Secret files
// =============================================================================

#[test]
fn ssh_key_is_hidden() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("ssh");
    let key = t.plant_home(".ssh/id_rsa", &s);
    t.plant_home(".ssh/config", &s);
    let o = t.sh("cat ~/notes.txt; cat ~/.ssh/id_rsa; cat ~/.ssh/config; ls -la ~/.ssh; grep -r SCSECRET ~ 2>&1");
    assert!(o.out().contains(&t.notes), "control: fake HOME must be visible inside: {}", o.all());
    o.assert_absent(&s);
    assert!(!o.out().contains("id_rsa"), "names inside ~/.ssh visible: {}", o.out());
    assert_eq!(read(&key).as_deref(), Some(s.as_str()));
}

#[test]
fn aws_credentials_are_hidden() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("aws");
    let f = t.plant_home(".aws/credentials", &format!("[default]\naws_secret_access_key = {s}\n"));
    let o = t.sh("cat ~/notes.txt; cat ~/.aws/credentials; cat $HOME/.aws/*; echo x > ~/.aws/credentials");
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
    assert!(read(&f).unwrap().contains(&s), "host credentials changed");
}

#[test]
fn netrc_file_is_hidden_and_unchanged() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("netrc");
    let f = t.plant_home(".netrc", &format!("machine example.com login me password {s}\n"));
    let o = t.sh("cat ~/notes.txt; cat ~/.netrc; head -c 100 < ~/.netrc; echo evil >> ~/.netrc; rm -f ~/.netrc; mv ~/.netrc ~/n2; chmod 644 ~/.netrc; cat ~/.netrc");
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
    assert_eq!(read(&f).unwrap(), format!("machine example.com login me password {s}\n"));
    assert!(!t.home.join("n2").exists());
}

#[test]
fn every_mandatory_home_secret_is_hidden() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("many");
    let files = [
        ".ssh/id_ed25519",
        ".aws/config",
        ".gnupg/private-keys-v1.d/k.key",
        ".config/gcloud/credentials.db",
        ".azure/accessTokens.json",
        ".kube/config",
        ".docker/config.json",
        ".npmrc",
        ".pypirc",
        ".git-credentials",
        ".config/gh/hosts.yml",
        ".config/op/config",
        ".password-store/x.gpg",
        ".local/share/keyrings/login.keyring",
        ".openclaw/openclaw.json",
        ".bash_history",
        ".zsh_history",
        ".cargo/credentials.toml",
        ".gem/credentials",
        ".pgpass",
        ".my.cnf",
        ".vault-token",
        ".terraform.d/credentials.tfrc.json",
        ".s3cfg",
        ".config/rclone/rclone.conf",
        ".config/composer/auth.json",
        ".config/glab-cli/config.yml",
        ".config/doctl/config.yaml",
        ".fly/config.yml",
        ".psql_history",
        ".python_history",
    ];
    for f in files {
        t.plant_home(f, &format!("{s} {f}"));
    }
    let script = format!("cat ~/notes.txt; for f in {}; do cat \"$HOME/$f\"; done; grep -rsa SCSECRET ~; true", files.join(" "));
    let o = t.sh(&script);
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
    for f in files {
        assert_eq!(read(&t.home.join(f)).unwrap(), format!("{s} {f}"));
    }
}

#[test]
fn openclaw_state_is_hidden() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("openclaw1");
    let cfg = t.plant_home(".openclaw/openclaw.json", &format!("{{\"token\":\"{s}\"}}"));
    t.plant_home(".openclaw/agents/main/auth.json", &s);
    let o = t.sh("cat ~/notes.txt; cat ~/.openclaw/openclaw.json ~/.openclaw/agents/main/auth.json; ls -R ~/.openclaw; grep -rsa SCSECRET ~");
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
    assert!(!o.out().contains("auth.json"), "{}", o.out());
    assert!(read(&cfg).unwrap().contains(&s));
}

#[test]
fn openclaw_state_hidden_but_its_workspace_is_writable() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("openclaw");
    let cfg = t.plant_home(".openclaw/openclaw.json", &format!("{{\"token\":\"{s}\"}}"));
    t.plant_home(".openclaw/agents/main/auth.json", &s);
    let ocws = t.home.join(".openclaw/workspace");
    std::fs::create_dir_all(&ocws).unwrap();
    std::fs::write(ocws.join("input.txt"), "INPUT-OK").unwrap();
    let o = Run::new(&t.home, &t.root)
        .workspace(&ocws)
        .sh("cat input.txt; echo written > out.txt; pwd; cat ../openclaw.json; cat ~/.openclaw/openclaw.json; cat ../agents/main/auth.json; ls -la ..; cat /proc/self/cwd/../openclaw.json; true")
        .run();
    o.assert_ok();
    assert!(o.out().contains("INPUT-OK"), "workspace not readable: {}", o.all());
    assert_eq!(read(&ocws.join("out.txt")).as_deref(), Some("written\n"), "workspace write not visible on the host");
    o.assert_absent(&s);
    assert!(read(&cfg).unwrap().contains(&s));
}

#[test]
fn deny_read_flag_hides_a_directory() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("denyflag");
    let private = t.root.join("private");
    plant(&private.join("key.pem"), &s);
    plant(&private.join("sub/deeper.txt"), &s);
    plant(&t.root.join("public/readme"), "PUBLIC-OK");
    let o = t
        .sc()
        .opt("--deny-read")
        .opt(private.as_os_str())
        .sh(&format!("cat {0}/public/readme; cat {0}/private/key.pem {0}/private/sub/deeper.txt; ls -R {0}/private; grep -rsa SCSECRET {0}", t.root.display()))
        .run();
    assert!(o.out().contains("PUBLIC-OK"), "control: {}", o.all());
    o.assert_absent(&s);
    assert!(!o.out().contains("key.pem"), "hidden names listed: {}", o.out());
}

#[test]
fn policy_deny_read_glob_hides_matches() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("glob");
    let proj = t.root.join("proj");
    plant(&proj.join("a.env"), &s);
    plant(&proj.join("b.env"), &s);
    plant(&proj.join("readme.md"), "README-OK");
    t.plant_home("keys/x.key", &s);
    t.plant_home("keys/list.txt", "LIST-OK");
    let pol = serde_json::json!({"filesystem": {"denyRead": [format!("{}/*.env", proj.display()), "~/keys/*.key"]}}).to_string();
    let o = t
        .sc()
        .policy(&pol)
        .sh(&format!("cat {0}/readme.md ~/keys/list.txt; cat {0}/a.env {0}/b.env ~/keys/x.key; grep -rsa SCSECRET {0} ~/keys", proj.display()))
        .run();
    assert!(o.out().contains("README-OK") && o.out().contains("LIST-OK"), "control: {}", o.all());
    o.assert_absent(&s);
}

#[test]
fn allow_read_inside_deny_read_is_visible() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("allowread");
    t.plant_home("d/secret.txt", &s);
    t.plant_home("d/pub/f", "PUBLIC-OK");
    let o = t.sc().policy(r#"{"filesystem":{"denyRead":["~/d"],"allowRead":["~/d/pub"]}}"#).sh("cat ~/d/pub/f; cat ~/d/secret.txt").run();
    assert!(o.out().contains("PUBLIC-OK"), "allowRead path not readable: {}", o.all());
    o.assert_absent(&s);
}

#[test]
fn secrets_hidden_when_home_is_reached_through_a_symlink() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("homelink");
    t.plant_home(".ssh/id_rsa", &s);
    let link = t.root.join("homelink");
    std::os::unix::fs::symlink(&t.home, &link).unwrap();
    let o = Run::new(&link, &t.root)
        .workspace(&t.ws)
        .sh(&format!("cat ~/notes.txt; cat ~/.ssh/id_rsa; cat {}/.ssh/id_rsa", t.home.display()))
        .run();
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
}

// =============================================================================
// Tricks to reach a secret
// =============================================================================

#[test]
fn symlink_in_workspace_does_not_reach_secret() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("symlink");
    let key = t.plant_home(".ssh/id_rsa", &s);
    // One planted by a malicious repository before the call, one made inside.
    std::os::unix::fs::symlink(&key, t.ws.join("planted")).unwrap();
    std::os::unix::fs::symlink(t.home.join(".ssh"), t.ws.join("planted_dir")).unwrap();
    let o = t.sh(&format!("cat planted; cat planted_dir/id_rsa; ln -s {} mine; cat mine; cp -L planted copy; cat copy", key.display()));
    o.assert_absent(&s);
    // `mine` is a symlink on the host (harmless there); `copy` must not hold the secret.
    if let Ok(m) = std::fs::symlink_metadata(t.ws.join("copy")) {
        assert!(m.file_type().is_file());
        assert!(!read(&t.ws.join("copy")).unwrap().contains(&s), "copy on the host holds the secret");
    }
}

#[test]
fn hard_link_of_secret_from_inside_fails() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("hardlink");
    t.plant_home(".ssh/id_rsa", &s);
    t.plant_home(".netrc", &s);
    let o = t.sh("ln ~/.ssh/id_rsa hl1; ln ~/.netrc hl2; ln -P ~/.netrc hl3; cat hl1 hl2 hl3");
    o.assert_absent(&s);
    for f in ["hl1", "hl2", "hl3"] {
        assert!(std::fs::symlink_metadata(t.ws.join(f)).is_err(), "{f} was created on the host");
    }
}

#[test]
fn proc_root_paths_do_not_reach_secret() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("procroot");
    let key = t.plant_home(".ssh/id_rsa", &s);
    let k = key.display();
    let o = t.sh(&format!(
        "cat /proc/self/root{k}; cat /proc/1/root{k}; cat /proc/$$/root{k}; cat /proc/1/cwd/../home/.ssh/id_rsa; ls /proc/1/root/ >/dev/null; cat /proc/self/root{}/notes.txt",
        t.home.display()
    ));
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
}

#[test]
fn dotdot_traversal_from_workspace() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("dotdot");
    t.plant_home(".ssh/id_rsa", &s);
    t.plant_home(".aws/credentials", &s);
    // Workspace inside HOME, as for a project checkout.
    let proj = t.home.join("src/proj");
    std::fs::create_dir_all(&proj).unwrap();
    let o = Run::new(&t.home, &t.root)
        .workspace(&proj)
        .sh("cat ../../notes.txt; cat ../../.ssh/id_rsa; cat ../../.aws/credentials; cat ./../../.ssh/../.ssh/id_rsa; cd ../..; cat .ssh/id_rsa; cat ../home/.ssh/id_rsa")
        .run();
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
    let o = t.sh("cat ../home/notes.txt; cat ../home/.ssh/id_rsa ../home/.aws/credentials");
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
}

#[test]
fn find_from_root_does_not_reveal_secret() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("find");
    let key = t.plant_home(".ssh/id_rsa", &s);
    t.plant_home("visible_id_rsa_dir/id_rsa", "NOT-A-SECRET");
    let o = t.sh("find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name id_rsa -print 2>/dev/null; find ~ -type f -exec cat {} + 2>/dev/null");
    assert!(o.out().contains("visible_id_rsa_dir/id_rsa"), "control: find should list the visible decoy: {}", o.all());
    assert!(!o.out().contains(&key.display().to_string()), "find lists the hidden key: {}", o.out());
    o.assert_absent(&s);
}

// =============================================================================
// Writes outside the writable roots
// =============================================================================

#[test]
fn write_to_home_fails() {
    let _g = shared();
    let t = T::new();
    let notes = t.home.join("notes.txt");
    let o = t.sh("cat ~/notes.txt; echo evil > ~/x; mkdir ~/d; echo evil >> ~/notes.txt; touch ~/notes.txt; rm ~/notes.txt; mv ~/notes.txt ~/n2; ln -s /etc ~/l");
    for p in ["x", "d", "n2", "l"] {
        assert!(t.home.join(p).symlink_metadata().is_err(), "~/{p} was created on the host: {}", o.all());
    }
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    assert_eq!(read(&notes).unwrap(), t.notes);
}

#[test]
fn write_outside_workspace_fails() {
    let _g = shared();
    let t = T::new();
    let other = t.root.join("other");
    std::fs::create_dir(&other).unwrap();
    let o = t.sh(&format!("ls -d {0} && echo OTHER-VISIBLE; echo x > {0}/x; echo x > ../other/y; mkdir ../other/z; echo x > ../sibling; cp /etc/hostname {0}/", other.display()));
    assert!(o.out().contains("OTHER-VISIBLE"), "control: {}", o.all());
    for p in ["other/x", "other/y", "other/z", "sibling", "other/hostname"] {
        assert!(!t.root.join(p).exists(), "{p} created outside the workspace: {}", o.all());
    }
}

#[test]
fn host_tmp_shm_and_var_tmp_are_private() {
    let _g = shared();
    let t = T::new();
    let name = format!("sc-test-private-{}", t.id);
    let s = t.secret("shm");
    // Host-side files the sandbox must not see (a POSIX shm object too).
    let host_shm = Path::new("/dev/shm").join(format!("{name}-host"));
    let shm_ok = std::fs::write(&host_shm, &s).is_ok();
    let o = t.sh(&format!(
        "echo PRIVATE-OK > /tmp/{name}; echo x > /var/tmp/{name}; echo x > /dev/shm/{name}; cat /tmp/{name}; cat /dev/shm/{name}-host; ls /dev/shm"
    ));
    let _ = std::fs::remove_file(&host_shm);
    assert!(o.out().contains("PRIVATE-OK"), "control: the private /tmp is writable inside: {}", o.all());
    for d in ["/tmp", "/var/tmp", "/dev/shm"] {
        let p = Path::new(d).join(&name);
        let existed = p.exists();
        let _ = std::fs::remove_file(&p);
        assert!(!existed, "{} appeared on the host", p.display());
    }
    if shm_ok {
        o.assert_absent(&s);
    }
}

#[test]
fn read_only_dir_outside_workspace_stays_unchanged() {
    let _g = shared();
    let t = T::new();
    let etc = t.root.join("etc");
    plant(&etc.join("passwd"), "root:x:0:0::/root:/bin/sh\n");
    plant(&etc.join("sub/conf"), "CONF\n");
    let o = t.sh(&format!(
        "cd {}; echo evil >> passwd; true > passwd; rm -f passwd; mv passwd p2; chmod 777 passwd; touch -d 2000-01-01 passwd; rm -rf sub; ln -s x y; mkdir z; cat passwd",
        etc.display()
    ));
    assert!(o.out().contains("root:x:0:0"), "control: {}", o.all());
    assert_eq!(read(&etc.join("passwd")).unwrap(), "root:x:0:0::/root:/bin/sh\n");
    assert_eq!(read(&etc.join("sub/conf")).unwrap(), "CONF\n");
    let mut names: Vec<_> = std::fs::read_dir(&etc).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["passwd", "sub"]);
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(std::fs::metadata(etc.join("passwd")).unwrap().permissions().mode() & 0o777, 0o777);
}

// =============================================================================
// Protected paths inside the workspace
// =============================================================================

fn plant_protected(t: &T) -> Vec<(&'static str, String)> {
    let files = [".bashrc", ".git/config", ".git/hooks/pre-commit", ".vscode/settings.json", "sub/.mcp.json"];
    files
        .iter()
        .map(|f| {
            let c = format!("ORIGINAL {f} {}", t.id);
            t.plant_ws(f, &c);
            (*f, c)
        })
        .collect()
}

#[track_caller]
fn assert_protected_intact(t: &T, orig: &[(&str, String)], o: &Out) {
    for (f, c) in orig {
        assert_eq!(read(&t.ws.join(f)).as_deref(), Some(c.as_str()), "{f} changed on the host; output:\n{}", o.all());
    }
}

#[test]
fn protected_files_resist_append_rm_mv() {
    let _g = shared();
    let t = T::new();
    let orig = plant_protected(&t);
    let mut script = String::from("echo normal > normal.txt; ");
    for (f, _) in &orig {
        script.push_str(&format!(
            "echo evil >> {f}; echo evil > {f}; true > {f}; truncate -s 0 {f}; rm -f {f}; rm -rf {f}; mv {f} {f}.moved; echo evil > t.tmp; mv -f t.tmp {f}; ln -sf /dev/null {f}; "
        ));
    }
    script.push_str("rm -rf .vscode .git/hooks; mv .vscode v2; chmod 000 .bashrc; echo ok > done");
    let o = t.sh(&script);
    assert_eq!(read(&t.ws.join("normal.txt")).as_deref(), Some("normal\n"), "control: workspace writable: {}", o.all());
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: script ran to the end: {}", o.all());
    assert_protected_intact(&t, &orig, &o);
    assert!(!t.ws.join("v2").exists());
    assert!(std::fs::metadata(t.ws.join(".bashrc")).unwrap().mode() & 0o400 != 0, ".bashrc permissions changed");
}

#[test]
fn protected_git_rename_trick() {
    let _g = shared();
    let t = T::new();
    let orig = plant_protected(&t);
    let o = t.sh("mv .git .git2; mkdir -p .git/hooks; echo x > .git/hooks/pre-commit; echo '[core] hooksPath=/tmp' > .git/config; \
                  mv .git/hooks .git/h2; mkdir .git/hooks; echo x > .git/hooks/pre-commit; echo ok > done");
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert_protected_intact(&t, &orig, &o);
    assert!(!t.ws.join(".git2").exists(), ".git was renamed on the host");
    assert!(!t.ws.join(".git/h2").exists(), ".git/hooks was renamed on the host");
}

#[test]
fn protected_parent_rename_trick() {
    let _g = shared();
    let t = T::new();
    let orig = plant_protected(&t);
    let o = t.sh("mv sub sub2; mkdir -p sub; echo evil > sub/.mcp.json; cp -r sub sub3; rm -rf sub; mkdir sub; echo evil > sub/.mcp.json; echo ok > done");
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert_protected_intact(&t, &orig, &o);
    assert!(!t.ws.join("sub2").exists(), "sub was renamed on the host");
}

/// Protected names that do not exist before the call: sharkcage moves what
/// the sandbox created there aside after the call (quarantine).
#[test]
fn protected_names_created_during_the_call() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("echo evil > .bashrc; mkdir -p .git/hooks; echo evil > .git/hooks/pre-commit; echo evil > .git/config; \
                  mkdir -p .vscode sub; echo evil > .vscode/settings.json; echo evil > sub/.mcp.json; echo ok > done");
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    for f in [".bashrc", ".git/hooks/pre-commit", ".git/config", ".vscode/settings.json", "sub/.mcp.json"] {
        assert!(!t.ws.join(f).exists(), "{f} was created on the host by the sandboxed command");
    }
}

#[test]
fn protected_name_created_before_a_timeout_is_moved_aside() {
    let _g = shared();
    let t = T::new();
    let arg = unique_sleep(63);
    let o = t.sc().opt("--timeout").opt("1").sh(&format!("echo evil > .bashrc; mkdir -p .git/hooks; echo evil > .git/hooks/pre-commit; sleep {arg}")).run();
    kill_all(&pids_with_argv(&["sleep", &arg]));
    assert_eq!(o.code, 124, "{}", o.all());
    assert!(!t.ws.join(".bashrc").exists(), ".bashrc written before the timeout is on the host");
    assert!(!t.ws.join(".git/hooks/pre-commit").exists(), "hook written before the timeout is on the host");
    assert!(o.j()["violations"].to_string().contains("protected-path"), "{}", o.j());
}

#[test]
fn git_symlink_to_sandbox_made_repo_is_not_left_behind() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("mkdir -p gd/hooks gd/objects gd/refs; echo 'ref: refs/heads/main' > gd/HEAD; printf '#!/bin/sh\\necho PWNED\\n' > gd/hooks/pre-commit; \
                  chmod +x gd/hooks/pre-commit; ln -s gd .git; echo ok > done");
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert!(!t.ws.join(".git/hooks/pre-commit").exists(), "a hook planted through a .git symlink is reachable at ws/.git/hooks/pre-commit on the host");
}

#[test]
fn claude_symlink_commands_are_not_left_behind() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("mkdir -p cd/commands; echo evil > cd/commands/x.md; ln -s cd .claude; echo ok > done");
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert!(!t.ws.join(".claude/commands/x.md").exists(), "ws/.claude/commands/x.md reachable on the host");
}

#[test]
fn dangling_symlink_at_protected_name_is_not_left_behind() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("ln -s nothere .bashrc; ln -s /nonexistent-sc-target .profile; echo ok > done");
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    for f in [".bashrc", ".profile"] {
        assert!(std::fs::symlink_metadata(t.ws.join(f)).is_err(), "{f} (symlink) left at a protected name on the host");
    }
}

#[test]
fn git_commondir_cannot_redirect_hooks() {
    let _g = shared();
    let t = T::new();
    let orig = plant_protected(&t);
    std::fs::write(t.ws.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::create_dir_all(t.ws.join(".git/objects")).unwrap();
    std::fs::create_dir_all(t.ws.join(".git/refs")).unwrap();
    let o = t.sh("mkdir -p .gc/hooks; cp -r .git/objects .git/refs .git/HEAD .gc/; printf '[core]\\n\\trepositoryformatversion = 0\\n' > .gc/config; \
                  printf '#!/bin/sh\\necho PWNED\\n' > .gc/hooks/pre-commit; chmod +x .gc/hooks/pre-commit; echo ../.gc > .git/commondir; echo ok > done");
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert_protected_intact(&t, &orig, &o);
    // Wherever host git now takes its hooks from, the planted hook is not there.
    let git = which("git").expect("git is needed for this test");
    let out = std::process::Command::new(&git)
        .args(["rev-parse", "--path-format=absolute", "--git-path", "hooks"])
        .current_dir(&t.ws)
        .env_clear()
        .env("HOME", &t.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CEILING_DIRECTORIES", &t.root)
        .output()
        .unwrap();
    let hooks = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let hook = read(&hooks.join("pre-commit")).unwrap_or_default();
    assert!(!hook.contains("PWNED"), "host git takes hooks from {} and the planted hook is there; {}", hooks.display(), o.all());
    assert!(o.j()["violations"].to_string().contains(".gc/hooks"), "the planted hooks directory is not reported: {}", o.all());
}

#[test]
fn after_call_check_never_renames_outside_writable_roots() {
    let _g = shared();
    let t = T::new();
    let outside = t.root.join("outside");
    plant(&outside.join("gh/hosts.yml"), "KEEP");
    plant(&outside.join("systemd/user/x.service"), "KEEP");
    // Workspace = HOME (no ~/.config yet): the sandbox points ~/.config elsewhere.
    let o = Run::new(&t.home, &t.root).workspace(&t.home).sh(&format!("ln -s {} .config; echo ok > done", outside.display())).run();
    assert_eq!(read(&t.home.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert_eq!(read(&outside.join("gh/hosts.yml")).as_deref(), Some("KEEP"), "the launcher moved {} aside: {}", outside.join("gh").display(), o.all());
    assert_eq!(read(&outside.join("systemd/user/x.service")).as_deref(), Some("KEEP"), "{}", o.all());
}

#[test]
fn protected_name_not_left_when_launcher_is_killed() {
    let _g = shared();
    let t = T::new();
    let arg = unique_sleep(64);
    let (child, json) = t.sc().sh(&format!("echo evil > .bashrc; sleep {arg}")).spawn();
    let pid = child.id();
    assert!(wait_until(Duration::from_secs(5), || !pids_with_argv(&["sleep", &arg]).is_empty()), "control");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = wait(child, json, Instant::now());
    wait_until(Duration::from_secs(3), || pids_with_argv(&["sleep", &arg]).is_empty());
    kill_all(&pids_with_argv(&["sleep", &arg]));
    // The killed launcher could not check; its journal entry lets the next
    // call (any call by the same user) finish the check.
    let o = t.sc().sh("true").run();
    remove_leaked_cgroups(pid);
    assert!(!t.ws.join(".bashrc").exists(), ".bashrc created inside is on the host after the launcher was killed and another call ran: {}", o.all());
    assert!(o.all().contains("recovered from an interrupted call") || o.j()["violations"].to_string().contains("recovered"), "{}", o.all());
}

#[test]
fn workspace_is_home_secrets_stay_hidden_and_unwritable() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("wshome");
    t.plant_home(".ssh/id_rsa", &s);
    t.plant_home(".netrc", &s);
    let o = Run::new(&t.home, &t.root)
        .workspace(&t.home)
        .sh("cat notes.txt; cat .ssh/id_rsa .netrc; echo 'ssh-ed25519 AAAA evil' >> .ssh/authorized_keys; mv .ssh s2; rm -rf .ssh .netrc; \
             mkdir -p .aws; echo evil > .aws/credentials; mkdir -p .config/gh; echo evil > .config/gh/hosts.yml; echo ok > done")
        .run();
    assert_eq!(read(&t.home.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
    assert_eq!(read(&t.home.join(".ssh/id_rsa")).as_deref(), Some(s.as_str()));
    assert_eq!(read(&t.home.join(".netrc")).as_deref(), Some(s.as_str()));
    assert!(!t.home.join(".ssh/authorized_keys").exists(), "authorized_keys written on the host");
    assert!(!t.home.join("s2").exists());
    assert!(!t.home.join(".aws/credentials").exists(), "~/.aws/credentials written on the host");
    assert!(!t.home.join(".config/gh/hosts.yml").exists(), "~/.config/gh written on the host");
}

#[test]
fn setuid_bits_cannot_be_set() {
    let _g = shared();
    let t = T::new();
    // A tar made on the host with a set-id file in it.
    let src = t.root.join("suid-src");
    std::fs::create_dir(&src).unwrap();
    std::fs::copy("/bin/true", src.join("suid")).unwrap();
    set_mode(&src.join("suid"), 0o6755);
    let tar_ok = std::process::Command::new("tar").arg("-cf").arg(t.ws.join("a.tar")).arg("-C").arg(&src).arg("suid").status().map(|s| s.success()).unwrap_or(false);
    let o = t.sh("cp /bin/sh s1; chmod 4755 s1; chmod u+s s1; chmod g+s s1; install -m 4755 /bin/sh s2; tar -xpf a.tar; \
                  cp -p /usr/bin/passwd s3; perl -e 'chmod(04755, q(s1))'; mkdir -m 2755 d1; mkdir d2; chmod g+s d2; echo ok > done");
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert!(t.ws.join("s1").exists(), "control: {}", o.all());
    if tar_ok {
        assert!(t.ws.join("suid").exists(), "control: tar extracted nothing: {}", o.all());
    }
    for e in std::fs::read_dir(&t.ws).unwrap().flatten() {
        let m = e.metadata().unwrap().mode();
        assert_eq!(m & 0o6000, 0, "{} has mode {:o} on the host", e.path().display(), m);
    }
}

// =============================================================================
// Kernel interfaces
// =============================================================================

#[test]
fn proc_sys_writes_fail_and_host_values_unchanged() {
    let _g = shared();
    let t = T::new();
    let host_name = read(Path::new("/proc/sys/kernel/hostname")).unwrap();
    let swappiness = read(Path::new("/proc/sys/vm/swappiness"));
    let other_swap = match swappiness.as_deref().map(str::trim) {
        Some("37") => "38",
        _ => "37",
    };
    let o = t.sh(&format!(
        "echo evil-{0} > /proc/sys/kernel/hostname && echo W1; echo 1 > /proc/sys/vm/drop_caches && echo W2; echo {other_swap} > /proc/sys/vm/swappiness && echo W3; hostname evil2-{0} && echo W4; cat /proc/sys/kernel/hostname",
        t.id
    ));
    let now_swap = read(Path::new("/proc/sys/vm/swappiness"));
    if now_swap != swappiness {
        // Restore before failing.
        let _ = std::fs::write("/proc/sys/vm/swappiness", swappiness.clone().unwrap_or_default());
    }
    assert_eq!(read(Path::new("/proc/sys/kernel/hostname")).unwrap(), host_name, "host name changed");
    assert_eq!(now_swap, swappiness, "vm.swappiness changed on the host");
    for w in ["W1", "W2", "W3", "W4"] {
        assert!(!o.out().contains(w), "write {w} succeeded: {}", o.all());
    }
    assert!(o.out().contains("sharkcage"), "control: /proc/sys readable inside: {}", o.all());
}

#[test]
fn sysrq_sys_and_cgroupfs_not_writable() {
    let _g = shared();
    let t = T::new();
    let cg = format!("sc-evil-{}", t.id);
    let cg_dirs: Vec<_> = ["pids", "memory", "unified", ""]
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c).join(&cg))
        .collect();
    // 'h' only prints help to the kernel log, should the write ever succeed.
    let o = t.sh(&format!(
        "echo h > /proc/sysrq-trigger && echo W1; echo 0 > /sys/kernel/mm/ksm/run && echo W2; echo > /sys/kernel/uevent_helper && echo W3; {}",
        cg_dirs.iter().map(|d| format!("mkdir {} && echo W4;", d.display())).collect::<String>()
    ));
    for d in &cg_dirs {
        let existed = d.exists();
        let _ = std::fs::remove_dir(d);
        assert!(!existed, "{} was created on the host", d.display());
    }
    for w in ["W1", "W2", "W3", "W4"] {
        assert!(!o.out().contains(w), "write {w} succeeded: {}", o.all());
    }
}

#[test]
fn kcore_keys_kallsyms_are_empty() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("for f in /proc/kcore /proc/keys /proc/key-users /proc/kallsyms /proc/timer_list /proc/kmsg; do head -c 4096 $f 2>/dev/null; done | wc -c");
    o.assert_ok();
    assert_eq!(o.out().trim(), "0", "masked /proc files have content: {}", o.all());
}

// =============================================================================
// Host processes
// =============================================================================

#[test]
fn host_process_is_unreachable() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("hostenv");
    let arg = unique_sleep(900);
    let mut host = std::process::Command::new("sleep").arg(&arg).env("HOST_ONLY_SECRET", &s).spawn().unwrap();
    let pid = host.id();
    let o = t.sh(&format!(
        "kill -9 {pid}; kill -TERM {pid}; cat /proc/{pid}/environ; cat /proc/{pid}/cmdline; cat /proc/{pid}/status; kill -9 -1; \
         echo PIDS $(ls /proc | grep -x '[0-9]*'); for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done; echo end"
    ));
    let alive = host.try_wait().unwrap().is_none();
    let _ = host.kill();
    let _ = host.wait();
    assert!(alive, "host process was killed from inside: {}", o.all());
    o.assert_absent(&s);
    let out = o.out();
    assert!(!out.lines().any(|l| l.trim_end() == format!("sleep {arg}")), "host process visible inside: {out}");
    let pids = out.lines().find(|l| l.starts_with("PIDS ")).unwrap_or_default();
    assert!(!pids.split_whitespace().any(|p| p == pid.to_string()), "host pid listed inside: {pids}");
    assert!(o.out().contains("end"), "control: {}", o.all());
}

// =============================================================================
// Syscalls, capabilities
// =============================================================================

#[test]
fn denied_syscalls_return_eperm() {
    let _g = shared();
    let t = T::new();
    let eperm = [
        "unshare_user", "unshare_net", "unshare_ns", "clone_newuser", "clone_newns", "setns", "mount_tmpfs", "umount_root", "remount_root_rw",
        "pivot_root", "open_tree", "fsopen", "chroot", "io_uring_setup", "ptrace_traceme", "ptrace_attach_pid1", "process_vm_readv", "bpf",
        "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "kexec_load", "init_module", "unix_socket", "unix_dgram_socket",
        "vsock_socket", "socketpair_dgram", "packet_socket", "open_by_handle_at", "sethostname",
    ];
    let enosys = ["x32_getpid", "clone3"];
    let names: Vec<&str> = eperm.iter().chain(enosys.iter()).copied().collect();
    let v = t.probe(&names);
    let mut bad = vec![];
    for n in eperm {
        if errno_of(&v, n) != libc::EPERM as i64 {
            bad.push(format!("{n}={}", v[n]));
        }
    }
    for n in enosys {
        if errno_of(&v, n) != libc::ENOSYS as i64 {
            bad.push(format!("{n}={} (want ENOSYS)", v[n]));
        }
    }
    assert!(bad.is_empty(), "not denied as expected: {bad:?}\nall: {v}");
}

#[test]
fn allowed_syscalls_work() {
    let _g = shared();
    let t = T::new();
    let v = t.probe(&["socketpair_stream", "inet_socket", "clone_plain", "unshare_files"]);
    for n in ["socketpair_stream", "inet_socket", "clone_plain", "unshare_files"] {
        assert_eq!(errno_of(&v, n), 0, "{n} should work: {v}");
    }
}

fn assert_status_locked_down(v: &serde_json::Value, who: &str) {
    let st = &v["status"];
    for k in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(st[k].as_str(), Some("0000000000000000"), "{who}: {k} = {}", st[k]);
    }
    assert_eq!(st["NoNewPrivs"].as_str(), Some("1"), "{who}: {st}");
    assert_eq!(st["Seccomp"].as_str(), Some("2"), "{who}: {st}");
}

#[test]
fn no_capabilities_nnp_and_seccomp_for_every_caller() {
    let _g = shared();
    let t = T::new();
    let v = t.probe(&["status", "setuid0"]);
    assert_status_locked_down(&v, "caller");
    assert_eq!(v["status"]["uid"].as_u64(), Some(euid() as u64), "uid is not the caller's: {v}");
    if !is_root() {
        assert_ne!(errno_of(&v, "setuid0"), 0, "became uid 0: {v}");
        return;
    }
    // Root: also check an unprivileged caller (uid/gid 65534).
    let (mut c, _) = Run::new(&t.home, Path::new("/")).no_json().cmd([sc_bin(), "__probe", "status", "setuid0"]).command();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "sc as uid 65534 failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_status_locked_down(&v, "uid 65534");
    assert_eq!(v["status"]["uid"].as_u64(), Some(65534));
    assert_ne!(errno_of(&v, "setuid0"), 0, "uid 65534 became uid 0: {v}");
}

// =============================================================================
// Terminal injection
// =============================================================================

#[test]
fn tiocsti_cannot_inject_into_the_callers_terminal() {
    let _g = shared();
    let t = T::new();
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors; termios/winsize are optional.
    let r = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptors we own.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // Raw mode, so a single injected byte would be readable at once.
    // SAFETY: termios calls on our own pty slave.
    unsafe {
        let mut tio: libc::termios = std::mem::zeroed();
        libc::tcgetattr(slave.as_raw_fd(), &mut tio);
        libc::cfmakeraw(&mut tio);
        libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &tio);
    }
    let (mut c, _) = t.sc().no_json().cmd([sc_bin(), "__probe", "tiocsti", "tiocsti_high_bits", "tioclinux"]).command();
    c.stdin(Stdio::from(slave.try_clone().unwrap())).stdout(Stdio::piped()).stderr(Stdio::piped());
    // The pty is sc's controlling terminal, as for an interactive caller.
    // SAFETY: setsid/ioctl between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "sc failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for n in ["tiocsti", "tiocsti_high_bits", "tioclinux"] {
        assert_ne!(errno_of(&v, n), 0, "{n} succeeded: {v}");
    }
    // Nothing was queued as input on the terminal.
    let mut sf = std::fs::File::from(slave);
    // SAFETY: fcntl on our descriptor.
    unsafe { libc::fcntl(sf.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut buf = [0u8; 64];
    match sf.read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok(n) => panic!("bytes injected into the terminal input: {:?}", &buf[..n]),
        Err(e) => panic!("read slave: {e}"),
    }
    // Control: input written by the terminal side is seen by the same check.
    let mut mf = std::fs::File::from(master);
    mf.write_all(b"ok").unwrap();
    let mut got = vec![];
    wait_until(Duration::from_secs(2), || {
        got.extend(read_available(&mut sf));
        got.len() >= 2
    });
    assert_eq!(got, b"ok", "control read through the pty failed");
}

// =============================================================================
// Inherited descriptors and environment
// =============================================================================

#[test]
fn inherited_fd_is_closed() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("fd");
    let key = t.plant_home(".ssh/id_rsa", &s);
    let f = std::fs::File::open(&key).unwrap();
    let raw = f.as_raw_fd();
    let (mut c, _) = t
        .sc()
        .no_json()
        .sh(&format!("ls /proc/self/fd | tr '\\n' ' '; echo; cat /proc/self/fd/7; cat <&7; cat /proc/1/fd/7; cat /proc/$PPID/fd/7; {} __probe fds", sc_bin()))
        .command();
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: dup2 between fork and exec; the new fd 7 is not close-on-exec.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    drop(f);
    let o = finish(out.status, out.stdout, out.stderr, None, Duration::ZERO);
    o.assert_absent(&s);
    let first = o.out().lines().next().unwrap_or_default().to_string();
    let fds: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "descriptors inside (3 is ls's own): {}", o.all());
    let last = o.out().lines().last().unwrap_or_default().to_string();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap_or_else(|_| panic!("no probe output: {}", o.all()));
    assert_eq!(v["fds"], 3, "{v}");
}

#[test]
fn secret_env_vars_are_withheld() {
    let _g = shared();
    let t = T::new();
    let m = |k: &str| format!("sk-{k}-{}", t.id);
    let secrets = ["OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "MY_PASSWORD", "ANTHROPIC_API_KEY", "OPENCLAW_GATEWAY_TOKEN", "DATABASE_URL"];
    let mut run = t.sc();
    for k in secrets {
        run = run.env(k, &m(k));
    }
    let o = run
        .opt("--env")
        .opt(format!("GH_TOKEN={}", m("explicit")))
        .sh("env; cat /proc/self/environ; echo; cat /proc/1/environ; cat /proc/$PPID/environ; echo end")
        .run();
    o.assert_ok();
    assert!(o.out().contains("end"), "control: {}", o.all());
    for k in secrets {
        o.assert_absent(&m(k));
    }
    o.assert_absent(&m("explicit"));
}

#[test]
fn policy_env_and_explicit_env_pass() {
    let _g = shared();
    let t = T::new();
    let o = t
        .sc()
        .env("HARMLESS_SETTING", "harmless-ok")
        .env("NOT_LISTED_VAR", "not-listed-value")
        .policy(r#"{"env":["HARMLESS_SETTING"]}"#)
        .opt("--env")
        .opt("FOO=bar")
        .cmd(["env"])
        .run();
    o.assert_ok();
    assert!(o.out().lines().any(|l| l == "HARMLESS_SETTING=harmless-ok"), "{}", o.all());
    assert!(o.out().lines().any(|l| l == "FOO=bar"), "{}", o.all());
    assert!(!o.out().contains("not-listed-value"), "unlisted variable passed: {}", o.out());
}

#[test]
fn keyring_is_isolated() {
    let _g = shared();
    let t = T::new();
    let desc = std::ffi::CString::new(format!("sc-test-key-{}", t.id)).unwrap();
    let payload = t.secret("key");
    let pl = payload.clone().into_bytes();
    let (mut c, _) = t
        .sc()
        .no_json()
        .sh(&format!("cat /proc/keys /proc/key-users; echo; {} __probe keyctl add_key request_key", sc_bin()))
        .command();
    c.stdin(Stdio::null());
    // The caller has a key in a fresh session keyring of its own.
    // SAFETY: keyctl/add_key with prepared buffers between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::syscall(libc::SYS_keyctl, 1 /* JOIN_SESSION_KEYRING */, 0usize) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_add_key, c"user".as_ptr(), desc.as_ptr(), pl.as_ptr(), pl.len(), -3 /* session */) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    let o = finish(out.status, out.stdout, out.stderr, None, Duration::ZERO);
    o.assert_ok();
    o.assert_absent(&payload);
    o.assert_absent(&format!("sc-test-key-{}", t.id));
    let last = o.out().lines().last().unwrap_or_default().to_string();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    for n in ["keyctl", "add_key", "request_key"] {
        assert_ne!(errno_of(&v, n), 0, "{n} works inside: {v}");
    }
    assert_eq!(o.out().lines().next().unwrap_or_default(), "", "/proc/keys is not empty: {}", o.out());
}

// =============================================================================
// Network
// =============================================================================

#[test]
fn host_unix_sockets_unreachable() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
    let _g = shared();
    let t = T::new();
    let path = t.ws.join("h.sock");
    let l = UnixListener::bind(&path).unwrap();
    l.set_nonblocking(true).unwrap();
    let name = format!("sc-test-abstract-{}", t.id);
    let la = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    la.set_nonblocking(true).unwrap();
    // Control: both listeners accept connections from the host.
    drop(UnixStream::connect(&path).unwrap());
    drop(UnixStream::connect_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap());
    assert_eq!(drain_accepts(|| l.accept()), 1);
    assert_eq!(drain_accepts(|| la.accept()), 1);

    let unix = format!("connect-unix:{}", path.display());
    let abs = format!("connect-abstract:{name}");
    let v = t.probe(&[&unix, &abs]);
    assert_ne!(errno_of(&v, &unix), 0, "{v}");
    assert_ne!(errno_of(&v, &abs), 0, "{v}");
    // socat/nc-free shell attempt as well.
    let _ = t.sh("cat h.sock; echo x > h.sock");
    assert_eq!(drain_accepts(|| l.accept()), 0, "path listener got a connection");
    assert_eq!(drain_accepts(|| la.accept()), 0, "abstract listener got a connection");
}

#[test]
fn a_command_serves_and_reaches_its_own_local_server_by_default_and_the_hosts_stays_unreached() {
    use std::net::TcpListener;
    let _g = shared();
    let t = T::new();
    // The host listens on a port; the sandbox serves on the same port of its
    // own loopback and talks to its own server, never to the host's.
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let name = format!("serve-tcp:127.0.0.1:{port}");
    let v = t.probe(&[&name, "serve-tcp:127.0.0.1:0"]);
    assert_eq!(v[&name], "ok", "{v}");
    assert_eq!(v["serve-tcp:127.0.0.1:0"], "ok", "{v}");
    assert_eq!(drain_accepts(|| host.accept()), 0, "the host's listener got a connection from the sandbox");
    // With allowLocalBinding: false, binding is refused.
    let v = t.sc().policy(r#"{"network":{"allowLocalBinding":false}}"#).probe(&["serve-tcp:127.0.0.1:0"]);
    assert!(v["serve-tcp:127.0.0.1:0"].as_str().is_some_and(|s| s.starts_with("bind: ")), "{v}");
}

#[test]
fn host_loopback_tcp_unreachable() {
    use std::net::{TcpListener, TcpStream};
    let _g = shared();
    let t = T::new();
    let mut ls = vec![TcpListener::bind("127.0.0.1:0").unwrap()];
    match TcpListener::bind("[::1]:0") {
        Ok(l) => ls.push(l),
        Err(e) => eprintln!("skipping [::1]: {e}"),
    }
    let mut names = vec![];
    for l in &ls {
        l.set_nonblocking(true).unwrap();
        let a = l.local_addr().unwrap();
        drop(TcpStream::connect(a).unwrap());
        assert!(wait_until(Duration::from_secs(2), || l.accept().is_ok()), "control connect to {a}");
        names.push(format!("connect-tcp:{a}"));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let v = t.probe(&refs);
    for n in &names {
        assert_ne!(errno_of(&v, n), 0, "{v}");
    }
    for l in &ls {
        assert_eq!(drain_accepts(|| l.accept()), 0, "{} got a connection from the sandbox", l.local_addr().unwrap());
    }
}

#[test]
fn only_loopback_interface_inside() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("cat /proc/net/dev");
    o.assert_ok();
    let ifaces: Vec<String> = o.out().lines().skip(2).filter_map(|l| l.split(':').next()).map(|s| s.trim().to_string()).collect();
    assert_eq!(ifaces, ["lo"], "{}", o.out());
}

struct NetNs {
    name: String,
    veth: String,
}
impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["link", "del", &self.veth]).stderr(Stdio::null()).status();
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn ip(args: &[&str]) {
    let st = std::process::Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?} failed");
}

#[test]
fn other_network_namespace_unreachable() {
    use std::net::{TcpListener, TcpStream};
    let _g = shared();
    if !is_root() {
        eprintln!("SKIP other_network_namespace_unreachable: creating a network namespace needs root");
        return;
    }
    if which("ip").is_none() {
        eprintln!("SKIP other_network_namespace_unreachable: `ip` (iproute2) is not installed");
        return;
    }
    let t = T::new();
    let pid = std::process::id();
    let ns = NetNs { name: format!("sctest{}", pid % 100000), veth: format!("sct{}h", pid % 100000) };
    let peer = format!("sct{}n", pid % 100000);
    let net = format!("10.213.{}", pid % 250);
    ip(&["netns", "add", &ns.name]);
    ip(&["link", "add", &ns.veth, "type", "veth", "peer", "name", &peer]);
    ip(&["link", "set", &peer, "netns", &ns.name]);
    ip(&["addr", "add", &format!("{net}.1/24"), "dev", &ns.veth]);
    ip(&["link", "set", &ns.veth, "up"]);
    ip(&["netns", "exec", &ns.name, "ip", "addr", "add", &format!("{net}.2/24"), "dev", &peer]);
    ip(&["netns", "exec", &ns.name, "ip", "link", "set", &peer, "up"]);
    ip(&["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"]);
    // A listener inside the namespace: a thread joins it, binds, and returns.
    let nsfile = format!("/run/netns/{}", ns.name);
    let addr = format!("{net}.2:0");
    let l = std::thread::spawn(move || {
        let f = std::fs::File::open(&nsfile).unwrap();
        // SAFETY: setns of this thread only (network namespaces are per thread).
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns: {}", std::io::Error::last_os_error());
        TcpListener::bind(addr).unwrap()
    })
    .join()
    .unwrap();
    l.set_nonblocking(true).unwrap();
    let a = l.local_addr().unwrap();
    // Control: reachable from the host's namespace over the veth pair.
    drop(TcpStream::connect_timeout(&a, Duration::from_secs(2)).expect("control connect over veth"));
    assert!(wait_until(Duration::from_secs(2), || l.accept().is_ok()), "control accept");
    let name = format!("connect-tcp:{a}");
    let v = t.probe(&[&name]);
    assert_ne!(errno_of(&v, &name), 0, "{v}");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(drain_accepts(|| l.accept()), 0, "peer namespace got a connection from the sandbox");
}

// =============================================================================
// Processes: leftovers, limits, timeouts, signals
// =============================================================================

/// Start `script` (which must start `sleep ARG` in the background and then
/// `read` a line), wait until the host sees that sleep, release the script,
/// and check the sleep is gone the moment `sc` has returned.
fn background_leftover_check(script_for: impl Fn(&str) -> String) {
    let _g = shared();
    let t = T::new();
    let arg = unique_sleep(317);
    let run = t.sc().stdin(vec![]).sh(&script_for(&arg));
    let (mut child, json) = run.spawn();
    let start = Instant::now();
    let seen = wait_until(Duration::from_secs(10), || !pids_with_argv(&["sleep", &arg]).is_empty());
    let mut si = child.stdin.take().unwrap();
    let _ = si.write_all(b"go\n");
    drop(si);
    let o = wait(child, json, start);
    let left = pids_with_argv(&["sleep", &arg]);
    kill_all(&left);
    assert!(seen, "control: the background sleep never appeared on the host: {}", o.all());
    assert!(left.is_empty(), "background process survived the call: {left:?}\n{}", o.all());
    assert!(o.out().contains("started"), "{}", o.all());
    assert!(o.elapsed < Duration::from_secs(10), "sc took {:?}", o.elapsed);
}

#[test]
fn background_process_does_not_survive() {
    background_leftover_check(|a| format!("sleep {a} & read x; echo started"));
}

#[test]
fn setsid_process_does_not_survive() {
    background_leftover_check(|a| format!("setsid sleep {a} & read x; echo started"));
}

#[test]
fn nohup_process_does_not_survive() {
    background_leftover_check(|a| format!("nohup sleep {a} >/dev/null 2>&1 & read x; echo started"));
}

#[test]
fn double_forked_daemon_does_not_survive() {
    background_leftover_check(|a| format!("(trap '' HUP TERM INT; setsid sh -c 'exec sleep {a}' </dev/null >/dev/null 2>&1 &) ; read x; echo started"));
}

#[test]
fn process_count_is_bounded() {
    let _g = shared();
    let t = T::new();
    let arg = unique_sleep(30);
    let script = format!("(i=0; while [ $i -lt 200 ]; do sleep {arg} & i=$((i+1)); done) 2>/dev/null; exec sleep 1.5");
    let (child, json) = t.sc().policy(r#"{"limits":{"maxProcesses":40}}"#).sh(&script).spawn();
    let start = Instant::now();
    let mut child = child;
    let mut max = 0usize;
    while child.try_wait().unwrap().is_none() {
        max = max.max(pids_with_argv(&["sleep", &arg]).len());
        std::thread::sleep(Duration::from_millis(5));
        if start.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    let o = wait(child, json, start);
    let left = pids_with_argv(&["sleep", &arg]);
    kill_all(&left);
    assert!(max >= 10, "control: the sleeps were never seen on the host (max {max}): {}", o.all());
    assert!(max <= 40, "the host saw {max} sandboxed sleeps with maxProcesses 40");
    assert!(left.is_empty(), "leftover sleeps: {}", left.len());
    assert!(o.elapsed < Duration::from_secs(8), "sc took {:?}", o.elapsed);
}

#[test]
fn timeout_kills_the_whole_tree() {
    let _g = shared();
    let t = T::new();
    let arg = unique_sleep(60);
    let (child, json) = t.sc().opt("--timeout").opt("1").sh(&format!("sleep {arg} & sleep {arg}")).spawn();
    let start = Instant::now();
    let seen = wait_until(Duration::from_millis(900), || pids_with_argv(&["sleep", &arg]).len() == 2);
    let o = wait(child, json, start);
    let left = pids_with_argv(&["sleep", &arg]);
    kill_all(&left);
    assert!(seen, "control: both sleeps should run before the timeout");
    assert_eq!(o.code, 124, "{}", o.all());
    assert!(o.elapsed < Duration::from_secs(5), "took {:?}", o.elapsed);
    assert!(o.elapsed >= Duration::from_millis(900), "returned before the timeout: {:?}", o.elapsed);
    assert_eq!(o.j()["timedOut"], true);
    assert!(left.is_empty(), "leftover: {left:?}");
}

fn signal_launcher(sig: i32) -> Out {
    let t = T::new();
    let arg = unique_sleep(61);
    let (child, json) = t.sc().sh(&format!("sleep {arg} & sleep {arg}")).spawn();
    let pid = child.id();
    let start = Instant::now();
    assert!(wait_until(Duration::from_secs(5), || pids_with_argv(&["sleep", &arg]).len() == 2), "control: sleeps never started");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, sig) };
    let o = wait(child, json, start);
    let gone = wait_until(Duration::from_secs(3), || pids_with_argv(&["sleep", &arg]).is_empty());
    let left = pids_with_argv(&["sleep", &arg]);
    kill_all(&left);
    if sig == libc::SIGKILL {
        remove_leaked_cgroups(pid); // see sigkill_of_launcher_leaves_no_cgroup
    }
    assert!(gone, "sandboxed processes survived the launcher's signal {sig}: {left:?}");
    o
}

#[test]
fn sigterm_to_launcher_aborts_the_call() {
    let _g = shared();
    let o = signal_launcher(libc::SIGTERM);
    assert_eq!(o.code, 143, "{}", o.all());
    assert_eq!(o.j()["aborted"], true);
}

#[test]
fn sigkill_of_launcher_leaves_no_process() {
    let _g = shared();
    let o = signal_launcher(libc::SIGKILL);
    assert_eq!(o.code, 128 + 9);
}

#[test]
fn sigkill_of_launcher_leaves_no_cgroup() {
    let _g = shared();
    if !is_root() {
        eprintln!("SKIP: per-call cgroups are made only for root callers");
        return;
    }
    let t = T::new();
    let arg = unique_sleep(62);
    let (child, json) = t.sc().sh(&format!("sleep {arg}")).spawn();
    let pid = child.id();
    assert!(wait_until(Duration::from_secs(5), || !pids_with_argv(&["sleep", &arg]).is_empty()));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = wait(child, json, Instant::now());
    wait_until(Duration::from_secs(3), || pids_with_argv(&["sleep", &arg]).is_empty());
    // The next root call sweeps per-call cgroups whose launcher is gone.
    let _ = t.sc().sh("true").run();
    let left = remove_leaked_cgroups(pid);
    assert!(left.is_empty(), "cgroups left behind after the next call: {left:?}");
}

// =============================================================================
// Output, file size, memory
// =============================================================================

#[test]
fn output_is_bounded_and_the_command_is_not_blocked() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().policy(r#"{"limits":{"maxOutputBytes":100000}}"#).sh("head -c 5000000 /dev/zero; echo finished > done").run();
    assert!(o.stdout.len() <= 100_000, "stdout {} bytes", o.stdout.len());
    assert!(o.stdout.len() >= 90_000, "control: output was relayed up to the limit ({} bytes)", o.stdout.len());
    assert!(o.err().contains("[sharkcage: output truncated"), "{}", o.err());
    assert_eq!(o.j()["truncated"], true);
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("finished\n"), "command did not run to completion");
    assert!(o.elapsed < Duration::from_secs(5), "{:?}", o.elapsed);
    o.assert_ok();
}

#[test]
fn file_size_is_bounded() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().policy(r#"{"limits":{"maxFileSizeBytes":1000000}}"#).sh("head -c 5000000 /dev/zero > big; echo done").run();
    let len = std::fs::metadata(t.ws.join("big")).map(|m| m.len()).unwrap_or(0);
    assert!(len <= 1_000_000, "file on the host has {len} bytes");
    assert!(len > 0, "control: the command wrote nothing: {}", o.all());
}

#[test]
fn memory_is_bounded() {
    let _g = shared();
    let t = T::new();
    let prog = "BEGIN{s=\"x\"; while (length(s) < 200000000) s = s s; print \"ALLOCATED\", length(s)}";
    let o = t.sc().policy(r#"{"limits":{"maxMemoryBytes":60000000}}"#).cmd(["awk", prog]).run();
    assert!(!o.out().contains("ALLOCATED"), "256 MB allocated under a 60 MB limit: {}", o.all());
    assert_ne!(o.code, 0);
    // A memory cgroup (the whole sandbox) where the caller has one, else RLIMIT_DATA
    // (per process); see tests/resources.rs for what only the cgroup bounds.
    let by = &o.j()["layers"]["limits"]["memoryLimitBy"];
    assert!(by == "cgroup" || by == "rlimit-data", "{by}");
    // Control: the same program succeeds with the default limit.
    let o = t.sc().cmd(["awk", prog]).run();
    assert!(o.out().contains("ALLOCATED"), "control: {}", o.all());
}

// =============================================================================
// Positive behaviour
// =============================================================================

#[test]
fn workspace_writes_are_visible_with_the_callers_uid() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("echo hello > a.txt; mkdir -p d/e; printf 'x%.0s' 1 2 3 > d/e/f; ln -s a.txt l; mv a.txt b.txt; cp b.txt a.txt");
    o.assert_ok();
    assert_eq!(read(&t.ws.join("a.txt")).as_deref(), Some("hello\n"));
    assert_eq!(read(&t.ws.join("b.txt")).as_deref(), Some("hello\n"));
    assert_eq!(read(&t.ws.join("d/e/f")).as_deref(), Some("xxx"));
    for p in ["a.txt", "d", "d/e/f"] {
        assert_eq!(std::fs::metadata(t.ws.join(p)).unwrap().uid(), euid(), "{p} not owned by the caller");
    }
    assert_eq!(std::fs::symlink_metadata(t.ws.join("l")).unwrap().uid(), euid());
}

#[test]
fn normal_reads_work() {
    let _g = shared();
    let t = T::new();
    t.plant_ws("in.txt", "WORKSPACE-FILE");
    let o = t.sh("cat /etc/os-release; cat in.txt; ls /usr/bin | head -1");
    o.assert_ok();
    let host = read(Path::new("/etc/os-release")).unwrap();
    assert!(o.out().contains(&host), "{}", o.all());
    assert!(o.out().contains("WORKSPACE-FILE"));
}

#[test]
fn exit_codes_pass_through() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("exit 7");
    assert_eq!(o.code, 7);
    assert_eq!(o.j()["exitCode"], 7);
    let o = t.sh("true");
    assert_eq!(o.code, 0);
    let o = t.sc().cmd(["/nonexistent/command"]).run();
    assert_eq!(o.code, 127, "{}", o.all());
}

#[test]
fn signals_are_reported() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("kill -TERM $$");
    assert_eq!(o.code, 143, "{}", o.all());
    assert_eq!(o.j()["signal"], "SIGTERM");
    assert_eq!(o.j()["exitCode"], serde_json::Value::Null);
    let o = t.sh("kill -9 $$");
    assert_eq!(o.code, 137, "{}", o.all());
    assert_eq!(o.j()["signal"], "SIGKILL");
}

#[test]
fn stdin_passes_through() {
    let _g = shared();
    let t = T::new();
    let data = pseudo_random(1 << 20, 42);
    let o = t.sc().stdin(data.clone()).cmd(["sha256sum"]).run();
    o.assert_ok();
    let inside = o.out().split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(inside, host_sha256(&data));
}

#[test]
fn large_output_under_the_limit_is_intact() {
    let _g = shared();
    let t = T::new();
    let data = pseudo_random(10_000_000, 7);
    std::fs::write(t.ws.join("big.bin"), &data).unwrap();
    let o = t.sc().policy(r#"{"limits":{"maxOutputBytes":20000000}}"#).cmd(["cat", "big.bin"]).run();
    o.assert_ok();
    assert_eq!(o.stdout.len(), data.len());
    assert!(o.stdout == data, "output differs from the file");
    assert_eq!(o.j()["truncated"], false);
}

#[test]
fn arguments_round_trip() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().cmd(["printf", "%s\\n", "héllo wörld", "", "日本", "a b\tc", "$HOME", "*"]).run();
    o.assert_ok();
    assert_eq!(o.out(), "héllo wörld\n\n日本\na b\tc\n$HOME\n*\n");
}

#[test]
fn cwd_is_workspace_and_home_is_set() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("pwd; echo \"$HOME\"; echo \"$SHARKCAGE_SANDBOX\"");
    o.assert_ok();
    let out = o.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [t.ws.to_str().unwrap(), t.home.to_str().unwrap(), "1"]);
}

#[test]
fn json_result_shape() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("echo hi");
    o.assert_ok();
    let j = o.j();
    for k in ["exitCode", "signal", "timedOut", "aborted", "truncated", "durationMs", "layers", "violations"] {
        assert!(j.get(k).is_some(), "missing {k}: {j}");
    }
    assert_eq!(j["exitCode"], 0);
    assert_eq!(j["signal"], serde_json::Value::Null);
    assert_eq!(j["timedOut"], false);
    assert_eq!(j["aborted"], false);
    assert_eq!(j["truncated"], false);
    assert!(j["durationMs"].as_f64().unwrap() > 0.0);
    assert!(j["violations"].is_array());
    assert_eq!(j["layers"]["seccomp"], true);
    let w: Vec<String> = j["layers"]["filesystem"]["writable"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(w, [t.ws.display().to_string()]);
    // --json-fd gives the same object.
    let (mut c, _) = t.sc().no_json().opt("--json-fd").opt("9").cmd(["true"]).command();
    let (r, w) = {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two fds.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: fresh descriptors.
        unsafe { (std::fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    };
    let wr = w.as_raw_fd();
    // SAFETY: dup2 between fork and exec.
    unsafe {
        c.pre_exec(move || {
            libc::dup2(wr, 9);
            Ok(())
        });
    }
    let st = c.status().unwrap();
    drop(w);
    let mut s = String::new();
    let mut r = r;
    r.read_to_string(&mut s).unwrap();
    assert!(st.success());
    let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_else(|e| panic!("--json-fd: {e}: {s:?}"));
    assert_eq!(v["exitCode"], 0);
}

#[test]
fn policy_error_names_location_and_nothing_runs() {
    let _g = shared();
    let t = T::new();
    let file = t.root.join("bad-policy.json");
    std::fs::write(&file, "{\n  \"filesystem\": {\n    \"denyRead\": [],\n    \"bogusKey\": 1\n  }\n}\n").unwrap();
    let o = t.sc().opt("--settings").opt(file.as_os_str()).sh("echo ran > ran").run();
    assert_eq!(o.code, 2, "{}", o.all());
    let want = format!("{}:4:", file.display());
    assert!(o.err().contains(&want), "stderr should name {want}<col>: {}", o.err());
    assert!(o.err().contains("bogusKey"), "{}", o.err());
    assert!(!t.ws.join("ran").exists(), "the command ran despite the policy error");
    // Inline JSON: same rules.
    let o = t.sc().policy(r#"{"limits":{"timeoutMs":0}}"#).sh("echo ran > ran").run();
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.err().contains("<policy-json>:1:") && o.err().contains("limits.timeoutMs"), "{}", o.err());
    assert!(!t.ws.join("ran").exists());
    // A weakening srt option is refused, not ignored.
    let o = t.sc().policy(r#"{"enableWeakerNestedSandbox":true}"#).sh("echo ran > ran").run();
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(!t.ws.join("ran").exists());
}

#[test]
fn srt_settings_file_works() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("srt");
    let extra = t.root.join("extra");
    std::fs::create_dir_all(extra.join("locked")).unwrap();
    std::fs::write(extra.join("locked/keep"), "KEEP").unwrap();
    t.plant_home("private/token", &s);
    let settings = serde_json::json!({
        "network": {"allowedDomains": ["example.com", "*.github.com"], "deniedDomains": ["evil.example"], "allowLocalBinding": false, "allowUnixSockets": []},
        "filesystem": {
            "denyRead": ["~/private"],
            "allowWrite": [format!("{}/**", extra.display())],
            "denyWrite": [extra.join("locked").display().to_string()]
        },
        "ignoreViolations": {"*": ["/usr/bin"]},
        "enableWeakerNestedSandbox": false,
        "ripgrep": {"command": "rg"}
    });
    let file = t.root.join("srt-settings.json");
    std::fs::write(&file, serde_json::to_string_pretty(&settings).unwrap()).unwrap();
    let o = t
        .sc()
        .opt("--settings")
        .opt(file.as_os_str())
        .sh(&format!("cat ~/notes.txt; cat ~/private/token; echo new > {0}/new; echo evil > {0}/locked/keep; echo evil > {0}/locked/x", extra.display()))
        .run();
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
    assert_eq!(read(&extra.join("new")).as_deref(), Some("new\n"), "allowWrite not writable: {}", o.all());
    assert_eq!(read(&extra.join("locked/keep")).as_deref(), Some("KEEP"), "denyWrite not enforced");
    assert!(!extra.join("locked/x").exists(), "denyWrite not enforced");
}

#[test]
fn json_result_file_is_not_written_through_a_sandbox_symlink() {
    let _g = shared();
    let t = T::new();
    let victim = t.root.join("victim.txt");
    std::fs::write(&victim, "VICTIM").unwrap();
    let result = t.ws.join("r.json");
    // The sandbox needs the launcher's pid for the temp name; a real attack
    // sprays every pid up to pid_max (done by hand: ~2 min for 4M symlinks).
    // Here the test hands it over on stdin to keep the test fast.
    let run = t
        .sc()
        .no_json()
        .opt("--json")
        .opt(result.as_os_str())
        .stdin(vec![])
        .sh(&format!("read p; ln -s {} \".r.json.tmp-$p\"; echo planted", victim.display()));
    let (mut child, _) = run.spawn();
    let start = Instant::now();
    let mut si = child.stdin.take().unwrap();
    writeln!(si, "{}", child.id()).unwrap();
    drop(si);
    let o = wait(child, None, start);
    assert!(o.out().contains("planted"), "control: {}", o.all());
    assert!(read(&result).is_some(), "control: no result file");
    assert_eq!(read(&victim).as_deref(), Some("VICTIM"), "the launcher wrote its JSON result into {} (outside the workspace)", victim.display());
}

#[test]
fn secret_dirs_cannot_be_made_writable() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("mkwritable");
    t.plant_home(".ssh/id_rsa", &s);
    t.plant_home(".aws/credentials", &s);
    for (flag, path) in [("--allow-write", t.home.join(".ssh")), ("--workspace", t.home.join(".aws"))] {
        let o = Run::new(&t.home, &t.root).opt(flag).opt(path.as_os_str()).sh("cat id_rsa credentials ~/.ssh/id_rsa; echo ran > ~/.ssh/ran; echo ran > ran").run();
        assert_eq!(o.code, 2, "{flag} {}: {}", path.display(), o.all());
        o.assert_absent(&s);
        assert!(!t.home.join(".ssh/ran").exists() && !t.home.join(".aws/ran").exists(), "{flag}: the command ran");
    }
}

// =============================================================================
// Concurrency
// =============================================================================

#[test]
fn concurrent_calls_on_one_workspace() {
    let _g = exclusive();
    let t = T::new();
    let marker = format!("conc-{}", t.id);
    let fds_before = own_fd_count();
    let start = Instant::now();
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for th in 0..8 {
            let t = &t;
            let marker = &marker;
            let failures = &failures;
            s.spawn(move || {
                for k in 0..25 {
                    let i = th * 25 + k;
                    let o = t.sc().no_json().cmd(["sh", "-c", "echo \"$0\" > \"f_$1\"", &format!("{marker}-{i}"), &i.to_string()]).run();
                    if o.code != 0 {
                        failures.lock().unwrap().push(format!("call {i}: code {} {}", o.code, o.err()));
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} calls failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    for i in 0..200 {
        assert_eq!(read(&t.ws.join(format!("f_{i}"))), Some(format!("{marker}-{i}\n")), "file {i}");
    }
    let left = pids_with_cmdline_containing(&marker);
    assert!(left.is_empty(), "leftover processes: {left:?}");
    assert_eq!(own_fd_count(), fds_before, "descriptor count of the test process changed");
    eprintln!("200 calls, 8 at a time: {elapsed:?}");
}

// =============================================================================
// IPC
// =============================================================================

#[test]
fn host_sysv_ipc_is_invisible() {
    let _g = shared();
    let t = T::new();
    // SAFETY: a private SysV shared memory segment, removed below.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o666) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    let o = t.sh("cat /proc/sysvipc/shm");
    // SAFETY: removing the segment we created.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    o.assert_ok();
    let out = o.out();
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(rows.is_empty(), "host SysV segments visible inside: {rows:?}");
}

// =============================================================================
// Fail closed
// =============================================================================

/// A host that cannot create namespaces (here: inside a sandbox, whose filter
/// refuses them) gets a refusal naming the cause, exit 3, and nothing runs.
#[test]
fn host_without_namespaces_fails_closed_and_runs_nothing() {
    let _g = shared();
    let t = T::new();
    let marker = t.ws.join("inner-ran");
    let inner = format!("{} exec --workspace {} -- touch {}", sc_bin(), t.ws.display(), marker.display());
    let o = t.sc().no_json().sh(&format!("{inner}; echo \"inner-exit=$?\"")).run();
    assert!(o.out().contains("inner-exit=3"), "{}", o.all());
    assert!(o.err().contains("cannot sandbox on this host"), "{}", o.all());
    assert!(o.err().contains("Nothing was run"), "{}", o.all());
    assert!(!marker.exists(), "the inner command ran without a sandbox");
}

/// `sc doctor` on such a host says so (exit 3) instead of reporting layers.
#[test]
fn doctor_reports_unsupported_host() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().no_json().sh(&format!("{} doctor --json; echo \"doctor-exit=$?\"", sc_bin())).run();
    assert!(o.out().contains("doctor-exit=3"), "{}", o.all());
    let json_text = o.out();
    let start = json_text.find('{').expect("doctor JSON");
    let end = json_text.rfind('}').expect("doctor JSON");
    let v: serde_json::Value = serde_json::from_str(&json_text[start..=end]).expect("doctor JSON parses");
    assert_eq!(v["ok"], false);
    assert!(v["unsupported"].as_str().unwrap_or("").contains("cannot sandbox"), "{v}");
}

/// `sc doctor` on this host: every layer works, checked by effect.
#[test]
fn doctor_passes_on_this_host() {
    let _g = shared();
    let o = std::process::Command::new(sc_bin()).args(["doctor", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("doctor JSON");
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(o.status.code(), Some(0));
    assert!(v["checks"].as_array().unwrap().len() >= 10);
}

// =============================================================================
// Unix sockets through the launcher's broker (network.allowUnixSockets)
// =============================================================================

/// A listener anyone may connect to (mode 0777): the broker connects as the
/// sandbox's identity, which for a root caller is the shifted host uid, so
/// only the broker's list decides here (permissions: `unix_broker.rs`).
fn unix_listener(p: &Path) -> std::os::unix::net::UnixListener {
    let l = std::os::unix::net::UnixListener::bind(p).expect("bind unix listener");
    l.set_nonblocking(true).unwrap();
    set_mode(p, 0o777);
    l
}

fn accepted_text(l: &std::os::unix::net::UnixListener) -> Option<String> {
    let (mut c, _) = l.accept().ok()?;
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut s = String::new();
    let _ = c.read_to_string(&mut s);
    Some(s)
}

#[test]
fn allowed_unix_socket_connects_and_others_stay_refused() {
    let _g = shared();
    let t = T::new();
    let ok = t.ws.join("ok.sock");
    let no = t.ws.join("no.sock");
    let l_ok = unix_listener(&ok);
    let l_no = unix_listener(&no);
    let policy = format!(r#"{{"network": {{"allowUnixSockets": ["{}"]}}}}"#, ok.display());
    let v = {
        let o = t
            .sc()
            .policy(&policy)
            .cmd([
                sc_bin().to_string(),
                "__probe".into(),
                format!("connect-unix:{}", ok.display()),
                format!("connect-unix:{}", no.display()),
                "connect-abstract:sc-test-abstract".into(),
                "unix_dgram_socket".into(),
                "socketpair_dgram".into(),
                "seccomp_new_listener".into(),
            ])
            .run();
        assert_eq!(o.code, 0, "{}", o.all());
        assert_eq!(o.j()["layers"]["unixSockets"]["mode"], "broker", "{}", o.all());
        assert!(o.j()["violations"].to_string().contains("no.sock"), "a refusal is reported: {}", o.all());
        serde_json::from_str::<serde_json::Value>(o.out().trim()).expect("probe JSON")
    };
    // The allowed socket got the sandbox's bytes; the other got nothing.
    assert_eq!(v[&format!("connect-unix:{}", ok.display())], 0, "{v}");
    assert_eq!(accepted_text(&l_ok).as_deref(), Some("SANDBOX-ESCAPED\n"), "allowed socket did not receive: {v}");
    assert_ne!(v[&format!("connect-unix:{}", no.display())], 0, "{v}");
    assert!(accepted_text(&l_no).is_none(), "a socket that is not allowed received a connection");
    assert_ne!(v["connect-abstract:sc-test-abstract"], 0, "{v}");
    assert_ne!(v["unix_dgram_socket"], 0, "datagram unix sockets stay refused: {v}");
    assert_ne!(v["socketpair_dgram"], 0, "{v}");
    assert_ne!(v["seccomp_new_listener"], 0, "the command cannot install its own notification listener: {v}");
}

#[test]
fn unix_broker_keeps_tcp_refused() {
    let _g = shared();
    let t = T::new();
    let ok = t.ws.join("ok.sock");
    let _l = unix_listener(&ok);
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let port = tcp.local_addr().unwrap().port();
    let policy = format!(r#"{{"network": {{"allowUnixSockets": ["{}"]}}}}"#, ok.display());
    let o = t.sc().policy(&policy).cmd([sc_bin().to_string(), "__probe".into(), format!("connect-tcp:127.0.0.1:{port}"), "inet_socket".into()]).run();
    let v: serde_json::Value = serde_json::from_str(o.out().trim()).expect("probe JSON");
    assert_ne!(v[&format!("connect-tcp:127.0.0.1:{port}")], 0, "{v}");
    assert!(tcp.accept().is_err(), "the host TCP listener received a connection");
}

#[test]
fn without_allowed_sockets_no_unix_socket_can_be_made() {
    let _g = shared();
    let t = T::new();
    let p = t.ws.join("host.sock");
    let l = unix_listener(&p);
    let o = t.sc().cmd([sc_bin().to_string(), "__probe".into(), format!("connect-unix:{}", p.display()), "unix_socket".into()]).run();
    let v: serde_json::Value = serde_json::from_str(o.out().trim()).expect("probe JSON");
    assert_eq!(v["unix_socket"], libc::EPERM, "{v}");
    assert!(accepted_text(&l).is_none());
    assert_eq!(o.j()["layers"]["unixSockets"]["mode"], "none");
}

/// A host file given as stdin (read-only) cannot be reopened for writing
/// through /proc/self/fd/0 or /dev/stdin (a magic-link reopen bypasses the
/// read-only mounts; Landlock grants stdin only the access it was opened with).
#[test]
fn read_only_stdin_file_cannot_be_reopened_for_writing() {
    let _g = shared();
    let t = T::new();
    let f = plant(&t.root.join("outside/input.txt"), "ORIGINAL\n");
    let o = std::process::Command::new(sc_bin())
        .env("HOME", &t.home)
        .args(["exec", "--workspace"])
        .arg(&t.ws)
        .args(["--", "sh", "-c", "cat; echo evil > /proc/self/fd/0; echo evil >> /dev/stdin; echo evil > /dev/fd/0; true"])
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ORIGINAL\n", "stdin still readable: {o:?}");
    assert_eq!(read(&f).as_deref(), Some("ORIGINAL\n"), "the stdin file was modified through a reopen");
}

/// sharkcage's own state (the pending-check journal) is hidden from the
/// sandbox even when the workspace contains it, and cannot be written.
#[test]
fn journal_is_hidden_even_in_a_writable_home() {
    let _g = shared();
    let t = T::new();
    let o = Run::new(&t.home, &t.root)
        .workspace(&t.home)
        .sh("ls -A .local/state/sharkcage; mkdir -p .local/state/sharkcage/pending 2>/dev/null; echo '{}' > .local/state/sharkcage/pending/9-9.json 2>/dev/null; true")
        .run();
    assert!(!o.out().contains("pending"), "journal directory visible: {}", o.all());
    let planted = t.home.join(".local/state/sharkcage/pending/9-9.json");
    assert!(!planted.exists(), "the sandbox wrote into sharkcage's journal");
}

/// A root caller's sandbox runs on an unprivileged host uid: a root-only file
/// (mode 600) outside the places it works in is unreadable, although no list
/// names it, while workspace files stay owned by root on disk.
#[test]
fn root_caller_is_shifted_off_host_root() {
    let _g = shared();
    if !is_root() {
        eprintln!("SKIP: the uid shift applies to root callers");
        return;
    }
    let t = T::new();
    let secret = t.secret("rootonly");
    let f = plant(&t.root.join("srv/rootonly.key"), &secret);
    set_mode(&f, 0o600);
    let o = t.sc().sh(&format!("cat {}; echo made > mine.txt; id -u", f.display())).run();
    o.assert_absent(&secret);
    assert_eq!(o.j()["layers"]["identity"].as_str().map(|s| s.starts_with("shifted:")), Some(true), "{}", o.all());
    assert!(o.out().contains('0'), "uid 0 inside: {}", o.all());
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(t.ws.join("mine.txt")).expect("workspace write reached the host");
    assert_eq!(m.uid(), 0, "created files are owned by the caller (root) on disk");
}

/// Without the uid shift (a host with no idmapped mounts; forced here), a
/// root caller still gets every other layer, its process count bounded by a
/// per-call pids cgroup (the kernel ignores RLIMIT_NPROC for uid 0), and the
/// result says it was not shifted.
#[test]
fn unshifted_root_fallback_still_bounds_processes() {
    let _g = shared();
    if !is_root() {
        eprintln!("SKIP: the fallback applies to root callers");
        return;
    }
    let t = T::new();
    let json = t.root.join("fallback.json");
    let arg = unique_sleep(66);
    let o = std::process::Command::new(sc_bin())
        .env("HOME", &t.home)
        .env("SHARKCAGE_NO_UID_SHIFT", "1")
        .args(["exec", "--policy-json", r#"{"limits":{"maxProcesses":20,"timeoutMs":5000}}"#, "--json"])
        .arg(&json)
        .arg("--workspace")
        .arg(&t.ws)
        .args(["--", "sh", "-c", &format!("echo ok > f; i=0; while [ $i -lt 60 ]; do sleep {arg} & i=$((i+1)); echo started $i; done; wait")])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json result")).unwrap();
    assert_eq!(j["layers"]["identity"], "caller", "{j}");
    assert_eq!(j["layers"]["limits"]["processLimitBy"], "cgroup", "{j}");
    assert_eq!(read(&t.ws.join("f")).as_deref(), Some("ok\n"));
    let out = String::from_utf8_lossy(&o.stdout);
    let started = out.lines().filter_map(|l| l.strip_prefix("started ")?.trim().parse::<usize>().ok()).max().unwrap_or(0);
    assert!(started > 0 && started < 20, "{started} background processes started with maxProcesses 20");
    assert!(String::from_utf8_lossy(&o.stderr).contains("fork"), "the limit was hit: {}", String::from_utf8_lossy(&o.stderr));
    assert!(pids_with_argv(&["sleep", &arg]).is_empty(), "leftovers");
}

/// The i386 system-call ABI (`int 0x80`) is not filtered by an x86-64 filter's
/// syscall numbers, so the filter's architecture check kills the process.
#[test]
fn i386_abi_kills_the_process() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().cmd([sc_bin(), "__probe", "i386_getpid"]).run();
    assert_eq!(o.j()["signal"], "SIGSYS", "{}", o.all());
    assert_eq!(o.code, 128 + libc::SIGSYS, "{}", o.all());
    assert!(!o.out().contains("i386_getpid"), "the probe returned: {}", o.all());
}

/// A root caller whose workspace (or working directory) lies under a
/// directory others cannot search: the sandbox (shifted to an unprivileged
/// host id) gets the path down to its places, never that directory's other
/// files. (A normal caller cannot search such a directory either.)
#[test]
fn root_caller_under_a_private_directory_sees_only_its_path() {
    let _g = shared();
    if !is_root() {
        eprintln!("SKIP: the shift applies to root callers (this suite also runs as root)");
        return;
    }
    let t = T::new();
    let private = t.root.join("private");
    let key = t.secret("dbkey");
    plant(&private.join("db.key"), &key);
    plant(&private.join("apps/other/notes.txt"), &key);
    plant(&private.join("apps/cwd/here.txt"), "HERE");
    std::fs::create_dir_all(private.join("apps/ws")).unwrap();
    set_mode(&private.join("db.key"), 0o600);
    set_mode(&private, 0o700);
    let o = Run::new(&t.home, &private.join("apps/ws"))
        .workspace(&private.join("apps/ws"))
        .sh("cat ../../db.key; cat ../other/notes.txt; ls -a .. ../..; echo ok > done")
        .run();
    assert_eq!(read(&private.join("apps/ws/done")).as_deref(), Some("ok\n"), "control: the workspace works: {}", o.all());
    o.assert_absent(&key);
    assert!(!o.out().contains("db.key") && !o.out().contains("other"), "the private directory's other entries are listed: {}", o.all());
    // Without a workspace, from a working directory under it.
    let o = Run::new(&t.home, &private.join("apps/cwd")).no_workspace().sh("cat here.txt; cat ../../db.key; ls -a ../..").run();
    assert!(o.out().contains("HERE"), "control: the working directory is visible: {}", o.all());
    o.assert_absent(&key);
    assert!(!o.out().contains("db.key"), "{}", o.all());
    assert_eq!(read(&private.join("db.key")).as_deref(), Some(key.as_str()));
}

/// `--read-only DIR`: a place the command reads (OpenClaw's agent workspace
/// with workspaceAccess "ro"): readable, not writable, reachable for a root
/// caller's sandbox under a private directory, allowed inside `~/.openclaw`
/// like a workspace — but never `~/.openclaw` itself or a secret.
#[test]
fn read_only_places_are_readable_and_stay_unchanged() {
    let _g = shared();
    let t = T::new();
    let private = t.root.join("private");
    plant(&private.join("agent/notes.md"), "AGENT-NOTES");
    let key = t.secret("priv");
    plant(&private.join("db.key"), &key);
    set_mode(&private.join("db.key"), 0o600);
    set_mode(&private, 0o700);
    let oc = t.home.join(".openclaw");
    plant(&oc.join("workspace/ws-notes.md"), "OC-NOTES");
    let token = t.secret("octoken");
    plant(&oc.join("openclaw.json"), &token);
    let agent = private.join("agent");
    let o = t
        .sc()
        .opt("--read-only")
        .opt(&agent)
        .opt("--read-only")
        .opt(oc.join("workspace"))
        .sh(&format!(
            "cat {a}/notes.md {o}/workspace/ws-notes.md; cat {o}/openclaw.json {p}/db.key; echo x > {a}/new.txt; echo x >> {a}/notes.md; echo ok > done",
            a = agent.display(),
            o = oc.display(),
            p = private.display()
        ))
        .run();
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    assert!(o.out().contains("AGENT-NOTES"), "a read-only place under a private directory is not readable: {}", o.all());
    assert!(o.out().contains("OC-NOTES"), "a read-only place inside ~/.openclaw is not readable: {}", o.all());
    o.assert_absent(&token);
    if is_root() {
        // Root's own private file beside the place (a normal caller reads its own files).
        o.assert_absent(&key);
    }
    assert!(!agent.join("new.txt").exists(), "the read-only place was written");
    assert_eq!(read(&agent.join("notes.md")).as_deref(), Some("AGENT-NOTES"));
    // ~/.openclaw itself, or a secret, cannot be made readable.
    for bad in [oc.clone(), t.home.join(".ssh")] {
        std::fs::create_dir_all(&bad).unwrap();
        let o = t.sc().opt("--read-only").opt(&bad).sh("echo ran > ran").run();
        assert_eq!(o.code, 2, "--read-only {} was accepted: {}", bad.display(), o.all());
        assert!(!t.ws.join("ran").exists());
    }
}

/// `filesystem.execOnly`: only the listed program (and its loader) starts;
/// not another system program, not a copy in a writable place, not a shell;
/// the effect is checked on the host (a marker file the other program would
/// have written does not exist).
#[test]
fn exec_only_lets_only_the_listed_programs_start() {
    let _g = shared();
    let t = T::new();
    let python = ["/usr/bin/python3", "/bin/python3"].into_iter().find(|p| Path::new(p).exists()).expect("python3 is installed");
    let marker = t.ws.join("marker");
    let script = format!(
        r#"
import os, shutil, subprocess
def attempt(name, argv):
    try:
        subprocess.run(argv, check=False)
        print(name, "started")
    except PermissionError:
        print(name, "refused")
attempt("shell", ["/bin/sh", "-c", "echo pwned > {m}"])
attempt("touch", ["/usr/bin/touch", "{m}"])
shutil.copy("/usr/bin/touch", "{ws}/mytouch"); os.chmod("{ws}/mytouch", 0o755)
attempt("copy", ["{ws}/mytouch", "{m}"])
shutil.copy("/usr/bin/touch", "/tmp/t2"); os.chmod("/tmp/t2", 0o755)
attempt("tmpcopy", ["/tmp/t2", "{m}"])
print("python ran", flush=True)
# An anonymous memory file, started by descriptor or through /proc: refused.
try:
    fd = os.memfd_create("x")
    os.write(fd, open("/usr/bin/touch", "rb").read())
    os.execve("/proc/self/fd/%d" % fd, ["touch", "{m}"], {{}})
except OSError:
    print("memfd refused", flush=True)
"#,
        m = marker.display(),
        ws = t.ws.display()
    );
    let pol = format!(r#"{{"filesystem":{{"execOnly":["{python}"]}}}}"#);
    let o = t.sc().policy(&pol).cmd([python, "-c", &script]).run();
    assert!(o.out().contains("python ran"), "the listed program did not run: {}", o.all());
    for name in ["shell", "touch", "copy", "tmpcopy", "memfd"] {
        assert!(o.out().contains(&format!("{name} refused")), "{name} was not refused: {}", o.all());
    }
    assert!(!marker.exists(), "a program outside execOnly ran: {}", o.all());
    // The report says it is active.
    assert_eq!(o.j()["layers"]["landlock"]["execOnly"], serde_json::json!(true), "{}", o.all());
    // Without the key everything readable may start (control).
    let o = t.sc().cmd([python, "-c", &script]).run();
    assert!(o.out().contains("touch started"), "control: {}", o.all());
    // Bad entries are errors naming the key.
    let o = t.sc().policy(r#"{"filesystem":{"execOnly":["bin/sh"]}}"#).cmd(["true"]).run();
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.err().contains("execOnly"), "{}", o.all());
    let o = t.sc().policy(r#"{"filesystem":{"execOnly":["/nonexistent/prog"]}}"#).cmd(["true"]).run();
    assert!(o.err().contains("execOnly[0]"), "{}", o.all());
}
