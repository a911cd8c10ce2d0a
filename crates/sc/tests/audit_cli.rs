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

/// The raw bytes a terminal would act on: C0 controls other than the line
/// ends, DEL, C1 controls (as UTF-8) and bidi controls.
fn raw_controls(s: &str) -> Vec<char> {
    s.chars().filter(|&c| (c.is_control() && c != '\n') || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')).collect()
}

#[test]
fn records_cannot_forge_rows_or_hide_text() {
    let _g = shared();
    let t = T::new();
    let dir = t.root.join("audit");
    let d = dir.to_str().unwrap();
    // A SOCKS5 domain (sent from inside a real sandbox) carrying a line
    // break, a fake "allow" row, an escape sequence that hides text, and a
    // bidi override.
    let fake = "    77  2026-01-01 00:00:00  net        allow    agent:main:x             connect bank.test:443 — allowed";
    let name = format!("x.test\r\n{fake}\x1b[8m\u{202e}gpj.exe");
    let mut b = vec![5u8, 1, 0, 5, 1, 0, 3, name.len() as u8];
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(&443u16.to_be_bytes());
    let probe = format!("exchange:127.0.0.1:1080:{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>());
    let o = t.sc().policy(r#"{"network":{"allowedDomains":["ok.test"]}}"#).opt("--audit-dir").opt(d).cmd([sc_bin(), "__probe", probe.as_str()]).run();
    o.assert_ok();
    let (code, table, err) = sc(&["audit", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("x.test\\r\\n 77 2026-01-01 00:00:00 net allow"), "the record is there, escaped, blank runs collapsed:\n{table}");
    assert!(table.contains("\\x1b[8m\\u{202e}gpj.exe"), "{table}");
    assert_eq!(raw_controls(&table), Vec::<char>::new(), "raw control characters in:\n{table}");
    assert!(!table.lines().any(|l| l.starts_with("    77 ")), "a forged row:\n{table}");
    // --json: valid JSON lines, no raw controls, the same host once parsed.
    let (code, json, _) = sc(&["audit", "--dir", d, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(raw_controls(&json), Vec::<char>::new(), "{json}");
    assert!(json.contains("\\u202e") && json.contains("\\u001b"), "{json}");
    let recs = jsonl(&json);
    assert!(recs.iter().any(|r| r["host"].as_str() == Some(name.as_str())), "{json}");
}

/// A refused CONNECT as the gateway's proxy hands it to the audit log.
fn refused_connect(sandbox: &str, session: &str, host: String) -> sharkcage::audit::Record {
    sharkcage::audit::events::net(&sharkcage::proxy::NetEvent {
        ts: sharkcage::audit::record::now_ms(),
        sandbox: sandbox.into(),
        labels: sharkcage::proxy::Labels { session: Some(session.into()), ..Default::default() },
        protocol: sharkcage::proxy::Protocol::Connect,
        decision: sharkcage::proxy::Decision::Deny,
        reason: format!("u@{host}:443 not in network.allowedDomains"),
        host,
        port: 443,
        ip: None,
        bytes_up: 0,
        bytes_down: 0,
        duration_ms: 0.02,
    })
}

fn log_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("audit-")).map(|e| e.metadata().unwrap().len()).sum()
}

#[test]
fn a_flood_cannot_flush_history_and_verify_names_a_rotated_checkpoint() {
    let _g = shared();
    let t = T::new();
    let dir = t.root.join("audit");
    let d = dir.to_str().unwrap();
    for i in 0..3 {
        t.sc().opt("--audit-dir").opt(d).sh(&format!("echo before-{i}")).run().assert_ok();
    }
    let (code, cp, err) = sc(&["audit", "checkpoint", "--export", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exported the checkpoint at seq"), "{err}");
    let cp_file = t.root.join("exported.checkpoint");
    std::fs::write(&cp_file, &cp).unwrap();
    let cp_seq = serde_json::from_str::<serde_json::Value>(&cp).unwrap()["seq"].as_u64().unwrap();
    let before = log_bytes(&dir);
    // The flood of the issue: 500 refused CONNECTs to distinct 60 KB hosts
    // from one sandbox, through the proxy's audit path.
    let a = sharkcage::audit::Audit::open(sharkcage::audit::AuditConfig::new(&dir)).unwrap();
    for i in 0..500 {
        a.submit(refused_connect("sb-flood", "agent:main:x", format!("h{i}-{}.example", "a".repeat(60_000))));
    }
    a.close().unwrap();
    let (_, out, _) = sc(&["audit", "--dir", d, "--json", "--kind", "exec"]);
    assert_eq!(jsonl(&out).len(), 3, "earlier history is still there");
    let grew = log_bytes(&dir) - before;
    assert!(grew <= 100 * 1024, "the flood added {grew} bytes (bound: 100 KiB)");
    let (_, out, _) = sc(&["audit", "--dir", d, "--blocked", "--kind", "net"]);
    assert!(out.contains("and 468 more like it") && out.contains("33 records, 33 blocked (and 468 more refusals counted in summaries)"), "{out}");
    let (code, out, _) = sc(&["audit", "verify", "--dir", d, "--checkpoint", cp_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log OK"), "{out}");

    // The operator shrinks retention; a long flood from many sandboxes
    // (small segments) then goes past the hard limit.
    let (code, out, err) = sc(&["audit", "retention", "--dir", d, "--max-bytes", "16K", "--hard-max-bytes", "32K"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("budget 16.0 KiB, hard limit 32.0 KiB") && out.contains(&format!("last exported checkpoint: seq {cp_seq}")), "{out}");
    let mut cfg = sharkcage::audit::AuditConfig::new(&dir);
    cfg.max_segment_bytes = 16 * 1024;
    let a = sharkcage::audit::Audit::open(cfg).unwrap();
    for sb in 0..40 {
        for i in 0..30 {
            a.submit(refused_connect(&format!("sb-{sb}"), &format!("s-{sb}"), format!("h{i}-{}.example", "b".repeat(2000))));
        }
    }
    a.close().unwrap();
    assert!(log_bytes(&dir) <= 32 * 1024 + 16 * 1024 + 4096, "{} bytes", log_bytes(&dir));
    let (code, out, _) = sc(&["audit", "verify", "--dir", d, "--checkpoint", cp_file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("DAMAGED: checkpoint-rotated-away at seq {cp_seq}")) && out.contains(&format!("history rotated past the checkpoint's seq {cp_seq}")), "{out}");
    assert!(out.contains("retention record(s) say history newer than the last exported checkpoint was dropped"), "{out}");
    let (_, out, _) = sc(&["audit", "verify", "--dir", d, "--checkpoint", cp_file.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((v["ok"].as_bool(), v["damage"]["kind"].as_str()), (Some(false), Some("checkpoint-rotated-away")));
    // Without the exported checkpoint, the chain itself still verifies.
    let (code, out, _) = sc(&["audit", "verify", "--dir", d]);
    assert_eq!(code, 0, "{out}");
}

/// Every character of the review that renders invisibly (zero-width and
/// format characters, tags, variation selectors, fillers, separators).
const INVISIBLE: &[char] = &[
    '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{2061}', '\u{2062}', '\u{2063}', '\u{2064}', '\u{feff}', '\u{ad}', '\u{180e}', '\u{34f}', '\u{e0000}', '\u{e0001}', '\u{e0041}',
    '\u{e007f}', '\u{fe00}', '\u{fe0f}', '\u{e0100}', '\u{e01ef}', '\u{115f}', '\u{1160}', '\u{3164}', '\u{ffa0}', '\u{2028}', '\u{2029}', '\u{a0}', '\u{e000}', '\u{10ffff}',
];

#[test]
fn invisible_characters_are_never_printed_raw_and_padded_fields_cannot_fake_a_row() {
    let _g = shared();
    let t = T::new();
    let dir = t.root.join("audit");
    let d = dir.to_str().unwrap();
    let fake = "    77  2026-01-01 00:00:00  net        allow    agent:main:x             connect bank.test:443 — allowed";
    let a = sharkcage::audit::Audit::open(sharkcage::audit::AuditConfig::new(&dir)).unwrap();
    for &c in INVISIBLE {
        let mut r = sharkcage::audit::Record::new("file_op");
        r.session = Some(format!("agent{c}main"));
        r.tool = Some(format!("re{c}ad"));
        r.decision = Some(format!("de{c}ny"));
        r.host = Some(format!("bank{c}.test"));
        r.path = Some(format!("/etc/pass{c}wd"));
        r.reason = Some(format!("not in{c} allowRead"));
        a.append_blocking(r).unwrap();
    }
    // Fields padded with 500 spaces (or tabs) and a fake row after them.
    let mut r = refused_connect("sb-pad", "agent:main:x", format!("pad.test{}{fake}", " ".repeat(500)));
    r.path = Some(format!("/tmp/x{}{fake}", " \t".repeat(250)));
    r.reason = Some(format!("refused{}{fake}", " ".repeat(500)));
    a.append_blocking(r).unwrap();
    a.close().unwrap();

    let o = Command::new(sc_bin()).args(["audit", "--dir", d]).env("LANG", "C.UTF-8").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let table = String::from_utf8(o.stdout).unwrap();
    let raw: Vec<char> = table.chars().filter(|c| INVISIBLE.contains(c) || raw_controls(&c.to_string()).len() == 1).collect();
    assert_eq!(raw, Vec::<char>::new(), "raw invisible characters in:\n{table}");
    for &c in INVISIBLE {
        let e = format!("bank\\u{{{:x}}}.test", c as u32);
        assert!(table.contains(&e), "{e} missing:\n{table}");
    }
    // The padded record is one line; the fake row is inline, fields clipped.
    assert!(!table.lines().any(|l| l.trim_start().starts_with("77 ")), "a forged row:\n{table}");
    let pad = table.lines().find(|l| l.contains("pad.test")).expect("the padded record");
    assert!(pad.contains("/tmp/x 77 2026-01-01 00:00:00 net allow") && pad.contains("— refused 77 2026") && !pad.contains("\\t"), "blank runs collapsed: {pad}");
    assert!(pad.chars().count() < 600, "fields clipped: {} chars", pad.chars().count());
    assert!(pad.contains('…'), "{pad}");
    // One line per record, plus the header and the total.
    let n: usize = table.lines().last().unwrap().split(' ').next().unwrap().parse().unwrap();
    assert_eq!(n, INVISIBLE.len() + 1, "{table}");
    assert_eq!(table.lines().count(), n + 2, "{table}");

    // --json: the full values, every invisible character as \uXXXX.
    let o = Command::new(sc_bin()).args(["audit", "--dir", d, "--json"]).output().unwrap();
    let json = String::from_utf8(o.stdout).unwrap();
    let raw: Vec<char> = json.chars().filter(|c| INVISIBLE.contains(c) || raw_controls(&c.to_string()).len() == 1).collect();
    assert_eq!(raw, Vec::<char>::new(), "raw invisible characters in --json");
    let recs = jsonl(&json);
    for &c in INVISIBLE {
        let host = format!("bank{c}.test");
        assert!(recs.iter().any(|r| r["host"].as_str() == Some(host.as_str())), "{host:?} not in --json once parsed");
    }
    assert!(json.contains("\\u200b") && json.contains("\\udb40\\udc01") && json.contains("\\ufeff"), "{json}");
    // (The host is capped at record time like every name; the reason, under
    // its cap, is whole.)
    let padded = format!("refused{}{fake}", " ".repeat(500));
    assert!(recs.iter().any(|r| r["reason"].as_str() == Some(padded.as_str())), "the full padded reason is in --json");
}

#[test]
fn verify_names_a_wiped_log_that_exported_json_says_was_exported() {
    let _g = shared();
    let t = T::new();
    let dir = t.root.join("audit");
    let d = dir.to_str().unwrap();
    for i in 0..3 {
        t.sc().opt("--audit-dir").opt(d).sh(&format!("echo run-{i}")).run().assert_ok();
    }
    let (code, cp, err) = sc(&["audit", "checkpoint", "--export", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    let cp_seq = serde_json::from_str::<serde_json::Value>(&cp).unwrap()["seq"].as_u64().unwrap();
    let (code, out, _) = sc(&["audit", "verify", "--dir", d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("exported.json's (seq {cp_seq})")), "{out}");
    // The attacker wipes the segments and the local checkpoints.
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("audit-") || n == "checkpoints.jsonl" {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let (code, out, _) = sc(&["audit", "verify", "--dir", d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("DAMAGED: exported-checkpoint-missing at seq {cp_seq} in exported.json")) && out.contains("the log ends at seq 0"), "{out}");
    assert!(out.contains("--checkpoint FILE"), "{out}");
    let (code, out, _) = sc(&["audit", "verify", "--dir", d, "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((v["ok"].as_bool(), v["damage"]["kind"].as_str()), (Some(false), Some("exported-checkpoint-missing")));
}
