//! The demo rack's certificates, made at start with `rcgen`: a rack CA and
//! one certificate per sled, its platform id in the SAN URI tq-std reads
//! (`urn:tq-platform-id:<part>:<serial>`), with both the server-auth and
//! client-auth usages (every sled listens and dials). Written as PEM files
//! for the sled's configuration.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tq_core::ids::PlatformId;
use tq_std::net::identity::platform_id_uri;

/// The rack's certificate authority.
pub struct RackCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// Where a sled's PEM files are.
#[derive(Clone, Debug)]
pub struct SledPki {
    /// The rack CA's certificate.
    pub rack_ca: PathBuf,
    /// The sled's certificate.
    pub certificate: PathBuf,
    /// The sled's private key.
    pub key: PathBuf,
}

impl RackCa {
    /// A new CA (a fresh key pair).
    pub fn new() -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "tq demo rack CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// Writes the CA certificate and `id`'s certificate and key into `dir`.
    pub fn write_sled(&self, id: &PlatformId, dir: &Path) -> Result<SledPki, String> {
        let (cert, key) = self.sled_certificate(id).map_err(|e| e.to_string())?;
        let pki = SledPki {
            rack_ca: dir.join("rack-ca.pem"),
            certificate: dir.join("sled.pem"),
            key: dir.join("sled.key"),
        };
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(&pki.rack_ca, &self.issuer.pem())?;
        write(&pki.certificate, &cert)?;
        write(&pki.key, &key)?;
        Ok(pki)
    }

    /// `id`'s certificate and key, as PEM.
    fn sled_certificate(&self, id: &PlatformId) -> Result<(String, String), rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, id.to_string());
        params.subject_alt_names = vec![SanType::URI(platform_id_uri(id).try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}
