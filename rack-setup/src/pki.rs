//! The rack PKI, made with rcgen: a rack CA and the sled certificates it
//! signs. What tq-std's TLS checks (`net::tls`, `net::identity`) needs of
//! them: the CA is a CA (basic constraints, path length 0: it signs sled
//! certificates directly, never another CA) allowed to sign certificates;
//! a sled certificate carries its platform id as a SAN URI
//! (`urn:tq-platform-id:<part>:<serial>`, tq-std's `platform_id_uri`),
//! the digital-signature key usage and both the server-auth and
//! client-auth extended usages (every sled listens and dials), and the
//! measurements of what the sled runs (below).
//!
//! # Measurements
//!
//! A sled certificate carries the SHA3-256 digests of the sled's firmware
//! as a TCG DICE `TcbInfo` extension (OID [`TCB_INFO_OID`], not critical):
//! a `DiceTcbInfo` SEQUENCE holding only `fwids [6] IMPLICIT SEQUENCE OF
//! FWID`, each `FWID ::= SEQUENCE { hashAlg OBJECT IDENTIFIER (SHA3-256),
//! digest OCTET STRING }`. tq-std's `net::measurements` reads it and
//! `net::attestation` checks it against the rack's reference measurements,
//! whose file [`reference_measurements_toml`] writes. The project has no
//! measured boot of its own: [`rack_firmware`] names stand-in images, the
//! same on every sled set up here.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha3::{Digest as _, Sha3_256};

use crate::SetupError;
use crate::layout::write_private;

/// `tcg-dice-TcbInfo`: 2.23.133.5.4.1.
pub const TCB_INFO_OID: &[u64] = &[2, 23, 133, 5, 4, 1];

/// `id-sha3-256`: 2.16.840.1.101.3.4.2.8.
pub const SHA3_256_OID: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 8];

/// The context tag of `fwids` in `DiceTcbInfo`.
const FWIDS_TAG: u64 = 6;

/// One firmware image a sled runs: its name and SHA3-256 digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firmware {
    /// What it is (shown in status and logs).
    pub name: String,
    /// The SHA3-256 digest of the image.
    pub sha3_256: [u8; 32],
}

impl Firmware {
    /// The image `image` named `name`, measured.
    pub fn measure(name: &str, image: &[u8]) -> Self {
        Self {
            name: name.to_owned(),
            sha3_256: Sha3_256::digest(image).into(),
        }
    }
}

/// The firmware every sled set up here runs, and so the rack's reference
/// measurements: stand-ins for a service processor's and a host's images.
pub fn rack_firmware() -> Vec<Firmware> {
    vec![
        Firmware::measure("sp 1.0.0", b"tq stand-in service processor image 1.0.0"),
        Firmware::measure("host 1.0.0", b"tq stand-in host phase-2 image 1.0.0"),
    ]
}

/// What a sled certificate says the sled runs.
#[derive(Clone, Copy, Debug)]
pub enum Measured<'a> {
    /// A `TcbInfo` extension with one FWID per image.
    Firmware(&'a [Firmware]),
    /// No `TcbInfo` extension.
    Nothing,
    /// A `TcbInfo` extension with these bytes as its value, whatever they
    /// are (tests of malformed ones).
    RawTcbInfo(&'a [u8]),
}

/// The DER of a `DiceTcbInfo` listing `firmware` as SHA3-256 FWIDs.
pub fn tcb_info_der(firmware: &[Firmware]) -> Vec<u8> {
    let sha3_256 = yasna::models::ObjectIdentifier::from_slice(SHA3_256_OID);
    yasna::construct_der(|writer| {
        writer.write_sequence(|tcb_info| {
            tcb_info
                .next()
                .write_tagged_implicit(yasna::Tag::context(FWIDS_TAG), |fwids| {
                    fwids.write_sequence_of(|list| {
                        for image in firmware {
                            list.next().write_sequence(|fwid| {
                                fwid.next().write_oid(&sha3_256);
                                fwid.next().write_bytes(&image.sha3_256);
                            });
                        }
                    });
                });
        });
    })
}

/// The reference measurements file accepting exactly `firmware` (the
/// format tq-std's `net::reference` reads).
pub fn reference_measurements_toml(firmware: &[Firmware]) -> String {
    let mut text = String::from(
        "# The rack's reference measurements: every firmware digest a peer's\n\
         # certificate may carry. Re-read at every peer handshake.\n",
    );
    for image in firmware {
        let name = toml::Value::String(image.name.clone());
        let digest: String = image.sha3_256.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!(
            "\n[[measurement]]\nname = {name}\nsha3_256 = \"{digest}\"\n"
        ));
    }
    text
}

/// A certificate's validity window: not before, not after.
pub type Validity = (time::OffsetDateTime, time::OffsetDateTime);

/// A rack's certificate authority.
pub struct RackCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A sled certificate and its key.
pub struct SledCert {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl SledCert {
    /// The certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The key, DER (PKCS#8).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.serialize_der().into())
    }

    /// The certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The key, PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

impl RackCa {
    /// A new self-signed CA named `name` (a fresh key pair).
    pub fn new(name: &str) -> Result<Self, SetupError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A sled certificate naming `uris` as SAN URIs (a sled's is its
    /// platform id's one; tests also try several or none), valid over
    /// `validity` (rcgen's default window if `None`), measuring
    /// [`rack_firmware`], and a fresh key.
    pub fn sled_cert(
        &self,
        uris: &[String],
        validity: Option<Validity>,
    ) -> Result<SledCert, SetupError> {
        self.measured_sled_cert(uris, validity, Measured::Firmware(&rack_firmware()))
    }

    /// [`Self::sled_cert`] saying the sled runs what `measured` says.
    pub fn measured_sled_cert(
        &self,
        uris: &[String],
        validity: Option<Validity>,
        measured: Measured<'_>,
    ) -> Result<SledCert, SetupError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, "sled");
        params.subject_alt_names = uris
            .iter()
            .map(|uri| Ok(SanType::URI(uri.as_str().try_into()?)))
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let tcb_info = match measured {
            Measured::Firmware(firmware) => Some(tcb_info_der(firmware)),
            Measured::Nothing => None,
            Measured::RawTcbInfo(bytes) => Some(bytes.to_vec()),
        };
        // Not critical: webpki refuses a certificate with a critical
        // extension it does not know, before our check could read it.
        params.custom_extensions = tcb_info
            .map(|der| CustomExtension::from_oid_content(TCB_INFO_OID, der))
            .into_iter()
            .collect();
        if let Some((not_before, not_after)) = validity {
            params.not_before = not_before;
            params.not_after = not_after;
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(SledCert { cert, key })
    }

    /// Writes this CA's certificate, and a sled certificate naming `uris`
    /// and measuring `firmware` with its key, as PEM files at the paths of
    /// `files` (the key mode 0600).
    pub fn write_sled_files(
        &self,
        uris: &[String],
        firmware: &[Firmware],
        files: &PemFiles<'_>,
    ) -> Result<(), SetupError> {
        let sled = self.measured_sled_cert(uris, None, Measured::Firmware(firmware))?;
        write(files.rack_ca, self.pem().as_bytes())?;
        write(files.certificate, sled.pem().as_bytes())?;
        write_private(files.key, sled.key_pem().as_bytes())
    }
}

/// Where a sled's PEM files go.
#[derive(Clone, Copy, Debug)]
pub struct PemFiles<'a> {
    /// The rack CA's certificate.
    pub rack_ca: &'a Path,
    /// The sled's certificate.
    pub certificate: &'a Path,
    /// The sled's private key.
    pub key: &'a Path,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SetupError> {
    std::fs::write(path, bytes).map_err(|e| SetupError::Io(path.to_owned(), e))
}
