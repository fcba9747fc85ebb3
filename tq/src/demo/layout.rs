//! The demo rack on disk, in a temporary directory: per sled its two
//! "drives" (ledger directories, initialized as `tq sled init` does), its
//! certificate and key, its LRTQ share file if it comes from the LRTQ
//! rack, and its `tq sled` configuration file naming every other sled as a
//! peer; and the rack file Nexus drives from, with the rack CA's
//! certificate beside it (what Nexus verifies the sleds' APIs under).
//!
//! Each sled's files are laid out as `tq_rack_setup::layout` lays them
//! out (the tests that start sleds use the same), its certificate made by
//! the rack CA of `tq_rack_setup::pki`. The LRTQ shares are made as LRTQ
//! rack setup made them: `tq_rack_setup::lrtq` (vsss-rs 3.3.4, threshold
//! `n/2 + 1`, 255 shares, from the seed), each sled's share data in its
//! share file as the core encodes it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tq_core::ids::{Epoch, PlatformId, RackId};
use tq_rack_setup::layout::{RACK_CA_FILE, SledConfigFile, SledDir};
use tq_rack_setup::pki::{Firmware, RackCa};
use tq_std::net::identity::platform_id_uri;

use tq_rack_setup::SetupError;

use crate::config::{ConfigError, DEFAULT_API_PORT, DEFAULT_PEER_PORT, SledConfig};
use crate::nexus::rack_file::{RackFile, RackSled};
use crate::sled::DaemonError;

/// Why the rack could not be laid out on disk.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Fewer fixed addresses than sleds.
    #[error("{given} addresses for {sleds} sleds")]
    TooFewAddresses {
        /// Addresses given.
        given: usize,
        /// Sleds to place.
        sleds: usize,
    },
    /// No sled has this index.
    #[error("no sled {0}")]
    NoSled(usize),
    /// The system gave no free port on the loopback.
    #[error("cannot pick free ports")]
    FreePorts(#[source] std::io::Error),
    /// The rack CA could not be made.
    #[error("the rack CA")]
    Ca(#[source] SetupError),
    /// Nexus's copy of the rack CA's certificate could not be written.
    #[error("cannot write {}", .0.display())]
    RackCaFile(PathBuf, #[source] std::io::Error),
    /// The LRTQ rack's secret and shares could not be made.
    #[error("the LRTQ rack setup")]
    Lrtq(#[source] SetupError),
    /// A sled's id, directory, certificate, share or config file.
    #[error("sled {index}'s files")]
    Files {
        /// The sled's place in the demo.
        index: usize,
        /// Why.
        #[source]
        source: SetupError,
    },
    /// A sled's configuration file, once written, does not load.
    #[error("sled {index}'s configuration")]
    Config {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// `tq sled init` failed for a sled.
    #[error("sled {index}: init")]
    Init {
        /// The sled.
        index: usize,
        /// Why.
        #[source]
        source: DaemonError,
    },
}

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
    /// Nexus's copy of the rack CA's certificate (PEM).
    pub rack_ca: PathBuf,
    /// Every sled, the LRTQ rack's first.
    pub sleds: Vec<SledFiles>,
    /// LRTQ's threshold (`n/2 + 1`).
    pub lrtq_threshold: u8,
    /// The fingerprint of the LRTQ secret as epoch 1 (what every sled
    /// must report for it), computed from the secret rack setup made.
    pub lrtq_fingerprint: [u8; 32],
    /// The rack CA, which re-issues a certificate when a sled's firmware
    /// changes ([`Layout::remeasure`]).
    ca: RackCa,
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
    ) -> Result<Self, LayoutError> {
        let count = lrtq + fresh;
        let rack_id = rack_id(seed);
        let addresses = addresses(addressing, count)?;
        let ca = RackCa::new("tq demo rack CA").map_err(LayoutError::Ca)?;
        let rack_ca = root.join(RACK_CA_FILE);
        std::fs::write(&rack_ca, ca.pem())
            .map_err(|e| LayoutError::RackCaFile(rack_ca.clone(), e))?;
        let setup = tq_rack_setup::lrtq::lrtq_setup(lrtq, seed).map_err(LayoutError::Lrtq)?;
        let lrtq_fingerprint = tq_std::secrets::fingerprint(
            &setup.rack_secret().map_err(LayoutError::Lrtq)?,
            rack_id,
            Epoch(1),
        );
        let digests = setup.share_digests().map_err(LayoutError::Lrtq)?;
        let mut sleds = Vec::with_capacity(count);
        for (index, (peer, api)) in addresses.into_iter().enumerate() {
            let failed = |source| LayoutError::Files { index, source };
            let id = tq_rack_setup::sled_id(index).map_err(failed)?;
            let files = SledDir::in_rack(root, index);
            files.create().map_err(failed)?;
            files
                .write_pki(&ca, &platform_id_uri(&id))
                .map_err(failed)?;
            if index < lrtq {
                let data = setup.share_data(rack_id, index, &digests).map_err(failed)?;
                files.write_lrtq_share(&data).map_err(failed)?;
            }
            sleds.push(SledFiles {
                index,
                id,
                config: files.config_file(),
                // The drives themselves are made by `tq sled init` below.
                drives: files.drives(),
                dir: files.path().to_owned(),
                lrtq: index < lrtq,
                peer,
                api,
            });
        }
        for sled in &sleds {
            let config = SledConfigFile {
                lrtq: sled.lrtq,
                peer_listen: sled.peer,
                api_listen: sled.api,
                peers: sleds
                    .iter()
                    .filter(|other| other.index != sled.index)
                    .map(|other| (other.id.clone(), other.peer))
                    .collect(),
            };
            SledDir::new(&sled.dir)
                .write_config(&config)
                .map_err(|source| LayoutError::Files {
                    index: sled.index,
                    source,
                })?;
            // What an operator does once for a new sled: `tq sled init`.
            let config = SledConfig::load(&sled.config).map_err(|source| LayoutError::Config {
                index: sled.index,
                source,
            })?;
            crate::sled::init(&config).map_err(|source| LayoutError::Init {
                index: sled.index,
                source,
            })?;
        }
        Ok(Self {
            rack_id,
            rack_ca,
            sleds,
            lrtq_threshold: setup.threshold,
            lrtq_fingerprint,
            ca,
        })
    }

    /// Sled `index` now runs `firmware`: its certificate is re-issued
    /// measuring it (read at its next start).
    pub fn remeasure(&self, index: usize, firmware: &[Firmware]) -> Result<(), LayoutError> {
        let failed = |source| LayoutError::Files { index, source };
        let sled = self.sleds.get(index).ok_or(LayoutError::NoSled(index))?;
        SledDir::new(&sled.dir)
            .write_certificate(&self.ca, &platform_id_uri(&sled.id), firmware)
            .map_err(failed)
    }

    /// Every sled's reference measurements now accept exactly `firmware`
    /// (each file replaced whole; the sleds re-read it at their next
    /// handshake, without a restart).
    pub fn approve(&self, firmware: &[Firmware]) -> Result<(), LayoutError> {
        for sled in &self.sleds {
            SledDir::new(&sled.dir)
                .write_reference_measurements(firmware)
                .map_err(|source| LayoutError::Files {
                    index: sled.index,
                    source,
                })?;
        }
        Ok(())
    }

    /// The rack file Nexus drives from: every sled, with an API address
    /// only for those Nexus reaches directly.
    pub fn rack_file(&self, direct: impl Fn(&SledFiles) -> bool) -> RackFile {
        RackFile {
            rack_id: self.rack_id,
            rack_ca: self.rack_ca.clone(),
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
) -> Result<Vec<(SocketAddr, SocketAddr)>, LayoutError> {
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
        Addressing::Fixed(ips) => Err(LayoutError::TooFewAddresses {
            given: ips.len(),
            sleds: count,
        }),
        Addressing::Loopback => {
            // Ports the system has free now, held until all are picked so
            // none repeats; the sleds bind them a moment later.
            let listeners = (0..2 * count)
                .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(LayoutError::FreePorts)?;
            let ports = listeners
                .iter()
                .map(|l| l.local_addr().map(|a| a.port()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(LayoutError::FreePorts)?;
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
