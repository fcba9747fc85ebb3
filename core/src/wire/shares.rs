//! Serde for share types. The crypto modules know nothing of the wire; this
//! is the one place shares become bytes and back, and where the bytes are
//! checked (a zero x-coordinate, a non-canonical LRTQ scalar) on decode.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{LrtqShare, Share};
use crate::limits::{LRTQ_SHARE_LEN, SECRET_LEN};

/// A share as it travels: a public byte then 32 secret bytes. Wiped when
/// dropped so a decoded share leaves no copy behind.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct ShareBytes(
    u8,
    #[serde(deserialize_with = "crate::serde_forms::byte_array")] [u8; SECRET_LEN],
);

impl Serialize for Share {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ShareBytes(self.x(), *self.expose_y()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = ShareBytes::deserialize(deserializer)?;
        Share::new(raw.0, &raw.1).map_err(serde::de::Error::custom)
    }
}

impl Serialize for LrtqShare {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self
            .expose_bytes()
            .split_first()
            .and_then(|(_, value)| <&[u8; SECRET_LEN]>::try_from(value).ok())
            .ok_or_else(|| serde::ser::Error::custom("LRTQ share length"))?;
        ShareBytes(self.identifier(), *value).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LrtqShare {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = ShareBytes::deserialize(deserializer)?;
        let mut bytes = [0; LRTQ_SHARE_LEN];
        let source = core::iter::once(&raw.0).chain(raw.1.iter());
        for (byte, value) in bytes.iter_mut().zip(source) {
            *byte = *value;
        }
        let share = LrtqShare::from_bytes(&bytes).map_err(serde::de::Error::custom);
        bytes.zeroize();
        share
    }
}
