//! One sled's daemon: the node (tq-std) and its HTTP API, started from a
//! [`SledConfig`] and stopped cleanly.
//!
//! [`init`] is `tq sled init`: the ledger of a new sled, the only way one
//! starts fresh. [`Daemon::start`] loads the TLS identity, boots the node
//! from its ledger (or, while it holds nothing, the LRTQ share file) and
//! starts the API and, if disks are configured, their key manager
//! (`tq_std::disks`: unlocks them as soon as the rack secret can be had,
//! re-wraps their keys on every commit); [`Daemon::stop`] stops
//! the API, then the node (its task ends between calls, so every ledger
//! write it started is finished). [`run`] is what `tq sled` does: start,
//! wait for SIGTERM or Ctrl-C (or the node task ending), stop; on SIGHUP
//! it reads the configuration file again and takes its `[[peers]]` (a
//! sled replaced or added to the rack), connecting to the new ones and
//! dropping those no longer listed. Nothing else in the file is taken
//! without a restart; a file that does not load leaves the peers as they
//! were (logged).
//!
//! Every way to fail before running is a [`DaemonError`] whose variant is
//! what is wrong (`config`, `certificate`, `request key`, `ledger`,
//! `LRTQ share file`, `peer network` or `API`) and whose causes say why, each its own error
//! ([`CertificateError`], [`LedgerError`], ...); [`crate::error::Chain`]
//! shows them as one line, `ledger: refused: ...`.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::task::{JoinError, JoinHandle};
use tq_core::ids::PlatformId;
use tq_core::node::RestoreLrtqError;
use tq_core::wire::WireError;
use tq_rack_setup::keys::{self, KeyFileError};
use tq_std::handle::NodeHandle;
use tq_std::ledger::access::Unsafe;
use tq_std::ledger::lock::LockError;
use tq_std::ledger::lrtq::LrtqFileError;
use tq_std::ledger::{CopyFinding, InitError, OpenError};
use tq_std::net::{StartError as NetStartError, TlsIdentity, TlsSetupError};
use tq_std::node::StartError;

use crate::config::{ConfigError, SledConfig, TlsSection};
use crate::error::ListenError;
use crate::server::ApiStartError;

/// Why the daemon could not start (or `init` did not initialize), by what
/// the operator must fix. See the module doc.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration file.
    #[error("config")]
    Config(#[from] ConfigError),
    /// The rack CA, the sled's certificate or its key.
    #[error("certificate")]
    Certificate(#[source] CertificateError),
    /// The ledger copies, or the state they hold.
    #[error("ledger")]
    Ledger(#[source] LedgerError),
    /// The LRTQ share file.
    #[error("LRTQ share file")]
    LrtqShareFile(#[source] LrtqShareError),
    /// The audit log (beside the ledger copies).
    #[error("audit log")]
    Audit(#[source] tq_std::audit::OpenError),
    /// The request key file (`[authority] key_file`).
    #[error("request key")]
    RequestKey(#[source] KeyFileError),
    /// The peer network (its listener).
    #[error("peer network")]
    PeerNetwork(#[source] ListenError),
    /// The reference measurements file.
    #[error("reference measurements {}", .path.display())]
    ReferenceMeasurements {
        /// The file.
        path: PathBuf,
        /// Why it is unusable.
        #[source]
        source: tq_std::net::reference::ReferenceError,
    },
    /// The HTTP API (its listener).
    #[error("API")]
    Api(#[source] ApiStartError),
    /// The disks' key manager.
    #[error("disks")]
    Disks(#[source] tq_std::disks::StartError),
    /// The signal handlers.
    #[error("signals")]
    Signals(#[source] std::io::Error),
    /// The node task ended by itself.
    #[error("node")]
    Node(#[source] NodeEnded),
}

/// What is wrong with the TLS identity's files.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// A file could not be read or parsed, or the identity is unusable.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// A PEM file holds no certificate.
    #[error("{}: no certificate in the file", .0.display())]
    Empty(PathBuf),
    /// The sled's certificate names no platform id.
    #[error("{}", .path.display())]
    NoPlatformId {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        #[source]
        source: TlsSetupError,
    },
}

/// What is wrong with the ledger, copy by copy where that helps.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// `tq sled init` did not initialize it.
    #[error(transparent)]
    Init(#[from] InitError),
    /// Neither copy is there: drives not mounted, or never initialized.
    #[error(
        "no ledger on either drive ({}); check that both drives are mounted; \
         a new sled needs `tq sled init --config FILE` first",
        Findings(.0)
    )]
    NotInitialized(Vec<(PathBuf, CopyFinding)>),
    /// Another process holds the ledger.
    #[error(transparent)]
    Locked(LockError),
    /// A directory or copy is open to others, foreign or a link.
    #[error("refused")]
    Unsafe(#[source] Unsafe),
    /// No copy is valid, yet one was there: starting afresh could forget
    /// acknowledged state.
    #[error("no valid copy, so the sled must not start afresh ({})", Findings(.0))]
    NoValidCopy(Vec<(PathBuf, CopyFinding)>),
    /// Any other open failure.
    #[error(transparent)]
    Open(OpenError),
    /// The core refuses the state the ledger holds.
    #[error(
        "the stored state cannot be restored (a newer build's ledger, or corrupt bytes under a valid checksum)"
    )]
    State(#[source] WireError),
}

/// What is wrong with the LRTQ share file or its data.
#[derive(Debug, thiserror::Error)]
pub enum LrtqShareError {
    /// The file could not be used.
    #[error(transparent)]
    File(LrtqFileError),
    /// The core refused its data.
    #[error(transparent)]
    Refused(RestoreLrtqError),
}

/// Why the node task ended while the daemon ran.
#[derive(Debug, thiserror::Error)]
pub enum NodeEnded {
    /// It returned.
    #[error("the node task ended")]
    Returned,
    /// It panicked or was cancelled.
    #[error("the node task failed")]
    Failed(#[source] JoinError),
}

/// Each path with what was found there, `; `-separated.
struct Findings<'a>(&'a [(PathBuf, CopyFinding)]);

impl fmt::Display for Findings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, finding)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: ", path.display())?;
            match finding {
                CopyFinding::Current => f.write_str("valid")?,
                CopyFinding::Stale { generation } => {
                    write!(f, "stale (generation {generation})")?;
                }
                CopyFinding::Conflicting => f.write_str("conflicting")?,
                CopyFinding::Absent => f.write_str("no ledger file")?,
                CopyFinding::NoDirectory => {
                    f.write_str("its directory does not exist (drive not mounted?)")?;
                }
                CopyFinding::Corrupt(reason) => write!(f, "corrupt ({reason:?})")?,
                CopyFinding::Unreadable(kind) => write!(f, "unreadable ({kind})")?,
            }
        }
        Ok(())
    }
}

/// Reads the rack CA, the certificate chain and the key, and checks that
/// the certificate names a platform id.
pub fn load_identity(tls: &TlsSection) -> Result<(TlsIdentity, PlatformId), DaemonError> {
    let certificate = |e: CertificateError| DaemonError::Certificate(e);
    let identity = TlsIdentity::from_pem_files(&tls.rack_ca, &tls.certificate, &tls.key)
        .map_err(|e| certificate(e.into()))?;
    if identity.ca_certs.is_empty() {
        return Err(certificate(CertificateError::Empty(tls.rack_ca.clone())));
    }
    if identity.cert_chain.is_empty() {
        return Err(certificate(CertificateError::Empty(
            tls.certificate.clone(),
        )));
    }
    let id = identity.platform_id().map_err(|source| {
        certificate(CertificateError::NoPlatformId {
            path: tls.certificate.clone(),
            source,
        })
    })?;
    Ok((identity, id))
}

/// A node start failure, sorted by what the operator must fix.
fn start_error(config: &SledConfig, error: StartError) -> DaemonError {
    match error {
        StartError::Identity(e) | StartError::Net(NetStartError::Tls(e)) => {
            DaemonError::Certificate(e.into())
        }
        StartError::Ledger(e) => DaemonError::Ledger(open_error(config, e)),
        StartError::State(e) => DaemonError::Ledger(LedgerError::State(e)),
        StartError::LrtqFile(e) => DaemonError::LrtqShareFile(LrtqShareError::File(e)),
        StartError::Lrtq(e) => DaemonError::LrtqShareFile(LrtqShareError::Refused(e)),
        StartError::Audit(e) => DaemonError::Audit(e),
        StartError::Net(NetStartError::Bind(source)) => DaemonError::PeerNetwork(ListenError {
            listen: config.peer.listen,
            source,
        }),
        StartError::Net(NetStartError::Reference(source)) => DaemonError::ReferenceMeasurements {
            path: config.attestation.reference_measurements.clone(),
            source,
        },
    }
}

/// `tq sled init`: creates the ledger directories (mode 0700) and marks
/// both copies initialized, so that the sled starts fresh (or from its
/// LRTQ share file). Refuses if a ledger copy exists. Blocking.
pub fn init(config: &SledConfig) -> Result<(), DaemonError> {
    tq_std::ledger::init(&config.ledger_paths()).map_err(|e| DaemonError::Ledger(e.into()))
}

/// A ledger open failure with each copy's path beside what was found.
fn open_error(config: &SledConfig, error: OpenError) -> LedgerError {
    let beside = |paths: &[PathBuf], found: &[CopyFinding]| {
        paths.iter().cloned().zip(found.iter().copied()).collect()
    };
    match error {
        OpenError::NotInitialized(found) => {
            LedgerError::NotInitialized(beside(&config.ledger.dirs, &found))
        }
        OpenError::NoValidCopy(found) => {
            LedgerError::NoValidCopy(beside(&config.ledger_paths(), &found))
        }
        OpenError::Locked(e) => LedgerError::Locked(e),
        OpenError::Unsafe(e) => LedgerError::Unsafe(e),
        OpenError::Interrupted => LedgerError::Open(error),
    }
}

/// A running sled daemon.
pub struct Daemon {
    id: PlatformId,
    handle: NodeHandle,
    node_task: JoinHandle<()>,
    peer_listen: SocketAddr,
    api: crate::server::ApiServer,
    /// The disks' key manager, if any disk is configured.
    disks: Option<tq_std::disks::Disks>,
}

impl Daemon {
    /// Starts the node and the API. Must be called within a tokio runtime.
    pub async fn start(config: &SledConfig) -> Result<Self, DaemonError> {
        let (identity, id) = load_identity(&config.tls)?;
        let api_tls = tq_std::net::api_tls::server_config(&identity)
            .map_err(|e| DaemonError::Certificate(e.into()))?;
        let mut node_config = config.node_config()?;
        let key_file = config.authority.key_file.clone();
        let request_key = tokio::task::spawn_blocking(move || keys::read_sled_key(&key_file))
            .await
            .unwrap_or(Err(KeyFileError::Interrupted))
            .map_err(DaemonError::RequestKey)?;
        node_config.request_key = Some(request_key);
        let started = tq_std::node::start(node_config, &identity)
            .await
            .map_err(|e| start_error(config, e))?;
        let api = match crate::server::ApiServer::start(
            config.api.listen,
            api_tls,
            started.handle.clone(),
            config.api.idle_timeout(),
        ) {
            Ok(api) => api,
            Err(e) => {
                // The node is running: stop it before giving up.
                let _ = started.handle.shutdown().await;
                let _ = started.task.await;
                return Err(DaemonError::Api(e));
            }
        };
        let disks = if config.disks.is_empty() {
            None
        } else {
            match tq_std::disks::start(&started.handle, config.disks_config()) {
                Ok(disks) => Some(disks),
                Err(e) => {
                    api.stop().await;
                    let _ = started.handle.shutdown().await;
                    let _ = started.task.await;
                    return Err(DaemonError::Disks(e));
                }
            }
        };
        tracing::info!(
            sled = %id,
            peer = %started.listen,
            api = %api.local_addr(),
            disks = config.disks.len(),
            "sled daemon started"
        );
        Ok(Self {
            id,
            handle: started.handle,
            node_task: started.task,
            peer_listen: started.listen,
            api,
            disks,
        })
    }

    /// This sled.
    pub fn id(&self) -> &PlatformId {
        &self.id
    }

    /// The node's handle.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// The address the peer network listens on.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_listen
    }

    /// The address the HTTP API listens on.
    pub fn api_addr(&self) -> SocketAddr {
        self.api.local_addr()
    }

    /// Runs until `shutdown` completes or the node task ends, then stops.
    /// `Err` if the node task ended by itself.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NodeEnded> {
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down");
                self.stop().await;
                Ok(())
            }
            ended = &mut self.node_task => {
                if let Some(disks) = self.disks.take() {
                    disks.stop().await;
                }
                self.api.stop().await;
                Err(match ended {
                    Ok(()) => NodeEnded::Returned,
                    Err(e) => NodeEnded::Failed(e),
                })
            }
        }
    }

    /// Kills the daemon where it stands, as a crash or a power cut would:
    /// the node task (and with it the peer network) is aborted wherever it
    /// is, then the API stops. What the ledger holds is what the sled
    /// restarts from.
    pub async fn crash(self) {
        if let Some(disks) = self.disks {
            disks.stop().await;
        }
        self.node_task.abort();
        let _ = self.node_task.await;
        self.api.stop().await;
    }

    /// Stops the API (no new calls), then the node: its task ends between
    /// calls, after the ledger write of the last one.
    pub async fn stop(self) {
        if let Some(disks) = self.disks {
            disks.stop().await;
        }
        self.api.stop().await;
        if let Err(e) = self.handle.shutdown().await {
            tracing::warn!(error = %e, "node shutdown");
        }
        if let Err(e) = self.node_task.await {
            tracing::warn!(error = %e, "node task");
        }
        tracing::info!("sled daemon stopped");
    }
}

/// The signals the daemon answers: SIGTERM and SIGINT (Ctrl-C) stop it,
/// SIGHUP re-reads its peers. Installed when created, so one that comes
/// during start-up waits here instead of killing the process.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// What a signal asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// Stop (SIGTERM, SIGINT).
    Stop,
    /// Re-read the peers (SIGHUP).
    ReloadPeers,
}

impl Signals {
    /// Installs the handlers. Must be called within a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) -> Asked {
        tokio::select! {
            _ = self.term.recv() => {
                tracing::info!("SIGTERM");
                Asked::Stop
            }
            _ = self.int.recv() => {
                tracing::info!("SIGINT");
                Asked::Stop
            }
            _ = self.hup.recv() => {
                tracing::info!("SIGHUP: reading the peers again");
                Asked::ReloadPeers
            }
        }
    }
}

/// The peers of the configuration file at `path` handed to the node, or
/// why not (logged; the peers stay as they were).
async fn reload_peers(path: &Path, handle: &NodeHandle) {
    let peers = match SledConfig::load(path).and_then(|config| config.peer_map()) {
        Ok(peers) => peers,
        Err(e) => {
            tracing::warn!(
                error = %crate::error::Chain(&e),
                "peers not reloaded: the configuration file does not load"
            );
            return;
        }
    };
    let count = peers.len();
    match handle.set_peers(peers).await {
        Ok(()) => tracing::info!(peers = count, "peers reloaded"),
        Err(e) => tracing::warn!(error = %e, "peers not reloaded"),
    }
}

/// `tq sled`: starts the daemon from `config` (read from `path`), runs it
/// until SIGTERM or Ctrl-C, taking the file's peers again on each
/// SIGHUP, and stops it cleanly.
pub async fn run(path: &Path, config: &SledConfig) -> Result<(), DaemonError> {
    let mut signals = Signals::install().map_err(DaemonError::Signals)?;
    let daemon = Daemon::start(config).await?;
    let handle = daemon.handle().clone();
    daemon
        .run_until(async move {
            while signals.recv().await == Asked::ReloadPeers {
                reload_peers(path, &handle).await;
            }
        })
        .await
        .map_err(DaemonError::Node)
}
