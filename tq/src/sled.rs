//! One sled's daemon: the node (tq-std) and its HTTP API, started from a
//! [`SledConfig`] and stopped cleanly.
//!
//! [`init`] is `tq sled init`: the ledger of a new sled, the only way one
//! starts fresh. [`Daemon::start`] loads the TLS identity, boots the node
//! from its ledger (or, while it holds nothing, the LRTQ share file) and
//! starts the API; [`Daemon::stop`] stops
//! the API, then the node (its task ends between calls, so every ledger
//! write it started is finished). [`run`] is what `tq sled` does: start,
//! wait for SIGTERM or Ctrl-C (or the node task ending), stop.
//!
//! Every way to fail before running is a [`DaemonError`] that displays as
//! one line starting with what is wrong: `config:`, `certificate:`,
//! `ledger:`, `LRTQ share file:`, `peer network:` or `API:`.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tq_core::ids::PlatformId;
use tq_std::handle::NodeHandle;
use tq_std::ledger::{CopyFinding, OpenError};
use tq_std::net::{StartError as NetStartError, TlsIdentity, TlsSetupError};
use tq_std::node::StartError;

use crate::config::{ConfigError, SledConfig, TlsSection};

/// Why the daemon could not start. See the module doc.
#[derive(Debug)]
pub enum DaemonError {
    /// The configuration file.
    Config(ConfigError),
    /// The rack CA, the sled's certificate or its key.
    Certificate(String),
    /// The ledger copies, or the state they hold.
    Ledger(String),
    /// The LRTQ share file.
    LrtqShareFile(String),
    /// The peer network (its listener).
    PeerNetwork(String),
    /// The HTTP API (its listener).
    Api(String),
    /// The signal handlers.
    Signals(std::io::Error),
    /// The node task ended by itself.
    Node(String),
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "config: {e}"),
            Self::Certificate(e) => write!(f, "certificate: {e}"),
            Self::Ledger(e) => write!(f, "ledger: {e}"),
            Self::LrtqShareFile(e) => write!(f, "LRTQ share file: {e}"),
            Self::PeerNetwork(e) => write!(f, "peer network: {e}"),
            Self::Api(e) => write!(f, "API: {e}"),
            Self::Signals(e) => write!(f, "signals: {e}"),
            Self::Node(e) => write!(f, "node: {e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<ConfigError> for DaemonError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

/// Reads the rack CA, the certificate chain and the key, and checks that
/// the certificate names a platform id.
pub fn load_identity(tls: &TlsSection) -> Result<(TlsIdentity, PlatformId), DaemonError> {
    let identity = TlsIdentity::from_pem_files(&tls.rack_ca, &tls.certificate, &tls.key)
        .map_err(|e| DaemonError::Certificate(e.to_string()))?;
    let none_in = |path: &std::path::Path| {
        DaemonError::Certificate(format!("{}: no certificate in the file", path.display()))
    };
    if identity.ca_certs.is_empty() {
        return Err(none_in(&tls.rack_ca));
    }
    if identity.cert_chain.is_empty() {
        return Err(none_in(&tls.certificate));
    }
    let id = identity
        .platform_id()
        .map_err(|e| DaemonError::Certificate(format!("{}: {e}", tls.certificate.display())))?;
    Ok((identity, id))
}

/// A node start failure, sorted by what the operator must fix.
fn start_error(config: &SledConfig, error: StartError) -> DaemonError {
    match error {
        StartError::Identity(e) | StartError::Net(NetStartError::Tls(e)) => {
            DaemonError::Certificate(tls_error(e))
        }
        StartError::Ledger(e) => DaemonError::Ledger(open_error(config, &e)),
        StartError::State(e) => DaemonError::Ledger(format!(
            "the stored state cannot be restored: {e} (a newer build's ledger, or corrupt bytes under a valid checksum)"
        )),
        StartError::LrtqFile(e) => DaemonError::LrtqShareFile(e.to_string()),
        StartError::Lrtq(e) => DaemonError::LrtqShareFile(e.to_string()),
        StartError::Net(NetStartError::Bind(e)) => {
            DaemonError::PeerNetwork(format!("cannot listen on {}: {e}", config.peer.listen))
        }
    }
}

fn tls_error(error: TlsSetupError) -> String {
    error.to_string()
}

/// `tq sled init`: creates the ledger directories (mode 0700) and marks
/// both copies initialized, so that the sled starts fresh (or from its
/// LRTQ share file). Refuses if a ledger copy exists. Blocking.
pub fn init(config: &SledConfig) -> Result<(), DaemonError> {
    tq_std::ledger::init(&config.ledger_paths()).map_err(|e| DaemonError::Ledger(e.to_string()))
}

/// A ledger open failure in words, copy by copy.
fn open_error(config: &SledConfig, error: &OpenError) -> String {
    match error {
        OpenError::NotInitialized(found) => {
            let dirs: Vec<String> = found
                .iter()
                .zip(&config.ledger.dirs)
                .map(|(finding, dir)| format!("{}: {}", dir.display(), finding_words(*finding)))
                .collect();
            format!(
                "no ledger on either drive ({}); check that both drives are mounted; \
                 a new sled needs `tq sled init --config FILE` first",
                dirs.join("; ")
            )
        }
        OpenError::Locked(e) => e.to_string(),
        OpenError::Unsafe(e) => format!("refused: {e}"),
        OpenError::NoValidCopy(found) => {
            let paths = config.ledger_paths();
            let copies: Vec<String> = found
                .iter()
                .zip(&paths)
                .map(|(finding, path)| format!("{}: {}", path.display(), finding_words(*finding)))
                .collect();
            format!(
                "no valid copy, so the sled must not start afresh ({})",
                copies.join("; ")
            )
        }
        OpenError::Interrupted => error.to_string(),
    }
}

fn finding_words(finding: CopyFinding) -> String {
    match finding {
        CopyFinding::Current => "valid".into(),
        CopyFinding::Stale { generation } => format!("stale (generation {generation})"),
        CopyFinding::Conflicting => "conflicting".into(),
        CopyFinding::Absent => "no ledger file".into(),
        CopyFinding::NoDirectory => "its directory does not exist (drive not mounted?)".into(),
        CopyFinding::Corrupt(reason) => format!("corrupt ({reason:?})"),
        CopyFinding::Unreadable(kind) => format!("unreadable ({kind})"),
    }
}

/// A running sled daemon.
pub struct Daemon {
    id: PlatformId,
    handle: NodeHandle,
    node_task: JoinHandle<()>,
    peer_listen: SocketAddr,
    api: crate::server::ApiServer,
}

impl Daemon {
    /// Starts the node and the API. Must be called within a tokio runtime.
    pub async fn start(config: &SledConfig) -> Result<Self, DaemonError> {
        let (identity, id) = load_identity(&config.tls)?;
        let node_config = config.node_config()?;
        let started = tq_std::node::start(node_config, &identity)
            .await
            .map_err(|e| start_error(config, e))?;
        let api = match crate::server::ApiServer::start(
            config.api.listen,
            started.handle.clone(),
            config.api.idle_timeout(),
        ) {
            Ok(api) => api,
            Err(e) => {
                // The node is running: stop it before giving up.
                let _ = started.handle.shutdown().await;
                let _ = started.task.await;
                return Err(DaemonError::Api(format!(
                    "cannot listen on {}: {e}",
                    config.api.listen
                )));
            }
        };
        tracing::info!(
            sled = %id,
            peer = %started.listen,
            api = %api.local_addr(),
            "sled daemon started"
        );
        Ok(Self {
            id,
            handle: started.handle,
            node_task: started.task,
            peer_listen: started.listen,
            api,
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
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down");
                self.stop().await;
                Ok(())
            }
            ended = &mut self.node_task => {
                self.api.stop().await;
                Err(match ended {
                    Ok(()) => "the node task ended".to_owned(),
                    Err(e) => format!("the node task failed: {e}"),
                })
            }
        }
    }

    /// Kills the daemon where it stands, as a crash or a power cut would:
    /// the node task (and with it the peer network) is aborted wherever it
    /// is, then the API stops. What the ledger holds is what the sled
    /// restarts from.
    pub async fn crash(self) {
        self.node_task.abort();
        let _ = self.node_task.await;
        self.api.stop().await;
    }

    /// Stops the API (no new calls), then the node: its task ends between
    /// calls, after the ledger write of the last one.
    pub async fn stop(self) {
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

/// The signals that stop the daemon: SIGTERM and SIGINT (Ctrl-C).
/// Installed when created, so one that comes during start-up waits here
/// instead of killing the process.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers. Must be called within a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for either signal.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM"),
            _ = self.int.recv() => tracing::info!("SIGINT"),
        }
    }
}

/// `tq sled`: starts the daemon from `config`, runs it until SIGTERM or
/// Ctrl-C, and stops it cleanly.
pub async fn run(config: &SledConfig) -> Result<(), DaemonError> {
    let mut signals = Signals::install().map_err(DaemonError::Signals)?;
    let daemon = Daemon::start(config).await?;
    daemon
        .run_until(signals.recv())
        .await
        .map_err(DaemonError::Node)
}
