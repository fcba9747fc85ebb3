//! A sled reached over its HTTP API: the Nexus driver's [`SledApi`] over
//! the generated client ([`crate::client::Client`]).
//!
//! A node's own refusal comes back as an error response whose body holds
//! the core's error (`refusal`): it is handed on as the node's answer, the
//! very value an in-process sled gives. Any other error response (busy,
//! not stored, a proxy's target not connected...), a transport failure or
//! an answer that does not decode is a [`CallFailure`]: the machine is
//! told the sled is unreachable.

use std::net::SocketAddr;
use std::time::Duration;

use progenitor_client::{ClientInfo, Error, ResponseValue};
use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_driver::{CallFailure, FailureKind, Reply, SledApi};

use crate::api::error::{ApiError, ErrorCode, Refusal};
use crate::api::types::{
    ProxyCommitRequest, ProxyPrepareAndCommitRequest, ProxyStatusRequest, SecretFingerprint,
    SecretFingerprintRequest, SledStatus,
};
use crate::client::{Client, MAX_RESPONSE_BODY_BYTES, bounded};
use crate::https::{RackCa, base_url, sled_client};

pub use crate::https::ClientError;

/// One sled's API over HTTP. Cheap to clone (the connection pool is
/// shared).
#[derive(Clone, Debug)]
pub struct HttpSled {
    client: Client,
    addr: SocketAddr,
}

impl HttpSled {
    /// Sled `id`, whose API listens at `addr`: reached over HTTPS, its
    /// certificate verified under `rack_ca` and naming `id`
    /// ([`crate::https`]); every request gives up after `timeout`.
    pub fn new(
        addr: SocketAddr,
        id: PlatformId,
        rack_ca: &RackCa,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let http = sled_client(rack_ca, id, timeout)?;
        Ok(Self {
            client: Client::new_with_client(&base_url(addr), http),
            addr,
        })
    }

    /// Where its API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The generated client, for the calls Nexus does not make.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Its status: the node's, the ledger's health and its connections.
    pub async fn sled_status(&self) -> Reply<SledStatus> {
        plain(self.client.status().await)
    }

    /// The latest committed epoch's secret's fingerprint, waiting up to
    /// `deadline` for the shares.
    pub async fn secret_fingerprint(&self, deadline: Duration) -> Reply<SecretFingerprint> {
        let request = SecretFingerprintRequest {
            deadline_ms: millis(deadline),
        };
        plain(self.client.secret_fingerprint(&request).await)
    }

    /// Its counters, in the Prometheus text format.
    pub async fn metrics_text(&self) -> Reply<String> {
        let url = format!("{}/metrics", base_url(self.addr));
        let response = self
            .client
            .client()
            .get(url)
            .send()
            .await
            .map_err(|e| CallFailure::new(FailureKind::Transport, e.to_string()))?;
        if !response.status().is_success() {
            return Err(CallFailure::new(
                FailureKind::Unavailable,
                format!("/metrics answered {}", response.status()),
            ));
        }
        bounded(response, MAX_RESPONSE_BODY_BYTES)
            .text()
            .await
            .map_err(|e| CallFailure::new(FailureKind::Transport, e.to_string()))
    }

    /// Messages and bytes it sent to its peers so far, from its counters.
    pub async fn traffic(&self) -> Reply<Traffic> {
        self.metrics_text()
            .await
            .map(|text| traffic_in_metrics(&text))
    }
}

/// Messages and bytes sent over the peer network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Message frames (core messages and proxy frames).
    pub messages: u64,
    /// Their bytes, length prefixes included, keep-alives not.
    pub bytes: u64,
}

impl std::ops::Add for Traffic {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            messages: self.messages + other.messages,
            bytes: self.bytes + other.bytes,
        }
    }
}

impl Traffic {
    /// `self - earlier`, saturating.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            messages: self.messages.saturating_sub(earlier.messages),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// Sums the outgoing frames and bytes (keep-alives taken out) of every
/// peer in a node's Prometheus text.
pub fn traffic_in_metrics(text: &str) -> Traffic {
    let sum = |family: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(family) && l.contains("direction=\"out\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let frames = sum("tq_net_peer_frames_total{");
    let bytes = sum("tq_net_peer_bytes_total{");
    // Each keep-alive is a bare 4-byte length prefix.
    let keepalives = sum("tq_net_peer_keepalives_total{");
    Traffic {
        messages: frames,
        bytes: bytes.saturating_sub(4 * keepalives),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// What an error response says, as a failure of the call.
fn failure(error: Error<ApiError>) -> CallFailure {
    match error {
        Error::ErrorResponse(response) => {
            let status = response.status();
            let body = response.into_inner();
            let kind = match body.error_code {
                ErrorCode::DeadlinePassed => FailureKind::Timeout,
                ErrorCode::WrongAnswer | ErrorCode::Internal => FailureKind::BadAnswer,
                _ => FailureKind::Unavailable,
            };
            CallFailure::new(kind, format!("{status}: {}", body.message))
        }
        Error::CommunicationError(e) if e.is_timeout() => {
            CallFailure::new(FailureKind::Timeout, e.to_string())
        }
        Error::CommunicationError(e) => CallFailure::new(FailureKind::Transport, e.to_string()),
        other => CallFailure::new(FailureKind::BadAnswer, other.to_string()),
    }
}

/// An answer with no refusal of the node's own.
fn plain<T>(result: Result<ResponseValue<T>, Error<ApiError>>) -> Reply<T> {
    result.map(ResponseValue::into_inner).map_err(failure)
}

/// An answer whose refusal `pick` recognizes as the node's own error.
fn refusable<T, E>(
    result: Result<ResponseValue<T>, Error<ApiError>>,
    pick: impl FnOnce(Refusal) -> Option<E>,
) -> Reply<Result<T, E>> {
    match result {
        Ok(value) => Ok(Ok(value.into_inner())),
        Err(Error::ErrorResponse(response)) if response.refusal.is_some() => {
            let status = response.status();
            let body = response.into_inner();
            let message = body.message.clone();
            match body.refusal.and_then(|refusal| pick(*refusal)) {
                Some(error) => Ok(Err(error)),
                None => Err(CallFailure::new(
                    FailureKind::BadAnswer,
                    format!("{status}: a refusal of another call: {message}"),
                )),
            }
        }
        Err(error) => Err(failure(error)),
    }
}

fn reconfigure_refusal(r: Refusal) -> Option<ReconfigureError> {
    match r {
        Refusal::Reconfigure(e) => Some(e),
        _ => None,
    }
}

fn upgrade_refusal(r: Refusal) -> Option<LrtqUpgradeError> {
    match r {
        Refusal::UpgradeFromLrtq(e) => Some(e),
        _ => None,
    }
}

fn commit_refusal(r: Refusal) -> Option<CommitError> {
    match r {
        Refusal::Commit(e) => Some(e),
        _ => None,
    }
}

fn prepare_and_commit_refusal(r: Refusal) -> Option<PrepareAndCommitError> {
    match r {
        Refusal::PrepareAndCommit(e) => Some(e),
        _ => None,
    }
}

impl SledApi for HttpSled {
    async fn reconfigure(
        &self,
        msg: ReconfigureMsg,
    ) -> Reply<Result<ReconfigureOutcome, ReconfigureError>> {
        refusable(self.client.reconfigure(&msg).await, reconfigure_refusal)
    }

    async fn upgrade_from_lrtq(&self, msg: LrtqUpgradeMsg) -> Reply<Result<(), LrtqUpgradeError>> {
        refusable(self.client.upgrade_from_lrtq(&msg).await, upgrade_refusal)
    }

    async fn commit(&self, request: CommitRequest) -> Reply<Result<CommitOutcome, CommitError>> {
        refusable(self.client.commit(&request).await, commit_refusal)
    }

    async fn prepare_and_commit(
        &self,
        config: Configuration,
    ) -> Reply<Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
        refusable(
            self.client.prepare_and_commit(&config).await,
            prepare_and_commit_refusal,
        )
    }

    async fn coordinator_status(&self) -> Reply<Option<CoordinatorStatus>> {
        plain(self.client.coordinator_status().await)
    }

    async fn status(&self) -> Reply<NodeStatus> {
        self.sled_status().await.map(|status| status.node)
    }

    async fn proxy_commit(
        &self,
        to: PlatformId,
        request: CommitRequest,
        deadline: Duration,
    ) -> Reply<Result<CommitOutcome, CommitError>> {
        let body = ProxyCommitRequest {
            target: to,
            deadline_ms: millis(deadline),
            request,
        };
        refusable(self.client.proxy_commit(&body).await, commit_refusal)
    }

    async fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        config: Configuration,
        deadline: Duration,
    ) -> Reply<Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
        let body = ProxyPrepareAndCommitRequest {
            target: to,
            deadline_ms: millis(deadline),
            config,
        };
        refusable(
            self.client.proxy_prepare_and_commit(&body).await,
            prepare_and_commit_refusal,
        )
    }

    async fn proxy_status(&self, to: PlatformId, deadline: Duration) -> Reply<NodeStatus> {
        let body = ProxyStatusRequest {
            target: to,
            deadline_ms: millis(deadline),
        };
        plain(self.client.proxy_status(&body).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A sled's id.
    fn sled() -> PlatformId {
        PlatformId::new("p", "a").unwrap()
    }

    /// An HTTPS server with [`sled`]'s certificate that answers every
    /// request with `200` and `body`, chunked (no declared length) or not.
    /// Its client.
    async fn answering(body: Vec<u8>, chunked: bool, content_type: &'static str) -> HttpSled {
        let ca = tq_test_fixtures::pki::Ca::new("rack");
        let (cert, key) = ca.leaf(&[tq_std::net::identity::platform_id_uri(&sled())], None);
        let identity = tq_std::net::TlsIdentity {
            ca_certs: vec![ca.der()],
            cert_chain: vec![cert],
            key,
        };
        let tls = tokio_rustls::TlsAcceptor::from(
            tq_std::net::api_tls::server_config(&identity).unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let Ok(mut stream) = tls.accept(stream).await else {
                        return;
                    };
                    // The request: its head, then as many bytes as it declares.
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                    let declared: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while request.len() < head_end + declared {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n"
                    )
                    .into_bytes();
                    if chunked {
                        answer.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                        for chunk in body.chunks(64 * 1024) {
                            answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                            answer.extend_from_slice(chunk);
                            answer.extend_from_slice(b"\r\n");
                        }
                        answer.extend_from_slice(b"0\r\n\r\n");
                    } else {
                        answer.extend_from_slice(
                            format!("content-length: {}\r\n\r\n", body.len()).as_bytes(),
                        );
                        answer.extend_from_slice(&body);
                    }
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        let rack_ca = RackCa::new(vec![ca.der()]).unwrap();
        HttpSled::new(addr, sled(), &rack_ca, Duration::from_secs(10)).unwrap()
    }

    /// A valid fingerprint answer, padded with spaces (still valid JSON)
    /// to `len` bytes.
    fn fingerprint_answer(len: usize) -> Vec<u8> {
        let mut body =
            format!(r#"{{"epoch": 2, "fingerprint": "{}"}}"#, "ab".repeat(32)).into_bytes();
        body.resize(len, b' ');
        body
    }

    /// No answer is read past `MAX_RESPONSE_BODY_BYTES`, declared or
    /// chunked, from the generated calls or the metrics text; one just
    /// under it is read whole.
    #[tokio::test]
    async fn answers_are_read_only_up_to_the_limit() {
        let limit = MAX_RESPONSE_BODY_BYTES;
        for chunked in [false, true] {
            let sled = answering(fingerprint_answer(limit), chunked, "application/json").await;
            let print = sled
                .secret_fingerprint(Duration::from_secs(1))
                .await
                .unwrap();
            assert_eq!(print.epoch, tq_core::ids::Epoch(2));

            let sled = answering(fingerprint_answer(limit + 1), chunked, "application/json").await;
            let failure = sled
                .secret_fingerprint(Duration::from_secs(1))
                .await
                .unwrap_err();
            assert!(failure.to_string().contains("body"), "{failure}");

            let sled = answering(vec![b'#'; limit + 1], chunked, "text/plain").await;
            assert!(sled.metrics_text().await.is_err());
        }
    }

    #[test]
    fn traffic_sums_outgoing_frames_and_bytes_without_keepalives() {
        let text = "\
# TYPE tq_net_peer_frames_total counter
tq_net_peer_frames_total{peer=\"a:1\",direction=\"out\"} 3
tq_net_peer_frames_total{peer=\"a:1\",direction=\"in\"} 9
tq_net_peer_frames_total{peer=\"b:2\",direction=\"out\"} 4
tq_net_peer_bytes_total{peer=\"a:1\",direction=\"out\"} 1000
tq_net_peer_bytes_total{peer=\"b:2\",direction=\"out\"} 208
tq_net_peer_keepalives_total{peer=\"b:2\",direction=\"out\"} 2
";
        assert_eq!(
            traffic_in_metrics(text),
            Traffic {
                messages: 7,
                bytes: 1200
            }
        );
    }
}
