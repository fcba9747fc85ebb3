//! The sled's HTTP API, declared as a dropshot trait ([`SledApi`]): the
//! endpoints, their request and answer types, their errors, and the
//! OpenAPI document generated from the trait ([`openapi`]).
//!
//! Requests and answers are the core's own types in their serde JSON form
//! (`tq_core::api`, with the `host` feature), described by their JSON
//! Schemas (tq-core's `schema` feature); [`types`] adds the few the core
//! has no single type for. Every error is an [`error::ApiError`].
//!
//! No answer carries a secret or a share: the node's status is the core's
//! `NodeStatus` (which holds none), and a loaded secret leaves only as its
//! epoch and fingerprint.

pub mod error;
pub mod types;

use dropshot::{Body, HttpResponseOk, RequestContext, TypedBody};
use http::Response;

use error::ApiError;
use types::{
    CommitAnswer, CommitBody, CoordinatorStatusAnswer, CoordinatorStatusBody, NodeStatusAnswer,
    PrepareAndCommitAnswer, PrepareAndCommitBody, ProxyCommitRequest, ProxyPrepareAndCommitRequest,
    ProxyStatusRequest, ReconfigureAnswer, ReconfigureBody, SecretFingerprintAnswer,
    SecretFingerprintRequest, SledStatus, UpgradeFromLrtqAnswer, UpgradeFromLrtqBody,
};

/// The API's version, in the OpenAPI document and the paths (`/v1/...`).
pub const API_VERSION: semver::Version = semver::Version::new(1, 0, 0);

/// The document's title.
pub const API_TITLE: &str = "Trust quorum sled API";

/// The sled's HTTP API.
///
/// Every call but `status` and `metrics` is Nexus's: its body carries
/// Nexus's authenticator (`auth`) for the sled that runs it, which that
/// sled's node checks before it acts, and its answer carries that node's
/// tag, which Nexus checks before it acts.
#[dropshot::api_description]
pub trait SledApi {
    /// The server's state.
    type Context;

    /// Coordinate a reconfiguration to a new epoch
    /// (`coordinate_reconfiguration`).
    #[endpoint { method = POST, path = "/v1/reconfigure" }]
    async fn reconfigure(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<ReconfigureBody>,
    ) -> Result<HttpResponseOk<ReconfigureAnswer>, ApiError>;

    /// Coordinate the upgrade of an LRTQ rack (`coordinate_upgrade_from_lrtq`).
    #[endpoint { method = POST, path = "/v1/upgrade-from-lrtq" }]
    async fn upgrade_from_lrtq(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<UpgradeFromLrtqBody>,
    ) -> Result<HttpResponseOk<UpgradeFromLrtqAnswer>, ApiError>;

    /// Nexus committed an epoch (`commit_configuration`).
    #[endpoint { method = POST, path = "/v1/commit" }]
    async fn commit(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<CommitBody>,
    ) -> Result<HttpResponseOk<CommitAnswer>, ApiError>;

    /// Store and commit a configuration this sled did not prepare
    /// (`prepare_and_commit`).
    #[endpoint { method = POST, path = "/v1/prepare-and-commit" }]
    async fn prepare_and_commit(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<PrepareAndCommitBody>,
    ) -> Result<HttpResponseOk<PrepareAndCommitAnswer>, ApiError>;

    /// The coordination running here, if any (`null` when none).
    #[endpoint { method = POST, path = "/v1/coordinator-status" }]
    async fn coordinator_status(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<CoordinatorStatusBody>,
    ) -> Result<HttpResponseOk<CoordinatorStatusAnswer>, ApiError>;

    /// The node's status, its ledger's health and its peer connections.
    #[endpoint { method = GET, path = "/v1/status" }]
    async fn status(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<SledStatus>, ApiError>;

    /// `commit_configuration` on another sled, through this one.
    #[endpoint { method = POST, path = "/v1/proxy/commit" }]
    async fn proxy_commit(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<ProxyCommitRequest>,
    ) -> Result<HttpResponseOk<CommitAnswer>, ApiError>;

    /// `prepare_and_commit` on another sled, through this one.
    #[endpoint { method = POST, path = "/v1/proxy/prepare-and-commit" }]
    async fn proxy_prepare_and_commit(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<ProxyPrepareAndCommitRequest>,
    ) -> Result<HttpResponseOk<PrepareAndCommitAnswer>, ApiError>;

    /// The node status of another sled, through this one.
    #[endpoint { method = POST, path = "/v1/proxy/status" }]
    async fn proxy_status(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<ProxyStatusRequest>,
    ) -> Result<HttpResponseOk<NodeStatusAnswer>, ApiError>;

    /// Load the latest committed epoch's secret (waiting up to the deadline
    /// for shares) and answer only its epoch and fingerprint.
    #[endpoint { method = POST, path = "/v1/secret/fingerprint" }]
    async fn secret_fingerprint(
        rqctx: RequestContext<Self::Context>,
        body: TypedBody<SecretFingerprintRequest>,
    ) -> Result<HttpResponseOk<SecretFingerprintAnswer>, ApiError>;

    /// Every counter of the node in the Prometheus text exposition format
    /// (version 0.0.4).
    #[endpoint { method = GET, path = "/metrics" }]
    async fn metrics(rqctx: RequestContext<Self::Context>) -> Result<Response<Body>, ApiError>;
}

/// Why the OpenAPI document could not be made (a bug in the API's
/// declaration, caught by the `openapi` test).
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// The endpoints do not make a valid API.
    #[error("the API description is invalid")]
    Description(#[source] dropshot::ApiDescriptionBuildErrors),
    /// The document does not serialize.
    #[error("the OpenAPI document does not serialize")]
    Json(#[source] serde_json::Error),
}

/// The OpenAPI document, generated from the trait without a server.
pub fn openapi() -> Result<serde_json::Value, OpenApiError> {
    let description = sled_api_mod::stub_api_description().map_err(OpenApiError::Description)?;
    description
        .openapi(API_TITLE, API_VERSION)
        .description("One sled's trust quorum node: what Nexus calls, and what an operator reads.")
        .json()
        .map_err(OpenApiError::Json)
}

/// The OpenAPI document as committed: pretty JSON with a final newline.
pub fn openapi_text() -> Result<String, OpenApiError> {
    let document = openapi()?;
    let mut text = serde_json::to_string_pretty(&document).map_err(OpenApiError::Json)?;
    text.push('\n');
    Ok(text)
}
