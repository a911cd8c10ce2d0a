//! Moving bytes between the sandbox side and the upstream connection, with
//! byte counts and idle/total time limits.
//!
//! [`Counted`] wraps the upstream stream: every read is a byte "down" (to the
//! sandbox), every write a byte "up", and each one refreshes the activity
//! stamp the idle watchdog reads. The counters live in an `Arc`, so a
//! connection cut by a timeout or by the end of its sandbox still reports
//! what it moved.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes moved and the last activity (milliseconds since `start`).
#[derive(Debug)]
pub struct Counters {
    pub up: AtomicU64,
    pub down: AtomicU64,
    last_ms: AtomicU64,
    start: Instant,
}

impl Counters {
    pub fn new() -> Arc<Counters> {
        Arc::new(Counters { up: AtomicU64::new(0), down: AtomicU64::new(0), last_ms: AtomicU64::new(0), start: Instant::now() })
    }
    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
    pub fn up(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }
    pub fn down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }
}

/// An upstream stream that counts what passes through it.
pub struct Counted<S> {
    inner: S,
    c: Arc<Counters>,
}

impl<S> Counted<S> {
    pub fn new(inner: S, c: Arc<Counters>) -> Self {
        Counted { inner, c }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let n = (buf.filled().len() - before) as u64;
            self.c.down.fetch_add(n, Ordering::Relaxed);
            self.c.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.c.up.fetch_add(n as u64, Ordering::Relaxed);
            self.c.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    Closed,
    Idle,
    Total,
    Stopped,
    Error,
}

impl RelayEnd {
    pub fn describe(self) -> &'static str {
        match self {
            RelayEnd::Closed => "closed",
            RelayEnd::Idle => "idle timeout",
            RelayEnd::Total => "connection time limit",
            RelayEnd::Stopped => "sandbox ended",
            RelayEnd::Error => "connection error",
        }
    }
}

/// Resolves when the connection has been idle for `idle`, or `total` passed.
pub async fn watchdog(c: &Counters, idle: Duration, total: Duration) -> RelayEnd {
    let started = Instant::now();
    loop {
        let idle_for = c.idle_for();
        if idle_for >= idle {
            return RelayEnd::Idle;
        }
        let left_total = total.saturating_sub(started.elapsed());
        if left_total.is_zero() {
            return RelayEnd::Total;
        }
        tokio::time::sleep((idle - idle_for).min(left_total) + Duration::from_millis(5)).await;
    }
}

/// Copy both ways until both sides close, a limit fires, or `stop` resolves.
pub async fn relay<A, B>(mut client: A, mut upstream: Counted<B>, idle: Duration, total: Duration, stop: impl std::future::Future<Output = ()>) -> RelayEnd
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let c = upstream.c.clone();
    c.touch();
    tokio::select! {
        r = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, 64 * 1024, 64 * 1024) => match r {
            Ok(_) => RelayEnd::Closed,
            Err(_) => RelayEnd::Error,
        },
        end = watchdog(&c, idle, total) => end,
        _ = stop => RelayEnd::Stopped,
    }
}

/// One direction of a TCP-to-TCP relay with `splice(2)` through a pipe:
/// the bytes never enter this process's memory. Ends at EOF (then the
/// destination's write side is shut down) or on an error.
async fn splice_one(src: &tokio::net::TcpStream, dst: &tokio::net::TcpStream, counter: &AtomicU64, c: &Counters) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;
    let mut p = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into the array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the pipe's descriptors are ours from here on.
    let (pr, pw) = unsafe { (<std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(p[0]), <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(p[1])) };
    const CHUNK: usize = 1 << 20;
    // A bigger pipe moves more per system call (best effort: the default
    // limit for unprivileged processes is 1 MiB).
    // SAFETY: fcntl on our own pipe descriptor.
    unsafe { libc::fcntl(pw.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    let splice = |from: i32, to: i32, len: usize| -> std::io::Result<usize> {
        // SAFETY: splice between descriptors we hold, no offsets.
        let n = unsafe { libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, flags) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    };
    loop {
        src.readable().await?;
        let n = match src.try_io(Interest::READABLE, || splice(src.as_raw_fd(), pw.as_raw_fd(), CHUNK)) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            // EOF: pass the half-close on.
            // SAFETY: shutdown of a socket we hold.
            unsafe { libc::shutdown(dst.as_raw_fd(), libc::SHUT_WR) };
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || splice(pr.as_raw_fd(), dst.as_raw_fd(), left)) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
        c.touch();
    }
}

/// [`relay`] for two TCP sockets, zero-copy (`splice`); `early` is what the
/// client sent before the relay began (already read by a protocol parser).
pub async fn relay_tcp(client: tokio::net::TcpStream, early: &[u8], upstream: tokio::net::TcpStream, c: Arc<Counters>, idle: Duration, total: Duration, stop: impl std::future::Future<Output = ()>) -> RelayEnd {
    use tokio::io::AsyncWriteExt;
    c.touch();
    let mut upstream = upstream;
    if !early.is_empty() {
        if upstream.write_all(early).await.is_err() {
            return RelayEnd::Error;
        }
        c.up.fetch_add(early.len() as u64, Ordering::Relaxed);
    }
    let both = async {
        let (a, b) = tokio::join!(splice_one(&client, &upstream, &c.up, &c), splice_one(&upstream, &client, &c.down, &c));
        if a.is_ok() && b.is_ok() {
            RelayEnd::Closed
        } else {
            RelayEnd::Error
        }
    };
    tokio::select! {
        e = both => e,
        end = watchdog(&c, idle, total) => end,
        _ = stop => RelayEnd::Stopped,
    }
}
