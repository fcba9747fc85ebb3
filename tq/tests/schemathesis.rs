//! Schemathesis (a property-based API tester we did not write) against the
//! committed OpenAPI document and a sled of a real, upgraded rack: it
//! generates valid and invalid requests for every operation from the
//! document and checks each answer against it (status codes, content
//! types, response schemas, invalid input refused, valid input accepted).
//! Two checks are left out, for what a JSON Schema cannot say:
//! `not_a_server_error` (a proxied call to a sled that does not exist is a
//! 502 by design) and `positive_data_acceptance` (a schema-valid request
//! may still be refused with 400: one naming another rack, a
//! configuration whose members are not sorted by id, an epoch above
//! 2^64 - 1, which JSON Schema's `uint64` format does not bound).
//! Everything else must conform, invalid input included.
//!
//! Schemathesis reaches the sled over HTTPS as tq's clients do: it trusts
//! the rack CA alone (`--tls-verify`) and accepts only a certificate
//! naming the sled's platform id (`tests/python/tq_sled_tls.py`, loaded
//! as its hooks module; a sled certificate names no host for its own
//! host-name check).
//!
//! Needs the `st` command (`pip install schemathesis`); skipped with a
//! `SKIPPED` line where it is missing, but not under CI, which installs
//! it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::process::Command;

use common::*;
use tq::api::types::SecretFingerprintRequest;
use tq_core::ids::Epoch;
use tq_std::net::identity::platform_id_uri;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_api_conforms_to_its_document() {
    if !tq_test_fixtures::tools::available(
        "st",
        &["--version"],
        "python3 -m pip install schemathesis",
    ) {
        return;
    }
    let mut rack = Rack::new(3, 0, 9);
    rack.start_all().await;
    upgrade(&rack, 0, Epoch(2), &[0, 1, 2], 2).await;
    wait_committed(&rack, &[0, 1, 2], Epoch(2)).await;
    // The secret is loaded, so a fingerprint is answered at once.
    rack.client(0)
        .secret_fingerprint(&SecretFingerprintRequest {
            deadline_ms: 20_000,
        })
        .await
        .unwrap();

    let document = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/sled.json");
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    let report = tempfile::tempdir().unwrap();
    let url = rack.base_url(0);
    let rack_ca = report.path().join("rack-ca.pem");
    std::fs::write(&rack_ca, rack.ca.pem()).unwrap();
    let uri = platform_id_uri(&rack.sleds[0].id);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("st")
            .args(["run", document, "--url", &url])
            .arg("--tls-verify")
            .arg(&rack_ca)
            .args(["--checks", "all"])
            .args([
                "--exclude-checks",
                "not_a_server_error,positive_data_acceptance",
            ])
            .args(["--max-examples", "20", "--seed", "1", "--workers", "1"])
            .args(["--request-timeout", "70", "--no-color"])
            .arg("--report-dir")
            .arg(report.path())
            .env("SCHEMATHESIS_HOOKS", "tq_sled_tls")
            .env("PYTHONPATH", hooks)
            .env("TQ_RACK_CA", &rack_ca)
            .env("TQ_PLATFORM_ID_URI", &uri)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    rack.stop_all().await;
}
