//! TLS 1.3 with mutual authentication under the rack CA.
//!
//! Both sides present a certificate chaining to the rack CA and naming a
//! platform id ([`super::identity`]). The listener verifies the dialer's
//! certificate with rustls's `WebPkiClientVerifier` (chain, signatures,
//! client-auth key usage) and then the accept policy on its platform id
//! (known peer, allowed to dial us). The dialer verifies the listener's
//! certificate chain (server-auth key usage) and that it names exactly the
//! peer it meant to reach; DNS names and IP addresses in the certificate
//! are not used. A refusal at either end fails the handshake. Both judge
//! validity periods as of the leaf's issuance, not the sled's clock
//! (`net::validity`).
//!
//! Then both check the peer's measurements against the rack's reference
//! measurements (`net::attestation`).
//!
//! Session resumption is off on both sides (no session cache, no tickets
//! sent or used): a resumed session would skip the verifiers, so a peer
//! removed from the peer set could come back on an earlier session.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore,
    SignatureScheme,
};
use tq_core::ids::PlatformId;

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;

use super::attestation::Checker;
use super::identity::{IdentityError, platform_id_of_cert};
use super::stats::HandshakeRefusal;
use super::tls_conn::HandshakeError;
use super::validity::verification_time;

/// The rack CA, this sled's certificate chain and its private key.
pub struct TlsIdentity {
    /// Certificates of the rack CA: the only trust anchors.
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// This sled's certificate first, then any intermediates.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// This sled's private key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsIdentity")
            .field("ca_certs", &self.ca_certs.len())
            .field("cert_chain", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}

/// Why the TLS setup failed.
#[derive(Debug)]
pub enum TlsSetupError {
    /// A PEM file could not be read or parsed.
    Pem(String, rustls::pki_types::pem::Error),
    /// The certificate chain is empty.
    NoCertificate,
    /// This sled's certificate names no valid platform id.
    Identity(IdentityError),
    /// rustls refused the configuration (bad key, CA certificate...).
    Rustls(rustls::Error),
    /// The client verifier could not be built from the CA certificates.
    Verifier(rustls::server::VerifierBuilderError),
}

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pem(path, e) => write!(f, "{path}: {e}"),
            Self::NoCertificate => f.write_str("no certificate in the chain"),
            Self::Identity(e) => write!(f, "own certificate: {e}"),
            Self::Rustls(e) => write!(f, "TLS configuration: {e}"),
            Self::Verifier(e) => write!(f, "rack CA: {e}"),
        }
    }
}

impl std::error::Error for TlsSetupError {}

impl TlsIdentity {
    /// Reads the rack CA, the sled's chain and its key from PEM files.
    pub fn from_pem_files(ca: &Path, chain: &Path, key: &Path) -> Result<Self, TlsSetupError> {
        Ok(Self {
            ca_certs: certs_from_pem_file(ca)?,
            cert_chain: certs_from_pem_file(chain)?,
            key: PrivateKeyDer::from_pem_file(key).map_err(pem_err(key))?,
        })
    }

    /// The platform id this sled's certificate names.
    pub fn platform_id(&self) -> Result<PlatformId, TlsSetupError> {
        let leaf = self
            .cert_chain
            .first()
            .ok_or(TlsSetupError::NoCertificate)?;
        platform_id_of_cert(leaf).map_err(TlsSetupError::Identity)
    }
}

fn pem_err(path: &Path) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsSetupError {
    let path = path.display().to_string();
    move |e| TlsSetupError::Pem(path, e)
}

/// Every certificate of a PEM file, in order (none if it holds none).
pub fn certs_from_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(pem_err(path))
}

/// The crypto provider of every TLS configuration: aws-lc-rs, the
/// provider with the hybrid post-quantum key exchange (X25519MLKEM768,
/// preferred), since key shares cross the peer network and must stay
/// secret long after a recorded session.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rack CA certificates as rustls's trust anchors.
pub(crate) fn rack_roots(
    ca_certs: &[CertificateDer<'static>],
) -> Result<Arc<RootCertStore>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for ca in ca_certs {
        roots.add(ca.clone()).map_err(TlsSetupError::Rustls)?;
    }
    Ok(Arc::new(roots))
}

/// Turns session resumption off on a listener: no session is stored and
/// no ticket is sent (the default ticketer makes no stateless tickets
/// either), so every handshake goes through the verifiers.
pub(crate) fn no_server_resumption(server: &mut rustls::ServerConfig) {
    server.session_storage = Arc::new(NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
}

/// A refusal by our own checks, carried through rustls inside
/// `CertificateError::Other` so the handshake fails with an alert and the
/// reason can be counted.
#[derive(Debug)]
pub(crate) struct PeerRefused(pub HandshakeRefusal);

impl std::fmt::Display for PeerRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer refused: {}", self.0.label())
    }
}

impl std::error::Error for PeerRefused {}

fn refuse(reason: HandshakeRefusal) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(PeerRefused(
        reason,
    )))))
}

/// Decides whether a verified certificate's platform id may dial us.
pub(crate) type AcceptPolicy =
    Arc<dyn Fn(&PlatformId) -> Result<(), HandshakeRefusal> + Send + Sync>;

/// The TLS side of the network: one acceptor, a connector per dial.
pub(crate) struct Tls {
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    server: Arc<rustls::ServerConfig>,
    pub(crate) attestation: Arc<Checker>,
}

impl Tls {
    pub(crate) fn new(
        identity: &TlsIdentity,
        policy: AcceptPolicy,
        attestation: Arc<Checker>,
    ) -> Result<Self, TlsSetupError> {
        let provider = provider();
        let roots = rack_roots(&identity.ca_certs)?;
        let inner = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(TlsSetupError::Verifier)?;
        let verifier = Arc::new(ListenerVerifier {
            inner,
            policy,
            attestation: attestation.clone(),
        });
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(TlsSetupError::Rustls)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(identity.cert_chain.clone(), identity.key.clone_key())
            .map_err(TlsSetupError::Rustls)?;
        // No resumption: every handshake goes through the verifier and the
        // accept policy.
        no_server_resumption(&mut server);
        Ok(Self {
            provider,
            roots,
            cert_chain: identity.cert_chain.clone(),
            key: identity.key.clone_key(),
            server: Arc::new(server),
            attestation,
        })
    }

    /// A listener's side of a new connection.
    pub(crate) fn accept(&self) -> Result<UnbufferedServerConnection, rustls::Error> {
        UnbufferedServerConnection::new(self.server.clone())
    }

    /// A dialer's side of a new connection to `addr`, which completes a
    /// handshake only with `expected`.
    pub(crate) fn dial(
        &self,
        expected: PlatformId,
        addr: std::net::SocketAddr,
    ) -> Result<UnbufferedClientConnection, rustls::Error> {
        UnbufferedClientConnection::new(self.client_config(expected)?, server_name(addr))
    }

    /// The dialer's configuration: completes a handshake only with
    /// `expected`.
    fn client_config(
        &self,
        expected: PlatformId,
    ) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
        let verifier = Arc::new(
            DialerVerifier::new(&self.provider, &self.roots, expected)
                .attested(self.attestation.clone()),
        );
        let mut client = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.cert_chain.clone(), self.key.clone_key())?;
        // No resumption: every handshake verifies the listener afresh.
        client.resumption = Resumption::disabled();
        Ok(Arc::new(client))
    }
}

/// The name a dialer gives rustls: an IP address, so no SNI is sent; the
/// verifier ignores it.
pub(crate) fn server_name(addr: std::net::SocketAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.ip().into())
}

/// The platform id of the peer of a completed handshake.
pub(crate) fn peer_platform_id(conn: &rustls::CommonState) -> Result<PlatformId, IdentityError> {
    let leaf = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or(IdentityError::Missing)?;
    platform_id_of_cert(leaf)
}

/// Why a handshake failed.
pub(crate) fn classify_handshake_error(error: &HandshakeError) -> HandshakeRefusal {
    let tls = match error {
        HandshakeError::Tls(tls) => tls,
        HandshakeError::Io(error) => {
            tracing::debug!(%error, "handshake I/O failed");
            return HandshakeRefusal::Io;
        }
    };
    match tls {
        rustls::Error::NoCertificatesPresented => HandshakeRefusal::NoCertificate,
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => HandshakeRefusal::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                HandshakeRefusal::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                HandshakeRefusal::NotYetValid
            }
            CertificateError::Other(OtherError(other)) => other
                .downcast_ref::<PeerRefused>()
                .map_or(HandshakeRefusal::BadCertificate, |refused| refused.0),
            _ => HandshakeRefusal::BadCertificate,
        },
        rustls::Error::AlertReceived(_) => HandshakeRefusal::RefusedByPeer,
        _ => HandshakeRefusal::Protocol,
    }
}

struct ListenerVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    policy: AcceptPolicy,
    attestation: Arc<Checker>,
}

impl std::fmt::Debug for ListenerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerVerifier").finish_non_exhaustive()
    }
}

impl ClientCertVerifier for ListenerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Not the sled's clock: see `super::validity`.
        let at = verification_time(end_entity)
            .ok_or_else(|| refuse(HandshakeRefusal::BadCertificate))?;
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, at)?;
        let id =
            platform_id_of_cert(end_entity).map_err(|_| refuse(HandshakeRefusal::BadIdentity))?;
        (self.policy)(&id).map_err(refuse)?;
        self.attestation.check(end_entity).map_err(refuse)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Verifies a listener's certificate: chain to the rack CA (server-auth
/// usage, validity as of its issuance), exactly the platform id
/// `expected`, and, between peers, its measurements; names and addresses
/// in it are not used.
pub(crate) struct DialerVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    expected: PlatformId,
    /// `None` for the sled API's clients: Nexus asks who a sled is, not
    /// what it runs.
    attestation: Option<Arc<Checker>>,
}

impl std::fmt::Debug for DialerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialerVerifier")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl DialerVerifier {
    pub(crate) fn new(
        provider: &CryptoProvider,
        roots: &Arc<RootCertStore>,
        expected: PlatformId,
    ) -> Self {
        Self {
            roots: roots.clone(),
            algorithms: provider.signature_verification_algorithms,
            expected,
            attestation: None,
        }
    }

    /// Also checks the listener's measurements (the peer network).
    pub(crate) fn attested(self, attestation: Arc<Checker>) -> Self {
        Self {
            attestation: Some(attestation),
            ..self
        }
    }
}

impl ServerCertVerifier for DialerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        // Not the sled's clock: see `super::validity`.
        let at = verification_time(end_entity)
            .ok_or_else(|| refuse(HandshakeRefusal::BadCertificate))?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            at,
            self.algorithms.all,
        )?;
        let id =
            platform_id_of_cert(end_entity).map_err(|_| refuse(HandshakeRefusal::BadIdentity))?;
        if id != self.expected {
            return Err(refuse(HandshakeRefusal::WrongPeer));
        }
        if let Some(attestation) = &self.attestation {
            attestation.check(end_entity).map_err(refuse)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tq_test_fixtures::pki::Ca;

    use super::*;
    use crate::net::identity::platform_id_uri;

    fn id() -> PlatformId {
        PlatformId::new("p", "a").unwrap()
    }

    /// A sled identity whose certificate is valid from January 1st of
    /// `from` to January 1st of `to`.
    fn identity(ca: &Ca, from: i32, to: i32) -> TlsIdentity {
        let (cert, key) = ca.leaf(
            &[platform_id_uri(&id())],
            Some((
                rcgen::date_time_ymd(from, 1, 1),
                rcgen::date_time_ymd(to, 1, 1),
            )),
        );
        TlsIdentity {
            ca_certs: vec![ca.der()],
            cert_chain: vec![cert],
            key,
        }
    }

    fn admit_all() -> AcceptPolicy {
        Arc::new(|_: &PlatformId| Ok(()))
    }

    fn unattested() -> Arc<Checker> {
        Arc::new(Checker::new(super::super::Attestation::Off).unwrap())
    }

    /// Both verifiers of `tls`, checking a certificate at `now`.
    fn verify_both(tls: &Tls, cert: &CertificateDer<'_>, now: UnixTime) -> [bool; 2] {
        let listener = ListenerVerifier {
            inner: WebPkiClientVerifier::builder_with_provider(
                tls.roots.clone(),
                tls.provider.clone(),
            )
            .build()
            .unwrap(),
            policy: admit_all(),
            attestation: unattested(),
        };
        let dialer = DialerVerifier {
            roots: tls.roots.clone(),
            algorithms: tls.provider.signature_verification_algorithms,
            expected: id(),
            attestation: Some(unattested()),
        };
        let name = server_name("127.0.0.1:1".parse().unwrap());
        [
            listener.verify_client_cert(cert, &[], now).is_ok(),
            dialer
                .verify_server_cert(cert, &[], &name, &[], now)
                .is_ok(),
        ]
    }

    fn year(year: u64) -> UnixTime {
        // Close enough to January 1st for these checks.
        UnixTime::since_unix_epoch(Duration::from_secs((year - 1970) * 31_556_952))
    }

    #[test]
    fn the_sleds_clock_does_not_decide_admission() {
        let ca = Ca::new("rack");
        let current = identity(&ca, 2025, 2035);
        let tls = Tls::new(&current, admit_all(), unattested()).unwrap();
        // A real-time clock reset to 1970, one far ahead, and a sane one.
        for now in [year(1970), year(2030), year(2200)] {
            assert_eq!(
                verify_both(&tls, &current.cert_chain[0], now),
                [true, true],
                "{now:?}"
            );
        }
    }

    #[test]
    fn another_cas_certificate_is_refused_at_any_clock() {
        let ca = Ca::new("rack");
        let tls = Tls::new(&identity(&ca, 2025, 2035), admit_all(), unattested()).unwrap();
        let other = identity(&Ca::new("another rack"), 2025, 2035);
        for now in [year(1970), year(2030), year(2200)] {
            assert_eq!(
                verify_both(&tls, &other.cert_chain[0], now),
                [false, false],
                "{now:?}"
            );
        }
    }

    /// One connector dialing twice a listener that hands out session
    /// tickets (rustls's defaults) does a full handshake both times.
    #[tokio::test]
    async fn the_dialer_never_resumes() {
        let ca = Ca::new("rack");
        let sled = identity(&ca, 2025, 2035);
        let tls = Tls::new(&sled, admit_all(), unattested()).unwrap();
        let resuming_server = rustls::ServerConfig::builder_with_provider(tls.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(sled.cert_chain.clone(), sled.key.clone_key())
            .unwrap();
        assert!(resuming_server.send_tls13_tickets > 0);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(resuming_server));
        let connector = tokio_rustls::TlsConnector::from(tls.client_config(id()).unwrap());
        for round in 0..2 {
            let (client_io, server_io) = tokio::io::duplex(64 * 1024);
            let server = async {
                let mut stream = acceptor.accept(server_io).await.unwrap();
                stream.write_all(b"x").await.unwrap();
                stream.flush().await.unwrap();
                stream
            };
            let client = async {
                let name = server_name("127.0.0.1:1".parse().unwrap());
                let mut stream = connector.connect(name, client_io).await.unwrap();
                // The tickets come after the handshake, before this byte.
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await.unwrap();
                stream.get_ref().1.handshake_kind()
            };
            let (_server, kind) = tokio::join!(server, client);
            assert_eq!(kind, Some(rustls::HandshakeKind::Full), "round {round}");
        }
    }
}
