//! Everyday use of `sc exec`: the person is told what happened (one `sc:`
//! line per refusal, withheld variable, timeout or cut output; `--quiet`
//! turns them off), the common policy knobs are flags, and a writable path
//! that does not exist yet is created or refused by name — never skipped.

mod common;

use std::path::Path;

use common::*;

fn notices(o: &Out) -> Vec<String> {
    o.err().lines().filter(|l| l.starts_with("sc: ")).map(str::to_string).collect()
}

#[test]
fn what_happened_is_told_on_stderr_and_quiet_turns_it_off() {
    let _g = shared();
    let t = T::new();
    // A withheld variable: named, never its value.
    let o = t.sc().env("DEPLOY_TOKEN", "tok-VALUE-123").opt("--env=DEPLOY_TOKEN=tok-VALUE-123").cmd(["true"]).run();
    o.assert_ok();
    let n = notices(&o);
    assert!(n.iter().any(|l| l.contains("DEPLOY_TOKEN")), "no notice for the withheld variable: {}", o.err());
    assert!(!o.err().contains("tok-VALUE-123"), "the value was printed: {}", o.err());
    // A timeout and cut output.
    let o = t.sc().opt("--timeout=0.3").cmd(["sleep", "5"]).run();
    assert_eq!(o.code, 124, "{}", o.all());
    assert!(notices(&o).iter().any(|l| l.starts_with("sc: timed out")), "{}", o.err());
    let o = t.sc().opt("--max-output=100").sh("head -c 5000 /dev/zero | tr '\\0' x").run();
    assert!(o.stdout.len() <= 200, "output was not cut: {} bytes", o.stdout.len());
    assert!(notices(&o).iter().any(|l| l.contains("output cut after 100 bytes")), "{}", o.err());
    // --quiet: nothing of ours on stderr; the result still has it.
    let o = t.sc().opt("--quiet").opt("--env=DEPLOY_TOKEN=tok-VALUE-123").cmd(["true"]).run();
    assert!(notices(&o).is_empty(), "{}", o.err());
    assert!(o.j()["violations"].to_string().contains("DEPLOY_TOKEN"), "{}", o.all());
}

#[test]
fn flags_equal_their_policy_keys_and_bad_values_are_named() {
    let _g = shared();
    let t = T::new();
    // --no-local-binding refuses bind; the default allows it.
    let v = t.sc().opt("--no-local-binding").probe(&["serve-tcp:127.0.0.1:0"]);
    assert!(v["serve-tcp:127.0.0.1:0"].as_str().is_some_and(|s| s.starts_with("bind: ")), "{v}");
    let v = t.sc().opt("--allow-local-binding").probe(&["serve-tcp:127.0.0.1:0"]);
    assert_eq!(v["serve-tcp:127.0.0.1:0"], "ok", "{v}");
    // --memory shows up as the effective bound.
    let o = t.sc().opt("--memory=300M").cmd(["true"]).run();
    o.assert_ok();
    assert_eq!(o.j()["layers"]["limits"]["maxMemoryBytes"], 300u64 << 20, "{}", o.j()["layers"]["limits"]);
    // A bad size names the flag; a policy and a flag combine.
    let o = t.sc().opt("--memory=lots").cmd(["true"]).run();
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.err().contains("--memory") && o.err().contains("lots"), "{}", o.err());
    let o = t.sc().policy(r#"{"limits":{"maxOutputBytes":50}}"#).opt("--max-output=20").sh("head -c 500 /dev/zero | tr '\\0' y").run();
    assert!(o.stdout.len() <= 40, "the flag did not win over the policy: {} bytes", o.stdout.len());
    // --allow-unix-socket lets exactly that socket through.
    let sock = t.ws.join("svc.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    set_mode(&sock, 0o777);
    l.set_nonblocking(true).unwrap();
    let name = format!("connect-unix:{}", sock.display());
    let v = t.sc().opt(format!("--allow-unix-socket={}", sock.display())).probe(&[&name]);
    assert_eq!(v[&name], 0, "{v}");
    assert!(l.accept().is_ok(), "the allowed socket got no connection");
    let v = t.sc().probe(&[&name]);
    assert_ne!(v[&name], 0, "without the flag the socket was reached: {v}");
}

#[test]
fn a_writable_path_that_does_not_exist_is_created_or_refused_by_name() {
    let _g = shared();
    let t = T::new();
    // The parent is ours: it is created, and the command writes there.
    let out = t.root.join("made-for-me");
    let o = t.sc().opt(format!("--allow-write={}", out.display())).sh(&format!("echo hi > {}/f", out.display())).run();
    o.assert_ok();
    assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "hi\n");
    assert!(notices(&o).iter().any(|l| l.contains("created")), "{}", o.err());
    // A parent that is not ours (or not writable): an error naming the path, nothing made.
    let locked = t.root.join("locked");
    std::fs::create_dir(&locked).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&locked, Some(65534), Some(65534)).unwrap();
    } else {
        set_mode(&locked, 0o555);
    }
    let want = locked.join("inside");
    let o = t.sc().opt(format!("--allow-write={}", want.display())).cmd(["true"]).run();
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(o.err().contains(&want.display().to_string()), "the error does not name the path: {}", o.err());
    assert!(!Path::new(&want).exists(), "it was created anyway");
    set_mode(&locked, 0o755);
}

#[test]
fn a_home_under_a_pass_through_directory_reads_normally_and_keeps_its_secrets_hidden() {
    // /home of mode 711 (some distributions, shared hosts): the caller may
    // pass but not list it. What the launcher derives from listing must not
    // depend on that.
    let _g = shared();
    let t = T::new();
    let pass = t.root.join("pass");
    let home = pass.join("me");
    let ws = home.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join("notes.txt"), "PASS-THROUGH-NOTES\n").unwrap();
    std::fs::write(home.join(".ssh/id_rsa"), "PASS-THROUGH-KEY\n").unwrap();
    set_mode(&pass, 0o711);
    let o = Run::new(&home, &ws).workspace(&ws).sh("cat ~/notes.txt; cat ~/.ssh/id_rsa; echo done").run();
    set_mode(&pass, 0o755);
    assert!(o.out().contains("PASS-THROUGH-NOTES"), "a file of the home was not readable: {}", o.all());
    assert!(o.out().contains("done"), "{}", o.all());
    o.assert_absent("PASS-THROUGH-KEY");
}

#[test]
fn webassembly_and_local_node_and_python_servers_work_in_one_call() {
    let _g = shared();
    let t = T::new();
    let (Some(node), Some(py)) = (which("node"), which("python3")) else {
        panic!("node and python3 are needed for this suite (.ci/run installs them)");
    };
    let script = format!(
        "{node} -e 'new WebAssembly.Memory({{initial: 1, maximum: 65536}}); WebAssembly.instantiate(new Uint8Array([0,97,115,109,1,0,0,0])).then(() => console.log(\"WASM-OK\"))'; \
         {py} -m http.server 18731 --bind 127.0.0.1 >/dev/null 2>&1 & \
         {node} -e 'require(\"http\").createServer((q, r) => r.end(\"NODE-SERVER\")).listen(18732, \"127.0.0.1\")' & \
         sleep 1.5; \
         {node} -e 'const h = require(\"http\"); const get = (p) => new Promise((ok) => h.get({{host: \"127.0.0.1\", port: p, path: \"/\"}}, (r) => {{ let b = \"\"; r.on(\"data\", (d) => b += d); r.on(\"end\", () => ok(r.statusCode + \" \" + b.slice(0, 20))) }}).on(\"error\", (e) => ok(\"ERR \" + e.code))); Promise.all([get(18731), get(18732)]).then((x) => console.log(JSON.stringify(x)))'; \
         kill %1 %2 2>/dev/null; true",
        node = node.display(),
        py = py.display()
    );
    let o = t.sh(&script);
    assert!(o.out().contains("WASM-OK"), "WebAssembly failed: {}", o.all());
    assert!(o.out().contains("\"200 "), "the Python server was not reached: {}", o.all());
    assert!(o.out().contains("200 NODE-SERVER"), "the Node server was not reached: {}", o.all());
}

#[test]
fn tool_configs_appear_without_their_credentials_and_their_settings_still_apply() {
    let _g = shared();
    let t = T::new();
    let s = t.secret("cfg");
    t.plant_home(".npmrc", &format!("registry=https://mirror.example/npm/\n//mirror.example/npm/:_authToken={s}\nalways-auth=true\n"));
    t.plant_home(".config/pip/pip.conf", &format!("[global]\nindex-url = https://user:{s}@pypi.example/simple\ntimeout = 60\n"));
    t.plant_home(".docker/config.json", &format!(r#"{{"auths":{{"r.example":{{"auth":"{s}"}}}},"proxies":{{"default":{{"httpProxy":"http://p.example:3128"}}}}}}"#));
    t.plant_home(".pypirc", &format!("[pypi]\nusername = __token__\npassword = {s}\n"));
    let o = t.sh("cat ~/notes.txt; cat ~/.npmrc ~/.config/pip/pip.conf ~/.docker/config.json ~/.pypirc; grep -rsa SCSECRET ~; echo end");
    assert!(o.out().contains(&t.notes), "control: {}", o.all());
    o.assert_absent(&s);
    for setting in ["registry=https://mirror.example/npm/", "always-auth=true", "index-url = https://pypi.example/simple", "timeout = 60", "httpProxy", "username = __token__"] {
        assert!(o.out().contains(setting), "{setting:?} is missing inside: {}", o.all());
    }
    // The copies are read-only, and the host files are untouched.
    let o = t.sh("echo x >> ~/.npmrc; echo x >> ~/.docker/config.json; echo done");
    assert!(o.out().contains("done"));
    assert!(std::fs::read_to_string(t.home.join(".npmrc")).unwrap().contains(&s));
    assert!(!std::fs::read_to_string(t.home.join(".npmrc")).unwrap().ends_with("x\n"));
    // A home hidden by the policy shows no copy either (only the configs' own hiding is lifted).
    let o = t.sc().opt(format!("--deny-read={}", t.home.display())).sh("cat ~/.npmrc ~/.config/pip/pip.conf; echo end").run();
    assert!(o.out().contains("end"), "{}", o.all());
    assert!(!o.out().contains("registry=") && !o.out().contains("index-url"), "a copy appeared inside a denied home: {}", o.all());
    // npm itself reads the registry from it.
    if let Some(npm) = which("npm") {
        let o = t.sh(&format!("{} config get registry", npm.display()));
        assert!(o.out().contains("https://mirror.example/npm/"), "npm did not see the registry setting: {}", o.all());
    }
}
