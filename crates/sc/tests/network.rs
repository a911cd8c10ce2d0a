//! The network from inside a real sandbox: `sc exec` with a policy, a test
//! server on the host's loopback, and the sandboxed command talking through
//! the proxy at `127.0.0.1:3128` (HTTP/CONNECT) and `:1080` (SOCKS5) of its
//! own network namespace. Every refusal is checked at the test server (it
//! received nothing); test names reach it through `--net-resolve`.
//! The command side uses `sc __probe exchange:…` (raw bytes, no client
//! program needed) and, where installed, curl.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// A host HTTP server on 127.0.0.1 that records the heads it receives.
struct Server {
    port: u16,
    got: Arc<Mutex<Vec<String>>>,
    marker: String,
}

impl Server {
    fn start() -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let marker = format!("HOST-SERVER-{}", uniq());
        let (g, m) = (got.clone(), marker.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let (g, m) = (g.clone(), m.clone());
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    g.lock().unwrap().push(String::from_utf8_lossy(&buf).to_string());
                    let body = format!("{m}\n");
                    let _ = s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
                });
            }
        });
        Server { port, got, marker }
    }
    fn heads(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// `exchange:ADDR:HEX` probe spec.
fn exch(addr: &str, bytes: &[u8]) -> String {
    format!("exchange:{addr}:{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn http_get(target_host: &str, host_header: &str, path: &str) -> String {
    format!("exchange:127.0.0.1:3128:{}", hex(&format!("GET http://{target_host}{path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n")))
}

fn connect_get(target: &str, path: &str) -> String {
    format!("exchange:127.0.0.1:3128:{}", hex(&format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nGET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n")))
}

fn socks_get(name: &str, port: u16, path: &str) -> String {
    let mut b = vec![5u8, 1, 0, 5, 1, 0, 3, name.len() as u8];
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(&port.to_be_bytes());
    b.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes());
    exch("127.0.0.1:1080", &b)
}

fn reply(v: &serde_json::Value, name: &str) -> String {
    v[name]["reply"].as_str().unwrap_or_else(|| panic!("no reply for {name}: {v}")).to_string()
}

/// Run the probe in a sandbox with `policy` and fixed name answers; return
/// the probe's answers and the result JSON.
fn run(t: &T, policy: &str, resolve: &[&str], probes: &[String]) -> (serde_json::Value, serde_json::Value) {
    let mut r = t.sc().policy(policy);
    for x in resolve {
        r = r.opt("--net-resolve").opt(*x);
    }
    let mut argv: Vec<String> = vec![sc_bin().into(), "__probe".into()];
    argv.extend(probes.iter().cloned());
    let out = r.cmd(argv).run();
    out.assert_ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("probe output ({e}): {}\n{}", out.out(), out.err()));
    (v, out.j().clone())
}

#[test]
fn allowed_name_works_through_http_connect_and_socks5() {
    let _g = shared();
    let t = T::new();
    let s = Server::start();
    let p = s.port;
    let policy = format!(r#"{{"network":{{"allowedDomains":["web.test:{p}"]}}}}"#);
    let probes = vec![http_get(&format!("web.test:{p}"), &format!("web.test:{p}"), "/via-http"), connect_get(&format!("web.test:{p}"), "/via-connect"), socks_get("web.test", p, "/via-socks")];
    let (v, j) = run(&t, &policy, &["web.test=127.0.0.1"], &probes);
    for pr in &probes {
        let r = reply(&v, pr);
        assert!(r.contains(&s.marker), "{pr}: {r}");
    }
    let heads = s.heads();
    for path in ["/via-http", "/via-connect", "/via-socks"] {
        assert!(heads.iter().any(|h| h.starts_with(&format!("GET {path} HTTP/1.1"))), "{path} not received: {heads:?}");
    }
    // The http request went out in origin-form, without proxy headers.
    assert!(!heads.iter().any(|h| h.contains("http://")), "{heads:?}");
    // Structured events with identity, destination, address and bytes.
    let ev = j["network"]["events"].as_array().unwrap();
    assert_eq!(j["network"]["mode"], "proxy");
    for proto in ["http", "connect", "socks5"] {
        let e = ev.iter().find(|e| e["protocol"] == proto).unwrap_or_else(|| panic!("no {proto} event: {ev:?}"));
        assert_eq!(e["decision"], "allow");
        assert_eq!(e["host"], "web.test");
        assert_eq!(e["ip"], "127.0.0.1");
        assert!(e["bytesUp"].as_u64().unwrap() > 0 && e["bytesDown"].as_u64().unwrap() > 0, "{e}");
        assert!(e["sandbox"].as_str().unwrap().starts_with("sb-"));
    }
}

#[test]
fn curl_through_the_announced_proxy_variables() {
    let _g = shared();
    if which("curl").is_none() {
        eprintln!("SKIP curl_through_the_announced_proxy_variables: curl is not installed (the probe-based tests cover the protocols)");
        return;
    }
    let t = T::new();
    let s = Server::start();
    let p = s.port;
    let policy = format!(r#"{{"network":{{"allowedDomains":["web.test:{p}"]}}}}"#);
    // Plain proxy variables (HTTP_PROXY), CONNECT (-p) and socks5h (ALL_PROXY).
    let script = format!(
        "curl -sS http://web.test:{p}/curl-http && curl -sS -p http://web.test:{p}/curl-connect && curl -sS -x \"$ALL_PROXY\" http://web.test:{p}/curl-socks && curl -sS -o /dev/null -w '%{{http_code}}' http://denied.test:{p}/curl-denied"
    );
    let out = t.sc().policy(&policy).opt("--net-resolve").opt("web.test=127.0.0.1").opt("--net-resolve").opt("denied.test=127.0.0.1").sh(&script).run();
    out.assert_ok();
    assert_eq!(out.out().matches(&s.marker).count(), 3, "{}", out.all());
    assert!(out.out().ends_with("403"), "{}", out.all());
    let heads = s.heads();
    assert_eq!(heads.len(), 3, "{heads:?}");
    assert!(!heads.iter().any(|h| h.contains("/curl-denied")));
}

#[test]
fn refused_destinations_never_reach_the_server() {
    let _g = shared();
    let t = T::new();
    let s = Server::start();
    let p = s.port;
    let policy = format!(
        r#"{{"network":{{"allowedDomains":["web.test:{p}","*.wild.test:{p}","web80.test"],"deniedDomains":["bad.wild.test","evil.test"]}}}}"#
    );
    let resolve = ["web.test=127.0.0.1", "sub.wild.test=127.0.0.1", "bad.wild.test=127.0.0.1", "evil.test=127.0.0.1", "wild.test=127.0.0.1", "meta.wild.test=169.254.169.254", "web80.test=127.0.0.1", "other.test=127.0.0.1"];
    let w = |h: &str| format!("{h}:{p}");
    let mut denied = vec![
        // deniedDomains wins over the wildcard; apex is not a subdomain.
        connect_get(&w("bad.wild.test"), "/d1"),
        connect_get(&w("wild.test"), "/d2"),
        // A wildcard name resolving to loopback or metadata.
        connect_get(&w("sub.wild.test"), "/d3"),
        connect_get(&w("meta.wild.test"), "/d4"),
        // Port not listed (an entry without a port is 80/443 only).
        connect_get(&w("web80.test"), "/d5"),
        // Not listed at all.
        connect_get(&w("other.test"), "/d6"),
        // Spellings of a denied name.
        connect_get(&w("EVIL.test."), "/d7"),
        http_get(&w("Evil.Test"), &w("Evil.Test"), "/d8"),
        // Loopback and metadata addresses, in every spelling.
        socks_get("localhost", p, "/d9"),
        connect_get("169.254.169.254:80", "/d10"),
        connect_get("[fd00:ec2::254]:80", "/d11"),
        // Host header naming another host than the target.
        http_get(&w("web.test"), &w("evil.test"), "/d12"),
        // Smuggling: Content-Length and Transfer-Encoding together.
        format!("exchange:127.0.0.1:3128:{}", hex(&format!("POST http://web.test:{p}/d13 HTTP/1.1\r\nHost: web.test:{p}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))),
    ];
    for ip in ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "0177.0.0.1", "[::ffff:127.0.0.1]", "[::1]"] {
        denied.push(connect_get(&format!("{ip}:{p}"), "/ip"));
    }
    // SOCKS5 with a raw IPv4 address that is not listed.
    let mut b = vec![5u8, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1];
    b.extend_from_slice(&p.to_be_bytes());
    denied.push(exch("127.0.0.1:1080", &b));
    let (v, j) = run(&t, &policy, &resolve, &denied);
    assert!(s.heads().is_empty(), "the server received: {:?}", s.heads());
    for d in &denied {
        let r = reply(&v, d);
        assert!(!r.contains(&s.marker), "{d}: {r}");
        // The proxy answered with a refusal (so the test is not vacuous).
        if d.starts_with("exchange:127.0.0.1:1080:") {
            assert_eq!(r.as_bytes().get(3), Some(&2u8), "{d}: SOCKS reply {:?}", r.as_bytes());
        } else {
            assert!(r.starts_with("HTTP/1.1 403") || r.starts_with("HTTP/1.1 400"), "{d}: {r}");
        }
    }
    let ev = j["network"]["events"].as_array().unwrap();
    assert!(ev.iter().all(|e| e["decision"] != "allow"), "{ev:#?}");
    assert!(ev.iter().any(|e| e["host"] == "sub.wild.test" && e["reason"].as_str().unwrap().contains("loopback")), "{ev:#?}");
    assert!(ev.iter().any(|e| e["host"] == "meta.wild.test" && e["reason"].as_str().unwrap().contains("metadata")), "{ev:#?}");
    let vio: Vec<&str> = j["violations"].as_array().unwrap().iter().filter(|x| x["kind"] == "network").map(|x| x["detail"].as_str().unwrap()).collect();
    assert!(vio.len() >= denied.len() - 1, "every refusal is reported: {vio:#?}");
    // Controls: with the address listed exactly, its other spelling and a
    // wildcard name that resolves to it are allowed.
    let listed = format!(r#"{{"network":{{"allowedDomains":["*.wild.test:{p}","127.0.0.1:{p}"]}}}}"#);
    let (v, _) = run(&t, &listed, &["sub.wild.test=127.0.0.1"], &[connect_get(&format!("0x7f.1:{p}"), "/ok-ip"), connect_get(&w("sub.wild.test"), "/ok-wild")]);
    let heads = s.heads();
    assert!(heads.iter().any(|h| h.contains("/ok-ip")) && heads.iter().any(|h| h.contains("/ok-wild")), "{heads:?} {v}");
}

#[test]
fn direct_connections_udp_and_dns_bypass_nothing() {
    let _g = shared();
    let t = T::new();
    let s = Server::start();
    let p = s.port;
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let ua = udp.local_addr().unwrap();
    let policy = format!(r#"{{"network":{{"allowedDomains":["web.test:{p}"]}}}}"#);
    let direct = format!("connect-tcp:127.0.0.1:{p}");
    let raw_http = exch(&format!("127.0.0.1:{p}"), "GET /direct HTTP/1.1\r\nHost: x\r\n\r\n".to_string().as_bytes());
    let udp_probe = format!("udp-send:{ua}");
    let probes = vec![direct.clone(), raw_http.clone(), udp_probe.clone(), "resolve:example.com".to_string(), "resolve:web.test".to_string(), "udp-send:8.8.8.8:53".to_string()];
    let (v, _) = run(&t, &policy, &["web.test=127.0.0.1"], &probes);
    assert_ne!(v[&direct], 0, "direct TCP connect succeeded: {v}");
    assert!(v[&raw_http]["errno"] != 0 || !v[&raw_http]["reply"].as_str().unwrap_or("").contains(&s.marker), "{v}");
    assert!(v["resolve:example.com"]["ok"].is_null(), "DNS works inside: {v}");
    assert!(v["resolve:web.test"]["ok"].is_null(), "the proxy's name map leaked into the sandbox: {v}");
    assert_ne!(v["udp-send:8.8.8.8:53"], 0, "UDP to the internet was accepted: {v}");
    std::thread::sleep(Duration::from_millis(100));
    let mut b = [0u8; 64];
    assert!(udp.recv_from(&mut b).is_err(), "the host UDP socket received a datagram from the sandbox");
    assert!(s.heads().is_empty(), "{:?}", s.heads());
}

#[test]
fn no_network_without_allowed_domains() {
    let _g = shared();
    let t = T::new();
    let o = t.sc().sh("echo ${HTTP_PROXY:-none}").run();
    o.assert_ok();
    assert_eq!(o.out().trim(), "none");
    assert_eq!(o.j()["network"]["mode"], "none");
    let v = t.probe(&["connect-tcp:127.0.0.1:3128"]);
    assert_ne!(v["connect-tcp:127.0.0.1:3128"], 0, "{v}");
}

#[test]
fn proxy_and_listeners_end_with_the_call() {
    let _g = shared();
    let t = T::new();
    let s = Server::start();
    let p = s.port;
    let policy = format!(r#"{{"network":{{"allowedDomains":["web.test:{p}"]}}}}"#);
    // A background process keeps a tunnel open; the call ends anyway, with
    // the connection cut and recorded.
    let script = format!("{} __probe {} >/dev/null & sleep 0.5; exit 0", sc_bin(), connect_get(&format!("web.test:{p}"), "/bg"));
    let t0 = std::time::Instant::now();
    let o = t.sc().policy(&policy).opt("--net-resolve").opt("web.test=127.0.0.1").sh(&script).run();
    o.assert_ok();
    assert!(t0.elapsed() < Duration::from_secs(8), "the call waited for the tunnel");
    assert_eq!(o.j()["network"]["servedBy"], "launcher");
}

#[test]
fn bad_network_policy_is_a_clear_error() {
    let _g = shared();
    let t = T::new();
    for (pol, needle) in [
        (r#"{"network":{"allowedDomains":["*.com"]}}"#, "allowedDomains"),
        (r#"{"network":{"allowedDomains":["https://example.com"]}}"#, "not a URL"),
        (r#"{"network":{"allowedDomains":["*"]}}"#, "only allowed in deniedDomains"),
        (r#"{"network":{"allowedDomains":["example.com:0"]}}"#, "port"),
        (r#"{"network":{"deniedDomains":["a.com"],"deniedDomainReasons":{"b.com":"x"}}}"#, "deniedDomainReasons"),
        (r#"{"network":{"allowedDomain":["a.com"]}}"#, "allowedDomain"),
        // Sockets in secret or sharkcage-state directories (the gateway's attach socket).
        (r#"{"network":{"allowUnixSockets":["~/.ssh/agent.sock"]}}"#, "mandatory read-deny"),
        (r#"{"network":{"allowUnixSockets":["~/.local/state/sharkcage/run/proxy-1.sock"]}}"#, "mandatory read-deny"),
    ] {
        let o = t.sc().policy(pol).sh("true").run();
        assert_eq!(o.code, 2, "{pol}: {}", o.all());
        assert!(o.err().contains(needle), "{pol}: {}", o.err());
    }
    let o = t.sc().opt("--net-resolve").opt("not-an-entry").sh("true").run();
    assert_eq!(o.code, 2, "{}", o.all());
}

#[test]
fn ssh_goes_through_the_proxy_via_git_ssh_command() {
    let _g = shared();
    let t = T::new();
    let s = Server::start();
    let p = s.port;
    // Without an ssh destination there is no GIT_SSH_COMMAND.
    let o = t.sc().policy(&format!(r#"{{"network":{{"allowedDomains":["web.test:{p}"]}}}}"#)).sh("echo ${GIT_SSH_COMMAND:-unset}").run();
    o.assert_ok();
    assert_eq!(o.out().trim(), "unset");
    // With one, ssh's ProxyCommand is this launcher's CONNECT helper; drive
    // it the way ssh would (stdin/stdout) against the test server.
    let policy = format!(r#"{{"network":{{"allowedDomains":["git.test:22","web.test:{p}"]}}}}"#);
    let script = format!(
        "echo \"$GIT_SSH_COMMAND\"; cmd=$(echo \"$GIT_SSH_COMMAND\" | sed -e \"s/.*ProxyCommand='//\" -e \"s/'$//\" -e 's/%h/web.test/' -e 's/%p/{p}/'); printf 'GET /over-ssh-helper HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | $cmd; cmd2=$(echo \"$GIT_SSH_COMMAND\" | sed -e \"s/.*ProxyCommand='//\" -e \"s/'$//\" -e 's/%h/evil.test/' -e 's/%p/22/'); echo x | $cmd2 || echo helper-refused"
    );
    let o = t.sc().policy(&policy).opt("--net-resolve").opt("web.test=127.0.0.1").opt("--net-resolve").opt("evil.test=127.0.0.1").sh(&script).run();
    o.assert_ok();
    assert!(o.out().contains("ssh -o ProxyCommand="), "{}", o.all());
    assert!(o.out().contains(&s.marker), "{}", o.all());
    assert!(o.out().contains("helper-refused"), "{}", o.all());
    assert_eq!(s.heads().len(), 1, "{:?}", s.heads());
    assert!(s.heads()[0].starts_with("GET /over-ssh-helper"));
}
