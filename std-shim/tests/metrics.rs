//! The Prometheus text of a running node, read back by a real parser
//! (Python's `prometheus_client`), with peer ids that need escaping.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::rack::{RACK_ID, Rack};
use tq_core::api::CommitRequest;
use tq_core::ids::Epoch;
use tq_std::metrics::render;

/// Parses `text` with prometheus_client and prints `name{labels} value`
/// per sample, sorted.
const PARSER: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out.append(f"{family.type} {s.name}{{{labels}}} {int(s.value)}")
print("\n".join(sorted(out)))
"#;

fn parse(text: &str) -> BTreeMap<String, u64> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client refused the text (pip install prometheus_client): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_metrics_parse_with_prometheus_client() {
    let mut rack = Rack::new(3, 0, 12);
    rack.start_all().await;
    rack.wait_connected().await;
    let handle = rack.handle(0).clone();
    // A proxied call and a refused commit, so some counters move.
    let commit = CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(2),
    };
    handle
        .proxy_commit(
            rack.sleds[2].id.clone(),
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

#[test]
fn peer_ids_that_need_escaping_survive_the_parser() {
    use tq_std::metrics::Snapshot;
    let awkward = common::pid("913\"x", "a\\b c");
    let mut net = tq_std::net::NetStats::default();
    net.peers.insert(
        awkward.clone(),
        tq_std::net::PeerStats {
            frames_in: 7,
            ..Default::default()
        },
    );
    let snapshot = Snapshot {
        sled: common::pid("p", "s"),
        counters: tq_core::node::Counters::new(),
        alarms: 0,
        latest_committed: Some(Epoch(4)),
        secret_loaded: None,
        coordinating: None,
        storage: tq_std::node::report::StorageHealth::Failing { attempts: 3 },
        ledger_status: tq_std::ledger::LedgerStatus::Healthy,
        ledger: Default::default(),
        net,
        connected: 0,
        shim: Default::default(),
        proxied_in_flight: 0,
        secret_waiters: 0,
    };
    let samples = parse(&render(&snapshot));
    assert_eq!(
        samples[&format!("counter tq_net_peer_frames_total{{direction=in,peer={awkward}}}")],
        7
    );
    assert_eq!(samples["gauge tq_node_latest_committed_epoch{}"], 4);
    assert_eq!(samples["gauge tq_node_store_failing_attempts{}"], 3);
    assert_eq!(samples["gauge tq_node_state_stored{}"], 0);
}
