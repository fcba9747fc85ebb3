//! One sled's directory, as the demo and the tests that start sleds lay
//! it out: its two ledger directories (the "drives"; `tq sled init`
//! makes them, not this module), its LRTQ share file if it comes from an
//! LRTQ rack, its PEM files, the rack's reference measurements and its
//! `tq sled` configuration file.
//!
//! The configuration names every file relative to the sled's directory
//! (the daemon resolves paths against its configuration file's), so a
//! sled's directory can be moved or copied whole.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tq_core::authority::NexusAuthorityKey;
use tq_core::ids::{PlatformId, RackId};
use tq_core::persistent::LrtqShareData;
use tq_core::wire;
use zeroize::Zeroizing;

use crate::SetupError;
use crate::keys;
#[cfg(feature = "pki")]
use crate::pki::{Firmware, PemFiles, RackCa, rack_firmware, reference_measurements_toml};

/// The ledger directories, one per M.2 drive.
pub const LEDGER_DIRS: [&str; 2] = ["m2-a", "m2-b"];
/// The LRTQ share file: the sled's share data as the core encodes it.
pub const LRTQ_SHARE_FILE: &str = "lrtq-share.bin";
/// The rack CA's certificate.
pub const RACK_CA_FILE: &str = "rack-ca.pem";
/// The sled's certificate.
pub const CERTIFICATE_FILE: &str = "sled.pem";
/// The sled's private key.
pub const KEY_FILE: &str = "sled.key";
/// The rack's reference measurements: the firmware digests a peer may run.
pub const REFERENCE_MEASUREMENTS_FILE: &str = "reference-measurements.toml";
/// The sled's request key (Nexus's authority, derived for this sled).
pub const REQUEST_KEY_FILE: &str = "request.key";
/// The sled's `tq sled` configuration file.
pub const CONFIG_FILE: &str = "sled.toml";

/// A sled's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SledDir {
    dir: PathBuf,
}

/// What a sled's configuration file says beyond its files.
#[derive(Clone, Debug)]
pub struct SledConfigFile {
    /// Whether it names the LRTQ share file.
    pub lrtq: bool,
    /// Where it listens for its peers.
    pub peer_listen: SocketAddr,
    /// Where it serves its HTTP API.
    pub api_listen: SocketAddr,
    /// Its peers' addresses (possibly none: told later).
    pub peers: Vec<(PlatformId, SocketAddr)>,
}

impl SledDir {
    /// The sled directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Sled `index`'s directory in a rack laid out under `root`
    /// (`sled-00`, `sled-01`, ...).
    pub fn in_rack(root: &Path, index: usize) -> Self {
        Self::new(root.join(format!("sled-{index:02}")))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The two ledger directories.
    pub fn drives(&self) -> [PathBuf; 2] {
        LEDGER_DIRS.map(|d| self.dir.join(d))
    }

    /// The LRTQ share file.
    pub fn lrtq_share_file(&self) -> PathBuf {
        self.dir.join(LRTQ_SHARE_FILE)
    }

    /// The rack CA's certificate.
    pub fn rack_ca(&self) -> PathBuf {
        self.dir.join(RACK_CA_FILE)
    }

    /// The sled's certificate.
    pub fn certificate(&self) -> PathBuf {
        self.dir.join(CERTIFICATE_FILE)
    }

    /// The sled's private key.
    pub fn key(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// The rack's reference measurements file.
    pub fn reference_measurements(&self) -> PathBuf {
        self.dir.join(REFERENCE_MEASUREMENTS_FILE)
    }

    /// The sled's request key file.
    pub fn request_key(&self) -> PathBuf {
        self.dir.join(REQUEST_KEY_FILE)
    }

    /// Writes the sled's request key file (mode 0600): `authority`'s key
    /// for sled `id` of rack `rack_id`.
    pub fn write_request_key(
        &self,
        authority: &NexusAuthorityKey,
        rack_id: RackId,
        id: &PlatformId,
    ) -> Result<PathBuf, SetupError> {
        let path = self.request_key();
        let key =
            keys::sled_key(authority, rack_id, id).map_err(|e| SetupError::Key(path.clone(), e))?;
        keys::write_sled_key(&path, &key).map_err(|e| SetupError::Key(path.clone(), e))?;
        Ok(path)
    }

    /// The `tq sled` configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// Makes the directory (and its parents).
    pub fn create(&self) -> Result<(), SetupError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| SetupError::Io(self.dir.clone(), e))
    }

    /// Writes the rack CA's certificate, a sled certificate naming `uri`
    /// (the platform id's SAN URI) and measuring [`rack_firmware`], with
    /// its key, and reference measurements accepting that firmware.
    #[cfg(feature = "pki")]
    pub fn write_pki(&self, ca: &RackCa, uri: &str) -> Result<(), SetupError> {
        let firmware = rack_firmware();
        self.write_certificate(ca, uri, &firmware)?;
        self.write_reference_measurements(&firmware)
    }

    /// Writes the rack CA's certificate and a sled certificate naming
    /// `uri` and measuring `firmware`, with its key (replacing them).
    #[cfg(feature = "pki")]
    pub fn write_certificate(
        &self,
        ca: &RackCa,
        uri: &str,
        firmware: &[Firmware],
    ) -> Result<(), SetupError> {
        let (rack_ca, certificate, key) = (self.rack_ca(), self.certificate(), self.key());
        ca.write_sled_files(
            &[uri.to_owned()],
            firmware,
            &PemFiles {
                rack_ca: &rack_ca,
                certificate: &certificate,
                key: &key,
            },
        )
    }

    /// Writes (replaces) the reference measurements file: exactly
    /// `firmware` is accepted. Written beside it and renamed over it, so a
    /// sled re-reading it at a handshake never sees half a file.
    #[cfg(feature = "pki")]
    pub fn write_reference_measurements(&self, firmware: &[Firmware]) -> Result<(), SetupError> {
        let path = self.reference_measurements();
        let staged = path.with_extension("toml.new");
        std::fs::write(&staged, reference_measurements_toml(firmware))
            .map_err(|e| SetupError::Io(staged.clone(), e))?;
        std::fs::rename(&staged, &path).map_err(|e| SetupError::Io(path.clone(), e))
    }

    /// Writes the LRTQ share file (mode 0600) with `data` as the core
    /// encodes it; returns its path.
    pub fn write_lrtq_share(&self, data: &LrtqShareData) -> Result<PathBuf, SetupError> {
        let mut buf = Zeroizing::new(vec![0; wire::MAX_LRTQ_SHARE_DATA_LEN]);
        let bytes = wire::encode_lrtq_share_data(data, &mut buf)
            .map_err(|e| SetupError::Lrtq(format!("encoding the share data: {e:?}")))?;
        let path = self.lrtq_share_file();
        write_private(&path, bytes)?;
        Ok(path)
    }

    /// Writes the configuration file, replacing it atomically (a running
    /// sled told to re-read its peers reads the old file or the new one,
    /// never a part); returns its path. One writer at a time: the caller
    /// is the only one writing this sled's files.
    pub fn write_config(&self, config: &SledConfigFile) -> Result<PathBuf, SetupError> {
        let path = self.config_file();
        tq_atomic_file::replace(&path, config.to_toml().as_bytes())
            .map_err(|(_, e)| SetupError::Io(path.clone(), e))?;
        Ok(path)
    }
}

impl SledConfigFile {
    /// On `127.0.0.1`, ports chosen when the sled starts, no peers.
    pub fn loopback(lrtq: bool) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            lrtq,
            peer_listen: any,
            api_listen: any,
            peers: Vec::new(),
        }
    }

    /// The `tq sled` configuration file's text: the sled's files (relative
    /// to its directory), its addresses and its peers, in a fixed order
    /// (ledger, tls, attestation, authority, peer, api, peers) that tests
    /// may edit by line.
    pub fn to_toml(&self) -> String {
        // TOML strings, quoted and escaped (a serial may hold a quote).
        let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let [a, b] = LEDGER_DIRS.map(quote);
        let lrtq = if self.lrtq {
            format!("lrtq_share_file = {}\n", quote(LRTQ_SHARE_FILE))
        } else {
            String::new()
        };
        let mut text = format!(
            "[ledger]\ndirs = [{a}, {b}]\n{lrtq}\n\
             [tls]\nrack_ca = {}\ncertificate = {}\nkey = {}\n\n\
             [attestation]\nreference_measurements = {}\n\n\
             [authority]\nkey_file = {}\n\n\
             [peer]\nlisten = \"{}\"\n\n[api]\nlisten = \"{}\"\n",
            quote(RACK_CA_FILE),
            quote(CERTIFICATE_FILE),
            quote(KEY_FILE),
            quote(REFERENCE_MEASUREMENTS_FILE),
            quote(REQUEST_KEY_FILE),
            self.peer_listen,
            self.api_listen,
        );
        for (id, address) in &self.peers {
            text.push_str(&format!(
                "\n[[peers]]\npart = {}\nserial = {}\naddress = \"{address}\"\n",
                quote(id.part_number()),
                quote(id.serial_number()),
            ));
        }
        text
    }
}

/// Writes `bytes` to `path`, which ends with mode 0600 (its owner's
/// alone: keys and shares).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SetupError> {
    let io = |e| SetupError::Io(path.to_owned(), e);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_the_files_relative_to_the_sled() {
        let mut config = SledConfigFile::loopback(true);
        config.peers = vec![(
            crate::sled_id(1).unwrap(),
            "127.0.0.1:7000".parse().unwrap(),
        )];
        let text = config.to_toml();
        toml::from_str::<toml::Table>(&text).unwrap();
        for wanted in [
            "dirs = [\"m2-a\", \"m2-b\"]",
            "lrtq_share_file = \"lrtq-share.bin\"",
            "rack_ca = \"rack-ca.pem\"",
            "[attestation]\nreference_measurements = \"reference-measurements.toml\"",
            "[authority]\nkey_file = \"request.key\"",
            "[[peers]]",
            "serial = \"SN0001\"",
            "[api]\nlisten = \"127.0.0.1:0\"",
        ] {
            assert!(text.contains(wanted), "{wanted} in {text}");
        }
        assert!(!SledConfigFile::loopback(false).to_toml().contains("lrtq"));
    }

    #[test]
    fn a_serial_with_a_quote_stays_one_toml_string() {
        let mut config = SledConfigFile::loopback(false);
        let id = PlatformId::new(tq_core::ids::SLED_PART_NUMBER, "B\"2").unwrap();
        config.peers = vec![(id, "127.0.0.1:7000".parse().unwrap())];
        let file: toml::Table = toml::from_str(&config.to_toml()).unwrap();
        let serial = &file["peers"].as_array().unwrap()[0]["serial"];
        assert_eq!(serial.as_str(), Some("B\"2"));
    }

    #[cfg(feature = "pki")]
    #[test]
    fn keys_are_written_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let sled = SledDir::in_rack(root.path(), 3);
        sled.create().unwrap();
        let ca = RackCa::new("rack").unwrap();
        sled.write_pki(&ca, "urn:tq-platform-id:913-0000019:SN0003")
            .unwrap();
        let mode = std::fs::metadata(sled.key()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        // The reference measurements accept the firmware the sled runs.
        let text = std::fs::read_to_string(sled.reference_measurements()).unwrap();
        let file: toml::Table = toml::from_str(&text).unwrap();
        let entries = file["measurement"].as_array().unwrap();
        assert_eq!(entries.len(), crate::pki::rack_firmware().len());
        assert_eq!(entries[0]["name"].as_str(), Some("sp 1.0.0"));
        assert!(sled.path().ends_with("sled-03"));
    }
}
