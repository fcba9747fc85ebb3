//! The API's front door: the listener clients reach, in front of the
//! dropshot server (which listens on loopback only), so that every
//! connection is TLS and every answer the API sends is the API's own.
//!
//! Dropshot and hyper answer some requests before any endpoint runs, with
//! bodies of their own: an unknown path (404), a wrong method (405), a path
//! that does not decode (400) come as dropshot's `{request_id, message}`;
//! a request line or head too long for hyper comes with no body at all.
//! And neither bounds how long a connection may sit idle. So each
//! connection is taken here first:
//!
//! 1. Its TLS handshake (the sled's certificate, no client certificate:
//!    tq-std's `net::api_tls`) and then its request head must complete
//!    within the idle timeout
//!    ([`crate::config::ApiSection::idle_timeout_ms`]); a connection that
//!    sends nothing, not a whole head, or anything but a TLS 1.3 client
//!    hello (a plain-HTTP request included) is closed, with at most a TLS
//!    alert.
//! 2. The head is parsed with `httparse` (hyper's own parser), with limits
//!    below hyper's ([`MAX_URI_BYTES`], [`MAX_HEAD_BYTES`],
//!    [`MAX_HEADERS`]): what would break them, or does not parse, is
//!    answered here with an [`ApiError`], so hyper never refuses a head.
//! 3. The request is passed to dropshot; an error answer that is not an
//!    [`ApiError`] (the router's) is rewritten into one with the same
//!    status and sentence.
//!
//! HTTP/1.1, one request per connection (the answer closes it), so every
//! request goes through steps 1 and 2, and no connection idles between
//! requests. A connection lives at most [`lifetime`] in all. Each
//! connection closed in step 1 (a failed handshake, the idle timeout) or
//! refused in step 2 is counted by reason (`tq_api_connections_refused`,
//! tq-std's `ApiConnectionRefusal`); a client that goes away by itself is
//! not.
//!
//! # The loopback hop
//!
//! Between this door and dropshot, requests travel in plain HTTP over a
//! loopback TCP port that the system picks at start. Any process of this
//! host can connect to that port (dropshot listens on TCP only, and no
//! well-kept mechanism makes a loopback port private to one process
//! without privileges or firewall rules outside the daemon), and there it
//! skips what this door does: TLS, the idle timeout and the head limits.
//! What that exposes is what any client of the API has, without the
//! bounds: the read-only endpoints (readable by any TLS client anyway),
//! and every other call, which needs Nexus's authority: once requests
//! carry authenticators that the node checks, a local process gets no
//! more there than over TLS (the check is the same whichever way the
//! request came); until then it can make any call, as any client can.
//! Nothing secret crosses the hop (no answer carries a share or a
//! secret). What it adds is a local process's means to hold dropshot's
//! connections open without the idle timeout, which a local process can
//! do to the host in many other ways. Network clients never reach the
//! port: it is bound to 127.0.0.1.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tq_std::handle::{MAX_DEADLINE, NodeHandle};
use tq_std::node::stats::ApiConnectionRefusal;

use crate::api::error::{ApiError, ErrorCode};

/// Longest request target (path and query) accepted, in bytes: far above
/// any path of the API, far below hyper's own limit (64 KiB).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Longest request head (request line and headers) accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Most headers a request may carry (hyper's own limit is 100).
pub const MAX_HEADERS: usize = 64;

/// Most bytes of an error answer from dropshot read to check its form
/// (its own errors are a few hundred bytes).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How long a refused client's remaining bytes are read and dropped
/// before its connection is closed, so that it reads the answer before
/// the close (closing on unread bytes resets the connection).
const DRAIN_FOR: Duration = Duration::from_secs(1);

/// The longest a connection lives: its head within `idle`, the longest
/// call, and `idle` again for the body and the answer.
pub fn lifetime(idle: Duration) -> Duration {
    idle.saturating_mul(2).saturating_add(MAX_DEADLINE)
}

type FrontBody = BoxBody<Bytes, hyper::Error>;

/// The listener in front of dropshot. Stops accepting when dropped.
pub struct Front {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Front {
    /// Listens on `listen` with TLS as `tls` configures it, passing
    /// requests to dropshot at `backend`; counts its refusals on `node`.
    /// Must be called within a tokio runtime.
    pub fn start(
        listen: SocketAddr,
        tls: Arc<ServerConfig>,
        backend: SocketAddr,
        idle: Duration,
        node: NodeHandle,
    ) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let door = Door {
            tls: TlsAcceptor::from(tls),
            backend,
            idle,
            node,
        };
        let accept = tokio::spawn(accept(listener, Arc::new(door)));
        Ok(Self { addr, accept })
    }

    /// Where clients reach the API.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Where dropshot listens: loopback, any port.
pub fn backend_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// What every connection is served with.
struct Door {
    tls: TlsAcceptor,
    backend: SocketAddr,
    idle: Duration,
    /// Where refusals are counted.
    node: NodeHandle,
}

async fn accept(listener: TcpListener, door: Arc<Door>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let door = door.clone();
                tokio::spawn(async move {
                    let lifetime = lifetime(door.idle);
                    let _ = tokio::time::timeout(lifetime, serve(stream, &door)).await;
                });
            }
            Err(error) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(%error, "API accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Why a connection ended before its request head was read.
enum NotOpened {
    /// The TLS handshake failed.
    Handshake(io::Error),
    /// The client went away or the connection broke.
    Gone(io::Error),
}

async fn serve(stream: TcpStream, door: &Door) {
    let (backend, idle) = (door.backend, door.idle);
    let opened = tokio::time::timeout(idle, async {
        let mut stream = door
            .tls
            .accept(stream)
            .await
            .map_err(NotOpened::Handshake)?;
        let head = read_head(&mut stream).await.map_err(NotOpened::Gone)?;
        Ok((stream, head))
    })
    .await;
    let refused = |reason| door.node.count_api_connection_refused(reason);
    // Nothing is answered to these.
    let (mut stream, head) = match opened {
        Err(_) => return refused(ApiConnectionRefusal::IdleTimeout),
        // rustls's refusals come as invalid data; anything else is the
        // connection going away (before any byte, say).
        Ok(Err(NotOpened::Handshake(error))) if error.kind() == io::ErrorKind::InvalidData => {
            tracing::debug!(%error, "API TLS handshake");
            return refused(ApiConnectionRefusal::TlsHandshake);
        }
        Ok(Err(NotOpened::Handshake(error) | NotOpened::Gone(error))) => {
            tracing::debug!(%error, "API connection gone before its request");
            return;
        }
        Ok(Ok(opened)) => opened,
    };
    let prefix = match head {
        Head::Complete(prefix) => prefix,
        Head::Refused(status, error) => {
            refused(ApiConnectionRefusal::BadHead);
            refuse(&mut stream, status, &error).await;
            return;
        }
    };
    let io = TokioIo::new(Prefixed {
        prefix,
        at: 0,
        inner: stream,
    });
    let service = hyper::service::service_fn(move |request| forward(request, backend));
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .keep_alive(false)
        .serve_connection(io, service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, "API connection");
    }
}

/// A request head as read: whole (with whatever followed it), or refused.
#[derive(Debug)]
enum Head {
    Complete(Vec<u8>),
    Refused(StatusCode, ApiError),
}

async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        match judge(&buf) {
            Verdict::NeedMore => {}
            Verdict::Complete => return Ok(Head::Complete(buf)),
            Verdict::Refused(status, error) => return Ok(Head::Refused(status, error)),
        }
    }
}

#[derive(Debug)]
enum Verdict {
    NeedMore,
    Complete,
    Refused(StatusCode, ApiError),
}

/// What the bytes read so far make of the request head.
fn judge(buf: &[u8]) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(buf);
    let uri_too_long = || {
        Verdict::Refused(
            StatusCode::URI_TOO_LONG,
            ApiError::new(
                ErrorCode::UriTooLong,
                format!("the request target is longer than {MAX_URI_BYTES} bytes"),
            ),
        )
    };
    let head_too_large = || {
        Verdict::Refused(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::new(
                ErrorCode::HeadersTooLarge,
                format!(
                    "the request head is longer than {MAX_HEAD_BYTES} bytes \
                     or has more than {MAX_HEADERS} headers"
                ),
            ),
        )
    };
    if request.path.is_some_and(|path| path.len() > MAX_URI_BYTES) {
        return uri_too_long();
    }
    match parsed {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => head_too_large(),
        Ok(httparse::Status::Complete(_)) => Verdict::Complete,
        // Past the limit without a whole request line: its target is
        // what is long (a method is a short token, or refused as one).
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => match request.path {
            None => uri_too_long(),
            Some(_) => head_too_large(),
        },
        Ok(httparse::Status::Partial) => Verdict::NeedMore,
        Err(httparse::Error::TooManyHeaders) => head_too_large(),
        Err(error) => Verdict::Refused(
            StatusCode::BAD_REQUEST,
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("malformed request head: {error}"),
            ),
        ),
    }
}

/// Answers `error` on a connection whose request will not be read, then
/// closes it.
async fn refuse(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    status: StatusCode,
    error: &ApiError,
) {
    let body = serde_json::to_vec(error).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if stream.write_all(head.as_bytes()).await.is_err()
        || stream.write_all(&body).await.is_err()
        || stream.shutdown().await.is_err()
    {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Passes `request` to dropshot; its answer, in the API's form.
async fn forward(
    request: Request<Incoming>,
    backend: SocketAddr,
) -> Result<Response<FrontBody>, Infallible> {
    Ok(match pass(request, backend).await {
        Ok(response) => conform(response).await,
        Err(error) => {
            tracing::warn!(%error, "API backend");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &ApiError::new(ErrorCode::Stopped, "the API server is not running"),
            )
        }
    })
}

async fn pass(
    request: Request<Incoming>,
    backend: SocketAddr,
) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(backend).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Runs until the answer's body is read.
    tokio::spawn(connection);
    Ok(sender.send_request(request).await?)
}

/// An answer as dropshot gave it, unless it is an error whose body is not
/// an [`ApiError`]: that one is given the code of its status, and keeps
/// its status and sentence.
async fn conform(response: Response<Incoming>) -> Response<FrontBody> {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response.map(BodyExt::boxed);
    }
    let (parts, body) = response.into_parts();
    let bytes = Limited::new(body, MAX_ERROR_BODY_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .ok();
    if let Some(bytes) = &bytes
        && serde_json::from_slice::<ApiError>(bytes).is_ok()
    {
        return Response::from_parts(parts, full(bytes.clone()));
    }
    let message = bytes
        .and_then(|b| serde_json::from_slice::<dropshot::HttpErrorResponseBody>(&b).ok())
        .map(|body| body.message)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let mut rewritten = error_response(status, &ApiError::new(code_of(status), message));
    // The other headers stand (a 405's `Allow`, the request id); the
    // body's own are the new body's.
    let mut headers = parts.headers;
    headers.remove(hyper::header::CONTENT_LENGTH);
    headers.remove(hyper::header::TRANSFER_ENCODING);
    headers.remove(hyper::header::CONTENT_TYPE);
    let new = std::mem::replace(rewritten.headers_mut(), headers);
    rewritten.headers_mut().extend(new);
    rewritten
}

/// The code of an error status the framework answered by itself.
fn code_of(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::UnknownPath,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::URI_TOO_LONG => ErrorCode::UriTooLong,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
        s if s.is_client_error() => ErrorCode::InvalidRequest,
        _ => ErrorCode::Internal,
    }
}

fn full(bytes: Bytes) -> FrontBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn error_response(status: StatusCode, error: &ApiError) -> Response<FrontBody> {
    let body = serde_json::to_vec(error).unwrap_or_default();
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A stream whose first bytes were already read: they are read again
/// first.
struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = this.prefix.get(this.at..).unwrap_or_default();
        if !rest.is_empty() {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(buf: &[u8]) -> Option<(u16, ErrorCode)> {
        match judge(buf) {
            Verdict::Refused(status, error) => Some((status.as_u16(), error.error_code)),
            _ => None,
        }
    }

    #[test]
    fn heads_past_the_limits_are_refused_with_their_codes() {
        assert!(matches!(
            judge(b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n"),
            Verdict::Complete
        ));
        assert!(matches!(judge(b"GET /v1/sta"), Verdict::NeedMore));
        let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_BYTES));
        assert_eq!(
            refused(long_target.as_bytes()),
            Some((414, ErrorCode::UriTooLong))
        );
        // A request line still arriving past the head limit.
        let endless = format!("GET /{}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            refused(endless.as_bytes()),
            Some((414, ErrorCode::UriTooLong))
        );
        let big_header = format!(
            "GET / HTTP/1.1\r\nx: {}\r\n\r\n",
            "b".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(
            refused(big_header.as_bytes()),
            Some((431, ErrorCode::HeadersTooLarge))
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            refused(many.as_bytes()),
            Some((431, ErrorCode::HeadersTooLarge))
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nbad header\r\n\r\n"),
            Some((400, ErrorCode::InvalidRequest))
        );
    }
}
