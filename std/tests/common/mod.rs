//! Shared test helpers: sled identities from the fixture PKI, fast network settings,
//! a raw TLS client for playing hostile peers, and event waiting.
#![allow(dead_code)]

pub mod authority;
pub mod flood;
pub mod in_process;
pub mod nexus;
pub mod rack;

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tq_core::ids::{PlatformId, RackId};
use tq_core::wire::PEER_MSG_VERSION;
use tq_std::backoff::BackoffConfig;
use tq_std::net::identity::platform_id_uri;
use tq_std::net::{Frame, Net, NetConfig, NetEvent, TlsIdentity};

pub const RACK: RackId = RackId([0x42; 16]);
pub const OTHER_RACK: RackId = RackId([0x43; 16]);

pub fn pid(part: &str, serial: &str) -> PlatformId {
    PlatformId::new(part, serial).unwrap()
}

pub use tq_test_fixtures::pki::Ca;

/// Sled identities from a [`Ca`].
pub trait CaIdentity {
    /// A sled identity trusting `rack_ca` (usually `self`).
    fn identity_trusting(&self, id: &PlatformId, rack_ca: &Ca) -> TlsIdentity;

    /// A sled identity trusting this CA.
    fn identity(&self, id: &PlatformId) -> TlsIdentity;
}

impl CaIdentity for Ca {
    fn identity_trusting(&self, id: &PlatformId, rack_ca: &Ca) -> TlsIdentity {
        let (cert, key) = self.leaf(&[platform_id_uri(id)], None);
        TlsIdentity {
            ca_certs: vec![rack_ca.der()],
            cert_chain: vec![cert],
            key,
        }
    }

    fn identity(&self, id: &PlatformId) -> TlsIdentity {
        self.identity_trusting(id, self)
    }
}

/// Short timeouts so tests run in well under a second each.
pub fn fast_config() -> NetConfig {
    let mut config = NetConfig::new("127.0.0.1:0".parse().unwrap());
    config.rack_id = Some(RACK);
    config.keepalive_interval = Duration::from_millis(100);
    config.inactivity_timeout = Duration::from_millis(500);
    config.handshake_timeout = Duration::from_millis(500);
    config.stranger_handshake_timeout = Duration::from_millis(300);
    config.connect_timeout = Duration::from_millis(500);
    config.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    config.stable_after = Duration::from_millis(200);
    config
}

pub struct Node {
    pub id: PlatformId,
    pub net: Net,
    pub events: mpsc::Receiver<NetEvent>,
}

pub async fn start(identity: &TlsIdentity, config: NetConfig) -> Node {
    let (net, events) = Net::start(config, identity, BTreeMap::new()).await.unwrap();
    Node {
        id: net.local_id().clone(),
        net,
        events,
    }
}

pub fn peer_map(nodes: &[&Node]) -> BTreeMap<PlatformId, SocketAddr> {
    nodes
        .iter()
        .map(|n| (n.id.clone(), n.net.local_addr()))
        .collect()
}

/// A frame that passes the network's header check.
pub fn message(rack: RackId, body: &[u8]) -> Frame {
    let mut frame = vec![PEER_MSG_VERSION];
    frame.extend_from_slice(rack.as_bytes());
    frame.extend_from_slice(body);
    Frame::from(frame)
}

pub const WAIT: Duration = Duration::from_secs(5);

/// The next event, or a panic after [`WAIT`].
pub async fn next_event(events: &mut mpsc::Receiver<NetEvent>) -> NetEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("no event in time")
        .expect("event channel closed")
}

/// Skips events until one matches.
pub async fn wait_event(
    events: &mut mpsc::Receiver<NetEvent>,
    mut wanted: impl FnMut(&NetEvent) -> bool,
) -> NetEvent {
    loop {
        let event = next_event(events).await;
        if wanted(&event) {
            return event;
        }
    }
}

/// Polls `check` until it holds, or panics after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Accepts any server certificate: the hostile client does not care whom
/// it talks to.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client with `identity`'s certificate (or none), as a hostile peer
/// would make it.
pub async fn raw_client(
    addr: SocketAddr,
    identity: Option<&TlsIdentity>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    raw_connect(addr, raw_client_config(identity)).await
}

/// Connects with a client configuration of [`raw_client_config`]; one
/// configuration used for several connections keeps rustls's session
/// cache between them (resumption is on, as rustls defaults).
pub async fn raw_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(config)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
}

/// The configuration of [`raw_client`].
pub fn raw_client_config(identity: Option<&TlsIdentity>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(identity.cert_chain.clone(), identity.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Reads until the connection ends; true if it ended within [`WAIT`].
pub async fn closed_by_peer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Makes a directory unwritable: `chmod` for a normal user; as root (who
/// ignores modes) the immutable attribute (the ioctl `chattr +i` makes, so
/// no external tool is needed). Undone on drop. Fails the test if the
/// directory is still writable.
pub struct Unwritable(PathBuf);

pub fn writable(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let ok = fs::write(&probe, b"x").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

impl Unwritable {
    pub fn new(dir: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        // Closed to others, as the ledger requires of its directories.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).unwrap();
        if writable(dir) {
            set_immutable(dir, true)
                .unwrap_or_else(|e| panic!("making {} immutable: {e}", dir.display()));
        }
        assert!(!writable(dir), "cannot make {} unwritable", dir.display());
        Self(dir.to_owned())
    }
}

/// A file whose every write fails, even through a descriptor opened
/// before (the immutable inode flag; ext4 checks it on each write). Undone
/// on drop.
pub struct Immutable(PathBuf);

impl Immutable {
    pub fn new(path: &Path) -> Self {
        set_immutable(path, true)
            .unwrap_or_else(|e| panic!("making {} immutable: {e}", path.display()));
        Self(path.to_owned())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = set_immutable(&self.0, false);
    }
}

/// Sets or clears a file's immutable inode flag.
fn set_immutable(path: &Path, immutable: bool) -> std::io::Result<()> {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    let file = fs::File::open(path)?;
    let mut flags = ioctl_getflags(&file)?;
    flags.set(IFlags::IMMUTABLE, immutable);
    Ok(ioctl_setflags(&file, flags)?)
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = set_immutable(&self.0, false);
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
    }
}
