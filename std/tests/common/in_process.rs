//! The in-process sled: the Nexus driver's [`SledApi`] over a node task's
//! [`NodeHandle`], so the driver drives the rack tests' node tasks. Here,
//! not in either crate: tq-std ships without the driver, and the driver
//! without the host runtime.
//!
//! The driver authenticates each call (with the tests' Nexus authority
//! key, [`super::authority::authority`]) and checks each answer's tag; this
//! adapter passes both through, as the HTTP API does.

use std::time::Duration;

use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::authority::RequestAuth;
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_driver::{CallFailure, FailureKind, Reply, SledApi, Tagged as DriverTagged};
use tq_std::handle::{NodeHandle, Tagged, Unavailable};

/// A node task's handle as the driver reaches a sled.
#[derive(Clone)]
pub struct InProcess(pub NodeHandle);

fn call_failure(reason: Unavailable) -> CallFailure {
    let kind = match reason {
        Unavailable::Stopped | Unavailable::Disconnected => FailureKind::Transport,
        Unavailable::DeadlinePassed => FailureKind::Timeout,
        Unavailable::WrongAnswer | Unavailable::Internal => FailureKind::BadAnswer,
        Unavailable::Refused(_) => FailureKind::RequestRefused,
        Unavailable::Busy(_)
        | Unavailable::NotStored { .. }
        | Unavailable::NoRack
        | Unavailable::NotConnected
        | Unavailable::Remote(_) => FailureKind::Unavailable,
    };
    CallFailure::new(kind, reason.to_string())
}

/// The node's answer with its tag, unchecked: the driver checks it.
fn reply<T>(answer: Result<Tagged<T>, Unavailable>) -> Reply<DriverTagged<T>> {
    let Tagged { answer, tag } = answer.map_err(call_failure)?;
    Ok(DriverTagged { answer, tag })
}

impl SledApi for InProcess {
    async fn reconfigure(
        &self,
        auth: RequestAuth,
        msg: ReconfigureMsg,
    ) -> Reply<DriverTagged<Result<ReconfigureOutcome, ReconfigureError>>> {
        reply(self.0.reconfigure(auth, msg).await)
    }

    async fn upgrade_from_lrtq(
        &self,
        auth: RequestAuth,
        msg: LrtqUpgradeMsg,
    ) -> Reply<DriverTagged<Result<(), LrtqUpgradeError>>> {
        reply(self.0.upgrade_from_lrtq(auth, msg).await)
    }

    async fn commit(
        &self,
        auth: RequestAuth,
        request: CommitRequest,
    ) -> Reply<DriverTagged<Result<CommitOutcome, CommitError>>> {
        reply(self.0.commit(auth, request).await)
    }

    async fn prepare_and_commit(
        &self,
        auth: RequestAuth,
        config: Configuration,
    ) -> Reply<DriverTagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        reply(self.0.prepare_and_commit(auth, config).await)
    }

    async fn coordinator_status(
        &self,
        auth: RequestAuth,
    ) -> Reply<DriverTagged<Option<CoordinatorStatus>>> {
        reply(self.0.coordinator_status(auth).await)
    }

    async fn status(&self) -> Reply<NodeStatus> {
        self.0
            .status()
            .await
            .map(|report| report.node)
            .map_err(call_failure)
    }

    async fn proxy_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        request: CommitRequest,
        deadline: Duration,
    ) -> Reply<DriverTagged<Result<CommitOutcome, CommitError>>> {
        reply(self.0.proxy_commit(to, auth, request, deadline).await)
    }

    async fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        config: Configuration,
        deadline: Duration,
    ) -> Reply<DriverTagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        reply(
            self.0
                .proxy_prepare_and_commit(to, auth, config, deadline)
                .await,
        )
    }

    async fn proxy_status(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        deadline: Duration,
    ) -> Reply<DriverTagged<NodeStatus>> {
        reply(self.0.proxy_status(to, auth, deadline).await)
    }
}
