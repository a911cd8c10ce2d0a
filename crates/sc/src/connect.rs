//! `sc __connect HOST PORT`: ssh's ProxyCommand inside a sandbox.
//!
//! `GIT_SSH_COMMAND` (set by the launcher when a `host:22` destination is
//! allowed) makes ssh run this: it asks the sandbox's proxy at
//! `127.0.0.1:3128` for a CONNECT tunnel to HOST:PORT and relays its stdin
//! and stdout through it. The proxy decides, as for any other connection;
//! this helper is only a client, run by ssh, with no rights of its own.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

pub fn run(host: &str, port: u16) -> i32 {
    let fail = |m: String| {
        eprintln!("sc __connect: {m}");
        1
    };
    if host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return fail(format!("bad host {host:?}"));
    }
    let target = if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut s = match TcpStream::connect(("127.0.0.1", sharkcage::proxy::HTTP_PORT)) {
        Ok(s) => s,
        Err(e) => return fail(format!("the sandbox's proxy is not reachable: {e}")),
    };
    if let Err(e) = s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes()) {
        return fail(e.to_string());
    }
    // The response head, byte by byte (nothing after it may be consumed).
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) if head.len() < 16 * 1024 => head.push(b[0]),
            _ => return fail("the proxy closed the connection".into()),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or("");
    if status.split(' ').nth(1) != Some("200") {
        return fail(format!("{target}: {status}"));
    }
    let mut up = match s.try_clone() {
        Ok(u) => u,
        Err(e) => return fail(e.to_string()),
    };
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut up);
        let _ = up.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut s, &mut std::io::stdout().lock());
    drop(t);
    0
}
