//! The HTTP API's implementation over a node handle ([`SledApiImpl`]), and
//! the server that runs it ([`ApiServer`]).
//!
//! Each endpoint is one handle call: the node's answer is the response,
//! its refusal an [`ApiError`] with the core's error, and a shim failure
//! (`Unavailable`) an [`ApiError`] with its code. Handlers run detached
//! from their connection, so a client that goes away never cuts a node
//! call short.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dropshot::{
    Body, ConfigDropshot, HandlerTaskMode, HttpResponseOk, HttpResponseUpdatedNoContent,
    RequestContext, ServerBuilder, TypedBody,
};
use http::Response;
use tokio_rustls::rustls::ServerConfig;
use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::config::Configuration;
use tq_std::audit::SecretFor;
use tq_std::handle::{Answer, NodeHandle};

use crate::api::error::{ApiError, ErrorCode};
use crate::api::types::{
    ProxyCommitRequest, ProxyPrepareAndCommitRequest, ProxyStatusRequest, SecretFingerprint,
    SecretFingerprintRequest, SledStatus, deadline,
};
use crate::api::{SledApi, sled_api_mod};
use crate::error::ListenError;
use crate::front::Front;

/// Largest request body accepted, in bytes: four times the largest
/// request, a proxied prepare-and-commit of a full configuration,
/// pretty-printed, its ids all characters JSON escapes (12,203 bytes; a
/// test checks both ends).
pub const MAX_REQUEST_BODY_BYTES: usize = 48 * 1024;

/// The content type of `/metrics`: the Prometheus text format, as
/// [`tq_std::metrics::render`] writes it.
pub const METRICS_CONTENT_TYPE: &str = tq_std::metrics::CONTENT_TYPE;

/// The trait's implementation (never constructed).
pub enum SledApiImpl {}

/// A node call's outcome as an HTTP result: the shim's failure or the
/// node's refusal become the error.
#[allow(clippy::result_large_err)] // the handlers' error type, as `deadline`
fn answered<T, E>(answer: Answer<Result<T, E>>) -> Result<T, ApiError>
where
    ApiError: From<E>,
{
    answer?.map_err(ApiError::from)
}

impl SledApi for SledApiImpl {
    type Context = NodeHandle;

    async fn reconfigure(
        rqctx: RequestContext<NodeHandle>,
        body: TypedBody<ReconfigureMsg>,
    ) -> Result<HttpResponseOk<ReconfigureOutcome>, ApiError> {
        let answer = rqctx.context().reconfigure(body.into_inner()).await;
        answered(answer).map(HttpResponseOk)
    }

    async fn upgrade_from_lrtq(
        rqctx: RequestContext<NodeHandle>,
        body: TypedBody<LrtqUpgradeMsg>,
    ) -> Result<HttpResponseUpdatedNoContent, ApiError> {
        let answer = rqctx.context().upgrade_from_lrtq(body.into_inner()).await;
        answered(answer).map(|()| HttpResponseUpdatedNoContent())
    }

    async fn commit(
        rqctx: RequestContext<NodeHandle>,
        body: TypedBody<CommitRequest>,
    ) -> Result<HttpResponseOk<CommitOutcome>, ApiError> {
        let answer = rqctx.context().commit(body.into_inner()).await;
        answered(answer).map(HttpResponseOk)
    }

    async fn prepare_and_commit(
        rqctx: RequestContext<NodeHandle>,
        body: TypedBody<Configuration>,
    ) -> Result<HttpResponseOk<PrepareAndCommitOutcome>, ApiError> {
        let answer = rqctx.context().prepare_and_commit(body.into_inner()).await;
        answered(answer).map(HttpResponseOk)
    }

    async fn coordinator_status(
        rqctx: RequestContext<NodeHandle>,
    ) -> Result<HttpResponseOk<Option<CoordinatorStatus>>, ApiError> {
        Ok(HttpResponseOk(rqctx.context().coordinator_status().await?))
    }

    async fn status(
        rqctx: RequestContext<NodeHandle>,
    ) -> Result<HttpResponseOk<SledStatus>, ApiError> {
        let report = rqctx.context().status().await?;
        Ok(HttpResponseOk(report.into()))
    }

    async fn proxy_commit(
        rqctx: RequestContext<NodeHandle>,
        body: TypedBody<ProxyCommitRequest>,
    ) -> Result<HttpResponseOk<CommitOutcome>, ApiError> {
        let ProxyCommitRequest {
            target,
            deadline_ms,
            request,
        } = body.into_inner();
        let deadline = deadline(deadline_ms)?;
        let answer = rqctx
            .context()
            .proxy_commit(target, request, deadline)
            .await;
        answered(answer).map(HttpResponseOk)
    }

    async fn proxy_prepare_and_commit(
        rqctx: RequestContext<NodeHandle>,
        body: TypedBody<ProxyPrepareAndCommitRequest>,
    ) -> Result<HttpResponseOk<PrepareAndCommitOutcome>, ApiError> {
        let ProxyPrepareAndCommitRequest {
            target,
            deadline_ms,
            config,
        } = body.into_inner();
        let deadline = deadline(deadline_ms)?;
        let answer = rqctx
            .context()
            .proxy_prepare_and_commit(target, config, deadline)
            .await;
        answered(answer).map(HttpResponseOk)
    }

    async fn proxy_status(
        rqctx: RequestContext<NodeHandle>,
        body: TypedBody<ProxyStatusRequest>,
    ) -> Result<HttpResponseOk<NodeStatus>, ApiError> {
        let ProxyStatusRequest {
            target,
            deadline_ms,
        } = body.into_inner();
        let deadline = deadline(deadline_ms)?;
        let status = rqctx.context().proxy_status(target, deadline).await?;
        Ok(HttpResponseOk(status))
    }

    async fn secret_fingerprint(
        rqctx: RequestContext<NodeHandle>,
        body: TypedBody<SecretFingerprintRequest>,
    ) -> Result<HttpResponseOk<SecretFingerprint>, ApiError> {
        let deadline = deadline(body.into_inner().deadline_ms)?;
        let answer = rqctx
            .context()
            .load_latest_secret_for(deadline, SecretFor::NexusFingerprint)
            .await;
        let secret = answered(answer)?;
        Ok(HttpResponseOk(SecretFingerprint {
            epoch: secret.epoch(),
            fingerprint: hex::encode(secret.fingerprint()),
        }))
    }

    async fn metrics(rqctx: RequestContext<NodeHandle>) -> Result<Response<Body>, ApiError> {
        let snapshot = rqctx.context().metrics().await?;
        Response::builder()
            .header(http::header::CONTENT_TYPE, METRICS_CONTENT_TYPE)
            .body(tq_std::metrics::render(&snapshot).into())
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
    }
}

/// Why the API server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiStartError {
    /// The endpoints do not make a valid API (a bug, caught by tests).
    #[error("the API description is invalid")]
    Description(#[source] dropshot::ApiDescriptionBuildErrors),
    /// dropshot's server behind the front door did not start.
    #[error("the server behind the front door did not start")]
    Server(#[source] dropshot::BuildError),
    /// The front door could not listen where clients reach it.
    #[error(transparent)]
    Listen(ListenError),
}

/// A running API server: dropshot on loopback, behind the front door
/// ([`crate::front`]) that listens where clients reach it.
pub struct ApiServer {
    server: dropshot::HttpServer<NodeHandle>,
    front: Front,
}

impl ApiServer {
    /// Starts serving the API for `handle` on `listen` over TLS as `tls`
    /// configures it, closing a connection whose request has not come
    /// within `idle`. Must be called within a tokio runtime.
    pub fn start(
        listen: SocketAddr,
        tls: Arc<ServerConfig>,
        handle: NodeHandle,
        idle: Duration,
    ) -> Result<Self, ApiStartError> {
        let api =
            sled_api_mod::api_description::<SledApiImpl>().map_err(ApiStartError::Description)?;
        let config = ConfigDropshot {
            bind_address: crate::front::backend_listen(),
            default_request_body_max_bytes: MAX_REQUEST_BODY_BYTES,
            default_handler_task_mode: HandlerTaskMode::Detached,
            ..ConfigDropshot::default()
        };
        // dropshot logs through slog; its records join the tracing ones.
        let log = slog::Logger::root(tracing_slog::TracingSlogDrain, slog::o!());
        let server = ServerBuilder::new(api, handle.clone(), log)
            .config(config)
            .start()
            .map_err(ApiStartError::Server)?;
        let front = Front::start(listen, tls, server.local_addr(), idle, handle)
            .map_err(|source| ApiStartError::Listen(ListenError { listen, source }))?;
        Ok(Self { server, front })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.front.local_addr()
    }

    /// Stops accepting connections and waits for the calls in progress.
    pub async fn stop(self) {
        drop(self.front);
        if let Err(e) = self.server.close().await {
            tracing::warn!(error = %e, "API server close");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tq_core::config::{ConfigFields, Member};
    use tq_core::crypto::{EncryptedRackSecrets, ShareDigest};
    use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
    use tq_core::limits::{MAX_MEMBERS, MAX_SEALED_LEN, PLATFORM_ID_FIELD_LEN};

    /// The largest request: a proxied prepare-and-commit of a full
    /// configuration whose ids are all characters JSON escapes.
    #[test]
    fn the_largest_request_fits_the_body_limit() {
        let field = |i: usize| {
            // `"` is written `\"` in JSON: two bytes for one.
            let mut text: String = std::iter::repeat_n('"', PLATFORM_ID_FIELD_LEN - 2).collect();
            text.push_str(&format!("{i:02}"));
            text
        };
        let ids: Vec<PlatformId> = (0..MAX_MEMBERS)
            .map(|i| PlatformId::new(&field(i), &field(i)).unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        let members = sorted
            .iter()
            .map(|id| Member {
                id: id.clone(),
                share_digest: ShareDigest([0xab; 32]),
            })
            .collect();
        let config = Configuration::new(ConfigFields {
            rack_id: RackId([1; 16]),
            epoch: Epoch(u64::MAX),
            coordinator: sorted[0].clone(),
            members,
            threshold: Threshold::new(31).unwrap(),
            encrypted_rack_secrets: Some(
                EncryptedRackSecrets::from_parts([7; 32], &[9; MAX_SEALED_LEN]).unwrap(),
            ),
        })
        .unwrap();
        let request = ProxyPrepareAndCommitRequest {
            target: sorted[1].clone(),
            deadline_ms: crate::api::types::MAX_DEADLINE_MS,
            config,
        };
        let len = serde_json::to_vec_pretty(&request).unwrap().len();
        assert!(
            4 * len <= MAX_REQUEST_BODY_BYTES,
            "{len} bytes, pretty-printed"
        );
        assert!(
            5 * len > MAX_REQUEST_BODY_BYTES,
            "{len}: the limit could be lower"
        );
    }
}
