//! `MemberSet` sorts its ids with its own insertion sort (no panic path, at
//! most 32 ids): it must agree with the standard library's sort on every
//! list, and refuse exactly the lists with a repeat.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use proptest::prelude::*;
use tq_core::ids::{PlatformId, SLED_PART_NUMBER};
use tq_core::limits::MAX_MEMBERS;
use tq_core::member_set::{MemberSet, MemberSetError};

/// Ids from a small alphabet, so that lists share prefixes and repeat.
fn id() -> impl Strategy<Value = PlatformId> {
    ("[ab]{0,2}", "[0-2]{1,3}").prop_map(|(part, serial)| {
        PlatformId::new(&format!("913-{part}"), &serial).expect("valid platform id")
    })
}

proptest! {
    #[test]
    fn sorts_like_the_standard_library_and_refuses_repeats(
        ids in proptest::collection::vec(id(), 0..=MAX_MEMBERS),
    ) {
        let mut expected = ids.clone();
        expected.sort();
        let has_repeat = expected.windows(2).any(|pair| pair[0] == pair[1]);
        match MemberSet::new(&ids) {
            Ok(set) => {
                prop_assert!(!has_repeat);
                prop_assert_eq!(set.as_slice(), &expected[..]);
            }
            Err(error) => {
                prop_assert!(has_repeat);
                prop_assert_eq!(error, MemberSetError::Duplicate);
            }
        }
    }
}

#[test]
fn sorts_the_worst_case_a_reversed_full_list() {
    let ids: Vec<PlatformId> = (0..MAX_MEMBERS)
        .rev()
        .map(|i| PlatformId::new(SLED_PART_NUMBER, &format!("{i:0>4}")).unwrap())
        .collect();
    let set = MemberSet::new(&ids).unwrap();
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(set.as_slice(), &expected[..]);
}
