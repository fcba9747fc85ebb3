//! The rack PKI for tests (feature `pki`): [`tq_rack_setup::pki`]'s CA,
//! panicking instead of returning errors, with whatever SAN URIs a test
//! wants (the platform id's URI, several, none) and validity windows.

use std::path::Path;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tq_rack_setup::pki::{PemFiles, RackCa, rack_firmware};

pub use tq_rack_setup::pki::Validity;

/// A certificate authority.
pub struct Ca(RackCa);

impl Ca {
    /// A self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        Self(RackCa::new(name).expect("rcgen makes a CA"))
    }

    /// The CA as the demo's set-up holds it.
    pub fn rack_ca(&self) -> &RackCa {
        &self.0
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.0.der()
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.0.pem()
    }

    /// A sled certificate with the given SAN URIs and validity, and its
    /// key: DER.
    pub fn leaf(
        &self,
        uris: &[String],
        validity: Option<Validity>,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let sled = self
            .0
            .sled_cert(uris, validity)
            .expect("rcgen signs a sled");
        (sled.der(), sled.key_der())
    }

    /// The same, as PEM text: the certificate and the key.
    pub fn leaf_pem(&self, uris: &[String]) -> (String, String) {
        let sled = self.0.sled_cert(uris, None).expect("rcgen signs a sled");
        (sled.pem(), sled.key_pem())
    }

    /// Writes the CA certificate and a sled certificate and key with these
    /// URIs into `dir`, named as [`tq_rack_setup::layout`] names them.
    pub fn write_pem_files(&self, uris: &[String], dir: &Path) {
        use tq_rack_setup::layout::{CERTIFICATE_FILE, KEY_FILE, RACK_CA_FILE};
        let files = PemFiles {
            rack_ca: &dir.join(RACK_CA_FILE),
            certificate: &dir.join(CERTIFICATE_FILE),
            key: &dir.join(KEY_FILE),
        };
        self.0
            .write_sled_files(uris, &rack_firmware(), &files)
            .expect("write the PEM files");
    }
}
