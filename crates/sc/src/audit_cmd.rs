//! `sc audit`: read, verify and checkpoint the audit log; size its
//! retention.
//!
//! Everything printed from a record (or a checkpoint file) goes through
//! `audit::display`: control characters, escape sequences, bidi controls
//! and every invisible or format character are shown as visible escapes, so
//! a record cannot forge a row or hide text; `--json` lines carry them as
//! `\uXXXX` escapes. In the table, free-text fields have runs of blanks
//! collapsed and are clipped to 120 characters (`…`); `--json` has them
//! whole.
//!
//! Exit codes: 0 fine; 1 the log is damaged (`verify`); 2 bad usage or a
//! file that is not part of an audit log (named in the message).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use sharkcage::audit::display::{escape, field, json_line};
use sharkcage::audit::query::{query, Filter};
use sharkcage::audit::retention::{self, Retention};
use sharkcage::audit::verify::{read_checkpoints, verify, Checkpoint};
use sharkcage::audit::{Audit, AuditConfig, DamageKind, Record};

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
    /// latest one for safekeeping elsewhere (rotation may then delete the
    /// history before it, see `retention`).
    Checkpoint {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[arg(long)]
        export: bool,
    },
    /// Show or set how much history rotation keeps.
    Retention(RetentionArgs),
}

#[derive(Args)]
struct RetentionArgs {
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The log's size budget: history covered by the last exported
    /// checkpoint is deleted beyond it (bytes; K, M, G suffixes: KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_bytes: Option<u64>,
    /// The ceiling: beyond it even history newer than the last exported
    /// checkpoint is deleted, each drop announced by a `retention` record.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    hard_max_bytes: Option<u64>,
    /// Exported history older than this many days is deleted (0: no limit).
    #[arg(long, value_name = "DAYS")]
    max_age_days: Option<u32>,
    #[arg(long)]
    json: bool,
}

/// `123`, `64K`, `25M`, `1G` (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.trim().to_ascii_uppercase() {
        t if t.ends_with('K') => (t[..t.len() - 1].to_string(), 1u64 << 10),
        t if t.ends_with('M') => (t[..t.len() - 1].to_string(), 1 << 20),
        t if t.ends_with('G') => (t[..t.len() - 1].to_string(), 1 << 30),
        t => (t, 1),
    };
    num.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| format!("{s:?}: expected a size in bytes, or with K, M or G"))
}

fn dir_or_default(d: Option<PathBuf>) -> Result<PathBuf, String> {
    d.or_else(sharkcage::audit::default_dir).ok_or_else(|| "no audit directory: give --dir (HOME is not set)".to_string())
}

pub fn run(a: AuditArgs) -> i32 {
    let r = match a.cmd {
        Some(AuditCmd::Verify { dir, checkpoint, json }) => verify_cmd(dir, checkpoint, json),
        Some(AuditCmd::Checkpoint { dir, export }) => checkpoint_cmd(dir, export),
        Some(AuditCmd::Retention(r)) => retention_cmd(r),
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
        let _ = writeln!(out, "{}", json_line(&serde_json::to_string(&rep).unwrap()));
    } else if let Some(d) = &rep.damage {
        let _ = writeln!(out, "audit log DAMAGED: {} at seq {} in {}: {}", d.kind.name(), d.seq, escape(&d.segment), escape(&d.detail));
        if d.kind == DamageKind::CheckpointRotatedAway {
            let _ = writeln!(out, "(the log itself: {} records, seq {}–{}, in {} segments, log {}; verify against a newer exported checkpoint)", rep.records, rep.first_seq, rep.last_seq, rep.segments, rep.log_id);
        } else if d.kind == DamageKind::ExportedCheckpointMissing {
            let _ = writeln!(out, "(the log itself: {} records, seq {}–{}, in {} segments, log {}; the exported copy kept elsewhere proves the history: sc audit verify --checkpoint FILE)", rep.records, rep.first_seq, rep.last_seq, rep.segments, rep.log_id);
        } else {
            let _ = writeln!(out, "({} records verified before it, {} segments, log {})", rep.records, rep.segments, rep.log_id);
        }
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
            match (checkpoint.is_some(), rep.exported_seq) {
                (true, Some(n)) => format!(" + the exported one + exported.json's (seq {n})"),
                (true, None) => " + the exported one".to_string(),
                (false, Some(n)) => format!(" + exported.json's (seq {n})"),
                (false, None) => String::new(),
            },
            rep.alg,
            rep.head.as_deref().map(|h| &h[..16.min(h.len())]).unwrap_or("-")
        );
    }
    if !json && rep.exported_rotated_away {
        let _ = writeln!(out, "note: the last exported checkpoint (seq {}, exported.json) is older than the oldest record kept (seq {}); the chain's rotated records announce the deletion", rep.exported_seq.unwrap_or(0), rep.first_seq);
    }
    if !json && rep.retention_drops > 0 {
        let _ = writeln!(out, "note: {} retention record(s) say history newer than the last exported checkpoint was dropped (the log was over its hard limit): sc audit --kind retention", rep.retention_drops);
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
        // Remembered, so that rotation may delete what this export covers.
        let e = retention::mark_exported(&dir, c).map_err(|e| e.to_string())?;
        println!("{}", json_line(&serde_json::to_string(c).unwrap()));
        eprintln!("sc audit: exported the checkpoint at seq {}; rotation may now delete history before seq {} (keep this file to verify with --checkpoint)", c.seq, e.seq);
    } else {
        println!("checkpoint: seq {} head {} at {} (log {})", c.seq, escape(&c.head), escape(&c.ts), escape(&c.log_id));
    }
    Ok(0)
}

fn retention_cmd(a: RetentionArgs) -> Result<i32, String> {
    let dir = dir_or_default(a.dir)?;
    if !dir.join(sharkcage::audit::store::META).exists() {
        return Err(sharkcage::audit::AuditError::NoLog(dir).to_string());
    }
    let mut file = retention::load_file(&dir).map_err(|e| e.to_string())?;
    if a.max_bytes.is_some() || a.hard_max_bytes.is_some() || a.max_age_days.is_some() {
        file.max_bytes = a.max_bytes.or(file.max_bytes);
        file.hard_max_bytes = a.hard_max_bytes.or(file.hard_max_bytes);
        file.max_age_days = a.max_age_days.or(file.max_age_days);
        retention::save_file(&dir, &file).map_err(|e| e.to_string())?;
    }
    let r = file.apply(Retention::default());
    let exported = retention::load_exported(&dir).map_err(|e| e.to_string())?;
    let segs = sharkcage::audit::store::scan(&dir).map_err(|e| e.to_string())?;
    let bytes: u64 = segs.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    if a.json {
        let v = serde_json::json!({"retention": r, "file": file, "exported": exported, "segments": segs.len(), "bytes": bytes});
        println!("{}", json_line(&v.to_string()));
        return Ok(0);
    }
    let age = if r.max_age_days == 0 { "no age limit".to_string() } else { format!("exported history older than {} days deleted", r.max_age_days) };
    println!("retention: budget {}, hard limit {}, {age}", size(r.max_bytes), size(r.hard_max_bytes));
    let exp = match &exported {
        Some(e) => format!("last exported checkpoint: seq {} (exported {})", e.seq, escape(&e.exported_at)),
        None => "no checkpoint exported yet: history is kept up to the hard limit".to_string(),
    };
    println!("log: {} in {} segment(s); {exp}", size(bytes), segs.len());
    Ok(0)
}

fn size(b: u64) -> String {
    match b {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

fn list(a: ListArgs) -> Result<i32, String> {
    let dir = dir_or_default(a.dir)?;
    let f = Filter { tail: a.tail, skill: a.skill, tool: a.tool, session: a.session, kind: a.kind, blocked: a.blocked, since: a.since, until: a.until };
    let recs = query(&dir, &f).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    if a.json {
        for r in &recs {
            let _ = writeln!(out, "{}", json_line(&serde_json::to_string(r).unwrap()));
        }
        return Ok(0);
    }
    let _ = writeln!(out, "{:>6}  {:<19}  {:<10} {:<8} {:<24} what", "seq", "time (UTC)", "kind", "decision", "session");
    let (mut blocked, mut counted) = (0, 0);
    for r in &recs {
        blocked += r.blocked() as usize;
        counted += r.detail.as_ref().and_then(|d| d["aggregate"]["count"].as_u64()).unwrap_or(0);
        let time = field(r.ts.get(..19).unwrap_or(&r.ts), 19).replace('T', " ");
        let who = field(r.session.as_deref().or(r.skill.as_deref()).unwrap_or("-"), 24);
        let _ = writeln!(out, "{:>6}  {:<19}  {:<10} {:<8} {:<24} {}", r.seq, time, field(&r.kind, 20), field(r.decision.as_deref().unwrap_or("-"), 12), who, what(r));
    }
    let more = if counted > 0 { format!(" (and {counted} more refusals counted in summaries)") } else { String::new() };
    let _ = writeln!(out, "{} records, {} blocked{more}", recs.len(), blocked);
    Ok(0)
}

/// Width of a free-text field in the table (the full value is in `--json`).
const FIELD: usize = 120;

/// The one-line description of a record: every string escaped, runs of
/// blanks shown as one space, each field clipped (`display::field`).
fn what(r: &Record) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(t) = &r.tool {
        parts.push(field(t, 40));
    }
    if let Some(h) = &r.host {
        parts.push(format!("{}:{}", field(h, FIELD), r.port.unwrap_or(0)));
    }
    if let Some(p) = &r.path {
        parts.push(field(p, FIELD));
    }
    if let Some(argv) = r.params.as_ref().and_then(|p| p.get("argv")).and_then(|a| a.as_array()) {
        parts.push(field(&argv.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" "), 60));
    } else if let Some(c) = r.params.as_ref().and_then(|p| p.get("command")).and_then(|c| c.as_str()) {
        parts.push(field(c, 60));
    }
    if let Some(c) = r.exit_code {
        parts.push(format!("exit {c}"));
    }
    if let Some(d) = r.duration_ms {
        parts.push(format!("{d:.1} ms"));
    }
    if let Some(reason) = &r.reason {
        parts.push(format!("— {}", field(reason, FIELD)));
    }
    parts.join(" ")
}
