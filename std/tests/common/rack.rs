//! A rack of real node tasks in one process: each sled with its two
//! ledger directories, its LRTQ share file if it came from an LRTQ rack,
//! a certificate from the rack CA, and a node task listening on loopback.
//! A restarted sled listens on its old port, so its peers' address books
//! stay right.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tq_core::crypto::RackSecret;
use tq_core::ids::{PlatformId, RackId};
use tq_core::node::LoadSecretError;
use tq_rack_setup::layout::SledDir;
use tq_std::backoff::BackoffConfig;
use tq_std::handle::{Answer, NodeHandle};
use tq_std::net::{NetConfig, TlsIdentity};
use tq_std::node::{NodeConfig, Started, start};
use tq_std::secrets::LoadedSecret;

use super::{Ca, CaIdentity, WAIT};

/// Each ledger copy's file name in its directory.
const LEDGER_FILE: &str = "tq-ledger";

/// The rack of `tq_test_fixtures`' LRTQ racks.
pub const RACK_ID: RackId = tq_test_fixtures::RACK;

pub struct Sled {
    pub id: PlatformId,
    pub dirs: [PathBuf; 2],
    pub lrtq_file: Option<PathBuf>,
    identity: TlsIdentity,
    pub listen: Option<SocketAddr>,
    pub running: Option<Started>,
}

impl Sled {
    pub fn ledger_paths(&self) -> [PathBuf; 2] {
        self.dirs.clone().map(|d| d.join(LEDGER_FILE))
    }
}

pub struct Rack {
    pub ca: Ca,
    _root: tempfile::TempDir,
    pub sleds: Vec<Sled>,
    pub lrtq_secret: Option<RackSecret>,
}

pub use tq_test_fixtures::sled_id;

/// Settings for a loaded machine: quick retries, timeouts that debug
/// builds of 32 sleds on 2 cores do not trip.
pub fn node_net_config(listen: SocketAddr) -> NetConfig {
    let mut net = NetConfig::new(listen);
    net.keepalive_interval = Duration::from_millis(250);
    net.inactivity_timeout = Duration::from_secs(5);
    net.handshake_timeout = Duration::from_secs(5);
    net.connect_timeout = Duration::from_secs(2);
    net.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
    };
    net.stable_after = Duration::from_secs(1);
    net
}

impl Rack {
    /// `lrtq` sleds from an LRTQ rack (seeded), then `fresh` new sleds.
    pub fn new(lrtq: usize, fresh: usize, seed: u64) -> Self {
        let ca = Ca::new("rack");
        let root = tempfile::tempdir().unwrap();
        // An LRTQ rack as rack setup made it (vsss-rs 3.3.4), each sled's
        // share data in its share file as the core encodes it.
        let (share_data, lrtq_secret) = tq_test_fixtures::lrtq_rack_or_fresh(lrtq, seed);
        let sleds = (0..lrtq + fresh)
            .map(|i| {
                // Laid out as the demo's sleds are.
                let files = SledDir::in_rack(root.path(), i);
                let dirs = files.drives();
                // As `tq sled init` does: the only way to a fresh ledger.
                files.create().unwrap();
                tq_std::ledger::init(&dirs.clone().map(|d| d.join(LEDGER_FILE))).unwrap();
                let lrtq_file = share_data
                    .get(i)
                    .map(|data| files.write_lrtq_share(data).unwrap());
                let id = sled_id(i);
                Sled {
                    identity: ca.identity(&id),
                    id,
                    dirs,
                    lrtq_file,
                    listen: None,
                    running: None,
                }
            })
            .collect();
        Self {
            ca,
            _root: root,
            sleds,
            lrtq_secret,
        }
    }

    pub fn ids(&self) -> Vec<PlatformId> {
        self.sleds.iter().map(|s| s.id.clone()).collect()
    }

    pub fn config(&self, i: usize) -> NodeConfig {
        let sled = &self.sleds[i];
        let listen = sled
            .listen
            .unwrap_or_else(|| "127.0.0.1:0".parse().unwrap());
        let mut config = NodeConfig::new(sled.ledger_paths(), node_net_config(listen));
        config.lrtq_share_file = sled.lrtq_file.clone();
        config.store_backoff = BackoffConfig {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        };
        config.peers = self.peer_map();
        config.request_key = Some(super::authority::sled_key(&sled.id));
        config
    }

    /// Starts sled `i` with `config`.
    pub async fn start_with(&mut self, i: usize, config: NodeConfig) {
        let identity = clone_identity(&self.sleds[i].identity);
        let started = start(config, &identity).await.unwrap();
        self.sleds[i].listen = Some(started.listen);
        self.sleds[i].running = Some(started);
    }

    pub async fn start(&mut self, i: usize) {
        self.start_with(i, self.config(i)).await;
    }

    /// Starts every sled not running, then tells every running one every
    /// address.
    pub async fn start_all(&mut self) {
        for i in 0..self.sleds.len() {
            if self.sleds[i].running.is_none() {
                self.start(i).await;
            }
        }
        self.publish_peers().await;
    }

    pub fn peer_map(&self) -> BTreeMap<PlatformId, SocketAddr> {
        self.sleds
            .iter()
            .filter_map(|s| s.listen.map(|addr| (s.id.clone(), addr)))
            .collect()
    }

    pub async fn publish_peers(&self) {
        let peers = self.peer_map();
        // Highest first: a listener knows its dialers before they dial.
        for sled in self.sleds.iter().rev() {
            if let Some(running) = &sled.running {
                running.handle.set_peers(peers.clone()).await.unwrap();
            }
        }
    }

    /// Nexus's request for sled `i`'s latest secret (as the fingerprint
    /// endpoint makes it), its answer's tag checked.
    pub async fn load_latest_secret(
        &self,
        i: usize,
        deadline: Duration,
    ) -> Answer<Result<LoadedSecret, LoadSecretError>> {
        super::authority::load_latest_secret(self.handle(i), deadline).await
    }

    pub fn handle(&self, i: usize) -> &NodeHandle {
        &self.sleds[i].running.as_ref().expect("sled running").handle
    }

    /// Kills sled `i`'s task where it stands, as a crash would.
    pub async fn crash(&mut self, i: usize) {
        if let Some(running) = self.sleds[i].running.take() {
            running.task.abort();
            let _ = running.task.await;
        }
    }

    /// Waits until every running sled is connected to every other running
    /// sled.
    pub async fn wait_connected(&self) {
        let running: Vec<usize> = (0..self.sleds.len())
            .filter(|&i| self.sleds[i].running.is_some())
            .collect();
        let deadline = tokio::time::Instant::now() + 6 * WAIT;
        for &i in &running {
            loop {
                let report = self.handle(i).status().await.unwrap();
                let connected = report
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
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    pub async fn shutdown(&mut self) {
        for sled in &mut self.sleds {
            if let Some(running) = sled.running.take() {
                let _ = running.handle.shutdown().await;
                let _ = running.task.await;
            }
        }
    }
}

pub fn clone_identity(identity: &TlsIdentity) -> TlsIdentity {
    TlsIdentity {
        ca_certs: identity.ca_certs.clone(),
        cert_chain: identity.cert_chain.clone(),
        key: identity.key.clone_key(),
    }
}
