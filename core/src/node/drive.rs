//! The driving loop of [`crate::node`]'s contract: run an input, store
//! the state if it changed, acknowledge the write, then hand every message
//! and event to the caller.
//!
//! Callers whose storage answers at once (the firmware task, the test
//! harness) implement [`Io`] and call [`drive`]; the host shim, whose
//! ledger write is awaited, implements [`AsyncIo`] and awaits
//! [`drive_async`]. The two differ only in awaiting the store; what
//! follows it, handing out messages and events, is `hand_out`, written
//! once. None of the callers writes this loop again.

use core::future::Future;

use crate::ids::PlatformId;
use crate::node::{Event, Node, NodeCtx};
use crate::persistent::PersistentState;
use crate::wire::MAX_PEER_MSG_LEN;

/// Where a driven node's messages and events go.
pub trait Outputs {
    /// Sends `bytes`, one encoded peer message, to `to`. A send that fails
    /// is the caller's to count; the protocol recovers from lost messages
    /// (a peer that reconnects is sent what it still needs).
    fn send(&mut self, to: &PlatformId, bytes: &[u8]);

    /// Something happened (see [`Event`]).
    fn event(&mut self, event: Event);
}

/// A driven node's storage, for a caller whose storage answers at once.
pub trait Io: Outputs {
    /// Why storing failed.
    type StoreError;

    /// Stores `state` durably: `Ok` only once it would survive a crash.
    fn store(&mut self, state: &PersistentState) -> Result<(), Self::StoreError>;
}

/// [`Io`] for a caller that awaits its storage (the host's ledger write
/// runs off the async threads).
pub trait AsyncIo: Outputs {
    /// Why storing failed.
    type StoreError;

    /// Stores `state` durably: `Ok` only once it would survive a crash.
    fn store(
        &mut self,
        state: &PersistentState,
    ) -> impl Future<Output = Result<(), Self::StoreError>>;
}

/// Runs `input` on the node, then, if the state changed, stores it through
/// `io` and acknowledges the write, then hands every queued message
/// (encoded in `buf`) and every event to `io` (`hand_out`).
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
    hand_out(node, ctx, io, buf);
    (output, Ok(()))
}

/// [`drive`] for an [`AsyncIo`]: the same steps, awaiting the store.
pub async fn drive_async<I: AsyncIo + ?Sized, T>(
    node: &mut Node,
    ctx: &mut NodeCtx,
    io: &mut I,
    buf: &mut [u8; MAX_PEER_MSG_LEN],
    input: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
) -> (T, Result<(), I::StoreError>) {
    let output = input(node, ctx);
    if let Some(to_store) = ctx.state_to_store() {
        let revision = to_store.revision;
        if let Err(error) = io.store(to_store.state).await {
            return (output, Err(error));
        }
        ctx.acknowledge_stored(revision);
    }
    hand_out(node, ctx, io, buf);
    (output, Ok(()))
}

/// Hands every queued message (encoded in `buf`) and every event to
/// `outputs`: nothing, while the state is not stored.
fn hand_out<O: Outputs + ?Sized>(
    node: &Node,
    ctx: &mut NodeCtx,
    outputs: &mut O,
    buf: &mut [u8; MAX_PEER_MSG_LEN],
) {
    while let Some(transmit) = node.poll_transmit(ctx, buf) {
        if let Some(bytes) = buf.get(..transmit.len) {
            outputs.send(&transmit.to, bytes);
        }
    }
    while let Some(event) = ctx.poll_event() {
        outputs.event(event);
    }
}
