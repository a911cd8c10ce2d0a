use super::*;

struct Fx {
    _d: tempfile::TempDir,
    root: PathBuf,
    ws: PathBuf,
    secret: PathBuf,
    outside: PathBuf,
    b: FsBridge,
}

/// Test files must not be under /tmp: that is private inside the sandbox,
/// and the bridge applies the sandbox's view. ($SC_TEST_TMPDIR is set by
/// scripts/test.js when the checkout itself is under /tmp.)
fn test_dir() -> tempfile::TempDir {
    let base = std::env::var_os("SC_TEST_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tmp")));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().prefix("fsbridge-").tempdir_in(base).unwrap()
}

fn fx() -> Fx {
    let d = test_dir();
    let root = std::fs::canonicalize(d.path()).unwrap();
    let ws = root.join("ws");
    let secret = root.join("home/.ssh");
    let outside = root.join("outside");
    for p in [&ws, &secret, &outside] {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(secret.join("id_rsa"), "KEY").unwrap();
    std::fs::write(outside.join("o.txt"), "OUT").unwrap();
    std::fs::write(ws.join("a.txt"), "A").unwrap();
    std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
    let b = FsBridge::new(vec![secret.clone()], vec![], vec![ws.clone()], ws.clone());
    Fx { _d: d, root, ws, secret, outside, b }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn reads_follow_the_read_rules() {
    let f = fx();
    assert_eq!(f.b.read_file("a.txt", None).unwrap(), b"A");
    assert_eq!(f.b.read_file(&s(&f.outside.join("o.txt")), None).unwrap(), b"OUT");
    assert_eq!(f.b.read_file(&s(&f.ws.join("a.txt")), Some(0)).unwrap(), b"");
    assert!(matches!(f.b.read_file(&s(&f.secret.join("id_rsa")), None), Err(FsError::NotReadable(_))));
    // Through a symlink in the workspace: refused (escapes the root).
    std::os::unix::fs::symlink(f.secret.join("id_rsa"), f.ws.join("link")).unwrap();
    assert!(f.b.read_file("link", None).is_err());
    assert!(matches!(f.b.read_file("../home/.ssh/id_rsa", None), Err(FsError::NotReadable(_))));
    // Private areas of the sandbox.
    assert!(matches!(f.b.read_file("/proc/self/environ", None), Err(FsError::NotReadable(_))));
    assert_eq!(f.b.stat("a.txt").unwrap().unwrap().kind, "file");
    assert_eq!(f.b.stat("missing").unwrap(), None);
}

#[test]
fn writes_stay_in_writable_roots_and_off_protected_names() {
    let f = fx();
    f.b.write_file("new/dir/b.txt", b"B", true).unwrap();
    assert_eq!(std::fs::read(f.ws.join("new/dir/b.txt")).unwrap(), b"B");
    assert!(matches!(f.b.write_file(&s(&f.outside.join("x")), b"x", false), Err(FsError::NotWritable(_))));
    assert!(!f.outside.join("x").exists());
    for p in [
        ".bashrc",
        ".git/hooks/pre-commit",
        ".git/config",
        ".vscode/settings.json",
        "sub/.mcp.json",
        ".claude/commands/x.md",
        ".git/commondir",
        ".claude/settings.json",
        ".claude/settings.local.json",
        "deep/a/b/c/d/e/.git",
        ".git/modules/sub/config",
        ".git/modules/sub/hooks/post-checkout",
        ".git/worktrees/wt/config.worktree",
        "x/.local/bin/git",
        ".config/git/config",
        ".npmrc",
        "p/.yarnrc.yml",
        ".bash_aliases",
        ".config/fish/config.fish",
        ".vimrc",
        ".config/nvim/init.lua",
    ] {
        assert!(matches!(f.b.write_file(p, b"evil", true), Err(FsError::Protected { .. })), "{p}");
        assert!(!f.ws.join(p).exists(), "{p} was created");
    }
    // `..` out of the root and a symlinked directory out of the root.
    assert!(f.b.write_file("../outside/y", b"y", false).is_err());
    assert!(!f.outside.join("y").exists());
    std::os::unix::fs::symlink(&f.outside, f.ws.join("out")).unwrap();
    assert!(matches!(f.b.write_file("out/z", b"z", false), Err(FsError::Escapes(_))));
    assert!(!f.outside.join("z").exists());
    // A symlinked directory inside the root that points at a protected place.
    std::os::unix::fs::symlink(f.ws.join(".git"), f.ws.join("g")).unwrap();
    assert!(f.b.write_file("g/hooks/post-merge", b"evil", false).is_err());
    assert!(!f.ws.join(".git/hooks/post-merge").exists());
    // No temporary files are left.
    let leftovers: Vec<_> = std::fs::read_dir(&f.ws).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".sc-tmp-")).collect();
    assert!(leftovers.is_empty());
    let _ = &f.root;
}

#[test]
fn exclusive_create_has_exactly_one_winner() {
    let f = fx();
    assert!(f.b.create_file_exclusive("c.txt", b"one", false).unwrap());
    assert!(!f.b.create_file_exclusive("c.txt", b"two", false).unwrap());
    assert_eq!(std::fs::read(f.ws.join("c.txt")).unwrap(), b"one");
    let b = std::sync::Arc::new(f.b);
    let wins: usize = (0..8)
        .map(|i| {
            let b = b.clone();
            std::thread::spawn(move || b.create_file_exclusive("race.txt", format!("{i}").as_bytes(), false).unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap() as usize)
        .sum();
    assert_eq!(wins, 1);
}

#[test]
fn list_mkdir_remove_rename() {
    let f = fx();
    f.b.mkdirp("d/e/f").unwrap();
    f.b.write_file("d/e/f/x", b"x", false).unwrap();
    let names: Vec<String> = f.b.read_dir(".").unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"d".to_string()) && names.contains(&"a.txt".to_string()));
    f.b.rename("d/e/f/x", "d/y").unwrap();
    assert!(f.ws.join("d/y").exists());
    assert!(matches!(f.b.rename("d/y", ".bashrc"), Err(FsError::Protected { .. })));
    f.b.remove("d", true, false).unwrap();
    assert!(!f.ws.join("d").exists());
    f.b.remove("nothing", false, true).unwrap();
    assert!(matches!(f.b.remove(".git/hooks", true, false), Err(FsError::Protected { .. })));
    assert!(f.ws.join(".git/hooks").exists());
    // Removing a symlink removes the link, not its target.
    std::os::unix::fs::symlink(&f.outside, f.ws.join("lnk")).unwrap();
    f.b.remove("lnk", true, false).unwrap();
    assert!(f.outside.join("o.txt").exists());
    // Listing a hidden directory is refused.
    assert!(matches!(f.b.read_dir(&s(&f.secret)), Err(FsError::NotReadable(_))));
}

#[test]
fn workspace_inside_a_hidden_directory_is_usable() {
    let d = test_dir();
    let root = std::fs::canonicalize(d.path()).unwrap();
    let oc = root.join("home/.openclaw");
    let ws = oc.join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(oc.join("openclaw.json"), "TOKEN").unwrap();
    std::fs::write(ws.join("a.txt"), "A").unwrap();
    let b = FsBridge::new(vec![oc.clone()], vec![], vec![ws.clone()], ws.clone());
    assert_eq!(b.read_file("a.txt", None).unwrap(), b"A");
    b.write_file("b.txt", b"B", false).unwrap();
    assert!(matches!(b.read_file(&oc.join("openclaw.json").display().to_string(), None), Err(FsError::NotReadable(_))));
    assert!(matches!(b.read_file("../openclaw.json", None), Err(FsError::NotReadable(_))));
}

#[test]
fn git_state_is_refused_by_rule_at_any_depth() {
    let f = fx();
    let deep = "a/b/c/d/e/f/g";
    // A repository in any subdirectory: the operation that completes
    // `objects/` + `refs/` (a repository, or a worktree's common directory)
    // or `HEAD` + `commondir` is refused, whichever comes last.
    for (order, refused_at) in [(&["HEAD", "objects", "refs"][..], 2), (&["refs", "HEAD", "objects"][..], 2), (&["objects", "refs"][..], 1), (&["HEAD", "commondir"][..], 1)] {
        let dir = format!("{deep}/{}", order.join("-"));
        for (i, n) in order.iter().enumerate() {
            let p = format!("{dir}/{n}");
            let r = if matches!(*n, "HEAD" | "commondir") { f.b.write_file(&p, b"ref: refs/heads/main\n", true) } else { f.b.mkdirp(&p) };
            if i < refused_at {
                r.unwrap_or_else(|e| panic!("{p}: {e}"));
            } else {
                let e = r.unwrap_err();
                assert!(matches!(e, FsError::Protected { .. }), "{p}: {e}");
                assert!(e.to_string().contains("git repository"), "{e}");
                assert!(!f.ws.join(&p).exists());
            }
        }
    }
    // In an existing repository (made on the host), its config and hooks.
    for d in ["r/objects", "r/refs"] {
        std::fs::create_dir_all(f.ws.join(d)).unwrap();
    }
    std::fs::write(f.ws.join("r/HEAD"), "ref: refs/heads/main\n").unwrap();
    for p in ["r/config", "r/hooks/pre-commit", "r/config.worktree", "r/commondir"] {
        assert!(matches!(f.b.write_file(p, b"[core]\n\tfsmonitor = x\n", true), Err(FsError::Protected { .. })), "{p}");
        assert!(!f.ws.join(p).exists(), "{p}");
    }
    // A `.git` file, a directory renamed onto `.git`, a mkdir of `.git`.
    assert!(matches!(f.b.write_file("sub/.git", b"gitdir: /etc\n", true), Err(FsError::Protected { .. })));
    f.b.mkdirp("plain").unwrap();
    assert!(matches!(f.b.rename("plain", "other/.git"), Err(FsError::Protected { .. })));
    assert!(matches!(f.b.mkdirp("n/.git"), Err(FsError::Protected { .. })));
    assert!(!f.ws.join("n/.git").exists() && !f.ws.join("other/.git").exists() && !f.ws.join("sub/.git").exists());
    // A symlinked `.config` leads nowhere protected.
    std::fs::create_dir_all(f.ws.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("elsewhere", f.ws.join(".config")).unwrap();
    assert!(matches!(f.b.write_file(".config/fish/config.fish", b"x", true), Err(FsError::Protected { .. })));
    assert!(!f.ws.join("elsewhere/fish").exists());
    // Ordinary files named like git's are fine outside git directories.
    f.b.write_file("notes/config", b"x", true).unwrap();
    f.b.write_file("notes/HEAD", b"x", true).unwrap();
    f.b.mkdirp("notes/hooks").unwrap();
}

#[test]
fn places_named_by_existing_configs_are_refused() {
    let f = fx();
    let hooks = f.ws.join(".githooks");
    let inc = f.ws.join("proj/project.gitconfig");
    plant_file(&inc, "[user]\n\tname = a\n");
    std::fs::create_dir_all(f.ws.join("config")).unwrap();
    std::fs::write(f.ws.join("config/secrets.json"), "SECRET").unwrap();
    let b = FsBridge { protected: vec![hooks.clone(), inc.clone()], ..FsBridge::new(vec![f.secret.clone(), f.ws.join("config/secrets.json")], vec![], vec![f.ws.clone()], f.ws.clone()) };
    assert!(matches!(b.write_file(".githooks/pre-commit", b"x", true), Err(FsError::Protected { .. })));
    assert!(!hooks.exists());
    // Not by moving a parent away and back, nor by replacing or removing it.
    assert!(matches!(b.rename("proj", "proj_x"), Err(FsError::Protected { .. })));
    assert!(matches!(b.remove("proj", true, false), Err(FsError::Protected { .. })));
    b.mkdirp("empty").unwrap();
    assert!(matches!(b.rename("empty", "proj"), Err(FsError::Protected { .. })));
    assert_eq!(std::fs::read_to_string(&inc).unwrap(), "[user]\n\tname = a\n");
    // A hidden file's directory neither (its secret would become readable).
    assert!(matches!(b.rename("config", "c2"), Err(FsError::Protected { .. })));
    assert!(b.read_file("c2/secrets.json", None).is_err());
    assert!(matches!(b.read_file("config/secrets.json", None), Err(FsError::NotReadable(_))));
}

fn plant_file(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

/// A root process's bridge gives the answers a root caller's (shifted)
/// sandbox gets: root-only files elsewhere are not readable, its own places
/// behave as the sandbox's idmapped views (owner rights, no override).
#[test]
fn a_root_bridge_reads_with_the_sandboxs_rights() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let f = fx();
    for d in [&f.root, &f.outside, &f.ws] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let secret = f.outside.join("db.key");
    std::fs::write(&secret, "ROOT-ONLY").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(f.ws.join("mine.key"), "MINE").unwrap();
    std::fs::set_permissions(f.ws.join("mine.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(f.ws.join("none"), "NONE").unwrap();
    std::fs::set_permissions(f.ws.join("none"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let b = FsBridge::new(vec![f.secret.clone()], vec![], vec![f.ws.clone()], f.ws.clone())
        .with_identity(Identity::ShiftedRoot { id: crate::layers::userns::SHIFT_BASE, places: vec![f.ws.clone()] });
    assert!(matches!(b.read_file(&s(&secret), None), Err(FsError::NotReadable(_))), "a root-only file outside the places was read");
    assert!(matches!(b.stat(&s(&secret)), Ok(Some(_))), "stat needs only search rights, as in the sandbox");
    assert_eq!(b.read_file("o.txt", None).ok(), None, "not in the workspace: relative to it");
    assert_eq!(b.read_file(&s(&f.outside.join("o.txt")), None).unwrap(), b"OUT", "a world-readable file is readable");
    assert_eq!(b.read_file("mine.key", None).unwrap(), b"MINE", "root's own file in the workspace");
    assert!(b.read_file("none", None).is_err(), "mode 000 is unreadable for the sandbox's root too");
    // Through a symlink in the workspace to the root-only file: refused.
    std::os::unix::fs::symlink(&secret, f.ws.join("to-key")).unwrap();
    assert!(b.read_file("to-key", None).is_err());
    // Writes still work, owned by root.
    b.write_file("new.txt", b"N", false).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(f.ws.join("new.txt")).unwrap()), 0);
    // And the thread got its rights back.
    assert_eq!(std::fs::read(&secret).unwrap(), b"ROOT-ONLY");
}

#[test]
fn a_directory_moved_into_place_is_judged_with_what_it_holds() {
    let f = fx();
    f.b.write_file("x/git/config", b"[core]\n\tfsmonitor = x\n", true).unwrap();
    let e = f.b.rename("x", ".config").unwrap_err();
    assert!(matches!(e, FsError::Protected { .. }), "{e}");
    assert!(e.to_string().contains(".config/git"), "{e}");
    assert!(f.ws.join("x/git/config").exists() && !f.ws.join(".config").exists());
    f.b.write_file("p/z/config.toml", b"[build]\nrustc-wrapper = \"/bin/sh\"\n", true).unwrap();
    assert!(matches!(f.b.rename("p/z", "p/.cargo"), Err(FsError::Protected { .. })));
    // An ordinary directory moves.
    f.b.write_file("y/a.txt", b"a", true).unwrap();
    f.b.rename("y", "y2").unwrap();
    assert!(f.ws.join("y2/a.txt").exists());
}

#[test]
fn startup_places_of_a_home_are_refused_only_there() {
    let f = fx();
    let home = f.ws.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let b = FsBridge { homes: vec![home.clone()], ..FsBridge::new(vec![f.secret.clone()], vec![], vec![f.ws.clone()], f.ws.clone()) };
    for p in ["home/bin/git", "home/go/bin/go", "home/.local/lib/python3.11/site-packages/evil.pth"] {
        assert!(matches!(b.write_file(p, b"x", true), Err(FsError::Protected { .. })), "{p}");
        assert!(!f.ws.join(p).exists(), "{p}");
    }
    b.write_file("proj/bin/tool", b"x", true).unwrap();
    b.write_file("home/.local/lib/python3.11/site-packages/mod.py", b"x", true).unwrap();
}
