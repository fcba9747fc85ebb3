//! `tq`: the trust quorum's one binary, and the library under it.
//!
//! The binary's subcommands live in `src/cli/`, one module each; `tq sled`
//! is the daemon of one sled. This library holds what they and the Nexus
//! driver share:
//!
//! - [`error`]: how errors are built (typed, their causes kept as
//!   `source()`) and shown: [`error::Chain`], one line.
//! - [`config`]: the sled daemon's TOML file.
//! - [`sled`]: the daemon: the tq-std node and its HTTP API, started from a
//!   config, stopped cleanly on SIGTERM or Ctrl-C.
//! - [`api`]: the HTTP API as a dropshot trait, its types and errors
//!   ([`api::error`]: one stable code per reason), and the OpenAPI
//!   document generated from it.
//! - [`server`]: the trait's implementation over a node handle.
//! - [`hardening`]: what `tq sled` does to its process first: no core
//!   dumps, not dumpable.
//! - [`front`]: the listener in front of dropshot: bounds each connection's
//!   wait and request head, and puts every error in the API's form.
//! - [`client`]: the client generated from the committed document
//!   (progenitor), with the core's own types.
//! - [`netns`]: sleds as separate hosts (a network namespace each).
//! - [`chaos`]: `tq chaos`, faults and churn against a rack of sled
//!   processes, checked from the outside.
//!
//! # `tq sled init --config FILE`
//!
//! Once, for a new sled: creates the two ledger directories (mode 0700;
//! their parents, the drives, must exist) and marks both copies
//! initialized, so the daemon starts fresh (or from the LRTQ share file).
//! Refuses if a ledger copy is there. Without it the daemon does not
//! start: no ledger on either drive is what an unmounted drive looks like.
//!
//! # `tq sled --config FILE`
//!
//! Runs until SIGTERM or SIGINT (Ctrl-C), then stops the API (calls in
//! progress finish), then the node (its task ends between calls, so every
//! ledger write it began is done), and exits 0. Anything that stops it
//! from starting is one line on stderr, `tq sled: <what>: <why>`, and exit
//! code 1, never a panic or a backtrace; `<what>` is `config`,
//! `certificate`, `ledger`, `LRTQ share file`, `peer network` or `API`.
//! Before anything else it turns core dumps off and makes itself
//! undumpable ([`hardening`]); if it cannot, it does not start
//! (`<what>` is `process hardening`). The `tq` binary's allocator zeroes
//! every block it frees, so copies of shares that libraries free (rustls's
//! plaintext of each received record) do not stay in freed memory (see
//! tq-std's crate doc, on zeroization).
//! Logs go to stderr (`tracing`, the core's `log` lines and dropshot's
//! `slog` records bridged in); `TQ_LOG` sets the filter (default `info`).
//!
//! # The configuration file
//!
//! TOML; unknown keys are refused; relative paths are taken from the
//! file's directory. `tq/examples/sled.toml` is a complete example.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `ledger.dirs` | required | the two directories (one per M.2 drive) holding a ledger copy each, `trust-quorum.ledger`, made by `tq sled init`; mode 0700, copies 0600, owned by the daemon's user (anything wider is refused); one daemon at a time (a lock file beside each copy) |
//! | `ledger.lrtq_share_file` | none | the LRTQ share file of a sled from an LRTQ rack, read only while the ledger holds nothing since `init`; missing then is an error |
//! | `tls.rack_ca` | required | PEM: the rack CA certificate(s), the only trust anchors |
//! | `tls.certificate` | required | PEM: this sled's certificate (then any intermediates), naming its platform id in a `urn:tq-platform-id:<part>:<serial>` SAN URI |
//! | `tls.key` | required | PEM: this sled's private key |
//! | `peer.listen` | `[::]:7151` | where the mutual-TLS peer network listens |
//! | `peer.keepalive_secs` | 1 | seconds between keep-alives |
//! | `peer.inactivity_timeout_secs` | 10 | seconds of silence that end a connection (above `keepalive_secs`) |
//! | `api.listen` | `127.0.0.1:7150` | where the HTTP API listens: loopback unless set |
//! | `api.idle_timeout_ms` | 30000 | milliseconds a connection may wait for its request's head before it is closed |
//! | `limits.api_queue_len` | 64 | calls queued on the node before `busy` |
//! | `limits.max_secret_waiters` | 64 | callers waiting for the latest secret at once |
//! | `limits.max_proxied` | 64 | proxied calls in flight at once |
//! | `[[peers]]` `part`, `serial`, `address` | none | every other sled: its platform id and peer address |
//!
//! # The HTTP API
//!
//! Requests and answers are JSON, the core's own types in their serde
//! forms (a rack id as a UUID string, digests and ciphertexts as hex,
//! counters as a map from name to count). Every refusal is an
//! [`api::error::ApiError`]: `error_code`, `message` (the error's
//! sentence) and, when the node refused, `refusal` (the core's error
//! value); the status of each code is the table of [`api::error`]. So is
//! every other error the server sends (an unknown path or method, a
//! request head too long). HTTP/1.1, one request per connection.
//!
//! | method | path | request | answer | refusal codes |
//! |---|---|---|---|---|
//! | POST | `/v1/reconfigure` | `ReconfigureMsg` | 200 `ReconfigureOutcome` | `expunged`; `rack_id_mismatch`, `not_a_member`, `member_count`, `threshold_too_large`; `must_upgrade_from_lrtq`, `lrtq_upgrade_in_progress`, `last_committed_epoch_mismatch`, `newer_coordination_running`, `different_request_running`, `epoch_not_newer`, `computing_share`; `rng_failed`, `internal` |
//! | POST | `/v1/upgrade-from-lrtq` | `LrtqUpgradeMsg` | 204 | `expunged`; `rack_id_mismatch`, `not_a_member`, `member_count`, `threshold_too_large`, `lrtq_threshold_above_members`, `epoch_too_small`; `no_lrtq_data`, `already_committed`, `epoch_not_newer` |
//! | POST | `/v1/commit` | `CommitRequest` | 200 `CommitOutcome` | `expunged`, `rack_id_mismatch`, `not_prepared` |
//! | POST | `/v1/prepare-and-commit` | `Configuration` | 200 `PrepareAndCommitOutcome` | `expunged`, `rack_id_mismatch`, `not_a_member`, `newer_committed`, `mismatched_configuration`, `coordinating_newer_epoch`, `internal` |
//! | GET | `/v1/coordinator-status` | | 200 `CoordinatorStatus` or `null` | |
//! | GET | `/v1/status` | | 200 [`api::types::SledStatus`]: the core's `NodeStatus`, storage and ledger health, peer connections | |
//! | POST | `/v1/proxy/commit` | [`api::types::ProxyCommitRequest`] | 200 `CommitOutcome` | the target's commit refusals; the proxy's (below) |
//! | POST | `/v1/proxy/prepare-and-commit` | [`api::types::ProxyPrepareAndCommitRequest`] | 200 `PrepareAndCommitOutcome` | the target's prepare-and-commit refusals; the proxy's |
//! | POST | `/v1/proxy/status` | [`api::types::ProxyStatusRequest`] | 200 `NodeStatus` of the target | the proxy's |
//! | POST | `/v1/secret/fingerprint` | [`api::types::SecretFingerprintRequest`] | 200 [`api::types::SecretFingerprint`]: epoch and fingerprint only | `invalid_deadline`, `expunged`, `no_committed_configuration`, `not_committed`, `secret_too_old`, `deadline_passed` |
//! | GET | `/metrics` | | 200 `text/plain; version=0.0.4`: Prometheus text | |
//!
//! The proxy's own: `invalid_deadline` (`deadline_ms` outside 1..=60000),
//! `no_rack`, `not_connected` (an unknown sled included), `disconnected`,
//! `remote_not_stored`, `remote_stopping`, `wrong_answer`,
//! `deadline_passed`. Any call may also be `busy` or `stopped`; a call
//! that changes the state may be `not_stored` (the ledger took no copy,
//! nothing was acknowledged); a malformed body is `invalid_request`.
//!
//! No answer carries a secret, a share or a key: the node status is the
//! core's `NodeStatus`, which holds none, and a loaded secret leaves only
//! as its epoch and its fingerprint (tq-std's `LoadedSecret::fingerprint`,
//! HKDF-SHA3-256 under its own context). The `no_secrets` test searches
//! every byte the APIs send in a whole scenario for every share and
//! secret.
//!
//! # The OpenAPI document and the client
//!
//! [`api::openapi`] generates the document from the trait alone
//! (dropshot's stub description); it is committed as
//! `tq/openapi/sled.json`, and the `openapi` test fails with a diff when
//! the code and the file differ. After a change to the API:
//!
//! ```text
//! TQ_UPDATE_OPENAPI=1 cargo test -p tq --test openapi
//! ```
//!
//! The core's types describe themselves (tq-core's `schema` feature,
//! schemars 0.8 as dropshot uses it). [`client`] is generated by
//! progenitor's macro from the committed file when this crate builds, with
//! every schema replaced by the type that produced it, so the driver gets
//! the core's values; the `progenitor_types` test generates a second
//! client with progenitor's own types and reads every answer with it, and
//! the `schemathesis` test runs schemathesis against the document and a
//! live sled.
//!
//! # Choices
//!
//! - **dropshot**, as Oxide's sled-agent: the API is a trait, so the
//!   document comes from the declaration, not from a running server.
//!   Handlers run detached from their connection, so a client that goes
//!   away never cuts a node call short; bodies are bounded
//!   ([`server::MAX_REQUEST_BODY_BYTES`]).
//! - **Plain HTTP, on loopback by default**: the API has no TLS or
//!   authentication of its own yet; whoever reaches it can reconfigure
//!   the rack, so it listens on `127.0.0.1` unless configured otherwise.
//! - **`tracing-slog`** carries dropshot's `slog` records into `tracing`;
//!   **`toml`** reads the file; **clap** the command line.

pub mod api;
pub mod chaos;
pub mod client;
pub mod config;
pub mod demo;
pub mod error;
pub mod front;
pub mod hardening;
pub mod netns;
pub mod nexus;
pub mod server;
pub mod sled;
