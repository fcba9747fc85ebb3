//! The rack description file Nexus drives a rack from (TOML): the rack's
//! id, the rack CA its sleds' API certificates are verified under, and
//! every sled's platform id and API address.
//!
//! `tq/examples/rack.toml` is a complete example:
//!
//! ```toml
//! rack_id = "42424242-4242-4242-4242-424242424242"
//! # PEM; a relative path is taken from this file's directory.
//! rack_ca = "pki/rack-ca.pem"
//!
//! [[sleds]]
//! part = "913-0000019"
//! serial = "BRM42220016"
//! api = "[fd00:1122:3344:101::1]:7150"
//!
//! [[sleds]]
//! part = "913-0000019"
//! serial = "BRM42220099"
//! # No `api`: Nexus has no address for it, and reaches it only through
//! # a member's proxy.
//! ```
//!
//! Each sled's API is reached over HTTPS and must present a certificate
//! of the rack CA naming the platform id listed here ([`crate::https`]).
//!
//! Reading is strict: an unknown key, a bad address or platform id, or a
//! sled listed twice is an error naming the file. Sleds are named on the
//! command line as `part:serial`, or by serial alone when no other sled
//! has it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tq_core::ids::{PlatformId, PlatformIdError, RackId};

use crate::config::{At, toml_error};

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RackFile {
    /// The rack.
    pub rack_id: RackId,
    /// PEM file of the rack CA: the only trust anchor of the sleds' API
    /// certificates.
    pub rack_ca: PathBuf,
    /// Its sleds, in the file's order.
    pub sleds: Vec<RackSled>,
}

/// One sled of the rack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RackSled {
    /// Its platform id.
    pub id: PlatformId,
    /// Its HTTP API, if Nexus can reach it.
    pub api: Option<SocketAddr>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    rack_id: RackId,
    rack_ca: PathBuf,
    #[serde(default)]
    sleds: Vec<SledForm>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SledForm {
    part: String,
    serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api: Option<SocketAddr>,
}

/// Why a rack file could not be used, or a sled not named.
#[derive(Debug, thiserror::Error)]
pub enum RackFileError {
    /// Reading or writing the file failed.
    #[error("{}", .0.display())]
    Io(PathBuf, #[source] std::io::Error),
    /// Not TOML of the format.
    #[error("{}{}: {message}", .path.display(), At(*.at))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line and column of the error, when known.
        at: Option<(usize, usize)>,
        /// What is wrong.
        message: String,
    },
    /// The rack does not serialize as TOML.
    #[error("{}", .0.display())]
    Serialize(PathBuf, #[source] toml::ser::Error),
    /// A platform id field is not valid.
    #[error("{}: platform id", .0.display())]
    PlatformId(PathBuf, #[source] PlatformIdError),
    /// A sled is listed twice.
    #[error("{}: sled {} is listed twice", .0.display(), .1)]
    Repeated(PathBuf, PlatformId),
    /// No sled of the rack has this name.
    #[error("no sled {0:?} in the rack file")]
    UnknownSled(String),
    /// More than one sled has this serial: name it `part:serial`.
    #[error("more than one sled has serial {0:?}: name it part:serial")]
    Ambiguous(String),
}

impl RackFile {
    /// Reads and checks the file at `path`; a relative `rack_ca` is taken
    /// from its directory.
    pub fn load(path: &Path) -> Result<Self, RackFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| RackFileError::Io(path.to_owned(), e))?;
        let mut rack = Self::parse(path, &text)?;
        if rack.rack_ca.is_relative() {
            rack.rack_ca = path.parent().unwrap_or(Path::new(".")).join(&rack.rack_ca);
        }
        Ok(rack)
    }

    /// Parses `text`, read from `path` (named in errors); paths are left
    /// as written.
    pub fn parse(path: &Path, text: &str) -> Result<Self, RackFileError> {
        let form: FileForm = toml::from_str(text).map_err(|e| {
            let (at, message) = toml_error(text, &e);
            RackFileError::Parse {
                path: path.to_owned(),
                at,
                message,
            }
        })?;
        let mut sleds: Vec<RackSled> = Vec::with_capacity(form.sleds.len());
        for sled in form.sleds {
            let id = PlatformId::new(&sled.part, &sled.serial)
                .map_err(|e| RackFileError::PlatformId(path.to_owned(), e))?;
            if sleds.iter().any(|s| s.id == id) {
                return Err(RackFileError::Repeated(path.to_owned(), id));
            }
            sleds.push(RackSled { id, api: sled.api });
        }
        Ok(Self {
            rack_id: form.rack_id,
            rack_ca: form.rack_ca,
            sleds,
        })
    }

    /// The file's text.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let form = FileForm {
            rack_id: self.rack_id,
            rack_ca: self.rack_ca.clone(),
            sleds: self
                .sleds
                .iter()
                .map(|s| SledForm {
                    part: s.id.part_number().to_owned(),
                    serial: s.id.serial_number().to_owned(),
                    api: s.api,
                })
                .collect(),
        };
        toml::to_string(&form)
    }

    /// Writes the file at `path`.
    pub fn write(&self, path: &Path) -> Result<(), RackFileError> {
        let text = self
            .to_toml()
            .map_err(|e| RackFileError::Serialize(path.to_owned(), e))?;
        std::fs::write(path, text).map_err(|e| RackFileError::Io(path.to_owned(), e))
    }

    /// Every sled's platform id, in the file's order.
    pub fn ids(&self) -> Vec<PlatformId> {
        self.sleds.iter().map(|s| s.id.clone()).collect()
    }

    /// The sled named `name`: `part:serial`, or a serial no other sled has.
    pub fn find(&self, name: &str) -> Result<&RackSled, RackFileError> {
        let unknown = || RackFileError::UnknownSled(name.to_owned());
        if name.contains(':') {
            let id = parse_platform_id(name).map_err(|_| unknown())?;
            return self.sleds.iter().find(|s| s.id == id).ok_or_else(unknown);
        }
        let mut found = self.sleds.iter().filter(|s| s.id.serial_number() == name);
        match (found.next(), found.next()) {
            (Some(sled), None) => Ok(sled),
            (Some(_), Some(_)) => Err(RackFileError::Ambiguous(name.to_owned())),
            (None, _) => Err(unknown()),
        }
    }
}

/// Why a `part:serial` name is not a platform id.
#[derive(Debug, thiserror::Error)]
pub enum PlatformIdNameError {
    /// No `:` between the fields.
    #[error("{0:?} is not part:serial")]
    NoSeparator(String),
    /// A field breaks the platform id rules.
    #[error(transparent)]
    Invalid(#[from] PlatformIdError),
}

/// The platform id named `part:serial` (split at the first `:`), as on
/// the command line.
pub fn parse_platform_id(name: &str) -> Result<PlatformId, PlatformIdNameError> {
    let (part, serial) = name
        .split_once(':')
        .ok_or_else(|| PlatformIdNameError::NoSeparator(name.to_owned()))?;
    Ok(PlatformId::new(part, serial)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
rack_id = "42424242-4242-4242-4242-424242424242"
rack_ca = "pki/rack-ca.pem"

[[sleds]]
part = "913-0000019"
serial = "SN1"
api = "[fd00::1]:7150"

[[sleds]]
part = "913-0000019"
serial = "SN2"

[[sleds]]
part = "913-0000020"
serial = "SN2"
api = "127.0.0.1:7150"
"#;

    #[test]
    fn a_rack_file_reads_names_and_writes_back() {
        let path = Path::new("rack.toml");
        let rack = RackFile::parse(path, FILE).unwrap();
        assert_eq!(rack.rack_id, RackId([0x42; 16]));
        assert_eq!(rack.rack_ca, PathBuf::from("pki/rack-ca.pem"));
        assert_eq!(rack.sleds.len(), 3);
        assert_eq!(rack.sleds[1].api, None);
        assert_eq!(rack.find("SN1").unwrap().id.serial_number(), "SN1");
        assert!(matches!(rack.find("SN2"), Err(RackFileError::Ambiguous(_))));
        assert_eq!(
            rack.find("913-0000020:SN2").unwrap().api,
            Some("127.0.0.1:7150".parse().unwrap())
        );
        assert!(matches!(
            rack.find("SN9"),
            Err(RackFileError::UnknownSled(_))
        ));
        let again = RackFile::parse(path, &rack.to_toml().unwrap()).unwrap();
        assert_eq!(again, rack);
    }

    #[test]
    fn unknown_keys_repeats_and_bad_ids_are_refused() {
        let path = Path::new("rack.toml");
        let unknown = FILE.replacen("serial = \"SN1\"", "serial = \"SN1\"\nport = 3", 1);
        assert!(matches!(
            RackFile::parse(path, &unknown),
            Err(RackFileError::Parse { .. })
        ));
        let repeated = FILE.replacen("913-0000020", "913-0000019", 1);
        assert!(matches!(
            RackFile::parse(path, &repeated),
            Err(RackFileError::Repeated(..))
        ));
        let empty = FILE.replacen("SN1", "", 1);
        assert!(matches!(
            RackFile::parse(path, &empty),
            Err(RackFileError::PlatformId(..))
        ));
    }

    #[test]
    fn the_example_file_parses() {
        let path = Path::new("examples/rack.toml");
        let rack = RackFile::parse(path, include_str!("../../examples/rack.toml")).unwrap();
        assert_eq!(rack.sleds.len(), 3);
        assert_eq!(rack.rack_ca, PathBuf::from("pki/rack-ca.pem"));
        assert_eq!(rack.sleds[2].api, None);
    }

    #[test]
    fn the_rack_ca_is_required_and_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rack.toml");
        std::fs::write(&path, FILE).unwrap();
        let rack = RackFile::load(&path).unwrap();
        assert_eq!(rack.rack_ca, dir.path().join("pki/rack-ca.pem"));
        let without = FILE.replacen("rack_ca = \"pki/rack-ca.pem\"\n", "", 1);
        assert!(matches!(
            RackFile::parse(&path, &without),
            Err(RackFileError::Parse { message, .. }) if message.contains("rack_ca")
        ));
    }
}
