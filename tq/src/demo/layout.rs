//! The demo rack on disk, in a temporary directory: per sled its two
//! "drives" (ledger directories, initialized as `tq sled init` does), its
//! certificate and key, its LRTQ share file if it comes from the LRTQ
//! rack, and its `tq sled` configuration file naming every other sled as a
//! peer; and the rack file Nexus drives from.
//!
//! The LRTQ shares are made as LRTQ rack setup made them:
//! `tq_test_fixtures::lrtq_setup` (vsss-rs 3.3.4, threshold `n/2 + 1`,
//! 255 shares, from the seed), each sled's share data in its share file
//! as the core encodes it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, PlatformId, RackId};
use tq_core::wire;
use zeroize::Zeroize;

use super::pki::RackCa;
use crate::config::{DEFAULT_API_PORT, DEFAULT_PEER_PORT, SledConfig};
use crate::nexus::rack_file::{RackFile, RackSled};

/// The part number of every demo sled.
pub const PART: &str = "913-0000019";

/// Where each sled listens.
#[derive(Clone, Debug)]
pub enum Addressing {
    /// All on 127.0.0.1, on ports the system had free at start.
    Loopback,
    /// Sled `i` on the `i`-th address, on the default ports (a network
    /// namespace per sled).
    Fixed(Vec<IpAddr>),
}

/// One sled's files and addresses.
#[derive(Clone, Debug)]
pub struct SledFiles {
    /// Its place in the demo (0 first).
    pub index: usize,
    /// Its platform id.
    pub id: PlatformId,
    /// Its directory.
    pub dir: PathBuf,
    /// Its `tq sled` configuration file.
    pub config: PathBuf,
    /// Its two ledger directories.
    pub drives: [PathBuf; 2],
    /// Whether it holds an LRTQ share.
    pub lrtq: bool,
    /// Its peer network address.
    pub peer: SocketAddr,
    /// Its HTTP API address.
    pub api: SocketAddr,
}

/// The whole rack on disk.
pub struct Layout {
    /// The rack.
    pub rack_id: RackId,
    /// Every sled, the LRTQ rack's first.
    pub sleds: Vec<SledFiles>,
    /// LRTQ's threshold (`n/2 + 1`).
    pub lrtq_threshold: u8,
    /// The fingerprint of the LRTQ secret as epoch 1 (what every sled
    /// must report for it), computed from the secret rack setup made.
    pub lrtq_fingerprint: [u8; 32],
}

/// Sled `index`'s platform id.
pub fn sled_id(index: usize) -> Result<PlatformId, String> {
    PlatformId::new(PART, &format!("DEMO{index:04}")).map_err(|e| e.to_string())
}

/// The rack id of the demo with `seed`.
pub fn rack_id(seed: u64) -> RackId {
    let mut bytes = [0x7d; 16];
    bytes[8..].copy_from_slice(&seed.to_be_bytes());
    RackId(bytes)
}

impl Layout {
    /// Writes a rack of `lrtq` LRTQ sleds and `fresh` new ones under
    /// `root`.
    pub fn create(
        root: &Path,
        lrtq: usize,
        fresh: usize,
        seed: u64,
        addressing: &Addressing,
    ) -> Result<Self, String> {
        let count = lrtq + fresh;
        let rack_id = rack_id(seed);
        let addresses = addresses(addressing, count)?;
        let ca = RackCa::new().map_err(|e| format!("rack CA: {e}"))?;
        let mut setup = tq_test_fixtures::lrtq_setup(lrtq, seed);
        let lrtq_fingerprint = {
            let secret = RackSecret::from_bytes(&setup.secret).map_err(|e| e.to_string());
            setup.secret.zeroize();
            tq_std::secrets::fingerprint(&secret?, rack_id, Epoch(1))
        };
        let mut sleds = Vec::with_capacity(count);
        for (index, (peer, api)) in addresses.into_iter().enumerate() {
            let id = sled_id(index)?;
            let dir = root.join(format!("sled-{index:02}"));
            // The drives themselves are made by `tq sled init` below.
            let drives = [dir.join("m2-a"), dir.join("m2-b")];
            create_dir(&dir)?;
            let pki = ca.write_sled(&id, &dir)?;
            let share_file = if index < lrtq {
                let data = tq_test_fixtures::lrtq_share_data(&setup, rack_id, index);
                let mut buf = vec![0; wire::MAX_LRTQ_SHARE_DATA_LEN];
                let bytes = wire::encode_lrtq_share_data(&data, &mut buf)
                    .map_err(|e| format!("LRTQ share data: {e:?}"))?;
                let path = dir.join("lrtq-share.bin");
                write(&path, bytes)?;
                buf.zeroize();
                Some(path)
            } else {
                None
            };
            sleds.push((
                SledFiles {
                    index,
                    id,
                    config: dir.join("sled.toml"),
                    dir,
                    drives,
                    lrtq: index < lrtq,
                    peer,
                    api,
                },
                pki,
                share_file,
            ));
        }
        for (sled, pki, share_file) in &sleds {
            let text = sled_config(sled, pki, share_file.as_deref(), sleds.iter().map(|s| &s.0))?;
            write(&sled.config, text.as_bytes())?;
            // What an operator does once for a new sled: `tq sled init`.
            let config = SledConfig::load(&sled.config).map_err(|e| e.to_string())?;
            crate::sled::init(&config).map_err(|e| format!("sled {}: {e}", sled.id))?;
        }
        Ok(Self {
            rack_id,
            sleds: sleds.into_iter().map(|(sled, _, _)| sled).collect(),
            lrtq_threshold: setup.threshold,
            lrtq_fingerprint,
        })
    }

    /// The rack file Nexus drives from: every sled, with an API address
    /// only for those Nexus reaches directly.
    pub fn rack_file(&self, direct: impl Fn(&SledFiles) -> bool) -> RackFile {
        RackFile {
            rack_id: self.rack_id,
            sleds: self
                .sleds
                .iter()
                .map(|s| RackSled {
                    id: s.id.clone(),
                    api: direct(s).then_some(s.api),
                })
                .collect(),
        }
    }
}

/// Sled `i`'s peer and API addresses.
fn addresses(
    addressing: &Addressing,
    count: usize,
) -> Result<Vec<(SocketAddr, SocketAddr)>, String> {
    match addressing {
        Addressing::Fixed(ips) if ips.len() >= count => Ok(ips
            .iter()
            .take(count)
            .map(|&ip| {
                (
                    SocketAddr::new(ip, DEFAULT_PEER_PORT),
                    SocketAddr::new(ip, DEFAULT_API_PORT),
                )
            })
            .collect()),
        Addressing::Fixed(ips) => Err(format!("{} addresses for {count} sleds", ips.len())),
        Addressing::Loopback => {
            // Ports the system has free now, held until all are picked so
            // none repeats; the sleds bind them a moment later.
            let listeners = (0..2 * count)
                .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("picking free ports: {e}"))?;
            let ports = listeners
                .iter()
                .map(|l| l.local_addr().map(|a| a.port()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("picking free ports: {e}"))?;
            let at = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            Ok(ports
                .chunks_exact(2)
                .filter_map(|p| match p {
                    [peer, api] => Some((at(*peer), at(*api))),
                    _ => None,
                })
                .collect())
        }
    }
}

/// Sled `sled`'s `tq sled` configuration: its files, its addresses, and
/// every other sled of `all` as a peer.
fn sled_config<'a>(
    sled: &SledFiles,
    pki: &super::pki::SledPki,
    share_file: Option<&Path>,
    all: impl Iterator<Item = &'a SledFiles>,
) -> Result<String, String> {
    use toml::{Table, Value};
    let path = |p: &Path| Value::String(p.display().to_string());
    let mut ledger = Table::new();
    ledger.insert(
        "dirs".into(),
        Value::Array(sled.drives.iter().map(|d| path(d)).collect()),
    );
    if let Some(file) = share_file {
        ledger.insert("lrtq_share_file".into(), path(file));
    }
    let mut tls = Table::new();
    tls.insert("rack_ca".into(), path(&pki.rack_ca));
    tls.insert("certificate".into(), path(&pki.certificate));
    tls.insert("key".into(), path(&pki.key));
    let mut peer = Table::new();
    peer.insert("listen".into(), Value::String(sled.peer.to_string()));
    let mut api = Table::new();
    api.insert("listen".into(), Value::String(sled.api.to_string()));
    let peers = all
        .filter(|other| other.index != sled.index)
        .map(|other| {
            let mut entry = Table::new();
            entry.insert("part".into(), Value::String(PART.into()));
            entry.insert(
                "serial".into(),
                Value::String(other.id.serial_number().into()),
            );
            entry.insert("address".into(), Value::String(other.peer.to_string()));
            Value::Table(entry)
        })
        .collect();
    let mut file = Table::new();
    file.insert("ledger".into(), Value::Table(ledger));
    file.insert("tls".into(), Value::Table(tls));
    file.insert("peer".into(), Value::Table(peer));
    file.insert("api".into(), Value::Table(api));
    file.insert("peers".into(), Value::Array(peers));
    toml::to_string(&file).map_err(|e| format!("sled config: {e}"))
}

fn create_dir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
