//! TLS for a sled's HTTP API: what its listener presents and what its
//! clients (Nexus, `tq status`) accept.
//!
//! The listener presents the sled's own certificate, the one the peer
//! network uses, and asks for no client certificate: who may do what is
//! decided by each request's authenticator, not by the connection. A
//! client verifies the sled exactly as a dialing peer does
//! ([`super::tls`]): the chain must reach the rack CA with the server-auth
//! usage, validity is judged as of the certificate's issuance
//! (`validity`), and the certificate must name the very platform id
//! the client meant to reach; DNS names and IP addresses are not used.
//! Both sides speak TLS 1.3 only, with session resumption off (no
//! session cache, no tickets), as the peer network does.

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::pki_types::CertificateDer;
use tq_core::ids::PlatformId;

use super::tls::{
    DialerVerifier, TlsIdentity, TlsSetupError, no_server_resumption, provider, rack_roots,
};

/// The only application protocol the API speaks over TLS.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// The API listener's configuration: this sled's certificate and key, no
/// client certificate asked, TLS 1.3, no resumption.
pub fn server_config(identity: &TlsIdentity) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsSetupError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(identity.cert_chain.clone(), identity.key.clone_key())
        .map_err(TlsSetupError::Rustls)?;
    no_server_resumption(&mut server);
    server.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(server))
}

/// An API client's configuration: completes a handshake only with a
/// certificate of the rack CA (`rack_ca`) that names `expected`. No
/// client certificate, TLS 1.3, no resumption.
pub fn client_config(
    rack_ca: &[CertificateDer<'static>],
    expected: PlatformId,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let provider = provider();
    let roots = rack_roots(rack_ca)?;
    let verifier = Arc::new(DialerVerifier::new(&provider, &roots, expected));
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsSetupError::Rustls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    client.resumption = Resumption::disabled();
    client.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(client)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tq_test_fixtures::pki::Ca;

    use super::*;
    use crate::net::identity::platform_id_uri;
    use crate::net::tls::server_name;

    fn id(serial: &str) -> PlatformId {
        PlatformId::new("p", serial).unwrap()
    }

    fn identity(ca: &Ca, id: &PlatformId) -> TlsIdentity {
        let (cert, key) = ca.leaf(&[platform_id_uri(id)], None);
        TlsIdentity {
            ca_certs: vec![ca.der()],
            cert_chain: vec![cert],
            key,
        }
    }

    /// A handshake of `connector` with `acceptor`, a byte exchanged each
    /// way: how the client's side went.
    async fn handshake(
        acceptor: &tokio_rustls::TlsAcceptor,
        connector: &tokio_rustls::TlsConnector,
    ) -> Result<rustls::HandshakeKind, std::io::Error> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = async move {
            let mut stream = acceptor.accept(server_io).await?;
            // Any tickets go out before this byte.
            stream.write_all(b"s").await?;
            stream.flush().await?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            Ok::<_, std::io::Error>(())
        };
        let client = async move {
            let name = server_name("127.0.0.1:1".parse().unwrap());
            let mut stream = connector.connect(name, client_io).await?;
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await?;
            stream.write_all(b"c").await?;
            stream.flush().await?;
            let (_, conn) = stream.get_ref();
            assert_eq!(
                conn.protocol_version(),
                Some(rustls::ProtocolVersion::TLSv1_3)
            );
            assert_eq!(conn.alpn_protocol(), Some(ALPN_HTTP_1_1));
            conn.handshake_kind()
                .ok_or_else(|| std::io::Error::other("no handshake"))
        };
        let (server, client) = tokio::join!(server, client);
        // A refused handshake fails both ends; report the client's side.
        let kind = client?;
        server?;
        Ok(kind)
    }

    fn acceptor(config: Arc<rustls::ServerConfig>) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(config)
    }

    fn connector(config: rustls::ClientConfig) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    #[tokio::test]
    async fn a_client_reaches_only_the_sled_it_expects_under_the_rack_ca() {
        let ca = Ca::new("rack");
        let sled = acceptor(server_config(&identity(&ca, &id("a"))).unwrap());
        let rack_ca = vec![ca.der()];
        let expecting = |serial| connector(client_config(&rack_ca, id(serial)).unwrap());
        assert!(handshake(&sled, &expecting("a")).await.is_ok());
        // Another sled of the same rack is not the one expected.
        assert!(handshake(&sled, &expecting("b")).await.is_err());
        // A certificate of another CA naming the expected sled.
        let impostor = identity(&Ca::new("another rack"), &id("a"));
        let impostor = acceptor(server_config(&impostor).unwrap());
        assert!(handshake(&impostor, &expecting("a")).await.is_err());
    }

    /// Neither side resumes, even with a peer that would: a client with
    /// rustls's default resumption against the listener, and the client
    /// against a listener that hands out tickets. Both sides with
    /// resumption on do resume, so the check can see it.
    #[tokio::test]
    async fn neither_side_resumes() {
        let ca = Ca::new("rack");
        let sled = identity(&ca, &id("a"));
        let ours_server = server_config(&sled).unwrap();
        let ours_client = client_config(&[ca.der()], id("a")).unwrap();
        let mut resuming_server = (*ours_server).clone();
        resuming_server.send_tls13_tickets = 2;
        resuming_server.session_storage = rustls::server::ServerSessionMemoryCache::new(16);
        let resuming_server = Arc::new(resuming_server);
        let mut resuming_client = ours_client.clone();
        resuming_client.resumption = Resumption::default();
        let second = |server: &Arc<rustls::ServerConfig>, client: &rustls::ClientConfig| {
            let (a, c) = (acceptor(server.clone()), connector(client.clone()));
            async move {
                assert_eq!(
                    handshake(&a, &c).await.unwrap(),
                    rustls::HandshakeKind::Full
                );
                handshake(&a, &c).await.unwrap()
            }
        };
        assert_eq!(
            second(&resuming_server, &resuming_client).await,
            rustls::HandshakeKind::Resumed
        );
        assert_eq!(
            second(&ours_server, &resuming_client).await,
            rustls::HandshakeKind::Full
        );
        assert_eq!(
            second(&resuming_server, &ours_client).await,
            rustls::HandshakeKind::Full
        );
        assert_eq!(
            second(&ours_server, &ours_client).await,
            rustls::HandshakeKind::Full
        );
    }
}
