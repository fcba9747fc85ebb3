//! The node task: one tokio task that owns a trust quorum node and its
//! context, and is the only thing that touches them.
//!
//! [`start`] boots the node (ledger, or LRTQ share file for a sled with no
//! ledger), starts the peer network and spawns the task; callers talk to it
//! through the [`NodeHandle`] it returns.
//!
//! # The loop
//!
//! The task waits on four things at once (`tokio::select!`, unbiased, so
//! no source starves another):
//!
//! - **an API request** from a handle: runs it on the node and replies;
//! - **a network event**: a connection (`on_connect`), its end
//!   (`on_disconnect`, and every proxied call to that peer fails), or a
//!   frame: a core message (`handle_bytes`; a frame the core cannot decode
//!   drops its connection) or a proxy frame ([`crate::proxy`]: a call to
//!   run here, or the answer to one forwarded from here);
//! - **a timer**: the backoff of a failed ledger write is over (the write
//!   is retried), or a proxied call's deadline passed;
//! - **shutdown**.
//!
//! Every input to the node goes through the core's driving loop,
//! [`tq_core::node::drive_async`], over the task's `AsyncIo`: the state is
//! written to the ledger, and only then are the queued messages sent and
//! the events handed over. The loop is not written again here.
//!
//! What the node is asked and gives goes to the audit log
//! ([`crate::audit`]) before it is answered or sent: a Nexus call's
//! outcome, a secret handed out and for whom, a share leaving for a peer
//! (held until its record is fsynced), the core's secret, expungement and
//! alarm events, and each start. The records of a batch of network events
//! (those already queued when the first is run, up to a bound) are fsynced
//! together, before the loop waits again: a burst of share requests costs
//! one flush of the drives, not one each.
//!
//! A Nexus-facing call is answered only once the state it leaves is
//! stored: if the ledger takes no copy, the caller gets
//! [`Unavailable::NotStored`] and the node sends nothing until a retried
//! write succeeds. Secrets and statuses are answered regardless.
//!
//! # Bounds
//!
//! Every queue is bounded by a [`NodeConfig`] field or the network's
//! [`NetConfig`]: the API queue, the callers waiting for the latest
//! secret, the proxied calls in flight, each peer's write queue and the
//! network's event queue. A full one is [`Unavailable::Busy`] (or, for a
//! peer's write queue, a dropped message that is counted and re-sent on
//! reconnection).

mod io;
pub mod report;
pub mod stats;
mod task;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tq_core::authority::SledRequestKey;
use tq_core::ids::{PlatformId, RackId};
use tq_core::node::{NodeCtx, RestoreLrtqError};
use tq_core::persistent::PersistentState;
use tq_core::wire::WireError;
use tracing::Instrument;

use crate::audit::refusals::record_refusals;
use crate::audit::{AuditConfig, AuditEvent, AuditLog, OpenError as AuditOpenError, audit_dirs};
use crate::backoff::BackoffConfig;
use crate::handle::NodeHandle;
#[cfg(doc)]
use crate::handle::Unavailable;
use crate::ledger::lrtq::{LrtqFileError, read_share_file};
use crate::ledger::{LEDGER_COPIES, Ledger, OpenError};
use crate::net::{Net, NetConfig, StartError as NetStartError, TlsIdentity, TlsSetupError};

/// Handle calls queued before [`Unavailable::Busy`], by default.
pub const DEFAULT_API_QUEUE_LEN: usize = 64;

/// Callers waiting for the latest secret at once, by default.
pub const DEFAULT_MAX_SECRET_WAITERS: usize = 64;

/// Proxied calls in flight at once, by default.
pub const DEFAULT_MAX_PROXIED: usize = 64;

/// How long a secret load waits for the members it asked first before it
/// asks every member, by default ([`NodeConfig::share_patience`]). A share
/// comes in a round trip and one audit write of the member's (a few
/// milliseconds, tens when a whole rack boots at once on one disk).
pub const DEFAULT_SHARE_PATIENCE: Duration = Duration::from_millis(250);

/// How a node is run. Every bound is here or in `net`.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The two ledger copies, one per M.2 drive.
    pub ledger: [PathBuf; LEDGER_COPIES],
    /// The LRTQ share file, read only if the ledger holds nothing yet (it
    /// must then exist).
    pub lrtq_share_file: Option<PathBuf>,
    /// The peer network's settings (its `rack_id` is filled from the
    /// state when the node knows its rack).
    pub net: NetConfig,
    /// The peers' addresses at start.
    pub peers: BTreeMap<PlatformId, SocketAddr>,
    /// Handle calls queued before [`Unavailable::Busy`].
    pub api_queue_len: usize,
    /// Callers waiting for the latest secret at once.
    pub max_secret_waiters: usize,
    /// Proxied calls in flight at once.
    pub max_proxied: usize,
    /// How long a secret load waits for the shares of the members it asked
    /// first (as many as it needs) before it asks every connected member
    /// (`tq_core::node::Node::widen_secret_load`): what a member that is
    /// connected but silent can delay a load by.
    pub share_patience: Duration,
    /// Backoff between writes of a state no ledger copy took.
    pub store_backoff: BackoffConfig,
    /// The audit log's bounds (its copies live beside the ledger's:
    /// [`crate::audit::audit_dirs`]).
    pub audit: AuditConfig,
    /// This sled's request key (read from its key file), given to the
    /// node's context at boot and kept nowhere else. Without one the node
    /// refuses every Nexus request ([`tq_core::authority`]).
    pub request_key: Option<SledRequestKey>,
}

impl NodeConfig {
    /// The defaults, with these ledger paths and network settings.
    pub fn new(ledger: [PathBuf; LEDGER_COPIES], net: NetConfig) -> Self {
        Self {
            ledger,
            lrtq_share_file: None,
            net,
            peers: BTreeMap::new(),
            api_queue_len: DEFAULT_API_QUEUE_LEN,
            max_secret_waiters: DEFAULT_MAX_SECRET_WAITERS,
            max_proxied: DEFAULT_MAX_PROXIED,
            share_patience: DEFAULT_SHARE_PATIENCE,
            store_backoff: BackoffConfig::default(),
            audit: AuditConfig::default(),
            request_key: None,
        }
    }
}

/// Why a node did not start.
#[derive(Debug)]
pub enum StartError {
    /// The TLS identity names no platform id.
    Identity(TlsSetupError),
    /// The ledger could not be opened (no valid copy: starting fresh could
    /// forget acknowledged state).
    Ledger(OpenError),
    /// The ledger holds a state the core refuses (a newer build's format,
    /// or corrupt bytes under a valid checksum).
    State(WireError),
    /// The LRTQ share file could not be used.
    LrtqFile(LrtqFileError),
    /// The core refused the LRTQ share data.
    Lrtq(RestoreLrtqError),
    /// The network did not start.
    Net(NetStartError),
    /// The audit log could not be opened on either drive.
    Audit(AuditOpenError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Identity(e) => write!(f, "TLS identity: {e}"),
            Self::Ledger(e) => write!(f, "ledger: {e}"),
            Self::State(e) => write!(f, "stored state: {e}"),
            Self::LrtqFile(e) => write!(f, "{e}"),
            Self::Lrtq(e) => write!(f, "{e}"),
            Self::Net(e) => write!(f, "network: {e}"),
            Self::Audit(e) => write!(f, "audit log: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A started node: its handle and its task (awaiting it waits for the task
/// to end; aborting it is a crash, as far as the node knows).
pub struct Started {
    /// Calls on the node.
    pub handle: NodeHandle,
    /// The task.
    pub task: JoinHandle<()>,
    /// The address the peer network listens on.
    pub listen: SocketAddr,
}

/// The rack a state belongs to, if it names one.
fn rack_of(state: &PersistentState) -> Option<RackId> {
    state.lrtq().map(|lrtq| lrtq.rack_id).or_else(|| {
        state
            .fields()
            .configs
            .first()
            .map(|stored| stored.config.rack_id())
    })
}

/// Boots a node and spawns its task. Must be called within a tokio
/// runtime.
pub async fn start(config: NodeConfig, identity: &TlsIdentity) -> Result<Started, StartError> {
    let id = identity.platform_id().map_err(StartError::Identity)?;
    let span = tracing::info_span!("node", sled = %id);
    let opened = Ledger::open(config.ledger.clone())
        .instrument(span.clone())
        .await
        .map_err(StartError::Ledger)?;
    let audit = AuditLog::open(
        audit_dirs(&config.ledger),
        id.to_string(),
        opened.report.generation,
        config.audit,
    )
    .instrument(span.clone())
    .await
    .map_err(StartError::Audit)?;
    let mut ctx = Box::new(NodeCtx::new(id.clone()));
    if let Some(key) = config.request_key.clone() {
        ctx.set_request_key(key);
    }
    match &opened.state {
        Some(bytes) => ctx.restore_state(bytes).map_err(StartError::State)?,
        None => {
            if let Some(path) = config.lrtq_share_file.clone() {
                let file = read_share_file(path).await.map_err(StartError::LrtqFile)?;
                ctx.restore_lrtq(&file.bytes).map_err(StartError::Lrtq)?;
                span.in_scope(|| tracing::info!("starting from the LRTQ share file"));
            }
        }
    }
    let mut net_config = config.net.clone();
    if net_config.rack_id.is_none() {
        net_config.rack_id = rack_of(ctx.persistent_state());
    }
    let (net, net_events) = Net::start(net_config, identity, config.peers.clone())
        .await
        .map_err(StartError::Net)?;
    let listen = net.local_addr();
    let latest = ctx.persistent_state().latest_committed_epoch();
    let (committed_tx, committed) = watch::channel(latest);
    let (requests_tx, requests) = mpsc::channel(config.api_queue_len.max(1));
    let stats = Arc::new(stats::ShimCounters::default());
    let generation = opened.report.generation;
    let mut io = io::ShimIo::new(
        opened.ledger,
        net,
        stats.clone(),
        config.store_backoff,
        audit,
    );
    // Recorded with the task's first drive.
    io.queue(AuditEvent::Started {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ledger_generation: generation,
    });
    let task = task::Task::new(ctx, io, &config, committed_tx);
    let join = tokio::spawn(task.run(requests, net_events).instrument(span.clone()));
    let handle = NodeHandle {
        id,
        requests: requests_tx,
        committed,
        stats,
        disks: crate::disks::DiskBoard::default(),
    };
    tokio::spawn(
        record_refusals(handle.clone(), config.audit.refusal_record_interval).instrument(span),
    );
    Ok(Started {
        handle,
        task: join,
        listen,
    })
}
