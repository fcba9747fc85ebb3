//! Every endpoint of the sled API, through the generated client over real
//! loopback HTTPS, on a rack of real daemons (mutual TLS between them,
//! ledgers on disk): an LRTQ rack of four sleds and a fresh one go through
//! the upgrade, a reconfiguration adding the fresh sled and one removing a
//! sled; on the way every refusal a real node can be driven into is asked
//! for, and its status, code, sentence and core error checked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::collections::BTreeSet;

use common::*;
use tq::api::error::{ErrorCode, Refusal};
use tq::api::types::{
    ProxyCommitRequest, ProxyPrepareAndCommitRequest, ProxyStatusRequest, SecretFingerprintRequest,
};
use tq_core::api::{
    CommitOutcome, CommitRequest, LrtqUpgradeMsg, PrepareAndCommitOutcome, ReconfigureMsg,
    ReconfigureOutcome,
};
use tq_core::ids::{Epoch, RackId};
use tq_core::node::{
    CommitError, LoadSecretError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError,
};

const OTHER_RACK: RackId = RackId([0x99; 16]);

/// Asserts a refusal's status, code and, when the node refused, that the
/// sentence is the core error's.
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, tq::client::Error<tq::api::error::ApiError>>,
    status: u16,
    code: ErrorCode,
) -> tq::api::error::ApiError {
    let (got, error) = refusal(result);
    assert_eq!((got, error.error_code), (status, code), "{error:?}");
    assert_eq!(code.status_u16(), status);
    if let Some(refusal) = error.refusal.as_deref() {
        assert_eq!(error.message, refusal.message());
        assert_eq!(refusal.code(), code);
    }
    assert!(!error.message.is_empty());
    error
}

fn upgrade_msg(rack: &Rack, epoch: u64, sleds: &[usize], k: u8) -> LrtqUpgradeMsg {
    LrtqUpgradeMsg {
        rack_id: RACK_ID,
        epoch: Epoch(epoch),
        members: members(rack, sleds),
        threshold: threshold(k),
    }
}

fn reconfigure_msg(
    rack: &Rack,
    epoch: u64,
    last: Option<u64>,
    sleds: &[usize],
    k: u8,
) -> ReconfigureMsg {
    ReconfigureMsg {
        rack_id: RACK_ID,
        epoch: Epoch(epoch),
        last_committed_epoch: last.map(Epoch),
        members: members(rack, sleds),
        threshold: threshold(k),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_and_refusal_on_a_real_rack() {
    let mut rack = Rack::new(4, 1, 7);
    rack.start_all().await;
    let lrtq_sleds = [0, 1, 2, 3];
    let fresh = 4;

    // ---- before the upgrade ----
    let status = rack.client(0).status().await.unwrap().into_inner();
    assert_eq!(status.node.id, rack.sleds[0].id);
    assert!(status.node.state.lrtq.is_some());
    assert_eq!(status.peers.len(), 4);
    assert!(status.peers.iter().all(|p| p.connected));
    assert!(
        rack.client(fresh)
            .coordinator_status()
            .await
            .unwrap()
            .into_inner()
            .is_none()
    );

    // Nothing committed: refused at once, whatever the deadline.
    let error = assert_refused(
        rack.client(fresh)
            .secret_fingerprint(&SecretFingerprintRequest {
                deadline_ms: 60_000,
            })
            .await,
        409,
        ErrorCode::NoCommittedConfiguration,
    );
    assert_eq!(
        error.refusal.as_deref(),
        Some(&Refusal::LoadSecret(
            LoadSecretError::NoCommittedConfiguration
        ))
    );
    assert_refused(
        rack.client(fresh)
            .proxy_status(&ProxyStatusRequest {
                target: rack.sleds[0].id.clone(),
                deadline_ms: 1000,
            })
            .await,
        409,
        ErrorCode::NoRack,
    );
    assert_refused(
        rack.client(0)
            .reconfigure(&reconfigure_msg(&rack, 2, None, &lrtq_sleds, 3))
            .await,
        409,
        ErrorCode::MustUpgradeFromLrtq,
    );
    assert_refused(
        rack.client(fresh)
            .upgrade_from_lrtq(&upgrade_msg(&rack, 2, &[0, 1, 2, 4], 3))
            .await,
        409,
        ErrorCode::NoLrtqData,
    );
    let error = assert_refused(
        rack.client(0)
            .upgrade_from_lrtq(&upgrade_msg(&rack, 1, &lrtq_sleds, 3))
            .await,
        400,
        ErrorCode::EpochTooSmall,
    );
    assert_eq!(
        error.refusal.as_deref(),
        Some(&Refusal::UpgradeFromLrtq(LrtqUpgradeError::EpochTooSmall(
            Epoch(1)
        )))
    );
    let mut wrong_rack = upgrade_msg(&rack, 2, &lrtq_sleds, 3);
    wrong_rack.rack_id = OTHER_RACK;
    assert_refused(
        rack.client(0).upgrade_from_lrtq(&wrong_rack).await,
        400,
        ErrorCode::RackIdMismatch,
    );
    assert_refused(
        rack.client(0)
            .upgrade_from_lrtq(&upgrade_msg(&rack, 2, &[1, 2, 3], 2))
            .await,
        400,
        ErrorCode::NotAMember,
    );
    assert_refused(
        rack.client(0)
            .upgrade_from_lrtq(&upgrade_msg(&rack, 2, &[0, 1], 2))
            .await,
        400,
        ErrorCode::MemberCount,
    );
    assert_refused(
        rack.client(0)
            .upgrade_from_lrtq(&upgrade_msg(&rack, 2, &lrtq_sleds, 4))
            .await,
        400,
        ErrorCode::ThresholdTooLarge,
    );
    let error = assert_refused(
        rack.client(0)
            .commit(&CommitRequest {
                rack_id: RACK_ID,
                epoch: Epoch(2),
            })
            .await,
        409,
        ErrorCode::NotPrepared,
    );
    assert_eq!(
        error.refusal.as_deref(),
        Some(&Refusal::Commit(CommitError::NotPrepared(Epoch(2))))
    );
    assert_refused(
        rack.client(0)
            .proxy_status(&ProxyStatusRequest {
                target: rack.sleds[1].id.clone(),
                deadline_ms: 0,
            })
            .await,
        400,
        ErrorCode::InvalidDeadline,
    );
    assert_refused(
        rack.client(0)
            .proxy_status(&ProxyStatusRequest {
                target: tq_core::ids::PlatformId::new(tq_core::ids::SLED_PART_NUMBER, "NOSUCH")
                    .unwrap(),
                deadline_ms: 1000,
            })
            .await,
        502,
        ErrorCode::NotConnected,
    );

    // ---- the LRTQ upgrade to epoch 2 ----
    rack.client(0)
        .upgrade_from_lrtq(&upgrade_msg(&rack, 2, &lrtq_sleds, 3))
        .await
        .unwrap();
    let (config2, took) = commit_epoch(&rack, 0, Epoch(2), &lrtq_sleds).await;
    assert!(
        took.iter()
            .any(|t| matches!(t, Took::Commit(CommitOutcome::Committed)))
    );
    assert!(took.iter().any(|t| matches!(t, Took::PrepareAndCommit(_))));
    wait_committed(&rack, &lrtq_sleds, Epoch(2)).await;

    let error = assert_refused(
        rack.client(1)
            .upgrade_from_lrtq(&upgrade_msg(&rack, 3, &lrtq_sleds, 3))
            .await,
        409,
        ErrorCode::AlreadyCommitted,
    );
    assert_eq!(
        error.refusal.as_deref(),
        Some(&Refusal::UpgradeFromLrtq(
            LrtqUpgradeError::AlreadyCommitted(Epoch(2))
        ))
    );
    assert_refused(
        rack.client(1)
            .commit(&CommitRequest {
                rack_id: OTHER_RACK,
                epoch: Epoch(2),
            })
            .await,
        400,
        ErrorCode::RackIdMismatch,
    );
    assert_eq!(
        rack.client(1)
            .commit(&CommitRequest {
                rack_id: RACK_ID,
                epoch: Epoch(2),
            })
            .await
            .unwrap()
            .into_inner(),
        CommitOutcome::AlreadyCommitted
    );
    let error = assert_refused(
        rack.client(1)
            .reconfigure(&reconfigure_msg(&rack, 2, Some(2), &lrtq_sleds, 3))
            .await,
        409,
        ErrorCode::EpochNotNewer,
    );
    assert_eq!(
        error.refusal.as_deref(),
        Some(&Refusal::Reconfigure(ReconfigureError::EpochNotNewer {
            latest: Epoch(2)
        }))
    );
    assert_refused(
        rack.client(1)
            .reconfigure(&reconfigure_msg(&rack, 3, None, &lrtq_sleds, 3))
            .await,
        409,
        ErrorCode::LastCommittedEpochMismatch,
    );
    assert_refused(
        rack.client(1)
            .reconfigure(&reconfigure_msg(&rack, 3, Some(2), &[0, 2, 3], 2))
            .await,
        400,
        ErrorCode::NotAMember,
    );

    // ---- a reconfiguration to epoch 3 adding the fresh sled ----
    let all = [0, 1, 2, 3, 4];
    let msg3 = reconfigure_msg(&rack, 3, Some(2), &all, 3);
    assert_eq!(
        rack.client(1)
            .reconfigure(&msg3)
            .await
            .unwrap()
            .into_inner(),
        ReconfigureOutcome::Started
    );
    assert_eq!(
        rack.client(1)
            .reconfigure(&msg3)
            .await
            .unwrap()
            .into_inner(),
        ReconfigureOutcome::AlreadyRunning
    );
    assert_refused(
        rack.client(1)
            .reconfigure(&reconfigure_msg(&rack, 3, Some(2), &all, 2))
            .await,
        409,
        ErrorCode::DifferentRequestRunning,
    );
    let (config3, _) = commit_epoch(&rack, 1, Epoch(3), &all).await;
    wait_committed(&rack, &all, Epoch(3)).await;

    let error = assert_refused(
        rack.client(0).prepare_and_commit(&config2).await,
        409,
        ErrorCode::NewerCommitted,
    );
    assert_eq!(
        error.refusal.as_deref(),
        Some(&Refusal::PrepareAndCommit(
            PrepareAndCommitError::NewerCommitted {
                epoch: Epoch(2),
                latest: Epoch(3)
            }
        ))
    );
    assert_eq!(
        rack.client(1)
            .proxy_prepare_and_commit(&ProxyPrepareAndCommitRequest {
                target: rack.sleds[fresh].id.clone(),
                deadline_ms: 10_000,
                config: config3.clone(),
            })
            .await
            .unwrap()
            .into_inner(),
        PrepareAndCommitOutcome::AlreadyCommitted
    );
    assert_eq!(
        rack.client(2)
            .proxy_commit(&ProxyCommitRequest {
                target: rack.sleds[fresh].id.clone(),
                deadline_ms: 10_000,
                request: CommitRequest {
                    rack_id: RACK_ID,
                    epoch: Epoch(3),
                },
            })
            .await
            .unwrap()
            .into_inner(),
        CommitOutcome::AlreadyCommitted
    );
    let proxied = rack
        .client(0)
        .proxy_status(&ProxyStatusRequest {
            target: rack.sleds[fresh].id.clone(),
            deadline_ms: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proxied.id, rack.sleds[fresh].id);
    assert_eq!(proxied.state.latest_committed, Some(Epoch(3)));

    // ---- a reconfiguration to epoch 4 removing sled 3 ----
    let remaining = [0, 1, 2, 4];
    let (config4, _) = reconfigure(&rack, 2, Epoch(4), Epoch(3), &remaining, 3).await;
    wait_committed(&rack, &remaining, Epoch(4)).await;
    assert_refused(
        rack.client(3).prepare_and_commit(&config4).await,
        400,
        ErrorCode::NotAMember,
    );

    // Every remaining member loads the same epoch-4 secret.
    let mut prints = BTreeSet::new();
    for i in remaining {
        let print = rack
            .client(i)
            .secret_fingerprint(&SecretFingerprintRequest {
                deadline_ms: 20_000,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(print.epoch, Epoch(4));
        assert_eq!(print.fingerprint.len(), 64);
        assert!(print.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
        prints.insert(print.fingerprint);
    }
    assert_eq!(prints.len(), 1, "members disagree: {prints:?}");

    // The removed sled learns it was expunged when it asks for shares.
    let deadline = tokio::time::Instant::now() + WAIT;
    let expunged = loop {
        let result = rack
            .client(3)
            .secret_fingerprint(&SecretFingerprintRequest { deadline_ms: 2000 })
            .await;
        let (status, error) = refusal(result);
        if error.error_code == ErrorCode::Expunged {
            assert_eq!(status, 403);
            break error;
        }
        // Until a member says so, the shares it asks for do not come.
        assert_eq!(error.error_code, ErrorCode::DeadlinePassed, "{error:?}");
        assert_eq!(status, 504);
        assert!(tokio::time::Instant::now() < deadline, "never expunged");
    };
    assert!(matches!(
        expunged.refusal.as_deref(),
        Some(Refusal::LoadSecret(LoadSecretError::Expunged(_)))
    ));
    assert_refused(
        rack.client(3)
            .reconfigure(&reconfigure_msg(&rack, 5, Some(4), &[0, 1, 2, 3], 2))
            .await,
        403,
        ErrorCode::Expunged,
    );
    assert_refused(
        rack.client(3)
            .commit(&CommitRequest {
                rack_id: RACK_ID,
                epoch: Epoch(4),
            })
            .await,
        403,
        ErrorCode::Expunged,
    );

    // Metrics: Prometheus text with the node's latest commit.
    let response = rack
        .http(0)
        .get(format!("{}/metrics", rack.base_url(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        tq::server::METRICS_CONTENT_TYPE
    );
    let text = response.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l == "tq_node_latest_committed_epoch 4"),
        "{text}"
    );
    // The generated client's metrics call gets the same body.
    let body = rack.client(0).metrics().await.unwrap().into_inner();
    let bytes = body_bytes(body).await;
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .contains("# TYPE tq_node_events_total counter")
    );

    rack.stop_all().await;
}

async fn body_bytes(stream: tq::client::ByteStream) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut stream = stream.into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// The framework's own refusals: malformed JSON, wrong field types,
/// unknown fields, a wrong content type, an oversized body (dropshot
/// answers 400 to each, with our code), an unknown path, a wrong method
/// (dropshot's router answers, the front door puts it in our form): each
/// with the table's status and code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_framework_codes() {
    let mut rack = Rack::new(0, 3, 1);
    rack.start(0).await;
    let base = rack.base_url(0);
    let http = rack.http(0);
    let post = |path: &str, body: Vec<u8>, content_type: &str| {
        http.post(format!("{base}{path}"))
            .header("content-type", content_type.to_owned())
            .body(body)
            .send()
    };
    let big = vec![b' '; tq::server::MAX_REQUEST_BODY_BYTES + 1];
    let cases: Vec<(reqwest::Response, u16, ErrorCode)> = vec![
        (
            post("/v1/commit", b"{not json".to_vec(), "application/json")
                .await
                .unwrap(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            post(
                "/v1/commit",
                br#"{"rack_id": 5, "epoch": 2}"#.to_vec(),
                "application/json",
            )
            .await
            .unwrap(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            post(
                "/v1/secret/fingerprint",
                br#"{"deadline_ms": 5, "extra": 1}"#.to_vec(),
                "application/json",
            )
            .await
            .unwrap(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            post("/v1/commit", b"{}".to_vec(), "text/plain")
                .await
                .unwrap(),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            post("/v1/commit", big, "application/json").await.unwrap(),
            400,
            ErrorCode::InvalidRequest,
        ),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status().as_u16(), status, "{code:?}");
        let error: tq::api::error::ApiError = response.json().await.unwrap();
        assert_eq!(error.error_code, code);
        assert_eq!(error.refusal, None);
    }
    // Routing fails before any endpoint: the front door gives the body
    // our form too.
    for (response, status, code) in [
        (
            http.get(format!("{base}/v1/nothing")).send().await.unwrap(),
            404,
            ErrorCode::UnknownPath,
        ),
        (
            http.get(format!("{base}/v1/commit")).send().await.unwrap(),
            405,
            ErrorCode::MethodNotAllowed,
        ),
    ] {
        assert_eq!(response.status().as_u16(), status);
        // A 405 names the methods the path takes (RFC 9110 15.5.6).
        if status == 405 {
            assert_eq!(response.headers()["allow"], "POST");
        }
        let error: tq::api::error::ApiError = response.json().await.unwrap();
        assert_eq!(error.error_code, code);
        assert!(!error.message.is_empty());
    }
    rack.stop_all().await;
}

/// The Nexus driver's client reads only the sled it expects: at this
/// sled's address, a client expecting another sled, or trusting another
/// rack's CA, gets a transport failure (the machine is told the sled is
/// unreachable), never an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drivers_client_reads_only_the_sled_it_expects() {
    use tq::https::RackCa;
    use tq::nexus::http::HttpSled;
    use tq_driver::{FailureKind, SledApi};

    let mut rack = Rack::new(0, 2, 1);
    rack.start(0).await;
    let addr = rack.api_addr(0);
    let ids = rack.ids();
    let rack_ca = rack.rack_ca();
    let other_ca = RackCa::new(vec![tq_test_fixtures::pki::Ca::new("another rack").der()]).unwrap();
    let sled = |id: &tq_core::ids::PlatformId, ca: &RackCa| {
        HttpSled::new(addr, id.clone(), ca, WAIT).unwrap()
    };

    let status = sled(&ids[0], &rack_ca).sled_status().await.unwrap();
    assert_eq!(status.node.id, ids[0]);
    for (what, api) in [
        ("another sled", sled(&ids[1], &rack_ca)),
        ("another rack's CA", sled(&ids[0], &other_ca)),
    ] {
        let failure = api.sled_status().await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Transport, "{what}: {failure}");
        let failure = api.coordinator_status().await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Transport, "{what}: {failure}");
    }
    rack.stop_all().await;
}
