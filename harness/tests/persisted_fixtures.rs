//! Persisted bytes written by an earlier build still open: the persistent
//! state and the LRTQ share data in `core/tests/fixtures/` (how they were made:
//! `core/tests/fixtures/README.md`) decode to what was written, restore into a
//! node's context, and encode again to the same bytes.
//!
//! When a format changes, these files stay: they are the previous version
//! the new decoder must still read (see the recipe in `tq_core::wire`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use tq_core::ids::{Epoch, LrtqThreshold, PlatformId, Threshold};
use tq_core::node::NodeCtx;
use tq_core::persistent::PersistentState;
use tq_core::wire::{
    self, MAX_LRTQ_SHARE_DATA_LEN, MAX_PERSISTENT_STATE_LEN, PageReader,
    decode_persistent_state_from,
};
use tq_test_fixtures::{RACK, lrtq_rack};

/// Sled 1 of a six-sled harness rack (five LRTQ sleds and a spare) after
/// the LRTQ upgrade (epoch 2) and the addition of the spare (epoch 3).
const STATE_V1: &[u8] = include_bytes!("../../core/tests/fixtures/persistent_state_v1.bin");

/// Sled 1's LRTQ share data of `lrtq_rack(5, 11)`.
const LRTQ_V1: &[u8] = include_bytes!("../../core/tests/fixtures/lrtq_share_data_v1.bin");

/// The harness's sled `index`.
fn sled(index: usize) -> PlatformId {
    tq_test_fixtures::sled_id(index)
}

/// The encoding of `lrtq_rack(5, 11)`'s data of sled 1, as this build
/// writes it (the fixture's rack comes from the same seed).
fn lrtq_data_of_sled_1() -> Vec<u8> {
    let (data, _) = lrtq_rack(5, 11);
    let mut buf = vec![0; MAX_LRTQ_SHARE_DATA_LEN];
    wire::encode_lrtq_share_data(&data[1], &mut buf)
        .unwrap()
        .to_vec()
}

fn encode_state(state: &PersistentState) -> Vec<u8> {
    let mut buf = vec![0; MAX_PERSISTENT_STATE_LEN];
    wire::encode_persistent_state(state, &mut buf)
        .unwrap()
        .to_vec()
}

/// What the fixture's state must hold.
fn assert_fixture_content(state: &PersistentState) {
    let lrtq = state.lrtq().expect("LRTQ data kept after the upgrade");
    assert_eq!(lrtq.rack_id, RACK);
    assert_eq!(lrtq.threshold, LrtqThreshold::new(3).unwrap());
    let mut buf = vec![0; MAX_LRTQ_SHARE_DATA_LEN];
    assert_eq!(
        wire::encode_lrtq_share_data(lrtq, &mut buf).unwrap(),
        lrtq_data_of_sled_1(),
        "the LRTQ share data, share included"
    );

    let epochs: Vec<Epoch> = state
        .fields()
        .configs
        .iter()
        .map(|c| c.config.epoch())
        .collect();
    // Epoch 2 was dropped once epoch 3 committed.
    assert_eq!(epochs, [Epoch(3)]);
    assert_eq!(state.latest_committed_epoch(), Some(Epoch(3)));
    assert!(state.is_committed(Epoch(2)));
    assert!(state.expunged().is_none());
    for stored in &state.fields().configs {
        let config = &stored.config;
        assert_eq!(config.threshold(), Threshold::new(3).unwrap());
        assert_eq!(config.rack_id(), RACK);
        assert_eq!(config.coordinator(), &sled(0));
        assert_eq!(config.members().len(), 6);
        assert!(config.is_member(&sled(1)));
        assert!(config.encrypted_rack_secrets().is_some());
        let share = stored.share.as_ref().expect("sled 1 holds its share");
        assert_eq!(Some(share.x()), config.x_coordinate(&sled(1)));
        let digest = config.share_digest(&sled(1)).unwrap();
        assert!(
            bool::from(share.matches(digest)),
            "the share matches its digest"
        );
    }
}

#[test]
fn the_v1_persistent_state_decodes_to_what_was_written() {
    let state = wire::decode_persistent_state(STATE_V1).unwrap();
    assert_fixture_content(&state);
}

#[test]
fn the_v1_persistent_state_restores_into_a_context_and_encodes_back_the_same() {
    let mut ctx = NodeCtx::new(sled(1));
    ctx.restore_state(STATE_V1).unwrap();
    assert_fixture_content(ctx.persistent_state());
    assert_eq!(encode_state(ctx.persistent_state()), STATE_V1);
}

/// Storage read a page at a time, as a service processor reads flash.
struct Flash<'a>(&'a [u8]);

impl PageReader for Flash<'_> {
    type Error = ();

    fn read(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), ()> {
        let bytes = self.0.get(offset..offset + buf.len()).ok_or(())?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

#[test]
fn the_v1_persistent_state_decodes_from_paged_storage() {
    let mut state = PersistentState::new();
    decode_persistent_state_from(&mut Flash(STATE_V1), STATE_V1.len(), &mut state).unwrap();
    assert_fixture_content(&state);
}

#[test]
fn the_v1_lrtq_share_data_decodes_and_restores() {
    let data = wire::decode_lrtq_share_data(LRTQ_V1).unwrap();
    assert_eq!(data.rack_id, RACK);
    assert_eq!(LRTQ_V1, lrtq_data_of_sled_1());
    let mut ctx = NodeCtx::new(sled(1));
    ctx.restore_lrtq(LRTQ_V1).unwrap();
    assert_eq!(ctx.persistent_state().lrtq().map(|l| l.rack_id), Some(RACK));
}
