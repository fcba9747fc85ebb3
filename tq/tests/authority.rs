//! Nexus's authority over real `tq sled` processes on loopback (issue 19
//! items 1 and 2): a process without Nexus's key changes nothing, directly
//! or through any sled's proxy; a man in the middle that flips one byte of
//! a request or of an answer where they are plaintext (it holds the sled's
//! TLS key, as the host does in front of a node on its service processor)
//! is caught (the sled refuses, the driver rejects); every Nexus request of a whole run, replayed in random order
//! afterwards, changes nothing but counters.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

#[path = "common/relay.rs"]
mod relay;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tq::api::error::{ApiError, ErrorCode};
use tq::api::types::{
    CommitBody, CoordinatorStatusBody, PrepareAndCommitBody, ProxyCommitRequest,
    ProxyPrepareAndCommitRequest, ProxyStatusRequest, ReconfigureBody, SecretFingerprintRequest,
    UpgradeFromLrtqBody,
};
use tq::client::{Client, Error as ClientError};
use tq::demo::layout::{Addressing, Layout};
use tq::demo::sleds::{Launch, Sleds};
use tq::https::RackCa;
use tq::nexus::http::HttpSled;
use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome, StateSummary,
};
use tq_core::authority::{
    CoordinatorStatusQuery, LatestSecretQuery, NexusAuthorityKey, NodeStatusQuery, RequestAuth,
};
use tq_core::config::{ConfigFields, Configuration, Member};
use tq_core::crypto::ShareDigest;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::member_set::MemberSet;
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_driver::{
    Authority, Authorized, Driver, DriverConfig, Reply, SledApi, SledMap, StateFile, Tagged,
};
use tq_nexus::{Origin, Timing};
use tq_std::audit::verify::verify_dir;
use tq_std::audit::{AUDIT_DIR_NAME, AuditEvent, NexusCall, RequestOutcome};

const TQ: &str = env!("CARGO_BIN_EXE_tq");
const WAIT: Duration = Duration::from_secs(60);

/// `lrtq` LRTQ sleds and `fresh` new ones, each its own `tq sled`
/// process, all connected.
async fn rack(root: &std::path::Path, lrtq: usize, fresh: usize) -> Sleds {
    let layout = Layout::create(root, lrtq, fresh, 19, &Addressing::Loopback).unwrap();
    let launch = Launch::Processes {
        exe: TQ.into(),
        wrappers: Vec::new(),
    };
    let mut sleds = Sleds::new(layout, launch).unwrap();
    let all: Vec<usize> = (0..lrtq + fresh).collect();
    for &i in &all {
        sleds.start(i).await.unwrap();
    }
    sleds.wait_connected(&all, WAIT).await.unwrap();
    sleds
}

fn config() -> DriverConfig {
    DriverConfig {
        timing: Timing {
            poll_interval: Duration::from_millis(50),
            retry_interval: Duration::from_millis(200),
            abandon_after: None,
        },
        call_timeout: Duration::from_secs(5),
    }
}

/// A relay's TLS ends for sled `i`: its own certificate and key toward
/// the client, the rack CA toward the sled.
fn tls_ends(sleds: &Sleds, i: usize, rack_ca: &RackCa) -> relay::TlsEnds {
    let files = sleds.files(i).unwrap();
    let sled = tq_rack_setup::layout::SledDir::new(&files.dir);
    let identity =
        tq_std::net::TlsIdentity::from_pem_files(&sled.rack_ca(), &sled.certificate(), &sled.key())
            .unwrap();
    let server = tq_std::net::api_tls::server_config(&identity).unwrap();
    let client = tq_std::net::api_tls::client_config(rack_ca.certs(), files.id.clone()).unwrap();
    relay::TlsEnds {
        acceptor: tokio_rustls::TlsAcceptor::from(server),
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
    }
}

/// What a sled is, as `tq status` shows it: its node's state (epochs,
/// members, shares held), not its counters.
async fn states(sleds: &Sleds) -> Vec<StateSummary> {
    let mut states = Vec::new();
    for i in 0..sleds.len() {
        states.push(sleds.status(i).await.unwrap().node.state);
    }
    states
}

/// What a replay could change on each sled: its state, and the
/// coordination it runs (epoch and phase).
async fn states_and_coordinations(
    sleds: &Sleds,
) -> Vec<(StateSummary, Option<tq_core::api::Coordinating>)> {
    let mut all = Vec::new();
    for i in 0..sleds.len() {
        let node = sleds.status(i).await.unwrap().node;
        all.push((node.state, node.activity.coordinating));
    }
    all
}

/// Each sled's latest secret's epoch and fingerprint, asked as Nexus.
async fn fingerprints(sleds: &Sleds, authority: &Authority) -> Vec<Option<(Epoch, String)>> {
    let mut prints = Vec::new();
    for i in 0..sleds.len() {
        let id = sleds.files(i).unwrap().id.clone();
        let Authorized { auth, check } = authority.authorize(&id, &LatestSecretQuery).unwrap();
        let got = sleds
            .api(i)
            .unwrap()
            .secret_fingerprint(auth, Duration::from_secs(10))
            .await
            .and_then(|answer| check.accept(answer));
        prints.push(
            got.ok()
                .and_then(Result::ok)
                .map(|p| (p.epoch, hex::encode(p.fingerprint))),
        );
    }
    prints
}

/// A core counter of sled `i`, by name, from its open status.
async fn counter(sleds: &Sleds, i: usize, name: &str) -> u32 {
    let status = sleds.status(i).await.unwrap();
    status
        .node
        .counters
        .iter()
        .find(|(c, _)| c.name() == name)
        .map_or(0, |(_, n)| n)
}

/// `tq_api_unauthenticated_total` of sled `i`.
async fn unauthenticated(sleds: &Sleds, i: usize) -> u64 {
    let text = sleds.api(i).unwrap().metrics_text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("tq_api_unauthenticated_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// The code of a refused call made with the generated client.
fn code<T: std::fmt::Debug>(result: Result<T, ClientError<ApiError>>) -> ErrorCode {
    match result {
        Err(ClientError::ErrorResponse(response)) => response.into_inner().error_code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The LRTQ upgrade of every LRTQ sled, driven to its end with Nexus's
/// key; the driver.
async fn upgraded(
    sleds: &Sleds,
    state: &std::path::Path,
    lrtq: usize,
) -> Driver<SledMap<HttpSled>> {
    let rack = sleds.layout.rack_file(|s| s.lrtq);
    let rack_ca = RackCa::load(&sleds.layout.rack_ca).unwrap();
    let directory = tq::nexus::directory(&rack, &rack_ca, Duration::from_secs(5)).unwrap();
    let ids: Vec<PlatformId> = (0..lrtq)
        .map(|i| sleds.files(i).unwrap().id.clone())
        .collect();
    let mut driver = Driver::create(
        StateFile::new(state),
        directory,
        sleds.layout.authority.clone(),
        config(),
        rack.rack_id,
        Origin::Lrtq,
        &ids,
    )
    .await
    .unwrap();
    driver
        .start(&ids, Threshold::new(3).unwrap(), &ids[0])
        .await
        .unwrap();
    driver.settle(WAIT).await.unwrap();
    driver
}

/// A configuration of `members` at `epoch`, made up by whoever holds no
/// share of anything.
fn made_up(rack_id: RackId, epoch: Epoch, members: &[PlatformId]) -> Configuration {
    let mut sorted = members.to_vec();
    sorted.sort();
    Configuration::new(ConfigFields {
        rack_id,
        epoch,
        coordinator: sorted[0].clone(),
        members: sorted
            .iter()
            .map(|id| Member {
                id: id.clone(),
                share_digest: ShareDigest([0xab; 32]),
            })
            .collect(),
        threshold: Threshold::new(2).unwrap(),
        encrypted_rack_secrets: None,
    })
    .unwrap()
}

/// A local process that can reach every sled's API but holds no key of
/// Nexus's (no authenticator, another authority key, the right key for
/// another rack, an authenticator for another sled) cannot reconfigure,
/// upgrade, commit, prepare-and-commit, read the coordinator status or
/// load a secret, directly or through any sled's proxy endpoints: every
/// call is refused with its code, the refusal is counted, and no sled's
/// state or secret changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_without_nexus_key_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sleds = rack(dir.path(), 4, 0).await;
    let driver = upgraded(&sleds, &dir.path().join("nexus.json"), 4).await;
    let nexus = driver.authority();
    let rack_id = sleds.layout.rack_id;
    let ids: Vec<PlatformId> = (0..4).map(|i| sleds.files(i).unwrap().id.clone()).collect();
    let before = states(&sleds).await;
    let prints = fingerprints(&sleds, nexus).await;
    assert!(
        prints
            .iter()
            .all(|p| p.as_ref().is_some_and(|(e, _)| *e == Epoch(2)))
    );

    let strangers = [
        (
            "another key",
            Authority::new(NexusAuthorityKey::from_bytes([0x66; 32]), rack_id),
            ErrorCode::BadTag,
            "request_bad_tag",
        ),
        (
            "Nexus's key for another rack",
            Authority::new(sleds.layout.authority.clone(), RackId([0x99; 16])),
            ErrorCode::ForeignRack,
            "request_foreign_rack",
        ),
    ];
    let members = MemberSet::new(&ids).unwrap();
    let reconfigure = ReconfigureMsg {
        rack_id,
        epoch: Epoch(u64::MAX),
        last_committed_epoch: Some(Epoch(2)),
        members: members.clone(),
        threshold: Threshold::new(2).unwrap(),
    };
    let upgrade = LrtqUpgradeMsg {
        rack_id,
        epoch: Epoch(u64::MAX),
        members,
        threshold: Threshold::new(2).unwrap(),
    };
    let commit = CommitRequest {
        rack_id,
        epoch: Epoch(u64::MAX),
    };
    let bogus = made_up(rack_id, Epoch(u64::MAX), &ids);
    let deadline_ms = 5000;

    for i in 0..4 {
        let client: &Client = sleds.api(i).unwrap().client();
        let id = &ids[i];
        let via = (i + 1) % 4;
        let proxy: &Client = sleds.api(via).unwrap().client();

        // No authenticator at all: refused by the API before the node.
        let none_before = unauthenticated(&sleds, i).await;
        let via_before = unauthenticated(&sleds, via).await;
        let refused = [
            code(
                client
                    .reconfigure(&ReconfigureBody {
                        auth: None,
                        request: reconfigure.clone(),
                    })
                    .await,
            ),
            code(
                client
                    .upgrade_from_lrtq(&UpgradeFromLrtqBody {
                        auth: None,
                        request: upgrade.clone(),
                    })
                    .await,
            ),
            code(
                client
                    .commit(&CommitBody {
                        auth: None,
                        request: commit,
                    })
                    .await,
            ),
            code(
                client
                    .prepare_and_commit(&PrepareAndCommitBody {
                        auth: None,
                        request: bogus.clone(),
                    })
                    .await,
            ),
            code(
                client
                    .coordinator_status(&CoordinatorStatusBody { auth: None })
                    .await,
            ),
            code(
                client
                    .secret_fingerprint(&SecretFingerprintRequest {
                        deadline_ms,
                        auth: None,
                    })
                    .await,
            ),
        ];
        assert!(
            refused.iter().all(|c| *c == ErrorCode::Unauthenticated),
            "sled {i}: {refused:?}"
        );
        assert_eq!(unauthenticated(&sleds, i).await, none_before + 6);
        let refused = [
            code(
                proxy
                    .proxy_commit(&ProxyCommitRequest {
                        target: id.clone(),
                        deadline_ms,
                        auth: None,
                        request: commit,
                    })
                    .await,
            ),
            code(
                proxy
                    .proxy_prepare_and_commit(&ProxyPrepareAndCommitRequest {
                        target: id.clone(),
                        deadline_ms,
                        auth: None,
                        config: bogus.clone(),
                    })
                    .await,
            ),
            code(
                proxy
                    .proxy_status(&ProxyStatusRequest {
                        target: id.clone(),
                        deadline_ms,
                        auth: None,
                    })
                    .await,
            ),
        ];
        assert!(
            refused.iter().all(|c| *c == ErrorCode::Unauthenticated),
            "through sled {via}: {refused:?}"
        );
        assert_eq!(unauthenticated(&sleds, via).await, via_before + 3);

        // An authenticator, but not Nexus's: the target's node refuses it,
        // directly and through the proxy alike, and counts it.
        for (what, stranger, wanted, counted) in &strangers {
            let counted_before = counter(&sleds, i, counted).await;
            let direct = [
                code(
                    client
                        .reconfigure(&ReconfigureBody {
                            auth: Some(stranger.authorize(id, &reconfigure).unwrap().auth),
                            request: reconfigure.clone(),
                        })
                        .await,
                ),
                code(
                    client
                        .upgrade_from_lrtq(&UpgradeFromLrtqBody {
                            auth: Some(stranger.authorize(id, &upgrade).unwrap().auth),
                            request: upgrade.clone(),
                        })
                        .await,
                ),
                code(
                    client
                        .commit(&CommitBody {
                            auth: Some(stranger.authorize(id, &commit).unwrap().auth),
                            request: commit,
                        })
                        .await,
                ),
                code(
                    client
                        .prepare_and_commit(&PrepareAndCommitBody {
                            auth: Some(stranger.authorize(id, &bogus).unwrap().auth),
                            request: bogus.clone(),
                        })
                        .await,
                ),
                code(
                    client
                        .coordinator_status(&CoordinatorStatusBody {
                            auth: Some(
                                stranger
                                    .authorize(id, &CoordinatorStatusQuery)
                                    .unwrap()
                                    .auth,
                            ),
                        })
                        .await,
                ),
                code(
                    client
                        .secret_fingerprint(&SecretFingerprintRequest {
                            deadline_ms,
                            auth: Some(stranger.authorize(id, &LatestSecretQuery).unwrap().auth),
                        })
                        .await,
                ),
            ];
            let proxied = [
                code(
                    proxy
                        .proxy_commit(&ProxyCommitRequest {
                            target: id.clone(),
                            deadline_ms,
                            auth: Some(stranger.authorize(id, &commit).unwrap().auth),
                            request: commit,
                        })
                        .await,
                ),
                code(
                    proxy
                        .proxy_prepare_and_commit(&ProxyPrepareAndCommitRequest {
                            target: id.clone(),
                            deadline_ms,
                            auth: Some(stranger.authorize(id, &bogus).unwrap().auth),
                            config: bogus.clone(),
                        })
                        .await,
                ),
                code(
                    proxy
                        .proxy_status(&ProxyStatusRequest {
                            target: id.clone(),
                            deadline_ms,
                            auth: Some(stranger.authorize(id, &NodeStatusQuery).unwrap().auth),
                        })
                        .await,
                ),
            ];
            assert!(
                direct.iter().chain(&proxied).all(|c| c == wanted),
                "{what}, sled {i} (through {via}): {direct:?} {proxied:?}"
            );
            assert_eq!(
                counter(&sleds, i, counted).await,
                counted_before + 9,
                "{what}, sled {i}: each refusal counted by the target"
            );
        }

        // Nexus's own authenticator, for another sled.
        let other = &ids[via];
        let before_target = counter(&sleds, i, "request_wrong_target").await;
        let misdirected = code(
            client
                .commit(&CommitBody {
                    auth: Some(nexus.authorize(other, &commit).unwrap().auth),
                    request: commit,
                })
                .await,
        );
        assert_eq!(misdirected, ErrorCode::WrongTarget, "sled {i}");
        assert_eq!(
            counter(&sleds, i, "request_wrong_target").await,
            before_target + 1
        );
    }

    assert_eq!(states(&sleds).await, before, "a sled's state changed");
    assert_eq!(fingerprints(&sleds, nexus).await, prints);
    let mut sleds = sleds;
    sleds.stop_all().await;

    // Every refusal is in each sled's audit log, with why: the calls that
    // came without an authenticator (refused by the API) and those whose
    // authenticator the node refused, reads included.
    for i in 0..4 {
        let dir = sleds.files(i).unwrap().drives[0].join(AUDIT_DIR_NAME);
        let mut refused = Vec::new();
        let verdict = verify_dir(&dir, |_, record, _| {
            if let AuditEvent::NexusRequest {
                call,
                outcome: RequestOutcome::Refused { reason },
                ..
            } = &record.event
            {
                refused.push((*call, reason.clone()));
            }
        });
        assert!(verdict.bad.is_none(), "sled {i}: {:?}", verdict.bad);
        for call in [
            NexusCall::Reconfigure,
            NexusCall::UpgradeFromLrtq,
            NexusCall::Commit,
            NexusCall::PrepareAndCommit,
            NexusCall::CoordinatorStatus,
            NexusCall::LoadLatestSecret,
        ] {
            assert!(
                refused
                    .iter()
                    .any(|(c, why)| *c == call && why.contains("authenticator")),
                "sled {i}: no refusal of {call:?} without an authenticator: {refused:?}"
            );
        }
        assert!(
            refused
                .iter()
                .any(|(c, why)| *c == NexusCall::CoordinatorStatus && !why.contains("`auth`")),
            "sled {i}: no coordinator status refused by the node: {refused:?}"
        );
    }
}

/// A man in the middle on the plain-HTTP link to the sleds' APIs.
///
/// A request whose body it altered by one byte (a digit of the epoch) is
/// refused by the sled (`bad_tag`, counted) and changes nothing there; the
/// same request unaltered runs. The driver behind a relay that alters
/// one byte of every answer (a hex digit of the node's tag) acts on none
/// of them: the upgrade it starts is never seen to run, no ack is counted,
/// nothing commits, and each answer is counted as unauthenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_flipped_on_the_link_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let sleds = rack(dir.path(), 4, 0).await;
    let rack_id = sleds.layout.rack_id;
    let ids: Vec<PlatformId> = (0..4).map(|i| sleds.files(i).unwrap().id.clone()).collect();
    let authority = Authority::new(sleds.layout.authority.clone(), rack_id);

    // A request altered on the way: a commit (which this sled, having
    // prepared nothing, refuses without changing anything when it runs).
    let commit = CommitRequest {
        rack_id,
        epoch: Epoch(2),
    };
    let rack_ca = RackCa::load(&sleds.layout.rack_ca).unwrap();
    let relay = relay::Relay::start(
        sleds.files(1).unwrap().api,
        tls_ends(&sleds, 1, &rack_ca),
        Some(relay::flip_value_of("epoch")),
        None,
    )
    .await;
    let through =
        HttpSled::new(relay.addr, ids[1].clone(), &rack_ca, Duration::from_secs(5)).unwrap();
    let before = counter(&sleds, 1, "request_bad_tag").await;
    let states_before = states(&sleds).await;
    let auth = authority.authorize(&ids[1], &commit).unwrap().auth;
    let failure = through.commit(auth, commit).await.unwrap_err();
    assert_eq!(relay.tampered(), 1);
    assert_eq!(
        failure.kind,
        tq_driver::FailureKind::RequestRefused,
        "{failure}"
    );
    assert_eq!(counter(&sleds, 1, "request_bad_tag").await, before + 1);
    // Unaltered, the very same call runs (the node's own refusal, tagged).
    let Authorized { auth, check } = authority.authorize(&ids[1], &commit).unwrap();
    let tagged = sleds.api(1).unwrap().commit(auth, commit).await.unwrap();
    assert_eq!(
        check.accept(tagged).unwrap(),
        Err(CommitError::NotPrepared(Epoch(2)))
    );
    assert_eq!(counter(&sleds, 1, "request_bad_tag").await, before + 1);
    assert_eq!(states(&sleds).await, states_before);
    drop(relay);

    // Every answer altered on the way, to a driver starting an upgrade at
    // the next epoch.
    let mut relays = Vec::new();
    let directory = SledMap::new();
    for (i, id) in ids.iter().enumerate() {
        let relay = relay::Relay::start(
            sleds.files(i).unwrap().api,
            tls_ends(&sleds, i, &rack_ca),
            None,
            Some(relay::flip_value_of("tag")),
        )
        .await;
        directory.insert(
            id.clone(),
            HttpSled::new(relay.addr, id.clone(), &rack_ca, Duration::from_secs(5)).unwrap(),
        );
        relays.push(relay);
    }
    let mut driver = Driver::create(
        StateFile::new(dir.path().join("nexus.json")),
        directory,
        sleds.layout.authority.clone(),
        config(),
        rack_id,
        Origin::Lrtq,
        &ids,
    )
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::clone(&seen);
    driver.observe(move |event| events.lock().unwrap().push(event.to_string()));
    driver
        .start(&ids, Threshold::new(3).unwrap(), &ids[2])
        .await
        .unwrap();
    let ran = driver
        .run_until("committed", Duration::from_secs(6), |n| {
            n.latest_committed().is_some()
        })
        .await;
    assert!(ran.is_err(), "committed on answers it could not check");
    let stats = driver.stats();
    assert!(stats.answer_unauthenticated > 0, "{stats:?}");
    assert!(relays.iter().map(relay::Relay::tampered).sum::<usize>() > 0);
    let pending = driver.nexus().pending().unwrap();
    assert!(pending.acked().is_empty(), "an ack was counted");
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen
            .iter()
            .any(|e| e.contains("runs it") || e.contains("acks") || e.contains("committed")),
        "{seen:?}"
    );
    let mut sleds = sleds;
    sleds.stop_all().await;
}

/// Every call the driver makes, with its authenticator, as it made it.
#[derive(Clone)]
enum Recorded {
    Reconfigure(HttpSled, RequestAuth, ReconfigureMsg),
    Upgrade(HttpSled, RequestAuth, LrtqUpgradeMsg),
    Commit(HttpSled, RequestAuth, CommitRequest),
    PrepareAndCommit(HttpSled, RequestAuth, Configuration),
    CoordinatorStatus(HttpSled, RequestAuth),
    ProxyCommit(HttpSled, PlatformId, RequestAuth, CommitRequest),
    ProxyPrepareAndCommit(HttpSled, PlatformId, RequestAuth, Configuration),
    ProxyStatus(HttpSled, PlatformId, RequestAuth),
    Fingerprint(HttpSled, RequestAuth),
}

impl Recorded {
    /// Sends it again, exactly as recorded; what comes back does not
    /// matter.
    async fn replay(&self) {
        let d = Duration::from_secs(2);
        match self.clone() {
            Self::Reconfigure(s, a, m) => drop(s.reconfigure(a, m).await),
            Self::Upgrade(s, a, m) => drop(s.upgrade_from_lrtq(a, m).await),
            Self::Commit(s, a, r) => drop(s.commit(a, r).await),
            Self::PrepareAndCommit(s, a, c) => drop(s.prepare_and_commit(a, c).await),
            Self::CoordinatorStatus(s, a) => drop(s.coordinator_status(a).await),
            Self::ProxyCommit(s, to, a, r) => drop(s.proxy_commit(to, a, r, d).await),
            Self::ProxyPrepareAndCommit(s, to, a, c) => {
                drop(s.proxy_prepare_and_commit(to, a, c, d).await)
            }
            Self::ProxyStatus(s, to, a) => drop(s.proxy_status(to, a, d).await),
            Self::Fingerprint(s, a) => drop(s.secret_fingerprint(a, d).await),
        }
    }
}

/// A sled's API that records every Nexus request sent through it.
#[derive(Clone)]
struct Recording {
    sled: HttpSled,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Recording {
    fn record(&self, call: Recorded) {
        self.log.lock().unwrap().push(call);
    }
}

impl SledApi for Recording {
    async fn reconfigure(
        &self,
        auth: RequestAuth,
        msg: ReconfigureMsg,
    ) -> Reply<Tagged<Result<ReconfigureOutcome, ReconfigureError>>> {
        self.record(Recorded::Reconfigure(
            self.sled.clone(),
            auth.clone(),
            msg.clone(),
        ));
        self.sled.reconfigure(auth, msg).await
    }

    async fn upgrade_from_lrtq(
        &self,
        auth: RequestAuth,
        msg: LrtqUpgradeMsg,
    ) -> Reply<Tagged<Result<(), LrtqUpgradeError>>> {
        self.record(Recorded::Upgrade(
            self.sled.clone(),
            auth.clone(),
            msg.clone(),
        ));
        self.sled.upgrade_from_lrtq(auth, msg).await
    }

    async fn commit(
        &self,
        auth: RequestAuth,
        request: CommitRequest,
    ) -> Reply<Tagged<Result<CommitOutcome, CommitError>>> {
        self.record(Recorded::Commit(self.sled.clone(), auth.clone(), request));
        self.sled.commit(auth, request).await
    }

    async fn prepare_and_commit(
        &self,
        auth: RequestAuth,
        config: Configuration,
    ) -> Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        self.record(Recorded::PrepareAndCommit(
            self.sled.clone(),
            auth.clone(),
            config.clone(),
        ));
        self.sled.prepare_and_commit(auth, config).await
    }

    async fn coordinator_status(
        &self,
        auth: RequestAuth,
    ) -> Reply<Tagged<Option<CoordinatorStatus>>> {
        self.record(Recorded::CoordinatorStatus(self.sled.clone(), auth.clone()));
        self.sled.coordinator_status(auth).await
    }

    async fn status(&self) -> Reply<NodeStatus> {
        self.sled.status().await
    }

    async fn proxy_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        request: CommitRequest,
        deadline: Duration,
    ) -> Reply<Tagged<Result<CommitOutcome, CommitError>>> {
        self.record(Recorded::ProxyCommit(
            self.sled.clone(),
            to.clone(),
            auth.clone(),
            request,
        ));
        self.sled.proxy_commit(to, auth, request, deadline).await
    }

    async fn proxy_prepare_and_commit(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        config: Configuration,
        deadline: Duration,
    ) -> Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        self.record(Recorded::ProxyPrepareAndCommit(
            self.sled.clone(),
            to.clone(),
            auth.clone(),
            config.clone(),
        ));
        self.sled
            .proxy_prepare_and_commit(to, auth, config, deadline)
            .await
    }

    async fn proxy_status(
        &self,
        to: PlatformId,
        auth: RequestAuth,
        deadline: Duration,
    ) -> Reply<Tagged<NodeStatus>> {
        self.record(Recorded::ProxyStatus(
            self.sled.clone(),
            to.clone(),
            auth.clone(),
        ));
        self.sled.proxy_status(to, auth, deadline).await
    }
}

/// A small deterministic shuffle (xorshift64), so a failing order can be
/// run again from its seed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = usize::try_from(seed % (i as u64 + 1)).unwrap();
        items.swap(i, j);
    }
}

/// Every Nexus request of a whole run (the LRTQ upgrade, a sled added that
/// Nexus reaches only through a proxy, a sled removed, every member's
/// secret loaded after each change), recorded as sent, then all sent again
/// in random order: each sled's state (epochs, members, shares held), the
/// coordination it runs and its secret's fingerprint are what they were. That the comparison would see
/// a change is checked at the end: one new, genuine request does change
/// the state it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_every_request_of_a_run_changes_nothing_but_counters() {
    let dir = tempfile::tempdir().unwrap();
    let sleds = rack(dir.path(), 4, 1).await;
    let rack_id = sleds.layout.rack_id;
    let ids: Vec<PlatformId> = (0..5).map(|i| sleds.files(i).unwrap().id.clone()).collect();
    let log = Arc::new(Mutex::new(Vec::new()));
    // Nexus reaches the new sled only through a member's proxy.
    let directory = SledMap::new();
    for (i, id) in ids.iter().enumerate().take(4) {
        directory.insert(
            id.clone(),
            Recording {
                sled: sleds.api(i).unwrap().clone(),
                log: Arc::clone(&log),
            },
        );
    }
    let mut driver = Driver::create(
        StateFile::new(dir.path().join("nexus.json")),
        directory,
        sleds.layout.authority.clone(),
        config(),
        rack_id,
        Origin::Lrtq,
        &ids[..4],
    )
    .await
    .unwrap();
    let load_all = |driver: &Driver<SledMap<Recording>>, members: &[usize]| {
        let calls: Vec<Recorded> = members
            .iter()
            .map(|&i| {
                let auth = driver
                    .authority()
                    .authorize(&ids[i], &LatestSecretQuery)
                    .unwrap()
                    .auth;
                Recorded::Fingerprint(sleds.api(i).unwrap().clone(), auth)
            })
            .collect();
        calls
    };
    let changes: [(&[usize], u8); 3] = [
        (&[0, 1, 2, 3], 3),
        (&[0, 1, 2, 3, 4], 3),
        (&[0, 1, 2, 4], 3),
    ];
    for (members, k) in changes {
        let members_ids: Vec<PlatformId> = members.iter().map(|&i| ids[i].clone()).collect();
        driver
            .start(&members_ids, Threshold::new(k).unwrap(), &ids[0])
            .await
            .unwrap();
        driver.settle(WAIT).await.unwrap();
        for call in load_all(&driver, members) {
            call.replay().await;
            log.lock().unwrap().push(call);
        }
    }
    assert_eq!(
        driver.nexus().latest_committed().map(|c| c.epoch()),
        Some(Epoch(4))
    );
    let mut recorded = log.lock().unwrap().clone();
    let made = |kind: fn(&Recorded) -> bool| recorded.iter().any(kind);
    assert!(made(|r| matches!(r, Recorded::Upgrade(..))));
    assert!(made(|r| matches!(r, Recorded::Reconfigure(..))));
    assert!(made(|r| matches!(r, Recorded::CoordinatorStatus(..))));
    assert!(made(|r| matches!(r, Recorded::Commit(..))));
    assert!(made(|r| matches!(
        r,
        Recorded::ProxyPrepareAndCommit(..) | Recorded::ProxyCommit(..)
    )));
    assert!(made(|r| matches!(r, Recorded::Fingerprint(..))));

    let nexus = driver.authority();
    let states_before = states_and_coordinations(&sleds).await;
    let prints_before = fingerprints(&sleds, nexus).await;
    let seed = 0x19_2026_u64;
    shuffle(&mut recorded, seed);
    for call in &recorded {
        call.replay().await;
    }
    // Let anything a replay set going settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        states_and_coordinations(&sleds).await,
        states_before,
        "a replay changed a sled's state (seed {seed:#x}, {} requests)",
        recorded.len()
    );
    assert_eq!(fingerprints(&sleds, nexus).await, prints_before);

    // The comparison sees a change when there is one: a new request,
    // genuinely Nexus's, at the next epoch.
    let members = MemberSet::new(&[
        ids[0].clone(),
        ids[1].clone(),
        ids[2].clone(),
        ids[4].clone(),
    ])
    .unwrap();
    let next = ReconfigureMsg {
        rack_id,
        epoch: Epoch(5),
        last_committed_epoch: Some(Epoch(4)),
        members,
        threshold: Threshold::new(3).unwrap(),
    };
    let Authorized { auth, check } = nexus.authorize(&ids[0], &next).unwrap();
    let tagged = sleds.api(0).unwrap().reconfigure(auth, next).await.unwrap();
    check.accept(tagged).unwrap().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while states_and_coordinations(&sleds).await == states_before {
        assert!(tokio::time::Instant::now() < deadline, "no change seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sleds = sleds;
    sleds.stop_all().await;
}
