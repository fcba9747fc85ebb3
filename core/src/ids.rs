//! Small public identifiers used across the core.

use core::fmt;
use serde::{Deserialize, Serialize};

use crate::limits::{
    MAX_LRTQ_THRESHOLD, MAX_MEMBERS, MAX_THRESHOLD, MIN_LRTQ_THRESHOLD, MIN_MEMBERS, MIN_THRESHOLD,
    PLATFORM_ID_FIELD_LEN,
};

/// A configuration number. Strictly increasing over the life of a rack; LRTQ
/// is epoch 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch as 8 big-endian bytes, the form used inside key derivation
    /// and the encrypted secrets plaintext.
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The rack's UUID, as its 16 bytes. Fixed for the life of the rack. In
/// JSON it is the hyphenated UUID string; in postcard its 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RackId(pub [u8; 16]);

impl Serialize for RackId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for RackId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return crate::serde_forms::byte_array(deserializer).map(Self);
        }
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RackId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hyphenated UUID")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RackId, E> {
                RackId::parse(text)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl RackId {
    /// Parses the hyphenated form [`fmt::Display`] writes
    /// (`67e55044-10b1-426f-9247-bb680e5fe0c8`, either case).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 36 {
            return None;
        }
        let mut bytes = [0u8; 16];
        let mut digits = text
            .iter()
            .enumerate()
            .filter(|(i, _)| !matches!(i, 8 | 13 | 18 | 23));
        for byte in &mut bytes {
            let (_, &high) = digits.next()?;
            let (_, &low) = digits.next()?;
            *byte = hex_value(high)? << 4 | hex_value(low)?;
        }
        let hyphens = [8, 13, 18, 23].iter().all(|&i| text.get(i) == Some(&b'-'));
        hyphens.then_some(Self(bytes))
    }

    /// The UUID bytes in their usual (big-endian) order.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// Hyphenated lower-case UUID form, as operators see it elsewhere.
impl fmt::Display for RackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for RackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RackId({self})")
    }
}

/// `K`: how many shares rebuild a secret. Valid values are
/// [`MIN_THRESHOLD`]`..=`[`MAX_THRESHOLD`]; a configuration further needs it
/// strictly below its member count. Decoding enforces the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[serde(try_from = "u8", into = "u8")]
pub struct Threshold(u8);

/// A threshold outside [`MIN_THRESHOLD`]`..=`[`MAX_THRESHOLD`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ThresholdOutOfRange(pub u8);

impl fmt::Display for ThresholdOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "threshold {} is outside {MIN_THRESHOLD}..={MAX_THRESHOLD}",
            self.0
        )
    }
}

impl core::error::Error for ThresholdOutOfRange {}

impl Threshold {
    /// Zero: only the placeholder of a slot not yet filled (see
    /// [`crate::wire::DecodeSlot`]), never a threshold anyone reads. Zero,
    /// so that a slot's `const` initializer is all zero bytes and a static
    /// one sits in `.bss`, costing no flash.
    pub(crate) const UNFILLED: Self = Self(0);

    /// A threshold, if `k` is in range.
    pub const fn new(k: u8) -> Result<Self, ThresholdOutOfRange> {
        if k >= MIN_THRESHOLD && k <= MAX_THRESHOLD {
            Ok(Self(k))
        } else {
            Err(ThresholdOutOfRange(k))
        }
    }

    /// The number of shares it takes.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether a group of `members` can use this threshold: member count in
    /// range and strictly more members than the threshold.
    pub const fn fits_member_count(self, members: usize) -> bool {
        members >= MIN_MEMBERS && members <= MAX_MEMBERS && (self.0 as usize) < members
    }
}

impl TryFrom<u8> for Threshold {
    type Error = ThresholdOutOfRange;
    fn try_from(k: u8) -> Result<Self, Self::Error> {
        Self::new(k)
    }
}

impl From<Threshold> for u8 {
    fn from(k: Threshold) -> u8 {
        k.0
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The threshold of an LRTQ rack, as its ledger recorded it (`n/2 + 1` at
/// rack setup): [`MIN_LRTQ_THRESHOLD`]`..=`[`MAX_LRTQ_THRESHOLD`]. Decoding
/// enforces the range, so LRTQ share data never names a threshold an
/// upgrade could not reach or combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[serde(try_from = "u8", into = "u8")]
pub struct LrtqThreshold(u8);

/// An LRTQ threshold outside
/// [`MIN_LRTQ_THRESHOLD`]`..=`[`MAX_LRTQ_THRESHOLD`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LrtqThresholdOutOfRange(pub u8);

impl fmt::Display for LrtqThresholdOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LRTQ threshold {} is outside {MIN_LRTQ_THRESHOLD}..={MAX_LRTQ_THRESHOLD}",
            self.0
        )
    }
}

impl core::error::Error for LrtqThresholdOutOfRange {}

impl LrtqThreshold {
    /// An LRTQ threshold, if `k` is in range.
    pub const fn new(k: u8) -> Result<Self, LrtqThresholdOutOfRange> {
        if k >= MIN_LRTQ_THRESHOLD && k <= MAX_LRTQ_THRESHOLD {
            Ok(Self(k))
        } else {
            Err(LrtqThresholdOutOfRange(k))
        }
    }

    /// The number of LRTQ shares it takes.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for LrtqThreshold {
    type Error = LrtqThresholdOutOfRange;
    fn try_from(k: u8) -> Result<Self, Self::Error> {
        Self::new(k)
    }
}

impl From<LrtqThreshold> for u8 {
    fn from(k: LrtqThreshold) -> u8 {
        k.0
    }
}

/// As a count of shares, to compare with a collection's length.
impl From<LrtqThreshold> for usize {
    fn from(k: LrtqThreshold) -> usize {
        usize::from(k.0)
    }
}

impl fmt::Display for LrtqThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One field of a [`PlatformId`]: 1 to [`PLATFORM_ID_FIELD_LEN`] printable
/// ASCII bytes (0x20..=0x7e).
pub type PlatformIdField = heapless::String<PLATFORM_ID_FIELD_LEN, u8>;

/// The part number of the sleds every rack this project sets up is made
/// of (the demo, the tests, the harness). The node accepts any part
/// number; this is only the one place the project's own racks name it.
pub const SLED_PART_NUMBER: &str = "913-0000019";

/// A sled's hardware identity: part number and serial number. Ordered by
/// (part, serial), which fixes each member's share x-coordinate; displayed as
/// `part:serial`. Decoding enforces the length and character rules.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawPlatformId")]
pub struct PlatformId {
    part_number: PlatformIdField,
    serial_number: PlatformIdField,
}

/// Why a [`PlatformId`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PlatformIdError {
    /// A field was empty.
    Empty,
    /// A field was longer than [`PLATFORM_ID_FIELD_LEN`] bytes.
    TooLong,
    /// A field held a byte outside printable ASCII.
    NotPrintableAscii,
}

impl fmt::Display for PlatformIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "platform id field is empty",
            Self::TooLong => "platform id field is too long",
            Self::NotPrintableAscii => "platform id field is not printable ASCII",
        })
    }
}

impl core::error::Error for PlatformIdError {}

impl PlatformId {
    /// Empty fields: only a slot for the in-place decoder to overwrite.
    pub(crate) const fn unfilled() -> Self {
        Self {
            part_number: heapless::String::new(),
            serial_number: heapless::String::new(),
        }
    }

    /// A platform id from its two fields, if both are valid.
    pub fn new(part_number: &str, serial_number: &str) -> Result<Self, PlatformIdError> {
        Ok(Self {
            part_number: field(part_number)?,
            serial_number: field(serial_number)?,
        })
    }

    /// The part number.
    pub fn part_number(&self) -> &str {
        &self.part_number
    }

    /// The serial number.
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }
}

/// The bytes a platform id field may hold: printable ASCII.
fn is_printable_ascii(b: u8) -> bool {
    (0x20..=0x7e).contains(&b)
}

fn field(s: &str) -> Result<PlatformIdField, PlatformIdError> {
    if s.is_empty() {
        return Err(PlatformIdError::Empty);
    }
    if !s.bytes().all(is_printable_ascii) {
        return Err(PlatformIdError::NotPrintableAscii);
    }
    PlatformIdField::try_from(s).map_err(|_| PlatformIdError::TooLong)
}

/// The wire shape of a [`PlatformId`] before its fields are checked. The
/// fields are copied, not borrowed, so that a JSON string with escapes
/// (`\"`, `\\`) reads as well as postcard's raw bytes, and so that a state
/// read from storage a page at a time keeps nothing of its input.
#[derive(Deserialize)]
struct RawPlatformId {
    part_number: CopiedField,
    serial_number: CopiedField,
}

impl TryFrom<RawPlatformId> for PlatformId {
    type Error = PlatformIdError;
    fn try_from(raw: RawPlatformId) -> Result<Self, Self::Error> {
        Self::new(&raw.part_number.0, &raw.serial_number.0)
    }
}

/// A field read as an owned string (the format may hand it over from a
/// temporary buffer), at most [`PLATFORM_ID_FIELD_LEN`] bytes.
///
/// From a binary format (postcard) it is read as bytes, which postcard
/// encodes exactly as a string (length, then the bytes), and kept only if
/// every byte is printable ASCII: the rule [`PlatformId::new`] applies
/// anyway, and one that implies valid UTF-8, so the same bytes are refused
/// without linking `core::str::from_utf8` (368 B of the service
/// processor's flash) for a check this one makes stricter.
struct CopiedField(PlatformIdField);

impl<'de> Deserialize<'de> for CopiedField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CopiedField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of at most {PLATFORM_ID_FIELD_LEN} bytes")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<CopiedField, E> {
                PlatformIdField::try_from(text)
                    .map(CopiedField)
                    .map_err(|_| E::invalid_length(text.len(), &self))
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<CopiedField, E> {
                let mut field = PlatformIdField::new();
                for &b in bytes {
                    if !is_printable_ascii(b) {
                        return Err(E::invalid_value(serde::de::Unexpected::Bytes(bytes), &self));
                    }
                    field
                        .push(char::from(b))
                        .map_err(|_| E::invalid_length(bytes.len(), &self))?;
                }
                Ok(CopiedField(field))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_string(Visitor)
        } else {
            deserializer.deserialize_byte_buf(Visitor)
        }
    }
}

impl fmt::Display for PlatformId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.part_number, self.serial_number)
    }
}

impl fmt::Debug for PlatformId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlatformId({self})")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for PlatformId {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "{=str}:{=str}",
            self.part_number.as_str(),
            self.serial_number.as_str()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rack_id_displays_as_uuid() {
        let id = RackId([
            0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f,
            0xe0, 0xc8,
        ]);
        let mut buf = heapless::String::<40>::new();
        core::fmt::write(&mut buf, format_args!("{id}")).unwrap();
        assert_eq!(buf.as_str(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
    }

    #[test]
    fn epoch_bytes_are_big_endian() {
        assert_eq!(Epoch(0x0102).to_be_bytes(), [0, 0, 0, 0, 0, 0, 1, 2]);
    }
}

#[cfg(test)]
mod platform_and_threshold_tests {
    use super::*;

    #[test]
    fn threshold_range_is_enforced() {
        assert_eq!(Threshold::new(1), Err(ThresholdOutOfRange(1)));
        assert_eq!(Threshold::new(32), Err(ThresholdOutOfRange(32)));
        assert_eq!(Threshold::new(2).map(Threshold::get), Ok(2));
        assert_eq!(Threshold::new(31).map(Threshold::get), Ok(31));
    }

    #[test]
    fn threshold_must_be_below_member_count() {
        let k = Threshold::new(3).unwrap();
        assert!(!k.fits_member_count(3));
        assert!(k.fits_member_count(4));
        assert!(k.fits_member_count(32));
        assert!(!k.fits_member_count(33));
        assert!(!Threshold::new(2).unwrap().fits_member_count(2));
    }

    #[test]
    fn lrtq_threshold_range_is_enforced() {
        for k in [0, 1, 33, 255] {
            assert_eq!(LrtqThreshold::new(k), Err(LrtqThresholdOutOfRange(k)));
            assert_eq!(LrtqThreshold::try_from(k), Err(LrtqThresholdOutOfRange(k)));
        }
        for k in [2, 3, 17, 32] {
            assert_eq!(LrtqThreshold::new(k).map(LrtqThreshold::get), Ok(k));
            assert_eq!(LrtqThreshold::new(k).map(usize::from), Ok(usize::from(k)));
        }
    }

    #[test]
    fn platform_id_fields_are_checked() {
        assert_eq!(PlatformId::new("", "s").err(), Some(PlatformIdError::Empty));
        assert_eq!(
            PlatformId::new("p", "caf\u{e9}").err(),
            Some(PlatformIdError::NotPrintableAscii)
        );
        assert_eq!(
            PlatformId::new("p", "a\nb").err(),
            Some(PlatformIdError::NotPrintableAscii)
        );
        let long = "x".repeat(PLATFORM_ID_FIELD_LEN + 1);
        assert_eq!(
            PlatformId::new(&long, "s").err(),
            Some(PlatformIdError::TooLong)
        );
        let max = "x".repeat(PLATFORM_ID_FIELD_LEN);
        assert!(PlatformId::new(&max, &max).is_ok());
    }

    /// Decoding applies the field rules whatever the bytes: postcard's
    /// (read as bytes, see `CopiedField`) and JSON's (read as a string).
    #[test]
    fn decoded_platform_id_fields_are_checked() {
        fn postcard_field(field: &[u8]) -> Result<PlatformId, postcard::Error> {
            let mut bytes = std::vec![1, b'p', u8::try_from(field.len()).unwrap()];
            bytes.extend_from_slice(field);
            postcard::from_bytes(&bytes)
        }
        let max = [b'~'; PLATFORM_ID_FIELD_LEN];
        for good in [&b"s"[..], b" ", b"BRM02 ~!", &max] {
            let id = postcard_field(good).unwrap();
            assert_eq!(id.serial_number().as_bytes(), good);
            assert_eq!(id, PlatformId::new("p", id.serial_number()).unwrap());
        }
        let long = [b'x'; PLATFORM_ID_FIELD_LEN + 1];
        for bad in [
            &b""[..],
            b"a\nb",
            b"\x1f",
            b"\x7f",
            b"\x80",
            b"\xff",
            "caf\u{e9}".as_bytes(),
            &long,
        ] {
            assert!(postcard_field(bad).is_err(), "{bad:?}");
        }
        let json = |serial: &str| {
            serde_json::from_value::<PlatformId>(serde_json::json!({
                "part_number": "p",
                "serial_number": serial,
            }))
        };
        assert!(json("BRM02").is_ok());
        for bad in ["", "a\nb", "caf\u{e9}", "\u{7f}"] {
            assert!(json(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn platform_ids_order_by_part_then_serial() {
        let a = PlatformId::new(SLED_PART_NUMBER, "BRM02").unwrap();
        let b = PlatformId::new(SLED_PART_NUMBER, "BRM10").unwrap();
        let c = PlatformId::new("913-0000020", "AAA00").unwrap();
        assert!(a < b && b < c);
    }
}
