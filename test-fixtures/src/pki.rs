//! A rack PKI made with rcgen (feature `pki`): a CA and sled certificates
//! with whatever subject-alternative-name URIs a test wants (the platform
//! id's URI, several, none), as DER for in-process identities or as PEM
//! files for a daemon's configuration.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A validity window.
pub type Validity = (time::OffsetDateTime, time::OffsetDateTime);

impl Ca {
    /// A self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn leaf_params(uris: &[String], validity: Option<Validity>) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "sled");
        params.subject_alt_names = uris
            .iter()
            .map(|uri| SanType::URI(uri.as_str().try_into().unwrap()))
            .collect();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if let Some((not_before, not_after)) = validity {
            params.not_before = not_before;
            params.not_after = not_after;
        }
        params
    }

    /// A sled certificate with the given SAN URIs and validity (both usages
    /// a sled needs), and its key: DER.
    pub fn leaf(
        &self,
        uris: &[String],
        validity: Option<Validity>,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = Self::leaf_params(uris, validity)
            .signed_by(&key, &self.issuer)
            .unwrap();
        let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        (cert.der().clone(), key)
    }

    /// The same, as PEM text: the certificate and the key.
    pub fn leaf_pem(&self, uris: &[String]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = Self::leaf_params(uris, None)
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes the CA certificate and a sled certificate and key with these
    /// URIs as `ca.pem`, `sled.pem` and `sled.key` in `dir`.
    pub fn write_pem_files(&self, uris: &[String], dir: &Path) {
        let (cert, key) = self.leaf_pem(uris);
        std::fs::write(dir.join("ca.pem"), self.pem()).unwrap();
        std::fs::write(dir.join("sled.pem"), cert).unwrap();
        std::fs::write(dir.join("sled.key"), key).unwrap();
    }
}
