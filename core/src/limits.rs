//! Every size bound of the core, in one place.
//!
//! Each constant says what happens when the bound is hit. None of them is
//! ever a panic: hitting a bound is a typed error for the caller.

/// Bytes in a rack secret, and in the `y` part of every share.
pub const SECRET_LEN: usize = 32;

/// Most shares one secret can be split into: the non-zero elements of
/// GF(2^8). Asking `split` for more is `ShamirError::TooManyShares`.
pub const MAX_SHARES: usize = 255;

/// Most old secrets one configuration carries in its encrypted rack secrets.
/// Encrypting more is `SealError::TooManySecrets`; a ciphertext that decrypts
/// to more is `OpenError::TooManySecrets`. Callers that rotate drop the
/// oldest retained secret to make room.
pub const MAX_RETAINED_SECRETS: usize = 16;

/// Most bytes of an encrypted rack secrets ciphertext: [`MAX_RETAINED_SECRETS`]
/// entries of an 8-byte epoch and a secret each, then the 16-byte
/// authentication tag. A longer ciphertext is refused when it is built or
/// deserialized (`OpenError::TooManySecrets`), before any decryption.
pub const MAX_SEALED_LEN: usize = MAX_RETAINED_SECRETS * (8 + SECRET_LEN) + 16;

/// Bytes of one LRTQ share: an identifier byte, then a little-endian
/// curve25519 scalar, as `vsss-rs` 3.3.4 lays it out.
pub const LRTQ_SHARE_LEN: usize = 33;

/// Shares an LRTQ rack was set up with. Every one has a digest in the LRTQ
/// share data, because sleds added later hold spare shares.
pub const LRTQ_TOTAL_SHARES: usize = 255;

/// Most LRTQ shares combined at once. LRTQ racks used a threshold of
/// `n/2 + 1` for at most 32 sleds, so 17 is the largest real threshold; more
/// shares are `LrtqError::TooManyShares`.
pub const MAX_LRTQ_COMBINE: usize = 32;

/// Smallest LRTQ threshold the LRTQ share data may hold: one share alone
/// would be the secret.
pub const MIN_LRTQ_THRESHOLD: u8 = 2;

/// Largest LRTQ threshold the LRTQ share data may hold (PROTOCOL.md section
/// 6, item 2). A ledger naming another is corrupt: its data is refused when
/// decoded (`ids::LrtqThreshold`), so an upgrade never waits for shares it
/// could not combine.
pub const MAX_LRTQ_THRESHOLD: u8 = 32;

const _: () = assert!(MAX_LRTQ_THRESHOLD as usize <= MAX_LRTQ_COMBINE);

/// Fewest members a configuration may have.
pub const MIN_MEMBERS: usize = 3;

/// Most members a configuration may have: the sleds of one rack. Member
/// lists are `heapless::Vec`s of this capacity; a longer list is refused when
/// a request is validated or a message decoded.
pub const MAX_MEMBERS: usize = 32;

/// Smallest valid threshold.
pub const MIN_THRESHOLD: u8 = 2;

/// Largest valid threshold (it must also be below the member count).
pub const MAX_THRESHOLD: u8 = 31;

/// Most bytes in each of a platform id's two fields.
pub const PLATFORM_ID_FIELD_LEN: usize = 32;

/// Most configurations a node stores. A node keeps its latest committed
/// configuration, the one Nexus committed last if it is still computing its
/// share of it, and the newest prepared one: a `Prepare` names the epoch
/// Nexus committed last, and a configuration makes every older uncommitted
/// one obsolete (abandoned or superseded), so those are dropped first and
/// the bound is never hit. Were it hit, the new configuration is refused and
/// counted (`Counter::ConfigDropped`), and never is a stored one dropped.
pub const MAX_STORED_CONFIGS: usize = 3;

/// Most alarms a node's context records. Alarms must never happen; past
/// this many, further ones are only counted (`Counter::AlarmDropped`).
pub const MAX_ALARMS: usize = 8;

/// Most messages queued in a node's context between two drains. One call
/// queues at most one message per member plus one reply, so this never
/// fills when the caller drains after every call; if it does, the message is
/// dropped and counted (`Counter::OutgoingQueueFull`) and `on_connect`
/// re-sends what matters.
pub const MAX_OUTGOING: usize = 2 * MAX_MEMBERS;

/// Most peers a node tracks as connected: every other sled of a rack, with
/// room for sleds being replaced. Past this, a connection is not recorded
/// and is counted (`Counter::ConnectionTableFull`).
pub const MAX_CONNECTED: usize = 2 * MAX_MEMBERS;

/// Most events a node's context holds between two polls. One call raises
/// at most a few (a commit, a computed share, an alarm), so this never
/// fills when the caller drains after every call; if it does, the newest
/// event is dropped and counted (`Counter::EventDropped`).
pub const MAX_EVENTS: usize = 16;
