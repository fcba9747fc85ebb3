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

use common::*;
use tq_core::ids::Epoch;

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
    let none = base(&rack, 0)
        .coordinator_status()
        .await
        .unwrap()
        .into_inner();
    assert!(none.is_none());
    let request = types::CommitRequest {
        rack_id: RACK_ID.to_string().parse::<uuid::Uuid>().unwrap(),
        epoch: types::Epoch(2),
    };
    match base(&rack, 0).commit(&request).await {
        Err(generated::Error::ErrorResponse(response)) => {
            assert_eq!(response.status().as_u16(), 409);
            let error = response.into_inner();
            assert_eq!(error.error_code, types::ErrorCode::NotPrepared);
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
    base(&rack, 0)
        .upgrade_from_lrtq(&to_generated(&msg))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        let status = base(&rack, 0)
            .coordinator_status()
            .await
            .unwrap()
            .into_inner();
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
    let commit = types::CommitRequest {
        rack_id: RACK_ID.to_string().parse::<uuid::Uuid>().unwrap(),
        epoch: types::Epoch(2),
    };
    for i in 0..3 {
        if status
            .acked
            .iter()
            .any(|id| id.serial_number.as_str() == rack.sleds[i].id.serial_number())
        {
            let outcome = base(&rack, i).commit(&commit).await.unwrap().into_inner();
            assert!(matches!(
                outcome,
                types::CommitOutcome::Committed | types::CommitOutcome::AlreadyCommitted
            ));
        }
    }
    let outcome = base(&rack, 3)
        .prepare_and_commit(&config)
        .await
        .unwrap()
        .into_inner();
    assert_ne!(outcome, types::PrepareAndCommitOutcome::AlreadyCommitted);
    for i in 0..3 {
        let _ = base(&rack, i).prepare_and_commit(&config).await.unwrap();
    }
    wait_committed(&rack, &[0, 1, 2, 3], Epoch(2)).await;

    // Proxied calls and the fingerprint.
    let target: types::PlatformId = to_generated(&rack.sleds[3].id);
    let proxied = base(&rack, 0)
        .proxy_status(&types::ProxyStatusRequest {
            target: target.clone(),
            deadline_ms: std::num::NonZeroU64::new(10_000).unwrap(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proxied.state.latest_committed, Some(types::Epoch(2)));
    assert_eq!(proxied.counters.internal, 0);
    let outcome = base(&rack, 0)
        .proxy_commit(&types::ProxyCommitRequest {
            target: target.clone(),
            deadline_ms: std::num::NonZeroU64::new(10_000).unwrap(),
            request: commit.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome, types::CommitOutcome::AlreadyCommitted);
    let outcome = base(&rack, 0)
        .proxy_prepare_and_commit(&types::ProxyPrepareAndCommitRequest {
            target,
            deadline_ms: std::num::NonZeroU64::new(10_000).unwrap(),
            config: config.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome, types::PrepareAndCommitOutcome::AlreadyCommitted);
    let print = base(&rack, 1)
        .secret_fingerprint(&types::SecretFingerprintRequest {
            deadline_ms: std::num::NonZeroU64::new(20_000).unwrap(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(print.epoch, types::Epoch(2));

    // Every sled's status, with ledger health and peers, after the commit.
    for i in 0..5 {
        let status = base(&rack, i).status().await.unwrap().into_inner();
        assert_eq!(status.peers.len(), 4);
        assert!(matches!(status.storage, types::Storage::Stored));
        assert!(matches!(status.ledger, types::Ledger::Healthy));
    }
    rack.stop_all().await;
}
