//! The in-process sled: the Nexus driver's [`SledApi`] over a node task's
//! [`NodeHandle`], so the driver drives the rack tests' node tasks. Here,
//! not in either crate: tq-std ships without the driver, and the driver
//! without the host runtime.
//!
//! Each call is authorized here with the tests' Nexus authority
//! ([`super::authority`]) and each answer's tag checked before the driver
//! sees it: an answer not tagged by its sled is a bad answer.

use std::time::Duration;

use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::authority::{CoordinatorStatusQuery, NexusCall, NodeStatusQuery, RequestAuth};
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_core::wire::NexusWire;
use tq_driver::{CallFailure, FailureKind, Reply, SledApi};
use tq_std::handle::{NodeHandle, Tagged, Unavailable};

use super::authority::{authorize, is_authentic};

/// A node task's handle as the driver reaches a sled.
#[derive(Clone)]
pub struct InProcess(pub NodeHandle);

fn call_failure(reason: Unavailable) -> CallFailure {
    let kind = match reason {
        Unavailable::Stopped | Unavailable::Disconnected => FailureKind::Transport,
        Unavailable::DeadlinePassed => FailureKind::Timeout,
        Unavailable::WrongAnswer | Unavailable::Internal | Unavailable::Refused(_) => {
            FailureKind::BadAnswer
        }
        Unavailable::Busy(_)
        | Unavailable::NotStored { .. }
        | Unavailable::NoRack
        | Unavailable::NotConnected
        | Unavailable::Remote(_) => FailureKind::Unavailable,
    };
    CallFailure::new(kind, reason.to_string())
}

/// The answer if `target` tagged it for the `call` made with `auth`.
fn reply<T: NexusWire>(
    target: &PlatformId,
    call: NexusCall,
    auth: &RequestAuth,
    answer: Result<Tagged<T>, Unavailable>,
) -> Reply<T> {
    let answer = answer.map_err(call_failure)?;
    if is_authentic(target, call, auth, &answer) {
        Ok(answer.answer)
    } else {
        Err(CallFailure::new(
            FailureKind::BadAnswer,
            format!("{target}'s answer is not tagged by it"),
        ))
    }
}

impl SledApi for InProcess {
    async fn reconfigure(
        &self,
        msg: ReconfigureMsg,
    ) -> Reply<Result<ReconfigureOutcome, ReconfigureError>> {
        let auth = authorize(self.0.id(), &msg);
        let answer = self.0.reconfigure(auth.clone(), msg).await;
        reply(self.0.id(), NexusCall::Reconfigure, &auth, answer)
    }

    async fn upgrade_from_lrtq(&self, msg: LrtqUpgradeMsg) -> Reply<Result<(), LrtqUpgradeError>> {
        let auth = authorize(self.0.id(), &msg);
        let answer = self.0.upgrade_from_lrtq(auth.clone(), msg).await;
        reply(self.0.id(), NexusCall::UpgradeFromLrtq, &auth, answer)
    }

    async fn commit(&self, request: CommitRequest) -> Reply<Result<CommitOutcome, CommitError>> {
        let auth = authorize(self.0.id(), &request);
        let answer = self.0.commit(auth.clone(), request).await;
        reply(self.0.id(), NexusCall::Commit, &auth, answer)
    }

    async fn prepare_and_commit(
        &self,
        config: Configuration,
    ) -> Reply<Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
        let auth = authorize(self.0.id(), &config);
        let answer = self.0.prepare_and_commit(auth.clone(), config).await;
        reply(self.0.id(), NexusCall::PrepareAndCommit, &auth, answer)
    }

    async fn coordinator_status(&self) -> Reply<Option<CoordinatorStatus>> {
        let auth = authorize(self.0.id(), &CoordinatorStatusQuery);
        let answer = self.0.coordinator_status(auth.clone()).await;
        reply(self.0.id(), NexusCall::CoordinatorStatus, &auth, answer)
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
        request: CommitRequest,
        deadline: Duration,
    ) -> Reply<Result<CommitOutcome, CommitError>> {
        let auth = authorize(&to, &request);
        let answer = self
            .0
            .proxy_commit(to.clone(), auth.clone(), request, deadline)
            .await;
        reply(&to, NexusCall::Commit, &auth, answer)
    }

    async fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        config: Configuration,
        deadline: Duration,
    ) -> Reply<Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
        let auth = authorize(&to, &config);
        let answer = self
            .0
            .proxy_prepare_and_commit(to.clone(), auth.clone(), config, deadline)
            .await;
        reply(&to, NexusCall::PrepareAndCommit, &auth, answer)
    }

    async fn proxy_status(&self, to: PlatformId, deadline: Duration) -> Reply<NodeStatus> {
        let auth = authorize(&to, &NodeStatusQuery);
        let answer = self
            .0
            .proxy_status(to.clone(), auth.clone(), deadline)
            .await;
        reply(&to, NexusCall::NodeStatus, &auth, answer)
    }
}
