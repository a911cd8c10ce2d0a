//! The network proxy: the only way out of a sandbox's network namespace.
//!
//! A sandbox's network namespace has nothing but loopback. Before the
//! command runs, PID 1 of the sandbox creates two listening TCP sockets on
//! that loopback (`127.0.0.1:3128` HTTP/CONNECT, `127.0.0.1:1080` SOCKS5)
//! and hands them to the launcher (`launcher/child.rs`). A socket keeps the
//! namespace it was created in, so whoever holds these listeners accepts the
//! sandbox's connections from outside it — no relay process, no shell, no
//! socat inside the sandbox, and nothing the command can see, signal or
//! trace. The listeners are served by this module on a Tokio runtime:
//! * standalone (`sc exec`), on a runtime inside the launcher, started after
//!   the sandbox is cloned (the launcher is single-threaded until then);
//! * under OpenClaw, on the addon's runtime: the launcher passes the
//!   listeners to the gateway over a unix socket (`attach.rs`), so one
//!   runtime serves every sandbox of the gateway, and policy changes reach
//!   running sandboxes.
//!
//! Identity: each accepted connection belongs to the sandbox whose listener
//! it arrived on ([`SandboxNet`]); no token is involved that the command
//! could read or forge.
//!
//! Decision for each CONNECT, absolute-form HTTP request or SOCKS5 CONNECT
//! ([`Ctx::open`]): canonicalise the host (`host.rs`) → `deniedDomains` →
//! `allowedDomains` → deny (`rules.rs`); then resolve once (`resolve.rs`)
//! and drop addresses the guard refuses (`guard.rs`); connect to a checked
//! address. Every decision becomes a [`NetEvent`].

pub mod attach;
pub mod framing;
pub mod guard;
pub mod host;
pub mod http;
pub mod relay;
pub mod resolve;
pub mod rules;
pub mod socks5;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

use host::Host;
use relay::{Counters, RelayEnd};
use resolve::Resolver;
use rules::{NetRules, RuleDecision};

/// Ports of the proxy inside every sandbox (its own loopback).
pub const HTTP_PORT: u16 = 3128;
pub const SOCKS_PORT: u16 = 1080;

/// Events kept per sandbox (the rest are counted).
const MAX_EVENTS: usize = 2000;

/// Name lookups one sandbox may have in flight, and all sandboxes of this
/// proxy together: a sandbox flooding a silent name server waits on its own
/// share and cannot take the others' (see `resolve.rs`).
pub const LOOKUPS_PER_SANDBOX: usize = 16;
pub const LOOKUPS_TOTAL: usize = 256;

/// The connection budget of all sandboxes of this proxy together: each
/// proxied connection holds two descriptors (and up to a request head of
/// memory), so the budget is a third of the descriptors left after a
/// reserve of 256 for the gateway's own work (exec result pipes, files),
/// between 64 and 4096.
pub fn gateway_connection_budget() -> usize {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct we pass.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 { rl.rlim_cur } else { 1024 };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX).min(1 << 20);
    (soft.saturating_sub(256) / 3).clamp(64, 4096)
}

/// Connections held per sandbox, against the gateway's budget. No sandbox
/// holds more than three-quarters of it (a quarter is always left for the
/// others), and once three-quarters is used, a sandbox holding its fair
/// share (the budget over the sandboxes holding connections) or more gets
/// no new one: the one flooding is refused first.
struct Budget {
    limit: usize,
    held: Mutex<(usize, HashMap<String, usize>)>,
}

impl Budget {
    fn admit(self: &Arc<Self>, sb: &str) -> Result<GatewayPermit, String> {
        let mut g = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per) = &mut *g;
        if *total >= self.limit {
            return Err(format!("the gateway's connection budget ({}) is used up", self.limit));
        }
        let mine = per.get(sb).copied().unwrap_or(0);
        if mine * 4 >= self.limit * 3 {
            return Err(format!("this sandbox holds {mine} of the gateway's {} connections: three-quarters is the most one sandbox may hold", self.limit));
        }
        let holders = per.len() + usize::from(mine == 0);
        let fair = self.limit / holders.max(1);
        if *total * 4 >= self.limit * 3 && mine >= fair {
            return Err(format!(
                "this sandbox holds {mine} of the gateway's {} connections, its fair share or more, while the budget is nearly used up",
                self.limit
            ));
        }
        *total += 1;
        *per.entry(sb.to_string()).or_default() += 1;
        Ok(GatewayPermit { budget: self.clone(), sb: sb.to_string() })
    }
}

/// One connection's place in the gateway's budget (released on drop).
pub struct GatewayPermit {
    budget: Arc<Budget>,
    sb: String,
}

impl Drop for GatewayPermit {
    fn drop(&mut self) {
        let mut g = self.budget.held.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = per.get_mut(&self.sb) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.sb);
            }
        }
    }
}

/// A connection's place in its sandbox's limit and in the gateway's budget.
pub struct Slot {
    _sandbox: tokio::sync::OwnedSemaphorePermit,
    _gateway: GatewayPermit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protocol {
    Http,
    Connect,
    Socks5,
}

/// Limits for one sandbox's network use.
#[derive(Debug, Clone)]
pub struct NetLimits {
    pub max_connections: usize,
    pub idle: Duration,
    pub total: Duration,
    pub header_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_header_bytes: usize,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            max_connections: 512,
            idle: Duration::from_secs(300),
            total: Duration::from_secs(3600),
            header_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Who a sandbox is working for (from the caller, never from the sandbox).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Labels {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skill: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tool_call: Option<String>,
}

/// What happened to a connection or request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Decision {
    /// Allowed and connected.
    Allow,
    /// Refused by the policy or the address guard.
    Deny,
    /// Malformed input, an upstream failure, or a limit.
    Error,
}

/// One network decision.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetEvent {
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
    pub sandbox: String,
    #[serde(flatten)]
    pub labels: Labels,
    pub protocol: Protocol,
    pub decision: Decision,
    pub reason: String,
    pub host: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration_ms: f64,
}

impl NetEvent {
    /// One line for `violations` and logs.
    pub fn summary(&self) -> String {
        let what = match self.protocol {
            Protocol::Http => "HTTP",
            Protocol::Connect => "CONNECT",
            Protocol::Socks5 => "SOCKS5",
        };
        let dest = if self.host.is_empty() { String::new() } else { format!(" {}:{}", self.host, self.port) };
        let d = match self.decision {
            Decision::Allow => "allowed",
            Decision::Deny => "denied",
            Decision::Error => "failed",
        };
        format!("{d} {what}{dest}: {}", self.reason)
    }
}

/// A named overlay of rules shared by sandboxes (for example one skill's
/// approved domains). Replacing its rules affects new connections of every
/// sandbox that uses it, at once.
#[derive(Debug, Default)]
pub struct Scope {
    rules: RwLock<Arc<NetRules>>,
}

impl Scope {
    pub fn set(&self, r: NetRules) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(r);
    }
    fn get(&self) -> Arc<NetRules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub type EventSink = Arc<dyn Fn(&NetEvent) + Send + Sync>;

struct Shared {
    resolver: Arc<dyn Resolver>,
    lookups: Semaphore,
    budget: Arc<Budget>,
    this_host: guard::ThisHost,
    sink: RwLock<Option<EventSink>>,
    scopes: Mutex<HashMap<String, Arc<Scope>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// The proxy service. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

impl Proxy {
    pub fn new(resolver: Arc<dyn Resolver>) -> Proxy {
        Self::with_budget(resolver, gateway_connection_budget())
    }

    /// A proxy whose sandboxes together hold at most `connections`.
    pub fn with_budget(resolver: Arc<dyn Resolver>, connections: usize) -> Proxy {
        Proxy {
            shared: Arc::new(Shared {
                resolver,
                lookups: Semaphore::new(LOOKUPS_TOTAL),
                budget: Arc::new(Budget { limit: connections.max(1), held: Mutex::new((0, HashMap::new())) }),
                this_host: guard::ThisHost::default(),
                sink: RwLock::new(None),
                scopes: Mutex::new(HashMap::new()),
                next_id: std::sync::atomic::AtomicU64::new(1),
            }),
        }
    }

    /// Every event of every sandbox also goes here (the audit writer).
    pub fn set_sink(&self, sink: Option<EventSink>) {
        *self.shared.sink.write().unwrap_or_else(|e| e.into_inner()) = sink;
    }

    /// The scope of this name (created empty on first use).
    pub fn scope(&self, name: &str) -> Arc<Scope> {
        self.shared.scopes.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default().clone()
    }

    /// A new sandbox identity with its base rules and optional scope.
    pub fn sandbox(&self, labels: Labels, rules: NetRules, scope: Option<&str>, limits: NetLimits) -> Arc<SandboxNet> {
        let n = self.shared.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (stop, _) = watch::channel(false);
        Arc::new(SandboxNet {
            id: format!("sb-{}-{n}", std::process::id()),
            labels,
            rules: RwLock::new(Arc::new(rules)),
            scope: scope.map(|s| self.scope(s)),
            conns: Arc::new(Semaphore::new(limits.max_connections)),
            lookups: Semaphore::new(LOOKUPS_PER_SANDBOX),
            limits,
            events: Mutex::new((Vec::new(), 0)),
            stop,
        })
    }

    /// Serve one of a sandbox's listeners on the current Tokio runtime
    /// until the sandbox is stopped.
    pub fn serve(&self, sb: &Arc<SandboxNet>, listener: std::net::TcpListener, proto: Protocol) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let ctx = Arc::new(Ctx { shared: self.shared.clone(), sb: sb.clone() });
        let mut stop = sb.stop.subscribe();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    r = listener.accept() => r,
                    _ = stop.wait_for(|s| *s) => break,
                };
                let Ok((s, _)) = accepted else {
                    // EMFILE and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let _ = s.set_nodelay(true);
                let permit = match ctx.sb.conns.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        ctx.record_error(proto, "", 0, &format!("too many connections (limit {})", ctx.sb.limits.max_connections), Instant::now());
                        tokio::spawn(refuse_busy(s, proto));
                        continue;
                    }
                };
                let permit = match ctx.shared.budget.admit(&ctx.sb.id) {
                    Ok(g) => Slot { _sandbox: permit, _gateway: g },
                    Err(why) => {
                        ctx.record_error(proto, "", 0, &why, Instant::now());
                        tokio::spawn(refuse_busy(s, proto));
                        continue;
                    }
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    match proto {
                        Protocol::Socks5 => {
                            socks5::serve(s, ctx).await;
                            drop(permit);
                        }
                        _ => http::serve(s, ctx, Some(permit)).await,
                    }
                });
            }
        });
        Ok(())
    }
}

impl Proxy {
    /// Serve one already-accepted connection of `sb` (any byte stream) to
    /// its end. Used by the listeners above, and by tests and fuzzing with
    /// in-memory streams.
    pub async fn serve_connection<S>(&self, sb: &Arc<SandboxNet>, s: S, proto: Protocol)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let ctx = Arc::new(Ctx { shared: self.shared.clone(), sb: sb.clone() });
        match proto {
            Protocol::Socks5 => socks5::serve(s, ctx).await,
            _ => http::serve(s, ctx, None).await,
        }
    }
}

async fn refuse_busy(mut s: TcpStream, proto: Protocol) {
    use tokio::io::AsyncWriteExt;
    let msg: &[u8] = match proto {
        Protocol::Socks5 => &[5, 0xff],
        _ => b"HTTP/1.1 503 Service Unavailable\r\nx-proxy-error: too-many-connections\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), s.write_all(msg)).await;
}

/// One sandbox as the proxy sees it.
pub struct SandboxNet {
    pub id: String,
    pub labels: Labels,
    rules: RwLock<Arc<NetRules>>,
    scope: Option<Arc<Scope>>,
    limits: NetLimits,
    conns: Arc<Semaphore>,
    lookups: Semaphore,
    events: Mutex<(Vec<NetEvent>, usize)>,
    stop: watch::Sender<bool>,
}

impl SandboxNet {
    /// The rules new connections are decided on (base + scope overlay).
    pub fn rules(&self) -> Arc<NetRules> {
        let base = self.rules.read().unwrap_or_else(|e| e.into_inner()).clone();
        match &self.scope {
            Some(s) => {
                let o = s.get();
                if o.allow.is_empty() && o.deny.is_empty() {
                    base
                } else {
                    Arc::new(base.merged(&o))
                }
            }
            None => base,
        }
    }

    /// Replace this sandbox's own rules (new connections only).
    pub fn set_rules(&self, r: NetRules) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(r);
    }

    pub fn active_connections(&self) -> usize {
        self.limits.max_connections - self.conns.available_permits()
    }

    /// End the sandbox's network: stop accepting, cut every connection
    /// (after `grace` for ones already closing), and return its events.
    pub async fn finish(&self, grace: Duration) -> (Vec<NetEvent>, usize) {
        let until = Instant::now() + grace;
        while self.active_connections() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = self.stop.send(true);
        // Cut connections record their events as they unwind.
        let until = Instant::now() + Duration::from_millis(200);
        while self.active_connections() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.take_events()
    }

    pub fn take_events(&self) -> (Vec<NetEvent>, usize) {
        let mut e = self.events.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut e.0), std::mem::take(&mut e.1))
    }
}

/// How a refused `open` ended (for the protocol's reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Policy or guard said no.
    Denied,
    /// The destination refused the connection.
    Refused,
    /// Could not resolve or reach it.
    Unreachable,
}

pub struct Upstream {
    pub stream: TcpStream,
    pub ip: IpAddr,
}

/// A connection's context: the proxy and the sandbox it came from.
pub struct Ctx {
    shared: Arc<Shared>,
    sb: Arc<SandboxNet>,
}

impl Ctx {
    pub fn limits(&self) -> &NetLimits {
        &self.sb.limits
    }

    /// Resolve within this sandbox's share of lookups, then the proxy's.
    async fn lookup(&self, name: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        let closed = |_| std::io::Error::other("the proxy is shutting down");
        let _mine = self.sb.lookups.acquire().await.map_err(closed)?;
        let _all = self.shared.lookups.acquire().await.map_err(closed)?;
        self.shared.resolver.resolve(name, port).await
    }

    /// Resolves when the sandbox is stopped.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.sb.stop.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(&self, protocol: Protocol, decision: Decision, reason: String, host: String, port: u16, ip: Option<IpAddr>, up: u64, down: u64, t0: Instant) {
        let ev = NetEvent {
            ts: crate::audit::record::now_ms(),
            sandbox: self.sb.id.clone(),
            labels: self.sb.labels.clone(),
            protocol,
            decision,
            reason,
            host,
            port,
            ip,
            bytes_up: up,
            bytes_down: down,
            duration_ms: (t0.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        };
        tracing::debug!(target: "sharkcage::proxy", "{}", ev.summary());
        if let Some(sink) = self.shared.sink.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            sink(&ev);
        }
        let mut e = self.sb.events.lock().unwrap_or_else(|e| e.into_inner());
        if e.0.len() < MAX_EVENTS {
            e.0.push(ev);
        } else {
            e.1 += 1;
        }
    }

    pub fn record_malformed(&self, p: Protocol, why: &str, t0: Instant) {
        self.record(p, Decision::Error, format!("malformed request: {why}"), String::new(), 0, None, 0, 0, t0);
    }

    pub fn record_refused(&self, p: Protocol, host: &str, port: u16, why: &str, t0: Instant) {
        self.record(p, Decision::Deny, why.to_string(), host.to_string(), port, None, 0, 0, t0);
    }

    pub fn record_error(&self, p: Protocol, host: &str, port: u16, why: &str, t0: Instant) {
        self.record(p, Decision::Error, why.to_string(), host.to_string(), port, None, 0, 0, t0);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn record_allowed(&self, p: Protocol, host: &Host, port: u16, ip: IpAddr, c: &Counters, end: RelayEnd, t0: Instant) {
        self.record(p, Decision::Allow, format!("allowed; {}", end.describe()), host.to_string(), port, Some(ip), c.up(), c.down(), t0);
    }

    /// Decide on `host:port` and connect to a checked address. A refusal
    /// is recorded here; the caller only replies.
    pub async fn open(&self, p: Protocol, host: &Host, port: u16, t0: Instant) -> Result<Upstream, Outcome> {
        let rules = self.sb.rules();
        let hs = host.to_string();
        let exact = match rules.decide(host, port) {
            RuleDecision::Denied { reason, .. } => {
                self.record_refused(p, &hs, port, &reason, t0);
                return Err(Outcome::Denied);
            }
            RuleDecision::NotAllowed => {
                let why = if !rules.allow.is_empty() {
                    "not in network.allowedDomains".to_string()
                } else {
                    "network.allowedDomains is empty".to_string()
                };
                let why = match host {
                    Host::Ip(_) => format!("{why} (IP addresses must be listed exactly)"),
                    Host::Name(_) if port != 80 && port != 443 => format!("{why} (port {port} must be listed as host:{port})"),
                    _ => why,
                };
                self.record_refused(p, &hs, port, &why, t0);
                return Err(Outcome::Denied);
            }
            RuleDecision::Allowed { exact, .. } => exact,
        };
        let addrs = match host {
            // Only listed addresses get here (wildcards never match an IP).
            Host::Ip(a) => vec![*a],
            Host::Name(n) => match tokio::time::timeout(self.sb.limits.connect_timeout, self.lookup(n, port)).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    self.record_error(p, &hs, port, &format!("cannot resolve: {e}"), t0);
                    return Err(Outcome::Unreachable);
                }
                Err(_) => {
                    self.record_error(p, &hs, port, "name resolution timed out (or too many lookups of this sandbox at once)", t0);
                    return Err(Outcome::Unreachable);
                }
            },
        };
        let mut usable = Vec::new();
        let mut refused = None;
        for a in addrs {
            let a = host::unmap(a);
            if rules.denies_address(a, port) {
                refused = Some(format!("resolves to {a}, which deniedDomains lists"));
                continue;
            }
            let class = guard::classify(a).or_else(|| self.shared.this_host.contains(a).then_some("this-host"));
            match class {
                None => usable.push(a),
                Some(_) if exact || rules.lists_address(a, port) => usable.push(a),
                Some(cl) => {
                    refused = Some(format!("resolves to {a} ({cl}); only an exact allowedDomains entry, not a wildcard, may reach such an address"));
                }
            }
        }
        if usable.is_empty() {
            self.record_refused(p, &hs, port, &refused.unwrap_or_else(|| "no usable address".into()), t0);
            return Err(Outcome::Denied);
        }
        let mut last = None;
        for a in usable {
            match tokio::time::timeout(self.sb.limits.connect_timeout, TcpStream::connect((a, port))).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(Upstream { stream: s, ip: a });
                }
                Ok(Err(e)) => last = Some((a, e.to_string(), e.kind() == std::io::ErrorKind::ConnectionRefused)),
                Err(_) => last = Some((a, "connect timed out".into(), false)),
            }
        }
        let (a, why, refused) = last.expect("at least one address was tried");
        self.record(p, Decision::Error, format!("upstream connect to {a} failed: {why}"), hs, port, Some(a), 0, 0, t0);
        Err(if refused { Outcome::Refused } else { Outcome::Unreachable })
    }
}
