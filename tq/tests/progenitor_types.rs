//! The OpenAPI document alone describes every answer: a second client is
//! generated from `openapi/sled.json` with progenitor's own types (typify's
//! reading of each schema, none replaced by the crate's), and every
//! endpoint's answers and refusals of a real rack are decoded into them.
//! A schema that said less or other than the JSON would fail here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use common::nexus_client::fixture_authority;
use common::*;
use tq::api::types as ours;
use tq_core::authority::{
    CoordinatorStatusQuery, LatestSecretQuery, NexusRequest, NodeStatusQuery, RequestAuth,
};
use tq_core::ids::{Epoch, PlatformId};

mod generated {
    progenitor::generate_api!(
        spec = "openapi/sled.json",
        interface = Positional,
        derives = [PartialEq],
    );
}

use generated::types;

fn base(rack: &Rack, i: usize) -> generated::Client {
    generated::Client::new_with_client(&rack.base_url(i), rack.http(i))
}

/// Nexus's authenticator of `body` for sled `to`.
fn auth<T: NexusRequest + ?Sized>(to: &PlatformId, body: &T) -> Option<RequestAuth> {
    Some(fixture_authority().authorize(to, body).unwrap().auth)
}

/// Converts a value of the crate's types into the generated ones through
/// JSON, as a request body.
fn to_generated<T: serde::Serialize, U: serde::de::DeserializeOwned>(value: &T) -> U {
    serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_types_read_every_answer() {
    let mut rack = Rack::new(4, 1, 3);
    rack.start_all().await;

    // Before the upgrade: statuses with LRTQ data, a refusal.
    let status: types::SledStatus = base(&rack, 0).status().await.unwrap().into_inner();
    assert!(status.node.state.lrtq.is_some());
    let id = |i: usize| rack.sleds[i].id.clone();
    let status_body = |i: usize| -> types::CoordinatorStatusBody {
        to_generated(&ours::CoordinatorStatusBody {
            auth: auth(&id(i), &CoordinatorStatusQuery),
        })
    };
    let none = base(&rack, 0)
        .coordinator_status(&status_body(0))
        .await
        .unwrap()
        .into_inner();
    assert!(none.answer.is_none());
    let commit_request = tq_core::api::CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(2),
    };
    let commit_body = |i: usize| -> types::CommitBody {
        to_generated(&ours::CommitBody {
            auth: auth(&id(i), &commit_request),
            request: commit_request,
        })
    };
    match base(&rack, 0).commit(&commit_body(0)).await {
        Err(generated::Error::ErrorResponse(response)) => {
            assert_eq!(response.status().as_u16(), 409);
            let error = response.into_inner();
            assert_eq!(error.error_code, types::ErrorCode::NotPrepared);
            assert!(error.answer_tag.is_some());
            assert!(matches!(
                error.refusal,
                Some(types::Refusal::Commit(types::CommitError::NotPrepared(
                    types::Epoch(2)
                )))
            ));
        }
        other => panic!("{other:?}"),
    }

    // The upgrade, watched through the generated coordinator status.
    let msg = tq_core::api::LrtqUpgradeMsg {
        rack_id: RACK_ID,
        epoch: Epoch(2),
        members: members(&rack, &[0, 1, 2, 3]),
        threshold: threshold(3),
    };
    let upgraded = base(&rack, 0)
        .upgrade_from_lrtq(&to_generated(&ours::UpgradeFromLrtqBody {
            auth: auth(&id(0), &msg),
            request: msg.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(upgraded.tag.len(), 64);
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        let status = base(&rack, 0)
            .coordinator_status(&status_body(0))
            .await
            .unwrap()
            .into_inner()
            .answer;
        if let Some(status) = status
            && status.phase == types::CoordinatorPhase::Preparing
            && status.acked.len() >= 3
            && status.config.is_some()
        {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let config = status.config.unwrap();
    assert_eq!(config.members.len(), 4);
    for i in 0..3 {
        if status
            .acked
            .iter()
            .any(|id| id.serial_number.as_str() == rack.sleds[i].id.serial_number())
        {
            let outcome = base(&rack, i)
                .commit(&commit_body(i))
                .await
                .unwrap()
                .into_inner()
                .answer;
            assert!(matches!(
                outcome,
                types::CommitOutcome::Committed | types::CommitOutcome::AlreadyCommitted
            ));
        }
    }
    let ours_config: tq_core::config::Configuration =
        serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    let prepare_body = |i: usize| -> types::PrepareAndCommitBody {
        to_generated(&ours::PrepareAndCommitBody {
            auth: auth(&id(i), &ours_config),
            request: ours_config.clone(),
        })
    };
    let outcome = base(&rack, 3)
        .prepare_and_commit(&prepare_body(3))
        .await
        .unwrap()
        .into_inner()
        .answer;
    assert_ne!(outcome, types::PrepareAndCommitOutcome::AlreadyCommitted);
    for i in 0..3 {
        let _ = base(&rack, i)
            .prepare_and_commit(&prepare_body(i))
            .await
            .unwrap();
    }
    wait_committed(&rack, &[0, 1, 2, 3], Epoch(2)).await;

    // Proxied calls and the fingerprint.
    let target = id(3);
    let proxied = base(&rack, 0)
        .proxy_status(&to_generated(&ours::ProxyStatusRequest {
            target: target.clone(),
            deadline_ms: 10_000,
            auth: auth(&target, &NodeStatusQuery),
        }))
        .await
        .unwrap()
        .into_inner()
        .answer;
    assert_eq!(proxied.state.latest_committed, Some(types::Epoch(2)));
    assert_eq!(proxied.counters.internal, 0);
    let outcome = base(&rack, 0)
        .proxy_commit(&to_generated(&ours::ProxyCommitRequest {
            target: target.clone(),
            deadline_ms: 10_000,
            auth: auth(&target, &commit_request),
            request: commit_request,
        }))
        .await
        .unwrap()
        .into_inner()
        .answer;
    assert_eq!(outcome, types::CommitOutcome::AlreadyCommitted);
    let outcome = base(&rack, 0)
        .proxy_prepare_and_commit(&to_generated(&ours::ProxyPrepareAndCommitRequest {
            target: target.clone(),
            deadline_ms: 10_000,
            auth: auth(&target, &ours_config),
            config: ours_config.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .answer;
    assert_eq!(outcome, types::PrepareAndCommitOutcome::AlreadyCommitted);
    let print = base(&rack, 1)
        .secret_fingerprint(&to_generated(&ours::SecretFingerprintRequest {
            deadline_ms: 20_000,
            auth: auth(&id(1), &LatestSecretQuery),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(print.answer.epoch, types::Epoch(2));

    // Every sled's status, with ledger health and peers, after the commit.
    for i in 0..5 {
        let status = base(&rack, i).status().await.unwrap().into_inner();
        assert_eq!(status.peers.len(), 4);
        assert!(matches!(status.storage, types::Storage::Stored));
        assert!(matches!(status.ledger, types::Ledger::Healthy));
    }
    rack.stop_all().await;
}
