//! How public byte strings look in each serde format: in a human-readable
//! one (JSON, for Nexus and operators) as lower-case hex, in postcard as
//! the bytes themselves, exactly as serde's derived code writes them. Used
//! through `#[serde(with = ...)]` on the fields that hold them.
//!
//! Reading the hex form needs the `host` feature (the `hex` crate); without
//! it a human-readable input is refused with an error, never misread.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes displayed as lower-case hex.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Decodes hex `text` into exactly `out.len()` bytes.
#[cfg(feature = "host")]
pub(crate) fn parse_hex<E: serde::de::Error>(text: &str, out: &mut [u8]) -> Result<(), E> {
    hex::decode_to_slice(text, out).map_err(E::custom)
}

#[cfg(not(feature = "host"))]
pub(crate) fn parse_hex<E: serde::de::Error>(_: &str, _: &mut [u8]) -> Result<(), E> {
    Err(E::custom("reading hex needs tq-core's `host` feature"))
}

/// Reads `[u8; N]` from a tuple of `N` bytes, as serde's own impl does
/// (same encoding, same errors), in a loop: serde's impl is unrolled for
/// each length, about 1 KB of flash for 32 bytes and another copy for 16.
pub(crate) fn byte_array<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    struct Bytes<const N: usize>;

    impl<'de, const N: usize> serde::de::Visitor<'de> for Bytes<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an array of length {N}")
        }
        // Out of line: one copy for each length, not one in each caller.
        #[inline(never)]
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut bytes = [0u8; N];
            for (at, byte) in bytes.iter_mut().enumerate() {
                *byte = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(at, &self))?;
            }
            Ok(bytes)
        }
    }

    deserializer.deserialize_tuple(N, Bytes::<N>)
}

/// A fixed-size byte array.
pub(crate) mod hex_array {
    use super::*;

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error>
    where
        [u8; N]: Serialize,
    {
        if serializer.is_human_readable() {
            serializer.collect_str(&Hex(bytes))
        } else {
            bytes.serialize(serializer)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        if deserializer.is_human_readable() {
            let text = HexText::deserialize(deserializer)?;
            let mut bytes = [0u8; N];
            parse_hex(text.as_str(), &mut bytes)?;
            Ok(bytes)
        } else {
            byte_array(deserializer)
        }
    }
}

/// A bounded byte vector.
pub(crate) mod hex_vec {
    use super::*;

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &heapless::Vec<u8, N>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(&Hex(bytes))
        } else {
            bytes.serialize(serializer)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<heapless::Vec<u8, N>, D::Error> {
        if deserializer.is_human_readable() {
            let text = HexText::deserialize(deserializer)?;
            let len = text.as_str().len() / 2;
            let mut bytes = heapless::Vec::new();
            bytes
                .resize(len, 0)
                .map_err(|_| serde::de::Error::invalid_length(len, &"a bounded byte string"))?;
            parse_hex(text.as_str(), &mut bytes)?;
            Ok(bytes)
        } else {
            heapless::Vec::deserialize(deserializer)
        }
    }
}

/// The hex text of the longest byte string a human-readable form holds (a
/// sealed ciphertext), read without borrowing so that escaped JSON strings
/// work too.
struct HexText(heapless::String<{ 2 * crate::limits::MAX_SEALED_LEN }>);

impl HexText {
    fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HexText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HexText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<HexText, E> {
                heapless::String::try_from(text)
                    .map(HexText)
                    .map_err(|_| E::invalid_length(text.len(), &self))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `byte_array` reads what serde's own `[u8; N]` impl reads, and
    /// refuses what it refuses, on every prefix of an encoding.
    #[test]
    fn byte_array_reads_as_serde_does() {
        let bytes: [u8; 33] = core::array::from_fn(|i| (i * 7) as u8);
        for len in 0..=bytes.len() {
            let input = &bytes[..len];
            let ours: Result<[u8; 32], _> =
                byte_array(&mut postcard::Deserializer::from_bytes(input));
            let serde: Result<[u8; 32], _> =
                <[u8; 32]>::deserialize(&mut postcard::Deserializer::from_bytes(input));
            assert_eq!(ours.ok(), serde.ok(), "{len} bytes");
            let ours: Result<[u8; 16], _> =
                byte_array(&mut postcard::Deserializer::from_bytes(input));
            let serde: Result<[u8; 16], _> =
                <[u8; 16]>::deserialize(&mut postcard::Deserializer::from_bytes(input));
            assert_eq!(ours.ok(), serde.ok(), "{len} bytes");
        }
    }
}
