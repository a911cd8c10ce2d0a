//! HTTP forward proxy (absolute-form requests) and CONNECT tunnels, on hyper.
//!
//! hyper parses every request head (httparse underneath) with a size limit
//! and a read timeout, and answers malformed input with 400/431 itself; this
//! file decides. Every request on a keep-alive connection is decided on its
//! own; each forwarded request gets its own upstream connection to the
//! address checked for it.
//!
//! Every head is also re-parsed on the raw bytes (`framing.rs`), because
//! hyper quietly normalises some ambiguous shapes. Refused before any
//! upstream byte is sent:
//! * a request target that is not absolute-form `http://` (origin-form,
//!   `https://` — use CONNECT —, userinfo in the authority);
//! * a `Host` header that is missing, repeated, or names another host or
//!   port than the target;
//! * smuggling shapes: `Content-Length` together with `Transfer-Encoding`,
//!   repeated `Content-Length`, a `Transfer-Encoding` other than exactly
//!   `chunked`, `Transfer-Encoding` on HTTP/1.0;
//! * a destination the policy does not allow (403, `x-proxy-error`).
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1: `Connection` and every field it
//! names, `Keep-Alive`, `Proxy-Connection`, `Proxy-Authorization`,
//! `Proxy-Authenticate`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`) are
//! not forwarded either way; hyper re-frames the bodies.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, CONNECTION, HOST};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::framing::{Framing, Sniffed};
use super::host::{canonicalize, split_host_port, Host};
use super::relay::{relay, watchdog, Counted, Counters, RelayEnd};
use super::{Ctx, Outcome, Protocol};

type Body = BoxBody<Bytes, hyper::Error>;

const HOP_BY_HOP: [&str; 9] = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"];

fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

fn refusal(status: StatusCode, tag: &str, reason: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("sharkcage proxy: {reason}\n"))).map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
    if let Ok(v) = tag.parse() {
        h.insert("x-proxy-error", v);
    }
    h.insert(CONNECTION, "close".parse().unwrap());
    r
}

/// Serve one HTTP proxy connection from the sandbox.
/// `permit` is the connection's slot in the sandbox's connection limit and
/// the gateway's budget; a
/// CONNECT tunnel takes it over, since it outlives this function.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S, ctx: Arc<Ctx>, permit: Option<super::Slot>) {
    let t0 = Instant::now();
    let c2 = ctx.clone();
    // Every request head is also checked on the raw bytes (`framing.rs`).
    let framing = Arc::new(Mutex::new(Framing::new(ctx.limits().max_header_bytes.max(8192))));
    let f2 = framing.clone();
    let seq = Arc::new(AtomicUsize::new(0));
    let slot = Arc::new(Mutex::new(permit));
    let svc = service_fn(move |req| {
        let ctx = c2.clone();
        let slot = slot.clone();
        let k = seq.fetch_add(1, Ordering::Relaxed);
        let verdict = f2.lock().unwrap_or_else(|e| e.into_inner()).verdict(k);
        async move {
            Ok::<_, Infallible>(match verdict {
                Ok(()) => handle(req, ctx, slot).await,
                Err(why) => bad(&ctx, Protocol::Http, "", 0, &format!("ambiguous message framing: {why}"), Instant::now()),
            })
        }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(ctx.limits().header_timeout)
        .max_buf_size(ctx.limits().max_header_bytes.max(8192))
        .max_headers(128)
        // A client that half-closes after its request still gets the answer.
        .half_close(true)
        .keep_alive(true);
    let conn = b.serve_connection(TokioIo::new(Sniffed::new(s, framing)), svc).with_upgrades();
    tokio::pin!(conn);
    let stop = ctx.stopped();
    tokio::pin!(stop);
    let r = tokio::select! {
        r = conn.as_mut() => r,
        _ = &mut stop => return,
    };
    if let Err(e) = r {
        if e.is_parse() || e.is_parse_too_large() || e.is_timeout() {
            ctx.record_malformed(Protocol::Http, &e.to_string(), t0);
        }
    }
}

type Slot = Arc<Mutex<Option<super::Slot>>>;

async fn handle(req: Request<Incoming>, ctx: Arc<Ctx>, slot: Slot) -> Response<Body> {
    let t0 = Instant::now();
    if req.method() == Method::CONNECT {
        connect(req, ctx, t0, slot).await
    } else {
        forward(req, ctx, t0).await
    }
}

fn bad(ctx: &Ctx, p: Protocol, host: &str, port: u16, why: &str, t0: Instant) -> Response<Body> {
    ctx.record_refused(p, host, port, why, t0);
    refusal(StatusCode::BAD_REQUEST, "bad-request", why)
}

fn deny_response(o: Outcome) -> Response<Body> {
    match o {
        Outcome::Denied => refusal(StatusCode::FORBIDDEN, "blocked-by-policy", "destination not allowed by the sandbox's network policy"),
        Outcome::Refused | Outcome::Unreachable => refusal(StatusCode::BAD_GATEWAY, "upstream-failed", "could not reach the destination"),
    }
}

async fn connect(req: Request<Incoming>, ctx: Arc<Ctx>, t0: Instant, slot: Slot) -> Response<Body> {
    let p = Protocol::Connect;
    let uri = req.uri();
    let Some(auth) = uri.authority().filter(|_| uri.scheme().is_none() && uri.path_and_query().is_none()) else {
        return bad(&ctx, p, "", 0, "CONNECT needs an authority-form target host:port", t0);
    };
    if auth.as_str().contains('@') {
        return bad(&ctx, p, auth.as_str(), 0, "userinfo in a CONNECT target", t0);
    }
    let (h, port) = match split_host_port(auth.as_str()) {
        Ok((h, Some(port))) => (h, port),
        _ => return bad(&ctx, p, auth.as_str(), 0, "CONNECT target needs host:port", t0),
    };
    let host = match canonicalize(h) {
        Ok(h) => h,
        Err(e) => return bad(&ctx, p, h, port, &format!("malformed host: {e}"), t0),
    };
    let up = match ctx.open(p, &host, port, t0).await {
        Ok(u) => u,
        Err(o) => return deny_response(o),
    };
    tokio::spawn(async move {
        // The tunnel holds the connection's slot until it ends.
        let _permit = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        let c = Counters::new();
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let end = relay(TokioIo::new(upgraded), Counted::new(up.stream, c.clone()), ctx.limits().idle, ctx.limits().total, ctx.stopped()).await;
                ctx.record_allowed(p, &host, port, up.ip, &c, end, t0);
            }
            Err(e) => ctx.record_allowed(p, &host, port, up.ip, &c, if e.is_canceled() { RelayEnd::Closed } else { RelayEnd::Error }, t0),
        }
    });
    Response::new(empty())
}

/// Field names listed in `Connection` headers (also hop-by-hop).
fn connection_tokens(h: &HeaderMap) -> Vec<HeaderName> {
    h.get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    for t in connection_tokens(h) {
        h.remove(t);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
}

async fn forward(req: Request<Incoming>, ctx: Arc<Ctx>, t0: Instant) -> Response<Body> {
    let p = Protocol::Http;
    let uri = req.uri().clone();
    match uri.scheme_str() {
        Some("http") => {}
        Some(_) => return bad(&ctx, p, "", 0, "only http:// targets are forwarded; use CONNECT for https", t0),
        None => return bad(&ctx, p, "", 0, "this is a proxy: requests need an absolute-form http:// target", t0),
    }
    let Some(auth) = uri.authority() else {
        return bad(&ctx, p, "", 0, "request target has no host", t0);
    };
    if auth.as_str().contains('@') {
        return bad(&ctx, p, auth.as_str(), 0, "userinfo in the request target", t0);
    }
    let (h, port) = match split_host_port(auth.as_str()) {
        Ok((h, port)) => (h, port.unwrap_or(80)),
        Err(e) => return bad(&ctx, p, auth.as_str(), 0, &format!("malformed target: {e}"), t0),
    };
    let host = match canonicalize(h) {
        Ok(h) => h,
        Err(e) => return bad(&ctx, p, h, port, &format!("malformed host: {e}"), t0),
    };
    let hs = host.to_string();
    // The Host header must name the same destination as the target.
    let hosts: Vec<_> = req.headers().get_all(HOST).iter().collect();
    if hosts.len() != 1 {
        return bad(&ctx, p, &hs, port, "exactly one Host header is required", t0);
    }
    let same = hosts[0].to_str().ok().and_then(|v| split_host_port(v).ok()).and_then(|(hh, hp)| Some((canonicalize(hh).ok()?, hp.unwrap_or(80))));
    if same != Some((host.clone(), port)) {
        return bad(&ctx, p, &hs, port, "Host header does not match the request target", t0);
    }
    let up = match ctx.open(p, &host, port, t0).await {
        Ok(u) => u,
        Err(o) => return deny_response(o),
    };
    let c = Counters::new();
    let (mut sender, conn) = match hyper::client::conn::http1::Builder::new().handshake::<_, Incoming>(TokioIo::new(Counted::new(up.stream, c.clone()))).await {
        Ok(v) => v,
        Err(e) => {
            ctx.record_error(p, &hs, port, &format!("upstream handshake failed: {e}"), t0);
            return deny_response(Outcome::Unreachable);
        }
    };
    let (parts, body) = req.into_parts();
    let mut out = Request::new(body);
    *out.method_mut() = parts.method;
    *out.uri_mut() = match uri.path_and_query() {
        Some(pq) => pq.as_str().parse().unwrap_or_else(|_| "/".parse().unwrap()),
        None => "/".parse().unwrap(),
    };
    *out.version_mut() = Version::HTTP_11;
    *out.headers_mut() = parts.headers;
    strip_hop_by_hop(out.headers_mut());
    let ip = up.ip;
    {
        let ctx = ctx.clone();
        let c = c.clone();
        let host: Host = host.clone();
        tokio::spawn(async move {
            let end = tokio::select! {
                r = conn => if r.is_ok() { RelayEnd::Closed } else { RelayEnd::Error },
                e = watchdog(&c, ctx.limits().idle, ctx.limits().total) => e,
                _ = ctx.stopped() => RelayEnd::Stopped,
            };
            ctx.record_allowed(p, &host, port, ip, &c, end, t0);
        });
    }
    match sender.send_request(out).await {
        Ok(resp) => {
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                return refusal(StatusCode::BAD_GATEWAY, "upgrade-refused", "protocol upgrades are not forwarded");
            }
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => {
            ctx.record_error(p, &hs, port, &format!("upstream request failed: {e}"), t0);
            refusal(StatusCode::BAD_GATEWAY, "upstream-failed", "the destination did not answer")
        }
    }
}
