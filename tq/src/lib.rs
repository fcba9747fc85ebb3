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
//!   config, stopped cleanly on SIGTERM or Ctrl-C, its peers re-read on
//!   SIGHUP.
//! - [`api`]: the HTTP API as a dropshot trait, its types and errors
//!   ([`api::error`]: one stable code per reason), and the OpenAPI
//!   document generated from it.
//! - [`server`]: the trait's implementation over a node handle.
//! - [`hardening`]: what `tq sled` does to its process first: no core
//!   dumps, not dumpable.
//! - [`front`]: the listener in front of dropshot: terminates TLS, bounds
//!   each connection's wait and request head, and puts every error in the
//!   API's form.
//! - [`client`]: the client generated from the committed document
//!   (progenitor), with the core's own types.
//! - [`https`]: what a client of the API trusts (the rack CA) and the
//!   HTTPS client that reaches exactly one sled.
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
//! On SIGHUP it reads the file again and takes its `[[peers]]` alone (a
//! sled slid into the rack, or one gone); a file that does not load is
//! logged and changes nothing.
//!
//! Runs until SIGTERM or SIGINT (Ctrl-C), then stops the API (calls in
//! progress finish), then the node (its task ends between calls, so every
//! ledger write it began is done), and exits 0. Anything that stops it
//! from starting is one line on stderr, `tq sled: <what>: <why>`, and exit
//! code 1, never a panic or a backtrace; `<what>` is `config`,
//! `certificate`, `request key`, `ledger`, `audit log`, `LRTQ share file`,
//! `reference measurements <file>`, `peer network`, `API` or `disks`.
//! Before anything else it turns core dumps off and makes itself
//! undumpable ([`hardening`]); if it cannot, it does not start
//! (`<what>` is `process hardening`). The `tq` binary's allocator zeroes
//! every block it frees, so copies of shares that libraries free (rustls's
//! plaintext of each received record) do not stay in freed memory (see
//! tq-std's crate doc, on zeroization).
//! Logs go to stderr (`tracing`, the core's `log` lines and dropshot's
//! `slog` records bridged in); `TQ_LOG` sets the filter (default `info`).
//!
//! # `tq audit show|verify --config FILE` (or `--dir DIR`, once per copy)
//!
//! The sled's audit log (tq-std's `audit`: a hash-chained record of
//! Nexus's requests, shares handed out, secret loads, expungements, alarms
//! and starts, in `audit/` beside each ledger copy). `show` prints one
//! copy's records, one a line; `verify` checks both copies' chains and
//! that they end at the same record, prints each copy's head (sequence
//! number and hash, the value to keep elsewhere), and exits 1 naming the
//! first bad record. Either can run while the sled does. `tq demo`
//! verifies every sled's log as its last check.
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
//! | `attestation.reference_measurements` | required | TOML: the rack's reference measurements, the firmware digests (`[[measurement]]` `name`, `sha3_256`) a peer's certificate may carry in its DICE TcbInfo extension; re-read at every peer handshake and every second for the connected peers (one whose digest was withdrawn is disconnected), so it is updated in place without a restart (an unreadable one keeps the last good one, counted); unusable at start is an error |
//! | `attestation.enforce` | true | refuse a peer whose measurements are absent, malformed or not all in the file; `false` admits any holder of a rack certificate (a warning at start) |
//! | `authority.key_file` | required | this sled's request key (32 bytes, from `tq nexus sled-key`): Nexus's calls are run only if their authenticator was made with it, and answers to Nexus are tagged with it; mode 0600, owned by the daemon's user (anything wider, or a missing file, and the daemon does not start) |
//! | `peer.listen` | `[::]:7151` | where the mutual-TLS peer network listens |
//! | `peer.keepalive_secs` | 1 | seconds without a frame sent after which a keep-alive goes |
//! | `peer.inactivity_timeout_secs` | 10 | seconds of silence that end a connection (above `keepalive_secs`) |
//! | `api.listen` | `127.0.0.1:7150` | where the HTTPS API listens (with `tls.certificate` and `tls.key`): loopback unless set |
//! | `api.idle_timeout_ms` | 30000 | milliseconds a connection may take for its TLS handshake and its request's head before it is closed |
//! | `limits.api_queue_len` | 64 | calls queued on the node before `busy` |
//! | `limits.max_secret_waiters` | 64 | callers waiting for the latest secret at once |
//! | `limits.max_proxied` | 64 | proxied calls in flight at once |
//! | `audit.max_segment_bytes` | 1048576 | an audit log segment is closed before it grows past this (at most 64 MiB) |
//! | `audit.retained_segments` | 8 | audit log segments kept per copy (at least 1); the oldest is removed past that |
//! | `[[peers]]` `part`, `serial`, `address` | none | every other sled: its platform id and peer address |
//! | `disk_unlock.deadline_secs` | 600 | seconds the daemon retries (with backoff) to unlock the disks after it starts and after each commit, before it shows the ones still locked as `failed` |
//! | `[[disks]]` `name`, `serial`, `backend` | none | an encrypted disk: its name (1-32 of `A-Za-z0-9_-`; its key files `disk-key.<name>` are in the ledger directories), its serial (its wrapping keys are derived for it) and `backend`, `fscrypt` or `command` |
//! | `[[disks]]` `dir` | required for `fscrypt` | the encrypted directory, on an ext4 made with `-O encrypt` (empty the first time; its v2 policy is set then) |
//! | `[[disks]]` `unlock`, `lock` | `unlock` required for `command` | the program and arguments that unlock (the key on its standard input, never in its arguments or environment; its output discarded) and that lock (optional) |
//! | `[[disks]]` `timeout_ms`, `key_format` | 30000, `raw` | for `command`: milliseconds before the program is killed; `raw` (32 bytes) or `hex` (64 digits) on its standard input |
//!
//! The disks are unlocked by `tq_std::disks`, the key manager: each disk's
//! random data key is stored only wrapped under the latest committed
//! epoch's disk key, re-wrapped on each commit, and removed if the sled is
//! expunged; `/v1/status` (`disks`), `tq status` and `/metrics`
//! (`tq_disk_*`) show each disk's state.
//!
//! # The HTTP API
//!
//! HTTPS only (see [Transport](#transport)). Requests and answers are JSON, the core's own types in their serde
//! forms (a rack id as a UUID string, digests and ciphertexts as hex,
//! counters as a map from name to count). Every refusal is an
//! [`api::error::ApiError`]: `error_code`, `message` (the error's
//! sentence) and, when the node refused, `refusal` (the core's error
//! value); the status of each code is the table of [`api::error`]. So is
//! every other error the server sends (an unknown path or method, a
//! request head too long). HTTP/1.1, one request per connection.
//!
//! Every call but `status` and `metrics` is Nexus's: its body carries
//! `auth`, Nexus's authenticator (tq-core's `RequestAuth`) for the sled
//! that runs it, which that sled's node checks before it acts (the core's
//! `authority`), and its answer carries `tag`, the node's tag of it
//! (tq-core's `AnswerTag`), which Nexus checks before it acts on it; a
//! refusal of the call by the node carries its tag as `answer_tag`. A
//! call without `auth` is `unauthenticated` (401, counted as
//! `tq_api_unauthenticated_total` in `/metrics`); the node's refusals of
//! an authenticator are `foreign_rack`, `wrong_target`, `bad_tag` and
//! `no_request_key`, each counted by the core (`request_*`). A proxy
//! passes the authenticator and the target's tag through: it can alter
//! neither.
//!
//! | method | path | request | answer | refusal codes |
//! |---|---|---|---|---|
//! | POST | `/v1/reconfigure` | [`api::types::ReconfigureBody`] | 200 [`api::types::ReconfigureAnswer`] | `expunged`; `rack_id_mismatch`, `not_a_member`, `member_count`, `threshold_too_large`; `must_upgrade_from_lrtq`, `lrtq_upgrade_in_progress`, `last_committed_epoch_mismatch`, `newer_coordination_running`, `different_request_running`, `epoch_not_newer`, `computing_share`; `rng_failed`, `internal` |
//! | POST | `/v1/upgrade-from-lrtq` | [`api::types::UpgradeFromLrtqBody`] | 200 [`api::types::UpgradeFromLrtqAnswer`] | `expunged`; `rack_id_mismatch`, `not_a_member`, `member_count`, `threshold_too_large`, `lrtq_threshold_above_members`, `epoch_too_small`; `no_lrtq_data`, `already_committed`, `epoch_not_newer` |
//! | POST | `/v1/commit` | [`api::types::CommitBody`] | 200 [`api::types::CommitAnswer`] | `expunged`, `rack_id_mismatch`, `not_prepared` |
//! | POST | `/v1/prepare-and-commit` | [`api::types::PrepareAndCommitBody`] | 200 [`api::types::PrepareAndCommitAnswer`] | `expunged`, `rack_id_mismatch`, `not_a_member`, `newer_committed`, `mismatched_configuration`, `coordinating_newer_epoch`, `internal` |
//! | POST | `/v1/coordinator-status` | [`api::types::CoordinatorStatusBody`] | 200 [`api::types::CoordinatorStatusAnswer`]: `CoordinatorStatus` or `null` | |
//! | GET | `/v1/status` | | 200 [`api::types::SledStatus`]: the core's `NodeStatus`, storage and ledger health, peer connections (open: no authenticator) | |
//! | POST | `/v1/proxy/commit` | [`api::types::ProxyCommitRequest`] | 200 [`api::types::CommitAnswer`] of the target | the target's commit refusals; the proxy's (below) |
//! | POST | `/v1/proxy/prepare-and-commit` | [`api::types::ProxyPrepareAndCommitRequest`] | 200 [`api::types::PrepareAndCommitAnswer`] of the target | the target's prepare-and-commit refusals; the proxy's |
//! | POST | `/v1/proxy/status` | [`api::types::ProxyStatusRequest`] | 200 [`api::types::NodeStatusAnswer`] of the target | the proxy's |
//! | POST | `/v1/secret/fingerprint` | [`api::types::SecretFingerprintRequest`] | 200 [`api::types::SecretFingerprintAnswer`]: epoch, fingerprint (never the secret) and tag | `invalid_deadline`, `expunged`, `no_committed_configuration`, `not_committed`, `secret_too_old`, `deadline_passed` |
//! | GET | `/metrics` | | 200 `text/plain; version=0.0.4`: Prometheus text (open) | |
//!
//! Every Nexus call may also be refused `unauthenticated`, `foreign_rack`,
//! `wrong_target`, `bad_tag` or `no_request_key` (proxied: by the target).
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
//! # Transport
//!
//! The API is served over TLS 1.3 with the sled's certificate and key
//! (`[tls]`: the ones the peer network uses), by rustls as the peer
//! network is (tq-std's `net::api_tls`): no client certificate is asked,
//! and session resumption is off (no session cache, no tickets). Every
//! client ([`https::sled_client`]: the Nexus driver, `tq status`, the
//! demo, the tests) is made for one sled: it trusts only the rack CA, and
//! accepts only a certificate with the server-auth usage naming that
//! sled's platform id in its `urn:tq-platform-id:` SAN URI (read by
//! tq-std's `net::identity`, as the peer network reads it); DNS names and
//! IP addresses in a certificate are not used, and validity is judged as
//! of the certificate's issuance, as between peers (tq-std's
//! `net::validity`). So an answer reaches Nexus only from the sled it
//! asked, not from another sled at a reused address or a machine in the
//! middle; a plain-HTTP request gets no HTTP answer. Where `tq nexus` and
//! `tq status` learn a sled's platform id and the rack CA: the rack file
//! ([`nexus::rack_file`]), or `tq status --sled ADDR --platform-id
//! PART:SERIAL --rack-ca FILE`.
//!
//! TLS proves which sled answers; it does not decide who may call what:
//! no client is identified by it. `/v1/status` and `/metrics` are
//! readable by any TLS client; the other calls carry Nexus's authority,
//! which only an authenticator of each request can prove (without one,
//! any client that reaches the API can make them). TLS ends in [`front`], which hands each request to dropshot
//! over a loopback port; what a local process reaching that port can do
//! is in [`front`]'s doc ("The loopback hop").
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
//! - **TLS in the front door, on loopback by default**: rustls through
//!   `tokio-rustls` in [`front`], so there is one TLS listener and dropshot
//!   needs no TLS of its own; the clients' rustls configuration goes to
//!   reqwest as it is (`rustls-no-provider`: no second TLS stack, no
//!   system roots). The API listens on `127.0.0.1` unless configured
//!   otherwise.
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
pub mod https;
pub mod netns;
pub mod nexus;
pub mod server;
pub mod sled;
