//! Nothing a call leaves behind may run later on the host: git state
//! (configs, hooks, gitfiles, `commondir`, bare repositories) at any depth,
//! and startup files. Every test plants what an attacker would inside the
//! sandbox, then runs the *host's* git the way a user would afterwards
//! (`git status`, `git commit`, `git checkout`) and checks that the
//! attacker's command did not run: its marker file is absent.
//!
//! The functionality tests show what the rule keeps working: `git init`,
//! `git clone`, `git remote add`, `git config user.email` inside the sandbox
//! leave a working repository on the host.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn git_bin() -> PathBuf {
    which("git").expect("git must be installed for this suite (.ci/run installs it)")
}

/// The host's git in `dir`, as a user would run it (fake HOME, no system
/// config). It never looks for a repository above the test's directory
/// (`GIT_CEILING_DIRECTORIES`): where the sandbox's repository was moved
/// aside, discovery must not find the checkout the tests run in.
fn hgit(t: &T, dir: &Path, args: &[&str]) -> Output {
    Command::new(git_bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("GIT_CEILING_DIRECTORIES", &t.root)
        .env("HOME", &t.home)
        .env("PATH", SAFE_PATH)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run host git")
}

#[track_caller]
fn hgit_ok(t: &T, dir: &Path, args: &[&str]) -> String {
    let o = hgit(t, dir, args);
    assert!(o.status.success(), "host git {args:?} in {} failed: {}{}", dir.display(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A file the attacker's command would create, outside the workspace, and
/// a shell command that creates it.
fn marker(t: &T, tag: &str) -> (PathBuf, String) {
    let p = t.root.join(format!("PWNED-{tag}"));
    let cmd = format!("touch {}", p.display());
    (p, cmd)
}

/// A host repository with one commit at `dir`.
fn host_repo(t: &T, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    hgit_ok(t, dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("README"), "hello\n").unwrap();
    hgit_ok(t, dir, &["add", "README"]);
    hgit_ok(t, dir, &["commit", "-qm", "init"]);
}

/// What a user does after the call: status, a commit, a checkout.
fn use_repo(t: &T, dir: &Path) {
    let _ = hgit(t, dir, &["status"]);
    let _ = hgit(t, dir, &["commit", "-q", "--allow-empty", "-m", "later"]);
    let _ = hgit(t, dir, &["checkout", "-q", "HEAD~0"]);
    let _ = hgit(t, dir, &["status", "--porcelain"]);
}

#[track_caller]
fn assert_not_run(m: &Path, o: &Out) {
    assert!(!m.exists(), "the attacker's command ran on the host ({} exists); call output:\n{}", m.display(), o.all());
}

#[track_caller]
fn assert_done(t: &T, o: &Out) {
    assert_eq!(read(&t.ws.join("done")).as_deref(), Some("ok\n"), "control: the script ran to its end: {}", o.all());
}

fn violations(o: &Out) -> String {
    o.j()["violations"].to_string()
}

#[test]
fn a_submodules_config_and_hooks_cannot_be_changed() {
    let _g = shared();
    let t = T::new();
    let src = t.root.join("src");
    host_repo(&t, &src);
    host_repo(&t, &t.ws);
    hgit_ok(&t, &t.ws, &["-c", "protocol.file.allow=always", "submodule", "add", "-q", &src.display().to_string(), "sub"]);
    hgit_ok(&t, &t.ws, &["commit", "-qm", "sub"]);
    let cfg_before = read(&t.ws.join(".git/modules/sub/config")).unwrap();
    let (m1, c1) = marker(&t, "fsmonitor");
    let (m2, c2) = marker(&t, "hook");
    let o = t.sh(&format!(
        "printf '[core]\\n\\tfsmonitor = {c1}\\n' >> .git/modules/sub/config; \
         printf '#!/bin/sh\\n{c2}\\n' > .git/modules/sub/hooks/post-checkout; chmod +x .git/modules/sub/hooks/post-checkout; \
         printf '#!/bin/sh\\n{c2}\\n' > .git/modules/sub/hooks/pre-commit; \
         mv .git/modules/sub/hooks .git/modules/sub/h2; mv .git/modules .git/m2; mv .git/modules/sub .git/modules/s2; \
         echo ok > done"
    ));
    assert_done(&t, &o);
    assert_eq!(read(&t.ws.join(".git/modules/sub/config")).unwrap(), cfg_before, "the submodule's config changed on the host");
    use_repo(&t, &t.ws.join("sub"));
    use_repo(&t, &t.ws);
    assert_not_run(&m1, &o);
    assert_not_run(&m2, &o);
}

#[test]
fn a_worktrees_config_and_commondir_cannot_redirect_git() {
    let _g = shared();
    let t = T::new();
    host_repo(&t, &t.ws);
    hgit_ok(&t, &t.ws, &["config", "extensions.worktreeConfig", "true"]);
    hgit_ok(&t, &t.ws, &["worktree", "add", "-q", "wt"]);
    let commondir = read(&t.ws.join(".git/worktrees/wt/commondir")).unwrap();
    let (m1, c1) = marker(&t, "worktree");
    let (m2, c2) = marker(&t, "commondir");
    let o = t.sh(&format!(
        "printf '[core]\\n\\tfsmonitor = {c1}\\n' > .git/worktrees/wt/config.worktree; \
         mkdir -p evil/objects evil/refs evil/hooks; echo 'ref: refs/heads/main' > evil/HEAD; \
         printf '[core]\\n\\tfsmonitor = {c2}\\n' > evil/config; \
         echo \"$PWD/evil\" > .git/worktrees/wt/commondir; echo ok > done"
    ));
    assert_done(&t, &o);
    assert_eq!(read(&t.ws.join(".git/worktrees/wt/commondir")).unwrap(), commondir, "commondir changed on the host");
    use_repo(&t, &t.ws.join("wt"));
    use_repo(&t, &t.ws.join("evil"));
    assert_not_run(&m1, &o);
    assert_not_run(&m2, &o);
    let v = violations(&o);
    assert!(v.contains("config.worktree") && v.contains("core.fsmonitor"), "not reported: {v}");
}

#[test]
fn a_bare_repository_planted_anywhere_is_disarmed() {
    let _g = shared();
    let t = T::new();
    let places = ["plain", "node_modules/pkg", "a/b/c/d/e/f/g/h", ".cache/x"];
    let mut script = String::new();
    let mut markers = Vec::new();
    for (i, p) in places.iter().enumerate() {
        let (m, c) = marker(&t, &format!("bare{i}"));
        markers.push(m);
        script.push_str(&format!(
            "mkdir -p {p}/objects {p}/refs/heads {p}/hooks; echo 'ref: refs/heads/main' > {p}/HEAD; \
             printf '[core]\\n\\tworktree = .\\n\\tfsmonitor = {c}\\n' > {p}/config; \
             printf '#!/bin/sh\\n{c}\\n' > {p}/hooks/pre-commit; chmod +x {p}/hooks/pre-commit; "
        ));
    }
    script.push_str("echo ok > done");
    let o = t.sh(&script);
    assert_done(&t, &o);
    for p in places {
        use_repo(&t, &t.ws.join(p));
    }
    for m in &markers {
        assert_not_run(m, &o);
    }
    let v = violations(&o);
    for p in places {
        assert!(v.contains(&format!("{p}/config")), "{p}/config not reported: {v}");
    }
}

#[test]
fn repositories_and_gitfiles_deeper_than_three_levels() {
    let _g = shared();
    let t = T::new();
    let (m1, c1) = marker(&t, "deeprepo");
    let (m2, c2) = marker(&t, "deephook");
    let (m3, c3) = marker(&t, "gitfile");
    let outside = t.root.join("outside-gitdir");
    // A git directory outside the writable roots that a gitfile could name.
    std::fs::create_dir_all(outside.join("objects")).unwrap();
    std::fs::create_dir_all(outside.join("refs")).unwrap();
    std::fs::write(outside.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(outside.join("config"), format!("[core]\n\tfsmonitor = {c3}\n")).unwrap();
    let o = t
        .sc()
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .sh(&format!(
            "mkdir -p a/b/c/d/e && cd a/b/c/d/e && git init -q && printf '[core]\\n\\tfsmonitor = {c1}\\n' >> .git/config && \
             printf '#!/bin/sh\\n{c2}\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit && cd - >/dev/null && \
             mkdir -p a/b/c/d/f/g && echo 'gitdir: {}' > a/b/c/d/f/g/.git && echo ok > done",
            outside.display()
        ))
        .run();
    assert_done(&t, &o);
    use_repo(&t, &t.ws.join("a/b/c/d/e"));
    use_repo(&t, &t.ws.join("a/b/c/d/f/g"));
    assert_not_run(&m1, &o);
    assert_not_run(&m2, &o);
    assert_not_run(&m3, &o);
    let v = violations(&o);
    assert!(v.contains("a/b/c/d/f/g/.git"), "the gitfile pointing outside is not reported: {v}");
}

#[test]
fn the_hooks_path_directory_is_protected() {
    let _g = shared();
    let t = T::new();
    host_repo(&t, &t.ws);
    // An existing hooks directory named by core.hooksPath, with a user hook.
    hgit_ok(&t, &t.ws, &["config", "core.hooksPath", ".githooks"]);
    plant(&t.ws.join(".githooks/pre-commit"), "#!/bin/sh\nexit 0\n");
    let (m1, c1) = marker(&t, "hookspath");
    // A second repository whose hooksPath directory does not exist yet.
    let r2 = t.ws.join("r2");
    host_repo(&t, &r2);
    hgit_ok(&t, &r2, &["config", "core.hooksPath", ".husky"]);
    let (m2, c2) = marker(&t, "husky");
    let o = t.sh(&format!(
        "printf '#!/bin/sh\\n{c1}\\n' > .githooks/pre-commit; printf '#!/bin/sh\\n{c1}\\n' > .githooks/post-commit; chmod +x .githooks/*; \
         mv .githooks gh2; mkdir -p r2/.husky; printf '#!/bin/sh\\n{c2}\\n' > r2/.husky/pre-commit; chmod +x r2/.husky/pre-commit; echo ok > done"
    ));
    assert_done(&t, &o);
    assert_eq!(read(&t.ws.join(".githooks/pre-commit")).as_deref(), Some("#!/bin/sh\nexit 0\n"));
    assert!(!t.ws.join(".githooks/post-commit").exists());
    use_repo(&t, &t.ws);
    use_repo(&t, &r2);
    assert_not_run(&m1, &o);
    assert_not_run(&m2, &o);
    assert!(violations(&o).contains("r2/.husky"), "{}", o.all());
}

#[test]
fn existing_repository_config_stays_read_only_and_commits_work() {
    let _g = shared();
    let t = T::new();
    host_repo(&t, &t.ws);
    let cfg = read(&t.ws.join(".git/config")).unwrap();
    let (m, c) = marker(&t, "existing");
    let o = t
        .sc()
        .env("GIT_AUTHOR_NAME", "a")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "a")
        .env("GIT_COMMITTER_EMAIL", "a@example.com")
        .policy(r#"{"env":["GIT_AUTHOR_NAME","GIT_AUTHOR_EMAIL","GIT_COMMITTER_NAME","GIT_COMMITTER_EMAIL"]}"#)
        .sh(&format!(
            "echo change >> README && git add README && git commit -qm 'from the sandbox' && \
             (git config core.fsmonitor '{c}' 2>/dev/null; printf '[core]\\n\\tfsmonitor = {c}\\n' >> .git/config; \
              rm -f .git/config; mv .git/config .git/c2; true) && echo ok > done"
        ))
        .run();
    assert_done(&t, &o);
    assert_eq!(read(&t.ws.join(".git/config")).unwrap(), cfg, "the repository's config changed");
    assert!(hgit_ok(&t, &t.ws, &["log", "--format=%s"]).contains("from the sandbox"), "the sandbox's commit is not on the host");
    use_repo(&t, &t.ws);
    assert_not_run(&m, &o);
}

#[test]
fn git_init_clone_remote_add_and_config_work_inside() {
    let _g = shared();
    let t = T::new();
    let src = t.root.join("src");
    host_repo(&t, &src);
    let o = t
        .sc()
        .env("GIT_AUTHOR_NAME", "a")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "a")
        .env("GIT_COMMITTER_EMAIL", "a@example.com")
        .policy(r#"{"env":["GIT_AUTHOR_NAME","GIT_AUTHOR_EMAIL","GIT_COMMITTER_NAME","GIT_COMMITTER_EMAIL"]}"#)
        .sh(&format!(
            // A root caller's sandbox sees host files outside its places
            // as another user's: git wants them marked safe (in a global
            // config, which the clone's upload-pack reads).
            "export GIT_CONFIG_GLOBAL=/tmp/gitconfig && git config --global safe.directory '*' && \
             git init -q -b main fresh && cd fresh && git config user.email me@example.com && \
             git remote add origin https://example.com/fresh.git && git commit -q --allow-empty -m first && cd .. && \
             git clone -q {} cloned && echo ok > done",
            src.display()
        ))
        .run();
    assert_done(&t, &o);
    let fresh = t.ws.join("fresh");
    assert_eq!(hgit_ok(&t, &fresh, &["config", "user.email"]).trim(), "me@example.com");
    assert_eq!(hgit_ok(&t, &fresh, &["remote", "get-url", "origin"]).trim(), "https://example.com/fresh.git");
    assert!(hgit_ok(&t, &fresh, &["log", "--format=%s"]).contains("first"));
    assert!(fresh.join(".git/hooks").is_dir(), "git init's sample hooks directory was moved aside");
    let cloned = t.ws.join("cloned");
    assert_eq!(hgit_ok(&t, &cloned, &["remote", "get-url", "origin"]).trim(), src.display().to_string());
    assert_eq!(hgit_ok(&t, &cloned, &["status", "--porcelain"]).trim(), "");
    assert_eq!(hgit_ok(&t, &cloned, &["rev-parse", "--abbrev-ref", "HEAD@{upstream}"]).trim(), "origin/main");
    let v = violations(&o);
    assert!(!v.contains("fresh") && !v.contains("cloned"), "a plain repository was reported: {v}");
}

#[test]
fn an_inert_config_with_a_second_hard_link_is_moved_aside() {
    let _g = shared();
    let t = T::new();
    let o = t.sh("git init -q r && ln r/.git/config cfg-link && echo ok > done");
    assert_done(&t, &o);
    assert!(!t.ws.join("r/.git/config").exists(), "a config that stays writable through a hard link was kept: {}", o.all());
    assert!(violations(&o).contains("hard link"), "{}", o.all());
}

#[test]
fn startup_files_are_moved_aside_at_any_depth() {
    let _g = shared();
    let t = T::new();
    let files = [
        ".config/git/config",
        ".config/git/hooks/pre-commit",
        ".bash_aliases",
        ".local/bin/git",
        ".config/fish/config.fish",
        ".vimrc",
        ".config/nvim/init.lua",
        ".claude/settings.json",
        ".claude/settings.local.json",
        "proj/.npmrc",
        "proj/.yarnrc.yml",
        "proj/.openclaw/extensions/sharkcage/index.js",
        "deep/a/b/c/d/.bashrc",
        "deep/a/b/c/d/e/.vscode/settings.json",
    ];
    let mut script = String::new();
    for f in files {
        script.push_str(&format!("mkdir -p \"$(dirname {f})\"; echo evil > {f}; "));
    }
    script.push_str("echo ok > done");
    // The workspace is the home directory, as with a writable home.
    let o = Run::new(&t.home, &t.root).workspace(&t.home).sh(&script).run();
    assert_eq!(read(&t.home.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    let v = violations(&o);
    for f in files {
        assert!(!t.home.join(f).exists(), "{f} created inside is on the host: {}", o.all());
        let top = Path::new(f).iter().take(2).collect::<PathBuf>();
        assert!(v.contains(&top.display().to_string()) || v.contains(f), "{f} not reported: {v}");
    }
}

#[test]
fn existing_startup_files_stay_unchanged() {
    let _g = shared();
    let t = T::new();
    let files = [".config/git/config", ".bash_aliases", ".local/bin/tool", ".claude/settings.json", "proj/.npmrc", "proj/.yarnrc.yml", ".vimrc"];
    for f in files {
        plant(&t.home.join(f), &format!("ORIGINAL {f}"));
    }
    let mut script = String::new();
    for f in files {
        script.push_str(&format!("echo evil >> {f}; rm -f {f}; mv {f} {f}.x; "));
    }
    script.push_str("mv .config c2; mv .local l2; echo ok > done");
    let o = Run::new(&t.home, &t.root).workspace(&t.home).sh(&script).run();
    assert_eq!(read(&t.home.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    for f in files {
        assert_eq!(read(&t.home.join(f)).as_deref(), Some(format!("ORIGINAL {f}").as_str()), "{f} changed: {}", o.all());
    }
}

#[test]
fn a_commondir_target_is_judged_as_a_git_directory() {
    let _g = shared();
    let t = T::new();
    // An existing repository taken over through a new commondir, and a new
    // one whose common directory has no HEAD.
    host_repo(&t, &t.ws.join("r"));
    let (m1, c1) = marker(&t, "common-existing");
    let (m2, c2) = marker(&t, "common-new");
    let o = t.sh(&format!(
        "mkdir -p common/hooks && cp -a r/.git/objects r/.git/refs common/ && printf '[core]\\n\\tfsmonitor = \"{c1}; false\"\\n' > common/config && \
         printf '#!/bin/sh\\n{c1}\\n' > common/hooks/pre-commit && chmod +x common/hooks/pre-commit && echo ../../common > r/.git/commondir; \
         mkdir -p c2/objects c2/refs/heads p/.git && printf '[core]\\n\\tfsmonitor = \"{c2}; false\"\\n' > c2/config && \
         echo 'ref: refs/heads/main' > p/.git/HEAD && echo ../../c2 > p/.git/commondir; echo ok > done"
    ));
    assert_done(&t, &o);
    use_repo(&t, &t.ws.join("r"));
    use_repo(&t, &t.ws.join("p"));
    assert_not_run(&m1, &o);
    assert_not_run(&m2, &o);
}

#[test]
fn an_alias_is_not_inert() {
    let _g = shared();
    let t = T::new();
    host_repo(&t, &t.ws);
    let (m, c) = marker(&t, "alias");
    let o = t.sh(&format!("git init -q r && git -C r config alias.st '-c \"core.fsmonitor={c}; false\" status' && echo ok > done"));
    assert_done(&t, &o);
    let _ = hgit(&t, &t.ws.join("r"), &["st"]);
    assert_not_run(&m, &o);
    assert!(violations(&o).contains("alias"), "{}", o.all());
}

#[test]
fn state_in_a_directory_made_unwritable_or_with_decoy_names_does_not_stay() {
    let _g = shared();
    let t = T::new();
    let (m, c) = marker(&t, "decoy");
    // Decoys at the names a predictable scheme would use (a root caller's
    // sandbox sees the launcher's pid in its uid map), a read-only git
    // directory, an unreadable hooks directory.
    let o = t.sh(&format!(
        "git init -q r && printf '[core]\\n\\tfsmonitor = \"{c}; false\"\\n' >> r/.git/config && \
         P=$(awk '{{print $2-2000000000}}' /proc/self/uid_map); [ \"$P\" -gt 0 ] && for n in $(seq 1 20); do touch r/.git/.config.sharkcage-quarantine-$P-$n; done; chmod 555 r/.git; \
         git init -q s && printf '#!/bin/sh\\n{c}\\n' > s/.git/hooks/post-checkout && chmod +x s/.git/hooks/post-checkout && chmod 000 s/.git/hooks; \
         echo ok > done"
    ));
    assert_done(&t, &o);
    let _ = std::fs::set_permissions(t.ws.join("r/.git"), std::os::unix::fs::PermissionsExt::from_mode(0o755));
    use_repo(&t, &t.ws.join("r"));
    use_repo(&t, &t.ws.join("s"));
    assert_not_run(&m, &o);
    assert!(!violations(&o).contains("could NOT"), "{}", o.all());
}

#[test]
fn hooks_path_applies_to_every_worktree() {
    let _g = shared();
    let t = T::new();
    // The workspace is a linked worktree of a repository outside it whose
    // config names a relative hooks directory.
    let main = t.root.join("main");
    host_repo(&t, &main);
    hgit_ok(&t, &main, &["config", "core.hooksPath", ".githooks"]);
    let wt = t.root.join("wt");
    hgit_ok(&t, &main, &["worktree", "add", "-q", &wt.display().to_string()]);
    let (m1, c1) = marker(&t, "wt-outside");
    let o = Run::new(&t.home, &wt).workspace(&wt).sh(&format!("mkdir -p .githooks && printf '#!/bin/sh\\n{c1}\\n' > .githooks/pre-commit && chmod +x .githooks/pre-commit && echo ok > done")).run();
    assert_eq!(read(&wt.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    use_repo(&t, &wt);
    assert_not_run(&m1, &o);
    // A repository in the workspace with a linked worktree inside it too.
    host_repo(&t, &t.ws.join("proj"));
    hgit_ok(&t, &t.ws.join("proj"), &["config", "core.hooksPath", ".githooks"]);
    hgit_ok(&t, &t.ws.join("proj"), &["worktree", "add", "-q", &t.ws.join("wt2").display().to_string()]);
    let (m2, c2) = marker(&t, "wt-inside");
    let o = t.sh(&format!("mkdir -p wt2/.githooks && printf '#!/bin/sh\\n{c2}\\n' > wt2/.githooks/pre-commit && chmod +x wt2/.githooks/pre-commit && echo ok > done"));
    assert_done(&t, &o);
    use_repo(&t, &t.ws.join("wt2"));
    assert_not_run(&m2, &o);
}

#[test]
fn a_gitfile_cannot_leave_through_a_symlink_and_dotdot() {
    let _g = shared();
    let t = T::new();
    let outside = t.root.join("outside");
    host_repo(&t, &outside.join("repo"));
    let (m, c) = marker(&t, "dotdot");
    // The host repository's own hook: run if git is pointed at it from here.
    plant(&outside.join("repo/.git/hooks/pre-commit"), &format!("#!/bin/sh\n{c}\n"));
    set_mode(&outside.join("repo/.git/hooks/pre-commit"), 0o755);
    std::fs::create_dir_all(outside.join("x")).unwrap();
    let o = t.sh(&format!("mkdir -p w && ln -s {} lnk && echo 'gitdir: ../lnk/../repo/.git' > w/.git && echo ok > done", outside.join("x").display()));
    assert_done(&t, &o);
    let _ = hgit(&t, &t.ws.join("w"), &["commit", "-q", "--allow-empty", "-m", "x"]);
    assert_not_run(&m, &o);
}

#[test]
fn more_startup_files_in_a_writable_home() {
    let _g = shared();
    let t = T::new();
    let files = [
        "bin/git",
        "go/bin/git",
        ".cargo/env",
        ".cargo/bin/git",
        ".inputrc",
        ".lesskey",
        ".gdbinit",
        ".npm-init.js",
        ".selected_editor",
        ".bash_completion",
        ".local/lib/python3.11/site-packages/zz.pth",
        ".local/share/bash-completion/completions/git",
        ".pyenv/bin/python",
        ".nvm/nvm.sh",
    ];
    let mut script = String::new();
    for f in files {
        script.push_str(&format!("mkdir -p \"$(dirname {f})\"; echo evil > {f}; "));
    }
    script.push_str("mkdir -p proj/bin && echo ok > proj/bin/tool; echo ok > done");
    let o = Run::new(&t.home, &t.root).workspace(&t.home).sh(&script).run();
    assert_eq!(read(&t.home.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    for f in files {
        assert!(!t.home.join(f).exists(), "{f} created inside is on the host: {}", o.all());
    }
    assert_eq!(read(&t.home.join("proj/bin/tool")).as_deref(), Some("ok\n"), "a project's bin/ is an ordinary directory");
}

#[test]
fn a_repository_deeper_than_path_max_reached_through_symlinks_is_disarmed() {
    let _g = shared();
    let t = T::new();
    let (m, c) = marker(&t, "deep");
    // Directories with long names nested beyond PATH_MAX, a repository at
    // the bottom, and a short way to it through symlinks.
    let script = format!(
        r#"
import os, subprocess
os.chdir({ws:?})
subprocess.run(['git','init','-q','repo'],check=True)
subprocess.run(['git','-C','repo','config','core.fsmonitor',{c:?} + '; false'],check=True)
N='d'*250
os.mkdir('L'); os.chdir('L')
for i in range(10):
    os.mkdir(N+str(i)); os.chdir(N+str(i))
A=os.open('.',os.O_RDONLY)
rel=[]
for i in range(10,20):
    os.mkdir(N+str(i)); os.chdir(N+str(i)); rel.append(N+str(i))
B=os.open('.',os.O_RDONLY)
os.fchdir(A)
os.symlink('/'.join(rel),'s2')
os.chdir({ws:?})
os.symlink('L/'+'/'.join(N+str(i) for i in range(10)),'s1')
os.rename('repo', '/proc/self/fd/%d/repo' % B)
os.mkdir('proj'); os.symlink('../s1/s2/repo/.git','proj/.git')
open('done','w').write('ok\n')
"#,
        ws = t.ws.display().to_string(),
        c = c
    );
    let o = t.sc().cmd(["python3", "-c", &script]).run();
    assert_done(&t, &o);
    use_repo(&t, &t.ws.join("proj"));
    assert_not_run(&m, &o);
    // The next call in that workspace still works (nothing too deep to mount).
    let o2 = t.sh("echo again > again");
    assert_eq!(read(&t.ws.join("again")).as_deref(), Some("again\n"), "a later call failed: {}", o2.all());
}

#[test]
fn a_workspace_made_unreadable_is_still_examined() {
    let _g = shared();
    let t = T::new();
    let (m, c) = marker(&t, "rootchmod");
    let o = t.sh(&format!("git init -q r && git -C r config core.fsmonitor '{c}; false' && echo ok > done && chmod 300 ."));
    set_mode(&t.ws, 0o755);
    assert_done(&t, &o);
    use_repo(&t, &t.ws.join("r"));
    assert_not_run(&m, &o);
}

#[test]
fn many_inert_configs_do_not_hide_a_hook() {
    let _g = shared();
    let t = T::new();
    host_repo(&t, &t.ws.join("main"));
    hgit_ok(&t, &t.ws.join("main"), &["config", "core.hooksPath", ".githooks"]);
    let o = t.sh("for i in $(seq 1100); do mkdir -p a/$i/.git; printf '[core]\\n\\tbare = false\\n' > a/$i/.git/config; done; echo ok > done");
    assert_done(&t, &o);
    let (m, c) = marker(&t, "manyconfigs");
    let o = t.sh(&format!("mkdir -p main/.githooks && printf '#!/bin/sh\\n{c}\\n' > main/.githooks/pre-commit && chmod +x main/.githooks/pre-commit && echo ok > done"));
    assert_done(&t, &o);
    use_repo(&t, &t.ws.join("main"));
    assert_not_run(&m, &o);
}

#[test]
fn a_worktree_name_with_a_trailing_space_keeps_its_hooks_path() {
    let _g = shared();
    let t = T::new();
    let main = t.ws.join("main");
    host_repo(&t, &main);
    hgit_ok(&t, &main, &["config", "core.hooksPath", ".githooks"]);
    hgit_ok(&t, &main, &["worktree", "add", "-q", &t.ws.join("wtb").display().to_string()]);
    let (m, c) = marker(&t, "wtspace");
    // A new worktree whose private directory ends in a space: git keeps the
    // space when it reads the gitfile, so hooks come from `wtc/.githooks`.
    let o = t.sh(&format!(
        "d='main/.git/worktrees/wtc ' && mkdir -p \"$d\" && cp main/.git/worktrees/wtb/HEAD main/.git/worktrees/wtb/commondir \"$d/\" && \
         echo {ws}/wtc/.git > \"$d/gitdir\" && mkdir wtc && printf 'gitdir: {ws}/main/.git/worktrees/wtc \\n' > wtc/.git && \
         git -C wtc rev-parse --git-dir > gd && mkdir -p wtc/.githooks && \
         printf '#!/bin/sh\\n{c}\\n' > wtc/.githooks/pre-commit && chmod +x wtc/.githooks/pre-commit && echo ok > done",
        ws = t.ws.display()
    ));
    assert_done(&t, &o);
    assert!(read(&t.ws.join("gd")).unwrap_or_default().ends_with("wtc \n"), "git reads the name with its space: {:?}", read(&t.ws.join("gd")));
    use_repo(&t, &t.ws.join("wtc"));
    assert_not_run(&m, &o);
}

#[test]
fn a_rebase_left_to_continue_runs_nothing_planted() {
    let _g = shared();
    let t = T::new();
    let (m, c) = marker(&t, "rebase");
    let o = t
        .sc()
        .env("GIT_AUTHOR_NAME", "a")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "a")
        .env("GIT_COMMITTER_EMAIL", "a@example.com")
        .policy(r#"{"env":["GIT_AUTHOR_NAME","GIT_AUTHOR_EMAIL","GIT_COMMITTER_NAME","GIT_COMMITTER_EMAIL"]}"#)
        .sh(&format!(
            "git init -q r && cd r && for i in 1 2 3; do echo $i > f$i; git add f$i; git commit -qm c$i; done && \
             printf '#!/bin/sh\\nprintf \"break\\\\npick %%s\\\\npick %%s\\\\n\" $(git rev-parse --short HEAD) $(git rev-parse --short HEAD~1) > \"$1\"\\n' > /tmp/ed.sh && chmod +x /tmp/ed.sh && \
             (GIT_SEQUENCE_EDITOR=/tmp/ed.sh git rebase -i HEAD~2 >/dev/null 2>&1 || true) && \
             mkdir -p git-merge- && printf '#!/bin/sh\\n{c}\\nexit 1\\n' > git-merge-/x && chmod +x git-merge-/x && \
             echo /x > .git/rebase-merge/strategy && echo 'exec {c}' >> .git/rebase-merge/git-rebase-todo; cd .. && echo ok > done"
        ))
        .run();
    assert_done(&t, &o);
    let _ = hgit(&t, &t.ws.join("r"), &["rebase", "--continue"]);
    assert_not_run(&m, &o);
}

#[test]
fn a_call_in_a_workspace_with_many_repositories_does_not_hang() {
    let _g = shared();
    let t = T::new();
    for i in 0..150 {
        std::fs::create_dir_all(t.ws.join(format!("r{i}/.git/hooks"))).unwrap();
        std::fs::create_dir_all(t.ws.join(format!("r{i}/.git/objects"))).unwrap();
        std::fs::create_dir_all(t.ws.join(format!("r{i}/.git/refs"))).unwrap();
        std::fs::write(t.ws.join(format!("r{i}/.git/HEAD")), "ref: refs/heads/main\n").unwrap();
        std::fs::write(t.ws.join(format!("r{i}/.git/config")), "[core]\n\tbare = false\n").unwrap();
    }
    let o = t.sc().opt("--timeout").opt("20").sh("echo ok > done").run();
    assert_done(&t, &o);
    assert!(o.elapsed < std::time::Duration::from_secs(15), "a call took {:?}", o.elapsed);
    // Every existing config stayed read-only.
    let o = t.sh("echo '[core] fsmonitor = x' >> r7/.git/config; echo ok > done");
    assert_done(&t, &o);
    assert_eq!(read(&t.ws.join("r7/.git/config")).as_deref(), Some("[core]\n\tbare = false\n"));
}

#[test]
fn python_and_toolchain_startup_places_in_a_writable_home() {
    let _g = shared();
    let t = T::new();
    std::fs::create_dir_all(t.home.join("other/python3.11/site-packages")).unwrap();
    let files = [
        ".local/lib/python3.11/site-packages/usercustomize.py",
        "proj/rust-toolchain.toml",
        ".rustup/settings.toml",
        ".less",
        ".pdbrc",
        ".ipython/profile_default/startup/00.py",
    ];
    let mut script = String::new();
    for f in files {
        script.push_str(&format!("mkdir -p \"$(dirname {f})\"; echo evil > {f}; "));
    }
    // A symlink on the way to the user's site-packages.
    script.push_str("mkdir -p l2 && ln -s ../other l2/lib && mkdir -p .l3 && echo done; echo ok > done");
    let o = Run::new(&t.home, &t.root).workspace(&t.home).sh(&format!("{script}; rm -rf .local && mkdir .local && ln -s ../other .local/lib")).run();
    assert_eq!(read(&t.home.join("done")).as_deref(), Some("ok\n"), "control: {}", o.all());
    for f in files {
        assert!(!t.home.join(f).exists(), "{f} created inside is on the host: {}", o.all());
    }
    assert!(t.home.join(".local/lib").symlink_metadata().is_err(), "a symlinked ~/.local/lib stayed: {}", o.all());
}

#[test]
fn a_root_caller_can_start_in_a_private_working_directory() {
    let _g = shared();
    if !is_root() {
        eprintln!("SKIP: the shift applies to root callers (this suite also runs as root)");
        return;
    }
    let t = T::new();
    let here = t.root.join("priv");
    plant(&here.join("f"), "HERE");
    set_mode(&here, 0o700);
    let o = Run::new(&t.home, &here).no_workspace().sh("cat f").run();
    assert!(o.out().contains("HERE"), "{}", o.all());
}

#[test]
fn with_allow_git_config_a_config_changed_in_place_is_still_judged() {
    // allowGitConfig leaves repository configs writable; an append keeps the
    // file's inode, so it is judged by content: a planted fsmonitor is moved
    // aside, while an untouched config (even one with a non-inert key the
    // user set) and an inert change stay.
    let _g = shared();
    let t = T::new();
    host_repo(&t, &t.ws);
    let other = t.ws.join("other");
    host_repo(&t, &other);
    hgit_ok(&t, &other, &["config", "core.editor", "vi"]);
    let other_cfg = read(&other.join(".git/config")).unwrap();
    let inert = t.ws.join("inert");
    host_repo(&t, &inert);
    let (m, c) = marker(&t, "allowgitconfig");
    let o = t
        .sc()
        .policy(r#"{"filesystem":{"allowGitConfig":true}}"#)
        .sh(&format!("printf '[core]\\n\\tfsmonitor = {c}\\n' >> .git/config; printf '[user]\\n\\temail = a@example.com\\n' >> inert/.git/config; echo ok > done"))
        .run();
    assert_done(&t, &o);
    use_repo(&t, &t.ws);
    assert_not_run(&m, &o);
    let v = violations(&o);
    assert!(v.contains("core.fsmonitor"), "not reported: {v}");
    assert!(!read(&t.ws.join(".git/config")).unwrap_or_default().contains("fsmonitor"), "the planted key is still in the config");
    assert_eq!(read(&other.join(".git/config")).unwrap(), other_cfg, "an untouched config was changed or moved");
    assert!(read(&inert.join(".git/config")).unwrap().contains("a@example.com"), "an inert change was not kept");
}

#[test]
fn a_workspace_inside_a_hidden_directory_keeps_its_git_state_read_only() {
    // OpenClaw's default workspace is `~/.openclaw/workspace`, inside the
    // hidden `~/.openclaw`: the workspace is visible again, and the state it
    // holds (a repository's config, a nested repository's hooks, a
    // hooksPath directory) is read-only like anywhere else.
    let _g = shared();
    let t = T::new();
    let ws = t.home.join(".openclaw/workspace");
    host_repo(&t, &ws);
    host_repo(&t, &ws.join("deep/r"));
    hgit_ok(&t, &ws.join("deep/r"), &["config", "core.hooksPath", ".githooks"]);
    let cfg = read(&ws.join(".git/config")).unwrap();
    let (m, c) = marker(&t, "openclaw-ws");
    let o = Run::new(&t.home, &ws)
        .workspace(&ws)
        .sh(&format!(
            "printf '[core]\\n\\tfsmonitor = {c}\\n' >> .git/config; \
             printf '#!/bin/sh\\n{c}\\n' > deep/r/.git/hooks/pre-commit; chmod +x deep/r/.git/hooks/pre-commit; \
             mkdir -p deep/r/.githooks; printf '#!/bin/sh\\n{c}\\n' > deep/r/.githooks/pre-commit; chmod +x deep/r/.githooks/pre-commit; \
             mkdir -p .openclaw/extensions/sharkcage; echo 'export default {{}}' > .openclaw/extensions/sharkcage/index.js; \
             echo ok > done"
        ))
        .run();
    assert_eq!(read(&ws.join("done")).as_deref(), Some("ok\n"), "control: the script ran to its end: {}", o.all());
    assert_eq!(read(&ws.join(".git/config")).unwrap(), cfg, "the repository's config changed on the host");
    // A workspace plugin the gateway would load at its next start.
    assert!(!ws.join(".openclaw/extensions/sharkcage/index.js").exists(), "a workspace plugin was left for the gateway: {}", o.all());
    assert!(violations(&o).contains(".openclaw/extensions"), "not reported: {}", violations(&o));
    use_repo(&t, &ws);
    use_repo(&t, &ws.join("deep/r"));
    assert_not_run(&m, &o);
}

#[test]
fn a_global_hooks_path_written_with_dot_slash_is_protected_too() {
    // `core.hooksPath = ./.githooks` (or `../hooks`) in the user's global
    // config names a hooks directory in every worktree, as `.githooks` does.
    let _g = shared();
    let t = T::new();
    for (tag, hp, dir) in [("dot", "./.githooks", "repo/.githooks"), ("up", "../hooks", "hooks")] {
        std::fs::write(t.home.join(".gitconfig"), format!("[core]\n\thooksPath = {hp}\n")).unwrap();
        let repo = t.ws.join("repo");
        let _ = std::fs::remove_dir_all(&repo);
        let _ = std::fs::remove_dir_all(t.ws.join("hooks"));
        host_repo(&t, &repo);
        let (m, c) = marker(&t, tag);
        let o = t.sh(&format!("mkdir -p {dir}; printf '#!/bin/sh\\n{c}\\n' > {dir}/pre-commit; chmod +x {dir}/pre-commit; echo ok > done"));
        assert_done(&t, &o);
        let _ = hgit(&t, &repo, &["commit", "-q", "--allow-empty", "-m", "later"]);
        assert_not_run(&m, &o);
        assert!(violations(&o).contains("pre-commit") || violations(&o).contains(dir), "{hp}: not reported: {}", violations(&o));
    }
}

#[test]
fn a_global_hooks_path_of_two_parts_protects_that_path_not_every_directory_of_its_first_name() {
    // `core.hooksPath = .github/hooks` in the global config: `hooks` in any
    // `.github` runs (a repository made later too); `.github/workflows` is
    // ordinary project content and stays writable.
    let _g = shared();
    let t = T::new();
    std::fs::write(t.home.join(".gitconfig"), "[core]\n\thooksPath = .github/hooks\n").unwrap();
    let repo = t.ws.join("repo");
    host_repo(&t, &repo);
    let (m, c) = marker(&t, "two");
    let o = t.sh(&format!(
        "mkdir -p repo/.github/workflows repo/.github/hooks && echo 'on: push' > repo/.github/workflows/ci.yml \
         && printf '#!/bin/sh\\n{c}\\n' > repo/.github/hooks/pre-commit && chmod +x repo/.github/hooks/pre-commit; echo ok > done"
    ));
    assert_done(&t, &o);
    let _ = hgit(&t, &repo, &["commit", "-q", "--allow-empty", "-m", "later"]);
    assert_not_run(&m, &o);
    assert!(violations(&o).contains("pre-commit") || violations(&o).contains(".github/hooks"), "not reported: {}", violations(&o));
    assert_eq!(std::fs::read_to_string(repo.join(".github/workflows/ci.yml")).unwrap(), "on: push\n", "ordinary .github content was not kept");
}
