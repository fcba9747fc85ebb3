//! Storage that large values are decoded into in place.
//!
//! A [`DecodeSlot`] holds a value only once a decode into it passed every
//! check of the value's type: before that, and after a failed decode, it
//! yields nothing, so no caller can read a half-written or unchecked value.
//! It is `const`-constructible, so firmware keeps one in a `static`.

use crate::api::{LrtqUpgradeMsg, ReconfigureMsg};
use crate::config::Configuration;
use crate::ids::{Epoch, RackId, Threshold};
use crate::member_set::MemberSet;

/// A place to decode a `T` into (see the module doc).
pub struct DecodeSlot<T: Fillable> {
    value: T,
    filled: bool,
}

impl<T: Fillable> DecodeSlot<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        Self {
            value: T::UNFILLED,
            filled: false,
        }
    }

    /// The value of the last successful decode, if the last decode
    /// succeeded.
    pub fn get(&self) -> Option<&T> {
        self.filled.then_some(&self.value)
    }

    /// Lets `decode` write the value in place; the slot yields it only if
    /// `decode` succeeds (it checks the value's rules itself).
    pub(crate) fn fill<E>(
        &mut self,
        decode: impl FnOnce(&mut T) -> Result<(), E>,
    ) -> Result<&T, E> {
        self.filled = false;
        decode(&mut self.value)?;
        self.filled = true;
        Ok(&self.value)
    }
}

impl<T: Fillable> Default for DecodeSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A type that can be decoded into a [`DecodeSlot`]: it has a placeholder
/// value to start from. Only this crate's types implement it.
pub trait Fillable: sealed::Sealed + Sized {
    /// The placeholder: writes only lengths, so it costs no stack copy.
    #[doc(hidden)]
    const UNFILLED: Self;
}

mod sealed {
    pub trait Sealed {}
}

impl sealed::Sealed for ReconfigureMsg {}
impl Fillable for ReconfigureMsg {
    const UNFILLED: Self = Self {
        rack_id: RackId([0; 16]),
        epoch: Epoch(0),
        last_committed_epoch: None,
        members: MemberSet::new_empty(),
        threshold: Threshold::UNFILLED,
    };
}

impl sealed::Sealed for LrtqUpgradeMsg {}
impl Fillable for LrtqUpgradeMsg {
    const UNFILLED: Self = Self {
        rack_id: RackId([0; 16]),
        epoch: Epoch(0),
        members: MemberSet::new_empty(),
        threshold: Threshold::UNFILLED,
    };
}

impl sealed::Sealed for Configuration {}
impl Fillable for Configuration {
    const UNFILLED: Self = Configuration::unfilled();
}
