//! A rack of `tq sled` daemons in one process, each from its own TOML
//! file, its directory laid out as the demo lays it out
//! (`tq_rack_setup::layout`: PEM files from the fixture PKI, two
//! initialized ledger directories, an LRTQ share file for sleds of an
//! LRTQ rack), serving its API over HTTPS on loopback; the
//! generated client for each, verifying the sled's certificate under the
//! rack CA and its platform id; a scripted Nexus that runs an LRTQ upgrade
//! or a reconfiguration to its commit over the API.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tq::client::{Client, Error as ClientError};
use tq::config::SledConfig;
use tq::https::RackCa;
use tq::sled::Daemon;
use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, PrepareAndCommitOutcome,
    ReconfigureMsg, acks_to_commit,
};
use tq_core::config::Configuration;
use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::member_set::MemberSet;
use tq_core::node::CoordinatorPhase;
use tq_core::persistent::LrtqShareData;
use tq_core::wire;
use tq_rack_setup::layout::{LEDGER_DIRS, SledConfigFile, SledDir};
use tq_std::net::identity::platform_id_uri;
use tq_test_fixtures::pki::Ca;
pub use tq_test_fixtures::sled_id;

/// The rack of the fixture's LRTQ racks.
pub const RACK_ID: RackId = tq_test_fixtures::RACK;

/// How long anything may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// Writes sled `id`'s directory (PEM files from `ca`, the LRTQ share file
/// if any, and `sled.toml`) and initializes its ledger as `tq sled init`
/// does. Returns the TOML file's path.
pub fn write_sled_dir(
    ca: &Ca,
    id: &PlatformId,
    dir: &Path,
    lrtq: Option<&LrtqShareData>,
) -> PathBuf {
    let path = write_sled_files(ca, id, dir, lrtq);
    tq::sled::init(&SledConfig::load(&path).unwrap()).unwrap();
    path
}

/// [`write_sled_dir`] without the ledger: no ledger directories.
pub fn write_sled_files(
    ca: &Ca,
    id: &PlatformId,
    dir: &Path,
    lrtq: Option<&LrtqShareData>,
) -> PathBuf {
    let sled = SledDir::new(dir);
    sled.create().unwrap();
    sled.write_pki(ca.rack_ca(), &platform_id_uri(id)).unwrap();
    if let Some(data) = lrtq {
        sled.write_lrtq_share(data).unwrap();
    }
    sled.write_config(&SledConfigFile::loopback(lrtq.is_some()))
        .unwrap()
}

pub struct Sled {
    pub id: PlatformId,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    /// The addresses of the last start, reused by a restart.
    pub peer_addr: Option<SocketAddr>,
    pub api_addr: Option<SocketAddr>,
    pub daemon: Option<Daemon>,
    /// Where the clients reach its API instead, if set (a recording
    /// proxy).
    pub via: Option<SocketAddr>,
}

pub struct Rack {
    pub ca: Ca,
    pub root: tempfile::TempDir,
    pub sleds: Vec<Sled>,
    pub lrtq_secret: Option<RackSecret>,
    pub lrtq_data: Vec<LrtqShareData>,
}

impl Rack {
    /// `lrtq` sleds of an LRTQ rack (from `seed`), then `fresh` new sleds.
    pub fn new(lrtq: usize, fresh: usize, seed: u64) -> Self {
        let ca = Ca::new("rack");
        let root = tempfile::tempdir().unwrap();
        let (lrtq_data, lrtq_secret) = tq_test_fixtures::lrtq_rack_or_fresh(lrtq, seed);
        let sleds = (0..lrtq + fresh)
            .map(|i| {
                let id = sled_id(i);
                let dir = SledDir::in_rack(root.path(), i).path().to_owned();
                let config_path = write_sled_dir(&ca, &id, &dir, lrtq_data.get(i));
                Sled {
                    id,
                    dir,
                    config_path,
                    peer_addr: None,
                    api_addr: None,
                    daemon: None,
                    via: None,
                }
            })
            .collect();
        Self {
            ca,
            root,
            sleds,
            lrtq_secret,
            lrtq_data,
        }
    }

    pub fn ids(&self) -> Vec<PlatformId> {
        self.sleds.iter().map(|s| s.id.clone()).collect()
    }

    /// Sled `i`'s configuration: its file, on its old ports if it ran.
    pub fn config(&self, i: usize) -> SledConfig {
        let sled = &self.sleds[i];
        let mut config = SledConfig::load(&sled.config_path).unwrap();
        if let Some(addr) = sled.peer_addr {
            config.peer.listen = addr;
        }
        if let Some(addr) = sled.api_addr {
            config.api.listen = addr;
        }
        config.peers = Vec::new();
        config
    }

    pub async fn start(&mut self, i: usize) {
        let daemon = Daemon::start(&self.config(i)).await.unwrap();
        let sled = &mut self.sleds[i];
        sled.peer_addr = Some(daemon.peer_addr());
        sled.api_addr = Some(daemon.api_addr());
        sled.daemon = Some(daemon);
    }

    /// Starts every sled not running, tells every running one every
    /// address, and waits until they are all connected.
    pub async fn start_all(&mut self) {
        for i in 0..self.sleds.len() {
            if self.sleds[i].daemon.is_none() {
                self.start(i).await;
            }
        }
        self.publish_peers().await;
        self.wait_connected().await;
    }

    pub fn peer_map(&self) -> BTreeMap<PlatformId, SocketAddr> {
        self.sleds
            .iter()
            .filter_map(|s| s.peer_addr.map(|addr| (s.id.clone(), addr)))
            .collect()
    }

    pub async fn publish_peers(&self) {
        // Highest first: a listener knows its dialers before they dial.
        for sled in self.sleds.iter().rev() {
            if let Some(daemon) = &sled.daemon {
                let mut peers = self.peer_map();
                peers.remove(&sled.id);
                daemon.handle().set_peers(peers).await.unwrap();
            }
        }
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.sleds.len())
            .filter(|&i| self.sleds[i].daemon.is_some())
            .collect()
    }

    /// Waits until every running sled is connected to every other one,
    /// as their `/v1/status` says.
    pub async fn wait_connected(&self) {
        let running = self.running();
        let deadline = tokio::time::Instant::now() + WAIT;
        for &i in &running {
            loop {
                let status = self.client(i).status().await.unwrap().into_inner();
                let connected = status
                    .peers
                    .iter()
                    .filter(|p| p.connected && running.iter().any(|&j| self.sleds[j].id == p.id))
                    .count();
                if connected + 1 == running.len() {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "sled {i} connected to {connected} of {}",
                    running.len() - 1
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    pub fn api_addr(&self, i: usize) -> SocketAddr {
        self.sleds[i].api_addr.expect("sled started")
    }

    /// Where clients reach sled `i`'s API.
    pub fn base_url(&self, i: usize) -> String {
        let addr = self.sleds[i].via.unwrap_or_else(|| self.api_addr(i));
        tq::https::base_url(addr)
    }

    /// The rack CA, as the API's clients trust it.
    pub fn rack_ca(&self) -> RackCa {
        RackCa::new(vec![self.ca.der()]).unwrap()
    }

    /// An HTTPS client that reaches only sled `i` (its certificate under
    /// the rack CA, naming its platform id).
    pub fn http(&self, i: usize) -> reqwest::Client {
        tq::https::sled_client(&self.rack_ca(), self.sleds[i].id.clone(), WAIT).unwrap()
    }

    /// The generated client of sled `i`'s API.
    pub fn client(&self, i: usize) -> Client {
        Client::new_with_client(&self.base_url(i), self.http(i))
    }

    /// Stops sled `i` cleanly.
    pub async fn stop(&mut self, i: usize) {
        if let Some(daemon) = self.sleds[i].daemon.take() {
            daemon.stop().await;
        }
    }

    pub async fn stop_all(&mut self) {
        for i in 0..self.sleds.len() {
            self.stop(i).await;
        }
    }
}

/// The HTTP status and error body of a refused call made with the
/// generated client.
pub fn refusal<T: std::fmt::Debug>(
    result: Result<T, ClientError<tq::api::error::ApiError>>,
) -> (u16, tq::api::error::ApiError) {
    match result {
        Err(ClientError::ErrorResponse(response)) => {
            let status = response.status().as_u16();
            (status, response.into_inner())
        }
        other => panic!("expected an error response, got {other:?}"),
    }
}

pub fn members(rack: &Rack, sleds: &[usize]) -> MemberSet {
    let ids: Vec<PlatformId> = sleds.iter().map(|&i| rack.sleds[i].id.clone()).collect();
    MemberSet::new(&ids).unwrap()
}

pub fn threshold(k: u8) -> Threshold {
    Threshold::new(k).unwrap()
}

/// How each member took the commit, in the order of `members`.
#[derive(Debug)]
pub enum Took {
    Commit(CommitOutcome),
    PrepareAndCommit(PrepareAndCommitOutcome),
}

/// A scripted Nexus over the API: waits until `coordinator` has enough
/// prepare acks for `epoch`, then commits every member: acked ones with
/// `commit` (the second of them through a proxied commit from the
/// coordinator), the rest, and the last acked one, with
/// `prepare_and_commit` (so both calls run). Returns the configuration.
pub async fn commit_epoch(
    rack: &Rack,
    coordinator: usize,
    epoch: Epoch,
    member_sleds: &[usize],
) -> (Configuration, Vec<Took>) {
    let client = rack.client(coordinator);
    let deadline = tokio::time::Instant::now() + WAIT;
    let status: CoordinatorStatus = loop {
        let status = client.coordinator_status().await.unwrap().into_inner();
        if let Some(status) = status
            && status.epoch == epoch
            && status.phase == CoordinatorPhase::Preparing
            && status.config.is_some()
            && status.acked.len()
                >= acks_to_commit(
                    member_sleds.len(),
                    status.config.as_ref().unwrap().threshold(),
                )
        {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "epoch {epoch} not ready to commit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let config = status.config.clone().unwrap();
    let request = CommitRequest {
        rack_id: config.rack_id(),
        epoch,
    };
    let acked: Vec<usize> = member_sleds
        .iter()
        .copied()
        .filter(|&i| status.acked.contains(&rack.sleds[i].id))
        .collect();
    let mut took = Vec::new();
    for (n, &i) in member_sleds.iter().enumerate() {
        let is_acked = acked.contains(&i);
        let last_acked = acked.last() == Some(&i);
        let outcome = if is_acked && !last_acked && n == 1 && i != coordinator {
            let body = tq::api::types::ProxyCommitRequest {
                target: rack.sleds[i].id.clone(),
                deadline_ms: 10_000,
                request,
            };
            Took::Commit(client.proxy_commit(&body).await.unwrap().into_inner())
        } else if is_acked && !last_acked {
            Took::Commit(rack.client(i).commit(&request).await.unwrap().into_inner())
        } else {
            Took::PrepareAndCommit(
                rack.client(i)
                    .prepare_and_commit(&config)
                    .await
                    .unwrap()
                    .into_inner(),
            )
        };
        took.push(outcome);
    }
    (config, took)
}

/// Runs the LRTQ upgrade of sleds `member_sleds` to `epoch`, coordinated
/// by `coordinator`, to its commit.
pub async fn upgrade(
    rack: &Rack,
    coordinator: usize,
    epoch: Epoch,
    member_sleds: &[usize],
    k: u8,
) -> (Configuration, Vec<Took>) {
    let msg = LrtqUpgradeMsg {
        rack_id: RACK_ID,
        epoch,
        members: members(rack, member_sleds),
        threshold: threshold(k),
    };
    rack.client(coordinator)
        .upgrade_from_lrtq(&msg)
        .await
        .unwrap();
    commit_epoch(rack, coordinator, epoch, member_sleds).await
}

/// Runs a reconfiguration to `epoch` to its commit.
pub async fn reconfigure(
    rack: &Rack,
    coordinator: usize,
    epoch: Epoch,
    last_committed: Epoch,
    member_sleds: &[usize],
    k: u8,
) -> (Configuration, Vec<Took>) {
    let msg = ReconfigureMsg {
        rack_id: RACK_ID,
        epoch,
        last_committed_epoch: Some(last_committed),
        members: members(rack, member_sleds),
        threshold: threshold(k),
    };
    rack.client(coordinator).reconfigure(&msg).await.unwrap();
    commit_epoch(rack, coordinator, epoch, member_sleds).await
}

/// Waits until every sled of `sleds` has committed `epoch` and holds its
/// share of it (a `prepare_and_commit` answered `ComputingShare` commits
/// later).
pub async fn wait_committed(rack: &Rack, sleds: &[usize], epoch: Epoch) {
    let deadline = tokio::time::Instant::now() + WAIT;
    for &i in sleds {
        loop {
            let status = rack.client(i).status().await.unwrap().into_inner();
            let state = &status.node.state;
            let held = state
                .configs
                .iter()
                .any(|c| c.epoch == epoch && c.committed && c.share_held);
            if state.latest_committed == Some(epoch) && held {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sled {i} did not commit epoch {epoch}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The shares in sled `i`'s ledger copies, with their epochs (a sled keeps
/// only the configurations it still needs: read them while they are there).
pub fn ledger_shares_of(rack: &Rack, i: usize) -> Vec<(Epoch, tq_core::crypto::Share)> {
    let mut shares = Vec::new();
    for copy in LEDGER_DIRS {
        let path = rack.sleds[i]
            .dir
            .join(copy)
            .join(tq::config::LEDGER_FILE_NAME);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let (generation, payload) = tq_std::ledger::format::decode(&bytes).unwrap();
        if generation == 0 {
            continue; // as `init` left it: nothing stored yet
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
