//! Nexus's authority as a cryptographic fact: every Nexus request carries
//! a tag the target node checks before it acts, and every answer Nexus
//! acts on carries a tag Nexus checks before it counts it.
//!
//! # Keys
//!
//! Nexus holds one [`NexusAuthorityKey`] (32 random bytes). Each sled's
//! [`SledRequestKey`] is derived from it with HKDF-SHA3-256:
//!
//! ```text
//! HKDF-SHA3-256(salt = none, ikm = authority key,
//!               info = "trust-quorum-v1-nexus-authority" || rack id (16 bytes)
//!                      || the sled's PlatformId (postcard, no version byte))
//! ```
//!
//! Nexus derives a sled's key when it needs it; a sled holds only its own,
//! handed to its node's context at boot ([`crate::node::NodeCtx::set_request_key`]),
//! never stored in the persistent state. A sled's key authenticates
//! requests to that sled and its answers back, nothing else: a sled
//! holding its key can forge requests to itself only.
//!
//! # Requests
//!
//! A [`RequestAuth`] travels with each request (made by
//! [`SledRequestKey::authorize`]):
//!
//! ```text
//! tag = HMAC-SHA3-256(sled key of target,
//!         "trust-quorum-v1-request" || rack id || target (postcard)
//!         || call (1 byte, NexusCall) || nonce (16 bytes) || body)
//! ```
//!
//! `body` is the request's Nexus encoding ([`crate::wire::encode_nexus`]:
//! the version byte, then postcard), empty for the calls that carry none
//! ([`CoordinatorStatusQuery`], [`NodeStatusQuery`], [`LatestSecretQuery`]).
//! The call is fixed by the body's type ([`NexusRequest::CALL`]), so a tag
//! made for one call never passes for another.
//!
//! The node checks, in this order, and refuses with a [`RequestRefusal`]
//! (each counted by its own anomaly counter, [`RequestRefusal::counter`]):
//! the rack (the authenticator's and the body's must be this node's:
//! [`RequestRefusal::ForeignRack`], before any MAC work), the target
//! ([`RequestRefusal::WrongTarget`]), that the node has a key
//! ([`RequestRefusal::NoKey`]), and the tag, compared in constant time
//! ([`RequestRefusal::BadTag`]). What passes is a [`Verified`] request,
//! which only this module makes (its constructor is private), and which
//! every Nexus-facing call of [`crate::node::Node`] takes: no caller can
//! reach one without the check. The one checker callers see is
//! [`crate::node::NodeCtx::verify_request`], against the key the context
//! holds; a caller with a key of its own choosing cannot make a
//! [`Verified`].
//!
//! # Answers
//!
//! The node that ran a call tags its answer ([`AnswerTag`], made by
//! [`crate::node::NodeCtx::tag_answer`]):
//!
//! ```text
//! tag = HMAC-SHA3-256(sled key, "trust-quorum-v1-answer" || rack id
//!         || this sled (postcard) || call || the request's nonce || answer)
//! ```
//!
//! `answer` is the Nexus encoding of the call's whole `Result` (or of the
//! status value). Nexus checks it with [`SledRequestKey::verify_answer`]
//! (or [`SledRequestKey::verify_answer_bytes`] over the bytes it
//! received) before it counts an ack or a commit: a relaying sled or the
//! link cannot alter an answer, nor pass an old one off as the answer to a
//! new request.
//!
//! # Why a replayed request is harmless
//!
//! A replayed request is indistinguishable from the original delivered late
//! or twice, and every Nexus call is safe under delay and duplication
//! (PROTOCOL.md section 6; the harness and the model checker deliver Nexus
//! calls repeatedly, and the replay test below delivers them late), for
//! these reasons:
//!
//! - `coordinate_reconfiguration` and `coordinate_upgrade_from_lrtq` name
//!   an epoch, and the node's own checks (`node::validate`) refuse a stale
//!   one: a reconfiguration whose `last_committed_epoch` is not the node's
//!   latest commit (`LastCommittedEpochMismatch`: any commit since the
//!   request was made), or whose epoch is not above every epoch the node
//!   stores, prepared or committed (`EpochNotNewer`), so a replay for an
//!   epoch older than one the node has only prepared is refused too; an
//!   upgrade once anything is committed (`AlreadyCommitted`) or not above
//!   every epoch stored or coordinated here (`EpochNotNewer`). The request
//!   already running is a no-op (`AlreadyRunning`), an older one while a
//!   newer runs is refused (`NewerCoordinationRunning`). What passes is a
//!   request for an epoch above everything the node has seen, after
//!   exactly the commit the node holds: a late delivery Nexus's own
//!   retries make as well (a coordinator that crashed before storing
//!   anything is asked again). Its prepares are refused by every node that
//!   has seen a newer prepare or commit, and Nexus, which moved past that
//!   epoch, never commits it.
//! - `commit_configuration` and `prepare_and_commit` only ever assert what
//!   Nexus already committed: a node commits only a configuration it
//!   prepared or is handed whole, and refuses one older than its latest
//!   commit.
//! - The coordinator status, the node status and the secret load change
//!   nothing a caller sees.
//!
//! A replay cannot be retargeted (rack and target are under the tag) and
//! cannot pass for a newer answer: answers are bound to the request's
//! nonce, which Nexus draws fresh for each call from its random source.
//! The harness's replay test delivers every Nexus request of a whole run
//! again, in random order, after the run, and checks that nothing but the
//! counters changes.
//!
//! # Secrets
//!
//! Both keys zeroize on drop and show nothing of their bytes in `Debug`.
//! HMAC's running state (in the hmac crate, on the stack for the length of
//! one call) is not zeroized by that crate; it holds the key XORed with a
//! public pad.

use core::fmt;

use hkdf::SimpleHkdf;
use hmac::{KeyInit, Mac, SimpleHmac};
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sha3::Sha3_256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::api::{CommitRequest, Counter, LrtqUpgradeMsg, ReconfigureMsg};
use crate::config::Configuration;
use crate::crypto::RngError;
use crate::crypto::random;
use crate::ids::{PlatformId, RackId};
use crate::wire::{self, NEXUS_VERSION, NexusWire, WireError};

/// The start of a sled request key's HKDF info string.
pub const KEY_CONTEXT: &[u8] = b"trust-quorum-v1-nexus-authority";
/// The start of every request tag's MAC input.
pub const REQUEST_CONTEXT: &[u8] = b"trust-quorum-v1-request";
/// The start of every answer tag's MAC input.
pub const ANSWER_CONTEXT: &[u8] = b"trust-quorum-v1-answer";

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of a request's nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes of a request or answer tag.
pub const TAG_LEN: usize = 32;

/// Hands a value's encoding to a sink: how the MACs are fed, behind one
/// type, so that each MAC's code is in flash once, not once per value type.
type Feed<'a> = &'a mut dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<(), WireError>;

/// HMAC-SHA3-256. `SimpleHmac`: sha3 0.12 offers no block-level core, which
/// the eager `Hmac` needs; the MAC is the same.
type HmacSha3 = SimpleHmac<Sha3_256>;

/// Nexus's authority key: every sled's request key derives from it.
/// Zeroized on drop; `Debug` shows nothing of it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct NexusAuthorityKey([u8; KEY_LEN]);

impl NexusAuthorityKey {
    /// A fresh key from `rng`.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, RngError> {
        let mut key = Self([0; KEY_LEN]);
        random::fill(rng, &mut key.0)?;
        Ok(key)
    }

    /// The key whose bytes are `bytes` (read back from Nexus's key file).
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, to write to Nexus's key file (mode 0600) and
    /// nowhere else.
    pub const fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The request key of sled `sled` of rack `rack_id` (see the module
    /// doc).
    pub fn sled_key(
        &self,
        rack_id: RackId,
        sled: &PlatformId,
    ) -> Result<SledRequestKey, WireError> {
        let mut id = heapless::Vec::<u8, { wire::PLATFORM_ID_LEN }>::new();
        let mut full = false;
        wire::feed(sled, None, |bytes| {
            full |= id.extend_from_slice(bytes).is_err();
        })?;
        if full {
            return Err(WireError::BufferTooSmall);
        }
        let hkdf = SimpleHkdf::<Sha3_256>::new(None, &self.0);
        let mut key = SledRequestKey {
            rack_id,
            key: [0; KEY_LEN],
        };
        // Fails only for outputs over 255 hash lengths; ours is one.
        hkdf.expand_multi_info(&[KEY_CONTEXT, rack_id.as_bytes(), &id], &mut key.key)
            .map_err(|_| WireError::BufferTooSmall)?;
        Ok(key)
    }
}

impl fmt::Debug for NexusAuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NexusAuthorityKey(..)")
    }
}

/// One sled's request key, for the rack it was derived for: Nexus makes
/// the sled's request tags and checks its answer tags with it, the sled's
/// node checks the requests and tags its answers. Zeroized on drop;
/// `Debug` shows only the rack.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SledRequestKey {
    #[zeroize(skip)]
    rack_id: RackId,
    key: [u8; KEY_LEN],
}

impl SledRequestKey {
    /// The key `key` of a sled of rack `rack_id` (read back from the
    /// sled's key file).
    pub const fn from_bytes(rack_id: RackId, key: [u8; KEY_LEN]) -> Self {
        Self { rack_id, key }
    }

    /// The rack the key was derived for.
    pub const fn rack_id(&self) -> RackId {
        self.rack_id
    }

    /// The key's bytes, to write to the sled's key file (mode 0600) and
    /// nowhere else.
    pub const fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The authenticator of request `body` to sled `target` (whose key
    /// this is), under `nonce`, which the caller draws fresh for each call.
    pub fn authorize<T: NexusRequest + ?Sized>(
        &self,
        target: &PlatformId,
        nonce: [u8; NONCE_LEN],
        body: &T,
    ) -> Result<RequestAuth, WireError> {
        let mut feed = |sink: &mut dyn FnMut(&[u8])| body.feed_body(sink);
        let mac = self.request_mac(self.rack_id, target, T::CALL, &nonce, &mut feed)?;
        Ok(RequestAuth {
            rack_id: self.rack_id,
            target: target.clone(),
            nonce,
            tag: mac.finalize().into_bytes().into(),
        })
    }

    /// The tag of `answer`, given by sled `sled` (whose key this is) to the
    /// `call` made with `nonce`.
    pub fn answer_tag<A: NexusWire + ?Sized>(
        &self,
        sled: &PlatformId,
        call: NexusCall,
        nonce: &[u8; NONCE_LEN],
        answer: &A,
    ) -> Result<AnswerTag, WireError> {
        let mut feed = |sink: &mut dyn FnMut(&[u8])| wire::feed(answer, Some(NEXUS_VERSION), sink);
        self.answer_tag_fed(sled, call, nonce, &mut feed)
    }

    /// [`Self::answer_tag`] past the answer's type: one copy in flash, not
    /// one per answer type.
    #[inline(never)]
    fn answer_tag_fed(
        &self,
        sled: &PlatformId,
        call: NexusCall,
        nonce: &[u8; NONCE_LEN],
        feed: Feed<'_>,
    ) -> Result<AnswerTag, WireError> {
        let mut mac = self.answer_mac(sled, call, nonce)?;
        feed(&mut |bytes| mac.update(bytes))?;
        Ok(AnswerTag(mac.finalize().into_bytes().into()))
    }

    /// Whether `tag` is sled `sled`'s tag of `answer` to the `call` made
    /// with `nonce` (compared in constant time).
    pub fn verify_answer<A: NexusWire + ?Sized>(
        &self,
        sled: &PlatformId,
        call: NexusCall,
        nonce: &[u8; NONCE_LEN],
        answer: &A,
        tag: &AnswerTag,
    ) -> Result<(), BadAnswerTag> {
        let mut mac = self
            .answer_mac(sled, call, nonce)
            .map_err(|_| BadAnswerTag)?;
        wire::feed(answer, Some(NEXUS_VERSION), |bytes| mac.update(bytes))
            .map_err(|_| BadAnswerTag)?;
        mac.verify_slice(&tag.0).map_err(|_| BadAnswerTag)
    }

    /// [`Self::verify_answer`] over the answer's encoding as received
    /// (version byte included): the bytes a proxy frame carries.
    pub fn verify_answer_bytes(
        &self,
        sled: &PlatformId,
        call: NexusCall,
        nonce: &[u8; NONCE_LEN],
        answer: &[u8],
        tag: &AnswerTag,
    ) -> Result<(), BadAnswerTag> {
        let mut mac = self
            .answer_mac(sled, call, nonce)
            .map_err(|_| BadAnswerTag)?;
        mac.update(answer);
        mac.verify_slice(&tag.0).map_err(|_| BadAnswerTag)
    }

    fn mac(&self) -> Result<HmacSha3, WireError> {
        // HMAC takes keys of any length: this cannot fail (`Malformed`
        // stands for the impossible, as it does for an encoder's failure).
        HmacSha3::new_from_slice(&self.key).map_err(|_| WireError::Malformed)
    }

    #[inline(never)]
    fn request_mac(
        &self,
        rack_id: RackId,
        target: &PlatformId,
        call: NexusCall,
        nonce: &[u8; NONCE_LEN],
        body: Feed<'_>,
    ) -> Result<HmacSha3, WireError> {
        let mut mac = self.mac()?;
        mac.update(REQUEST_CONTEXT);
        mac.update(rack_id.as_bytes());
        wire::feed(target, None, |bytes| mac.update(bytes))?;
        mac.update(&[call as u8]);
        mac.update(nonce);
        body(&mut |bytes| mac.update(bytes))?;
        Ok(mac)
    }

    #[inline(never)]
    fn answer_mac(
        &self,
        sled: &PlatformId,
        call: NexusCall,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<HmacSha3, WireError> {
        let mut mac = self.mac()?;
        mac.update(ANSWER_CONTEXT);
        mac.update(self.rack_id.as_bytes());
        wire::feed(sled, None, |bytes| mac.update(bytes))?;
        mac.update(&[call as u8]);
        mac.update(nonce);
        Ok(mac)
    }
}

impl fmt::Debug for SledRequestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledRequestKey")
            .field("rack_id", &self.rack_id)
            .finish_non_exhaustive()
    }
}

/// The Nexus-facing calls, as the one byte the tags cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[repr(u8)]
pub enum NexusCall {
    /// `coordinate_reconfiguration`.
    Reconfigure = 1,
    /// `coordinate_upgrade_from_lrtq`.
    UpgradeFromLrtq = 2,
    /// `commit_configuration`.
    Commit = 3,
    /// `prepare_and_commit`.
    PrepareAndCommit = 4,
    /// `coordinator_status`.
    CoordinatorStatus = 5,
    /// The node status Nexus acts on (proxied).
    NodeStatus = 6,
    /// The latest secret's load (the host's fingerprint endpoint).
    LoadLatestSecret = 7,
}

/// What Nexus sends with each request: which rack and sled it is for, a
/// fresh nonce, and the tag (see the module doc). In JSON the nonce and
/// the tag are lower-case hex.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RequestAuth {
    /// The rack.
    pub rack_id: RackId,
    /// The sled the request is for.
    pub target: PlatformId,
    /// Drawn fresh by Nexus for each call; the answer's tag covers it.
    #[serde(with = "crate::serde_forms::hex_array")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub nonce: [u8; NONCE_LEN],
    /// The request's tag.
    #[serde(with = "crate::serde_forms::hex_array")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub tag: [u8; TAG_LEN],
}

/// Equal when every field is; the tags are compared in constant time.
impl PartialEq for RequestAuth {
    fn eq(&self, other: &Self) -> bool {
        self.rack_id == other.rack_id
            && self.target == other.target
            && self.nonce == other.nonce
            && bool::from(self.tag.ct_eq(&other.tag))
    }
}

impl Eq for RequestAuth {}

/// The tag a node gives its answer (see the module doc). Lower-case hex in
/// JSON.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AnswerTag(
    #[serde(with = "crate::serde_forms::hex_array")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub [u8; TAG_LEN],
);

/// Compared in constant time.
impl PartialEq for AnswerTag {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for AnswerTag {}

/// An answer's tag did not match: the answer was altered, or not given by
/// the sled it names, or not to this request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BadAnswerTag;

impl fmt::Display for BadAnswerTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the answer's tag does not match")
    }
}

impl core::error::Error for BadAnswerTag {}

/// Why a node refused a Nexus request before acting on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RequestRefusal {
    /// The authenticator or the body names another rack than this node's.
    ForeignRack,
    /// The authenticator names another sled.
    WrongTarget,
    /// This node was given no request key: it refuses every Nexus call.
    NoKey,
    /// The tag does not match: the request was altered, or not made by
    /// Nexus.
    BadTag,
}

impl RequestRefusal {
    /// The anomaly counter the refusal is counted by.
    pub const fn counter(self) -> Counter {
        match self {
            Self::ForeignRack => Counter::RequestForeignRack,
            Self::WrongTarget => Counter::RequestWrongTarget,
            Self::NoKey => Counter::RequestNoKey,
            Self::BadTag => Counter::RequestBadTag,
        }
    }
}

impl fmt::Display for RequestRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ForeignRack => "the request is for another rack",
            Self::WrongTarget => "the request is for another sled",
            Self::NoKey => "this node has no request key",
            Self::BadTag => "the request's tag does not match",
        })
    }
}

impl core::error::Error for RequestRefusal {}

/// `coordinator_status`'s request, which carries no body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoordinatorStatusQuery;

/// The proxied node status's request, which carries no body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStatusQuery;

/// The latest secret load's request (the fingerprint endpoint), which
/// carries no body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatestSecretQuery;

mod sealed {
    pub trait Sealed {}
}

/// A Nexus request body: the call it is and the bytes the tag covers.
/// Sealed: only the requests of [`crate::api`] and the queries here are.
pub trait NexusRequest: sealed::Sealed {
    /// The call this body is the request of.
    const CALL: NexusCall;

    /// The rack the body names, if it names one.
    fn rack_id(&self) -> Option<RackId>;

    /// Hands the bytes the tag covers to `sink`: the Nexus encoding,
    /// version byte included, or nothing for a call with no body.
    fn feed_body(&self, sink: &mut dyn FnMut(&[u8])) -> Result<(), WireError>;
}

macro_rules! requests_with_body {
    ($($ty:ty => $call:ident, |$body:ident| $rack:expr;)+) => {$(
        impl sealed::Sealed for $ty {}
        impl NexusRequest for $ty {
            const CALL: NexusCall = NexusCall::$call;
            fn rack_id(&self) -> Option<RackId> {
                let $body = self;
                Some($rack)
            }
            fn feed_body(&self, sink: &mut dyn FnMut(&[u8])) -> Result<(), WireError> {
                wire::feed(self, Some(NEXUS_VERSION), sink)
            }
        }
    )+};
}

requests_with_body! {
    ReconfigureMsg => Reconfigure, |msg| msg.rack_id;
    LrtqUpgradeMsg => UpgradeFromLrtq, |msg| msg.rack_id;
    CommitRequest => Commit, |request| request.rack_id;
    Configuration => PrepareAndCommit, |config| config.rack_id();
}

macro_rules! requests_without_body {
    ($($ty:ty => $call:ident;)+) => {$(
        impl sealed::Sealed for $ty {}
        impl NexusRequest for $ty {
            const CALL: NexusCall = NexusCall::$call;
            fn rack_id(&self) -> Option<RackId> {
                None
            }
            fn feed_body(&self, _: &mut dyn FnMut(&[u8])) -> Result<(), WireError> {
                Ok(())
            }
        }
    )+};
}

requests_without_body! {
    CoordinatorStatusQuery => CoordinatorStatus;
    NodeStatusQuery => NodeStatus;
    LatestSecretQuery => LoadLatestSecret;
}

/// A request that passed every check of the module doc: what the node's
/// Nexus-facing calls take. Made only by this module's checker, which
/// callers reach through [`crate::node::NodeCtx::verify_request`].
#[derive(Debug)]
pub struct Verified<'a, T: ?Sized> {
    body: &'a T,
    nonce: [u8; NONCE_LEN],
}

impl<T: ?Sized> Clone for Verified<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Verified<'_, T> {}

impl<'a, T: NexusRequest + ?Sized> Verified<'a, T> {
    /// The request.
    pub const fn body(&self) -> &'a T {
        self.body
    }

    /// The request's nonce, which its answer's tag covers.
    pub const fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// The call.
    pub const fn call(&self) -> NexusCall {
        T::CALL
    }
}

/// The checks of the module doc, in order, for the node `this` of rack
/// `rack` (its key's, or its state's when it has no key; `None` if it
/// knows neither) holding `key`.
pub(crate) fn verify<'a, T: NexusRequest + ?Sized>(
    key: Option<&SledRequestKey>,
    rack: Option<RackId>,
    this: &PlatformId,
    auth: &RequestAuth,
    body: &'a T,
) -> Result<Verified<'a, T>, RequestRefusal> {
    let mut feed = |sink: &mut dyn FnMut(&[u8])| body.feed_body(sink);
    check(key, rack, this, auth, T::CALL, body.rack_id(), &mut feed)?;
    Ok(Verified {
        body,
        nonce: auth.nonce,
    })
}

/// [`verify`] past the body's type (one copy in flash): the checks of the
/// module doc for a body of `call` naming rack `named` (if any), fed by
/// `body`.
#[inline(never)]
fn check(
    key: Option<&SledRequestKey>,
    rack: Option<RackId>,
    this: &PlatformId,
    auth: &RequestAuth,
    call: NexusCall,
    named: Option<RackId>,
    body: Feed<'_>,
) -> Result<(), RequestRefusal> {
    let expected = rack.unwrap_or(auth.rack_id);
    if auth.rack_id != expected || named.is_some_and(|named| named != expected) {
        return Err(RequestRefusal::ForeignRack);
    }
    if auth.target != *this {
        return Err(RequestRefusal::WrongTarget);
    }
    let key = key.ok_or(RequestRefusal::NoKey)?;
    let mac = key
        .request_mac(auth.rack_id, this, call, &auth.nonce, body)
        .map_err(|_| RequestRefusal::BadTag)?;
    mac.verify_slice(&auth.tag)
        .map_err(|_| RequestRefusal::BadTag)
}

// ---- wire codecs ----

/// Largest encoded [`RequestAuth`].
pub const MAX_REQUEST_AUTH_LEN: usize = 1 + 16 + wire::PLATFORM_ID_LEN + NONCE_LEN + TAG_LEN;

/// Encoded [`AnswerTag`].
pub const ANSWER_TAG_LEN: usize = 1 + TAG_LEN;

impl NexusWire for RequestAuth {
    const MAX_LEN: usize = MAX_REQUEST_AUTH_LEN;
}

impl NexusWire for AnswerTag {
    const MAX_LEN: usize = ANSWER_TAG_LEN;
}

impl NexusWire for RequestRefusal {
    // The version byte and the variant.
    const MAX_LEN: usize = 2;
}

/// Decodes a [`RequestAuth`] (written by [`crate::wire::encode_nexus`]).
pub fn decode_request_auth(bytes: &[u8]) -> Result<RequestAuth, WireError> {
    wire::decode(bytes, NEXUS_VERSION)
}

/// Decodes an [`AnswerTag`] (written by [`crate::wire::encode_nexus`]).
pub fn decode_answer_tag(bytes: &[u8]) -> Result<AnswerTag, WireError> {
    wire::decode(bytes, NEXUS_VERSION)
}

/// Decodes a [`RequestRefusal`] (written by [`crate::wire::encode_nexus`]).
pub fn decode_request_refusal(bytes: &[u8]) -> Result<RequestRefusal, WireError> {
    wire::decode(bytes, NEXUS_VERSION)
}

#[cfg(test)]
mod tests;
