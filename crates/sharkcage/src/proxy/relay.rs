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
