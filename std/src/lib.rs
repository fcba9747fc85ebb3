//! `tq-std`: the host (std, tokio) side of the rack trust quorum: a sled's
//! trust quorum node as sled-agent runs it.
//!
//! [`node::start`] boots a node from its ledger (or, for a sled whose
//! ledger holds nothing since [`ledger::init`], from its LRTQ share file),
//! starts the peer network and spawns
//! the node task, the only thing that touches the core's node and context.
//! Everything else goes through the cloneable [`handle::NodeHandle`].
//!
//! # Modules
//!
//! - [`node`]: the node task: one `select!` loop over API requests,
//!   network events and timers; every input runs through the core's one
//!   driving loop (`tq_core::node::drive_async`), so the state is on disk
//!   before anything it queued is sent; a Nexus-facing call is answered
//!   only once its state is stored. Status reports ([`node::report`]) and
//!   the node layer's own counters ([`node::stats`]).
//! - [`handle`]: the calls (reconfigure, upgrade from LRTQ, commit,
//!   prepare-and-commit, coordinator and node status, load a secret, wait
//!   for the latest one with a deadline, clear secrets, replace peer
//!   addresses, metrics, shutdown, a watch of the latest committed epoch,
//!   and proxied commit, prepare-and-commit and status). A full queue is
//!   [`handle::Unavailable::Busy`]. Every Nexus call takes Nexus's
//!   `RequestAuth`, which the node checks with the sled's request key
//!   ([`node::NodeConfig::request_key`]; `tq_core::authority`), and
//!   answers with the node's tag ([`handle::Tagged`]); a refused
//!   authenticator is [`handle::Unavailable::Refused`], counted by the
//!   node.
//! - [`proxy`]: calls passed through a connected sled to one Nexus cannot
//!   reach, and their frames next to the core's on the peer connections
//!   (Nexus's authenticator and the target's answer tag travel in them:
//!   the relaying sled can neither forge nor alter either).
//! - [`secrets`]: the loaded secret as a typed in-process value, and disk
//!   keys derived from it (HKDF-SHA3-256 with a documented context).
//! - [`disks`]: the key manager: each disk's random data key, stored only
//!   wrapped under the latest committed epoch's disk key in files beside
//!   the ledger, re-wrapped on every commit (crash-safe), unlocked at
//!   start through its backend (`fscrypt` or a `command`), forgotten by an
//!   expunged sled.
//! - [`metrics`]: every counter (core, network, ledger, node layer) in the
//!   Prometheus text format, by one function.
//! - [`observe`]: the core's `log` lines bridged into `tracing`.
//! - [`ledger`]: the persistent state in two mirrored files, one per M.2
//!   drive. Header with magic, format version, generation, length and a
//!   SHA3-256 checksum ([`ledger::format`]); each copy replaced atomically
//!   (temporary file, fsync, rename, fsync of the directory) on tokio's
//!   blocking pool; the newest valid copy loaded and every bad copy
//!   rewritten from it at open; typed outcomes for a write that reached
//!   both copies, one (degraded) or none (acknowledge nothing); a fresh
//!   start only after an explicit [`ledger::init`]; one owning process
//!   (a lock); files 0600 and directories 0700, never through a link.
//!   Also the loader of the read-only LRTQ share file ([`ledger::lrtq`]).
//! - [`net`]: TCP with mutual TLS 1.3 under the rack CA, the peer's
//!   platform id taken from its certificate, one connection per pair (the
//!   lower platform id dials), length-prefixed frames no longer than the
//!   largest core message or proxy frame, keep-alives and an inactivity
//!   timeout, a bounded write queue per peer, capped jittered
//!   reconnection, and per-peer counters. [`net::api_tls`] holds the TLS
//!   configurations of the sled's HTTP API, whose clients verify a sled
//!   as a dialing peer does.
//! - [`audit`]: the audit trail: a hash-chained log (SHA3-256, JSON
//!   lines) of Nexus requests, shares handed out, secret loads,
//!   expungements, alarms and starts, mirrored on both ledger drives,
//!   rotated within a bound, crash-safe, and never holding a share or
//!   secret; [`audit::verify`] names the first bad record.
//! - [`backoff`]: the retry schedule of redials and ledger writes.
//!
//! # Rules this crate keeps
//!
//! - **Nothing a peer sends can stop the node.** Every fault of a peer ends
//!   at most that peer's connection, and is counted; no input reaches a
//!   panic, and no buffer grows past a named bound.
//! - **Nothing acknowledged is lost.** A write counts as done once one
//!   copy is on disk; otherwise it is an error the caller must not
//!   acknowledge, retried with backoff. Open never mistakes a broken or
//!   missing drive for a fresh sled: only [`ledger::init`] makes one.
//! - **Every bound is a named constant or a config field**
//!   ([`node::NodeConfig`], [`net::NetConfig`], [`net::MAX_FRAME_LEN`],
//!   [`proxy::MAX_PROXY_FRAME_LEN`], [`ledger::MAX_PAYLOAD_LEN`],
//!   [`net::MAX_TRACKED_PEERS`], [`secrets::MAX_PURPOSE_LEN`],
//!   [`disks::MAX_DISKS`], [`disks::keyfile::MAX_WRAPPINGS`],
//!   [`audit::AuditConfig`], [`audit::record::MAX_RECORD_LEN`]); a full
//!   queue is a typed `Busy` or a counted drop, never a wait without end
//!   or a panic.
//! - **Nothing is acknowledged before it is stored.** If no ledger copy
//!   takes the state, the node sends nothing, answers Nexus's calls with
//!   `NotStored`, retries the write with backoff and says so in its status
//!   and metrics.
//! - **Counters are plain structs** read by one snapshot call
//!   ([`handle::NodeHandle::metrics`], gathering [`net::Net::stats`],
//!   [`ledger::Ledger::stats`], the core's and the node layer's) for the
//!   Prometheus export; `tracing` spans name the node, peer, connection
//!   and epoch of every log line, the core's included.
//! - **Disk keys are never written in the clear** ([`disks`]): each is
//!   stored only wrapped, held in memory only while an unlock or re-wrap
//!   needs it (boxed, zeroized on drop), and reaches a `command` backend
//!   on its standard input only.
//! - **What the sled was asked and gave is audited**, before it is
//!   acknowledged or sent: Nexus's requests and their outcomes, shares
//!   handed out, secret loads and for whom ([`audit`]); every refusal, as
//!   the growth of its count per interval ([`audit::refusals`]); never a
//!   share or secret in a record.
//! - **Secrets stay in the process**: a loaded secret is handed out only
//!   as a [`secrets::LoadedSecret`] (no bytes in `Debug`, no accessor to
//!   them; disk keys are derived from it, and a public fingerprint shows
//!   which secret it is); frame contents are never logged.
//! - **Every buffer that held a share is zeroized.** Where and how:
//!   the node task's encode buffer (where the core writes each outgoing
//!   Prepare, Share or LRTQ share) is zeroed after every drive; each
//!   message then lives in a [`net::Frame`], a buffer of exactly its size
//!   that is zeroized on drop and never grown (so no reallocation leaves a
//!   copy in freed memory), from the node task through the write queue to
//!   the TLS layer (below); incoming frames are copied into a [`net::Frame`] allocated at the
//!   length their prefix gives, not through a growable codec buffer; the
//!   encoded state and the ledger's read and write buffers are
//!   `Zeroizing`, as are the LRTQ share file's bytes.
//! - **TLS buffers are ours, and zeroized** (`net::tls_conn`): the peer
//!   network drives rustls's unbuffered API, not tokio-rustls, because
//!   rustls's buffered connections decrypt each record in place in a
//!   receive buffer of their own that they never clear, so the last
//!   records received (shares) stayed there. Received bytes go into a
//!   fixed-size `Zeroizing` buffer that rustls decrypts in place, and
//!   every record's bytes are zeroed as soon as rustls is done with them;
//!   a frame to send is staged with its prefix in a `Zeroizing` buffer,
//!   zeroed once encrypted into our outgoing buffer. One copy stays out of
//!   our reach: rustls 0.23 copies each received record's plaintext into a
//!   vector of its own (even in the unbuffered API) and frees it, without
//!   zeroing, once we have copied it into a [`net::Frame`]. `tq sled`
//!   therefore runs on an allocator that zeroes every block it frees
//!   (`zeroizing-alloc`); a program that embeds this crate needs the same
//!   to close that gap. Outgoing records are encrypted in place, so
//!   nothing we send stays in rustls in the clear. `tq sled` also makes
//!   its process undumpable with no core limit. `tq/tests/memory.rs`
//!   searches real sled processes' memory for shares to check all this.
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
//! # Who the listener admits, and the clock
//!
//! - **Strangers cannot starve the peers.** A TLS handshake needs a slot:
//!   a configured peer's address has a reserve of its own
//!   ([`net::HANDSHAKES_PER_PEER`] per peer at that address), every other
//!   source shares a bounded pool with a per-address share and a shorter
//!   timeout ([`net::NetConfig`]); a connection that finds no slot is
//!   closed at once and counted, never queued ahead of a peer. A dialer
//!   connects from its listen address (when that is a specific one), so
//!   its peers see the address they configured. Only a host holding a
//!   peer's address can spend that peer's reserve.
//! - **No session resumption**, on either side: every handshake goes
//!   through the certificate checks and the peer set.
//! - **Certificate validity does not use the sled's clock**, which may
//!   have been reset at boot: a peer's chain is verified as of its leaf's
//!   `notBefore`, so a certificate expired or not yet valid by the clock
//!   is admitted; revocation is by the peer set and the rack CA.
//! - **Peers prove what they run.** A sled certificate carries the
//!   SHA3-256 digests of the sled's firmware as a TCG DICE `TcbInfo`
//!   extension ([`net::measurements`]); with [`net::Attestation::Enforce`]
//!   a peer is admitted only if every digest is in the rack's reference
//!   measurements file ([`mod@net::reference`]), which is re-read at every
//!   handshake (and every second for the connected peers, dropping one
//!   whose digest was withdrawn) so it can be updated without a restart
//!   ([`net::attestation`]). Refusals are counted by reason
//!   (`no_measurements`, `malformed_measurements`, `unknown_measurement`).
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
//! - **Frames cut and written here** (`net::frame`'s `FrameReader`,
//!   `net::tls_conn`), not with `tokio_util::codec::LengthDelimitedCodec`: the
//!   codec's `BytesMut` buffers grow, split and reallocate, leaving copies
//!   of frames (shares) in memory nobody zeroizes. A 4-byte big-endian
//!   length; an oversize prefix is refused before its bytes are read.
//! - **Refusal warnings rate-limited by a small type of our own**
//!   (`net::refusal_log`: one line per reason per interval, then the count
//!   left out) rather than `governor`, a general token-bucket limiter that
//!   would not keep the count.
//! - **Certificate parsing: `x509-parser`**, to read the SAN URI and the
//!   leaf's `notBefore` that rustls does not expose; chain, signature and
//!   validity checks stay with rustls's webpki verifiers.
//! - **Proxy payloads: the core's own Nexus codecs** (`tq_core::wire`)
//!   behind a fixed 26-byte header, so a proxied request or answer is
//!   decoded by the same bounded decoders as a direct one.
//! - **Disk key wrapping: ChaCha20-Poly1305** (`chacha20poly1305`, which
//!   the core already uses for its encrypted rack secrets) under the
//!   existing HKDF-SHA3-256 disk key, so no new primitive. **fscrypt's
//!   ioctls in `tq-fscrypt`**, the one crate allowed `unsafe`: no crate on
//!   crates.io offers them, and Debian's `fscrypt` tool keeps its own
//!   protectors and metadata and would want the key in a file.
//! - **Log bridge: `tracing-log`** (`LogTracer`), the `tracing` project's
//!   own bridge from the `log` crate.
//! - **Prometheus text written here** (one function, about a hundred
//!   lines) rather than with the `prometheus` crate, whose registry is
//!   process-wide while a process may run several nodes (tests, the demo);
//!   the output is checked with the reference parser (Python
//!   `prometheus_client`) in the tests.

pub mod audit;
pub mod backoff;
pub mod disks;
pub mod handle;
pub mod health;
pub mod ledger;
pub mod metrics;
mod mirror;
pub mod net;
pub mod node;
pub mod observe;
pub mod proxy;
pub mod secrets;
