//! The demo rack on disk, in a temporary directory: per sled its two
//! "drives" (ledger directories, initialized as `tq sled init` does), its
//! certificate and key, its request key (derived from Nexus's authority
//! key, which rack setup makes and keeps beside Nexus's state file), its
//! LRTQ share file if it comes from the LRTQ rack, and its `tq sled`
//! configuration file naming every other sled as a peer; and the rack
//! file Nexus drives from, with the rack CA's certificate beside it (what
//! Nexus verifies the sleds' APIs under).
//!
//! Replacement sleds ([`Layout::provision_replacements`]) are made at
//! set-up too, as a pool: each a new platform id and certificate for a
//! slot (the addresses of the sled it may replace), its configuration
//! file and ledger written only when it is slid in
//! ([`Layout::write_config`], [`Layout::init_ledger`]: `tq sled init`,
//! as an operator does for new hardware).
//!
//! Each sled's files are laid out as `tq_rack_setup::layout` lays them
//! out (the tests that start sleds use the same), its certificate made by
//! the rack CA of `tq_rack_setup::pki`. The LRTQ shares are made as LRTQ
//! rack setup made them: `tq_rack_setup::lrtq` (vsss-rs 3.3.4, threshold
//! `n/2 + 1`, 255 shares, from the seed), each sled's share data in its
//! share file as the core encodes it.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tq_core::authority::NexusAuthorityKey;
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
    /// Not enough free ports on the loopback outside the kernel's
    /// ephemeral range.
    #[error(
        "{found} free loopback ports outside the ephemeral range {ephemeral:?}, {wanted} wanted"
    )]
    FreePorts {
        /// Ports wanted.
        wanted: usize,
        /// Ports found free.
        found: usize,
        /// The kernel's ephemeral range.
        ephemeral: RangeInclusive<u16>,
    },
    /// The rack CA could not be made.
    #[error("the rack CA")]
    Ca(#[source] SetupError),
    /// Nexus's authority key could not be made or written.
    #[error("Nexus's authority key")]
    AuthorityKey(#[source] tq_rack_setup::keys::KeyFileError),
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
    /// All on 127.0.0.1, on ports free when the layout is made and
    /// outside the kernel's ephemeral range ([`ephemeral_ports`]), so that
    /// no `connect()` or `bind(0)` of any process can take one before its
    /// sled binds it (see [`loopback_ports`]).
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
    /// The slot it sits in: its own index for the rack's first sleds; for
    /// a replacement, the index of the sled whose addresses it takes.
    pub slot: usize,
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
    /// Nexus's authority key, which every sled's request key derives from.
    pub authority: NexusAuthorityKey,
    /// Where it is kept: beside Nexus's state file, [`NEXUS_STATE_FILE`].
    pub authority_key_file: PathBuf,
    /// The rack's directory.
    root: PathBuf,
}

/// Nexus's state file in the rack's directory (the demo's, and the one
/// the tests' `tq nexus` commands use); its authority key is beside it
/// ([`crate::nexus::authority_key_path`]).
pub const NEXUS_STATE_FILE: &str = "nexus.json";

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
        let authority =
            tq_rack_setup::keys::new_authority_key().map_err(LayoutError::AuthorityKey)?;
        let authority_key_file = crate::nexus::authority_key_path(&root.join(NEXUS_STATE_FILE));
        tq_rack_setup::keys::write_authority_key(&authority_key_file, &authority)
            .map_err(LayoutError::AuthorityKey)?;
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
        let mut layout = Self {
            rack_id,
            rack_ca,
            sleds: Vec::with_capacity(count),
            lrtq_threshold: setup.threshold,
            lrtq_fingerprint,
            ca,
            authority,
            authority_key_file,
            root: root.to_owned(),
        };
        for (index, addresses) in addresses.into_iter().enumerate() {
            let dir = layout.add_sled(index, addresses, index < lrtq)?.dir.clone();
            if index < lrtq {
                let failed = |source| LayoutError::Files { index, source };
                let data = setup.share_data(rack_id, index, &digests).map_err(failed)?;
                SledDir::new(&dir).write_lrtq_share(&data).map_err(failed)?;
            }
        }
        for index in 0..count {
            let others: Vec<usize> = (0..count).filter(|&other| other != index).collect();
            layout.write_config(index, &others)?;
            // What an operator does once for a new sled: `tq sled init`.
            layout.init_ledger(index)?;
        }
        Ok(layout)
    }

    /// Adds `per_slot` replacement sleds for each sled laid out so far: a
    /// new platform id (indexes go on after the last sled's), certificate
    /// and request key each, at the addresses of the sled whose slot it
    /// takes; no configuration file or ledger yet. Returns their indexes,
    /// slot by slot.
    pub fn provision_replacements(&mut self, per_slot: usize) -> Result<Vec<usize>, LayoutError> {
        let slots = self.sleds.len();
        let mut made = Vec::with_capacity(slots * per_slot);
        for slot in 0..slots {
            for _ in 0..per_slot {
                let occupant = self.sleds.get(slot).ok_or(LayoutError::NoSled(slot))?;
                let addresses = (occupant.peer, occupant.api);
                let files = self.add_sled(slot, addresses, false)?;
                made.push(files.index);
            }
        }
        Ok(made)
    }

    /// Lays out the next sled (its index the count so far) in `slot`, at
    /// `(peer, api)`: its directory, a new platform id, its certificate
    /// and request key. Its configuration file and ledger come later
    /// ([`Self::write_config`], [`Self::init_ledger`]).
    fn add_sled(
        &mut self,
        slot: usize,
        (peer, api): (SocketAddr, SocketAddr),
        lrtq: bool,
    ) -> Result<&SledFiles, LayoutError> {
        let index = self.sleds.len();
        let failed = |source| LayoutError::Files { index, source };
        let id = tq_rack_setup::sled_id(index).map_err(failed)?;
        let files = SledDir::in_rack(&self.root, index);
        files.create().map_err(failed)?;
        files
            .write_pki(&self.ca, &platform_id_uri(&id))
            .map_err(failed)?;
        files
            .write_request_key(&self.authority, self.rack_id, &id)
            .map_err(failed)?;
        self.sleds.push(SledFiles {
            index,
            slot,
            id,
            config: files.config_file(),
            drives: files.drives(),
            dir: files.path().to_owned(),
            lrtq,
            peer,
            api,
        });
        self.sleds.last().ok_or(LayoutError::NoSled(index))
    }

    /// Writes sled `index`'s `tq sled` configuration file naming `peers`
    /// (indexes) as its peers. The file is replaced atomically, so a
    /// running sled told to re-read it (SIGHUP) never reads half of it.
    pub fn write_config(&self, index: usize, peers: &[usize]) -> Result<(), LayoutError> {
        let sled = self.sleds.get(index).ok_or(LayoutError::NoSled(index))?;
        let config = SledConfigFile {
            lrtq: sled.lrtq,
            peer_listen: sled.peer,
            api_listen: sled.api,
            peers: peers
                .iter()
                .filter_map(|&other| self.sleds.get(other))
                .filter(|other| other.index != index)
                .map(|other| (other.id.clone(), other.peer))
                .collect(),
        };
        SledDir::new(&sled.dir)
            .write_config(&config)
            .map(|_| ())
            .map_err(|source| LayoutError::Files { index, source })
    }

    /// `tq sled init` for sled `index`: its ledger created, empty.
    pub fn init_ledger(&self, index: usize) -> Result<(), LayoutError> {
        let sled = self.sleds.get(index).ok_or(LayoutError::NoSled(index))?;
        let config = SledConfig::load(&sled.config)
            .map_err(|source| LayoutError::Config { index, source })?;
        crate::sled::init(&config).map_err(|source| LayoutError::Init { index, source })
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

/// Each of `count` sleds' peer and API addresses, as `addressing` lays
/// them out. Tests that lay out sleds of their own take their loopback
/// addresses here too, so that no two racks of one process share a port.
pub fn addresses(
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
            let at = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            let ports = loopback_ports(2 * count, &ephemeral_ports(), start_at())?;
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

/// Where the kernel's ephemeral range is written.
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Linux's default ephemeral range, assumed where the file cannot be read.
const DEFAULT_EPHEMERAL: RangeInclusive<u16> = 32768..=60999;

/// Lowest port the loopback layout uses (below: well-known and often
/// configured services).
const FIRST_PORT: u16 = 10_000;

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`):
/// the ports `bind` to port 0 and `connect` without a bind take, from any
/// process; the default where it cannot be read.
pub fn ephemeral_ports() -> RangeInclusive<u16> {
    std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(str::parse::<u16>);
            match (bounds.next(), bounds.next()) {
                (Some(Ok(low)), Some(Ok(high))) if low <= high => Some(low..=high),
                _ => None,
            }
        })
        .unwrap_or(DEFAULT_EPHEMERAL)
}

/// Where this process's scan for free ports begins: a different place in
/// each process (`RandomState` is seeded by the OS), so two layouts made
/// at once rarely scan the same ports.
fn start_at() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Every port a loopback layout of this process handed out. A sled's
/// ports are free while it is down (killed, restarting); a layout made in
/// the same process meanwhile (tests of one binary run side by side) would
/// find them free and hand them to a sled of its own, and the first sled
/// would then fail to start. So each port is handed out once per process.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `wanted` ports free on 127.0.0.1 now, none in `ephemeral` and none this
/// process handed out before (see `HANDED_OUT`): scanned from a place
/// `start` picks, each held (bound) until all are found, so none repeats.
///
/// Why outside the ephemeral range: the sleds bind their ports a moment
/// (for 32 sleds, seconds) after this returns. A port inside the range
/// is free for the kernel to hand to any socket in that window (another
/// process's `bind` to port 0 or, once its preferred half of the range
/// is used up, a `connect`'s source port), and the sled that wanted it
/// then fails to start. Outside the range only an explicit bind to that
/// very port can take it.
pub fn loopback_ports(
    wanted: usize,
    ephemeral: &RangeInclusive<u16>,
    start: u64,
) -> Result<Vec<u16>, LayoutError> {
    let candidates: Vec<u16> = (FIRST_PORT..=u16::MAX)
        .filter(|port| !ephemeral.contains(port))
        .collect();
    let n = candidates.len();
    let first = usize::try_from(start % n.max(1) as u64).unwrap_or(0);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let mut held = Vec::with_capacity(wanted);
    for port in candidates.iter().cycle().skip(first).take(n) {
        if held.len() == wanted {
            break;
        }
        if handed_out.contains(port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, *port)) {
            held.push((*port, listener));
        }
    }
    if held.len() < wanted {
        return Err(LayoutError::FreePorts {
            wanted,
            found: held.len(),
            ephemeral: ephemeral.clone(),
        });
    }
    let ports: Vec<u16> = held.into_iter().map(|(port, _)| port).collect();
    handed_out.extend(&ports);
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The range as the kernel has it now, read here on its own (not
    /// through [`ephemeral_ports`]).
    fn kernel_range() -> RangeInclusive<u16> {
        let text = std::fs::read_to_string(EPHEMERAL_RANGE_FILE).unwrap();
        let bounds: Vec<u16> = text
            .split_whitespace()
            .map(|b| b.parse().unwrap())
            .collect();
        bounds[0]..=bounds[1]
    }

    #[test]
    fn every_loopback_port_is_distinct_and_outside_the_kernels_ephemeral_range() {
        let range = kernel_range();
        let addresses = addresses(&Addressing::Loopback, 32).unwrap();
        let ports: Vec<u16> = addresses
            .iter()
            .flat_map(|(peer, api)| [peer.port(), api.port()])
            .collect();
        assert_eq!(ports.len(), 64);
        for port in &ports {
            assert!(
                !range.contains(port),
                "port {port} is in the ephemeral range {range:?}"
            );
        }
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len());
    }

    #[test]
    fn a_port_handed_out_is_not_handed_out_again_though_free() {
        let ephemeral = DEFAULT_EPHEMERAL;
        let first = loopback_ports(3, &ephemeral, 7).unwrap();
        // Nothing holds them now, as while their sleds are down.
        let again = loopback_ports(3, &ephemeral, 7).unwrap();
        assert!(
            first.iter().all(|p| !again.contains(p)),
            "{first:?} then {again:?}"
        );
    }

    #[test]
    fn a_port_in_use_is_passed_over() {
        let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        // Everything from FIRST_PORT to just below the taken port counts
        // as ephemeral, so the scan must start at the taken port.
        let ephemeral = FIRST_PORT..=port - 1;
        let ports = loopback_ports(2, &ephemeral, 0).unwrap();
        assert!(!ports.contains(&port), "{ports:?}");
        assert!(ports.iter().all(|p| !ephemeral.contains(p)), "{ports:?}");
    }
}
