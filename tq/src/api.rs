//! The sled's HTTP API, declared as a dropshot trait: the endpoints, their
//! request and answer types, and the OpenAPI document generated from it.

use dropshot::{Body, HttpError, RequestContext};
use http::Response;

/// The API's version, in the OpenAPI document.
pub const API_VERSION: semver::Version = semver::Version::new(1, 0, 0);

/// The sled's HTTP API.
#[dropshot::api_description]
pub trait SledApi {
    /// The server's state.
    type Context;

    /// Every counter of the node in the Prometheus text exposition format
    /// (version 0.0.4).
    #[endpoint { method = GET, path = "/metrics" }]
    async fn metrics(rqctx: RequestContext<Self::Context>) -> Result<Response<Body>, HttpError>;
}

/// The OpenAPI document, generated from the trait without a server.
pub fn openapi() -> Result<serde_json::Value, String> {
    let description = sled_api_mod::stub_api_description()
        .map_err(|errors| format!("the API description is invalid: {errors}"))?;
    description
        .openapi("Trust quorum sled API", API_VERSION)
        .json()
        .map_err(|e| format!("the OpenAPI document does not serialize: {e}"))
}
