//! Restoring the persistent state from storage read a page at a time gives
//! exactly what restoring it from one slice gives, for valid, damaged and
//! arbitrary bytes, and a storage read error is reported as such.

use proptest::prelude::*;
use std::vec::Vec;

use super::{damage, some_states};
use crate::persistent::PersistentState;
use crate::wire::{
    MAX_PERSISTENT_STATE_LEN, PageReader, PagedError, WireError, decode_persistent_state_from,
    decode_persistent_state_into, encode_persistent_state,
};

/// Storage over `bytes` that serves at most `piece` bytes a read (larger
/// reads are made of several), and fails every read past `fail_at`.
struct Flash<'a> {
    bytes: &'a [u8],
    fail_at: usize,
    reads: usize,
}

#[derive(Debug, PartialEq, Eq)]
struct ReadFailed;

impl PageReader for Flash<'_> {
    type Error = ReadFailed;

    fn read(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), ReadFailed> {
        self.reads += 1;
        let end = offset + buf.len();
        if end > self.fail_at {
            return Err(ReadFailed);
        }
        buf.copy_from_slice(self.bytes.get(offset..end).ok_or(ReadFailed)?);
        Ok(())
    }
}

fn encoded(state: &PersistentState) -> Vec<u8> {
    let mut buf = std::vec![0u8; MAX_PERSISTENT_STATE_LEN];
    encode_persistent_state(state, &mut buf).unwrap().to_vec()
}

/// The paged decoder and the slice decoder agree on `bytes`: same outcome,
/// same state.
fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut from_slice = PersistentState::new();
    let sliced = decode_persistent_state_into(bytes, &mut from_slice);
    let mut from_pages = PersistentState::new();
    let mut flash = Flash {
        bytes,
        fail_at: usize::MAX,
        reads: 0,
    };
    let paged = decode_persistent_state_from(&mut flash, bytes.len(), &mut from_pages);
    prop_assert_eq!(paged, sliced.map_err(PagedError::Wire));
    prop_assert_eq!(encoded(&from_pages), encoded(&from_slice));
    Ok(())
}

#[test]
fn every_sample_state_restores_from_pages_as_from_a_slice() {
    for bytes in some_states() {
        let mut state = PersistentState::new();
        let mut flash = Flash {
            bytes: &bytes,
            fail_at: usize::MAX,
            reads: 0,
        };
        decode_persistent_state_from(&mut flash, bytes.len(), &mut state).unwrap();
        assert_eq!(encoded(&state), bytes);
        // Read in pieces, not at once (plus the version byte and the
        // canonical check's re-reads).
        assert!(flash.reads > 2 * bytes.len() / 64, "{} reads", flash.reads);
    }
}

#[test]
fn a_failing_storage_read_is_reported_and_leaves_an_empty_state() {
    for bytes in some_states() {
        for fail_at in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            let mut state = PersistentState::new();
            let mut flash = Flash {
                bytes: &bytes,
                fail_at,
                reads: 0,
            };
            assert_eq!(
                decode_persistent_state_from(&mut flash, bytes.len(), &mut state),
                Err(PagedError::Read(ReadFailed)),
                "failing at {fail_at}"
            );
            assert!(state.is_empty());
        }
    }
}

#[test]
fn nothing_stored_is_empty_and_a_newer_format_is_named() {
    let mut state = PersistentState::new();
    let mut flash = Flash {
        bytes: &[9, 0, 0],
        fail_at: usize::MAX,
        reads: 0,
    };
    assert_eq!(
        decode_persistent_state_from(&mut flash, 0, &mut state),
        Err(PagedError::Wire(WireError::Empty))
    );
    assert_eq!(
        decode_persistent_state_from(&mut flash, 3, &mut state),
        Err(PagedError::Wire(WireError::UnsupportedVersion(9)))
    );
}

proptest! {
    #[test]
    fn pages_and_slices_agree_on_damaged_states(
        which in 0usize..3,
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = some_states().swap_remove(which);
        agree(&damage(bytes, at, value, cut))?;
    }

    #[test]
    fn pages_and_slices_agree_on_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        agree(&bytes)?;
    }
}
