//! The HTTP API's implementation over a node handle, and the server that
//! runs it.

use std::net::SocketAddr;

use dropshot::{Body, ConfigDropshot, HandlerTaskMode, HttpError, RequestContext, ServerBuilder};
use http::Response;
use tq_std::handle::NodeHandle;

use crate::api::{SledApi, sled_api_mod};

/// Largest request body accepted, in bytes.
pub const MAX_REQUEST_BODY_BYTES: usize = 64 * 1024;

/// The trait's implementation (never constructed).
pub enum SledApiImpl {}

impl SledApi for SledApiImpl {
    type Context = NodeHandle;

    async fn metrics(rqctx: RequestContext<NodeHandle>) -> Result<Response<Body>, HttpError> {
        let snapshot = rqctx
            .context()
            .metrics()
            .await
            .map_err(|e| HttpError::for_unavail(None, e.to_string()))?;
        Response::builder()
            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(tq_std::metrics::render(&snapshot).into())
            .map_err(|e| HttpError::for_internal_error(e.to_string()))
    }
}

/// A running API server.
pub struct ApiServer {
    server: dropshot::HttpServer<NodeHandle>,
}

impl ApiServer {
    /// Starts serving the API for `handle` on `listen`.
    pub fn start(listen: SocketAddr, handle: NodeHandle) -> Result<Self, String> {
        let api = sled_api_mod::api_description::<SledApiImpl>().map_err(|e| e.to_string())?;
        let config = ConfigDropshot {
            bind_address: listen,
            default_request_body_max_bytes: MAX_REQUEST_BODY_BYTES,
            // A call on the node runs to its end even if the client goes.
            default_handler_task_mode: HandlerTaskMode::Detached,
            ..ConfigDropshot::default()
        };
        let log = slog::Logger::root(tracing_slog::TracingSlogDrain, slog::o!());
        let server = ServerBuilder::new(api, handle, log)
            .config(config)
            .start()
            .map_err(|e| e.to_string())?;
        Ok(Self { server })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops accepting connections and waits for the calls in progress.
    pub async fn stop(self) {
        if let Err(e) = self.server.close().await {
            tracing::warn!(error = %e, "API server close");
        }
    }
}
