//! The sled daemon's configuration file (TOML), as `tq sled --config FILE`
//! reads it. Every field is described in the crate doc and in
//! `tq/examples/sled.toml`.
//!
//! Reading is strict: an unknown key, a missing required one, a bad
//! address or platform id, or a sled listed twice is a [`ConfigError`]
//! that names the file and, for a syntax or type error, the line and
//! column. Relative paths are taken from the directory of the file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tq_core::ids::{PlatformId, PlatformIdError};
use tq_std::disks::{Backend, DiskSpec, DisksConfig, KeyFormat};
use tq_std::ledger::LEDGER_COPIES;
use tq_std::net::{Attestation, NetConfig};
use tq_std::node::{
    DEFAULT_API_QUEUE_LEN, DEFAULT_MAX_PROXIED, DEFAULT_MAX_SECRET_WAITERS, NodeConfig,
};

/// The HTTP API's port when `[api] listen` is not given.
pub const DEFAULT_API_PORT: u16 = 7150;

/// The peer network's port when `[peer] listen` is not given.
pub const DEFAULT_PEER_PORT: u16 = 7151;

/// The file name of each ledger copy inside its directory.
pub const LEDGER_FILE_NAME: &str = "trust-quorum.ledger";

/// The whole file. See the crate doc for each field.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SledConfig {
    /// Where the state is kept.
    pub ledger: LedgerSection,
    /// The rack CA, this sled's certificate and key.
    pub tls: TlsSection,
    /// The rack's reference measurements, and whether peers must match
    /// them.
    pub attestation: AttestationSection,
    /// What proves a call is Nexus's.
    pub authority: AuthoritySection,
    /// The peer network.
    #[serde(default)]
    pub peer: PeerSection,
    /// The HTTP API.
    #[serde(default)]
    pub api: ApiSection,
    /// Queue bounds of the node.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The audit log's bounds.
    #[serde(default)]
    pub audit: AuditSection,
    /// The other sleds of the rack.
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
    /// How the disks are unlocked.
    #[serde(default)]
    pub disk_unlock: DiskUnlockSection,
    /// The encrypted disks whose keys the rack secret protects.
    #[serde(default)]
    pub disks: Vec<DiskEntry>,
}

/// `[disk_unlock]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DiskUnlockSection {
    /// Seconds the daemon keeps trying to unlock the disks after it starts
    /// (and after each commit) before it reports those still locked as
    /// failed.
    #[serde(default = "default_unlock_deadline_secs")]
    pub deadline_secs: u64,
}

impl Default for DiskUnlockSection {
    fn default() -> Self {
        Self {
            deadline_secs: default_unlock_deadline_secs(),
        }
    }
}

fn default_unlock_deadline_secs() -> u64 {
    tq_std::disks::DEFAULT_UNLOCK_DEADLINE.as_secs()
}

/// `timeout_ms` of a `command` disk when not given.
pub const DEFAULT_DISK_COMMAND_TIMEOUT_MS: u64 = 30_000;

fn default_disk_command_timeout_ms() -> u64 {
    DEFAULT_DISK_COMMAND_TIMEOUT_MS
}

/// One `[[disks]]` entry, by its `backend`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
pub enum DiskEntry {
    /// Linux native file encryption on a directory.
    Fscrypt {
        /// The disk's name (its key files are named after it).
        name: String,
        /// The disk's serial (its keys are derived for it).
        serial: String,
        /// The encrypted directory (on an ext4 made with `-O encrypt`).
        dir: PathBuf,
    },
    /// A program given the key on its standard input.
    Command {
        /// The disk's name.
        name: String,
        /// The disk's serial.
        serial: String,
        /// The program and arguments that unlock.
        unlock: Vec<String>,
        /// The program and arguments that lock, if any.
        #[serde(default)]
        lock: Option<Vec<String>>,
        /// Milliseconds either may run before it is killed.
        #[serde(default = "default_disk_command_timeout_ms")]
        timeout_ms: u64,
        /// `raw` (32 bytes) or `hex` (64 digits) on standard input.
        #[serde(default)]
        key_format: KeyFormatEntry,
    },
}

/// How a `command` disk takes its key.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyFormatEntry {
    /// 32 raw bytes.
    #[default]
    Raw,
    /// 64 lower-case hex digits.
    Hex,
}

impl DiskEntry {
    /// The key manager's description of this disk.
    pub fn spec(&self) -> DiskSpec {
        match self {
            Self::Fscrypt { name, serial, dir } => DiskSpec {
                name: name.clone(),
                serial: serial.clone(),
                backend: Backend::Fscrypt { dir: dir.clone() },
            },
            Self::Command {
                name,
                serial,
                unlock,
                lock,
                timeout_ms,
                key_format,
            } => DiskSpec {
                name: name.clone(),
                serial: serial.clone(),
                backend: Backend::Command {
                    unlock: unlock.clone(),
                    lock: lock.clone(),
                    timeout: Duration::from_millis((*timeout_ms).max(1)),
                    key_format: match key_format {
                        KeyFormatEntry::Raw => KeyFormat::Raw,
                        KeyFormatEntry::Hex => KeyFormat::Hex,
                    },
                },
            },
        }
    }
}

/// `[ledger]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LedgerSection {
    /// The two directories holding a ledger copy each (one per M.2 drive),
    /// made by `tq sled init`; a missing one is a drive not mounted.
    pub dirs: [PathBuf; LEDGER_COPIES],
    /// The LRTQ share file, read while the ledger holds nothing since
    /// `init` (it must then exist).
    #[serde(default)]
    pub lrtq_share_file: Option<PathBuf>,
}

/// `[tls]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM file of the rack CA certificate(s): the only trust anchors.
    pub rack_ca: PathBuf,
    /// PEM file of this sled's certificate (then any intermediates),
    /// naming its platform id.
    pub certificate: PathBuf,
    /// PEM file of this sled's private key.
    pub key: PathBuf,
}

/// `[attestation]`: required, so that every sled names the rack's
/// reference measurements.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttestationSection {
    /// The reference measurements file (tq-std's `net::reference`): the
    /// firmware digests a peer's certificate may carry. Re-read at every
    /// peer handshake and every second for the connected peers, so it is
    /// updated in place without a restart.
    pub reference_measurements: PathBuf,
    /// Whether a peer whose measurements are absent, malformed or not all
    /// in the file is refused (default true). `false` admits any holder of
    /// a rack certificate, with a warning at start.
    #[serde(default = "default_enforce")]
    pub enforce: bool,
}

fn default_enforce() -> bool {
    true
}

impl AttestationSection {
    /// The network's attestation setting.
    pub fn attestation(&self) -> Attestation {
        if self.enforce {
            Attestation::Enforce(self.reference_measurements.clone())
        } else {
            Attestation::Off
        }
    }
}

/// `[authority]`: the key this sled checks Nexus's requests with (and
/// tags its answers to Nexus with).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthoritySection {
    /// This sled's request key, 32 bytes, as `tq nexus sled-key` writes
    /// it; mode 0600 and owned by the daemon's user (anything wider is
    /// refused).
    pub key_file: PathBuf,
}

/// `[peer]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    /// Where the peer network listens.
    #[serde(default = "default_peer_listen")]
    pub listen: SocketAddr,
    /// Seconds a connection may send nothing before it sends a keep-alive.
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// Seconds of silence after which a connection is dropped.
    #[serde(default = "default_inactivity_secs")]
    pub inactivity_timeout_secs: u64,
}

impl Default for PeerSection {
    fn default() -> Self {
        Self {
            listen: default_peer_listen(),
            keepalive_secs: default_keepalive_secs(),
            inactivity_timeout_secs: default_inactivity_secs(),
        }
    }
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Where the HTTPS API listens (with the certificate and key of
    /// `[tls]`): loopback by default. Its Nexus calls are authenticated
    /// end to end besides (`[authority]`).
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// How long a connection may take for its TLS handshake and its
    /// request's head before it is closed, in milliseconds
    /// ([`DEFAULT_API_IDLE_TIMEOUT_MS`]).
    #[serde(default = "default_api_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

/// `[api] idle_timeout_ms` when not given: long enough for any client
/// that means to send a request, short enough that idle connections do
/// not pile up.
pub const DEFAULT_API_IDLE_TIMEOUT_MS: u64 = 30_000;

impl ApiSection {
    /// `idle_timeout_ms` as a duration (at least 1 ms).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.max(1))
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: default_api_listen(),
            idle_timeout_ms: DEFAULT_API_IDLE_TIMEOUT_MS,
        }
    }
}

/// `[limits]`: the node's queue bounds (a full one answers `busy`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// API calls queued on the node task.
    #[serde(default = "default_api_queue_len")]
    pub api_queue_len: usize,
    /// Callers waiting for the latest secret at once.
    #[serde(default = "default_max_secret_waiters")]
    pub max_secret_waiters: usize,
    /// Proxied calls in flight at once.
    #[serde(default = "default_max_proxied")]
    pub max_proxied: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            api_queue_len: DEFAULT_API_QUEUE_LEN,
            max_secret_waiters: DEFAULT_MAX_SECRET_WAITERS,
            max_proxied: DEFAULT_MAX_PROXIED,
        }
    }
}

/// `[audit]`: the audit log's bounds (its copies are in `audit/` beside
/// each ledger copy).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// A segment is closed before it would grow past this many bytes.
    #[serde(default = "default_audit_segment_bytes")]
    pub max_segment_bytes: u64,
    /// Segments kept; the oldest is removed past that.
    #[serde(default = "default_audit_segments")]
    pub retained_segments: u64,
}

fn default_audit_segment_bytes() -> u64 {
    tq_std::audit::DEFAULT_MAX_SEGMENT_BYTES
}

fn default_audit_segments() -> u64 {
    tq_std::audit::DEFAULT_RETAINED_SEGMENTS
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            max_segment_bytes: default_audit_segment_bytes(),
            retained_segments: default_audit_segments(),
        }
    }
}

/// One `[[peers]]` entry: another sled of the rack.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// Its part number, as its certificate names it.
    pub part: String,
    /// Its serial number, as its certificate names it.
    pub serial: String,
    /// Its peer network address.
    pub address: SocketAddr,
}

fn default_peer_listen() -> SocketAddr {
    SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, DEFAULT_PEER_PORT))
}

fn default_api_idle_timeout_ms() -> u64 {
    DEFAULT_API_IDLE_TIMEOUT_MS
}

fn default_api_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_API_PORT))
}

fn default_keepalive_secs() -> u64 {
    1
}

fn default_inactivity_secs() -> u64 {
    10
}

fn default_api_queue_len() -> usize {
    DEFAULT_API_QUEUE_LEN
}

fn default_max_secret_waiters() -> usize {
    DEFAULT_MAX_SECRET_WAITERS
}

fn default_max_proxied() -> usize {
    DEFAULT_MAX_PROXIED
}

/// Why the configuration could not be used. Its message and its causes
/// ([`crate::error::Chain`]) make one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the format.
    #[error("{}{}: {message}", .path.display(), At(*.at))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line and column of the error, when known.
        at: Option<(usize, usize)>,
        /// What is wrong (TOML's message, whose position is `at`).
        message: String,
    },
    /// A peer's platform id is invalid.
    #[error("peers[{index}]")]
    PeerId {
        /// Its index in `[[peers]]`.
        index: usize,
        /// Why.
        #[source]
        error: PlatformIdError,
    },
    /// A sled is listed twice.
    #[error("sled {0} is listed twice in [[peers]]")]
    DuplicatePeer(PlatformId),
    /// A timing field is zero or out of range.
    #[error("{0}")]
    Invalid(&'static str),
    /// The disks are misconfigured.
    #[error("[[disks]]")]
    Disks(#[source] tq_std::disks::ConfigError),
}

/// `, line L, column C` when the position is known.
pub(crate) struct At(pub(crate) Option<(usize, usize)>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, ", line {line}, column {column}"),
            None => Ok(()),
        }
    }
}

impl SledConfig {
    /// Reads and checks the file at `path`, making relative paths relative
    /// to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|(at, message)| ConfigError::Parse {
            path: path.to_owned(),
            at,
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.peer_map()?;
        config.timing()?;
        config
            .disks_config()
            .validate()
            .map_err(ConfigError::Disks)?;
        Ok(config)
    }

    /// Parses TOML text (paths left as written). On error: the 1-based
    /// line and column, when known, and the message.
    #[allow(clippy::result_large_err)]
    pub fn parse(text: &str) -> Result<Self, (Option<(usize, usize)>, String)> {
        toml::from_str(text).map_err(|e: toml::de::Error| toml_error(text, &e))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.ledger.dirs.iter_mut().for_each(resolve);
        if let Some(p) = self.ledger.lrtq_share_file.as_mut() {
            resolve(p);
        }
        for disk in &mut self.disks {
            if let DiskEntry::Fscrypt { dir, .. } = disk {
                resolve(dir);
            }
        }
        resolve(&mut self.tls.rack_ca);
        resolve(&mut self.tls.certificate);
        resolve(&mut self.tls.key);
        resolve(&mut self.attestation.reference_measurements);
        resolve(&mut self.authority.key_file);
    }

    /// The peers by platform id; refuses an invalid id or a repeat.
    pub fn peer_map(&self) -> Result<BTreeMap<PlatformId, SocketAddr>, ConfigError> {
        let mut peers = BTreeMap::new();
        for (index, entry) in self.peers.iter().enumerate() {
            let id = PlatformId::new(&entry.part, &entry.serial)
                .map_err(|error| ConfigError::PeerId { index, error })?;
            if peers.insert(id.clone(), entry.address).is_some() {
                return Err(ConfigError::DuplicatePeer(id));
            }
        }
        Ok(peers)
    }

    fn timing(&self) -> Result<(Duration, Duration), ConfigError> {
        let keepalive = self.peer.keepalive_secs;
        let inactivity = self.peer.inactivity_timeout_secs;
        if keepalive == 0 || inactivity <= keepalive {
            return Err(ConfigError::Invalid(
                "[peer] keepalive_secs must be at least 1 and below inactivity_timeout_secs",
            ));
        }
        Ok((
            Duration::from_secs(keepalive),
            Duration::from_secs(inactivity),
        ))
    }

    /// The two ledger copies' file paths.
    pub fn ledger_paths(&self) -> [PathBuf; LEDGER_COPIES] {
        self.ledger
            .dirs
            .clone()
            .map(|dir| dir.join(LEDGER_FILE_NAME))
    }

    /// The key manager's configuration: the disks, their key files in the
    /// ledger directories.
    pub fn disks_config(&self) -> DisksConfig {
        let mut config = DisksConfig::new(
            self.disks.iter().map(DiskEntry::spec).collect(),
            self.ledger.dirs.clone(),
        );
        config.unlock_deadline = Duration::from_secs(self.disk_unlock.deadline_secs.max(1));
        config
    }

    /// The node's configuration.
    pub fn node_config(&self) -> Result<NodeConfig, ConfigError> {
        let (keepalive, inactivity) = self.timing()?;
        let mut net = NetConfig::new(self.peer.listen);
        net.keepalive_interval = keepalive;
        net.inactivity_timeout = inactivity;
        net.attestation = self.attestation.attestation();
        let mut node = NodeConfig::new(self.ledger_paths(), net);
        node.lrtq_share_file = self.ledger.lrtq_share_file.clone();
        node.peers = self.peer_map()?;
        node.api_queue_len = self.limits.api_queue_len;
        node.max_secret_waiters = self.limits.max_secret_waiters;
        node.max_proxied = self.limits.max_proxied;
        node.audit = tq_std::audit::AuditConfig {
            max_segment_bytes: self.audit.max_segment_bytes,
            retained_segments: self.audit.retained_segments,
            ..tq_std::audit::AuditConfig::default()
        };
        Ok(node)
    }
}

/// A TOML error as one line: where in `text` (1-based line and column,
/// when known) and TOML's message without its multi-line snippet.
pub(crate) fn toml_error(text: &str, error: &toml::de::Error) -> (Option<(usize, usize)>, String) {
    let at = error.span().map(|span| line_column(text, span.start));
    (at, error.message().trim().replace('\n', " "))
}

/// The 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[ledger]
dirs = ["m2-0", "/m2-1"]

[tls]
rack_ca = "ca.pem"
certificate = "sled.pem"
key = "sled.key"

[authority]
key_file = "request.key"

[attestation]
reference_measurements = "reference-measurements.toml"
"#;

    #[test]
    fn defaults_put_the_api_on_loopback() {
        let config = SledConfig::parse(MINIMAL).unwrap();
        assert_eq!(config.api.listen, "127.0.0.1:7150".parse().unwrap());
        assert_eq!(config.peer.listen, "[::]:7151".parse().unwrap());
        assert!(config.peers.is_empty());
        assert_eq!(config.ledger.lrtq_share_file, None);
        assert_eq!(
            config.node_config().unwrap().net.attestation,
            Attestation::Enforce("reference-measurements.toml".into())
        );
    }

    #[test]
    fn attestation_is_required_and_may_be_turned_off_explicitly() {
        let without = MINIMAL.replace("[attestation]", "").replace(
            "reference_measurements = \"reference-measurements.toml\"",
            "",
        );
        let (_, message) = SledConfig::parse(&without).unwrap_err();
        assert!(message.contains("missing field `attestation`"), "{message}");
        let off = format!("{MINIMAL}enforce = false\n");
        let config = SledConfig::parse(&off).unwrap();
        assert_eq!(
            config.node_config().unwrap().net.attestation,
            Attestation::Off
        );
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../examples/sled.toml");
        let config = SledConfig::parse(text).unwrap();
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.peer_map().unwrap().len(), 2);
        let node = config.node_config().unwrap();
        assert_eq!(node.audit, tq_std::audit::AuditConfig::default());
        assert_eq!(
            SledConfig::parse(MINIMAL).unwrap().audit,
            AuditSection::default()
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let mut config = SledConfig::parse(MINIMAL).unwrap();
        config.resolve_paths(Path::new("/etc/tq"));
        assert_eq!(
            config.ledger_paths(),
            [
                PathBuf::from("/etc/tq/m2-0/trust-quorum.ledger"),
                PathBuf::from("/m2-1/trust-quorum.ledger")
            ]
        );
        assert_eq!(config.tls.key, PathBuf::from("/etc/tq/sled.key"));
        assert_eq!(
            config.attestation.reference_measurements,
            PathBuf::from("/etc/tq/reference-measurements.toml")
        );
        assert_eq!(
            config.authority.key_file,
            PathBuf::from("/etc/tq/request.key")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let text = format!("{MINIMAL}\n[api]\nlisten = \"not an address\"\n");
        let (at, message) = SledConfig::parse(&text).unwrap_err();
        assert_eq!(at.map(|(line, _)| line), Some(17), "{message}");
        let (_, message) = SledConfig::parse("[ledger]\ndirs = [\"a\", \"b\"]\n").unwrap_err();
        assert!(message.contains("missing field `tls`"), "{message}");
        let (_, message) = SledConfig::parse(&format!("{MINIMAL}\nextra = 1\n")).unwrap_err();
        assert!(message.contains("unknown field `extra`"), "{message}");
    }

    #[test]
    fn a_missing_file_keeps_its_cause() {
        let error = SledConfig::load(Path::new("/nonexistent/sled.toml")).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{error:?}"
        );
        let line = crate::error::Chain(&error).to_string();
        assert!(
            line.starts_with("cannot read /nonexistent/sled.toml: No such file"),
            "{line}"
        );
    }

    #[test]
    fn disks_are_read_by_backend_and_checked() {
        let text = format!(
            "{MINIMAL}\n[disk_unlock]\ndeadline_secs = 5\n\n\
             [[disks]]\nname = \"a\"\nserial = \"S1\"\nbackend = \"fscrypt\"\ndir = \"vault\"\n\n\
             [[disks]]\nname = \"b\"\nserial = \"S2\"\nbackend = \"command\"\nunlock = [\"zfs\", \"load-key\"]\nkey_format = \"hex\"\n"
        );
        let mut config = SledConfig::parse(&text).unwrap();
        config.resolve_paths(Path::new("/etc/tq"));
        let disks = config.disks_config();
        assert_eq!(disks.unlock_deadline, Duration::from_secs(5));
        assert_eq!(
            disks.disks[0].backend,
            Backend::Fscrypt {
                dir: PathBuf::from("/etc/tq/vault")
            }
        );
        assert!(matches!(
            &disks.disks[1].backend,
            Backend::Command { key_format: KeyFormat::Hex, timeout, lock: None, .. }
                if *timeout == Duration::from_millis(DEFAULT_DISK_COMMAND_TIMEOUT_MS)
        ));
        disks.validate().unwrap();
        // A key of another backend is refused, as is a repeated name.
        let (_, message) = SledConfig::parse(&format!(
            "{MINIMAL}\n[[disks]]\nname = \"a\"\nserial = \"S\"\nbackend = \"fscrypt\"\ndir = \"v\"\nunlock = [\"x\"]\n"
        ))
        .unwrap_err();
        assert!(message.contains("unknown field `unlock`"), "{message}");
        let twice = text.replace("name = \"b\"", "name = \"a\"");
        let config = SledConfig::parse(&twice).unwrap();
        assert!(config.disks_config().validate().is_err());
    }

    #[test]
    fn peers_are_checked() {
        let peer = |serial: &str| {
            format!("[[peers]]\npart = \"p\"\nserial = \"{serial}\"\naddress = \"[::1]:1\"\n")
        };
        let twice = format!("{MINIMAL}{}{}", peer("a"), peer("a"));
        let config = SledConfig::parse(&twice).unwrap();
        assert!(matches!(
            config.peer_map(),
            Err(ConfigError::DuplicatePeer(_))
        ));
        let empty = format!("{MINIMAL}{}", peer(""));
        let config = SledConfig::parse(&empty).unwrap();
        let error = config.peer_map().unwrap_err();
        assert_eq!(
            crate::error::Chain(&error).to_string(),
            "peers[0]: platform id field is empty"
        );
    }
}
