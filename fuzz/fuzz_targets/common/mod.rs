//! Shared fixture for the targets that drive the real proxy
//! (`Proxy::serve_connection`) over an in-memory `tokio::io::duplex` stream.
//!
//! Nothing here may open a real socket:
//! * the resolver always fails, so an allowed *name* stops at resolution;
//! * the rules contain names only (no IP entry in `allowedDomains`), so an
//!   IP target is denied by the rules before any connect;
//! * the runtime is built WITHOUT the I/O driver (`enable_time` only), so if
//!   a code path ever reached `TcpStream::connect` anyway, tokio would panic
//!   ("IO is disabled") and the fuzzer would report it as a crash.
//!
//! The README also recommends running the fuzzer inside an empty network
//! namespace (`unshare -n`) as a belt-and-braces measure.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sharkcage::proxy::resolve::{ResolveFuture, Resolver};
use sharkcage::proxy::rules::NetRules;
use sharkcage::proxy::{Decision, Labels, NetLimits, Protocol, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A resolver that never resolves anything.
struct FailingResolver;

impl Resolver for FailingResolver {
    fn resolve<'a>(&'a self, _name: &'a str, _port: u16) -> ResolveFuture<'a> {
        Box::pin(async { Err(io::Error::new(io::ErrorKind::NotFound, "fuzz: resolution disabled")) })
    }
}

pub struct Fixture {
    pub rt: tokio::runtime::Runtime,
    pub proxy: Proxy,
    pub rules: NetRules,
    pub limits: NetLimits,
}

/// Whole-connection budget for one input (wall clock).
pub const CONN_TIMEOUT: Duration = Duration::from_millis(200);
/// hyper's header read timeout / the SOCKS5 handshake timeout.
pub const HEADER_TIMEOUT: Duration = Duration::from_millis(100);

/// Inputs whose connection did not finish within `CONN_TIMEOUT`.
pub static TIMEOUTS: AtomicU64 = AtomicU64::new(0);

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let proxy = Proxy::new(Arc::new(FailingResolver));
        // Names only in allowedDomains (see the module comment). The brief's
        // "10.0.0.1:8080" allow entry would make `http://10.0.0.1:8080/` and
        // SOCKS5 CONNECT 10.0.0.1:8080 reach `TcpStream::connect`, so it is
        // not used; IP handling is exercised through the deny list instead
        // (IP deny entries never lead to a connect).
        let rules = NetRules::compile(
            &["fuzz.test".into(), "*.example.com".into(), "localhost:8080".into(), "api.example.org:8443".into()],
            &["evil.example.com".into(), "10.0.0.1".into(), "[::1]:8080".into(), "*:25".into()],
            &Default::default(),
        )
        .expect("fuzz rules compile");
        let limits = NetLimits { header_timeout: HEADER_TIMEOUT, connect_timeout: HEADER_TIMEOUT, ..Default::default() };
        Fixture { rt, proxy, rules, limits }
    })
}

/// Run `data` as the client side of one proxy connection: write it, shut
/// down the write side, read the answer to EOF. Returns the answer bytes.
pub fn run_connection(data: &[u8], proto: Protocol) -> Vec<u8> {
    let f = fixture();
    f.rt.block_on(async {
        let sb = f.proxy.sandbox(Labels::default(), f.rules.clone(), None, f.limits.clone());
        let (client, server) = tokio::io::duplex(64 * 1024);
        let proxy = f.proxy.clone();
        let sb2 = sb.clone();
        let mut server_task = tokio::spawn(async move { proxy.serve_connection(&sb2, server, proto).await });
        let (mut rd, mut wr) = tokio::io::split(client);
        let mut answer = Vec::new();
        let client_side = async {
            let write = async {
                // The server may close early (refusal, parse error): a broken
                // pipe here is expected.
                let _ = wr.write_all(data).await;
                let _ = wr.shutdown().await;
            };
            let read = async {
                let mut buf = [0u8; 4096];
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if answer.len() < 1 << 20 {
                                answer.extend_from_slice(&buf[..n]);
                            }
                        }
                    }
                }
            };
            tokio::join!(write, read);
            (&mut server_task).await
        };
        match tokio::time::timeout(CONN_TIMEOUT, client_side).await {
            Ok(Ok(())) => {}
            // A panic inside the spawned task: re-raise it (the libfuzzer
            // panic hook has normally aborted already).
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("server task failed: {e}"),
            Err(_) => {
                server_task.abort();
                let _ = server_task.await;
                let n = TIMEOUTS.fetch_add(1, Ordering::Relaxed) + 1;
                if std::env::var_os("FUZZ_HANG_IS_CRASH").is_some() {
                    panic!("connection did not finish within {CONN_TIMEOUT:?} (input {:?})", String::from_utf8_lossy(data));
                }
                if n.is_power_of_two() {
                    eprintln!("note: {n} input(s) hit the {CONN_TIMEOUT:?} connection timeout; latest: {:?}", String::from_utf8_lossy(&data[..data.len().min(200)]));
                }
            }
        }
        // Oracle: nothing can resolve and no IP is allowed, so no connection
        // may ever be recorded as allowed.
        let (events, _) = sb.take_events();
        if std::env::var_os("FUZZ_PRINT").is_some() {
            // Debugging aid: `FUZZ_PRINT=1 cargo fuzz run TARGET FILE`.
            eprintln!("answer: {:?}", String::from_utf8_lossy(&answer));
            for e in &events {
                eprintln!("event: {}", e.summary());
            }
        }
        for e in &events {
            assert!(e.decision != Decision::Allow, "an event was allowed although nothing can resolve: {e:?}");
        }
        answer
    })
}
