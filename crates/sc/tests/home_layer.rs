//! The private home layer: writes under `$HOME` inside the sandbox land in a
//! layer in sharkcage's state, never in the real home; the next call with
//! the same layer sees them; secrets stay hidden whatever the layer holds;
//! startup files do not persist; the layer is bounded, listed and cleared.
//! Every claim is checked on the host: the real home unchanged, the secret
//! not in the output, the layer's files where they should be.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn notices(o: &Out) -> Vec<String> {
    o.err().lines().filter(|l| l.starts_with("sc: ")).map(str::to_string).collect()
}

/// Every file under `dir` with its content (a snapshot of the real home),
/// sharkcage's own state left out.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            // sharkcage's state directory and the directories made for it.
            let state = dir.join(".local/state/sharkcage");
            if p.starts_with(&state) || state.starts_with(&p) {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p.clone());
                v.push((p, b"<dir>".to_vec()));
            } else if ft.is_symlink() {
                v.push((p.clone(), std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()));
            } else {
                v.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    v.sort();
    v
}

fn layers_root(t: &T) -> PathBuf {
    t.home.join(".local/state/sharkcage/home-layers")
}

/// `sc home …` with the test's HOME.
fn sc_home(t: &T, args: &[&str]) -> std::process::Output {
    std::process::Command::new(sc_bin()).arg("home").args(args).env_clear().env("PATH", "/usr/bin:/bin").env("HOME", &t.home).output().unwrap()
}

#[test]
fn home_writes_land_in_the_layer_and_the_next_call_sees_them() {
    let _g = shared();
    let t = T::new();
    let before = snapshot(&t.home);
    let o = t.sh("echo one > ~/new.txt && mkdir -p ~/.npm/_cacache && echo c > ~/.npm/_cacache/x && echo changed > ~/notes.txt && cat ~/new.txt");
    o.assert_ok();
    assert_eq!(o.out(), "one\n");
    let layer = &o.j()["layers"]["filesystem"]["homeLayer"];
    assert_eq!(layer["key"], format!("workspace:{}", t.ws.display()), "{layer}");
    // The real home is exactly as it was.
    assert_eq!(snapshot(&t.home), before, "the real home changed");
    assert_eq!(std::fs::read_to_string(t.home.join("notes.txt")).unwrap(), t.notes);
    // The writes are in the layer, on the host, owned by the caller.
    let upper = PathBuf::from(layer["dir"].as_str().unwrap()).join("upper");
    assert!(upper.starts_with(layers_root(&t)), "{}", upper.display());
    assert_eq!(std::fs::read_to_string(upper.join("new.txt")).unwrap(), "one\n");
    // The next call in the same workspace sees them (a warm cache).
    let o = t.sh("cat ~/new.txt ~/.npm/_cacache/x ~/notes.txt");
    o.assert_ok();
    assert_eq!(o.out(), "one\nc\nchanged\n");
    // Another workspace has its own layer.
    let other = t.root.join("other-ws");
    std::fs::create_dir(&other).unwrap();
    let o = t.sc().workspace(&other).sh("cat ~/new.txt 2>&1; cat ~/notes.txt").run();
    assert!(o.out().contains("No such file") && o.out().contains(&t.notes), "{}", o.all());
    // --fresh-home: empty for this call, nothing kept.
    let n_layers = std::fs::read_dir(layers_root(&t)).unwrap().count();
    let o = t.sc().opt("--fresh-home").sh("cat ~/new.txt 2>&1; echo tmp > ~/fresh.txt && cat ~/fresh.txt").run();
    assert!(o.out().contains("No such file") && o.out().contains("tmp"), "{}", o.all());
    assert_eq!(std::fs::read_dir(layers_root(&t)).unwrap().count(), n_layers, "--fresh-home left a layer behind");
    // --home-layer none: the home is read-only again.
    let o = t.sc().opt("--home-layer=none").sh("echo x > ~/none.txt").run();
    assert_ne!(o.code, 0);
    assert!(o.err().contains("Read-only file system"), "{}", o.all());
    assert!(o.j()["layers"]["filesystem"].get("homeLayer").is_none());
    assert_eq!(snapshot(&t.home), before, "the real home changed");
    // A named layer is shared by every workspace that names it.
    t.sc().opt("--home-layer=cache-a").sh("echo named > ~/named.txt").run().assert_ok();
    let o = t.sc().workspace(&other).opt("--home-layer=cache-a").sh("cat ~/named.txt").run();
    assert_eq!(o.out(), "named\n", "{}", o.all());
}

#[test]
fn secrets_stay_hidden_whatever_the_layer_holds() {
    let _g = shared();
    let t = T::new();
    let key = t.secret("ssh");
    t.plant_home(".ssh/id_ed25519", &key);
    // The layer cannot reach what is hidden.
    let o = t.sh("cat ~/.ssh/id_ed25519; echo x > ~/.ssh/planted; ls -a ~/.ssh; ls ~/.local/state/sharkcage");
    o.assert_absent(&key);
    assert!(!t.home.join(".ssh/planted").exists());
    // Paths that do not exist yet on the host: the layer plants a symlink
    // (~/.aws → a directory of its own), an opaque directory (~/.config
    // replaced) and a file (~/.docker/config.json) where secrets appear later.
    let o = t.sh("mkdir -p ~/decoy && echo decoy > ~/decoy/credentials && ln -s ~/decoy ~/.aws; mkdir -p ~/.config && rm -rf ~/.config && mkdir ~/.config; mkdir -p ~/.docker && echo '{}' > ~/.docker/config.json");
    o.assert_ok();
    // Now the person creates them on the host.
    let aws = t.secret("aws");
    let gh = t.secret("gh");
    let docker = t.secret("docker");
    t.plant_home(".aws/credentials", &format!("[default]\naws_secret_access_key = {aws}\n"));
    t.plant_home(".config/gh/hosts.yml", &format!("oauth_token: {gh}\n"));
    t.plant_home(".docker/config.json", &format!("{{\"auths\":{{\"r\":{{\"auth\":\"{docker}\"}}}}}}"));
    let o = t.sh("cat ~/.aws/credentials ~/.config/gh/hosts.yml ~/.docker/config.json 2>&1; ls -la ~/.aws/ ~/.config 2>&1");
    for s in [&aws, &gh, &docker] {
        o.assert_absent(s);
    }
    // What the layer held there is dropped (the host's are hidden by mounts).
    assert!(notices(&o).iter().any(|n| n.contains("home layer was dropped")), "{}", o.all());
    // And the host files are untouched.
    assert!(std::fs::read_to_string(t.home.join(".aws/credentials")).unwrap().contains(&aws));
    // A fresh layer: the secrets do not exist at all inside.
    let o = t.sc().opt("--fresh-home").sh("ls -a ~; cat ~/.aws/credentials ~/.config/gh/hosts.yml ~/.ssh/id_ed25519 2>&1").run();
    for s in [&aws, &gh, &docker, &key] {
        o.assert_absent(s);
    }
}

#[test]
fn a_secret_the_host_creates_during_the_call_never_shows() {
    let _g = shared();
    let t = T::new();
    t.plant_home(".config/other/settings", "x");
    let aws = t.secret("aws-later");
    let gh = t.secret("gh-later");
    // The command looks first (nothing there), waits for the host to create
    // the files, then looks again.
    let cargo = t.secret("cargo-later");
    let script = "ls ~/.aws ~/.config/gh 2>&1; while [ ! -e ready ]; do sleep 0.05; done; cat ~/.aws/credentials ~/.config/gh/hosts.yml ~/.cargo/credentials.toml 2>&1; ls -a ~/.aws ~/.config 2>&1";
    // With the layer (an overlay) and without it (Landlock's grants).
    for layer in ["--home-layer=workspace", "--home-layer=none"] {
        let _ = std::fs::remove_dir_all(t.home.join(".aws"));
        let _ = std::fs::remove_dir_all(t.home.join(".config/gh"));
        let _ = std::fs::remove_dir_all(t.home.join(".cargo"));
        let _ = std::fs::remove_file(t.ws.join("ready"));
        let (child, json) = t.sc().opt(layer).sh(script).spawn();
        std::thread::sleep(Duration::from_millis(400));
        t.plant_home(".aws/credentials", &format!("aws_secret_access_key = {aws}\n"));
        t.plant_home(".config/gh/hosts.yml", &format!("oauth_token: {gh}\n"));
        // A secret whose directory did not exist either.
        t.plant_home(".cargo/credentials.toml", &format!("token = \"{cargo}\"\n"));
        std::fs::write(t.ws.join("ready"), "").unwrap();
        let o = wait(child, json, std::time::Instant::now());
        o.assert_absent(&aws);
        o.assert_absent(&gh);
        o.assert_absent(&cargo);
        assert!(o.out().contains("other"), "{layer}: the rest of ~/.config is visible: {}", o.all());
    }
}

#[test]
fn startup_files_do_not_persist_in_the_layer() {
    let _g = shared();
    let t = T::new();
    t.plant_home(".bashrc", "# the person's own\n");
    let o = t.sh(
        "echo 'echo PWNED' >> ~/.bashrc; echo 'echo PWNED' > ~/.fzf.bash; \
         mkdir -p ~/.local/bin ~/.config/git ~/.local/lib/python3/site-packages/yaml ~/.cache/tool && echo 'echo PWNED' > ~/.local/bin/ls && echo '[core]fsmonitor=x' > ~/.config/git/config; \
         echo 'print(\"PWNED\")' > ~/.local/lib/python3/site-packages/yaml/__init__.py; echo kept > ~/.cache/tool/settings; echo kept > ~/notes-of-the-call.txt; cat ~/.bashrc",
    );
    o.assert_ok();
    // The call itself saw its write; it is reported as dropped.
    assert!(o.out().contains("PWNED"), "{}", o.all());
    let n = notices(&o).join("\n");
    assert!(n.contains("~/.bashrc") && n.contains("~/.fzf.bash") && n.contains("~/.local/bin") && n.contains("and") , "{n}");
    // The next call sees the person's own file, nothing planted; caches and ordinary files stay.
    let o = t.sh("cat ~/.bashrc ~/.fzf.bash 2>&1; ls ~/.local/bin ~/.local/lib 2>&1; cat ~/.config/git/config 2>&1; cat ~/.cache/tool/settings ~/notes-of-the-call.txt");
    assert!(!o.out().contains("PWNED") && !o.out().contains("fsmonitor"), "{}", o.all());
    assert!(o.out().contains("the person's own"), "{}", o.all());
    assert_eq!(o.out().matches("kept").count(), 2, "a cache or an ordinary file was dropped: {}", o.all());
    assert_eq!(std::fs::read_to_string(t.home.join(".bashrc")).unwrap(), "# the person's own\n");
}

#[test]
fn what_the_sandbox_locks_or_nests_deeply_is_still_dropped() {
    let _g = shared();
    let t = T::new();
    // Read-only parents, and a chain deeper than the descriptor limit inside
    // a startup directory (removing it once failed with EMFILE).
    let o = t.sh(
        "echo 'echo PWNED' > ~/.bashrc; mkdir -p ~/.local/bin && echo 'echo PWNED' > ~/.local/bin/ls; \
         (cd ~/.local/bin && for i in $(seq 1300); do mkdir d && cd d || break; done; echo deep > f); \
         chmod 555 ~/.local/bin ~/.local ~; echo done",
    );
    assert!(o.out().contains("done"), "{}", o.all());
    let o = t.sh("cat ~/.bashrc 2>&1; cat ~/.local/bin/ls 2>&1; echo next");
    assert!(o.out().contains("next") && !o.out().contains("PWNED"), "{}", o.all());
    // And `sc home clear` removes such a layer.
    let out = std::process::Command::new(sc_bin()).args(["home", "clear", "--all"]).env_clear().env("PATH", "/usr/bin:/bin").env("HOME", &t.home).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_dir(layers_root(&t)).unwrap().count(), 0);
}

#[test]
fn a_layer_past_its_cap_is_cleared_and_layers_are_listed_and_removed() {
    let _g = shared();
    let t = T::new();
    let policy = r#"{"limits":{"homeLayerBytes":200000}}"#;
    t.sc().policy(policy).sh("head -c 1000000 /dev/zero > ~/big.bin").run().assert_ok();
    let out = sc_home(&t, &["list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let l = &v.as_array().unwrap()[0];
    assert_eq!(l["key"], format!("workspace:{}", t.ws.display()), "{v}");
    assert!(l["bytes"].as_u64().unwrap() >= 1_000_000, "{v}");
    let o = t.sc().policy(policy).sh("ls ~/big.bin 2>&1").run();
    assert!(o.out().contains("No such file"), "{}", o.all());
    assert!(notices(&o).iter().any(|n| n.contains("over limits.homeLayerBytes") && n.contains("cleared")), "{}", o.err());
    // sc home clear --workspace removes exactly that layer.
    t.sc().opt("--home-layer=keep-me").sh("echo k > ~/k").run().assert_ok();
    let out = sc_home(&t, &["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("workspace:{}", t.ws.display())) && text.contains("name:keep-me"), "{text}");
    let out = sc_home(&t, &["clear", "--workspace", t.ws.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sc_home(&t, &["list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v.as_array().unwrap().iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["name:keep-me"], "{v}");
    assert!(sc_home(&t, &["clear", "--all"]).status.success());
    assert_eq!(std::fs::read_dir(layers_root(&t)).unwrap().count(), 0);
}

#[test]
fn a_busy_layer_gives_a_concurrent_call_a_temporary_one() {
    let _g = shared();
    let t = T::new();
    let marker = unique_sleep(30);
    let (child, _) = t.sc().sh(&format!("echo first > ~/first.txt; exec sleep {marker}")).spawn();
    let mut child = child;
    // (The marker is in the launcher's own argv too: wait for the write.)
    let written = || std::fs::read_dir(layers_root(&t)).into_iter().flatten().flatten().any(|e| e.path().join("upper/first.txt").exists());
    assert!(wait_until(Duration::from_secs(10), written), "the first call did not write");
    let o = t.sh("echo second > ~/second.txt; cat ~/second.txt");
    o.assert_ok();
    assert!(notices(&o).iter().any(|n| n.contains("in use by another call")), "{}", o.err());
    kill_all(&pids_with_cmdline_containing(&marker));
    let _ = child.wait();
    // The kept layer has the first call's write, not the second's.
    let o = t.sh("cat ~/first.txt; cat ~/second.txt 2>&1");
    assert!(o.out().contains("first") && o.out().contains("No such file"), "{}", o.all());
    assert!(pids_with_cmdline_containing(&marker).is_empty());
}

#[test]
fn a_launcher_killed_mid_call_leaves_a_layer_the_next_call_can_use() {
    let _g = shared();
    let t = T::new();
    let marker = unique_sleep(30);
    let (mut child, _) = t.sc().sh(&format!("echo kept > ~/kept.txt; exec sleep {marker}")).spawn();
    let written = || std::fs::read_dir(layers_root(&t)).into_iter().flatten().flatten().any(|e| e.path().join("upper/kept.txt").exists());
    assert!(wait_until(Duration::from_secs(10), written), "the call did not write");
    // SIGKILL to the launcher: its after-call work never runs.
    child.kill().unwrap();
    let _ = child.wait();
    assert!(wait_until(Duration::from_secs(5), || pids_with_cmdline_containing(&marker).is_empty()), "the sandbox outlived its launcher");
    let o = t.sh("cat ~/kept.txt && echo more >> ~/kept.txt");
    o.assert_ok();
    assert_eq!(o.out(), "kept\n");
    assert!(!o.err().contains("no home layer"), "{}", o.err());
    assert!(o.j()["layers"]["filesystem"]["homeLayer"]["key"].is_string(), "{}", o.all());
}
