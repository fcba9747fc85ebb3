//! The in-process sled: [`SledApi`] over tq-std's [`NodeHandle`], for
//! tests and for a Nexus that runs in the same process as its sleds.

use std::time::Duration;

use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_std::handle::{NodeHandle, Unavailable};

use crate::sled::{CallFailure, FailureKind, Reply, SledApi};

impl From<Unavailable> for CallFailure {
    fn from(reason: Unavailable) -> Self {
        let kind = match reason {
            Unavailable::Stopped | Unavailable::Disconnected => FailureKind::Transport,
            Unavailable::DeadlinePassed => FailureKind::Timeout,
            Unavailable::WrongAnswer | Unavailable::Internal => FailureKind::BadAnswer,
            Unavailable::Busy(_)
            | Unavailable::NotStored { .. }
            | Unavailable::NoRack
            | Unavailable::NotConnected
            | Unavailable::Remote(_) => FailureKind::Unavailable,
        };
        Self::new(kind, reason.to_string())
    }
}

fn reply<T>(answer: Result<T, Unavailable>) -> Reply<T> {
    answer.map_err(CallFailure::from)
}

impl SledApi for NodeHandle {
    async fn reconfigure(
        &self,
        msg: ReconfigureMsg,
    ) -> Reply<Result<ReconfigureOutcome, ReconfigureError>> {
        reply(NodeHandle::reconfigure(self, msg).await)
    }

    async fn upgrade_from_lrtq(&self, msg: LrtqUpgradeMsg) -> Reply<Result<(), LrtqUpgradeError>> {
        reply(NodeHandle::upgrade_from_lrtq(self, msg).await)
    }

    async fn commit(&self, request: CommitRequest) -> Reply<Result<CommitOutcome, CommitError>> {
        reply(NodeHandle::commit(self, request).await)
    }

    async fn prepare_and_commit(
        &self,
        config: Configuration,
    ) -> Reply<Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
        reply(NodeHandle::prepare_and_commit(self, config).await)
    }

    async fn coordinator_status(&self) -> Reply<Option<CoordinatorStatus>> {
        reply(NodeHandle::coordinator_status(self).await)
    }

    async fn status(&self) -> Reply<NodeStatus> {
        reply(NodeHandle::status(self).await).map(|report| report.node)
    }

    async fn proxy_commit(
        &self,
        to: PlatformId,
        request: CommitRequest,
        deadline: Duration,
    ) -> Reply<Result<CommitOutcome, CommitError>> {
        reply(NodeHandle::proxy_commit(self, to, request, deadline).await)
    }

    async fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        config: Configuration,
        deadline: Duration,
    ) -> Reply<Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
        reply(NodeHandle::proxy_prepare_and_commit(self, to, config, deadline).await)
    }

    async fn proxy_status(&self, to: PlatformId, deadline: Duration) -> Reply<NodeStatus> {
        reply(NodeHandle::proxy_status(self, to, deadline).await)
    }
}
