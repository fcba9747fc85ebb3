//! The HTTP API's implementation over a node handle ([`SledApiImpl`]), and
//! the server that runs it ([`ApiServer`]).
//!
//! Each endpoint is one handle call: the node's answer is the response,
//! its refusal an [`ApiError`] with the core's error, and a shim failure
//! (`Unavailable`) an [`ApiError`] with its code. Handlers run detached
//! from their connection, so a client that goes away never cuts a node
//! call short.
//!
//! Every Nexus call (all but `status` and `metrics`) must carry Nexus's
//! authenticator: without one it is refused here, before the node
//! (`unauthenticated`, counted in [`ApiCounters`]); with one, the node
//! checks it (the core's `RequestRefusal`, as its own code) and tags its
//! answer, refusals included, which this layer only passes on. A proxy
//! passes the authenticator and the target's tag through untouched: it
//! can alter neither.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dropshot::{
    Body, ConfigDropshot, HandlerTaskMode, HttpResponseOk, RequestContext, ServerBuilder, TypedBody,
};
use http::Response;
use tokio_rustls::rustls::ServerConfig;
use tq_core::authority::{AnswerTag, NexusCall, RequestAuth};
use tq_core::ids::Epoch;
use tq_std::audit::AuditEvent;
use tq_std::handle::{Answer, NodeHandle, Tagged};

use crate::api::error::{ApiError, ErrorCode};
use crate::api::types::{
    CommitAnswer, CommitBody, CoordinatorStatusAnswer, CoordinatorStatusBody, NodeStatusAnswer,
    PrepareAndCommitAnswer, PrepareAndCommitBody, ProxyCommitRequest, ProxyPrepareAndCommitRequest,
    ProxyStatusRequest, ReconfigureAnswer, ReconfigureBody, SecretFingerprintAnswer,
    SecretFingerprintRequest, SledStatus, UpgradeFromLrtqAnswer, UpgradeFromLrtqBody, deadline,
};
use crate::api::{SledApi, sled_api_mod};
use crate::error::ListenError;
use crate::front::Front;

/// Largest request body accepted, in bytes: four times the largest
/// request, a proxied prepare-and-commit of a full configuration with its
/// authenticator, pretty-printed, its ids all characters JSON escapes
/// (12,600 bytes; a test checks both ends).
pub const MAX_REQUEST_BODY_BYTES: usize = 52 * 1024;

/// The content type of `/metrics`: the Prometheus text format, as
/// [`tq_std::metrics::render`] writes it.
pub const METRICS_CONTENT_TYPE: &str = tq_std::metrics::CONTENT_TYPE;

/// What this layer counts itself: Nexus calls refused before the node.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// Nexus calls without an authenticator (`unauthenticated`).
    pub unauthenticated: AtomicU64,
}

impl ApiCounters {
    /// The counters in the Prometheus text format, to follow the node's.
    pub fn render(&self) -> String {
        format!(
            "# HELP tq_api_unauthenticated Nexus calls refused by the API for want of an authenticator.\n\
             # TYPE tq_api_unauthenticated counter\n\
             tq_api_unauthenticated_total {}\n",
            self.unauthenticated.load(Ordering::Relaxed)
        )
    }
}

/// The server's state: the node's handle and this layer's counters.
pub struct ApiContext {
    /// The node.
    pub handle: NodeHandle,
    /// What the API counts.
    pub counters: ApiCounters,
}

/// The trait's implementation (never constructed).
pub enum SledApiImpl {}

/// The authenticator a Nexus call must carry; `unauthenticated` (counted)
/// without one.
#[allow(clippy::result_large_err)] // the handlers' error type, as `deadline`
/// The call's authenticator; without one the call is refused here,
/// counted and audited (`call`, and the epoch it names if any), before the
/// node sees it.
async fn required(
    context: &ApiContext,
    auth: Option<RequestAuth>,
    call: NexusCall,
    epoch: Option<Epoch>,
) -> Result<RequestAuth, ApiError> {
    if let Some(auth) = auth {
        return Ok(auth);
    }
    context
        .counters
        .unauthenticated
        .fetch_add(1, Ordering::Relaxed);
    const WHY: &str = "a Nexus call must carry Nexus's authenticator (`auth`)";
    let refused: Result<(), &str> = Err(WHY);
    let event = AuditEvent::nexus_request(call, epoch.map(|e| e.0), None, Ok(&refused));
    // A log that takes no record is the audit's own failure, counted there;
    // the call is refused either way.
    let _ = context.handle.audit(event).await;
    Err(ApiError::new(ErrorCode::Unauthenticated, WHY))
}

/// A Nexus call's outcome as an HTTP result: the shim's failure or the
/// node's refusal of the request's authenticator (`Unavailable::Refused`)
/// become the error, and so does the node's refusal of the call, with the
/// node's tag; the answer comes with its tag.
#[allow(clippy::result_large_err)]
fn answered<T, E>(answer: Answer<Tagged<Result<T, E>>>) -> Result<(T, AnswerTag), ApiError>
where
    ApiError: From<E>,
{
    let Tagged { answer, tag } = answer?;
    match answer {
        Ok(value) => Ok((value, tag)),
        Err(refusal) => Err(ApiError::from(refusal).tagged(tag)),
    }
}

/// A Nexus call the node never refuses once its authenticator checks.
#[allow(clippy::result_large_err)]
fn plain<T>(answer: Answer<Tagged<T>>) -> Result<(T, AnswerTag), ApiError> {
    let Tagged { answer, tag } = answer?;
    Ok((answer, tag))
}

impl SledApi for SledApiImpl {
    type Context = ApiContext;

    async fn reconfigure(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<ReconfigureBody>,
    ) -> Result<HttpResponseOk<ReconfigureAnswer>, ApiError> {
        let context = rqctx.context();
        let ReconfigureBody { auth, request } = body.into_inner();
        let auth = required(context, auth, NexusCall::Reconfigure, Some(request.epoch)).await?;
        let (answer, tag) = answered(context.handle.reconfigure(auth, request).await)?;
        Ok(HttpResponseOk(ReconfigureAnswer { answer, tag }))
    }

    async fn upgrade_from_lrtq(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<UpgradeFromLrtqBody>,
    ) -> Result<HttpResponseOk<UpgradeFromLrtqAnswer>, ApiError> {
        let context = rqctx.context();
        let UpgradeFromLrtqBody { auth, request } = body.into_inner();
        let epoch = Some(request.epoch);
        let auth = required(context, auth, NexusCall::UpgradeFromLrtq, epoch).await?;
        let ((), tag) = answered(context.handle.upgrade_from_lrtq(auth, request).await)?;
        Ok(HttpResponseOk(UpgradeFromLrtqAnswer { tag }))
    }

    async fn commit(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<CommitBody>,
    ) -> Result<HttpResponseOk<CommitAnswer>, ApiError> {
        let context = rqctx.context();
        let CommitBody { auth, request } = body.into_inner();
        let auth = required(context, auth, NexusCall::Commit, Some(request.epoch)).await?;
        let (answer, tag) = answered(context.handle.commit(auth, request).await)?;
        Ok(HttpResponseOk(CommitAnswer { answer, tag }))
    }

    async fn prepare_and_commit(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<PrepareAndCommitBody>,
    ) -> Result<HttpResponseOk<PrepareAndCommitAnswer>, ApiError> {
        let context = rqctx.context();
        let PrepareAndCommitBody { auth, request } = body.into_inner();
        let epoch = Some(request.epoch());
        let auth = required(context, auth, NexusCall::PrepareAndCommit, epoch).await?;
        let (answer, tag) = answered(context.handle.prepare_and_commit(auth, request).await)?;
        Ok(HttpResponseOk(PrepareAndCommitAnswer { answer, tag }))
    }

    async fn coordinator_status(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<CoordinatorStatusBody>,
    ) -> Result<HttpResponseOk<CoordinatorStatusAnswer>, ApiError> {
        let context = rqctx.context();
        let auth = body.into_inner().auth;
        let auth = required(context, auth, NexusCall::CoordinatorStatus, None).await?;
        let (answer, tag) = plain(context.handle.coordinator_status(auth).await)?;
        Ok(HttpResponseOk(CoordinatorStatusAnswer { answer, tag }))
    }

    async fn status(
        rqctx: RequestContext<ApiContext>,
    ) -> Result<HttpResponseOk<SledStatus>, ApiError> {
        let report = rqctx.context().handle.status().await?;
        Ok(HttpResponseOk(report.into()))
    }

    async fn proxy_commit(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<ProxyCommitRequest>,
    ) -> Result<HttpResponseOk<CommitAnswer>, ApiError> {
        let context = rqctx.context();
        let ProxyCommitRequest {
            target,
            deadline_ms,
            auth,
            request,
        } = body.into_inner();
        let auth = required(context, auth, NexusCall::Commit, Some(request.epoch)).await?;
        let deadline = deadline(deadline_ms)?;
        let answer = context
            .handle
            .proxy_commit(target, auth, request, deadline)
            .await;
        let (answer, tag) = answered(answer)?;
        Ok(HttpResponseOk(CommitAnswer { answer, tag }))
    }

    async fn proxy_prepare_and_commit(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<ProxyPrepareAndCommitRequest>,
    ) -> Result<HttpResponseOk<PrepareAndCommitAnswer>, ApiError> {
        let context = rqctx.context();
        let ProxyPrepareAndCommitRequest {
            target,
            deadline_ms,
            auth,
            config,
        } = body.into_inner();
        let epoch = Some(config.epoch());
        let auth = required(context, auth, NexusCall::PrepareAndCommit, epoch).await?;
        let deadline = deadline(deadline_ms)?;
        let answer = context
            .handle
            .proxy_prepare_and_commit(target, auth, config, deadline)
            .await;
        let (answer, tag) = answered(answer)?;
        Ok(HttpResponseOk(PrepareAndCommitAnswer { answer, tag }))
    }

    async fn proxy_status(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<ProxyStatusRequest>,
    ) -> Result<HttpResponseOk<NodeStatusAnswer>, ApiError> {
        let context = rqctx.context();
        let ProxyStatusRequest {
            target,
            deadline_ms,
            auth,
        } = body.into_inner();
        let auth = required(context, auth, NexusCall::NodeStatus, None).await?;
        let deadline = deadline(deadline_ms)?;
        let (answer, tag) = plain(context.handle.proxy_status(target, auth, deadline).await)?;
        Ok(HttpResponseOk(NodeStatusAnswer { answer, tag }))
    }

    async fn secret_fingerprint(
        rqctx: RequestContext<ApiContext>,
        body: TypedBody<SecretFingerprintRequest>,
    ) -> Result<HttpResponseOk<SecretFingerprintAnswer>, ApiError> {
        let context = rqctx.context();
        let SecretFingerprintRequest { deadline_ms, auth } = body.into_inner();
        let auth = required(context, auth, NexusCall::LoadLatestSecret, None).await?;
        let deadline = deadline(deadline_ms)?;
        let Tagged { answer, tag } = context.handle.load_latest_secret(auth, deadline).await?;
        // What the node tagged: the epoch and fingerprint, never the secret.
        let (answer, tag) = answered(Ok(Tagged {
            answer: tq_std::secrets::fingerprint_answer(&answer),
            tag,
        }))?;
        Ok(HttpResponseOk(SecretFingerprintAnswer { answer, tag }))
    }

    async fn metrics(rqctx: RequestContext<ApiContext>) -> Result<Response<Body>, ApiError> {
        let context = rqctx.context();
        let snapshot = context.handle.metrics().await?;
        let mut text = tq_std::metrics::render(&snapshot);
        text.push_str(&context.counters.render());
        Response::builder()
            .header(http::header::CONTENT_TYPE, METRICS_CONTENT_TYPE)
            .body(text.into())
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
    server: dropshot::HttpServer<ApiContext>,
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
        let context = ApiContext {
            handle: handle.clone(),
            counters: ApiCounters::default(),
        };
        let server = ServerBuilder::new(api, context, log)
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
    use tq_core::config::{ConfigFields, Configuration, Member};
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
            auth: Some(RequestAuth {
                rack_id: RackId([1; 16]),
                target: sorted[1].clone(),
                nonce: [0xff; 16],
                tag: [0xff; 32],
            }),
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
