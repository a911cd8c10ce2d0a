//! Who serves a sandbox's proxy listeners for the length of one call.
//!
//! * **gateway** — the call was started by the OpenClaw addon with an attach
//!   socket and ticket: the listeners go to the gateway's proxy
//!   (`proxy::attach`), which serves every sandbox of the gateway on one
//!   runtime and applies policy changes to new connections.
//! * **embedded** — standalone `sc exec`: a Tokio runtime in this launcher
//!   serves them. It is started only here, after the sandbox was cloned:
//!   the launcher is single-threaded until the clone and never forks after.
//!
//! If the gateway cannot be reached, the call falls back to the embedded
//! proxy with the same rules and says so in its violations.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::plan::NetPlan;
use super::Violation;
use crate::proxy::{attach, Labels, NetEvent, NetLimits, Protocol, Proxy, SandboxNet};

pub enum ProxySession {
    Embedded { rt: tokio::runtime::Runtime, sb: Arc<SandboxNet> },
    Gateway(attach::Attached),
}

/// What the session reports when the call ends.
#[derive(Debug, Default, Clone)]
pub struct NetOutcome {
    pub served_by: &'static str,
    pub sandbox: String,
    pub events: Vec<NetEvent>,
    pub dropped: usize,
    pub notes: Vec<Violation>,
}

impl ProxySession {
    /// Take ownership of the two listeners and start serving them.
    pub fn start(np: &NetPlan, http: RawFd, socks: RawFd, notes: &mut Vec<Violation>) -> std::io::Result<ProxySession> {
        if let Some((path, ticket)) = &np.attach {
            match attach::attach(path, ticket, http, socks) {
                Ok(a) => {
                    // The gateway has its own copies now.
                    close(http);
                    close(socks);
                    return Ok(ProxySession::Gateway(a));
                }
                Err(e) => notes.push(Violation::note("network", format!("{e}; this call's proxy runs in the launcher instead (same rules; policy changes will not reach it)"))),
            }
        }
        raise_nofile();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("sc-proxy").enable_all().build()?;
        let proxy = Proxy::new(Arc::new(np.resolve.clone()));
        let sb = proxy.sandbox(Labels::default(), np.rules.clone(), None, NetLimits::default());
        // SAFETY: the launcher received these descriptors and owns them.
        let (h, s) = unsafe { (std::net::TcpListener::from(OwnedFd::from_raw_fd(http)), std::net::TcpListener::from(OwnedFd::from_raw_fd(socks))) };
        {
            let _g = rt.enter();
            proxy.serve(&sb, h, Protocol::Http)?;
            proxy.serve(&sb, s, Protocol::Socks5)?;
        }
        Ok(ProxySession::Embedded { rt, sb })
    }

    /// The call is over (every sandbox process is dead): stop serving and
    /// collect the events.
    pub fn finish(self) -> NetOutcome {
        match self {
            ProxySession::Embedded { rt, sb } => {
                let (events, dropped) = rt.block_on(sb.finish(Duration::from_millis(100)));
                rt.shutdown_timeout(Duration::from_millis(100));
                NetOutcome { served_by: "launcher", sandbox: sb.id.clone(), events, dropped, notes: vec![] }
            }
            ProxySession::Gateway(a) => {
                let sandbox = a.sandbox.clone();
                match a.finish() {
                    Ok((events, dropped)) => NetOutcome { served_by: "gateway", sandbox, events, dropped, notes: vec![] },
                    Err(e) => NetOutcome {
                        served_by: "gateway",
                        sandbox,
                        notes: vec![Violation::note("network", format!("the gateway's proxy did not return this call's network events: {e}"))],
                        ..Default::default()
                    },
                }
            }
        }
    }
}

fn close(fd: RawFd) {
    // SAFETY: closing a descriptor this launcher owns.
    unsafe { libc::close(fd) };
}

/// Every proxied connection holds two descriptors in the launcher.
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on a stack struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}
