//! The driving loop of [`crate::node`]'s contract, written once: run an
//! input, store the state if it changed, acknowledge the write, then hand
//! every message and event to the caller.
//!
//! The host shim, the firmware task and the test harness each implement
//! [`Io`] (their storage, network and event sink) and call [`drive`] for
//! every input; none of them writes this loop again.

use crate::ids::PlatformId;
use crate::node::{Event, Node, NodeCtx};
use crate::persistent::PersistentState;
use crate::wire::MAX_PEER_MSG_LEN;

/// Where a driven node's outputs go.
pub trait Io {
    /// Why storing failed.
    type StoreError;

    /// Stores `state` durably: `Ok` only once it would survive a crash.
    fn store(&mut self, state: &PersistentState) -> Result<(), Self::StoreError>;

    /// Sends `bytes`, one encoded peer message, to `to`. A send that fails
    /// is the caller's to count; the protocol recovers from lost messages
    /// (a peer that reconnects is sent what it still needs).
    fn send(&mut self, to: &PlatformId, bytes: &[u8]);

    /// Something happened (see [`Event`]).
    fn event(&mut self, event: Event);
}

/// Runs `input` on the node, then, if the state changed, stores it through
/// `io` and acknowledges the write, then hands every queued message
/// (encoded in `buf`) and every event to `io`.
///
/// Returns the input's result and how storing went. If the store failed,
/// nothing was sent and the state stays unstored: the next `drive` (with
/// any input, or a no-op one like `|_, _| ()`) tries the write again before
/// anything leaves.
pub fn drive<I: Io + ?Sized, T>(
    node: &mut Node,
    ctx: &mut NodeCtx,
    io: &mut I,
    buf: &mut [u8; MAX_PEER_MSG_LEN],
    input: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
) -> (T, Result<(), I::StoreError>) {
    let output = input(node, ctx);
    if let Some(to_store) = ctx.state_to_store() {
        let revision = to_store.revision;
        if let Err(error) = io.store(to_store.state) {
            return (output, Err(error));
        }
        ctx.acknowledge_stored(revision);
    }
    while let Some(transmit) = node.poll_transmit(ctx, buf) {
        if let Some(bytes) = buf.get(..transmit.len) {
            io.send(&transmit.to, bytes);
        }
    }
    while let Some(event) = ctx.poll_event() {
        io.event(event);
    }
    (output, Ok(()))
}
