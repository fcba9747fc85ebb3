//! How the driver reaches a sled: [`SledApi`], one async method per call
//! Nexus makes on a sled, and [`Directory`], which says which sleds Nexus
//! can reach directly.
//!
//! Every Nexus call carries the driver's [`RequestAuth`] for its target
//! sled, and comes back either with the node's own answer (exactly the
//! core's types) and the node's tag of it ([`Tagged`]), which the driver
//! checks before the machine hears of the answer, or with a
//! [`CallFailure`]: the driver could not get an answer it can attribute
//! to the sled, which the machine is told as `Unreachable`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::authority::{AnswerTag, RequestAuth};
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};

/// Why a call got no answer from the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFailure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// Details for an operator (an HTTP error, the node layer's reason).
    pub detail: String,
}

/// The kinds of [`CallFailure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer within the driver's call timeout.
    Timeout,
    /// The connection to the sled (or to the proxy) failed.
    Transport,
    /// The sled (or the proxy) answered that it could not run the call:
    /// busy, stopping, unable to store, not connected to the target.
    Unavailable,
    /// The answer did not decode, or answered another call.
    BadAnswer,
    /// Nexus has no route to the sled: no address, and no proxy took it.
    NoRoute,
    /// The sled refused the request's authenticator (tq-core's
    /// `RequestRefusal`: another rack, another sled, no key, a tag that
    /// does not match), or the API refused a call without one.
    RequestRefused,
    /// The answer's tag did not match the target sled's key: altered on
    /// the way, or not the target's answer to this request. Never acted on.
    AnswerUnauthenticated,
}

impl CallFailure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FailureKind::Timeout => "timed out",
            FailureKind::Transport => "transport",
            FailureKind::Unavailable => "unavailable",
            FailureKind::BadAnswer => "bad answer",
            FailureKind::NoRoute => "no route",
            FailureKind::RequestRefused => "request refused",
            FailureKind::AnswerUnauthenticated => "answer not authenticated",
        };
        if self.detail.is_empty() {
            f.write_str(kind)
        } else {
            write!(f, "{kind}: {}", self.detail)
        }
    }
}

impl std::error::Error for CallFailure {}

/// A call's result: the node's own answer, or why there is none.
pub type Reply<T> = Result<T, CallFailure>;

/// A node's answer to a Nexus call, and the node's tag of it (tq-core's
/// `authority`: over the answer's Nexus encoding and the request's
/// nonce, under the sled's request key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged<T> {
    /// The node's answer.
    pub answer: T,
    /// The node's tag of it.
    pub tag: AnswerTag,
}

/// One sled's API, as Nexus calls it: the Nexus-facing calls, the node
/// status, and the calls a sled passes through its peer connection to one
/// Nexus cannot reach (`proxy_*`, with a deadline for the proxy).
///
/// Every call but [`Self::status`] (which is open to anyone, and which the
/// driver never acts on) takes Nexus's authenticator for the sled that
/// runs it (the target, for a proxied call) and answers the node's answer
/// with its tag, unchecked: the driver checks it.
///
/// Implemented by the `tq` crate's HTTP client, and in tq-std's tests over
/// an in-process node handle. Cheap to clone: the
/// driver clones a sled's handle into every call it makes.
pub trait SledApi: Clone + Send + Sync + 'static {
    /// `coordinate_reconfiguration`.
    fn reconfigure(
        &self,
        auth: RequestAuth,
        msg: ReconfigureMsg,
    ) -> impl Future<Output = Reply<Tagged<Result<ReconfigureOutcome, ReconfigureError>>>> + Send;

    /// `coordinate_upgrade_from_lrtq`.
    fn upgrade_from_lrtq(
        &self,
        auth: RequestAuth,
        msg: LrtqUpgradeMsg,
    ) -> impl Future<Output = Reply<Tagged<Result<(), LrtqUpgradeError>>>> + Send;

    /// `commit_configuration`.
    fn commit(
        &self,
        auth: RequestAuth,
        request: CommitRequest,
    ) -> impl Future<Output = Reply<Tagged<Result<CommitOutcome, CommitError>>>> + Send;

    /// `prepare_and_commit`.
    fn prepare_and_commit(
        &self,
        auth: RequestAuth,
        config: Configuration,
    ) -> impl Future<Output = Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>>> + Send;

    /// `coordinator_status`.
    fn coordinator_status(
        &self,
        auth: RequestAuth,
    ) -> impl Future<Output = Reply<Tagged<Option<CoordinatorStatus>>>> + Send;

    /// The node's status, unauthenticated (for operators, not acted on).
    fn status(&self) -> impl Future<Output = Reply<NodeStatus>> + Send;

    /// `commit_configuration` on `to`, through this sled.
    fn proxy_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        request: CommitRequest,
        deadline: Duration,
    ) -> impl Future<Output = Reply<Tagged<Result<CommitOutcome, CommitError>>>> + Send;

    /// `prepare_and_commit` on `to`, through this sled.
    fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        config: Configuration,
        deadline: Duration,
    ) -> impl Future<Output = Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>>> + Send;

    /// The node status of `to`, through this sled.
    fn proxy_status(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        deadline: Duration,
    ) -> impl Future<Output = Reply<Tagged<NodeStatus>>> + Send;
}

/// The sleds Nexus can reach directly. Looked up at every call, so a
/// sled that restarts (a new handle, a new address) is reached again
/// once its entry changes.
pub trait Directory: Send + Sync + 'static {
    /// How a sled is reached.
    type Sled: SledApi;

    /// A direct route to `id`; `None` if Nexus has none (it then tries a
    /// proxy).
    fn direct(&self, id: &PlatformId) -> Option<Self::Sled>;
}

/// A directory kept in a shared map: clones share it, so a caller can
/// change a route while the driver runs.
pub struct SledMap<S> {
    routes: Arc<RwLock<BTreeMap<PlatformId, S>>>,
}

impl<S> Clone for SledMap<S> {
    fn clone(&self) -> Self {
        Self {
            routes: Arc::clone(&self.routes),
        }
    }
}

impl<S> Default for SledMap<S> {
    fn default() -> Self {
        Self {
            routes: Arc::default(),
        }
    }
}

impl<S: SledApi> SledMap<S> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reaches `id` directly through `sled` from now on.
    pub fn insert(&self, id: PlatformId, sled: S) {
        self.write().insert(id, sled);
    }

    /// Nexus no longer reaches `id` directly.
    pub fn remove(&self, id: &PlatformId) {
        self.write().remove(id);
    }

    /// The sleds with a direct route.
    pub fn ids(&self) -> Vec<PlatformId> {
        self.read().keys().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<PlatformId, S>> {
        // The map holds plain handles: a panic elsewhere leaves it usable.
        self.routes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<PlatformId, S>> {
        self.routes.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: SledApi> FromIterator<(PlatformId, S)> for SledMap<S> {
    fn from_iter<I: IntoIterator<Item = (PlatformId, S)>>(routes: I) -> Self {
        Self {
            routes: Arc::new(RwLock::new(routes.into_iter().collect())),
        }
    }
}

impl<S: SledApi> Directory for SledMap<S> {
    type Sled = S;

    fn direct(&self, id: &PlatformId) -> Option<S> {
        self.read().get(id).cloned()
    }
}
