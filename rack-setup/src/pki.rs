//! The rack PKI, made with rcgen: a rack CA and the sled certificates it
//! signs. What tq-std's TLS checks (`net::tls`, `net::identity`) needs of
//! them: the CA is a CA (basic constraints, path length 0: it signs sled
//! certificates directly, never another CA) allowed to sign certificates;
//! a sled certificate carries its platform id as a SAN URI
//! (`urn:tq-platform-id:<part>:<serial>`, tq-std's `platform_id_uri`),
//! the digital-signature key usage and both the server-auth and
//! client-auth extended usages (every sled listens and dials).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::SetupError;
use crate::layout::write_private;

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
    /// `validity` (rcgen's default window if `None`), and a fresh key.
    pub fn sled_cert(
        &self,
        uris: &[String],
        validity: Option<Validity>,
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
        if let Some((not_before, not_after)) = validity {
            params.not_before = not_before;
            params.not_after = not_after;
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(SledCert { cert, key })
    }

    /// Writes this CA's certificate, and a sled certificate naming `uris`
    /// with its key, as PEM files at the paths of `files` (the key mode
    /// 0600).
    pub fn write_sled_files(
        &self,
        uris: &[String],
        files: &PemFiles<'_>,
    ) -> Result<(), SetupError> {
        let sled = self.sled_cert(uris, None)?;
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
