//! Bytes in, validated types out, and back (PROTOCOL.md section 5).
//!
//! Every encoding is one format-version byte followed by the postcard
//! encoding of the value. Decoding is total: any byte string gives a valid
//! value or a [`WireError`], never a panic, and uses no memory beyond the
//! value itself, whose size is fixed by the bounds in [`crate::limits`].
//! Each encodable type has a `MAX_*_LEN` constant so callers can size their
//! buffers; tests encode the largest value of each and check it fits exactly.
//!
//! Decoding is canonical: bytes are accepted only if they are exactly what
//! the encoder writes for the value they decode to, so a non-minimal varint
//! or a member list out of order is [`WireError::Malformed`], and the
//! 64-bit host and the 32-bit service processor accept the same bytes.
//! Every decoder ends with that check (`canonical.rs`, through `accept`);
//! `core/tests/vectors/wire.txt` holds hand-written encodings with their
//! outcomes, run on the host and on the service processor's CPU.
//!
//! # Versions
//!
//! Each encoding has its own version, a constant next to its encoder, so
//! that one changes without the others (a new ledger format is no new peer
//! protocol):
//!
//! | encoding | version | who reads it |
//! |---|---|---|
//! | peer messages | [`PEER_MSG_VERSION`] | the other sleds, maybe of another build |
//! | the persistent state | [`PERSISTENT_STATE_VERSION`] | this sled, after a reboot into maybe another build |
//! | LRTQ share data | [`LRTQ_SHARE_DATA_VERSION`] | this sled, from the LRTQ ledger |
//! | Nexus's requests and answers | [`NEXUS_VERSION`] | Nexus, and a node for the requests |
//!
//! A decoder refuses a version it does not read as
//! [`WireError::UnsupportedVersion`], except where it reads older ones too:
//! the persistent state's decoders dispatch on the version byte, so that a
//! sled keeps its state across a format change.
//!
//! # Changing the persistent state's format
//!
//! A sled must open the state an older build stored. To change what is
//! persisted (a field of [`PersistentState`] or of anything in it,
//! configurations and LRTQ data included):
//!
//! 1. Freeze the version being replaced, `N`, in a module of its own
//!    (`persistent_vN.rs` here): its serde shape as types of their own,
//!    unchanged types reused (omicron's versioned types do the same). The
//!    state is too large to hold in two versions on the service
//!    processor's stack, so version `N` is decoded field by field into the
//!    current [`PersistentState`], as the in-place decoders of
//!    `in_place.rs` do: that conversion is the `From<vN>` of the new
//!    version. The canonical rule still holds: version `N` gets a
//!    `Serialize` view of a current state in `N`'s shape, and the decoder
//!    compares the stored bytes with it.
//! 2. Bump [`PERSISTENT_STATE_VERSION`], change the types, and add the arm
//!    for `N` to the version `match` of both decoders (a slice,
//!    [`decode_persistent_state_into`], and paged storage,
//!    [`decode_persistent_state_from`]).
//! 3. Keep `core/tests/fixtures/persistent_state_vN.bin` (see its README)
//!    and make `harness/tests/persisted_fixtures.rs` check that it still decodes to
//!    the same content; add a fixture of the new version.
//!
//! A state read in an older version is written in the new one at the
//! node's next change; from then on a build that reads only the older
//! version refuses it, so a build that can read the new version ships
//! before one that writes it if downgrades must keep working.

mod canonical;
mod chunked;
mod in_place;
mod nexus;
mod pages;
mod shares;
mod slot;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vector_tests;

use core::fmt;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeSeed;

use crate::api::{LrtqUpgradeMsg, ReconfigureMsg};
use crate::config::Configuration;
use crate::ids::RackId;
use crate::limits::{
    LRTQ_TOTAL_SHARES, MAX_MEMBERS, MAX_SEALED_LEN, MAX_STORED_CONFIGS, PLATFORM_ID_FIELD_LEN,
};
use crate::messages::{Body, Envelope, PeerMsg, PeerMsgRef, SmallPeerMsg};
use crate::persistent::{LrtqShareData, PersistentState};

pub use chunked::ChunkedEncodeError;
#[cfg(feature = "host")]
pub use nexus::decode_answer;
pub use nexus::{
    MAX_ANSWER_LEN, MAX_COMMIT_REQUEST_LEN, MAX_CONFIGURATION_LEN, MAX_COORDINATOR_STATUS_LEN,
    MAX_NODE_STATUS_LEN, NEXUS_VERSION, NexusWire, decode_commit_request, encode_nexus,
};
pub use pages::{PageReader, PagedError, decode_persistent_state_from};
pub use slot::{DecodeSlot, Fillable};

/// Why bytes could not be decoded, or a value not encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// No bytes at all.
    Empty,
    /// The version byte names a format this build does not read.
    UnsupportedVersion(u8),
    /// The bytes are not a valid encoding of the expected type (including
    /// values that break a rule of the type, such as a duplicated member or
    /// a non-printable platform id, and encodings that are not the
    /// canonical one, such as a non-minimal varint or an unsorted member
    /// list).
    Malformed,
    /// A valid value followed by extra bytes.
    TrailingBytes,
    /// The output buffer is too small (never with a `MAX_*_LEN` buffer).
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no bytes to decode"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported wire format version {v}"),
            Self::Malformed => f.write_str("malformed encoding"),
            Self::TrailingBytes => f.write_str("trailing bytes after the value"),
            Self::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl core::error::Error for WireError {}

// Worst-case postcard sizes of the parts, from which each maximum is built.
// Postcard writes integers above u8 as varints (a u64 takes up to 10 bytes,
// a length below 128 one byte) and fixed arrays as their bytes.
const VERSION_LEN: usize = 1;
const TAG_LEN: usize = 1;
const OPTION_LEN: usize = 1;
const EPOCH_LEN: usize = 10;
const RACK_ID_LEN: usize = 16;
const DIGEST_LEN: usize = 32;
const SHARE_LEN: usize = 1 + 32;
const LRTQ_SHARE_LEN: usize = 1 + 32;
const fn varint_len(max: usize) -> usize {
    let mut len = 1;
    let mut rest = max >> 7;
    while rest > 0 {
        len += 1;
        rest >>= 7;
    }
    len
}
const PLATFORM_ID_LEN: usize = 2 * (varint_len(PLATFORM_ID_FIELD_LEN) + PLATFORM_ID_FIELD_LEN);
const MEMBER_LEN: usize = PLATFORM_ID_LEN + DIGEST_LEN;
const SEALED_LEN: usize = 32 + varint_len(MAX_SEALED_LEN) + MAX_SEALED_LEN;
const CONFIG_LEN: usize = RACK_ID_LEN
    + EPOCH_LEN
    + PLATFORM_ID_LEN
    + varint_len(MAX_MEMBERS)
    + MAX_MEMBERS * MEMBER_LEN
    + 1 // threshold
    + OPTION_LEN
    + SEALED_LEN;
const MEMBER_SET_LEN: usize = varint_len(MAX_MEMBERS) + MAX_MEMBERS * PLATFORM_ID_LEN;
const STORED_CONFIG_LEN: usize = CONFIG_LEN + OPTION_LEN + SHARE_LEN;
const LRTQ_DATA_LEN: usize = RACK_ID_LEN
    + 1 // threshold
    + LRTQ_SHARE_LEN
    + varint_len(LRTQ_TOTAL_SHARES)
    + LRTQ_TOTAL_SHARES * DIGEST_LEN;

/// Largest encoded peer message: a `Prepare` with a full configuration.
pub const MAX_PEER_MSG_LEN: usize =
    VERSION_LEN + RACK_ID_LEN + TAG_LEN + CONFIG_LEN + SHARE_LEN + OPTION_LEN + EPOCH_LEN;

/// Largest encoded [`PersistentState`].
pub const MAX_PERSISTENT_STATE_LEN: usize = VERSION_LEN
    + OPTION_LEN
    + LRTQ_DATA_LEN
    + varint_len(MAX_STORED_CONFIGS)
    + MAX_STORED_CONFIGS * STORED_CONFIG_LEN
    + OPTION_LEN
    + EPOCH_LEN
    + OPTION_LEN
    + EPOCH_LEN
    + PLATFORM_ID_LEN;

/// Largest encoded [`ReconfigureMsg`].
pub const MAX_RECONFIGURE_MSG_LEN: usize =
    VERSION_LEN + RACK_ID_LEN + EPOCH_LEN + OPTION_LEN + EPOCH_LEN + MEMBER_SET_LEN + 1;

/// Largest encoded [`LrtqUpgradeMsg`].
pub const MAX_LRTQ_UPGRADE_MSG_LEN: usize =
    VERSION_LEN + RACK_ID_LEN + EPOCH_LEN + MEMBER_SET_LEN + 1;

/// Largest encoded [`LrtqShareData`].
pub const MAX_LRTQ_SHARE_DATA_LEN: usize = VERSION_LEN + LRTQ_DATA_LEN;

/// Encodes `value` after its encoding's `version` byte.
pub(crate) fn encode<'b, T: Serialize + ?Sized>(
    value: &T,
    version: u8,
    buf: &'b mut [u8],
) -> Result<&'b [u8], WireError> {
    chunked::encode_into(value, version, buf)
}

/// serde's derived decoding, under the same canonical rule: the decoder of
/// small values and of Nexus's answers, and in tests the oracle the
/// in-place decoders are checked against.
pub(crate) fn decode<'de, T: Deserialize<'de> + Serialize>(
    bytes: &'de [u8],
    version: u8,
) -> Result<T, WireError> {
    let body = body(bytes, version)?;
    let (value, rest) = postcard::take_from_bytes(body).map_err(|_| WireError::Malformed)?;
    accept(Read::of(bytes, version, rest), &value)?;
    Ok(value)
}

/// The version byte of `bytes`.
fn version_of(bytes: &[u8]) -> Result<u8, WireError> {
    bytes.first().copied().ok_or(WireError::Empty)
}

/// The postcard part of `bytes`, after the version byte `version`.
fn body(bytes: &[u8], version: u8) -> Result<&[u8], WireError> {
    match bytes.split_first() {
        Some((&read, body)) if read == version => Ok(body),
        Some((&read, _)) => Err(WireError::UnsupportedVersion(read)),
        None => Err(WireError::Empty),
    }
}

/// What a decoder read: the value's encoding (its version byte included),
/// and whether bytes were left after it.
struct Read<'a> {
    version: u8,
    encoding: &'a [u8],
    trailing: bool,
}

impl<'a> Read<'a> {
    /// `bytes`, of version `version`, read up to `rest`, a suffix of it.
    fn of(bytes: &'a [u8], version: u8, rest: &[u8]) -> Self {
        let used = bytes.len().saturating_sub(rest.len());
        Self {
            version,
            encoding: bytes.get(..used).unwrap_or(bytes),
            trailing: !rest.is_empty(),
        }
    }
}

/// Runs `seed`, which writes the value into storage it borrows, over
/// `bytes` of version `version`; the caller then passes the value to
/// [`accept`].
fn decode_with<'de, S: DeserializeSeed<'de, Value = ()>>(
    bytes: &'de [u8],
    version: u8,
    seed: S,
) -> Result<Read<'de>, WireError> {
    let mut deserializer = postcard::Deserializer::from_bytes(body(bytes, version)?);
    seed.deserialize(&mut deserializer)
        .map_err(|_| WireError::Malformed)?;
    let rest = deserializer.finalize().map_err(|_| WireError::Malformed)?;
    Ok(Read::of(bytes, version, rest))
}

/// The last step of every decoder: `value`, just decoded, is accepted if
/// its encoding is canonical (see `canonical.rs`) and nothing follows it.
/// Canonicality is checked first, so that bytes the service processor
/// refuses inside postcard are `Malformed` on the host too.
fn accept<T: Serialize + ?Sized>(read: Read<'_>, value: &T) -> Result<(), WireError> {
    canonical::check(value, read.version, read.encoding)?;
    if read.trailing {
        Err(WireError::TrailingBytes)
    } else {
        Ok(())
    }
}

/// The version of the peer messages this build sends and reads.
pub const PEER_MSG_VERSION: u8 = 1;

/// Encodes a peer message into `buf`, returning the bytes written.
pub fn encode_peer_msg<'b>(msg: &PeerMsgRef<'_>, buf: &'b mut [u8]) -> Result<&'b [u8], WireError> {
    encode(msg, PEER_MSG_VERSION, buf)
}

/// Decodes a peer message.
pub fn decode_peer_msg(bytes: &[u8]) -> Result<PeerMsg, WireError> {
    let mut msg = empty_peer_msg();
    decode_peer_msg_into(bytes, &mut msg)?;
    Ok(msg)
}

/// A message for [`decode_peer_msg_into`] to overwrite.
pub(crate) const fn empty_peer_msg() -> PeerMsg {
    Envelope {
        rack_id: RackId([0; 16]),
        body: Body::GetLrtqShare,
    }
}

/// A message for [`decode_small_peer_msg_into`] to overwrite.
pub(crate) const fn empty_small_peer_msg() -> SmallPeerMsg {
    Envelope {
        rack_id: RackId([0; 16]),
        body: Body::GetLrtqShare,
    }
}

/// Decodes a peer message that carries no configuration into `msg` (about
/// 100 bytes). A `Prepare` or `CommitAdvance` is refused as `Malformed`:
/// [`decode_peer_msg_into`] decodes every message, and decides what is
/// malformed. After an error `msg` may hold a partly decoded message:
/// discard it.
pub(crate) fn decode_small_peer_msg_into(
    bytes: &[u8],
    msg: &mut SmallPeerMsg,
) -> Result<(), WireError> {
    let read = decode_with(bytes, PEER_MSG_VERSION, in_place::PeerMsgInto(msg))?;
    accept(read, &msg.as_peer_msg_ref())
}

/// Decodes a peer message into `msg`, a configuration in it in place (a
/// message is about 4 KiB with one). After an error `msg` holds a partly
/// decoded message that may break its types' rules: discard it.
pub(crate) fn decode_peer_msg_into(bytes: &[u8], msg: &mut PeerMsg) -> Result<(), WireError> {
    let read = decode_with(bytes, PEER_MSG_VERSION, in_place::PeerMsgInto(msg))?;
    // Borrowed, as the node encodes what it sends: one encoder in flash.
    accept(read, &msg.as_ref())
}

/// The version of the persistent state this build writes. Its decoders
/// dispatch on the version they read: see the module doc for how a new
/// version keeps the older ones readable.
pub const PERSISTENT_STATE_VERSION: u8 = 1;

/// Encodes the persistent state into `buf`, returning the bytes written.
pub fn encode_persistent_state<'b>(
    state: &PersistentState,
    buf: &'b mut [u8],
) -> Result<&'b [u8], WireError> {
    encode(state, PERSISTENT_STATE_VERSION, buf)
}

/// Encodes the persistent state a chunk at a time, for a caller that
/// writes storage page by page instead of holding the whole encoding
/// ([`MAX_PERSISTENT_STATE_LEN`] bytes).
///
/// The encoding is gathered in `chunk` and handed to `sink` in order, each
/// call with a full chunk except maybe the last, never with an empty one;
/// their concatenation is exactly what [`encode_persistent_state`] writes.
/// Returns the total length handed over. The first error of `sink` stops
/// the encoding and is returned as [`ChunkedEncodeError::Sink`]; a
/// zero-length `chunk` is [`WireError::BufferTooSmall`].
pub fn encode_persistent_state_chunked<E>(
    state: &PersistentState,
    chunk: &mut [u8],
    sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<usize, ChunkedEncodeError<E>> {
    chunked::encode_chunked(state, PERSISTENT_STATE_VERSION, chunk, sink)
}

/// Decodes a persistent state, checking its invariants.
///
/// The state is about 20 KiB and is built on this call's stack; a caller
/// with a small stack restores its context's state in place with
/// [`crate::node::NodeCtx::restore_state`] (or decodes into storage it
/// owns with [`decode_persistent_state_into`]).
pub fn decode_persistent_state(bytes: &[u8]) -> Result<PersistentState, WireError> {
    let mut state = PersistentState::new();
    decode_persistent_state_into(bytes, &mut state)?;
    Ok(state)
}

/// Decodes a persistent state into `state`, checking its invariants, with
/// at most one stored configuration's worth of data in flight on the stack.
/// On an error `state` is left empty (as [`PersistentState::new`]).
pub fn decode_persistent_state_into(
    bytes: &[u8],
    state: &mut PersistentState,
) -> Result<(), WireError> {
    let decoded = match version_of(bytes) {
        Ok(PERSISTENT_STATE_VERSION) => {
            decode_with(bytes, PERSISTENT_STATE_VERSION, in_place::StateInto(state))
                .and_then(|read| accept(read, state))
        }
        // An older version's arm goes here (module doc).
        Ok(other) => Err(WireError::UnsupportedVersion(other)),
        Err(error) => Err(error),
    };
    if decoded.is_err() {
        state.clear();
    }
    decoded
}

/// Decodes a reconfiguration request into `slot`, in place (about 2 KiB
/// with a full member set); the request is there only if this succeeds.
pub fn decode_reconfigure_msg_into<'s>(
    bytes: &[u8],
    slot: &'s mut DecodeSlot<ReconfigureMsg>,
) -> Result<&'s ReconfigureMsg, WireError> {
    slot.fill(|msg| {
        decode_with(bytes, NEXUS_VERSION, in_place::ReconfigureInto(msg))
            .and_then(|read| accept(read, msg))
    })
}

/// Decodes an LRTQ upgrade request into `slot`, in place; the request is
/// there only if this succeeds.
pub fn decode_lrtq_upgrade_msg_into<'s>(
    bytes: &[u8],
    slot: &'s mut DecodeSlot<LrtqUpgradeMsg>,
) -> Result<&'s LrtqUpgradeMsg, WireError> {
    slot.fill(|msg| {
        decode_with(bytes, NEXUS_VERSION, in_place::LrtqUpgradeInto(msg))
            .and_then(|read| accept(read, msg))
    })
}

/// Decodes a configuration (the request of `prepare_and_commit`) into
/// `slot`, in place (about 4 KiB); it is there only if this succeeds.
pub fn decode_configuration_into<'s>(
    bytes: &[u8],
    slot: &'s mut DecodeSlot<Configuration>,
) -> Result<&'s Configuration, WireError> {
    slot.fill(|config| {
        decode_with(bytes, NEXUS_VERSION, in_place::ConfigInto(config))
            .and_then(|read| accept(read, config))
    })
}

/// The version of the LRTQ share data this build writes and reads.
pub const LRTQ_SHARE_DATA_VERSION: u8 = 1;

/// Encodes LRTQ share data.
pub fn encode_lrtq_share_data<'b>(
    data: &LrtqShareData,
    buf: &'b mut [u8],
) -> Result<&'b [u8], WireError> {
    encode(data, LRTQ_SHARE_DATA_VERSION, buf)
}

/// Decodes LRTQ share data.
///
/// The data is about 8 KiB and is built on this call's stack; a caller
/// with a small stack decodes it into its context's state in place with
/// [`crate::node::NodeCtx::restore_lrtq`].
pub fn decode_lrtq_share_data(bytes: &[u8]) -> Result<LrtqShareData, WireError> {
    let mut data = None;
    decode_lrtq_share_data_into(bytes, &mut data)?;
    // A successful decode always fills the slot.
    data.ok_or(WireError::Malformed)
}

/// Decodes LRTQ share data into `slot` in place, with at most one small
/// field in flight on the stack. On an error `slot` is left `None`.
pub(crate) fn decode_lrtq_share_data_into(
    bytes: &[u8],
    slot: &mut Option<LrtqShareData>,
) -> Result<(), WireError> {
    let decoded = decode_with(bytes, LRTQ_SHARE_DATA_VERSION, in_place::LrtqDataInto(slot))
        .and_then(|read| {
            // A successful decode always fills the slot.
            accept(read, slot.as_ref().ok_or(WireError::Malformed)?)
        });
    if decoded.is_err() {
        *slot = None;
    }
    decoded
}
