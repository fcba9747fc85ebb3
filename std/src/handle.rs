//! The node handle: every call on a running node, from any task.
//!
//! A [`NodeHandle`] is cheap to clone. Each call is one request on the
//! node task's API queue, with its own reply channel. The queue is
//! bounded ([`crate::node::NodeConfig::api_queue_len`]): a full queue is
//! [`Unavailable::Busy`] at once, never a wait and never a panic.
//!
//! A Nexus-facing call takes Nexus's [`RequestAuth`] with its request and
//! answers `Ok(`[`Tagged`]`)`: the node's own answer (exactly the core's
//! types, so a Nexus driver passes it on) with the tag the node gave it
//! ([`tq_core::authority`]), which Nexus checks with the sled's key before
//! acting on it. `Err(`[`Unavailable`]`)` when the shim got no answer: the
//! node refused the request's authenticator ([`Unavailable::Refused`],
//! counted by the node), the queue is full, the task stopped, the ledger
//! could not store what the call changed (nothing is acknowledged while
//! the state is not on disk), or, for a proxied call, the target could not
//! be reached in time. The target of a proxied call checks the
//! authenticator itself; the forwarding sled only relays it.
//!
//! Not Nexus calls, and so not authenticated: [`NodeHandle::status`] and
//! [`NodeHandle::metrics`] (read-only, nothing secret), and
//! [`NodeHandle::load_rack_secret`], the host's own load for its disks
//! (see `tq_core::node::Node::load_rack_secret`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, PrepareAndCommitOutcome,
    ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::authority::{AnswerTag, RequestAuth, RequestRefusal};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId};
use tq_core::node::{
    CommitError, LoadSecretError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError,
};

use crate::audit::AuditEvent;
use crate::disks::DiskBoard;
use crate::metrics::Snapshot;
use crate::node::report::NodeReport;
use crate::node::stats::{ApiConnectionRefusal, ShimCounters};
use crate::proxy::{ProxyAnswer, ProxyRequest, RemoteUnavailable};
use crate::secrets::LoadedSecret;

pub use tq_core::api::{MAX_DEADLINE, MAX_DEADLINE_MS};

/// Why the shim has no answer from the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// A bounded queue or table is full; try again later.
    Busy(Bound),
    /// The node task has stopped.
    Stopped,
    /// The call changed the node's state, and neither ledger copy could
    /// store it: nothing is acknowledged (the write is retried with
    /// backoff, and what the change queued is sent once it is stored).
    NotStored {
        /// Failed writes in a row.
        attempts: u32,
    },
    /// The node knows no rack yet, so it cannot address a proxy frame.
    NoRack,
    /// Proxied: no connection to the target.
    NotConnected,
    /// Proxied: the connection to the target ended before its answer.
    Disconnected,
    /// Proxied or waited for: the deadline passed first.
    DeadlinePassed,
    /// Proxied: the target could not run the call.
    Remote(RemoteUnavailable),
    /// Proxied: the target answered with another call's answer.
    WrongAnswer,
    /// The node (the target, for a proxied call) refused the request's
    /// authenticator, and counted it.
    Refused(RequestRefusal),
    /// An invariant of this code broke (a frame that cannot be encoded).
    Internal,
}

/// Which bound was hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The node task's API queue.
    ApiQueue,
    /// Callers waiting for the latest secret.
    SecretWaiters,
    /// Proxied calls in flight.
    ProxyTable,
    /// The write queue of the connection to a proxy target.
    PeerQueue,
}

impl Bound {
    /// A stable snake-case name, for metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::ApiQueue => "api_queue",
            Self::SecretWaiters => "secret_waiters",
            Self::ProxyTable => "proxy_table",
            Self::PeerQueue => "peer_queue",
        }
    }

    /// Every bound, in label order.
    pub const ALL: [Self; 4] = [
        Self::ApiQueue,
        Self::SecretWaiters,
        Self::ProxyTable,
        Self::PeerQueue,
    ];
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Busy(bound) => write!(f, "busy: the {} is full", bound.label()),
            Self::Stopped => f.write_str("the node task has stopped"),
            Self::NotStored { attempts } => write!(
                f,
                "the ledger could not store the change ({attempts} failed writes); nothing was acknowledged"
            ),
            Self::NoRack => f.write_str("this sled knows no rack yet"),
            Self::NotConnected => f.write_str("not connected to the target sled"),
            Self::Disconnected => f.write_str("the target sled disconnected before answering"),
            Self::DeadlinePassed => f.write_str("the deadline passed"),
            Self::Remote(RemoteUnavailable::NotStored) => {
                f.write_str("the target sled could not store the change")
            }
            Self::Remote(RemoteUnavailable::Stopping) => {
                f.write_str("the target sled is shutting down")
            }
            Self::WrongAnswer => f.write_str("the target sled answered another call"),
            Self::Refused(refusal) => write!(f, "request refused: {refusal}"),
            Self::Internal => f.write_str("internal error"),
        }
    }
}

impl std::error::Error for Unavailable {}

/// A Nexus-facing call's result: the node's answer, or why there is none.
pub type Answer<T> = Result<T, Unavailable>;

/// A node's answer to a Nexus request, with the tag the node gave it over
/// the answer's Nexus encoding, the call and the request's nonce (see
/// [`tq_core::authority`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged<T> {
    /// The answer.
    pub answer: T,
    /// Its tag.
    pub tag: AnswerTag,
}

pub(crate) type Reply<T> = oneshot::Sender<Answer<T>>;

/// One call on the node task.
pub(crate) enum Request {
    Reconfigure(
        Box<RequestAuth>,
        Box<ReconfigureMsg>,
        Reply<Tagged<Result<ReconfigureOutcome, ReconfigureError>>>,
    ),
    UpgradeFromLrtq(
        Box<RequestAuth>,
        Box<LrtqUpgradeMsg>,
        Reply<Tagged<Result<(), LrtqUpgradeError>>>,
    ),
    Commit(
        Box<RequestAuth>,
        CommitRequest,
        Reply<Tagged<Result<CommitOutcome, CommitError>>>,
    ),
    PrepareAndCommit(
        Box<RequestAuth>,
        Box<Configuration>,
        Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>>,
    ),
    CoordinatorStatus(Box<RequestAuth>, Reply<Tagged<Option<CoordinatorStatus>>>),
    Status(Reply<Box<NodeReport>>),
    LoadSecret(Epoch, Reply<Result<Option<LoadedSecret>, LoadSecretError>>),
    LoadLatestSecret(
        Box<RequestAuth>,
        Reply<Tagged<Result<LoadedSecret, LoadSecretError>>>,
    ),
    LoadOwnLatestSecret(Reply<Result<LoadedSecret, LoadSecretError>>),
    Audit(Box<AuditEvent>, Reply<()>),
    ClearSecrets(Reply<()>),
    SetPeers(BTreeMap<PlatformId, SocketAddr>, Reply<()>),
    Metrics(Reply<Box<Snapshot>>),
    Proxy {
        to: PlatformId,
        auth: Box<RequestAuth>,
        request: ProxyRequest,
        deadline: Duration,
        reply: Reply<ProxyAnswer>,
    },
    Shutdown(Reply<()>),
}

/// Calls on a running node task. See the module doc.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) id: PlatformId,
    pub(crate) requests: mpsc::Sender<Request>,
    pub(crate) committed: watch::Receiver<Option<Epoch>>,
    pub(crate) stats: Arc<ShimCounters>,
    pub(crate) disks: DiskBoard,
}

impl NodeHandle {
    /// This sled.
    pub fn id(&self) -> &PlatformId {
        &self.id
    }

    /// Counts a connection the API's front door refused (in its metrics).
    pub fn count_api_connection_refused(&self, reason: ApiConnectionRefusal) {
        self.stats.api_connection_refused(reason);
    }

    /// [`Self::call`], given up after `deadline` (at most [`MAX_DEADLINE`]):
    /// [`Unavailable::DeadlinePassed`].
    async fn call_within<T>(
        &self,
        deadline: Duration,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> Answer<T> {
        tokio::time::timeout(deadline.min(MAX_DEADLINE), self.call(make))
            .await
            .unwrap_or(Err(Unavailable::DeadlinePassed))
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Answer<T> {
        let (reply, answer) = oneshot::channel();
        self.requests.try_send(make(reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.stats.busy(Bound::ApiQueue);
                Unavailable::Busy(Bound::ApiQueue)
            }
            mpsc::error::TrySendError::Closed(_) => Unavailable::Stopped,
        })?;
        answer.await.unwrap_or(Err(Unavailable::Stopped))
    }

    /// `coordinate_reconfiguration`, authorized by `auth`.
    pub async fn reconfigure(
        &self,
        auth: RequestAuth,
        msg: ReconfigureMsg,
    ) -> Answer<Tagged<Result<ReconfigureOutcome, ReconfigureError>>> {
        self.call(|reply| Request::Reconfigure(Box::new(auth), Box::new(msg), reply))
            .await
    }

    /// `coordinate_upgrade_from_lrtq`, authorized by `auth`.
    pub async fn upgrade_from_lrtq(
        &self,
        auth: RequestAuth,
        msg: LrtqUpgradeMsg,
    ) -> Answer<Tagged<Result<(), LrtqUpgradeError>>> {
        self.call(|reply| Request::UpgradeFromLrtq(Box::new(auth), Box::new(msg), reply))
            .await
    }

    /// `commit_configuration`, authorized by `auth`.
    pub async fn commit(
        &self,
        auth: RequestAuth,
        request: CommitRequest,
    ) -> Answer<Tagged<Result<CommitOutcome, CommitError>>> {
        self.call(|reply| Request::Commit(Box::new(auth), request, reply))
            .await
    }

    /// `prepare_and_commit`, authorized by `auth`.
    pub async fn prepare_and_commit(
        &self,
        auth: RequestAuth,
        config: Configuration,
    ) -> Answer<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        self.call(|reply| Request::PrepareAndCommit(Box::new(auth), Box::new(config), reply))
            .await
    }

    /// The running coordination, as Nexus polls it, authorized by `auth`
    /// (made for a [`tq_core::authority::CoordinatorStatusQuery`]).
    pub async fn coordinator_status(
        &self,
        auth: RequestAuth,
    ) -> Answer<Tagged<Option<CoordinatorStatus>>> {
        self.call(|reply| Request::CoordinatorStatus(Box::new(auth), reply))
            .await
    }

    /// The node's status, its ledger's health, its connections and its
    /// disks.
    pub async fn status(&self) -> Answer<NodeReport> {
        let report = self.call(Request::Status).await?;
        Ok(NodeReport {
            disks: self.disks.reports(),
            ..*report
        })
    }

    /// The secret of committed `epoch`; `Ok(Ok(None))` while shares are
    /// being collected. The host's own load, for its disks: not a Nexus
    /// call, so it takes no authenticator (see the module doc).
    pub async fn load_rack_secret(
        &self,
        epoch: Epoch,
    ) -> Answer<Result<Option<LoadedSecret>, LoadSecretError>> {
        self.call(|reply| Request::LoadSecret(epoch, reply)).await
    }

    /// Nexus's request for the secret of the latest committed epoch (the
    /// fingerprint endpoint), authorized by `auth` (made for a
    /// [`tq_core::authority::LatestSecretQuery`]), waiting up to `deadline`
    /// (at most [`MAX_DEADLINE`]) for its shares
    /// ([`Unavailable::DeadlinePassed`] after that). If a newer epoch
    /// commits meanwhile, that one's secret is what comes. A refusal
    /// (nothing committed, expunged) comes at once: only shares are waited
    /// for. The tag covers what the host may show Nexus, the
    /// `Result<`[`tq_core::api::SecretFingerprint`]`, LoadSecretError>` of
    /// [`crate::secrets::fingerprint_answer`], never the secret.
    pub async fn load_latest_secret(
        &self,
        auth: RequestAuth,
        deadline: Duration,
    ) -> Answer<Tagged<Result<LoadedSecret, LoadSecretError>>> {
        self.call_within(deadline, |reply| {
            Request::LoadLatestSecret(Box::new(auth), reply)
        })
        .await
    }

    /// The sled's own load of the latest secret, for its disks: as
    /// [`Self::load_latest_secret`] (and a sled of an LRTQ rack with
    /// nothing committed gets the LRTQ secret, as epoch 1), but not
    /// Nexus's call, so with no authenticator and no tag (see
    /// [`tq_core::node::Node::load_own_latest_rack_secret`]).
    pub async fn load_own_latest_secret(
        &self,
        deadline: Duration,
    ) -> Answer<Result<LoadedSecret, LoadSecretError>> {
        self.call_within(deadline, Request::LoadOwnLatestSecret)
            .await
    }

    /// Appends `event` to the audit log (written before this returns): for
    /// what the host refuses before the node sees it, such as a Nexus
    /// call without its authenticator.
    pub async fn audit(&self, event: AuditEvent) -> Answer<()> {
        self.call(|reply| Request::Audit(Box::new(event), reply))
            .await
    }

    /// Drops every cached secret and stops collecting shares for one.
    pub async fn clear_secrets(&self) -> Answer<()> {
        self.call(Request::ClearSecrets).await
    }

    /// Replaces the peer addresses.
    pub async fn set_peers(&self, peers: BTreeMap<PlatformId, SocketAddr>) -> Answer<()> {
        self.call(|reply| Request::SetPeers(peers, reply)).await
    }

    /// Every counter: the core's, the network's, the ledger's, the
    /// shim's and the disks' (render with [`crate::metrics::render`]).
    pub async fn metrics(&self) -> Answer<Snapshot> {
        let snapshot = self.call(Request::Metrics).await?;
        Ok(Snapshot {
            disks: self.disks.reports(),
            ..*snapshot
        })
    }

    /// The disks' states and counters, as the key manager
    /// ([`crate::disks`]) keeps them; empty without one.
    pub fn disks(&self) -> &DiskBoard {
        &self.disks
    }

    /// The latest committed epoch, as it changes (what sled-agent watches
    /// to rotate disk keys).
    pub fn watch_committed(&self) -> watch::Receiver<Option<Epoch>> {
        self.committed.clone()
    }

    /// `commit_configuration` on `to`, through this sled's connection to
    /// it, authorized by `auth` (made for `to`: the target checks it, this
    /// sled only relays it), failing after `deadline` (at most
    /// [`MAX_DEADLINE`]) or if the connection ends first.
    pub async fn proxy_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        request: CommitRequest,
        deadline: Duration,
    ) -> Answer<Tagged<Result<CommitOutcome, CommitError>>> {
        match self
            .proxy(to, auth, ProxyRequest::Commit(request), deadline)
            .await?
        {
            ProxyAnswer::Commit(answer, tag) => Ok(Tagged { answer, tag }),
            other => Err(unexpected(other)),
        }
    }

    /// `prepare_and_commit` on `to`, proxied (see [`Self::proxy_commit`]).
    pub async fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        config: Configuration,
        deadline: Duration,
    ) -> Answer<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        let request = ProxyRequest::PrepareAndCommit(Box::new(config));
        match self.proxy(to, auth, request, deadline).await? {
            ProxyAnswer::PrepareAndCommit(answer, tag) => Ok(Tagged { answer, tag }),
            other => Err(unexpected(other)),
        }
    }

    /// The node status of `to`, proxied (see [`Self::proxy_commit`]);
    /// `auth` is made for a [`tq_core::authority::NodeStatusQuery`].
    pub async fn proxy_status(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        deadline: Duration,
    ) -> Answer<Tagged<tq_core::api::NodeStatus>> {
        match self
            .proxy(to, auth, ProxyRequest::NodeStatus, deadline)
            .await?
        {
            ProxyAnswer::NodeStatus(status, tag) => Ok(Tagged {
                answer: *status,
                tag,
            }),
            other => Err(unexpected(other)),
        }
    }

    async fn proxy(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        request: ProxyRequest,
        deadline: Duration,
    ) -> Answer<ProxyAnswer> {
        self.call(|reply| Request::Proxy {
            to,
            auth: Box::new(auth),
            request,
            deadline,
            reply,
        })
        .await
    }

    /// Stops the node task and waits for it (and its connections) to end.
    pub async fn shutdown(&self) -> Answer<()> {
        self.call(Request::Shutdown).await
    }
}

fn unexpected(answer: ProxyAnswer) -> Unavailable {
    match answer {
        ProxyAnswer::Unavailable(reason) => Unavailable::Remote(reason),
        ProxyAnswer::Refused(refusal) => Unavailable::Refused(refusal),
        _ => Unavailable::WrongAnswer,
    }
}
