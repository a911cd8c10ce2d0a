//! The proxy against a recording upstream server, in-process: every refusal
//! is checked at the server (it received nothing), not only by the status
//! the client saw. The end-to-end tests from inside a real sandbox are in
//! `crates/sc/tests/network.rs`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sharkcage::proxy::resolve::SystemResolver;
use sharkcage::proxy::rules::NetRules;
use sharkcage::proxy::{Decision, Labels, NetLimits, Protocol, Proxy, SandboxNet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream HTTP server that records every request it receives.
struct Upstream {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<String>>>,
    conns: Arc<Mutex<usize>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(Mutex::new(0));
        let (g, c) = (got.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                *c.lock().unwrap() += 1;
                let g = g.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        let n = match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        // One request per head (+ body by Content-Length or chunked end).
                        while let Some(end) = find(&buf, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end + 4]).to_string();
                            let lower = head.to_ascii_lowercase();
                            let body_len = if lower.contains("transfer-encoding: chunked") {
                                match find(&buf[end + 4..], b"0\r\n\r\n") {
                                    Some(z) => z + 5,
                                    None => break,
                                }
                            } else {
                                lower.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse::<usize>().unwrap()).unwrap_or(0)
                            };
                            if buf.len() < end + 4 + body_len {
                                break;
                            }
                            let req: Vec<u8> = buf.drain(..end + 4 + body_len).collect();
                            g.lock().unwrap().push(String::from_utf8_lossy(&req).to_string());
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: x-secret\r\nX-Secret: 1\r\n\r\nupstream").await;
                        }
                    }
                });
            }
        });
        Upstream { addr, got, conns }
    }
    fn requests(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
    fn connections(&self) -> usize {
        *self.conns.lock().unwrap()
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

struct Fixture {
    proxy: Proxy,
    sb: Arc<SandboxNet>,
    http: SocketAddr,
    socks: SocketAddr,
    up: Upstream,
}

/// A proxy whose test names resolve to 127.0.0.1 (where the upstream is).
async fn fixture(allow: &[String], deny: &[String], scope: Option<&str>, limits: NetLimits) -> Fixture {
    let up = Upstream::start().await;
    let resolver = SystemResolver::with_fixed(&[
        "allowed.test=127.0.0.1".into(),
        "evil.test=127.0.0.1".into(),
        "a.wild.test=127.0.0.1".into(),
        "meta.wild.test=169.254.169.254".into(),
        "xn--bcher-kva.test=127.0.0.1".into(),
        "skill.test=127.0.0.1".into(),
    ])
    .unwrap();
    let proxy = Proxy::new(Arc::new(resolver));
    let rules = NetRules::compile(allow, deny, &Default::default()).unwrap();
    let labels = Labels { session: Some("s1".into()), skill: Some("k".into()), ..Default::default() };
    let sb = proxy.sandbox(labels, rules, scope, limits);
    let hl = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sl = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (http, socks) = (hl.local_addr().unwrap(), sl.local_addr().unwrap());
    proxy.serve(&sb, hl, Protocol::Http).unwrap();
    proxy.serve(&sb, sl, Protocol::Socks5).unwrap();
    Fixture { proxy, sb, http, socks, up }
}

fn p(port: u16) -> Vec<String> {
    vec![format!("allowed.test:{port}")]
}

/// Send raw bytes to the HTTP proxy; return everything it answers.
async fn raw(f: &Fixture, req: &[u8]) -> String {
    let mut s = TcpStream::connect(f.http).await.unwrap();
    // The proxy may answer and close before reading everything.
    let _ = s.write_all(req).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

/// Read a response head (up to the blank line), byte by byte.
async fn read_head(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    while !out.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_forward_strips_hop_by_hop_and_checks_each_request() {
    let f = fixture(&[], &[], None, NetLimits::default()).await;
    let port = f.up.addr.port();
    f.sb.set_rules(NetRules::compile(&p(port), &["evil.test".into()], &Default::default()).unwrap());
    let req = format!(
        "GET http://allowed.test:{port}/a?b=1 HTTP/1.1\r\nHost: allowed.test:{port}\r\nProxy-Authorization: Basic eA==\r\nConnection: keep-alive, x-hop\r\nX-Hop: secret\r\nX-Keep: yes\r\n\r\n\
         GET http://evil.test:{port}/ HTTP/1.1\r\nHost: evil.test:{port}\r\n\r\n"
    );
    let out = raw(&f, req.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("upstream"));
    assert!(!out.to_ascii_lowercase().contains("x-secret"), "response hop-by-hop header forwarded: {out}");
    assert!(out.contains("403"), "second request on the keep-alive connection not refused: {out}");
    let got = f.up.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("GET /a?b=1 HTTP/1.1\r\n"), "not origin-form: {}", got[0]);
    let lower = got[0].to_ascii_lowercase();
    assert!(lower.contains("x-keep: yes"));
    for h in ["proxy-authorization", "x-hop", "connection: keep-alive"] {
        assert!(!lower.contains(h), "{h} forwarded: {}", got[0]);
    }
    let (ev, _) = f.sb.take_events();
    assert!(ev.iter().any(|e| e.decision == Decision::Deny && e.host == "evil.test" && e.labels.session.as_deref() == Some("s1")), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_and_malformed_shapes_reach_nothing() {
    let f = fixture(&[], &[], None, NetLimits::default()).await;
    let port = f.up.addr.port();
    f.sb.set_rules(NetRules::compile(&p(port), &[], &Default::default()).unwrap());
    let t = format!("allowed.test:{port}");
    let cases: Vec<(&str, String)> = vec![
        ("CL+TE", format!("POST http://{t}/ HTTP/1.1\r\nHost: {t}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
        ("two CL", format!("POST http://{t}/ HTTP/1.1\r\nHost: {t}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde")),
        ("same CL twice", format!("POST http://{t}/ HTTP/1.1\r\nHost: {t}\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na")),
        ("TE not chunked", format!("POST http://{t}/ HTTP/1.1\r\nHost: {t}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")),
        ("TE obfuscated", format!("POST http://{t}/ HTTP/1.1\r\nHost: {t}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n")),
        ("TE twice", format!("POST http://{t}/ HTTP/1.1\r\nHost: {t}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
        ("TE on 1.0", format!("POST http://{t}/ HTTP/1.0\r\nHost: {t}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
        ("space before colon", format!("GET http://{t}/ HTTP/1.1\r\nHost: {t}\r\nContent-Length : 0\r\n\r\n")),
        ("obs-fold", format!("GET http://{t}/ HTTP/1.1\r\nHost: {t}\r\nX-A: a\r\n b\r\n\r\n")),
        ("bare LF in header", format!("GET http://{t}/ HTTP/1.1\r\nHost: {t}\r\nX-A: a\rb\r\n\r\n")),
        ("Host mismatch", format!("GET http://{t}/ HTTP/1.1\r\nHost: evil.test:{port}\r\n\r\n")),
        ("Host port mismatch", format!("GET http://{t}/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n")),
        ("two Host", format!("GET http://{t}/ HTTP/1.1\r\nHost: {t}\r\nHost: {t}\r\n\r\n")),
        ("no Host", format!("GET http://{t}/ HTTP/1.1\r\n\r\n")),
        ("origin-form", format!("GET / HTTP/1.1\r\nHost: {t}\r\n\r\n")),
        ("https target", format!("GET https://{t}/ HTTP/1.1\r\nHost: {t}\r\n\r\n")),
        ("userinfo", format!("GET http://evil.test@{t}/ HTTP/1.1\r\nHost: {t}\r\n\r\n")),
        ("huge header", format!("GET http://{t}/ HTTP/1.1\r\nHost: {t}\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000))),
        ("garbage", "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03\x03".to_string()),
        ("CONNECT without port", "CONNECT allowed.test HTTP/1.1\r\nHost: allowed.test\r\n\r\n".to_string()),
    ];
    for (name, req) in &cases {
        let out = raw(&f, req.as_bytes()).await;
        let status = out.split(' ').nth(1).unwrap_or("");
        assert!(status.starts_with('4') || out.is_empty(), "{name}: expected a 4xx refusal, got {out:?}");
        assert!(f.up.requests().is_empty() && f.up.connections() == 0, "{name}: upstream received {:?}", f.up.requests());
    }
    // A well-formed chunked body whose content looks like a second request
    // is forwarded as one request.
    let req = format!("POST http://{t}/ HTTP/1.1\r\nHost: {t}\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n0\r\n\r\n");
    let out = raw(&f, req.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(f.up.requests().len(), 1, "{:?}", f.up.requests());
    let (ev, _) = f.sb.take_events();
    assert!(ev.iter().filter(|e| e.decision != Decision::Allow).count() >= cases.len() - 3, "every refusal is an event: {ev:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_spellings_ip_literals_and_the_address_guard() {
    let f = fixture(&[], &[], None, NetLimits::default()).await;
    let port = f.up.addr.port();
    let allow = vec![format!("allowed.test:{port}"), format!("*.wild.test:{port}"), format!("xn--bcher-kva.test:{port}")];
    f.sb.set_rules(NetRules::compile(&allow, &[format!("evil.test:{port}")], &Default::default()).unwrap());
    // Denied spellings of a denied name, IP literals that are not listed
    // (all spellings of 127.0.0.1), the metadata address, a wildcard name
    // that resolves to loopback or metadata, and the apex of the wildcard.
    let denied = [
        format!("EVIL.test.:{port}"),
        format!("evil.TEST:{port}"),
        format!("127.0.0.1:{port}"),
        format!("127.1:{port}"),
        format!("0x7f.1:{port}"),
        format!("2130706433:{port}"),
        format!("0177.0.0.1:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("[::1]:{port}"),
        format!("169.254.169.254:{port}"),
        format!("a.wild.test:{port}"),
        format!("meta.wild.test:{port}"),
        format!("wild.test:{port}"),
        "allowed.test:22".to_string(),
        "allowed.test:443".to_string(),
    ];
    for d in &denied {
        let out = raw(&f, format!("CONNECT {d} HTTP/1.1\r\nHost: {d}\r\n\r\n").as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 403") || out.starts_with("HTTP/1.1 400"), "{d}: {out}");
    }
    assert_eq!(f.up.connections(), 0, "a refused destination reached the server");
    let (ev, _) = f.sb.take_events();
    let guard = ev.iter().find(|e| e.host == "a.wild.test").unwrap();
    assert!(guard.reason.contains("loopback") && guard.reason.contains("wildcard"), "{guard:?}");
    assert!(ev.iter().any(|e| e.host == "meta.wild.test" && e.reason.contains("cloud-metadata")), "{ev:?}");
    // The exact name may reach the loopback address it resolves to, in any spelling.
    for ok in [format!("allowed.test:{port}"), format!("ALLOWED.test.:{port}")] {
        let out = raw(&f, format!("CONNECT {ok} HTTP/1.1\r\nHost: {ok}\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{ok}: {out}");
        assert!(out.contains("upstream"), "{ok}: {out}");
    }
    // IDNA: the Unicode name through SOCKS5 matches the punycode entry.
    let mut s = TcpStream::connect(f.socks).await.unwrap();
    let name = "bücher.test".as_bytes();
    let mut req = vec![5, 1, 0, 5, 1, 0, 3, name.len() as u8];
    req.extend_from_slice(name);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut r = [0u8; 12];
    s.read_exact(&mut r).await.unwrap();
    assert_eq!(&r[..3], &[5, 0, 5], "greeting ok then a reply");
    assert_eq!(r[3], 0, "IDNA name refused: reply {}", r[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_refuses_bind_udp_and_denied_names() {
    let f = fixture(&[], &[], None, NetLimits::default()).await;
    let port = f.up.addr.port();
    f.sb.set_rules(NetRules::compile(&p(port), &[], &Default::default()).unwrap());
    let socks = |cmd: u8, name: &'static str, noauth: bool| {
        let addr = f.socks;
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(if noauth { &[5, 1, 0] } else { &[5, 1, 2] }).await.unwrap();
            let mut g = [0u8; 2];
            s.read_exact(&mut g).await.unwrap();
            if g[1] != 0 {
                return g[1];
            }
            let mut req = vec![5, cmd, 0, 3, name.len() as u8];
            req.extend_from_slice(name.as_bytes());
            req.extend_from_slice(&port.to_be_bytes());
            s.write_all(&req).await.unwrap();
            let mut r = [0u8; 10];
            s.read_exact(&mut r).await.unwrap();
            r[1]
        }
    };
    assert_eq!(socks(2, "allowed.test", true).await, 7, "BIND");
    assert_eq!(socks(3, "allowed.test", true).await, 7, "UDP ASSOCIATE");
    assert_eq!(socks(1, "evil.test", true).await, 2, "denied name");
    assert_eq!(socks(1, "allowed.test", false).await, 0xff, "no acceptable auth method");
    assert_eq!(f.up.connections(), 0);
    assert_eq!(socks(1, "allowed.test", true).await, 0, "allowed name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_changes_apply_to_new_connections_without_restart() {
    let f = fixture(&[], &[], Some("skill:weather"), NetLimits::default()).await;
    let port = f.up.addr.port();
    let req = format!("GET http://skill.test:{port}/ HTTP/1.1\r\nHost: skill.test:{port}\r\n\r\n");
    assert!(raw(&f, req.as_bytes()).await.starts_with("HTTP/1.1 403"));
    // An approval widens the skill's domains: the running sandbox sees it.
    f.proxy.scope("skill:weather").set(NetRules::compile(&[format!("skill.test:{port}")], &[], &Default::default()).unwrap());
    assert!(raw(&f, req.as_bytes()).await.starts_with("HTTP/1.1 200"));
    // And a revocation takes effect the same way.
    f.proxy.scope("skill:weather").set(NetRules::default());
    assert!(raw(&f, req.as_bytes()).await.starts_with("HTTP/1.1 403"));
    assert_eq!(f.up.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_connections_idle_and_stop() {
    let limits = NetLimits { max_connections: 2, idle: Duration::from_millis(300), ..Default::default() };
    let f = fixture(&[], &[], None, limits).await;
    let port = f.up.addr.port();
    f.sb.set_rules(NetRules::compile(&p(port), &[], &Default::default()).unwrap());
    let connect = format!("CONNECT allowed.test:{port} HTTP/1.1\r\nHost: allowed.test:{port}\r\n\r\n");
    let mut a = TcpStream::connect(f.http).await.unwrap();
    let mut b = TcpStream::connect(f.http).await.unwrap();
    for s in [&mut a, &mut b] {
        s.write_all(connect.as_bytes()).await.unwrap();
        let head = read_head(s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    // A third connection is over the limit.
    let out = raw(&f, connect.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    // The idle tunnels are cut.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), a.read(&mut buf)).await.expect("idle tunnel not cut").unwrap_or(0);
    assert_eq!(n, 0);
    let (ev, _) = f.sb.finish(Duration::from_millis(100)).await;
    assert!(ev.iter().any(|e| e.reason.contains("idle timeout")), "{ev:#?}");
    assert!(ev.iter().any(|e| e.reason.contains("too many connections")), "{ev:#?}");
    // After finish, the listeners are closed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(f.http).await.is_err(), "listener still accepting after the sandbox ended");
}

/// A tiny DNS server on 127.0.0.1 (UDP): names under `slow.test` never get
/// an answer (a silent authoritative server, as a hostile sandbox would pick);
/// every other A query gets 127.0.0.1, AAAA an empty answer. Counts queries.
async fn dns_server() -> (SocketAddr, Arc<Mutex<usize>>) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let queries = Arc::new(Mutex::new(0usize));
    let q = queries.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else { continue };
            *q.lock().unwrap() += 1;
            let msg = &buf[..n];
            if n < 12 {
                continue;
            }
            // The question: labels from byte 12, then type and class.
            let mut i = 12;
            let mut name = Vec::new();
            while i < n && msg[i] != 0 {
                let l = msg[i] as usize;
                name.push(String::from_utf8_lossy(&msg[i + 1..(i + 1 + l).min(n)]).to_string());
                i += 1 + l;
            }
            let qend = i + 5;
            if qend > n {
                continue;
            }
            let qtype = u16::from_be_bytes([msg[i + 1], msg[i + 2]]);
            if name.join(".").ends_with("slow.test") {
                continue; // silent
            }
            let a = qtype == 1;
            let mut r = Vec::new();
            r.extend_from_slice(&msg[..2]); // id
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(a), 0, 0, 0, 0]);
            r.extend_from_slice(&msg[12..qend]);
            if a {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            }
            let _ = sock.send_to(&r, from).await;
        }
    });
    (addr, queries)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// The bound this test states: while another sandbox keeps 400 lookups of a
/// silent name server going, a sandbox's request through the proxy (its own
/// lookup included) is answered within 1 s (it takes a few ms alone), and
/// the process gains no threads (no lookup holds one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_flooding_a_silent_name_server_does_not_slow_another() {
    let up = Upstream::start().await;
    let port = up.addr.port();
    let (dns, queries) = dns_server().await;
    let resolver = SystemResolver { name_servers: vec![dns], ..Default::default() };
    let proxy = Proxy::new(Arc::new(resolver));
    let listen = |sb: &Arc<SandboxNet>| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        proxy.serve(sb, l, Protocol::Http).unwrap();
        a
    };
    let flooder = proxy.sandbox(Labels::default(), NetRules::compile(&["*.slow.test".into()], &[], &Default::default()).unwrap(), None, NetLimits::default());
    let victim = proxy.sandbox(Labels::default(), NetRules::compile(&[format!("fast.test:{port}")], &[], &Default::default()).unwrap(), None, NetLimits::default());
    let (fl, vl) = (listen(&flooder), listen(&victim));
    let ask = |via: SocketAddr, host: String| async move {
        let mut s = TcpStream::connect(via).await.unwrap();
        s.write_all(format!("GET http://{host}/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).to_string()
    };
    // Alone first: the victim's request works (through the real resolver).
    let t0 = std::time::Instant::now();
    let alone = ask(vl, format!("fast.test:{port}")).await;
    let alone_ms = t0.elapsed().as_millis();
    assert!(alone.starts_with("HTTP/1.1 200"), "{alone}");
    let threads_before = threads();
    // The flood: 400 lookups of distinct silent names, all in flight at once.
    let mut flood = Vec::new();
    for i in 0..400 {
        flood.push(tokio::spawn(ask(fl, format!("n{i}.slow.test"))));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = std::time::Instant::now();
    let during = ask(vl, format!("fast.test:{port}")).await;
    let during_ms = t0.elapsed().as_millis();
    assert!(during.starts_with("HTTP/1.1 200"), "{during}");
    assert!(during_ms < 1000, "the victim's request took {during_ms} ms during the flood ({alone_ms} ms alone)");
    assert!(threads() <= threads_before + 2, "threads grew from {threads_before} to {} during the flood", threads());
    assert_eq!(up.requests().len(), 2, "the upstream got both of the victim's requests and nothing else");
    // The flooder holds at most its own share of lookups.
    let asked = *queries.lock().unwrap();
    assert!(asked < 200, "{asked} queries reached the name server: the flooder's lookups were not bounded");
    for h in flood {
        h.abort();
    }
}

/// The gateway's connection budget is shared fairly: a sandbox holding
/// slow request heads on every connection it can open gets at most
/// three-quarters of the budget; another sandbox still gets connections and
/// its requests through; the flooder's refusals are recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sandbox_cannot_take_the_gateways_whole_connection_budget() {
    let up = Upstream::start().await;
    let port = up.addr.port();
    let resolver = SystemResolver::with_fixed(&["allowed.test=127.0.0.1".into()]).unwrap();
    let proxy = Proxy::with_budget(Arc::new(resolver), 40);
    let rules = || NetRules::compile(&p(port), &[], &Default::default()).unwrap();
    let listen = |sb: &Arc<SandboxNet>| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        proxy.serve(sb, l, Protocol::Http).unwrap();
        a
    };
    let flooder = proxy.sandbox(Labels::default(), rules(), None, NetLimits::default());
    let other = proxy.sandbox(Labels::default(), rules(), None, NetLimits::default());
    let (fl, ol) = (listen(&flooder), listen(&other));
    // 60 connections, each a request head that never ends.
    let mut held = Vec::new();
    for _ in 0..60 {
        let mut s = TcpStream::connect(fl).await.unwrap();
        let _ = s.write_all(b"GET http://allowed.test/ HTTP/1.1\r\nX-Slow: ").await;
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = flooder.active_connections();
    assert!(busy <= 30, "the flooder holds {busy} of 40");
    // The other sandbox: several connections, and a request through each.
    for i in 0..5 {
        let mut s = TcpStream::connect(ol).await.unwrap();
        s.write_all(format!("GET http://allowed.test:{port}/o{i} HTTP/1.1\r\nHost: allowed.test:{port}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 200"), "request {i} of the other sandbox: {out}");
    }
    assert_eq!(up.requests().iter().filter(|r| r.contains("/o")).count(), 5);
    drop(held);
    let (ev, _) = flooder.finish(Duration::from_millis(100)).await;
    assert!(ev.iter().any(|e| e.reason.contains("three-quarters")), "{:#?}", ev.iter().map(|e| &e.reason).collect::<Vec<_>>());
}
