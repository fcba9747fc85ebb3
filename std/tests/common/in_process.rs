//! The in-process sled: the Nexus driver's [`SledApi`] over a node task's
//! [`NodeHandle`], so the driver drives the rack tests' node tasks. Here,
//! not in either crate: tq-std ships without the driver, and the driver
//! without the host runtime.

use std::time::Duration;

use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_driver::{CallFailure, FailureKind, Reply, SledApi};
use tq_std::handle::{NodeHandle, Unavailable};

/// A node task's handle as the driver reaches a sled.
#[derive(Clone)]
pub struct InProcess(pub NodeHandle);

fn call_failure(reason: Unavailable) -> CallFailure {
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
    CallFailure::new(kind, reason.to_string())
}

fn reply<T>(answer: Result<T, Unavailable>) -> Reply<T> {
    answer.map_err(call_failure)
}

impl SledApi for InProcess {
    async fn reconfigure(
        &self,
        msg: ReconfigureMsg,
    ) -> Reply<Result<ReconfigureOutcome, ReconfigureError>> {
        reply(self.0.reconfigure(msg).await)
    }

    async fn upgrade_from_lrtq(&self, msg: LrtqUpgradeMsg) -> Reply<Result<(), LrtqUpgradeError>> {
        reply(self.0.upgrade_from_lrtq(msg).await)
    }

    async fn commit(&self, request: CommitRequest) -> Reply<Result<CommitOutcome, CommitError>> {
        reply(self.0.commit(request).await)
    }

    async fn prepare_and_commit(
        &self,
        config: Configuration,
    ) -> Reply<Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
        reply(self.0.prepare_and_commit(config).await)
    }

    async fn coordinator_status(&self) -> Reply<Option<CoordinatorStatus>> {
        reply(self.0.coordinator_status().await)
    }

    async fn status(&self) -> Reply<NodeStatus> {
        reply(self.0.status().await).map(|report| report.node)
    }

    async fn proxy_commit(
        &self,
        to: PlatformId,
        request: CommitRequest,
        deadline: Duration,
    ) -> Reply<Result<CommitOutcome, CommitError>> {
        reply(self.0.proxy_commit(to, request, deadline).await)
    }

    async fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        config: Configuration,
        deadline: Duration,
    ) -> Reply<Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
        reply(self.0.proxy_prepare_and_commit(to, config, deadline).await)
    }

    async fn proxy_status(&self, to: PlatformId, deadline: Duration) -> Reply<NodeStatus> {
        reply(self.0.proxy_status(to, deadline).await)
    }
}
