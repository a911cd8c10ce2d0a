//! Aggregation: a flood of refusals becomes a bounded number of records.
//!
//! A sandbox decides how often it is refused: 500 refused `CONNECT`s in
//! 0.2 s used to be 500 records. The writer thread passes every refusal
//! (a record whose decision is `deny`/`denied`/`blocked`/`error`, except the
//! log's own `rotated`/`recovered`/`retention` records) through
//! [`Aggregator::admit`] before it is chained:
//!
//! * **Repeats.** A refusal identical to one written less than
//!   [`AggConfig::window`] ago (same kind, decision, tool, sandbox, session,
//!   host, port, path, reason, params and detail; times, durations, byte
//!   counts and call ids may differ) is not written; it is counted.
//! * **Budgets.** Each sandbox, each session, and the records with neither
//!   have a token bucket of refusal records: [`AggConfig::sandbox`] (32 at
//!   once, then one per 5 s), [`AggConfig::session`] and
//!   [`AggConfig::unlabelled`] (128 at once, then one per second). A refusal
//!   is written only if every bucket it belongs to has a token; otherwise it
//!   is counted under its *class* (kind, decision, tool, sandbox, session and
//!   the reason with the host, path and numbers taken out).
//!
//! What was counted becomes one summary record per repeat or class — same
//! kind, decision and labels, reason `and N more like it: …`, and in
//! `detail.aggregate` the count, the first and last time, the number of
//! distinct targets and the first and last refusal as samples — written
//! `window` (60 s) after the first refusal it counts, when too many are
//! pending, and when the writer closes. Ordinary traffic (fewer refusals than
//! the budgets, none repeated within a minute) is written one by one as
//! before.
//!
//! Bounds: one scope (sandbox or session) has at most
//! [`AggConfig::max_keys_per_scope`] + 1 summaries pending (further classes
//! share an "other" summary), and the aggregator holds at most
//! [`AggConfig::max_pending`] summaries, [`AggConfig::max_recent`]
//! remembered refusals and [`AggConfig::max_buckets`] buckets. So a flood
//! from one sandbox writes at most `burst` records at once, then per minute
//! at most `60 s / refill` records plus `max_keys_per_scope + 1` summaries —
//! whatever its size: 500 distinct refusals in 0.2 s are 32 records and one
//! summary.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::caps::cap_str;
use super::record::{format_ts, Record};

/// A token bucket's size: `burst` records at once, then one per `refill`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub burst: u32,
    pub refill: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggConfig {
    /// How long a written refusal is remembered (repeats within it are
    /// counted), and how long a summary collects before it is written.
    pub window: Duration,
    pub sandbox: Budget,
    pub session: Budget,
    /// Records with neither a sandbox nor a session.
    pub unlabelled: Budget,
    pub max_keys_per_scope: usize,
    pub max_pending: usize,
    pub max_recent: usize,
    pub max_buckets: usize,
}

impl Default for AggConfig {
    fn default() -> AggConfig {
        AggConfig {
            window: Duration::from_secs(60),
            sandbox: Budget { burst: 32, refill: Duration::from_secs(5) },
            session: Budget { burst: 128, refill: Duration::from_secs(1) },
            unlabelled: Budget { burst: 128, refill: Duration::from_secs(1) },
            max_keys_per_scope: 8,
            max_pending: 512,
            max_recent: 8192,
            max_buckets: 16_384,
        }
    }
}

/// Distinct targets counted per summary at most.
const MAX_DISTINCT: usize = 256;
/// Reason classes are cut to this many bytes.
const CLASS_BYTES: usize = 96;
/// Kinds the writer makes itself: never folded.
const OWN_KINDS: [&str; 3] = ["rotated", "recovered", "retention"];

/// A refusal as the aggregator sees it (strings already capped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refusal {
    pub ts_ms: u64,
    pub kind: String,
    pub decision: String,
    pub tool: Option<String>,
    pub sandbox: Option<String>,
    pub session: Option<String>,
    pub agent: Option<String>,
    pub skill: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub reason: Option<String>,
    /// SHA-256 of the record's `params`, `paramsDigest` and `detail`.
    pub content: [u8; 32],
}

impl Refusal {
    /// The refusal in `r`, if `r` is one that may be folded.
    pub fn of(r: &Record, ts_ms: u64) -> Option<Refusal> {
        let decision = r.decision.as_deref()?;
        if !matches!(decision, "deny" | "denied" | "blocked" | "error") || OWN_KINDS.contains(&r.kind.as_str()) {
            return None;
        }
        Some(Refusal {
            ts_ms,
            kind: r.kind.clone(),
            decision: decision.to_string(),
            tool: r.tool.clone(),
            sandbox: r.sandbox.clone(),
            session: r.session.clone(),
            agent: r.agent.clone(),
            skill: r.skill.clone(),
            host: r.host.clone(),
            port: r.port,
            path: r.path.clone(),
            reason: r.reason.clone(),
            content: Sha256::digest(serde_json::to_vec(&(&r.params, &r.params_digest, &r.detail)).unwrap_or_default()).into(),
        })
    }

    fn scope(&self) -> Scope {
        Scope { sandbox: self.sandbox.clone(), session: self.session.clone() }
    }

    /// The reason without what varies from one refusal to the next: the
    /// target (as far as it was kept), numbers, a cap's marker.
    fn class(&self) -> String {
        let mut s = uncapped_head(self.reason.as_deref().unwrap_or_default()).to_string();
        for t in [&self.host, &self.path].into_iter().flatten().map(|t| uncapped_head(t)).filter(|t| !t.is_empty()) {
            s = s.replace(t, "<target>");
        }
        let mut out = String::with_capacity(s.len().min(CLASS_BYTES));
        for c in s.chars() {
            let c = if c.is_ascii_digit() { '#' } else { c };
            if !(c == '#' && out.ends_with('#')) {
                out.push(c);
            }
            if out.len() >= CLASS_BYTES {
                break;
            }
        }
        out
    }

    fn target(&self) -> serde_json::Value {
        json!({"host": self.host, "port": self.port, "path": self.path, "reason": self.reason, "ts": format_ts(self.ts_ms)})
    }
}

/// A capped string without its `…[+N bytes sha256:…]` marker.
fn uncapped_head(s: &str) -> &str {
    s.split("…[+").next().unwrap_or(s)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Scope {
    sandbox: Option<String>,
    session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Shape {
    /// Repeats of one refusal (its hash).
    Exact(u64),
    /// Refusals of one reason class over the budget.
    Class(String),
    /// Whatever does not fit in the scope's summaries.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FoldKey {
    scope: Scope,
    kind: String,
    decision: String,
    tool: Option<String>,
    shape: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Why {
    Repeat,
    Budget,
}

#[derive(Debug)]
struct Pending {
    opened: Instant,
    why: Why,
    count: u64,
    first: Refusal,
    last: Option<Refusal>,
    targets: HashSet<u64>,
    more_targets: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BucketId {
    Sandbox(String),
    Session(String),
    Unlabelled,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The aggregation state of one writer (see the module header).
#[derive(Debug)]
pub struct Aggregator {
    cfg: AggConfig,
    hasher: RandomState,
    pending: HashMap<FoldKey, Pending>,
    per_scope: HashMap<Scope, usize>,
    /// Summaries flushed early (too many pending), not yet written.
    ready: Vec<Record>,
    recent: HashMap<u64, Instant>,
    recent_order: VecDeque<(u64, Instant)>,
    buckets: HashMap<BucketId, Bucket>,
    pruned: Option<Instant>,
}

impl Aggregator {
    pub fn new(cfg: AggConfig) -> Aggregator {
        Aggregator {
            cfg,
            hasher: RandomState::new(),
            pending: HashMap::new(),
            per_scope: HashMap::new(),
            ready: Vec::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            buckets: HashMap::new(),
            pruned: None,
        }
    }

    /// Write `r` now (true), or count it in a summary (false).
    pub fn admit(&mut self, r: &Refusal, now: Instant) -> bool {
        let scope = r.scope();
        let exact = self.hasher.hash_one((&scope, &r.kind, &r.decision, &r.tool, &r.host, &r.port, &r.path, &r.reason, &r.content));
        let key = |shape| FoldKey { scope: scope.clone(), kind: r.kind.clone(), decision: r.decision.clone(), tool: r.tool.clone(), shape };
        let exact_key = key(Shape::Exact(exact));
        if let Some(p) = self.pending.get_mut(&exact_key) {
            p.add(r, &self.hasher);
            return false;
        }
        if self.recent.get(&exact).is_some_and(|t| now.saturating_duration_since(*t) < self.cfg.window) {
            self.fold(exact_key, r, now, Why::Repeat);
            return false;
        }
        if self.take_tokens(&scope, now) {
            self.remember(exact, now);
            return true;
        }
        self.fold(key(Shape::Class(r.class())), r, now, Why::Budget);
        false
    }

    fn fold(&mut self, key: FoldKey, r: &Refusal, now: Instant, why: Why) {
        if let Some(p) = self.pending.get_mut(&key) {
            return p.add(r, &self.hasher);
        }
        let full = self.per_scope.get(&key.scope).copied().unwrap_or(0) >= self.cfg.max_keys_per_scope;
        let key = if full { FoldKey { shape: Shape::Other, ..key } } else { key };
        if let Some(p) = self.pending.get_mut(&key) {
            return p.add(r, &self.hasher);
        }
        if self.pending.len() >= self.cfg.max_pending {
            self.flush_oldest();
        }
        *self.per_scope.entry(key.scope.clone()).or_default() += 1;
        let mut p = Pending { opened: now, why, count: 0, first: r.clone(), last: None, targets: HashSet::new(), more_targets: false };
        p.add(r, &self.hasher);
        self.pending.insert(key, p);
    }

    fn flush_oldest(&mut self) {
        let oldest = self.pending.iter().min_by_key(|(_, p)| p.opened).map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            let r = self.take(&k);
            self.ready.extend(r);
        }
    }

    fn take(&mut self, k: &FoldKey) -> Option<Record> {
        let p = self.pending.remove(k)?;
        if let Some(n) = self.per_scope.get_mut(&k.scope) {
            *n -= 1;
            if *n == 0 {
                self.per_scope.remove(&k.scope);
            }
        }
        Some(summary(k, &p))
    }

    fn remember(&mut self, exact: u64, now: Instant) {
        self.recent.insert(exact, now);
        self.recent_order.push_back((exact, now));
        while self.recent_order.len() > self.cfg.max_recent || self.recent_order.front().is_some_and(|(_, t)| now.saturating_duration_since(*t) >= self.cfg.window) {
            let Some((h, t)) = self.recent_order.pop_front() else { break };
            if self.recent.get(&h) == Some(&t) {
                self.recent.remove(&h);
            }
        }
    }

    fn budget(&self, id: &BucketId) -> Budget {
        match id {
            BucketId::Sandbox(_) => self.cfg.sandbox,
            BucketId::Session(_) => self.cfg.session,
            BucketId::Unlabelled => self.cfg.unlabelled,
        }
    }

    /// The bucket's tokens at `now` (a new bucket is full).
    fn tokens(&self, id: &BucketId, now: Instant) -> f64 {
        let b = self.budget(id);
        match self.buckets.get(id) {
            None => b.burst as f64,
            Some(k) => (k.tokens + now.saturating_duration_since(k.at).as_secs_f64() / b.refill.as_secs_f64().max(1e-9)).min(b.burst as f64),
        }
    }

    /// Take one token from every bucket of `scope`, if each has one.
    fn take_tokens(&mut self, scope: &Scope, now: Instant) -> bool {
        let mut ids: Vec<BucketId> = Vec::with_capacity(2);
        ids.extend(scope.sandbox.clone().map(BucketId::Sandbox));
        ids.extend(scope.session.clone().map(BucketId::Session));
        if ids.is_empty() {
            ids.push(BucketId::Unlabelled);
        }
        if self.buckets.len() + ids.len() > self.cfg.max_buckets {
            self.prune(now);
            if self.buckets.len() + ids.len() > self.cfg.max_buckets {
                // Too many scopes at once: new ones share one bucket.
                ids.retain(|id| self.buckets.contains_key(id));
                if ids.is_empty() {
                    ids.push(BucketId::Unlabelled);
                }
            }
        }
        let have: Vec<f64> = ids.iter().map(|id| self.tokens(id, now)).collect();
        if have.iter().any(|t| *t < 1.0) {
            return false;
        }
        for (id, t) in ids.into_iter().zip(have) {
            self.buckets.insert(id, Bucket { tokens: t - 1.0, at: now });
        }
        true
    }

    /// Forget buckets that have filled up again.
    fn prune(&mut self, now: Instant) {
        let full: Vec<BucketId> = self.buckets.keys().filter(|id| self.tokens(id, now) >= self.budget(id).burst as f64).cloned().collect();
        for id in full {
            self.buckets.remove(&id);
        }
        self.pruned = Some(now);
    }

    /// When the next summary is due, if any is pending.
    pub fn next_due(&self) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(Instant::now());
        }
        self.pending.values().map(|p| p.opened + self.cfg.window).min()
    }

    /// Summaries due at `now` (oldest first).
    pub fn due(&mut self, now: Instant) -> Vec<Record> {
        let window = self.cfg.window;
        let out = self.take_oldest_first(|p| now.saturating_duration_since(p.opened) >= window);
        if self.pruned.is_none_or(|t| now.saturating_duration_since(t) >= window) {
            self.prune(now);
        }
        out
    }

    /// Every pending summary (at close).
    pub fn drain(&mut self) -> Vec<Record> {
        self.take_oldest_first(|_| true)
    }

    /// The ready summaries, then the pending ones `pick` selects, oldest first.
    fn take_oldest_first(&mut self, pick: impl Fn(&Pending) -> bool) -> Vec<Record> {
        let mut keys: Vec<(Instant, FoldKey)> = self.pending.iter().filter(|(_, p)| pick(p)).map(|(k, p)| (p.opened, k.clone())).collect();
        keys.sort_by_key(|(t, _)| *t);
        let mut out = std::mem::take(&mut self.ready);
        out.extend(keys.iter().filter_map(|(_, k)| self.take(k)));
        out
    }
}

impl Pending {
    fn add(&mut self, r: &Refusal, h: &RandomState) {
        self.count += 1;
        if self.count > 1 {
            self.last = Some(r.clone());
        }
        if self.targets.len() < MAX_DISTINCT {
            self.targets.insert(h.hash_one((&r.host, &r.port, &r.path)));
        } else if !self.targets.contains(&h.hash_one((&r.host, &r.port, &r.path))) {
            self.more_targets = true;
        }
    }
}

/// The summary record of what `p` counted.
fn summary(k: &FoldKey, p: &Pending) -> Record {
    let mut r = Record::new(&k.kind);
    r.decision = Some(k.decision.clone());
    r.tool = k.tool.clone();
    r.sandbox = k.scope.sandbox.clone();
    r.session = k.scope.session.clone();
    r.agent = p.first.agent.clone();
    r.skill = p.first.skill.clone();
    let last = p.last.as_ref().unwrap_or(&p.first);
    let (why, like) = match (&k.shape, p.why) {
        (Shape::Exact(_), _) => {
            r.host = p.first.host.clone();
            r.port = p.first.port;
            r.path = p.first.path.clone();
            ("repeat", p.first.reason.clone().unwrap_or_default())
        }
        (Shape::Class(c), _) => ("budget", c.clone()),
        (Shape::Other, Why::Repeat) => ("repeat", "various".to_string()),
        (Shape::Other, Why::Budget) => ("budget", "various".to_string()),
    };
    let whose = if k.scope.sandbox.is_some() { "sandbox" } else if k.scope.session.is_some() { "session" } else { "log" };
    let over = if why == "budget" { format!(" (over this {whose}'s record budget)") } else { String::new() };
    r.reason = Some(cap_str(&format!("and {} more like it{over}: {like}", p.count), super::caps::TEXT_CAP));
    r.detail = Some(json!({"aggregate": {
        "count": p.count,
        "why": why,
        "first": format_ts(p.first.ts_ms),
        "last": format_ts(last.ts_ms),
        "distinctTargets": p.targets.len(),
        "distinctTargetsAtLeast": p.more_targets,
        "samples": if p.last.is_some() { vec![p.first.target(), last.target()] } else { vec![p.first.target()] },
    }}));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(sandbox: &str, session: Option<&str>, host: &str) -> Refusal {
        Refusal {
            ts_ms: 1_795_724_295_972,
            kind: "net".into(),
            decision: "deny".into(),
            tool: Some("connect".into()),
            sandbox: Some(sandbox.into()),
            session: session.map(String::from),
            host: Some(host.into()),
            port: Some(443),
            reason: Some("not in network.allowedDomains".into()),
            ..Default::default()
        }
    }

    fn count(recs: &[Record]) -> u64 {
        recs.iter().map(|r| r.detail.as_ref().unwrap()["aggregate"]["count"].as_u64().unwrap()).sum()
    }

    #[test]
    fn ordinary_traffic_is_written_one_by_one() {
        let mut a = Aggregator::new(AggConfig::default());
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(a.admit(&refusal("sb-1", Some("s"), &format!("h{i}.test")), t0));
            assert!(a.admit(&refusal("sb-2", Some("s"), &format!("h{i}.test")), t0));
        }
        assert_eq!(a.next_due(), None);
        assert!(a.due(t0 + Duration::from_secs(3600)).is_empty());
        assert!(a.drain().is_empty());
    }

    #[test]
    fn repeats_are_counted_in_one_summary_with_first_and_last_time() {
        let mut a = Aggregator::new(AggConfig::default());
        let t0 = Instant::now();
        let mut r = refusal("sb-1", None, "evil.test");
        assert!(a.admit(&r, t0));
        for i in 1..100u64 {
            r.ts_ms += 10;
            assert!(!a.admit(&r, t0 + Duration::from_millis(10 * i)), "repeat {i} written");
        }
        assert!(a.due(t0 + Duration::from_secs(59)).is_empty(), "collects for a window");
        let s = a.due(t0 + Duration::from_secs(61));
        assert_eq!(s.len(), 1);
        let d = &s[0].detail.as_ref().unwrap()["aggregate"];
        assert_eq!((d["count"].as_u64(), d["why"].as_str()), (Some(99), Some("repeat")));
        assert_eq!((d["first"].as_str(), d["last"].as_str()), (Some("2026-11-26T20:18:15.982Z"), Some("2026-11-26T20:18:16.962Z")));
        assert_eq!((s[0].kind.as_str(), s[0].decision.as_deref(), s[0].host.as_deref(), s[0].sandbox.as_deref()), ("net", Some("deny"), Some("evil.test"), Some("sb-1")));
        assert!(s[0].reason.as_deref().unwrap().starts_with("and 99 more like it"), "{:?}", s[0].reason);
        // After the window, the same refusal is written again.
        assert!(a.admit(&r, t0 + Duration::from_secs(120)));
    }

    #[test]
    fn refusals_that_differ_in_params_or_detail_are_not_repeats() {
        let mut a = Aggregator::new(AggConfig::default());
        let t0 = Instant::now();
        let mut r = Record::new("exec");
        r.session = Some("s".into());
        r.decision = Some("deny".into());
        for cmd in ["rm -rf /", "curl evil.test", "cat ~/.ssh/id_rsa"] {
            r.params = Some(json!({"command": cmd}));
            assert!(a.admit(&Refusal::of(&r, 0).unwrap(), t0), "{cmd}");
        }
        assert!(!a.admit(&Refusal::of(&r, 5).unwrap(), t0), "the same again is a repeat");
    }

    #[test]
    fn a_flood_of_distinct_refusals_from_one_sandbox_is_bounded() {
        let mut a = Aggregator::new(AggConfig::default());
        let t0 = Instant::now();
        let mut written = 0;
        for i in 0..500u64 {
            let host = format!("{}-{i}.test", "x".repeat(200));
            written += a.admit(&refusal("sb-flood", Some("s-1"), &host), t0 + Duration::from_micros(400 * i)) as u64;
        }
        assert_eq!(written, 32, "the sandbox's burst");
        let s = a.drain();
        assert_eq!(s.len(), 1, "one class: {s:?}");
        assert_eq!(count(&s), 468);
        let d = &s[0].detail.as_ref().unwrap()["aggregate"];
        assert_eq!((d["distinctTargets"].as_u64(), d["distinctTargetsAtLeast"].as_bool()), (Some(256), Some(true)));
        assert!(s[0].reason.as_deref().unwrap().contains("over this sandbox's record budget"));
        // Another sandbox of another session still gets its records written.
        assert!(a.admit(&refusal("sb-other", Some("s-2"), "h.test"), t0));
        // The flooding sandbox gets one token back per 5 s.
        let later = t0 + Duration::from_secs(11);
        let back: u32 = (0..10).map(|i| a.admit(&refusal("sb-flood", Some("s-1"), &format!("late{i}.test")), later) as u32).sum();
        assert_eq!(back, 2);
    }

    #[test]
    fn a_session_is_bounded_across_its_sandboxes() {
        let mut a = Aggregator::new(AggConfig::default());
        let t0 = Instant::now();
        let mut written = 0;
        for sb in 0..20 {
            for i in 0..20 {
                written += a.admit(&refusal(&format!("sb-{sb}"), Some("one-session"), &format!("h{i}.test")), t0) as u32;
            }
        }
        assert_eq!(written, 128, "the session's burst");
        assert_eq!(count(&a.drain()), 400 - 128);
    }

    #[test]
    fn classes_and_pending_summaries_are_bounded() {
        let cfg = AggConfig { max_pending: 16, ..AggConfig::default() };
        let mut a = Aggregator::new(cfg);
        let t0 = Instant::now();
        // One sandbox, many reason classes: at most 8 + "other".
        for i in 0..200 {
            let mut r = refusal("sb-1", None, "h.test");
            r.reason = Some(format!("reason number {} of its kind {}", "abcdefghijklmnopqrstuvwxyz".chars().nth(i % 26).unwrap(), i));
            a.admit(&r, t0);
        }
        assert!(a.pending.len() <= 9, "{}", a.pending.len());
        // Many sandboxes, each over budget: early flushes keep pending small.
        for sb in 0..100 {
            for i in 0..40 {
                a.admit(&refusal(&format!("sb-x{sb}"), None, &format!("h{i}.test")), t0);
            }
        }
        assert!(a.pending.len() <= 16);
        assert!(!a.ready.is_empty(), "the oldest were flushed early");
        let all = a.drain();
        assert_eq!(count(&all), (200 - 32) + 100 * 8);
    }

    #[test]
    fn reason_classes_ignore_the_target_and_numbers() {
        let mut r = refusal("sb", None, "a.test");
        r.reason = Some("resolves to 10.0.0.1 (private) for a.test".into());
        let mut r2 = refusal("sb", None, "b.test");
        r2.reason = Some("resolves to 192.168.1.20 (private) for b.test".into());
        assert_eq!(r.class(), r2.class());
        assert_eq!(r.class(), "resolves to #.#.#.# (private) for <target>");
        // Capped targets and reasons (each with its own digest) still share a class.
        let capped = |h: &str| {
            let host = format!("{h}{}", "z".repeat(70_000));
            let mut r = refusal("sb", None, &cap_str(&host, super::super::caps::NAME_CAP));
            r.reason = Some(cap_str(&format!("malformed host {host}"), super::super::caps::TEXT_CAP));
            r
        };
        assert_eq!(capped("a").class(), capped("b").class());
        assert!(capped("a").class().starts_with("malformed host <target>"));
    }

    #[test]
    fn only_refusals_other_than_the_logs_own_are_folded() {
        let mut r = Record::new("net");
        r.decision = Some("allow".into());
        assert!(Refusal::of(&r, 0).is_none());
        for d in ["deny", "denied", "blocked", "error"] {
            r.decision = Some(d.into());
            assert!(Refusal::of(&r, 0).is_some());
        }
        for k in OWN_KINDS {
            let mut r = Record::new(k);
            r.decision = Some("deny".into());
            assert!(Refusal::of(&r, 0).is_none());
        }
    }
}
