//! A sled reached over its HTTP API: the Nexus driver's [`SledApi`] over
//! the generated client ([`crate::client::Client`]).
//!
//! Each Nexus call sends Nexus's authenticator in its body and reads the
//! node's tag beside the answer ([`Tagged`]), for the driver to check. A
//! node's own refusal comes back as an error response whose body holds
//! the core's error (`refusal`) and the node's tag of it (`answer_tag`):
//! it is handed on as the node's answer, the very value an in-process
//! sled gives. A refusal of the authenticator is a [`CallFailure`] of kind
//! [`FailureKind::RequestRefused`]; any other error response (busy, not
//! stored, a proxy's target not connected...), a transport failure or an
//! answer that does not decode is a [`CallFailure`] too: the machine is
//! told the sled is unreachable.

use std::net::SocketAddr;
use std::time::Duration;

use progenitor_client::{ClientInfo, Error, ResponseValue};
use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LoadSecretError, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome, SecretFingerprint,
};
use tq_core::authority::{AnswerTag, LatestSecretQuery, RequestAuth};
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_driver::{Authority, Authorized, CallFailure, FailureKind, Reply, SledApi, Tagged};

use crate::api::error::{ApiError, ErrorCode, Refusal};
use crate::api::types::{
    CommitBody, CoordinatorStatusBody, PrepareAndCommitBody, ProxyCommitRequest,
    ProxyPrepareAndCommitRequest, ProxyStatusRequest, ReconfigureBody, SecretFingerprintRequest,
    SledStatus, UpgradeFromLrtqBody,
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
    /// `deadline` for the shares, or the node's refusal; `auth` is Nexus's
    /// authenticator of the load (a `LatestSecretQuery`) for this sled.
    /// Tagged, for the caller to check.
    pub async fn secret_fingerprint(
        &self,
        auth: RequestAuth,
        deadline: Duration,
    ) -> Reply<Tagged<Result<SecretFingerprint, LoadSecretError>>> {
        let request = SecretFingerprintRequest {
            deadline_ms: millis(deadline),
            auth: Some(auth),
        };
        refusable(
            self.client.secret_fingerprint(&request).await,
            |a| (a.answer, a.tag),
            load_secret_refusal,
        )
    }

    /// [`Self::secret_fingerprint`] asked as Nexus asks it: under
    /// `authority`'s authenticator for sled `id` (this sled), the answer
    /// taken only if its tag checks.
    pub async fn checked_fingerprint(
        &self,
        authority: &Authority,
        id: &PlatformId,
        deadline: Duration,
    ) -> Reply<Result<SecretFingerprint, LoadSecretError>> {
        let Authorized { auth, check } = authority.authorize(id, &LatestSecretQuery)?;
        let tagged = self.secret_fingerprint(auth, deadline).await?;
        check.accept(tagged)
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
                ErrorCode::Unauthenticated
                | ErrorCode::BadTag
                | ErrorCode::ForeignRack
                | ErrorCode::WrongTarget
                | ErrorCode::NoRequestKey => FailureKind::RequestRefused,
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

/// A tagged answer (`split` takes it apart) whose refusal `pick`
/// recognizes as the node's own error, tagged by the node: what the driver
/// checks.
fn refusable<A, T, E>(
    result: Result<ResponseValue<A>, Error<ApiError>>,
    split: impl FnOnce(A) -> (T, AnswerTag),
    pick: impl FnOnce(Refusal) -> Option<E>,
) -> Reply<Tagged<Result<T, E>>> {
    match result {
        Ok(value) => {
            let (answer, tag) = split(value.into_inner());
            Ok(Tagged {
                answer: Ok(answer),
                tag,
            })
        }
        Err(Error::ErrorResponse(response))
            if response
                .refusal
                .as_deref()
                .is_some_and(|r| !matches!(r, Refusal::Request(_))) =>
        {
            let status = response.status();
            let body = response.into_inner();
            let message = body.message.clone();
            let Some(tag) = body.answer_tag else {
                return Err(CallFailure::new(
                    FailureKind::AnswerUnauthenticated,
                    format!("{status}: a refusal without the node's tag: {message}"),
                ));
            };
            match body.refusal.and_then(|refusal| pick(*refusal)) {
                Some(error) => Ok(Tagged {
                    answer: Err(error),
                    tag,
                }),
                None => Err(CallFailure::new(
                    FailureKind::BadAnswer,
                    format!("{status}: a refusal of another call: {message}"),
                )),
            }
        }
        Err(error) => Err(failure(error)),
    }
}

/// A tagged answer that is never a refusal of the node's own.
fn tagged<A, T>(
    result: Result<ResponseValue<A>, Error<ApiError>>,
    split: impl FnOnce(A) -> (T, AnswerTag),
) -> Reply<Tagged<T>> {
    let (answer, tag) = split(plain(result)?);
    Ok(Tagged { answer, tag })
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

fn load_secret_refusal(r: Refusal) -> Option<LoadSecretError> {
    match r {
        Refusal::LoadSecret(e) => Some(e),
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
        auth: RequestAuth,
        msg: ReconfigureMsg,
    ) -> Reply<Tagged<Result<ReconfigureOutcome, ReconfigureError>>> {
        let body = ReconfigureBody {
            auth: Some(auth),
            request: msg,
        };
        refusable(
            self.client.reconfigure(&body).await,
            |a| (a.answer, a.tag),
            reconfigure_refusal,
        )
    }

    async fn upgrade_from_lrtq(
        &self,
        auth: RequestAuth,
        msg: LrtqUpgradeMsg,
    ) -> Reply<Tagged<Result<(), LrtqUpgradeError>>> {
        let body = UpgradeFromLrtqBody {
            auth: Some(auth),
            request: msg,
        };
        refusable(
            self.client.upgrade_from_lrtq(&body).await,
            |a| ((), a.tag),
            upgrade_refusal,
        )
    }

    async fn commit(
        &self,
        auth: RequestAuth,
        request: CommitRequest,
    ) -> Reply<Tagged<Result<CommitOutcome, CommitError>>> {
        let body = CommitBody {
            auth: Some(auth),
            request,
        };
        refusable(
            self.client.commit(&body).await,
            |a| (a.answer, a.tag),
            commit_refusal,
        )
    }

    async fn prepare_and_commit(
        &self,
        auth: RequestAuth,
        config: Configuration,
    ) -> Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        let body = PrepareAndCommitBody {
            auth: Some(auth),
            request: config,
        };
        refusable(
            self.client.prepare_and_commit(&body).await,
            |a| (a.answer, a.tag),
            prepare_and_commit_refusal,
        )
    }

    async fn coordinator_status(
        &self,
        auth: RequestAuth,
    ) -> Reply<Tagged<Option<CoordinatorStatus>>> {
        let body = CoordinatorStatusBody { auth: Some(auth) };
        tagged(self.client.coordinator_status(&body).await, |a| {
            (a.answer, a.tag)
        })
    }

    async fn status(&self) -> Reply<NodeStatus> {
        self.sled_status().await.map(|status| status.node)
    }

    async fn proxy_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        request: CommitRequest,
        deadline: Duration,
    ) -> Reply<Tagged<Result<CommitOutcome, CommitError>>> {
        let body = ProxyCommitRequest {
            target: to,
            deadline_ms: millis(deadline),
            auth: Some(auth),
            request,
        };
        refusable(
            self.client.proxy_commit(&body).await,
            |a| (a.answer, a.tag),
            commit_refusal,
        )
    }

    async fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        config: Configuration,
        deadline: Duration,
    ) -> Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        let body = ProxyPrepareAndCommitRequest {
            target: to,
            deadline_ms: millis(deadline),
            auth: Some(auth),
            config,
        };
        refusable(
            self.client.proxy_prepare_and_commit(&body).await,
            |a| (a.answer, a.tag),
            prepare_and_commit_refusal,
        )
    }

    async fn proxy_status(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        deadline: Duration,
    ) -> Reply<Tagged<NodeStatus>> {
        let body = ProxyStatusRequest {
            target: to,
            deadline_ms: millis(deadline),
            auth: Some(auth),
        };
        tagged(self.client.proxy_status(&body).await, |a| (a.answer, a.tag))
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

    /// An authenticator (what it holds does not matter to these servers).
    fn any_auth() -> RequestAuth {
        RequestAuth {
            rack_id: tq_core::ids::RackId([1; 16]),
            target: PlatformId::new("p", "s").unwrap(),
            nonce: [2; 16],
            tag: [3; 32],
        }
    }

    /// A valid fingerprint answer, padded with spaces (still valid JSON)
    /// to `len` bytes.
    fn fingerprint_answer(len: usize) -> Vec<u8> {
        let mut body = format!(
            r#"{{"answer": {{"epoch": 2, "fingerprint": "{}"}}, "tag": "{}"}}"#,
            "ab".repeat(32),
            "cd".repeat(32)
        )
        .into_bytes();
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
                .secret_fingerprint(any_auth(), Duration::from_secs(1))
                .await
                .unwrap();
            assert_eq!(print.answer.unwrap().epoch, tq_core::ids::Epoch(2));

            let sled = answering(fingerprint_answer(limit + 1), chunked, "application/json").await;
            let failure = sled
                .secret_fingerprint(any_auth(), Duration::from_secs(1))
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
