//! The connection guard: every request head on a connection is checked before actix's codec
//! reads it. The codec answers a head it cannot take (too large, too many headers, a URI too
//! long, a bad `Content-Length`, malformed, or not arrived in time) with an empty 400, 431 or
//! 408 and closes the connection, which no client can tell apart. The guard finds these
//! heads first and hands actix, in their place, a request for an internal route
//! ([`ConnectionRules::refusal_route`]) that answers problem JSON like every other error; the
//! connection then closes. To find each head it follows the request framing
//! (`Content-Length`, chunked bodies), accepting only framing that actix reads the same way;
//! the bytes pass through unchanged but for an upgrade request, which is served as a plain
//! request ([`Upgrade`]). A body still arriving well after the body timeout ends its
//! connection ([`BODY_GRACE`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::error::{ApiError, EdgeRefusal};
use actix_web::http::StatusCode;

/// Why the guard refused a request head. Answered as problem JSON ([`EdgeRefusal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 431.
    #[error("the request head is larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// 431.
    #[error("the request has more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// 414.
    #[error("the request target is longer than {MAX_URI_BYTES} bytes")]
    UriTooLong,
    /// 400.
    #[error("the request head is not HTTP/1.1")]
    Malformed,
    /// 400.
    #[error("Content-Length must be one header holding one integer from 0 to 2^64-1")]
    BadContentLength,
    /// 400.
    #[error("Transfer-Encoding must be one header saying chunked, without a Content-Length")]
    BadTransferEncoding,
    /// 408.
    #[error("the request head did not arrive in full in time")]
    HeadTimeout,
    /// 400.
    #[error("a request must have exactly one Host header")]
    BadHost,
    /// 405: the service is not a proxy.
    #[error("CONNECT is not served here")]
    Tunnel,
}

impl Refusal {
    const ALL: [Refusal; 9] = [
        Self::HeadTooLarge,
        Self::TooManyHeaders,
        Self::UriTooLong,
        Self::Malformed,
        Self::BadContentLength,
        Self::BadTransferEncoding,
        Self::HeadTimeout,
        Self::BadHost,
        Self::Tunnel,
    ];

    /// Its name in the internal route's path.
    pub fn slug(self) -> &'static str {
        match self {
            Self::HeadTooLarge => "head-too-large",
            Self::TooManyHeaders => "too-many-headers",
            Self::UriTooLong => "uri-too-long",
            Self::Malformed => "malformed",
            Self::BadContentLength => "bad-content-length",
            Self::BadTransferEncoding => "bad-transfer-encoding",
            Self::HeadTimeout => "head-timeout",
            Self::BadHost => "bad-host",
            Self::Tunnel => "tunnel",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.slug() == slug)
    }
}

impl EdgeRefusal for Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::HeadTooLarge | Self::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Tunnel => StatusCode::METHOD_NOT_ALLOWED,
            Self::Malformed
            | Self::BadContentLength
            | Self::BadTransferEncoding
            | Self::BadHost => StatusCode::BAD_REQUEST,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::HeadTooLarge | Self::TooManyHeaders => "header_fields_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::Malformed => "malformed_request",
            Self::BadContentLength => "bad_content_length",
            Self::BadTransferEncoding => "bad_transfer_encoding",
            Self::HeadTimeout => "request_timeout",
            Self::BadHost => "bad_host",
            Self::Tunnel => "method_not_allowed",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::HeadTooLarge | Self::TooManyHeaders => "Request header fields too large",
            Self::UriTooLong => "URI too long",
            Self::HeadTimeout => "Request timeout",
            Self::Tunnel => "Method not allowed",
            Self::Malformed
            | Self::BadContentLength
            | Self::BadTransferEncoding
            | Self::BadHost => "Bad request",
        }
    }
}

/// The most header fields a request may have.
pub const MAX_HEADERS: usize = 64;
/// The largest request head: request line and header fields.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// The longest request target (path and query).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// What the guard needs to know, shared by every connection.
#[derive(Debug)]
pub struct ConnectionRules {
    /// A head must arrive in full within this once it has started, and a connection's first
    /// head within this of the connection.
    pub head_timeout: Duration,
    /// `/_refused/<random>`: only the guard knows it, so no client request reaches it.
    refusal_prefix: String,
}

impl ConnectionRules {
    pub fn new(head_timeout: Duration) -> Self {
        Self {
            head_timeout,
            refusal_prefix: format!("/_refused/{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The route pattern the server registers for refusals.
    pub fn refusal_route(&self) -> String {
        format!("{}/{{refusal}}", self.refusal_prefix)
    }

    /// The request actix reads in place of a refused head.
    fn refusal_request(&self, refusal: Refusal) -> Vec<u8> {
        format!(
            "GET {}/{} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
            self.refusal_prefix,
            refusal.slug()
        )
        .into_bytes()
    }
}

/// Registers the route that answers refused heads.
pub fn configure(cfg: &mut actix_web::web::ServiceConfig, rules: &ConnectionRules) {
    cfg.route(
        &rules.refusal_route(),
        actix_web::web::get().to(|refusal: actix_web::web::Path<String>| async move {
            let error = match Refusal::from_slug(&refusal) {
                Some(refusal) => ApiError::Refused(Box::new(refusal)),
                None => ApiError::RouteNotFound(refusal.into_inner()),
            };
            Err::<actix_web::HttpResponse, _>(error)
        }),
    );
}

/// Where the framer is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// At the start of a request head.
    Head,
    /// Inside a body with this many bytes left.
    Body(u64),
    /// At a chunk-size line.
    ChunkSize,
    /// Inside a chunk with this many bytes left.
    ChunkData(u64),
    /// At the CRLF that ends a chunk's data.
    ChunkEnd,
    /// Among the trailer lines after the last chunk.
    Trailers,
    /// No more heads to check: a chunked body the framer could not follow (actix refuses it
    /// and closes the connection).
    Through,
}

/// Follows the request framing of one connection and checks each head.
#[derive(Debug)]
struct Framer {
    framing: Framing,
}

impl Framer {
    fn new() -> Self {
        Self {
            framing: Framing::Head,
        }
    }

    /// Whether the framer waits for a head (and so a slow one can time out).
    fn at_head(&self) -> bool {
        self.framing == Framing::Head
    }

    /// Checks as much of `unchecked` (bytes after the last checked one) as is complete: how
    /// many of them may go on to actix, or why the head at that point is refused.
    fn check(&mut self, unchecked: &mut [u8]) -> Result<usize, (usize, Refusal)> {
        let mut done = 0;
        loop {
            let rest = &mut unchecked[done..];
            match self.framing {
                Framing::Through => return Ok(unchecked.len()),
                _ if rest.is_empty() => return Ok(done),
                Framing::Head => match self.head(rest) {
                    Ok(Some(length)) => done += length,
                    Ok(None) => return Ok(done),
                    Err(refusal) => return Err((done, refusal)),
                },
                Framing::Body(left) => {
                    let taken = left.min(rest.len() as u64);
                    done += taken as usize;
                    self.framing = match left - taken {
                        0 => Framing::Head,
                        left => Framing::Body(left),
                    };
                }
                Framing::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((length, 0))) => {
                        done += length;
                        self.framing = Framing::Trailers;
                    }
                    Ok(httparse::Status::Complete((length, size))) => {
                        done += length;
                        self.framing = Framing::ChunkData(size);
                    }
                    Ok(httparse::Status::Partial) if rest.len() < 1024 => return Ok(done),
                    _ => self.framing = Framing::Through,
                },
                Framing::ChunkData(left) => {
                    let taken = left.min(rest.len() as u64);
                    done += taken as usize;
                    self.framing = match left - taken {
                        0 => Framing::ChunkEnd,
                        left => Framing::ChunkData(left),
                    };
                }
                Framing::ChunkEnd => {
                    if rest.len() < 2 {
                        return Ok(done);
                    }
                    self.framing = if rest.starts_with(b"\r\n") {
                        done += 2;
                        Framing::ChunkSize
                    } else {
                        Framing::Through
                    };
                }
                Framing::Trailers => match rest.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        done += 2;
                        self.framing = Framing::Head;
                    }
                    Some(line) => done += line + 2,
                    None if rest.len() < MAX_HEAD_BYTES => return Ok(done),
                    None => self.framing = Framing::Through,
                },
            }
        }
    }

    /// Checks the head at the start of `bytes`: its length when complete, `None` while it may
    /// still arrive. An upgrade it asks for is struck out in place (see [`Upgrade`]).
    fn head(&mut self, bytes: &mut [u8]) -> Result<Option<usize>, Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let length = match request.parse(bytes) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => {
                let request_line = bytes.split(|b| *b == b'\n').next().unwrap_or(bytes);
                if request_line.len() > MAX_URI_BYTES + 64 {
                    return Err(Refusal::UriTooLong);
                }
                if bytes.len() > MAX_HEAD_BYTES {
                    return Err(Refusal::HeadTooLarge);
                }
                return Ok(None);
            }
            Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooManyHeaders),
            Err(_) => return Err(Refusal::Malformed),
        };
        if request.path.is_some_and(|path| path.len() > MAX_URI_BYTES) {
            return Err(Refusal::UriTooLong);
        }
        if length > MAX_HEAD_BYTES {
            return Err(Refusal::HeadTooLarge);
        }
        if request.method == Some("CONNECT") {
            return Err(Refusal::Tunnel);
        }
        let hosts = request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("host"))
            .count();
        if hosts != 1 {
            return Err(Refusal::BadHost);
        }
        self.framing = body_framing(&request)?;
        let upgrade = Upgrade::find(bytes.as_ptr(), &request);
        upgrade.strike_out(bytes);
        Ok(Some(length))
    }
}

/// No route of this service takes over its connection (there are no WebSockets), so a request
/// that asks for an upgrade is served as a plain request, as RFC 9110 §7.8 allows a server to
/// do. Actix would otherwise treat `Upgrade: websocket` as a body that runs to the end of the
/// connection, and the guard could no longer find the heads that follow. The guard therefore
/// renames the `Upgrade` header field and the `upgrade` token of `Connection` to `ignored`,
/// in place (both are seven bytes, so no offset moves), before actix reads the head.
#[derive(Debug, Default)]
struct Upgrade {
    /// Offsets in the head of the seven bytes to overwrite.
    spans: Vec<usize>,
}

impl Upgrade {
    const WORD: &'static [u8; 7] = b"ignored";

    /// Where the upgrade request of a parsed head is, as offsets from `start` (the head's
    /// first byte): httparse's fields borrow the head, so their addresses are inside it.
    fn find(start: *const u8, request: &httparse::Request) -> Self {
        let offset = |slice: &[u8]| slice.as_ptr() as usize - start as usize;
        let mut spans = Vec::new();
        for header in request.headers.iter() {
            if header.name.eq_ignore_ascii_case("upgrade") {
                spans.push(offset(header.name.as_bytes()));
            } else if header.name.eq_ignore_ascii_case("connection") {
                let value = header.value;
                let mut at = 0;
                for token in value.split(|b| *b == b',') {
                    let trimmed = token.trim_ascii();
                    if trimmed.eq_ignore_ascii_case(b"upgrade") {
                        let lead = token.len() - token.trim_ascii_start().len();
                        spans.push(offset(value) + at + lead);
                    }
                    at += token.len() + 1;
                }
            }
        }
        Self { spans }
    }

    fn strike_out(&self, head: &mut [u8]) {
        for &at in &self.spans {
            head[at..at + Self::WORD.len()].copy_from_slice(Self::WORD);
        }
    }
}

/// How the body after a head is framed (RFC 9112 §6). Only what actix-http frames the same
/// way passes: one `Content-Length`, or one `Transfer-Encoding: chunked` without one.
fn body_framing(request: &httparse::Request) -> Result<Framing, Refusal> {
    let named = |name: &'static str| {
        request
            .headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let mut length: Option<u64> = None;
    for value in named("content-length") {
        let parsed = std::str::from_utf8(value)
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(Refusal::BadContentLength)?;
        if length.is_some() {
            return Err(Refusal::BadContentLength);
        }
        length = Some(parsed);
    }
    let codings: Vec<&[u8]> = named("transfer-encoding").collect();
    match codings.as_slice() {
        [] => {}
        [coding] if length.is_none() && coding.trim_ascii().eq_ignore_ascii_case(b"chunked") => {
            return Ok(Framing::ChunkSize)
        }
        _ => return Err(Refusal::BadTransferEncoding),
    }
    Ok(match length {
        None | Some(0) => Framing::Head,
        Some(n) => Framing::Body(n),
    })
}

/// How much of what a client sends after a refused head is read and dropped in one go.
const MAX_DROPPED_PER_READ: usize = 64 * 1024;

/// A TCP connection whose request heads are checked before actix reads them.
pub struct GuardedStream {
    io: TcpStream,
    rules: Arc<ConnectionRules>,
    framer: Framer,
    /// Bytes read from the socket and not yet handed on: `buffer[handed..checked]` may go on
    /// now, `buffer[checked..]` waits for the rest of its head.
    buffer: Vec<u8>,
    handed: usize,
    checked: usize,
    /// A head was refused: its stand-in request is in the buffer, and whatever the client
    /// sends from then on is dropped.
    refused: bool,
    /// Runs while a head is awaited: the first one, or one that has started to arrive.
    head_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Runs while a body is still arriving (see [`BODY_GRACE`]).
    body_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// A body still arriving this long after the body timeout (counted from the end of its
/// head) ends its connection. The handler has answered 408 by then; actix would otherwise go
/// on reading, and discarding, a trickled chunked body for as long as the client sends it.
const BODY_GRACE: Duration = Duration::from_secs(2);

impl GuardedStream {
    pub fn new(io: TcpStream, rules: Arc<ConnectionRules>) -> Self {
        let first_head = Box::pin(tokio::time::sleep(rules.head_timeout));
        Self {
            io,
            rules,
            framer: Framer::new(),
            buffer: Vec::new(),
            handed: 0,
            checked: 0,
            refused: false,
            head_deadline: Some(first_head),
            body_deadline: None,
        }
    }

    /// Puts the stand-in request for `refusal` after the bytes already checked.
    fn refuse(&mut self, refusal: Refusal) {
        self.buffer.truncate(self.checked);
        let stand_in = self.rules.refusal_request(refusal);
        self.buffer.extend_from_slice(&stand_in);
        self.checked = self.buffer.len();
        self.refused = true;
        self.head_deadline = None;
        self.body_deadline = None;
    }

    /// Frames what arrived; arms or disarms the head deadline.
    fn check_new_bytes(&mut self) {
        match self.framer.check(&mut self.buffer[self.checked..]) {
            Ok(length) => self.checked += length,
            Err((length, refusal)) => {
                self.checked += length;
                self.refuse(refusal);
                return;
            }
        }
        if self.framer.at_head() {
            self.body_deadline = None;
        } else if self.body_deadline.is_none() {
            let deadline = tokio::time::sleep(self.rules.head_timeout + BODY_GRACE);
            self.body_deadline = Some(Box::pin(deadline));
        }
        let head_started = self.framer.at_head() && self.checked < self.buffer.len();
        if head_started {
            if self.head_deadline.is_none() {
                let deadline = tokio::time::sleep(self.rules.head_timeout);
                self.head_deadline = Some(Box::pin(deadline));
            }
        } else if self.checked > 0 {
            // A head was completed: the next one's clock starts with its first byte.
            self.head_deadline = None;
        }
    }

    /// Hands on up to `out`'s room of the checked bytes; whether there were any.
    fn hand_on(&mut self, out: &mut ReadBuf<'_>) -> bool {
        let ready = self.checked - self.handed;
        if ready == 0 {
            return false;
        }
        let n = ready.min(out.remaining());
        out.put_slice(&self.buffer[self.handed..self.handed + n]);
        self.handed += n;
        if self.handed == self.buffer.len() {
            self.buffer.clear();
            (self.handed, self.checked) = (0, 0);
        } else if self.handed > 64 * 1024 {
            self.buffer.drain(..self.handed);
            self.checked -= self.handed;
            self.handed = 0;
        }
        true
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut dropped = 0;
        loop {
            if this.hand_on(out) {
                return Poll::Ready(Ok(()));
            }
            if dropped >= MAX_DROPPED_PER_READ {
                // A client that keeps sending after a refusal must not hold the worker.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if this.refused => {
                    dropped += read.filled().len();
                    if read.filled().is_empty() {
                        // Keep actix from seeing the client gone before it has answered the
                        // stand-in request; the answer closes the connection.
                        return Poll::Pending;
                    }
                }
                Poll::Ready(Ok(())) => {
                    if read.filled().is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    this.buffer.extend_from_slice(read.filled());
                    this.check_new_bytes();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if let Some(deadline) = this.body_deadline.as_mut() {
                        ready!(deadline.as_mut().poll(cx));
                        log::info!("closing a connection whose request body is still arriving");
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the request body is still arriving after its timeout",
                        )));
                    }
                    if let Some(deadline) = this.head_deadline.as_mut() {
                        ready!(deadline.as_mut().poll(cx));
                        this.refuse(Refusal::HeadTimeout);
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, data)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` to a fresh framer in pieces of `step`; the bytes checked, or the refusal.
    fn frame(bytes: &[u8], step: usize) -> Result<usize, Refusal> {
        let mut bytes = bytes.to_vec();
        let mut framer = Framer::new();
        let mut checked = 0;
        for end in (step..bytes.len() + step).step_by(step) {
            let end = end.min(bytes.len());
            match framer.check(&mut bytes[checked..end]) {
                Ok(n) => checked += n,
                Err((_, refusal)) => return Err(refusal),
            }
        }
        Ok(checked)
    }

    #[test]
    fn heads_and_bodies_are_followed_in_any_pieces() {
        let requests = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
GET /b HTTP/1.1\r\nHost: x\r\n\r\n\
POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n\
GET /d HTTP/1.1\r\nHost: x\r\n\r\n";
        for step in [1, 2, 7, 64, requests.len()] {
            assert_eq!(frame(requests, step), Ok(requests.len()), "step {step}");
        }
        // A head cut short is not handed on.
        let partial =
            b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /b HTTP/1.1\r\nHo";
        assert_eq!(frame(partial, 5), Ok(partial.len() - 19));
    }

    #[test]
    fn bad_heads_are_refused_for_their_reason() {
        let long_header = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(40_000)
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9_000));
        let long_uri_unfinished = format!("GET /{}", "a".repeat(20_000));
        let cases: [(&[u8], Refusal); 16] = [
            (long_header.as_bytes(), Refusal::HeadTooLarge),
            (many.as_bytes(), Refusal::TooManyHeaders),
            (long_uri.as_bytes(), Refusal::UriTooLong),
            (long_uri_unfinished.as_bytes(), Refusal::UriTooLong),
            (b"HELLO\x01 / HTTP/1.1\r\n\r\n", Refusal::Malformed),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                Refusal::BadContentLength,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                Refusal::BadContentLength,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
                Refusal::BadTransferEncoding,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                Refusal::BadTransferEncoding,
            ),
            // What actix-http would refuse with an empty 400, refused here first.
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
                Refusal::BadContentLength,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Refusal::BadTransferEncoding,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                Refusal::BadTransferEncoding,
            ),
            (b"GET / HTTP/1.1\r\n\r\n", Refusal::BadHost),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", Refusal::BadHost),
            (b"GET / HTTP/1.0\r\n\r\n", Refusal::BadHost),
            (b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", Refusal::Tunnel),
        ];
        for (bytes, refusal) in cases {
            assert_eq!(
                frame(bytes, 4096),
                Err(refusal),
                "{:.60}",
                String::from_utf8_lossy(bytes)
            );
        }
        // After a good request, a bad one is refused where it starts.
        let mut framer = Framer::new();
        let mut bytes =
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n"
                .to_vec();
        assert_eq!(
            framer.check(&mut bytes),
            Err((27, Refusal::BadContentLength))
        );
    }

    #[test]
    fn upgrades_are_struck_out_and_the_heads_after_them_still_checked() {
        let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\
Upgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHo"
            .to_vec();
        let mut framer = Framer::new();
        let checked = framer.check(&mut bytes).unwrap();
        let handed = String::from_utf8_lossy(&bytes[..checked]);
        assert_eq!(
            handed,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, ignored\r\n\
ignored: websocket\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        assert!(
            framer.at_head(),
            "the third head is awaited, and can time out"
        );
    }

    #[test]
    fn unreadable_chunks_are_left_to_actix() {
        let bad_chunk =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nmore";
        assert_eq!(frame(bad_chunk, 4096), Ok(bad_chunk.len()));
    }

    #[test]
    fn every_refusal_round_trips_through_its_slug() {
        for refusal in Refusal::ALL {
            assert_eq!(Refusal::from_slug(refusal.slug()), Some(refusal));
        }
        assert_eq!(Refusal::from_slug("other"), None);
    }
}
