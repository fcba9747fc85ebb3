//! The measurements a sled certificate carries: what the sled runs, as a
//! TCG DICE `TcbInfo` extension.
//!
//! The extension is identified by [`TCB_INFO_OID`] (`tcg-dice-TcbInfo`,
//! TCG DICE Attestation Architecture) and holds a `DiceTcbInfo` SEQUENCE
//! of optional, context-tagged fields, of which only `fwids` is read:
//!
//! ```text
//! DiceTcbInfo ::= SEQUENCE {
//!     ...                                   -- [0]..[5], ignored
//!     fwids [6] IMPLICIT SEQUENCE OF FWID OPTIONAL,
//!     ...                                   -- [7] and later, ignored
//! }
//! FWID ::= SEQUENCE { hashAlg OBJECT IDENTIFIER, digest OCTET STRING }
//! ```
//!
//! Each FWID is one firmware digest; rack setup puts one per image the
//! sled runs, hashed with SHA3-256 ([`SHA3_256_OID`]). The extension is
//! not marked critical: a verifier that does not know it (webpki, which
//! refuses unknown critical extensions) must still verify the chain; ours
//! reads it after the chain is verified (`super::attestation`).
//!
//! Parsing is strict (DER, bounded by [`MAX_FWIDS`] and
//! [`MAX_DIGEST_LEN`]) and total: any certificate gives a list of FWIDs
//! or a [`MeasurementError`].

use x509_parser::asn1_rs::{Any, Class, FromDer, Oid, Sequence, Tag};
use x509_parser::prelude::X509Certificate;

/// `tcg-dice-TcbInfo`: 2.23.133.5.4.1.
pub const TCB_INFO_OID: &str = "2.23.133.5.4.1";

/// `id-sha3-256` (NIST): 2.16.840.1.101.3.4.2.8, the one hash algorithm
/// the reference measurements hold.
pub const SHA3_256_OID: &str = "2.16.840.1.101.3.4.2.8";

/// Most FWIDs one certificate may carry: a sled measures a handful of
/// images, not hundreds.
pub const MAX_FWIDS: usize = 16;

/// Longest digest an FWID may carry (SHA-512's).
pub const MAX_DIGEST_LEN: usize = 64;

/// The context tag of `fwids` in `DiceTcbInfo`.
const FWIDS_TAG: u32 = 6;

/// One firmware digest as a certificate carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fwid {
    /// The hash algorithm's OID, dotted.
    pub algorithm: String,
    /// The digest.
    pub digest: Vec<u8>,
}

impl Fwid {
    /// The SHA3-256 digest this FWID carries, if it is one.
    pub fn sha3_256(&self) -> Option<[u8; 32]> {
        if self.algorithm != SHA3_256_OID {
            return None;
        }
        self.digest.as_slice().try_into().ok()
    }
}

/// Why no measurements could be taken from a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasurementError {
    /// No `TcbInfo` extension, or one without `fwids`.
    Absent,
    /// The certificate or its `TcbInfo` extension is not well-formed DER
    /// of the structure above, the extension appears twice, `fwids` is
    /// empty, or a bound is exceeded.
    Malformed,
}

impl std::fmt::Display for MeasurementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent => f.write_str("certificate carries no measurements"),
            Self::Malformed => f.write_str("certificate's measurements are malformed"),
        }
    }
}

impl std::error::Error for MeasurementError {}

/// The FWIDs of a DER certificate's `TcbInfo` extension.
pub fn measurements_of_cert(der: &[u8]) -> Result<Vec<Fwid>, MeasurementError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| MeasurementError::Malformed)?;
    let mut values = cert
        .extensions()
        .iter()
        .filter(|ext| ext.oid.to_id_string() == TCB_INFO_OID)
        .map(|ext| ext.value);
    let value = values.next().ok_or(MeasurementError::Absent)?;
    if values.next().is_some() {
        return Err(MeasurementError::Malformed);
    }
    parse_tcb_info(value)
}

/// The FWIDs of a `DiceTcbInfo` (the extension's value).
pub fn parse_tcb_info(value: &[u8]) -> Result<Vec<Fwid>, MeasurementError> {
    let malformed = |_| MeasurementError::Malformed;
    let (rest, tcb_info) = Sequence::from_der(value).map_err(malformed)?;
    if !rest.is_empty() {
        return Err(MeasurementError::Malformed);
    }
    let mut fields: &[u8] = tcb_info.content.as_ref();
    let mut fwids = None;
    while !fields.is_empty() {
        let (rest, field) = Any::from_der(fields).map_err(malformed)?;
        fields = rest;
        if field.class() != Class::ContextSpecific || field.tag() != Tag(FWIDS_TAG) {
            continue;
        }
        if fwids.is_some() || !field.header.is_constructed() {
            return Err(MeasurementError::Malformed);
        }
        fwids = Some(parse_fwids(field.data)?);
    }
    fwids.ok_or(MeasurementError::Absent)
}

/// The contents of `fwids`: one or more FWID SEQUENCEs.
fn parse_fwids(mut list: &[u8]) -> Result<Vec<Fwid>, MeasurementError> {
    let mut fwids = Vec::new();
    while !list.is_empty() {
        if fwids.len() == MAX_FWIDS {
            return Err(MeasurementError::Malformed);
        }
        let (rest, fwid) = Sequence::from_der_and_then(list, |fields| {
            let (fields, algorithm) = Oid::from_der(fields)?;
            let (fields, digest) = Any::from_der(fields)?;
            let digest: &[u8] = digest.try_into()?;
            // The sequence's own remainder is dropped by from_der_and_then.
            if !fields.is_empty() {
                return Err(x509_parser::nom::Err::Error(
                    x509_parser::asn1_rs::Error::InvalidLength,
                ));
            }
            Ok((fields, (algorithm, digest)))
        })
        .map_err(|_| MeasurementError::Malformed)?;
        list = rest;
        let (algorithm, digest) = fwid;
        if digest.is_empty() || digest.len() > MAX_DIGEST_LEN {
            return Err(MeasurementError::Malformed);
        }
        fwids.push(Fwid {
            algorithm: algorithm.to_id_string(),
            digest: digest.to_vec(),
        });
    }
    if fwids.is_empty() {
        return Err(MeasurementError::Malformed);
    }
    Ok(fwids)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `DiceTcbInfo { fwids [6] { FWID { sha3-256, 32 bytes of 0xab } } }`,
    /// spelled out byte by byte (DER, X.690).
    fn one_fwid() -> Vec<u8> {
        let oid = [
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x08,
        ];
        let mut fwid = vec![0x30, 11 + 34];
        fwid.extend_from_slice(&oid);
        fwid.extend_from_slice(&[0x04, 32]);
        fwid.extend_from_slice(&[0xab; 32]);
        let mut fwids = vec![0xa6, fwid.len() as u8];
        fwids.extend_from_slice(&fwid);
        let mut tcb_info = vec![0x30, fwids.len() as u8];
        tcb_info.extend_from_slice(&fwids);
        tcb_info
    }

    #[test]
    fn a_hand_encoded_tcb_info_parses() {
        let fwids = parse_tcb_info(&one_fwid()).unwrap();
        assert_eq!(fwids.len(), 1);
        assert_eq!(fwids[0].algorithm, SHA3_256_OID);
        assert_eq!(fwids[0].sha3_256(), Some([0xab; 32]));
    }

    #[test]
    fn other_fields_are_ignored() {
        // vendor [0] "x" before fwids, flags [7] after.
        let inner = one_fwid();
        let mut fields = vec![0x80, 1, b'x'];
        fields.extend_from_slice(&inner[2..]);
        fields.extend_from_slice(&[0x87, 2, 0x00, 0x00]);
        let mut tcb_info = vec![0x30, fields.len() as u8];
        tcb_info.extend_from_slice(&fields);
        assert_eq!(parse_tcb_info(&tcb_info).unwrap().len(), 1);
    }

    #[test]
    fn malformed_ones_are_refused() {
        let good = one_fwid();
        let mut truncated = good.clone();
        truncated.pop();
        let mut trailing = good.clone();
        trailing.push(0);
        let mut primitive = good.clone();
        primitive[2] = 0x86;
        let empty_list = vec![0x30, 2, 0xa6, 0];
        let mut extra_in_fwid = good.clone();
        // The FWID's length grows by 2 and a NULL follows the digest.
        extra_in_fwid[3] += 2;
        extra_in_fwid[1] += 2;
        extra_in_fwid[5] += 2;
        extra_in_fwid.extend_from_slice(&[0x05, 0x00]);
        for (what, bytes) in [
            ("truncated", truncated),
            ("trailing", trailing),
            ("fwids primitive", primitive),
            ("fwids empty", empty_list),
            ("extra field in an FWID", extra_in_fwid),
            ("not DER at all", b"measurements".to_vec()),
        ] {
            assert_eq!(
                parse_tcb_info(&bytes),
                Err(MeasurementError::Malformed),
                "{what}"
            );
        }
        assert_eq!(
            parse_tcb_info(&[0x30, 3, 0x80, 1, b'x']),
            Err(MeasurementError::Absent)
        );
    }

    proptest! {
        /// Any bytes give FWIDs or an error, never a panic; a valid
        /// encoding with any byte changed never gives more FWIDs.
        #[test]
        fn parsing_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse_tcb_info(&bytes);
        }

        #[test]
        fn a_flipped_byte_is_refused_or_read_as_one_fwid(at in 0usize..51, bit in 0u8..8) {
            let mut bytes = one_fwid();
            bytes[at] ^= 1 << bit;
            if let Ok(fwids) = parse_tcb_info(&bytes) {
                prop_assert_eq!(fwids.len(), 1);
            }
        }
    }
}
