//! Small public identifiers used across the core.

use core::fmt;
use serde::{Deserialize, Serialize};

/// A configuration number. Strictly increasing over the life of a rack; LRTQ
/// is epoch 1.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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

/// The rack's UUID, as its 16 bytes. Fixed for the life of the rack.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RackId(pub [u8; 16]);

impl RackId {
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

impl fmt::Debug for RackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RackId({self})")
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
