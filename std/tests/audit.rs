//! The audit trail over a real run: an LRTQ rack of node tasks upgrades,
//! grows by a sled reached only through a proxy, and shrinks; secrets are
//! loaded for the sleds and for Nexus. Afterwards every sled's log
//! verifies in both copies, holds what happened (shares handed out before
//! they left, LRTQ shares, relayed commits, a refused commit and why,
//! secret loads and for whom, an expungement, starts), and matches none of the run's shares or secrets, in any of
//! the forms a leak could take (raw bytes, hex, a JSON array of bytes).
//! Share requests are recorded in batches; a share whose record reaches
//! no drive is withheld.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::time::Duration;

use common::authority::authorize;
use common::nexus::Driver;
use common::rack::{RACK_ID, Rack};
use common::{Immutable, Unwritable};
use tq_core::api::CommitRequest;
use tq_core::authority::LatestSecretQuery;
use tq_core::crypto::{Share, combine};
use tq_core::ids::Epoch;
use tq_core::wire;
use tq_nexus::Origin;
use tq_std::audit::verify::verify_dir;
use tq_std::audit::{AuditEvent, NexusCall, RequestOutcome, SecretFor, ShareMessage, audit_dirs};

const LIMIT: Duration = Duration::from_secs(60);
const SECRET_WAIT: Duration = Duration::from_secs(20);

/// Every share in sled `i`'s ledger copies, with its epoch.
fn ledger_shares(rack: &Rack, i: usize) -> Vec<(Epoch, Share)> {
    let mut shares = Vec::new();
    for path in rack.sleds[i].ledger_paths() {
        let bytes = std::fs::read(&path).unwrap();
        let (generation, payload) = tq_std::ledger::format::decode(&bytes).unwrap();
        if generation == 0 {
            continue;
        }
        let state = wire::decode_persistent_state(payload).unwrap();
        for stored in &state.fields().configs {
            if let Some(share) = &stored.share {
                shares.push((stored.config.epoch(), share.clone()));
            }
        }
    }
    shares
}

/// Adds every share now in the sleds' ledgers to `by_epoch` (their
/// ledgers drop older epochs' shares as the rack moves on).
fn collect_shares(rack: &Rack, by_epoch: &mut Vec<(Epoch, Vec<(usize, Share)>)>) {
    for i in 0..rack.sleds.len() {
        for (epoch, share) in ledger_shares(rack, i) {
            match by_epoch.iter_mut().find(|(e, _)| *e == epoch) {
                Some((_, shares)) => shares.push((i, share)),
                None => by_epoch.push((epoch, vec![(i, share)])),
            }
        }
    }
}

/// A byte string as a leak could write it.
fn forms(bytes: &[u8]) -> Vec<Vec<u8>> {
    let decimal: Vec<String> = bytes.iter().map(u8::to_string).collect();
    vec![
        bytes.to_vec(),
        hex::encode(bytes).into_bytes(),
        hex::encode_upper(bytes).into_bytes(),
        decimal.join(",").into_bytes(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_runs_logs_verify_hold_what_happened_and_no_share_or_secret() {
    let mut rack = Rack::new(4, 1, 61);
    rack.start_all().await;
    rack.wait_connected().await;
    let ids = rack.ids();
    let mut nexus = Driver::new(Origin::Lrtq, &ids[..4]).await;
    let lrtq: Vec<usize> = (0..4).collect();
    assert_eq!(nexus.start(&rack, &lrtq, 3, 0).await, Epoch(2));
    nexus.settle(&rack, LIMIT).await;
    let mut by_epoch = Vec::new();
    collect_shares(&rack, &mut by_epoch);

    // Sled 4 is reached only through sled 0's proxy.
    nexus.proxied.insert(ids[4].clone());
    let grown: Vec<usize> = (0..5).collect();
    assert_eq!(nexus.start(&rack, &grown, 3, 1).await, Epoch(3));
    nexus.settle(&rack, LIMIT).await;
    collect_shares(&rack, &mut by_epoch);
    let shrunk = [0, 1, 2, 4];
    assert_eq!(nexus.start(&rack, &shrunk, 3, 2).await, Epoch(4));
    nexus.settle(&rack, LIMIT).await;

    for i in shrunk {
        let handle = rack.handle(i);
        let mut watch = handle.watch_committed();
        tokio::time::timeout(LIMIT, watch.wait_for(|e| *e >= Some(Epoch(4))))
            .await
            .unwrap()
            .unwrap();
        handle.clear_secrets().await.unwrap();
        let auth = authorize(&rack.sleds[i].id, &LatestSecretQuery);
        let secret = handle
            .load_latest_secret(auth, SECRET_WAIT)
            .await
            .unwrap()
            .answer
            .unwrap();
        assert_eq!(secret.epoch(), Epoch(4));
        for epoch in 1..=4 {
            let loaded = handle
                .load_rack_secret(Epoch(epoch))
                .await
                .unwrap()
                .unwrap();
            assert!(loaded.is_some(), "sled {i}, epoch {epoch}");
        }
    }
    // A refused request is recorded with its reason.
    let request = CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(99),
    };
    let auth = authorize(&rack.sleds[0].id, &request);
    let refused = rack.handle(0).commit(auth, request).await.unwrap().answer;
    assert!(refused.is_err(), "{refused:?}");
    // Sled 3 left at epoch 4: asking its peers for epoch-3 shares, it
    // learns it was expunged, and its load is refused.
    let handle = rack.handle(3);
    handle.clear_secrets().await.unwrap();
    let expunged = handle.load_own_latest_secret(SECRET_WAIT).await.unwrap();
    assert!(expunged.is_err(), "{expunged:?}");
    rack.shutdown().await;
    collect_shares(&rack, &mut by_epoch);

    // The needles: every share and secret of the run.
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, sled) in rack.sleds.iter().enumerate() {
        if let Some(path) = &sled.lrtq_file {
            let file = tq_std::ledger::lrtq::read_share_file(path.clone())
                .await
                .unwrap();
            let data = wire::decode_lrtq_share_data(&file.bytes).unwrap();
            needles.push((
                format!("sled {i}'s LRTQ share"),
                data.share.expose_bytes()[1..].to_vec(),
            ));
        }
    }
    needles.push((
        "the LRTQ secret".into(),
        rack.lrtq_secret.as_ref().unwrap().expose_secret().to_vec(),
    ));
    for (epoch, shares) in by_epoch {
        let mut shares: Vec<Share> = shares
            .into_iter()
            .map(|(i, share)| {
                needles.push((
                    format!("sled {i}'s share of epoch {epoch}"),
                    share.expose_y().to_vec(),
                ));
                share
            })
            .collect();
        shares.sort_by_key(Share::x);
        shares.dedup_by_key(|s| s.x());
        let secret = combine(&shares[..3]).unwrap();
        needles.push((
            format!("the secret of epoch {epoch}"),
            secret.expose_secret().to_vec(),
        ));
    }
    let secrets = needles
        .iter()
        .filter(|(name, _)| name.starts_with("the secret"))
        .count();
    assert_eq!(secrets, 3, "the secrets of epochs 2, 3 and 4");

    // The search finds what is there: a share in its own ledger file.
    let (epoch, share) = ledger_shares(&rack, 0).pop().unwrap();
    let ledger = std::fs::read(&rack.sleds[0].ledger_paths()[0]).unwrap();
    let raw = share.expose_y();
    assert!(
        ledger.windows(raw.len()).any(|w| w == raw),
        "sled 0's epoch-{epoch} share was not found in its ledger: the search is broken"
    );

    let mut shares_sent = 0;
    let mut lrtq_shares_sent = 0;
    for (i, sled) in rack.sleds.iter().enumerate() {
        let dirs = audit_dirs(&sled.ledger_paths());
        let mut copies = Vec::new();
        for dir in &dirs {
            let mut events = Vec::new();
            let verdict = verify_dir(dir, |_, record, _| events.push(record.event.clone()));
            assert_eq!(verdict.bad, None, "sled {i}, {}", dir.display());
            assert!(
                verdict.summary.records > 3,
                "sled {i}: {:?}",
                verdict.summary
            );
            copies.push(events);

            for number in tq_std::audit::segment::list(dir).unwrap() {
                let bytes = std::fs::read(tq_std::audit::segment::path(dir, number)).unwrap();
                for (name, needle) in &needles {
                    for form in forms(needle) {
                        assert!(
                            !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                            "sled {i}'s audit segment {number} holds {name}"
                        );
                    }
                }
            }
        }
        assert_eq!(copies[0], copies[1], "sled {i}: the copies differ");
        let events = &copies[0];
        assert!(matches!(
            events[0],
            AuditEvent::SegmentOpened { segment: 0, .. }
        ));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, AuditEvent::Started { .. }))
        );
        shares_sent += events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    AuditEvent::ShareSent {
                        message: ShareMessage::Share,
                        ..
                    }
                )
            })
            .count();
        lrtq_shares_sent += events
            .iter()
            .filter(|e| matches!(e, AuditEvent::LrtqShareSent { .. }))
            .count();
        if i == 0 {
            // The upgrade's coordinator dealt the epoch-2 shares.
            assert!(events.iter().any(|e| matches!(
                e,
                AuditEvent::ShareSent {
                    epoch: 2,
                    message: ShareMessage::Prepare,
                    ..
                }
            )));
            assert!(events.iter().any(|e| matches!(
                e,
                AuditEvent::NexusRequest {
                    call: NexusCall::UpgradeFromLrtq,
                    epoch: Some(2),
                    ..
                }
            )));
        }
        if i == 4 {
            // Its commit came through sled 0.
            let via = Some(ids[0].to_string());
            assert!(
                events.iter().any(|e| matches!(e,
                    AuditEvent::NexusRequest { call: NexusCall::Commit | NexusCall::PrepareAndCommit, epoch: Some(3), via: v, .. } if *v == via)),
                "sled 4: {events:#?}"
            );
        }
        if i == 0 {
            let reason = "this sled has not prepared epoch 99: send it prepare-and-commit";
            assert!(
                events.iter().any(|e| matches!(e,
                    AuditEvent::NexusRequest {
                        call: NexusCall::Commit,
                        epoch: Some(99),
                        via: None,
                        outcome: RequestOutcome::Refused { reason: r },
                    } if r == reason)),
                "sled 0: {events:#?}"
            );
        }
        if i == 3 {
            assert!(
                events
                    .iter()
                    .any(|e| matches!(e, AuditEvent::Expunged { epoch: 4, .. })),
                "sled 3: {events:#?}"
            );
            assert!(
                events.iter().any(|e| matches!(
                    e,
                    AuditEvent::SecretLoad {
                        for_whom: SecretFor::Sled,
                        refused: Some(_),
                        ..
                    }
                )),
                "sled 3: {events:#?}"
            );
        }
        if shrunk.contains(&i) {
            for for_whom in [SecretFor::NexusFingerprint, SecretFor::Sled] {
                assert!(
                    events.contains(&AuditEvent::SecretLoad {
                        for_whom,
                        epoch: Some(4),
                        refused: None
                    }),
                    "sled {i}: no load for {for_whom:?}"
                );
            }
        }
    }
    assert!(shares_sent > 0, "no share answer was recorded");
    assert_eq!(
        lrtq_shares_sent, 3,
        "the upgrade coordinator asked three LRTQ sleds"
    );
}

/// Flushes and share records of every sled's audit log, summed.
async fn audit_counts(rack: &Rack) -> (u64, u64) {
    let mut counts = (0, 0);
    for i in 0..rack.sleds.len() {
        let audit = rack.handle(i).metrics().await.unwrap().audit;
        counts.0 += audit.flushes;
        counts.1 += audit.records;
    }
    counts
}

/// Every sled loading at once, each asking `K − 1` others for their
/// shares: a sled records the shares it hands out in batches, each one
/// flush of the drives, not one flush per request. Without batching, the
/// flushes would be at least the shares handed out plus one per sled (its
/// own rebuilt secret): exactly that many with a batch of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_share_requests_is_flushed_in_batches() {
    const SLEDS: usize = 8;
    const BURSTS: u64 = 3;
    let mut rack = Rack::new(SLEDS, 0, 62);
    rack.start_all().await;
    rack.wait_connected().await;
    let all: Vec<usize> = (0..SLEDS).collect();
    let mut nexus = Driver::new(Origin::Lrtq, &rack.ids()).await;
    nexus.start(&rack, &all, 5, 0).await;
    nexus.settle(&rack, LIMIT).await;

    let mut shares = 0;
    let mut flushes = 0;
    for _ in 0..BURSTS {
        for &i in &all {
            rack.handle(i).clear_secrets().await.unwrap();
        }
        let before = audit_counts(&rack).await;
        let logs_before: usize = all.iter().map(|&i| share_records(&rack, i)).sum();
        let loads = all.iter().map(|&i| rack.load_latest_secret(i, SECRET_WAIT));
        for loaded in futures_util::future::join_all(loads).await {
            loaded.unwrap().unwrap();
        }
        let after = audit_counts(&rack).await;
        let logs_after: usize = all.iter().map(|&i| share_records(&rack, i)).sum();
        flushes += after.0 - before.0;
        shares += (logs_after - logs_before) as u64;
    }
    rack.shutdown().await;
    println!("{shares} shares handed out in {flushes} flushes");
    assert!(
        shares >= BURSTS * (SLEDS as u64),
        "{shares} shares handed out"
    );
    // Unbatched: one flush per share handed out and one per secret rebuilt.
    let unbatched = shares + BURSTS * SLEDS as u64;
    assert!(
        flushes < unbatched,
        "{flushes} flushes for {shares} shares handed out and {} secrets: not batched",
        BURSTS * SLEDS as u64
    );
}

/// Records of shares sled `i` handed out, in its first log copy.
fn share_records(rack: &Rack, i: usize) -> usize {
    let dir = &audit_dirs(&rack.sleds[i].ledger_paths())[0];
    let mut shares = 0;
    let verdict = verify_dir(dir, |_, record, _| {
        shares += usize::from(matches!(record.event, AuditEvent::ShareSent { .. }));
    });
    assert_eq!(verdict.bad, None, "sled {i}");
    shares
}

/// Connections that are not TLS are refused at the handshake, and the
/// refusals reach the audit log as counts: the records' growth adds up to
/// exactly what the network counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_handshakes_are_recorded_as_counts() {
    use tokio::io::AsyncWriteExt;
    use tq_std::net::HandshakeRefusal;

    const STRANGERS: u64 = 5;
    let mut rack = Rack::new(0, 1, 63);
    let mut config = rack.config(0);
    config.audit.refusal_record_interval = Duration::from_millis(100);
    rack.start_with(0, config).await;
    let listen = rack.sleds[0].listen.unwrap();
    for _ in 0..STRANGERS {
        let mut stranger = tokio::net::TcpStream::connect(listen).await.unwrap();
        stranger.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        // The listener answers with an alert, or closes: either ends it.
        let _ = tokio::io::AsyncReadExt::read(&mut stranger, &mut [0; 64]).await;
    }
    let counted = || async {
        let net = rack.handle(0).metrics().await.unwrap().net;
        net.refused(HandshakeRefusal::Protocol)
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    let recorded = loop {
        let counted = counted().await;
        let recorded = recorded_refusals(&rack, 0, "handshake.protocol");
        if counted >= STRANGERS && recorded == counted {
            break recorded;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{counted} counted, {recorded} recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    rack.shutdown().await;
    assert!(recorded >= STRANGERS, "{recorded} recorded");
}

/// The growth of refusal count `kind` that sled `i`'s first log copy
/// records, summed.
fn recorded_refusals(rack: &Rack, i: usize, kind: &str) -> u64 {
    let dir = &audit_dirs(&rack.sleds[i].ledger_paths())[0];
    let mut recorded = 0;
    let verdict = verify_dir(dir, |_, record, _| {
        if let AuditEvent::Refusals { counts } = &record.event {
            recorded += counts.get(kind).copied().unwrap_or(0);
        }
    });
    assert_eq!(verdict.bad, None, "sled {i}");
    recorded
}

/// A sled whose audit log takes no record hands out no share: asked for
/// it, the sled counts the share withheld and sends nothing; the asker
/// still rebuilds the secret from the other members' shares. It asked
/// only the two members after it (sleds 1 and 2: with its own share, the
/// three it needs), so it waits out its patience for sled 1 before it asks
/// sled 3: the load takes at least that long, and no longer than it takes
/// to ask once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_whose_record_reaches_no_drive_is_withheld() {
    const SLEDS: usize = 4;
    const PATIENCE: Duration = Duration::from_millis(600);
    let mut rack = Rack::new(SLEDS, 0, 63);
    let mut asker_config = rack.config(0);
    asker_config.share_patience = PATIENCE;
    rack.start_with(0, asker_config).await;
    rack.start_all().await;
    rack.wait_connected().await;
    let all: Vec<usize> = (0..SLEDS).collect();
    let mut nexus = Driver::new(Origin::Lrtq, &rack.ids()).await;
    nexus.start(&rack, &all, 3, 0).await;
    nexus.settle(&rack, LIMIT).await;
    for &i in &all {
        rack.handle(i).clear_secrets().await.unwrap();
    }
    // Sled 1's log: every segment refuses writes, and no new one can be
    // made (its reopening after a failed append finds nothing writable).
    let dirs = audit_dirs(&rack.sleds[1].ledger_paths());
    let frozen_files: Vec<Immutable> = dirs
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|entry| Immutable::new(&entry.unwrap().path()))
        .collect();
    let frozen_dirs: Vec<Unwritable> = dirs.iter().map(|dir| Unwritable::new(dir)).collect();

    let asker = rack.sleds[0].id.clone();
    let sled_1 = || async { rack.handle(1).metrics().await.unwrap() };
    let before = sled_1().await;
    let started = tokio::time::Instant::now();
    let loaded = rack.load_latest_secret(0, SECRET_WAIT).await;
    loaded.unwrap().unwrap();
    let took = started.elapsed();
    assert!(
        took >= PATIENCE && took < PATIENCE * 3,
        "the load took {took:?} with a patience of {PATIENCE:?}"
    );
    let deadline = tokio::time::Instant::now() + SECRET_WAIT;
    let after = loop {
        let now = sled_1().await;
        if now.audit.shares_withheld > before.audit.shares_withheld
            || tokio::time::Instant::now() > deadline
        {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        after.audit.shares_withheld,
        before.audit.shares_withheld + 1,
        "{:?}",
        after.audit
    );
    assert!(after.audit.append_failures > before.audit.append_failures);
    assert_eq!(
        after.net.peer(&asker).frames_out,
        before.net.peer(&asker).frames_out,
        "sled 1 sent the asker something"
    );
    drop(frozen_dirs);
    drop(frozen_files);
    rack.shutdown().await;
}
