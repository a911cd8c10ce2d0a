//! The call's secret part off the command line (`--spec-file`, `--spec-fd`),
//! from outside: while a call runs no process's command line (nor the
//! launcher's environment) shows an environment value, the policy or the
//! ticket; a spec file is gone once the launcher started, and one that is
//! not private to the caller is refused and left alone.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use sharkcage::callspec::{self, CallSpec};

/// Every readable `/proc/<pid>/cmdline`, and the environment of `sc`
/// processes, as text.
fn all_cmdlines_and_launcher_environ() -> String {
    let mut out = String::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if !e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.starts_with(sc_bin()) {
                if let Ok(env) = std::fs::read(e.path().join("environ")) {
                    out.push_str(&String::from_utf8_lossy(&env));
                }
            }
            out.push_str(&c);
            out.push('\n');
        }
    }
    out
}

/// Spawn `sc exec OPTS -- sh -c 'echo "v=$SPECVAR"; sleep S'`, check every
/// command line while the sleep runs (and run `during` then), and return
/// the output.
fn run_watched(t: &T, opts: &[String], secrets: &[&str], pre: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static, during: impl FnOnce()) -> Out {
    let sleep = unique_sleep(2);
    let (c, json) = t.sc().sh(&format!("echo \"v=$SPECVAR\"; sleep {sleep}")).command();
    let args: Vec<_> = c.get_args().map(|a| a.to_os_string()).collect();
    // `exec`, then our options first (the spec is read before anything else).
    let mut c2 = std::process::Command::new(sc_bin());
    c2.env_clear().env("PATH", SAFE_PATH).env("HOME", &t.home).env("LANG", "C.UTF-8").current_dir(&t.root);
    c2.arg("exec").args(opts).args(&args[1..]);
    drop(c);
    // SAFETY: the hook only moves descriptors (dup2/close) before exec.
    unsafe { c2.pre_exec(pre) };
    let start = Instant::now();
    let child = c2.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The sleep itself runs (the launcher's own argv names it from the start).
    let running = wait_until(Duration::from_secs(20), || !pids_with_argv(&["sleep", &sleep]).is_empty());
    let seen = all_cmdlines_and_launcher_environ();
    during();
    let o = wait(child, json, start);
    assert!(running, "the command never ran: {}", o.all());
    for s in secrets {
        assert!(!seen.contains(s), "{s:?} is on a command line or in the launcher's environment:\n{seen}");
    }
    o
}

fn spec_for(t: &T, value: &str) -> CallSpec {
    CallSpec {
        policy_json: Some(format!(r#"{{"env":["POLICYMARK{}"]}}"#, t.id)),
        env: vec![("SPECVAR".into(), value.into())],
        net_ticket: None,
        pty: false,
        notices: vec![],
        redact: vec![],
    }
}

#[test]
fn spec_file_is_taken_and_nothing_secret_is_on_a_command_line() {
    let _g = shared();
    let t = T::new();
    let value = t.secret("specfile");
    let dir = t.root.join("state/spec");
    let p = callspec::write_file(&dir, &spec_for(&t, &value)).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let gone = std::cell::Cell::new(false);
    let o = run_watched(&t, &[format!("--spec-file={}", p.display())], &[&value, &format!("POLICYMARK{}", t.id)], || Ok(()), || gone.set(!p.exists()));
    o.assert_ok();
    assert!(o.out().contains(&format!("v={value}")), "the spec's variable reached the command: {}", o.all());
    assert!(gone.get(), "the launcher deleted the spec file before the command ran");
}

/// Make `raw` the child's descriptor 7, inheritable. When it already is 7,
/// `dup2` does nothing and would leave it close-on-exec (the memfd is
/// made so): then only the flag is cleared.
///
/// # Safety
/// Between fork and exec: only `dup2`/`fcntl`.
unsafe fn onto_fd7(raw: i32) -> i32 {
    if raw == 7 {
        // SAFETY: fcntl on a descriptor of ours (the caller's contract).
        unsafe { libc::fcntl(7, libc::F_SETFD, 0) }
    } else {
        // SAFETY: as above.
        unsafe { libc::dup2(raw, 7) }
    }
}

#[test]
fn spec_fd_is_read_and_closed() {
    let _g = shared();
    let t = T::new();
    let value = t.secret("specfd");
    let fd = callspec::memfd(&spec_for(&t, &value)).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let o = run_watched(&t, &["--spec-fd=7".into()], &[&value, &format!("POLICYMARK{}", t.id)], move || {
        // SAFETY: dup2/fcntl in the child between fork and exec.
        if unsafe { onto_fd7(raw) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }, || ());
    drop(fd);
    o.assert_ok();
    assert!(o.out().contains(&format!("v={value}")), "{}", o.all());
    // Nothing of it inside: only stdio (and ls's own directory fd).
    let (c, _) = t.sc().sh("ls /proc/self/fd | tr '\\n' ' '").no_json().command();
    let args: Vec<_> = c.get_args().map(|a| a.to_os_string()).collect();
    drop(c);
    let fd = callspec::memfd(&spec_for(&t, &value)).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let mut c = std::process::Command::new(sc_bin());
    c.env_clear().env("PATH", SAFE_PATH).env("HOME", &t.home).current_dir(&t.root).arg("exec").arg("--spec-fd=7").args(&args[1..]);
    // SAFETY: dup2 in the child between fork and exec.
    unsafe {
        c.pre_exec(move || if onto_fd7(raw) < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
    }
    let out = c.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0 1 2 3", "{}", String::from_utf8_lossy(&out.stderr));
}

fn sc_exec(t: &T, opts: &[&str], script: &str) -> (i32, String, String) {
    let o = std::process::Command::new(sc_bin())
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("HOME", &t.home)
        .current_dir(&t.root)
        .arg("exec")
        .args(opts)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn refused(t: &T, p: &Path, why: &str) {
    let marker = t.secret("ran");
    let (code, out, err) = sc_exec(t, &[&format!("--spec-file={}", p.display())], &format!("echo {marker}"));
    assert_eq!(code, 2, "{out}{err}");
    assert!(!out.contains(&marker), "the command ran: {out}");
    assert!(err.contains(&p.display().to_string()) && err.contains(why), "{err}");
}

#[test]
fn spec_files_not_private_to_the_caller_are_refused_and_kept() {
    let _g = shared();
    let t = T::new();
    let dir = t.root.join("state/spec");
    let p = callspec::write_file(&dir, &spec_for(&t, "v")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    refused(&t, &p, "0600");
    assert!(p.exists(), "a refused file is left alone");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    refused(&t, &link, "symlink");
    set_mode(&dir, 0o733);
    refused(&t, &p, "writable by others");
    set_mode(&dir, 0o700);
    if is_root() {
        // SAFETY: chown of a test file to another uid.
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        refused(&t, &p, "belongs to uid 65534");
    }
    assert!(p.exists());
}

#[test]
fn spec_conflicts_are_usage_errors() {
    let _g = shared();
    let t = T::new();
    let dir = t.root.join("state/spec");
    let p = callspec::write_file(&dir, &spec_for(&t, "v")).unwrap();
    let (code, _, err) = sc_exec(&t, &[&format!("--spec-file={}", p.display()), "--policy-json={}"], "true");
    assert_eq!(code, 2);
    assert!(err.contains("policy is given twice"), "{err}");
    let spec = CallSpec { net_ticket: Some("t".into()), ..Default::default() };
    let p = callspec::write_file(&dir, &spec).unwrap();
    let (code, _, err) = sc_exec(&t, &[&format!("--spec-file={}", p.display())], "true");
    assert_eq!(code, 2);
    assert!(err.contains("--net-attach"), "{err}");
    let bad = dir.join("spec-00000000000000000000000000000000.json");
    std::fs::write(&bad, r#"{"env":[["A"]]}"#).unwrap();
    set_mode(&bad, 0o600);
    let (code, _, err) = sc_exec(&t, &[&format!("--spec-file={}", bad.display())], "true");
    assert_eq!(code, 2);
    assert!(err.contains("line 1 column") && err.contains("env[0]"), "{err}");
    // The CLI for people is unchanged.
    let (code, out, err) = sc_exec(&t, &["--env", "GREETING=hi", "--policy-json", "{}"], "echo $GREETING");
    assert_eq!((code, out.trim()), (0, "hi"), "{err}");
}

/// A variable the spec names in `redact` reaches the command, but its value
/// never reaches the output (stdout or stderr, however it is split), nor the
/// result; the notices of the spec are printed first.
#[test]
fn redacted_values_reach_the_command_but_not_its_output() {
    let _g = shared();
    let t = T::new();
    let value = t.secret("redact");
    let mut spec = spec_for(&t, &value);
    spec.redact = vec!["SPECVAR".into()];
    // A proxy, so that a refused host made of the value is named in a notice.
    spec.policy_json = Some(r#"{"network":{"allowedDomains":["allowed.example"]}}"#.into());
    spec.notices = vec![format!("sc: notice-{}", t.id)];
    let dir = t.root.join("state/spec");
    let p = callspec::write_file(&dir, &spec).unwrap();
    // Printed whole, one byte at a time (split across writes), to stderr,
    // and its hash computed inside (the command did get it).
    let script = r#"echo "v=$SPECVAR"; printf '%s' "$SPECVAR" | while IFS= read -r -n1 c; do printf '%s' "$c"; done; echo; echo "e=$SPECVAR" >&2; printf '%s' "$SPECVAR" | sha256sum; curl -s -o /dev/null --max-time 5 "http://$SPECVAR.example.com/" || true"#;
    let o = t.sc().opt(format!("--spec-file={}", p.display())).cmd(["bash", "-c", script]).run();
    o.assert_ok();
    o.assert_absent(&value);
    assert!(o.out().contains("v=[sharkcage: redacted SPECVAR]"), "{}", o.all());
    assert!(o.err().contains("e=[sharkcage: redacted SPECVAR]"), "{}", o.all());
    assert!(o.err().contains(&format!("sc: notice-{}", t.id)), "{}", o.all());
    // The refused host (lower-cased by the proxy) in the notice and the result.
    assert!(o.err().contains("[sharkcage: redacted SPECVAR].example.com"), "{}", o.all());
    assert!(!o.all().to_lowercase().contains(&value.to_lowercase()), "{}", o.all());
    let hash = {
        use std::io::Write;
        let mut c = std::process::Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        c.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    assert!(o.out().contains(hash.split_whitespace().next().unwrap()), "the command did not get the value: {}", o.all());
}
