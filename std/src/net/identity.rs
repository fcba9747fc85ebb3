//! Where a sled's [`PlatformId`] sits in its certificate.
//!
//! One subject-alternative-name URI of the form
//!
//! ```text
//! urn:tq-platform-id:<part>:<serial>
//! ```
//!
//! with each field percent-encoded: the unreserved characters of RFC 3986
//! (`A-Z a-z 0-9 - . _ ~`) as themselves, every other byte of printable
//! ASCII (0x20..=0x7e, `:` `%` `"` `\` and space included) as `%XX` in
//! upper-case hex. So the single `:` left between the fields is the
//! separator, and every platform id has exactly one spelling: a
//! certificate with a raw reserved character, lower-case hex, an escaped
//! unreserved character, a second such URI or none is refused.
//!
//! Other SAN entries are ignored; the subject name is not used.

use std::fmt::Write as _;

use tq_core::ids::{PlatformId, PlatformIdError};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// What every platform-id URI starts with.
pub const PLATFORM_ID_URI_PREFIX: &str = "urn:tq-platform-id:";

/// Why no platform id could be taken from a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// The certificate is not DER X.509, or its SAN extension is malformed.
    Unparsable,
    /// No platform-id URI.
    Missing,
    /// More than one platform-id URI.
    Ambiguous,
    /// The URI is not in the one accepted spelling.
    BadEncoding,
    /// A field breaks the platform id rules.
    Invalid(PlatformIdError),
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unparsable => f.write_str("certificate cannot be parsed"),
            Self::Missing => f.write_str("certificate has no platform-id URI"),
            Self::Ambiguous => f.write_str("certificate has more than one platform-id URI"),
            Self::BadEncoding => f.write_str("platform-id URI is not canonically encoded"),
            Self::Invalid(e) => write!(f, "platform-id URI: {e}"),
        }
    }
}

impl std::error::Error for IdentityError {}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn encode_field(field: &str, out: &mut String) {
    for byte in field.bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// The SAN URI naming `id`.
pub fn platform_id_uri(id: &PlatformId) -> String {
    let mut uri = String::from(PLATFORM_ID_URI_PREFIX);
    encode_field(id.part_number(), &mut uri);
    uri.push(':');
    encode_field(id.serial_number(), &mut uri);
    uri
}

fn upper_hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn decode_field(encoded: &str) -> Result<String, IdentityError> {
    let mut out = String::with_capacity(encoded.len());
    let mut bytes = encoded.bytes();
    while let Some(byte) = bytes.next() {
        let decoded = match byte {
            b'%' => {
                let high = bytes.next().and_then(upper_hex);
                let low = bytes.next().and_then(upper_hex);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(IdentityError::BadEncoding);
                };
                let decoded = high << 4 | low;
                if is_unreserved(decoded) || !(0x20..=0x7e).contains(&decoded) {
                    return Err(IdentityError::BadEncoding);
                }
                decoded
            }
            byte if is_unreserved(byte) => byte,
            _ => return Err(IdentityError::BadEncoding),
        };
        out.push(char::from(decoded));
    }
    Ok(out)
}

/// The platform id a platform-id URI names.
pub fn parse_platform_id_uri(uri: &str) -> Result<PlatformId, IdentityError> {
    let rest = uri
        .strip_prefix(PLATFORM_ID_URI_PREFIX)
        .ok_or(IdentityError::BadEncoding)?;
    let (part, serial) = rest.split_once(':').ok_or(IdentityError::BadEncoding)?;
    PlatformId::new(&decode_field(part)?, &decode_field(serial)?).map_err(IdentityError::Invalid)
}

/// The platform id named by a DER certificate.
pub fn platform_id_of_cert(der: &[u8]) -> Result<PlatformId, IdentityError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| IdentityError::Unparsable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unparsable)?
        .ok_or(IdentityError::Missing)?;
    let mut uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with(PLATFORM_ID_URI_PREFIX) => Some(*uri),
            _ => None,
        });
    let uri = uris.next().ok_or(IdentityError::Missing)?;
    if uris.next().is_some() {
        return Err(IdentityError::Ambiguous);
    }
    parse_platform_id_uri(uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(part: &str, serial: &str) -> PlatformId {
        PlatformId::new(part, serial).unwrap()
    }

    #[test]
    fn known_spellings() {
        assert_eq!(
            platform_id_uri(&id("913-0000019", "BRM42220036")),
            "urn:tq-platform-id:913-0000019:BRM42220036"
        );
        assert_eq!(
            platform_id_uri(&id("a:b", "c\"d\\ %~")),
            "urn:tq-platform-id:a%3Ab:c%22d%5C%20%25~"
        );
        assert_eq!(
            parse_platform_id_uri("urn:tq-platform-id:a%3Ab:c%22d%5C%20%25~"),
            Ok(id("a:b", "c\"d\\ %~"))
        );
    }

    #[test]
    fn other_spellings_are_refused() {
        for uri in [
            "urn:tq-platform-id:a:b:c",   // raw ':' in a field
            "urn:tq-platform-id:a%3ab:c", // lower-case hex
            "urn:tq-platform-id:%61:c",   // escaped unreserved 'a'
            "urn:tq-platform-id:a b:c",   // raw space
            "urn:tq-platform-id:a%7F:c",  // not printable
            "urn:tq-platform-id:a%0A:c",  // not printable
            "urn:tq-platform-id:a%3:c",   // short escape
            "urn:tq-platform-id:a%",      // escape at the end, no serial
            "urn:tq-platform-id:abc",     // no separator
            "URN:tq-platform-id:a:b",     // other prefix
        ] {
            assert_eq!(
                parse_platform_id_uri(uri),
                Err(IdentityError::BadEncoding),
                "{uri}"
            );
        }
        assert_eq!(
            parse_platform_id_uri("urn:tq-platform-id::b"),
            Err(IdentityError::Invalid(PlatformIdError::Empty))
        );
        let long = "x".repeat(33);
        assert_eq!(
            parse_platform_id_uri(&format!("urn:tq-platform-id:{long}:b")),
            Err(IdentityError::Invalid(PlatformIdError::TooLong))
        );
    }

    fn field() -> impl Strategy<Value = String> {
        proptest::collection::vec(0x20u8..=0x7e, 1..=32)
            .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
    }

    proptest! {
        #[test]
        fn every_platform_id_round_trips(part in field(), serial in field()) {
            let id = id(&part, &serial);
            let uri = platform_id_uri(&id);
            prop_assert!(uri.is_ascii());
            let fields = uri.strip_prefix(PLATFORM_ID_URI_PREFIX).unwrap();
            prop_assert_eq!(fields.matches(':').count(), 1);
            prop_assert_eq!(parse_platform_id_uri(&uri), Ok(id));
        }

        #[test]
        fn parsing_is_total_and_canonical(uri in "urn:tq-platform-id:[ -~]{0,80}") {
            if let Ok(id) = parse_platform_id_uri(&uri) {
                prop_assert_eq!(platform_id_uri(&id), uri);
            }
        }
    }
}
