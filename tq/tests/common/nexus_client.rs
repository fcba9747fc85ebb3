//! A sled's API as Nexus calls it, for the tests that call endpoints one
//! by one: each call is authenticated with the fixtures' authority key for
//! the sled that runs it (a proxied call: for its target), each answer's
//! tag (a refusal's included) is checked before the test sees it, and the
//! answer is handed back alone, as the generated client's value.
// The generated client's error is what every call returns.
#![allow(clippy::result_large_err)]

use tq::api::error::{ApiError, Refusal};
use tq::api::types::{
    CommitBody, CoordinatorStatusBody, PrepareAndCommitBody, ProxyCommitRequest,
    ProxyPrepareAndCommitRequest, ProxyStatusRequest, ReconfigureBody, SecretFingerprintRequest,
    UpgradeFromLrtqBody,
};
use tq::client::{Client, Error as ClientError, ResponseValue};
use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LoadSecretError, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome, SecretFingerprint,
};
use tq_core::authority::{
    AnswerTag, CoordinatorStatusQuery, LatestSecretQuery, NexusRequest, NodeStatusQuery,
};
use tq_core::config::Configuration;
use tq_core::ids::PlatformId;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_core::wire::NexusWire;
use tq_driver::{AnswerCheck, Authority, Authorized};

/// What the generated client answers.
pub type Answered<T> = Result<ResponseValue<T>, ClientError<ApiError>>;

/// Nexus's authority over the fixtures' racks.
pub fn fixture_authority() -> Authority {
    Authority::new(tq_test_fixtures::authority_key(), tq_test_fixtures::RACK)
}

/// One sled's API, called as Nexus (see the module doc).
pub struct NexusClient {
    pub client: Client,
    pub id: PlatformId,
    pub authority: Authority,
}

fn authorize<T: NexusRequest + ?Sized>(
    authority: &Authority,
    to: &PlatformId,
    body: &T,
) -> Authorized {
    authority.authorize(to, body).unwrap()
}

/// `result` with its answer taken out of its tagged form, once the tag
/// checked (a refusal's tag too, against `pick`'s reading of it).
fn checked<A, T, E>(
    result: Answered<A>,
    check: &AnswerCheck,
    split: impl FnOnce(A) -> (T, AnswerTag),
    pick: fn(&Refusal) -> Option<E>,
) -> Answered<T>
where
    T: std::fmt::Debug + Clone,
    E: Clone,
    Result<T, E>: NexusWire,
{
    match result {
        Ok(value) => {
            let (status, headers) = (value.status(), value.headers().clone());
            let (answer, tag) = split(value.into_inner());
            check
                .verify(&Ok::<T, E>(answer.clone()), &tag)
                .expect("the node's tag of its answer checks");
            Ok(ResponseValue::new(answer, status, headers))
        }
        Err(ClientError::ErrorResponse(response)) => {
            if let Some(error) = response.refusal.as_deref().and_then(pick) {
                let tag = response.answer_tag.expect("a node's refusal is tagged");
                check
                    .verify(&Err::<T, E>(error), &tag)
                    .expect("the node's tag of its refusal checks");
            }
            Err(ClientError::ErrorResponse(response))
        }
        Err(other) => Err(other),
    }
}

/// [`checked`] for an answer that is never the node's refusal.
fn checked_plain<A, T>(
    result: Answered<A>,
    check: &AnswerCheck,
    split: impl FnOnce(A) -> (T, AnswerTag),
) -> Answered<T>
where
    T: std::fmt::Debug + NexusWire,
{
    result.map(|value| {
        let (status, headers) = (value.status(), value.headers().clone());
        let (answer, tag) = split(value.into_inner());
        check
            .verify(&answer, &tag)
            .expect("the node's tag of its answer checks");
        ResponseValue::new(answer, status, headers)
    })
}

fn reconfigure_refusal(r: &Refusal) -> Option<ReconfigureError> {
    match r {
        Refusal::Reconfigure(e) => Some(e.clone()),
        _ => None,
    }
}

fn upgrade_refusal(r: &Refusal) -> Option<LrtqUpgradeError> {
    match r {
        Refusal::UpgradeFromLrtq(e) => Some(e.clone()),
        _ => None,
    }
}

fn commit_refusal(r: &Refusal) -> Option<CommitError> {
    match r {
        Refusal::Commit(e) => Some(e.clone()),
        _ => None,
    }
}

fn load_secret_refusal(r: &Refusal) -> Option<LoadSecretError> {
    match r {
        Refusal::LoadSecret(e) => Some(e.clone()),
        _ => None,
    }
}

fn prepare_and_commit_refusal(r: &Refusal) -> Option<PrepareAndCommitError> {
    match r {
        Refusal::PrepareAndCommit(e) => Some(e.clone()),
        _ => None,
    }
}

impl NexusClient {
    pub async fn reconfigure(&self, msg: &ReconfigureMsg) -> Answered<ReconfigureOutcome> {
        let Authorized { auth, check } = authorize(&self.authority, &self.id, msg);
        let body = ReconfigureBody {
            auth: Some(auth),
            request: msg.clone(),
        };
        checked(
            self.client.reconfigure(&body).await,
            &check,
            |a| (a.answer, a.tag),
            reconfigure_refusal,
        )
    }

    pub async fn upgrade_from_lrtq(&self, msg: &LrtqUpgradeMsg) -> Answered<()> {
        let Authorized { auth, check } = authorize(&self.authority, &self.id, msg);
        let body = UpgradeFromLrtqBody {
            auth: Some(auth),
            request: msg.clone(),
        };
        checked(
            self.client.upgrade_from_lrtq(&body).await,
            &check,
            |a| ((), a.tag),
            upgrade_refusal,
        )
    }

    pub async fn commit(&self, request: &CommitRequest) -> Answered<CommitOutcome> {
        let Authorized { auth, check } = authorize(&self.authority, &self.id, request);
        let body = CommitBody {
            auth: Some(auth),
            request: *request,
        };
        checked(
            self.client.commit(&body).await,
            &check,
            |a| (a.answer, a.tag),
            commit_refusal,
        )
    }

    pub async fn prepare_and_commit(
        &self,
        config: &Configuration,
    ) -> Answered<PrepareAndCommitOutcome> {
        let Authorized { auth, check } = authorize(&self.authority, &self.id, config);
        let body = PrepareAndCommitBody {
            auth: Some(auth),
            request: config.clone(),
        };
        checked(
            self.client.prepare_and_commit(&body).await,
            &check,
            |a| (a.answer, a.tag),
            prepare_and_commit_refusal,
        )
    }

    pub async fn coordinator_status(&self) -> Answered<Option<CoordinatorStatus>> {
        let Authorized { auth, check } =
            authorize(&self.authority, &self.id, &CoordinatorStatusQuery);
        let body = CoordinatorStatusBody { auth: Some(auth) };
        checked_plain(self.client.coordinator_status(&body).await, &check, |a| {
            (a.answer, a.tag)
        })
    }

    /// The body's `auth` is filled in (for its target).
    pub async fn proxy_commit(&self, body: &ProxyCommitRequest) -> Answered<CommitOutcome> {
        let Authorized { auth, check } = authorize(&self.authority, &body.target, &body.request);
        let body = ProxyCommitRequest {
            auth: Some(auth),
            ..body.clone()
        };
        checked(
            self.client.proxy_commit(&body).await,
            &check,
            |a| (a.answer, a.tag),
            commit_refusal,
        )
    }

    /// The body's `auth` is filled in (for its target).
    pub async fn proxy_prepare_and_commit(
        &self,
        body: &ProxyPrepareAndCommitRequest,
    ) -> Answered<PrepareAndCommitOutcome> {
        let Authorized { auth, check } = authorize(&self.authority, &body.target, &body.config);
        let body = ProxyPrepareAndCommitRequest {
            auth: Some(auth),
            ..body.clone()
        };
        checked(
            self.client.proxy_prepare_and_commit(&body).await,
            &check,
            |a| (a.answer, a.tag),
            prepare_and_commit_refusal,
        )
    }

    /// The body's `auth` is filled in (for its target).
    pub async fn proxy_status(&self, body: &ProxyStatusRequest) -> Answered<NodeStatus> {
        let Authorized { auth, check } = authorize(&self.authority, &body.target, &NodeStatusQuery);
        let body = ProxyStatusRequest {
            auth: Some(auth),
            ..body.clone()
        };
        checked_plain(self.client.proxy_status(&body).await, &check, |a| {
            (a.answer, a.tag)
        })
    }

    /// The body's `auth` is filled in.
    pub async fn secret_fingerprint(
        &self,
        body: &SecretFingerprintRequest,
    ) -> Answered<SecretFingerprint> {
        let Authorized { auth, check } = authorize(&self.authority, &self.id, &LatestSecretQuery);
        let body = SecretFingerprintRequest {
            auth: Some(auth),
            ..body.clone()
        };
        checked(
            self.client.secret_fingerprint(&body).await,
            &check,
            |a| (a.answer, a.tag),
            load_secret_refusal,
        )
    }
}
