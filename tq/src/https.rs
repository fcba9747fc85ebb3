//! The client side of the API's HTTPS: the rack CA a client trusts
//! ([`RackCa`]) and the HTTP client that reaches one sled ([`sled_client`]).
//!
//! A client is made for one sled: its TLS configuration (tq-std's
//! `net::api_tls::client_config`) completes a handshake only with a
//! certificate of the rack CA naming that sled's platform id, so an answer
//! from any other certificate holder (another sled at a reused address, a
//! man in the middle) never reaches the caller. The listener's side is
//! [`crate::front`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::pki_types::CertificateDer;
use tq_core::ids::PlatformId;
use tq_std::net::TlsSetupError;
use tq_std::net::api_tls;
use tq_std::net::tls::certs_from_pem_file;

/// How long to wait for a TCP connection to a sled's API.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The rack CA certificate(s): the only trust anchors of the API's
/// clients. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RackCa(Arc<[CertificateDer<'static>]>);

/// Why the rack CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RackCaError {
    /// It could not be read, or is not PEM.
    #[error(transparent)]
    Read(TlsSetupError),
    /// It holds no certificate.
    #[error("{}: no certificate in the file", .0.display())]
    Empty(PathBuf),
}

impl RackCa {
    /// Reads the PEM file at `path`; at least one certificate.
    pub fn load(path: &Path) -> Result<Self, RackCaError> {
        let certs = certs_from_pem_file(path).map_err(RackCaError::Read)?;
        Self::new(certs).ok_or_else(|| RackCaError::Empty(path.to_owned()))
    }

    /// These certificates; `None` if there are none.
    pub fn new(certs: Vec<CertificateDer<'static>>) -> Option<Self> {
        (!certs.is_empty()).then(|| Self(certs.into()))
    }

    /// The certificates.
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.0
    }
}

/// The HTTP client of one sled could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Its TLS configuration (a rack CA certificate rustls refuses).
    #[error("TLS configuration")]
    Tls(#[source] TlsSetupError),
    /// The HTTP client itself (the system's resolver configuration).
    #[error("HTTP client")]
    Http(#[source] reqwest::Error),
}

/// An HTTPS client that reaches only sled `expected`, verified under
/// `rack_ca`; every request gives up after `timeout`. HTTPS only: an
/// `http://` URL is refused.
pub fn sled_client(
    rack_ca: &RackCa,
    expected: PlatformId,
    timeout: Duration,
) -> Result<reqwest::Client, ClientError> {
    let tls = api_tls::client_config(rack_ca.certs(), expected).map_err(ClientError::Tls)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .https_only(true)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .map_err(ClientError::Http)
}

/// The base URL of the API listening at `addr`.
pub fn base_url(addr: SocketAddr) -> String {
    format!("https://{addr}")
}
