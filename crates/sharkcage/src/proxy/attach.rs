//! Handing a sandbox's listeners to the gateway's proxy.
//!
//! Under OpenClaw the proxy runs on the addon's Tokio runtime, in the
//! gateway process, for every sandbox at once. The launcher (a separate,
//! single-threaded process) receives the sandbox's two listening sockets
//! from PID 1 and passes them to the gateway over a unix socket in the
//! private state directory (mode 0600 in a 0700 directory, which every
//! sandbox has hidden; the gateway also checks the peer's uid):
//!
//! ```text
//! launcher → gateway   {"ticket":"<hex>"}\n   + SCM_RIGHTS [http, socks]
//! gateway  → launcher  {"ok":true,"sandbox":"sb-…"}\n  | {"ok":false,"error":"…"}\n
//!   … the command runs; the gateway serves both listeners …
//! launcher → gateway   {"done":true}\n          (or the connection closes)
//! gateway  → launcher  {"events":[…],"dropped":N}\n
//! ```
//!
//! The ticket is a one-time random value the gateway issued when it built
//! the launcher's command line (`register`); it binds the listeners to the
//! policy and labels the gateway recorded for that call. It is not an
//! identity for connections: those are identified by the listener they
//! arrive on, which only that sandbox can reach.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::rules::NetRules;
use super::{Labels, NetLimits, Protocol, Proxy};

/// Tickets not used within this time are forgotten.
const TICKET_TTL: Duration = Duration::from_secs(600);

// ---- launcher side (blocking) ------------------------------------------------

/// The launcher's open attachment; dropping it ends the sandbox's network.
pub struct Attached {
    stream: StdUnixStream,
    pub sandbox: String,
}

/// Pass the listeners to the gateway at `path` under `ticket`.
pub fn attach(path: &Path, ticket: &str, http: RawFd, socks: RawFd) -> io::Result<Attached> {
    let stream = StdUnixStream::connect(path).map_err(|e| io::Error::new(e.kind(), format!("cannot reach the gateway's proxy at {}: {e}", path.display())))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let line = format!("{}\n", serde_json::json!({ "ticket": ticket }));
    let iov = [io::IoSlice::new(line.as_bytes())];
    let fds = [http, socks];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let n = sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map_err(io::Error::from)?;
    if n != line.len() {
        (&stream).write_all(&line.as_bytes()[n..])?;
    }
    let mut r = BufReader::new(&stream);
    let mut reply = String::new();
    r.read_line(&mut reply)?;
    let v: serde_json::Value = serde_json::from_str(&reply).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the gateway's proxy gave no answer"))?;
    if v["ok"] != true {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("the gateway's proxy refused the sandbox: {}", v["error"].as_str().unwrap_or("?"))));
    }
    Ok(Attached { sandbox: v["sandbox"].as_str().unwrap_or_default().to_string(), stream })
}

impl Attached {
    /// End the sandbox's network and collect its events.
    pub fn finish(self) -> io::Result<(Vec<super::NetEvent>, usize)> {
        (&self.stream).write_all(b"{\"done\":true}\n")?;
        let mut r = BufReader::new(&self.stream);
        let mut reply = String::new();
        r.read_line(&mut reply)?;
        #[derive(Deserialize)]
        struct Done {
            events: Vec<super::NetEvent>,
            dropped: usize,
        }
        let d: Done = serde_json::from_str(&reply).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok((d.events, d.dropped))
    }
}

// ---- gateway side (async) ----------------------------------------------------

struct Pending {
    labels: Labels,
    rules: NetRules,
    scope: Option<String>,
    limits: NetLimits,
    at: Instant,
}

/// The gateway's end: a unix listener that adopts sandboxes' listeners.
pub struct Gateway {
    proxy: Proxy,
    path: PathBuf,
    pending: Mutex<HashMap<String, Pending>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hello {
    ticket: String,
}

impl Gateway {
    /// Listen at `path` (replacing a stale socket) on the current runtime.
    pub fn start(proxy: Proxy, path: PathBuf) -> io::Result<Arc<Gateway>> {
        if let Some(dir) = path.parent() {
            crate::fileio::ensure_private_dir(dir)?;
        }
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let gw = Arc::new(Gateway { proxy, path, pending: Mutex::new(HashMap::new()) });
        let g = gw.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let g = g.clone();
                tokio::spawn(async move {
                    let _ = g.adopt(s).await;
                });
            }
        });
        Ok(gw)
    }

    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// Record what a coming sandbox may do; returns its one-time ticket.
    pub fn register(&self, labels: Labels, rules: NetRules, scope: Option<String>, limits: NetLimits) -> io::Result<String> {
        let mut b = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).map_err(|_| io::Error::other("no randomness for the ticket"))?;
        let ticket = crate::audit::record::hex(&b);
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.retain(|_, v| v.at.elapsed() < TICKET_TTL);
        p.insert(ticket.clone(), Pending { labels, rules, scope, limits, at: Instant::now() });
        Ok(ticket)
    }

    async fn adopt(&self, s: tokio::net::UnixStream) -> io::Result<()> {
        // Only our own user (or root) may hand us sandboxes.
        let cred = s.peer_cred()?;
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        if cred.uid() != me && cred.uid() != 0 {
            return Ok(());
        }
        let (line, fds) = recv_hello(&s).await?;
        let mut w = s;
        let reply = |ok: bool, v: serde_json::Value| -> String {
            let mut o = v;
            o["ok"] = ok.into();
            format!("{o}\n")
        };
        let hello: Result<Hello, _> = serde_json::from_str(line.trim_end());
        let pending = hello.ok().and_then(|h| {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.remove(&h.ticket).filter(|v| v.at.elapsed() < TICKET_TTL)
        });
        let mut fds = fds.into_iter();
        let (Some(pending), Some(http), Some(socks)) = (pending, fds.next(), fds.next()) else {
            w.write_all(reply(false, serde_json::json!({"error": "unknown or expired ticket, or listeners missing"})).as_bytes()).await?;
            return Ok(());
        };
        let sb = self.proxy.sandbox(pending.labels, pending.rules, pending.scope.as_deref(), pending.limits);
        let served = self
            .proxy
            .serve(&sb, std::net::TcpListener::from(http), Protocol::Http)
            .and_then(|_| self.proxy.serve(&sb, std::net::TcpListener::from(socks), Protocol::Socks5));
        if let Err(e) = served {
            sb.finish(Duration::ZERO).await;
            w.write_all(reply(false, serde_json::json!({"error": e.to_string()})).as_bytes()).await?;
            return Ok(());
        }
        w.write_all(reply(true, serde_json::json!({"sandbox": sb.id})).as_bytes()).await?;
        // Serve until the launcher says done or goes away.
        let (rh, mut w) = w.into_split();
        let mut r = tokio::io::BufReader::new(rh);
        let mut l = String::new();
        let done = r.read_line(&mut l).await.map(|n| n > 0 && l.contains("\"done\"")).unwrap_or(false);
        let (events, dropped) = sb.finish(if done { Duration::from_millis(100) } else { Duration::ZERO }).await;
        if done {
            w.write_all(format!("{}\n", serde_json::json!({"events": events, "dropped": dropped})).as_bytes()).await?;
        }
        Ok(())
    }
}

/// Read the first line and the descriptors sent with it.
async fn recv_hello(s: &tokio::net::UnixStream) -> io::Result<(String, Vec<OwnedFd>)> {
    let mut buf = Vec::new();
    let mut fds = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !buf.contains(&b'\n') {
        if buf.len() > 4096 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "hello too long"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, s.readable()).await.map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        let got = s.try_io(tokio::io::Interest::READABLE, || {
            let mut chunk = [0u8; 1024];
            let mut iov = [io::IoSliceMut::new(&mut chunk)];
            let mut space = nix::cmsg_space!([RawFd; 4]);
            let msg = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).map_err(io::Error::from)?;
            let mut got_fds = Vec::new();
            for c in msg.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::ScmRights(v) = c {
                    // SAFETY: the kernel installed these descriptors for us.
                    got_fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
            let n = msg.bytes;
            Ok((chunk[..n].to_vec(), got_fds))
        });
        match got {
            Ok((bytes, f)) => {
                if bytes.is_empty() && f.is_empty() {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
                }
                buf.extend(bytes);
                fds.extend(f);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((String::from_utf8_lossy(&buf).into_owned(), fds))
}
