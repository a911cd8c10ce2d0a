use super::*;

fn ws() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let w = std::fs::canonicalize(d.path()).unwrap();
    (d, w)
}

fn found(s: &Scan, w: &Path) -> Vec<(String, Role)> {
    let mut v: Vec<(String, Role)> = s.entries.iter().map(|e| (e.path.strip_prefix(w).unwrap().display().to_string(), e.role)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn mk(w: &Path, files: &[&str], dirs: &[&str]) {
    for d in dirs {
        std::fs::create_dir_all(w.join(d)).unwrap();
    }
    for f in files {
        let p = w.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }
}

#[test]
fn finds_git_state_by_rule_at_any_depth_without_following_symlinks() {
    let (_d, w) = ws();
    let deep = "a/b/c/d/e/f/g/h";
    mk(
        &w,
        &[".git/config", ".git/HEAD", ".git/modules/sub/config", ".git/modules/sub/HEAD", ".git/worktrees/wt/HEAD", ".git/worktrees/wt/commondir", ".git/worktrees/wt/gitdir", ".git/worktrees/wt/config.worktree", "sub/.git", &format!("{deep}/bare/HEAD"), &format!("{deep}/bare/config"), "notrepo/HEAD", "notrepo/config", ".bashrc", "x/.claude/settings.json", "x/.claude/other.json", ".git/rebase-merge/git-rebase-todo"],
        &[".git/hooks", ".git/objects", ".git/refs", ".git/modules/sub/hooks", ".git/modules/sub/objects", ".git/modules/sub/refs", &format!("{deep}/bare/objects"), &format!("{deep}/bare/refs"), &format!("{deep}/bare/hooks"), "notrepo/objects", "y/.local/bin"],
    );
    std::os::unix::fs::symlink("/etc", w.join("z-config-link")).unwrap();
    std::os::unix::fs::symlink("elsewhere", w.join("y/.config")).unwrap();
    std::os::unix::fs::symlink(w.join(".git"), w.join("m/.git").parent().map(|p| { std::fs::create_dir_all(p).unwrap(); p.join(".git") }).unwrap()).unwrap();
    let s = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    let got = found(&s, &w);
    let want: Vec<(String, Role)> = vec![
        (".bashrc", Role::Startup),
        (".git/config", Role::GitConfig),
        (".git/hooks", Role::GitHooks),
        (".git/modules/sub/config", Role::GitConfig),
        (".git/modules/sub/hooks", Role::GitHooks),
        (".git/rebase-merge", Role::GitTodo),
        (".git/worktrees/wt/commondir", Role::GitCommonDir),
        (".git/worktrees/wt/config.worktree", Role::GitConfig),
        (".git/worktrees/wt/gitdir", Role::GitDirBack),
        (&format!("{deep}/bare/config") as &str, Role::GitConfig),
        (&format!("{deep}/bare/hooks"), Role::GitHooks),
        ("m/.git", Role::GitLink),
        ("sub/.git", Role::GitLink),
        ("x/.claude/settings.json", Role::Startup),
        ("y/.config", Role::Startup),
        ("y/.local/bin", Role::Startup),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b))
    .collect();
    assert_eq!(got, want);
    let link = s.entries.iter().find(|e| e.path.ends_with("m/.git")).unwrap();
    assert_eq!(link.kind, Kind::Symlink(w.join(".git")));
}

#[test]
fn hidden_paths_and_nested_roots_are_not_walked_twice() {
    let (_d, w) = ws();
    mk(&w, &["secret/.bashrc", "inner/.bashrc", ".bashrc"], &[]);
    let s = scan(&[w.clone(), w.join("inner")], &[w.join("secret")], &[], vec![], &[]);
    let got: Vec<String> = found(&s, &w).into_iter().map(|x| x.0).collect();
    assert_eq!(got, vec![".bashrc", "inner/.bashrc"]);
}

#[test]
fn the_cache_saves_reads_and_still_sees_every_change() {
    let (_d, w) = ws();
    for i in 0..50 {
        mk(&w, &[&format!("p{i}/src/lib.rs")], &[&format!("p{i}/src/deep/er")]);
    }
    let first = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    assert!(first.read >= 200, "{}", first.read);
    // Pretend the scan was long after every change so far (ctime can't be
    // set back, so the test moves the scan time instead).
    let mut trees = first.trees;
    trees[0].scanned_at += 60;
    let again = scan(std::slice::from_ref(&w), &[], &[], trees, &[]);
    assert!(again.read <= 1, "unchanged directories were read again: {}", again.read);
    assert_eq!(again.dirs, first.dirs);
    // A repository planted deep inside after the scan is found.
    std::thread::sleep(std::time::Duration::from_millis(20));
    mk(&w, &["p7/src/deep/er/evil/HEAD", "p7/src/deep/er/evil/config"], &["p7/src/deep/er/evil/objects", "p7/src/deep/er/evil/refs"]);
    mk(&w, &["p9/src/.git"], &[]);
    let mut trees = again.trees;
    trees[0].scanned_at += 60;
    let third = scan(std::slice::from_ref(&w), &[], &[], trees, &[]);
    let got: Vec<String> = found(&third, &w).into_iter().map(|x| x.0).collect();
    assert_eq!(got, vec!["p7/src/deep/er/evil/config", "p9/src/.git"]);
    assert!(third.read <= 6, "{}", third.read);
    // Without trusting the times (a fresh scan), the same.
    let fresh = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    assert_eq!(found(&fresh, &w), found(&third, &w));
}

#[test]
fn a_directory_the_caller_cannot_read_is_opened_up_for_the_scan_and_restored() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, w) = ws();
    mk(&w, &["locked/repo/HEAD", "locked/repo/config"], &["locked/repo/objects", "locked/repo/refs"]);
    std::fs::set_permissions(w.join("locked"), std::fs::Permissions::from_mode(0o300)).unwrap();
    let s = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    let got: Vec<String> = found(&s, &w).into_iter().map(|x| x.0).collect();
    assert_eq!(got, vec!["locked/repo/config"]);
    assert_eq!(std::fs::metadata(w.join("locked")).unwrap().permissions().mode() & 0o7777, 0o300);
    // Listable but not searchable, at two levels.
    mk(&w, &["l2/a/repo/HEAD", "l2/a/repo/config"], &["l2/a/repo/objects", "l2/a/repo/refs"]);
    std::fs::set_permissions(w.join("l2/a"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(w.join("l2"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    let got: Vec<String> = found(&s, &w).into_iter().map(|x| x.0).collect();
    assert!(got.contains(&"l2/a/repo/config".to_string()), "{got:?}; unreadable: {:?}", s.unreadable);
    assert_eq!(std::fs::metadata(w.join("l2")).unwrap().permissions().mode() & 0o7777, 0o600);
    std::fs::set_permissions(w.join("l2"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(std::fs::metadata(w.join("l2/a")).unwrap().permissions().mode() & 0o7777, 0o600);
    std::fs::set_permissions(w.join("l2/a"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(w.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn deeper_than_the_descriptor_levels() {
    let (_d, w) = ws();
    let mut p = w.clone();
    for _ in 0..(FD_DEPTH + 40) {
        p.push("d");
    }
    std::fs::create_dir_all(p.join("objects")).unwrap();
    std::fs::create_dir_all(p.join("refs")).unwrap();
    std::fs::write(p.join("HEAD"), "x").unwrap();
    std::fs::write(p.join("config"), "x").unwrap();
    let s = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    assert_eq!(s.entries.len(), 1);
    assert_eq!(s.entries[0].path, p.join("config"));
}

#[test]
fn derived_places_from_existing_configs() {
    let (_d, w) = ws();
    mk(&w, &[".git/HEAD", "shared.gitconfig"], &[".git/objects", ".git/refs"]);
    std::fs::write(w.join(".git/config"), "[core]\n\thooksPath = .husky\n\tfsmonitor = ./tools/fsmon.sh\n[include]\n\tpath = ../shared.gitconfig\n").unwrap();
    std::fs::write(w.join("shared.gitconfig"), "[core]\n\tsshCommand = ./tools/ssh-wrap\n").unwrap();
    let s = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    let d = derived(&s.entries, std::slice::from_ref(&w), &[]);
    let mut got: Vec<(String, Role)> = d.paths.iter().map(|(p, r)| (p.strip_prefix(&w).unwrap().display().to_string(), *r)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (".husky".to_string(), Role::GitHooks),
            ("shared.gitconfig".to_string(), Role::GitConfig),
            ("tools/fsmon.sh".to_string(), Role::GitProgram),
            ("tools/ssh-wrap".to_string(), Role::GitProgram)
        ]
    );
}

#[test]
fn a_big_tree_walked_on_several_threads_with_its_cache() {
    let (_d, w) = ws();
    for i in 0..700 {
        std::fs::create_dir_all(w.join(format!("node_modules/p{i}/lib/x/y"))).unwrap();
    }
    let first = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    assert!(first.dirs > 2000, "{}", first.dirs);
    let mut trees = first.trees;
    trees[0].scanned_at += 60;
    let again = scan(std::slice::from_ref(&w), &[], &[], trees, &[]);
    assert_eq!(again.dirs, first.dirs);
    assert!(again.read <= 1, "{}", again.read);
    std::thread::sleep(std::time::Duration::from_millis(20));
    mk(&w, &["node_modules/p633/lib/x/y/r/HEAD", "node_modules/p633/lib/x/y/r/config", "node_modules/p1/.bashrc"], &["node_modules/p633/lib/x/y/r/objects", "node_modules/p633/lib/x/y/r/refs"]);
    let mut trees = again.trees;
    trees[0].scanned_at += 60;
    let third = scan(std::slice::from_ref(&w), &[], &[], trees, &[]);
    let got: Vec<String> = found(&third, &w).into_iter().map(|x| x.0).collect();
    assert_eq!(got, vec!["node_modules/p1/.bashrc", "node_modules/p633/lib/x/y/r/config"]);
    // The kept tree is whole: a fourth scan from it reads nothing new.
    let third_found = found(&third, &w);
    let mut trees = third.trees;
    assert_eq!(trees[0].reachable().len(), third.dirs);
    trees[0].scanned_at += 60;
    let fourth = scan(std::slice::from_ref(&w), &[], &[], trees, &[]);
    assert!(fourth.read <= 1, "{}", fourth.read);
    assert_eq!(found(&fourth, &w), third_found);
}

#[test]
fn unchanged_directories_visited_without_opening_still_see_moves_and_symlinks() {
    // Packages with few subdirectories are visited by path from an opened
    // ancestor, not opened: moving directories around, replacing one by a
    // symlink to a repository elsewhere, and reusing a name must all be
    // seen as they are on disk, with the cached tree kept in place.
    let (_d, w) = ws();
    let (_o, outside) = ws();
    mk(&outside, &["repo/.git/config", "repo/.git/HEAD"], &["repo/.git/objects", "repo/.git/refs", "repo/.git/hooks"]);
    for i in 0..300 {
        std::fs::create_dir_all(w.join(format!("node_modules/p{i}/lib/x"))).unwrap();
    }
    mk(&w, &["node_modules/p7/lib/x/.git/config", "node_modules/p7/lib/x/.git/HEAD"], &["node_modules/p7/lib/x/.git/objects", "node_modules/p7/lib/x/.git/refs"]);
    let first = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    let first_found = found(&first, &w);
    assert!(first_found.iter().any(|x| x.0 == "node_modules/p7/lib/x/.git/config"), "{first_found:?}");
    let mut trees = first.trees;
    trees[0].scanned_at += 60;
    let again = scan(std::slice::from_ref(&w), &[], &[], trees, &[]);
    assert_eq!(found(&again, &w), first_found);
    assert!(again.read <= 1, "{}", again.read);
    // p7's lib (holding a repository) moves under p9; p8's lib becomes a
    // symlink to the outside repository; p10's lib is replaced by a new
    // directory of the same name with a startup file inside.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::rename(w.join("node_modules/p7/lib"), w.join("node_modules/p9/lib2")).unwrap();
    std::fs::rename(w.join("node_modules/p8/lib"), w.join("node_modules/p8/old")).unwrap();
    std::os::unix::fs::symlink(outside.join("repo"), w.join("node_modules/p8/lib")).unwrap();
    std::fs::remove_dir_all(w.join("node_modules/p10/lib")).unwrap();
    mk(&w, &["node_modules/p10/lib/.bashrc"], &["node_modules/p10/lib/x"]);
    let mut trees = again.trees;
    trees[0].scanned_at += 60;
    let third = scan(std::slice::from_ref(&w), &[], &[], trees, &[]);
    let got: Vec<String> = found(&third, &w).into_iter().map(|x| x.0).collect();
    assert!(got.contains(&"node_modules/p9/lib2/x/.git/config".to_string()), "{got:?}");
    assert!(got.contains(&"node_modules/p10/lib/.bashrc".to_string()), "{got:?}");
    assert!(!got.iter().any(|p| p.starts_with("node_modules/p7/") || p.starts_with("node_modules/p8/lib/")), "{got:?}");
    assert!(third.unreadable.is_empty(), "{:?}", third.unreadable);
    // A fresh scan agrees, and so does one more from the kept tree.
    let fresh = scan(std::slice::from_ref(&w), &[], &[], vec![], &[]);
    assert_eq!(found(&third, &w), found(&fresh, &w));
    assert_eq!(third.dirs, fresh.dirs);
    let mut trees = third.trees;
    assert_eq!(trees[0].reachable().len(), fresh.dirs);
    trees[0].scanned_at += 60;
    let fourth = scan(std::slice::from_ref(&w), &[], &[], trees, &[]);
    assert_eq!(found(&fourth, &w), found(&fresh, &w));
    assert!(fourth.read <= 1, "{}", fourth.read);
}
