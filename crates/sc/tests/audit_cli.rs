//! `sc exec --audit-dir` and `sc audit`: what a user sees, from outside.

mod common;

use std::process::Command;

use common::*;

fn sc(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(sc_bin()).args(args).env("LANG", "C.UTF-8").output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn jsonl(s: &str) -> Vec<serde_json::Value> {
    s.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn exec_calls_are_recorded_and_readable() {
    let _g = shared();
    let t = T::new();
    let dir = t.root.join("audit");
    let d = dir.to_str().unwrap();
    for i in 0..3 {
        let o = t
            .sc()
            .opt("--audit-dir")
            .opt(d)
            .opt("--env")
            .opt("SOME_TOKEN=tok-secret-value")
            .sh(&format!("echo run-{i}; exit {i}"))
            .run();
        assert_eq!(o.code, i, "{}", o.all());
    }
    let (code, out, err) = sc(&["audit", "--dir", d, "--json"]);
    assert_eq!(code, 0, "{err}");
    let recs = jsonl(&out);
    let execs: Vec<_> = recs.iter().filter(|r| r["kind"] == "exec").collect();
    assert_eq!(execs.len(), 3);
    assert_eq!(execs.iter().map(|r| r["exitCode"].as_i64().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(execs[0]["params"]["argv"].to_string().contains("echo run-0"));
    // The withheld variable is a violation; its value is nowhere.
    assert!(recs.iter().any(|r| r["kind"] == "violation" && r["reason"].as_str().unwrap().contains("SOME_TOKEN")));
    let all_text: String = std::fs::read_dir(&dir).unwrap().flatten().map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned()).collect();
    assert!(!all_text.contains("tok-secret-value"));
    // Filters.
    let (_, out, _) = sc(&["audit", "--dir", d, "--json", "--blocked"]);
    assert!(jsonl(&out).iter().all(|r| r["decision"] == "deny") && !jsonl(&out).is_empty());
    let (_, out, _) = sc(&["audit", "--dir", d, "--json", "--tail", "2"]);
    assert_eq!(jsonl(&out).len(), 2);
    let (_, out, _) = sc(&["audit", "--dir", d, "--json", "--since", "1h", "--kind", "exec"]);
    assert_eq!(jsonl(&out).len(), 3);
    let (_, out, _) = sc(&["audit", "--dir", d, "--json", "--until", "2001-01-01"]);
    assert!(jsonl(&out).is_empty());
    let (_, out, _) = sc(&["audit", "--dir", d, "--tool", "exec"]);
    assert!(out.contains("echo run-1") && out.contains("records,"), "{out}");
    let (code, _, err) = sc(&["audit", "--dir", d, "--since", "last tuesday"]);
    assert_eq!(code, 2);
    assert!(err.contains("last tuesday"), "{err}");
    // Verify, and against an exported checkpoint after a truncation.
    let (code, out, _) = sc(&["audit", "verify", "--dir", d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log OK"), "{out}");
    let (code, cp, err) = sc(&["audit", "checkpoint", "--export", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    let cp_file = t.root.join("exported.checkpoint");
    std::fs::write(&cp_file, &cp).unwrap();
    let seg = dir.join("audit-000001.jsonl");
    let text = std::fs::read_to_string(&seg).unwrap();
    let keep: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&seg, keep).unwrap();
    std::fs::remove_file(dir.join("checkpoints.jsonl")).unwrap();
    let (code, out, _) = sc(&["audit", "verify", "--dir", d, "--checkpoint", cp_file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("DAMAGED: truncated at seq 3"), "{out}");
}

#[test]
fn foreign_files_and_missing_logs_are_named() {
    let _g = shared();
    let t = T::new();
    let (code, _, err) = sc(&["audit", "--dir", t.root.join("nothing").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("no audit log"), "{err}");
    let dir = t.root.join("audit");
    let o = t.sc().opt("--audit-dir").opt(dir.to_str().unwrap()).sh("true").run();
    o.assert_ok();
    std::fs::write(dir.join("stray.bin"), b"x").unwrap();
    let (code, _, err) = sc(&["audit", "verify", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains(&dir.join("stray.bin").display().to_string()), "{err}");
    // And `sc exec --audit-dir` says why it cannot record (the call still ran).
    let o = t.sc().opt("--audit-dir").opt(dir.to_str().unwrap()).sh("echo still-ran").run();
    assert!(o.out().contains("still-ran"));
    assert!(o.err().contains("stray.bin"), "{}", o.err());
}

#[test]
fn the_audit_dir_is_out_of_the_sandboxes_reach() {
    let _g = shared();
    let t = T::new();
    // An audit directory inside the writable workspace.
    let dir = t.ws.join("audit");
    let first = t.sc().opt("--audit-dir").opt(dir.to_str().unwrap()).sh("true").run();
    first.assert_ok();
    let key_before = std::fs::read(dir.join("chain.key")).unwrap();
    let seg = dir.join("audit-000001.jsonl");
    let before = std::fs::read(&seg).unwrap();
    let o = t
        .sc()
        .opt("--audit-dir")
        .opt(dir.to_str().unwrap())
        .sh("cat audit/chain.key; echo forged >> audit/audit-000001.jsonl; rm -f audit/checkpoints.jsonl; ls -a audit")
        .run();
    assert!(!o.out().contains(&String::from_utf8_lossy(&key_before).to_string()), "the chain key was readable");
    let after = std::fs::read(&seg).unwrap();
    assert!(after.starts_with(&before) && !String::from_utf8_lossy(&after).lines().any(|l| l == "forged"), "the sandbox wrote to the log");
    assert!(dir.join("checkpoints.jsonl").exists());
    let (code, out, _) = sc(&["audit", "verify", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}
