//! Raw request-head checks that hyper's normalisation would hide.
//!
//! hyper follows RFC 9112 leniently for a server: with both
//! `Transfer-Encoding` and `Content-Length` it drops the length, and it folds
//! repeated identical `Content-Length` lines into one. That is safe for hyper
//! itself, but a proxy in front of other servers should refuse such
//! ambiguous messages outright, as request smuggling rests on exactly them.
//! So the client's bytes pass through [`Sniffed`] on their way into hyper,
//! and [`Framing`] parses every request head again with `httparse`, on the
//! raw bytes, and follows the message framing (fixed length or chunked) to
//! find the next head. The HTTP handler asks for the verdict on request *k*
//! before deciding anything; bytes reach hyper only after the sniffer has
//! seen them, so the verdict is always there first.
//!
//! Refused here: repeated `Content-Length` (even equal), `Content-Length`
//! with `Transfer-Encoding`, `Transfer-Encoding` other than exactly one
//! `chunked`, a `Content-Length` that is not plain digits, repeated `Host`,
//! and any framing this parser cannot follow (then every later request on
//! the connection is refused too).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    /// After CONNECT: raw tunnel bytes follow.
    Tunnel,
    /// A head was refused or the framing was lost.
    Poisoned,
}

/// Follows the request stream of one connection.
#[derive(Debug)]
pub struct Framing {
    state: State,
    buf: Vec<u8>,
    /// Verdict per request head, in order (`None` = fine).
    verdicts: Vec<Option<&'static str>>,
    max_head: usize,
}

impl Framing {
    pub fn new(max_head: usize) -> Framing {
        Framing { state: State::Head, buf: Vec::new(), verdicts: Vec::new(), max_head }
    }

    /// The verdict on request `k` (0-based): `Err(reason)` to refuse it.
    pub fn verdict(&self, k: usize) -> Result<(), &'static str> {
        match self.verdicts.get(k) {
            Some(None) => Ok(()),
            Some(Some(why)) => Err(why),
            None if self.state == State::Poisoned => Err("the message framing of an earlier request could not be followed"),
            None => Err("request head was not seen by the framing check"),
        }
    }

    fn poison(&mut self, why: &'static str) {
        self.verdicts.push(Some(why));
        self.state = State::Poisoned;
        self.buf = Vec::new();
    }

    /// Feed bytes the client sent, in order.
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.state, State::Tunnel | State::Poisoned) {
            return;
        }
        self.buf.extend_from_slice(data);
        loop {
            let progressed = match self.state {
                State::Head => self.head(),
                State::Body(n) => {
                    let take = (n as usize).min(self.buf.len());
                    self.buf.drain(..take);
                    let left = n - take as u64;
                    self.state = if left == 0 { State::Head } else { State::Body(left) };
                    take > 0 || left == 0
                }
                State::ChunkSize => match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.drain(..used);
                        self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                        true
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() > 4096 => {
                        self.poison("chunk size line too long");
                        false
                    }
                    Ok(httparse::Status::Partial) => false,
                    Err(_) => {
                        self.poison("malformed chunk size");
                        false
                    }
                },
                State::ChunkData(n) => {
                    let take = (n.min(usize::MAX as u64) as usize).min(self.buf.len());
                    self.buf.drain(..take);
                    let left = n - take as u64;
                    self.state = if left == 0 { State::ChunkEnd } else { State::ChunkData(left) };
                    take > 0 || left == 0
                }
                State::ChunkEnd => {
                    if self.buf.len() < 2 {
                        false
                    } else if &self.buf[..2] == b"\r\n" {
                        self.buf.drain(..2);
                        self.state = State::ChunkSize;
                        true
                    } else {
                        self.poison("chunk data not followed by CRLF");
                        false
                    }
                }
                State::Trailers => match self.buf.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        self.buf.drain(..2);
                        self.state = State::Head;
                        true
                    }
                    Some(i) => {
                        self.buf.drain(..i + 2);
                        true
                    }
                    None if self.buf.len() > self.max_head => {
                        self.poison("trailer section too long");
                        false
                    }
                    None => false,
                },
                State::Tunnel | State::Poisoned => false,
            };
            if !progressed {
                break;
            }
        }
    }

    fn head(&mut self) -> bool {
        let buf = std::mem::take(&mut self.buf);
        let r = self.check_head(&buf);
        self.buf = buf;
        let Some((used, connect, chunked, len)) = r else { return false };
        self.verdicts.push(None);
        self.buf.drain(..used);
        self.state = if connect {
            self.buf = Vec::new();
            State::Tunnel
        } else if chunked {
            State::ChunkSize
        } else if len > 0 {
            State::Body(len)
        } else {
            State::Head
        };
        true
    }

    /// Parse and judge one head: `(bytes, CONNECT, chunked, length)`, or
    /// None when it is incomplete or refused (then poisoned).
    fn check_head(&mut self, buf: &[u8]) -> Option<(usize, bool, bool, u64)> {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        let used = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if buf.len() > self.max_head {
                    self.poison("request head too large");
                }
                return None;
            }
            Err(_) => {
                self.poison("malformed request head");
                return None;
            }
        };
        if used > self.max_head {
            self.poison("request head too large");
            return None;
        }
        let (mut cl, mut te, mut host) = (Vec::new(), Vec::new(), 0);
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                cl.push(h.value);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te.push(h.value);
            } else if h.name.eq_ignore_ascii_case("host") {
                host += 1;
            }
        }
        let connect = req.method == Some("CONNECT");
        let http10 = req.version == Some(0);
        let verdict = if cl.len() > 1 {
            Some("more than one Content-Length")
        } else if !cl.is_empty() && !te.is_empty() {
            Some("both Content-Length and Transfer-Encoding")
        } else if !te.is_empty() && http10 {
            Some("Transfer-Encoding on HTTP/1.0")
        } else if te.len() > 1 || te.first().is_some_and(|v| !v.eq_ignore_ascii_case(b"chunked")) {
            Some("Transfer-Encoding other than exactly \"chunked\"")
        } else if cl.first().is_some_and(|v| v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit)) {
            Some("Content-Length is not a plain number")
        } else if host > 1 {
            Some("more than one Host header")
        } else {
            None
        };
        if let Some(why) = verdict {
            self.poison(why);
            return None;
        }
        let len: u64 = cl.first().map(|v| std::str::from_utf8(v).unwrap_or("0").parse().unwrap_or(0)).unwrap_or(0);
        Some((used, connect, !te.is_empty(), len))
    }
}

/// The client stream, with every byte read also fed to a [`Framing`].
pub struct Sniffed<S> {
    inner: S,
    framing: Arc<Mutex<Framing>>,
}

impl<S> Sniffed<S> {
    pub fn new(inner: S, framing: Arc<Mutex<Framing>>) -> Self {
        Sniffed { inner, framing }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniffed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                self.framing.lock().unwrap_or_else(|e| e.into_inner()).feed(new);
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniffed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Framing {
        let mut f = Framing::new(8192);
        for c in chunks {
            f.feed(c);
        }
        f
    }

    #[test]
    fn follows_keep_alive_and_chunked_bodies_in_any_split() {
        let stream: &[u8] = b"POST http://a.com/ HTTP/1.1\r\nHost: a.com\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\nPOST http://a.com/ HTTP/1.1\r\nHost: a.com\r\nContent-Length: 3\r\n\r\nabcGET http://a.com/ HTTP/1.1\r\nHost: a.com\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
        for split in 0..stream.len() {
            let f = run(&[&stream[..split], &stream[split..]]);
            assert_eq!(f.verdict(0), Ok(()), "split {split}");
            assert_eq!(f.verdict(1), Ok(()), "split {split}");
            assert_eq!(f.verdict(2), Err("more than one Content-Length"), "split {split}");
            assert!(f.verdict(3).is_err());
        }
        // Byte by byte.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes).verdict(1), Ok(()));
    }

    #[test]
    fn ambiguous_shapes() {
        for (req, why) in [
            (&b"POST http://a.com/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..], "both"),
            (b"POST http://a.com/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", "exactly"),
            (b"POST http://a.com/ HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", "plain"),
            (b"GET http://a.com/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host"),
            (b"POST http://a.com/ HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "1.0"),
        ] {
            let e = run(&[req]).verdict(0).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        // A smuggled second request inside a bad chunk poisons the rest.
        let f = run(&[b"POST http://a.com/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\nGET http://b.com/ HTTP/1.1\r\nHost: b\r\n\r\n"]);
        assert_eq!(f.verdict(0), Ok(()));
        assert!(f.verdict(1).is_err());
    }
}
