//! The Prometheus text of a running node, read back by a parser we did
//! not write (`openmetrics-parser`'s grammar of the text format), with
//! peer ids that need escaping, and every family under its documented name
//! and type.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::collections::BTreeMap;

use common::rack::{RACK_ID, Rack};
use openmetrics_parser::PrometheusValue;
use openmetrics_parser::prometheus::parse_prometheus;
use tq_core::api::CommitRequest;
use tq_core::ids::Epoch;
use tq_std::metrics::{Snapshot, render};
use tq_std::net::{NetStats, PeerStats};
use tq_std::node::report::StorageHealth;

/// Parses `text` and returns `type name{label=value,...} -> value` per
/// sample, labels sorted and unescaped. Fails the test if the parser
/// refuses the text, a value is not a whole number, or a sample repeats.
fn parse(text: &str) -> BTreeMap<String, u64> {
    let exposition = parse_prometheus(text)
        .unwrap_or_else(|e| panic!("the parser refused the text: {e:?}\n{text}"));
    let mut samples = BTreeMap::new();
    for (name, family) in &exposition.families {
        for sample in family.iter_samples() {
            let mut labels: Vec<String> = sample
                .get_labelset()
                .unwrap()
                .iter()
                .map(|(label, value)| format!("{label}={value}"))
                .collect();
            labels.sort();
            let value = match &sample.value {
                PrometheusValue::Counter(counter) => counter.value,
                PrometheusValue::Gauge(value) => *value,
                other => panic!("{name}: neither a counter nor a gauge: {other:?}"),
            };
            let value = value
                .as_i64()
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or_else(|| panic!("{name}: {value} is not a count"));
            let key = format!("{} {name}{{{}}}", family.family_type, labels.join(","));
            assert!(
                samples.insert(key, value).is_none(),
                "{name}: a sample repeats"
            );
        }
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_metrics_parse_back() {
    let mut rack = Rack::new(3, 0, 12);
    rack.start_all().await;
    rack.wait_connected().await;
    let handle = rack.handle(0).clone();
    // A proxied call and a refused commit, so some counters move.
    let commit = CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(2),
    };
    common::authority::proxy_commit(
        &handle,
        &rack.sleds[2].id,
        commit,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap()
    .unwrap_err();
    let snapshot = handle.metrics().await.unwrap();
    let text = render(&snapshot);
    let samples = parse(&text);

    let peer = rack.sleds[1].id.to_string();
    let frames_out = snapshot.net.peer(&rack.sleds[2].id).frames_out;
    assert!(frames_out >= 1);
    assert_eq!(
        samples[&format!(
            "counter tq_net_peer_frames_total{{direction=out,peer={}}}",
            rack.sleds[2].id
        )],
        frames_out
    );
    assert!(samples.contains_key(&format!(
        "counter tq_net_peer_bytes_total{{direction=in,peer={peer}}}"
    )));
    assert_eq!(
        samples["counter tq_proxy_forwarded_total{outcome=answered}"],
        1
    );
    assert_eq!(samples["counter tq_ledger_writes_total{outcome=both}"], 1);
    assert_eq!(samples["gauge tq_ledger_generation{}"], 1);
    assert_eq!(samples["gauge tq_node_state_stored{}"], 1);
    assert_eq!(samples["gauge tq_net_connected_peers{}"], 2);
    assert_eq!(
        samples["counter tq_net_handshakes_refused_total{reason=unknown_issuer}"],
        0
    );
    assert_eq!(
        samples["counter tq_node_events_total{event=wrong_rack_id}"],
        0
    );
    assert!(!samples.keys().any(|k| k.contains("latest_committed")));
    // Every core counter is there.
    let events = samples
        .keys()
        .filter(|k| k.starts_with("counter tq_node_events_total{"))
        .count();
    assert_eq!(events, tq_core::node::COUNTER_COUNT);
    rack.shutdown().await;
}

/// A node's snapshot with nothing counted but `net`'s counters, its
/// latest commit at epoch 4 and three failed writes in a row.
fn quiet_snapshot(net: NetStats) -> Snapshot {
    Snapshot {
        sled: common::pid("p", "s"),
        counters: tq_core::node::Counters::new(),
        alarms: 0,
        latest_committed: Some(Epoch(4)),
        secret_loaded: None,
        coordinating: None,
        storage: StorageHealth::Failing { attempts: 3 },
        ledger_status: tq_std::ledger::LedgerStatus::Healthy,
        ledger: Default::default(),
        net,
        connected: 0,
        shim: Default::default(),
        proxied_in_flight: 0,
        secret_waiters: 0,
        disks: Vec::new(),
        audit: Default::default(),
    }
}

#[test]
fn each_disk_has_its_state_epoch_and_counters() {
    use tq_std::disks::{DiskReport, DiskState, DiskStats};
    let mut snapshot = quiet_snapshot(NetStats::default());
    snapshot.disks = vec![
        DiskReport {
            name: "data0".into(),
            serial: "SN0".into(),
            backend: "fscrypt",
            state: DiskState::Unlocked,
            wrapped_epoch: Some(Epoch(4)),
            stats: DiskStats {
                rewraps: 2,
                ..Default::default()
            },
        },
        DiskReport {
            name: "zpool".into(),
            serial: "SN1".into(),
            backend: "command",
            state: DiskState::Failed("no".into()),
            wrapped_epoch: None,
            stats: DiskStats::default(),
        },
    ];
    let samples = parse(&render(&snapshot));
    assert_eq!(samples["gauge tq_disk_state{disk=data0,state=unlocked}"], 1);
    assert_eq!(samples["gauge tq_disk_state{disk=data0,state=locked}"], 0);
    assert_eq!(samples["gauge tq_disk_state{disk=zpool,state=failed}"], 1);
    assert_eq!(samples["gauge tq_disk_wrapped_epoch{disk=data0}"], 4);
    assert!(!samples.contains_key("gauge tq_disk_wrapped_epoch{disk=zpool}"));
    assert_eq!(samples["counter tq_disk_rewraps_total{disk=data0}"], 2);
    assert_eq!(
        samples["counter tq_disk_wrappings_refused_total{disk=zpool}"],
        0
    );
}

#[test]
fn peer_ids_that_need_escaping_survive_the_parser() {
    let awkward = common::pid("913\"x", "a\\b c");
    let mut net = NetStats::default();
    net.peers.insert(
        awkward.clone(),
        PeerStats {
            frames_in: 7,
            ..Default::default()
        },
    );
    let samples = parse(&render(&quiet_snapshot(net)));
    assert_eq!(
        samples[&format!("counter tq_net_peer_frames_total{{direction=in,peer={awkward}}}")],
        7
    );
    assert_eq!(samples["gauge tq_node_latest_committed_epoch{}"], 4);
    assert_eq!(samples["gauge tq_node_store_failing_attempts{}"], 3);
    assert_eq!(samples["gauge tq_node_state_stored{}"], 0);
}

/// Every family under the name, type and labels of the table in
/// `tq_std::metrics`'s doc: dashboards and `tq demo` query these names,
/// so a rename (or a doubled `_total`) is a breaking change.
#[test]
fn every_family_has_its_documented_name_type_and_labels() {
    let mut net = NetStats::default();
    net.peers
        .insert(common::pid("p", "1"), PeerStats::default());
    let mut snapshot = quiet_snapshot(net);
    snapshot.disks = vec![tq_std::disks::DiskReport {
        name: "data0".into(),
        serial: "SN0".into(),
        backend: "command",
        state: tq_std::disks::DiskState::Unlocked,
        wrapped_epoch: Some(Epoch(4)),
        stats: Default::default(),
    }];
    let exposition = parse_prometheus(&render(&snapshot)).unwrap();
    let mut families: Vec<String> = exposition
        .families
        .values()
        .map(|family| {
            let mut labels = family.get_label_names().to_vec();
            labels.sort();
            format!(
                "{} {} {}",
                family.family_name,
                family.family_type,
                labels.join(",")
            )
        })
        .collect();
    families.sort();
    let mut documented = vec![
        "tq_node_events_total counter event",
        "tq_node_alarms gauge ",
        "tq_node_latest_committed_epoch gauge ",
        "tq_node_secret_loaded_epoch gauge ",
        "tq_node_coordinating_epoch gauge ",
        "tq_node_state_stored gauge ",
        "tq_node_store_failures_total counter ",
        "tq_node_store_failing_attempts gauge ",
        "tq_node_busy_total counter bound",
        "tq_node_sends_dropped_total counter reason",
        "tq_node_undecodable_disconnects_total counter ",
        "tq_node_secret_waiters gauge ",
        "tq_proxy_forwarded_total counter outcome",
        "tq_proxy_served_total counter ",
        "tq_proxy_bad_frames_total counter ",
        "tq_proxy_late_answers_total counter ",
        "tq_proxy_in_flight gauge ",
        "tq_api_connections_refused_total counter reason",
        "tq_ledger_generation gauge ",
        "tq_ledger_writes_total counter outcome",
        "tq_ledger_write_retries_total counter ",
        "tq_ledger_copy_write_failures_total counter copy",
        "tq_ledger_copy_found_bad_total counter copy",
        "tq_ledger_copy_repairs_total counter copy",
        "tq_ledger_copy_repair_failures_total counter copy",
        "tq_ledger_degraded gauge ",
        "tq_audit_records_total counter ",
        "tq_audit_flushes_total counter ",
        "tq_audit_append_failures_total counter ",
        "tq_audit_rotations_total counter ",
        "tq_audit_shares_withheld_total counter ",
        "tq_audit_copy_failures_total counter copy",
        "tq_audit_copy_repairs_total counter copy",
        "tq_net_accepted_total counter ",
        "tq_net_handshakes_total counter ",
        "tq_net_handshakes_refused_total counter reason",
        "tq_net_reference_reload_failures_total counter ",
        "tq_net_connected_peers gauge ",
        "tq_net_peer_frames_total counter direction,peer",
        "tq_net_peer_bytes_total counter direction,peer",
        "tq_net_peer_keepalives_total counter direction,peer",
        "tq_net_peer_connects_total counter peer",
        "tq_net_peer_reconnects_total counter peer",
        "tq_net_peer_dials_total counter peer",
        "tq_net_peer_dial_failures_total counter peer",
        "tq_net_peer_queue_full_total counter peer",
        "tq_net_peer_closes_total counter peer,reason",
        "tq_disk_state gauge disk,state",
        "tq_disk_wrapped_epoch gauge disk",
        "tq_disk_unlock_attempts_total counter disk",
        "tq_disk_unlock_failures_total counter disk",
        "tq_disk_rewraps_total counter disk",
        "tq_disk_rewrap_failures_total counter disk",
        "tq_disk_wrappings_refused_total counter disk",
        "tq_disk_bad_key_copies_total counter disk",
        "tq_disk_degraded_writes_total counter disk",
    ];
    documented.sort();
    assert_eq!(families, documented);
}

/// The parser the tests above rely on refuses what Prometheus would, so
/// their passing means something: each pair is a text it reads and the
/// same text with one mistake.
#[test]
fn the_parser_refuses_malformed_text() {
    for (well_formed, malformed) in [
        // An unescaped quote in a label value.
        (
            "# TYPE a_total counter\na_total{peer=\"x\\\"y\"} 1\n",
            "# TYPE a_total counter\na_total{peer=\"x\"y\"} 1\n",
        ),
        // A value that is not a number.
        (
            "# TYPE a_total counter\na_total{peer=\"x\"} 1\n",
            "# TYPE a_total counter\na_total{peer=\"x\"} one\n",
        ),
        // One family typed twice.
        (
            "# TYPE a gauge\na 1\n",
            "# TYPE a gauge\n# TYPE a counter\na 1\n",
        ),
        // A label set given twice.
        (
            "# TYPE a gauge\na{b=\"1\"} 1\na{b=\"2\"} 2\n",
            "# TYPE a gauge\na{b=\"1\"} 1\na{b=\"1\"} 2\n",
        ),
    ] {
        parse(well_formed);
        assert!(parse_prometheus(malformed).is_err(), "{malformed}");
    }
}
