//! `sc audit`: read, verify and checkpoint the audit log.
//!
//! Exit codes: 0 fine; 1 the log is damaged (`verify`); 2 bad usage or a
//! file that is not part of an audit log (named in the message).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use sharkcage::audit::query::{query, Filter};
use sharkcage::audit::verify::{read_checkpoints, verify, Checkpoint};
use sharkcage::audit::{Audit, AuditConfig, Record};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: Option<AuditCmd>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Args, Default)]
pub struct ListArgs {
    /// The audit directory (default: <sharkcage state dir>/audit).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Only the last N matching records.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Only records of this skill.
    #[arg(long)]
    skill: Option<String>,
    /// Only records of this tool (exec, read, write, fs.readFile, http, connect, …).
    #[arg(long)]
    tool: Option<String>,
    /// Only records of this OpenClaw session key.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Only records of this kind (exec, tool_call, file_op, net, violation, …).
    #[arg(long)]
    kind: Option<String>,
    /// Only refusals.
    #[arg(long)]
    blocked: bool,
    /// From this time: RFC 3339, YYYY-MM-DD, or an age (30m, 2h, 7d).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Up to this time (same forms as --since).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute every hash and link, check the signed checkpoints; name the
    /// first damage.
    Verify {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Also check against a checkpoint exported earlier (detects
        /// truncation and wholesale rewrites).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Sign a checkpoint of the current head; with --export, print the
    /// latest one for safekeeping elsewhere.
    Checkpoint {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[arg(long)]
        export: bool,
    },
}

fn dir_or_default(d: Option<PathBuf>) -> Result<PathBuf, String> {
    d.or_else(sharkcage::audit::default_dir).ok_or_else(|| "no audit directory: give --dir (HOME is not set)".to_string())
}

pub fn run(a: AuditArgs) -> i32 {
    let r = match a.cmd {
        Some(AuditCmd::Verify { dir, checkpoint, json }) => verify_cmd(dir, checkpoint, json),
        Some(AuditCmd::Checkpoint { dir, export }) => checkpoint_cmd(dir, export),
        None => list(a.list),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sc audit: {e}");
            2
        }
    }
}

fn verify_cmd(dir: Option<PathBuf>, checkpoint: Option<PathBuf>, json: bool) -> Result<i32, String> {
    let dir = dir_or_default(dir)?;
    let exported = match &checkpoint {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            let c: Checkpoint = serde_json::from_str(line).map_err(|e| format!("{}: not a sharkcage checkpoint: {e}", p.display()))?;
            Some((c, p.clone()))
        }
        None => None,
    };
    let rep = verify(&dir, exported.as_ref().map(|(c, p)| (c, p.clone()))).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string(&rep).unwrap());
    } else if let Some(d) = &rep.damage {
        let _ = writeln!(out, "audit log DAMAGED: {} at seq {} in {}: {}", d.kind.name(), d.seq, d.segment, d.detail);
        let _ = writeln!(out, "({} records verified before it, {} segments, log {})", rep.records, rep.segments, rep.log_id);
    } else {
        let _ = writeln!(
            out,
            "audit log OK: {} records (seq {}–{}) in {} segment(s), {} bytes, {} checkpoints{}, {} chain, head {}",
            rep.records,
            rep.first_seq,
            rep.last_seq,
            rep.segments,
            rep.bytes,
            rep.checkpoints,
            if checkpoint.is_some() { " + the exported one" } else { "" },
            rep.alg,
            rep.head.as_deref().map(|h| &h[..16.min(h.len())]).unwrap_or("-")
        );
    }
    Ok(if rep.ok { 0 } else { 1 })
}

fn checkpoint_cmd(dir: Option<PathBuf>, export: bool) -> Result<i32, String> {
    let dir = dir_or_default(dir)?;
    // A fresh checkpoint when no writer holds the log (closing signs one
    // over everything written); otherwise the writer's latest.
    match Audit::open(AuditConfig::new(&dir)) {
        Ok(a) => a.close().map_err(|e| e.to_string())?,
        Err(sharkcage::audit::AuditError::InUse(..)) => {}
        Err(e) => return Err(e.to_string()),
    }
    let cps = read_checkpoints(&dir).map_err(|e| e.to_string())?;
    let Some(c) = cps.last() else { return Err(format!("{}: no checkpoint yet (the log is empty)", dir.display())) };
    if export {
        println!("{}", serde_json::to_string(c).unwrap());
    } else {
        println!("checkpoint: seq {} head {} at {} (log {})", c.seq, c.head, c.ts, c.log_id);
    }
    Ok(0)
}

fn list(a: ListArgs) -> Result<i32, String> {
    let dir = dir_or_default(a.dir)?;
    let f = Filter { tail: a.tail, skill: a.skill, tool: a.tool, session: a.session, kind: a.kind, blocked: a.blocked, since: a.since, until: a.until };
    let recs = query(&dir, &f).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    if a.json {
        for r in &recs {
            let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap());
        }
        return Ok(0);
    }
    let _ = writeln!(out, "{:>6}  {:<19}  {:<10} {:<8} {:<24} what", "seq", "time (UTC)", "kind", "decision", "session");
    let mut blocked = 0;
    for r in &recs {
        blocked += r.blocked() as usize;
        let time = r.ts.get(..19).unwrap_or(&r.ts).replace('T', " ");
        let who = r.session.as_deref().or(r.skill.as_deref()).unwrap_or("-");
        let _ = writeln!(out, "{:>6}  {:<19}  {:<10} {:<8} {:<24} {}", r.seq, time, r.kind, r.decision.as_deref().unwrap_or("-"), clip(who, 24), what(r));
    }
    let _ = writeln!(out, "{} records, {} blocked", recs.len(), blocked);
    Ok(0)
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The one-line description of a record.
fn what(r: &Record) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(t) = &r.tool {
        parts.push(t.clone());
    }
    if let Some(h) = &r.host {
        parts.push(format!("{h}:{}", r.port.unwrap_or(0)));
    }
    if let Some(p) = &r.path {
        parts.push(p.clone());
    }
    if let Some(argv) = r.params.as_ref().and_then(|p| p.get("argv")).and_then(|a| a.as_array()) {
        parts.push(clip(&argv.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" "), 60));
    } else if let Some(c) = r.params.as_ref().and_then(|p| p.get("command")).and_then(|c| c.as_str()) {
        parts.push(clip(c, 60));
    }
    if let Some(c) = r.exit_code {
        parts.push(format!("exit {c}"));
    }
    if let Some(d) = r.duration_ms {
        parts.push(format!("{d:.1} ms"));
    }
    if let Some(reason) = &r.reason {
        parts.push(format!("— {}", clip(reason, 100)));
    }
    parts.join(" ")
}
