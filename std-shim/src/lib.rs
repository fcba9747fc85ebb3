//! `tq-std`: the host (std, tokio) side of the rack trust quorum, below the
//! node task: the durable ledger and the peer network.
//!
//! Both modules move bytes only. The core's encodings (the persistent
//! state, peer messages, LRTQ share data) pass through them opaque; the
//! node layer built on top decodes them with `tq_core::wire` and feeds the
//! core, as the core's crate doc requires: it persists the state before
//! sending anything the core queued.
//!
//! # Modules
//!
//! - [`ledger`]: the persistent state in two mirrored files, one per M.2
//!   drive. Header with magic, format version, generation, length and a
//!   SHA3-256 checksum ([`ledger::format`]); each copy replaced atomically
//!   (temporary file, fsync, rename, fsync of the directory) on tokio's
//!   blocking pool; the newest valid copy loaded and every bad copy
//!   rewritten from it at open; typed outcomes for a write that reached
//!   both copies, one (degraded) or none (acknowledge nothing). Also the
//!   loader of the read-only LRTQ share file ([`ledger::lrtq`]).
//! - [`net`]: TCP with mutual TLS 1.3 under the rack CA, the peer's
//!   platform id taken from its certificate, one connection per pair (the
//!   lower platform id dials), length-prefixed frames no longer than the
//!   core's largest peer message, keep-alives and an inactivity timeout,
//!   a bounded write queue per peer, capped jittered reconnection, and
//!   per-peer counters. The node layer gets [`net::NetEvent`]s and calls
//!   [`net::Net::send`] / [`net::Net::disconnect`].
//! - [`backoff`]: the retry schedule both use.
//!
//! # Rules this crate keeps
//!
//! - **Nothing a peer sends can stop the node.** Every fault of a peer ends
//!   at most that peer's connection, and is counted; no input reaches a
//!   panic, and no buffer grows past a named bound.
//! - **Nothing acknowledged is lost.** A write counts as done once one
//!   copy is on disk; otherwise it is an error the caller must not
//!   acknowledge, retried with backoff. Open never mistakes a broken or
//!   missing drive for a fresh sled.
//! - **Every bound is a named constant or a config field**
//!   ([`net::NetConfig`], [`net::MAX_FRAME_LEN`],
//!   [`ledger::MAX_PAYLOAD_LEN`], [`net::MAX_TRACKED_PEERS`]).
//! - **Counters are plain structs** read by one snapshot call
//!   ([`net::Net::stats`], [`ledger::Ledger::stats`]), for the Prometheus
//!   export; `tracing` spans name the peer and connection of every log line.
//! - **Key shares stay secret**: ledger and LRTQ buffers are zeroized on
//!   drop; frame contents are never logged.
//!
//! # Where a sled's platform id is in its certificate
//!
//! In exactly one subject-alternative-name URI,
//! `urn:tq-platform-id:<part>:<serial>`, each field percent-encoded so that
//! every printable-ASCII part and serial (`:` `"` `\` `%` and space
//! included) has one spelling and the one raw `:` separates the fields
//! ([`net::identity`]). The subject name is not used. Certificates need
//! both the server-auth and client-auth extended key usages, since every
//! sled both listens and dials.
//!
//! # Choices
//!
//! - **TLS provider: aws-lc-rs**, rustls's default, because it offers the
//!   hybrid post-quantum key exchange X25519MLKEM768 (and prefers it): key
//!   shares cross these connections, and a recorded session must stay
//!   secret for the life of the rack. ring has no ML-KEM. The price is a
//!   C library in the build. TLS 1.3 only.
//! - **Ledger checksum: SHA3-256** from `sha3`, already a dependency of
//!   the core, so no new crate: a random corruption passes with
//!   probability 2^-256 instead of CRC32's 2^-32, at a cost (tens of
//!   microseconds for the largest state) that does not matter for a write
//!   that waits on two fsyncs. It is an integrity check, not
//!   authentication: whoever can write the drive can write the state.
//! - **Frames: `tokio_util::codec::LengthDelimitedCodec`** with a 4-byte
//!   big-endian length, which refuses an oversize prefix before reading
//!   its bytes.
//! - **Certificate parsing: `x509-parser`**, to read the SAN URI that
//!   rustls does not expose; chain and validity checks stay with rustls's
//!   webpki verifiers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod backoff;
pub mod handle;
pub mod ledger;
pub mod metrics;
pub mod net;
pub mod node;
pub mod observe;
pub mod proxy;
pub mod secrets;
