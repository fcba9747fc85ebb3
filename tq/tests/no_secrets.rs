//! No response of the API carries a share or a secret: every byte every
//! sled's API sends during a whole scenario (LRTQ upgrade, a
//! reconfiguration adding a sled, every member unlocking, statuses,
//! metrics, proxied calls, refusals) is recorded, as plaintext, by a
//! TLS-terminating proxy in front of it, and searched for every LRTQ share and the LRTQ secret, every
//! share each sled stored (read back from its ledger) and every epoch's
//! secret (rebuilt from those shares): raw, as hex in either case, as
//! base64 (standard and URL-safe, at every alignment) and as a JSON array
//! of numbers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::*;
use tq::api::types::{
    ProxyCommitRequest, ProxyPrepareAndCommitRequest, ProxyStatusRequest, SecretFingerprintRequest,
};
use tq_core::api::CommitRequest;
use tq_core::crypto::{Share, combine};
use tq_core::ids::Epoch;

/// Bytes sent each way through one proxy.
#[derive(Default)]
struct Recorded {
    requests: Vec<u8>,
    responses: Vec<u8>,
}

/// A proxy in front of sled `i`'s API that terminates TLS on both sides
/// and records the plaintext of both directions: towards the clients it
/// presents a certificate of the rack CA naming sled `i` (so they accept
/// it), towards the sled it verifies the sled's certificate as any
/// client does.
async fn recording_proxy(rack: &Rack, i: usize, log: Arc<Mutex<Recorded>>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tq_std::net::{TlsIdentity, api_tls};
    let id = rack.sleds[i].id.clone();
    let upstream = rack.api_addr(i);
    let (cert, key) = rack
        .ca
        .leaf(&[tq_std::net::identity::platform_id_uri(&id)], None);
    let identity = TlsIdentity {
        ca_certs: vec![rack.ca.der()],
        cert_chain: vec![cert],
        key,
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(api_tls::server_config(&identity).unwrap());
    let connector = tokio_rustls::TlsConnector::from(Arc::new(
        api_tls::client_config(&[rack.ca.der()], id).unwrap(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, connector, log) = (acceptor.clone(), connector.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(client) = acceptor.accept(client).await else {
                    return;
                };
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let name =
                    tokio_rustls::rustls::pki_types::ServerName::IpAddress(upstream.ip().into());
                let server = connector.connect(name, server).await.unwrap();
                let (mut client_read, mut client_write) = tokio::io::split(client);
                let (mut server_read, mut server_write) = tokio::io::split(server);
                let up_log = log.clone();
                let up = async move {
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                        up_log.lock().unwrap().requests.extend_from_slice(&buf[..n]);
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                };
                let down = async move {
                    let mut buf = vec![0; 16 * 1024];
                    while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                        log.lock().unwrap().responses.extend_from_slice(&buf[..n]);
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = client_write.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    addr
}

/// Every spelling of `bytes` the search looks for.
fn spellings(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![
        bytes.to_vec(),
        hex::encode(bytes).into_bytes(),
        hex::encode_upper(bytes).into_bytes(),
    ];
    let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
    out.push(numbers.join(",").into_bytes());
    // A base64 text of a longer string holds, for one of three
    // alignments, the encoding of `bytes` from that offset, but for the
    // characters that straddle the edges.
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for skip in 0..3 {
            let text = engine.encode(&bytes[skip..]);
            let whole = (bytes.len() - skip) / 3 * 4;
            out.push(text.as_bytes()[..whole].to_vec());
        }
    }
    out
}

/// The names of the byte strings found in `haystack`, spelled any way.
fn found(haystack: &[u8], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    needles
        .iter()
        .filter(|(_, bytes)| {
            spellings(bytes)
                .iter()
                .any(|s| haystack.windows(s.len()).any(|w| w == s.as_slice()))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn the_search_finds_what_it_looks_for() {
    let secret: Vec<u8> = (1..=32).collect();
    let needles = vec![("s".to_owned(), secret.clone())];
    let mut json = br#"{"x":""#.to_vec();
    json.extend_from_slice(hex::encode(&secret).as_bytes());
    assert_eq!(found(&json, &needles), ["s"]);
    for prefix in [&b""[..], b"a", b"ab"] {
        let mut longer = prefix.to_vec();
        longer.extend_from_slice(&secret);
        let text = base64::engine::general_purpose::STANDARD.encode(&longer);
        assert_eq!(found(text.as_bytes(), &needles), ["s"], "{prefix:?}");
    }
    let array = format!("{secret:?}").replace(' ', "");
    assert_eq!(found(array.as_bytes(), &needles), ["s"]);
    assert!(found(b"nothing here", &needles).is_empty());
}

/// Every share in every sled's ledger copies, with its epoch.
fn ledger_shares(rack: &Rack) -> Vec<(Epoch, Share)> {
    (0..rack.sleds.len())
        .flat_map(|i| ledger_shares_of(rack, i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_response_carries_a_share_or_a_secret() {
    let mut rack = Rack::new(4, 1, 11);
    rack.start_all().await;
    let log = Arc::new(Mutex::new(Recorded::default()));
    for i in 0..rack.sleds.len() {
        rack.sleds[i].via = Some(recording_proxy(&rack, i, log.clone()).await);
    }

    // A refusal of every Nexus call before the upgrade.
    for i in 0..5 {
        let _ = rack.client(i).status().await.unwrap();
        let _ = rack.client(i).coordinator_status().await.unwrap();
        let _ = rack.client(i).metrics().await.unwrap();
    }
    let commit2 = CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(2),
    };
    refusal(rack.client(0).commit(&commit2).await);

    let (config2, _) = upgrade(&rack, 0, Epoch(2), &[0, 1, 2, 3], 3).await;
    wait_committed(&rack, &[0, 1, 2, 3], Epoch(2)).await;
    // A sled keeps only the configurations it still needs: read the
    // epoch-2 shares now.
    let mut shares = ledger_shares(&rack);
    let print2 = rack
        .client(2)
        .secret_fingerprint(&SecretFingerprintRequest {
            deadline_ms: 20_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(print2.epoch, Epoch(2));
    refusal(rack.client(4).prepare_and_commit(&config2).await);
    let msg = tq_core::api::ReconfigureMsg {
        rack_id: RACK_ID,
        epoch: Epoch(3),
        last_committed_epoch: None,
        members: members(&rack, &[0, 1, 2, 3, 4]),
        threshold: threshold(3),
    };
    refusal(rack.client(1).reconfigure(&msg).await);
    let again = tq_core::api::LrtqUpgradeMsg {
        rack_id: RACK_ID,
        epoch: Epoch(3),
        members: members(&rack, &[0, 1, 2, 3]),
        threshold: threshold(3),
    };
    refusal(rack.client(1).upgrade_from_lrtq(&again).await);
    let (config3, _) = reconfigure(&rack, 1, Epoch(3), Epoch(2), &[0, 1, 2, 3, 4], 3).await;
    wait_committed(&rack, &[0, 1, 2, 3, 4], Epoch(3)).await;
    let target = rack.sleds[4].id.clone();
    let _ = rack
        .client(0)
        .proxy_prepare_and_commit(&ProxyPrepareAndCommitRequest {
            target: target.clone(),
            deadline_ms: 10_000,
            config: config3,
        })
        .await
        .unwrap();
    let _ = rack
        .client(0)
        .proxy_commit(&ProxyCommitRequest {
            target,
            deadline_ms: 10_000,
            request: CommitRequest {
                rack_id: RACK_ID,
                epoch: Epoch(3),
            },
        })
        .await
        .unwrap();

    // Unlock: every member loads the latest secret.
    let mut print3 = None;
    for i in 0..5 {
        let print = rack
            .client(i)
            .secret_fingerprint(&SecretFingerprintRequest {
                deadline_ms: 20_000,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(print.epoch, Epoch(3));
        print3 = Some(print);
        let _ = rack.client(i).status().await.unwrap();
        let _ = rack.client(i).metrics().await.unwrap();
        let _ = rack
            .client(i)
            .proxy_status(&ProxyStatusRequest {
                target: rack.sleds[(i + 1) % 5].id.clone(),
                deadline_ms: 10_000,
            })
            .await
            .unwrap();
    }
    rack.stop_all().await;

    // Every path of the document was called.
    let recorded = std::mem::take(&mut *log.lock().unwrap());
    let requests = String::from_utf8_lossy(&recorded.requests);
    let document = tq::api::openapi().unwrap();
    for path in document["paths"].as_object().unwrap().keys() {
        assert!(
            requests.contains(&format!(" {path} HTTP/1.1")),
            "{path} was not called"
        );
    }
    assert!(
        recorded.responses.len() > 50_000,
        "{}",
        recorded.responses.len()
    );

    // What must not be there: the LRTQ secret and shares, and each
    // sled's shares (from its ledger) and every epoch's secret.
    let mut needles = vec![(
        "the LRTQ secret".to_owned(),
        rack.lrtq_secret.as_ref().unwrap().expose_secret().to_vec(),
    )];
    for (i, data) in rack.lrtq_data.iter().enumerate() {
        let share = data.share.expose_bytes();
        needles.push((format!("sled {i}'s LRTQ share"), share.to_vec()));
        needles.push((format!("sled {i}'s LRTQ scalar"), share[1..].to_vec()));
    }
    shares.extend(ledger_shares(&rack));
    for (epoch, share) in &shares {
        needles.push((
            format!("share {} of epoch {epoch}", share.x()),
            share.expose_y().to_vec(),
        ));
    }
    for epoch in [Epoch(2), Epoch(3)] {
        let mut of_epoch: Vec<Share> = shares
            .iter()
            .filter(|(e, _)| *e == epoch)
            .map(|(_, s)| s.clone())
            .collect();
        of_epoch.sort_by_key(Share::x);
        of_epoch.dedup_by_key(|s| s.x());
        assert!(of_epoch.len() >= 3, "{epoch}: {} shares", of_epoch.len());
        let secret = combine(&of_epoch[..3]).unwrap();
        // The secret rebuilt here is the one the sleds loaded.
        let print = if epoch == Epoch(2) {
            &print2
        } else {
            print3.as_ref().unwrap()
        };
        assert_eq!(
            print.fingerprint,
            hex::encode(tq_std::secrets::fingerprint(&secret, RACK_ID, epoch))
        );
        needles.push((
            format!("the secret of epoch {epoch}"),
            secret.expose_secret().to_vec(),
        ));
    }
    let leaks = found(&recorded.responses, &needles);
    assert!(leaks.is_empty(), "responses carry {leaks:?}");
    // The requests do not either (Nexus sends none).
    let leaks = found(&recorded.requests, &needles);
    assert!(leaks.is_empty(), "requests carry {leaks:?}");
}
