//! Nexus's authority in the tests: one authority key, every sled's request
//! key derived from it for the tests' rack, and Nexus's side of each call
//! (the authenticator of a request, the check of an answer's tag).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tq_core::api::{CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus};
use tq_core::authority::{
    CoordinatorStatusQuery, LatestSecretQuery, NONCE_LEN, NexusAuthorityKey, NexusCall,
    NexusRequest, NodeStatusQuery, RequestAuth, SledRequestKey,
};
use tq_core::ids::{PlatformId, RackId};
use tq_core::node::{CommitError, LoadSecretError, LrtqUpgradeError};
use tq_core::wire::NexusWire;
use tq_std::handle::{Answer, NodeHandle, Tagged};
use tq_std::secrets::{LoadedSecret, fingerprint_answer};

use super::rack::RACK_ID;

/// The tests' Nexus authority key.
pub fn authority() -> NexusAuthorityKey {
    NexusAuthorityKey::from_bytes([0x4e; 32])
}

/// Sled `id`'s request key for the tests' rack.
pub fn sled_key(id: &PlatformId) -> SledRequestKey {
    sled_key_for(RACK_ID, id)
}

/// Sled `id`'s request key for rack `rack`.
pub fn sled_key_for(rack: RackId, id: &PlatformId) -> SledRequestKey {
    authority().sled_key(rack, id).unwrap()
}

/// A nonce no other call of this test process used.
fn nonce() -> [u8; NONCE_LEN] {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    nonce
}

/// Nexus's authenticator of `body` for sled `target`.
pub fn authorize<B: NexusRequest + ?Sized>(target: &PlatformId, body: &B) -> RequestAuth {
    sled_key(target).authorize(target, nonce(), body).unwrap()
}

/// Whether `answer` carries `target`'s tag for the `call` made with
/// `auth`, as Nexus checks it before acting on it.
pub fn is_authentic<A: NexusWire>(
    target: &PlatformId,
    call: NexusCall,
    auth: &RequestAuth,
    answer: &Tagged<A>,
) -> bool {
    sled_key(target)
        .verify_answer(target, call, &auth.nonce, &answer.answer, &answer.tag)
        .is_ok()
}

/// The answer of a call whose tag must check out.
pub fn checked<A: NexusWire>(
    target: &PlatformId,
    call: NexusCall,
    auth: &RequestAuth,
    answer: Tagged<A>,
) -> A {
    assert!(
        is_authentic(target, call, auth, &answer),
        "{target}'s answer to {call:?} is not tagged by it"
    );
    answer.answer
}

// ---- Nexus's calls on a handle, authorized and their answers checked ----

/// `proxy_status` of `to` through `via`.
pub async fn proxy_status(
    via: &NodeHandle,
    to: &PlatformId,
    deadline: Duration,
) -> Answer<NodeStatus> {
    let auth = authorize(to, &NodeStatusQuery);
    via.proxy_status(to.clone(), auth.clone(), deadline)
        .await
        .map(|tagged| checked(to, NexusCall::NodeStatus, &auth, tagged))
}

/// `proxy_commit` on `to` through `via`.
pub async fn proxy_commit(
    via: &NodeHandle,
    to: &PlatformId,
    request: CommitRequest,
    deadline: Duration,
) -> Answer<Result<CommitOutcome, CommitError>> {
    let auth = authorize(to, &request);
    via.proxy_commit(to.clone(), auth.clone(), request, deadline)
        .await
        .map(|tagged| checked(to, NexusCall::Commit, &auth, tagged))
}

/// `commit` on `handle`'s sled.
pub async fn commit(
    handle: &NodeHandle,
    request: CommitRequest,
) -> Answer<Result<CommitOutcome, CommitError>> {
    let auth = authorize(handle.id(), &request);
    handle
        .commit(auth.clone(), request)
        .await
        .map(|tagged| checked(handle.id(), NexusCall::Commit, &auth, tagged))
}

/// `upgrade_from_lrtq` on `handle`'s sled.
pub async fn upgrade_from_lrtq(
    handle: &NodeHandle,
    msg: LrtqUpgradeMsg,
) -> Answer<Result<(), LrtqUpgradeError>> {
    let auth = authorize(handle.id(), &msg);
    handle
        .upgrade_from_lrtq(auth.clone(), msg)
        .await
        .map(|tagged| checked(handle.id(), NexusCall::UpgradeFromLrtq, &auth, tagged))
}

/// `coordinator_status` of `handle`'s sled.
pub async fn coordinator_status(handle: &NodeHandle) -> Answer<Option<CoordinatorStatus>> {
    let auth = authorize(handle.id(), &CoordinatorStatusQuery);
    handle
        .coordinator_status(auth.clone())
        .await
        .map(|tagged| checked(handle.id(), NexusCall::CoordinatorStatus, &auth, tagged))
}

/// Nexus's request for the latest secret of `handle`'s sled (as the
/// fingerprint endpoint makes it), the tag checked over what it covers.
pub async fn load_latest_secret(
    handle: &NodeHandle,
    deadline: Duration,
) -> Answer<Result<LoadedSecret, LoadSecretError>> {
    let id = handle.id();
    let auth = authorize(id, &LatestSecretQuery);
    let tagged = handle.load_latest_secret(auth.clone(), deadline).await?;
    let shown = Tagged {
        answer: fingerprint_answer(&tagged.answer),
        tag: tagged.tag,
    };
    assert!(
        is_authentic(id, NexusCall::LoadLatestSecret, &auth, &shown),
        "{id}'s secret answer is not tagged by it"
    );
    Ok(tagged.answer)
}
