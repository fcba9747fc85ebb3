//! The driving loop of [`crate::node`]'s contract, written once: run an
//! input, store the state if it changed, acknowledge the write, then hand
//! every message and event to the caller.
//!
//! Callers whose storage answers at once (the firmware task, the test
//! harness) implement [`Io`] and call [`drive`]; the host shim, whose
//! ledger write is awaited, implements [`AsyncIo`] and awaits
//! [`drive_async`]. Both run the same loop: [`drive`] polls
//! [`drive_async`] over an [`Io`] whose store is always ready. None of them
//! writes this loop again.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use crate::ids::PlatformId;
use crate::node::{Event, Node, NodeCtx};
use crate::persistent::PersistentState;
use crate::wire::MAX_PEER_MSG_LEN;

/// Where a driven node's outputs go, for a caller whose storage answers at
/// once.
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

/// [`Io`] for a caller that awaits its storage (the host's ledger write
/// runs off the async threads).
pub trait AsyncIo {
    /// Why storing failed.
    type StoreError;

    /// Stores `state` durably: `Ok` only once it would survive a crash.
    fn store(
        &mut self,
        state: &PersistentState,
    ) -> impl Future<Output = Result<(), Self::StoreError>>;

    /// As [`Io::send`].
    fn send(&mut self, to: &PlatformId, bytes: &[u8]);

    /// As [`Io::event`].
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
    let mut io = Ready(io);
    let mut driving = pin!(drive_async(node, ctx, &mut io, buf, input));
    let mut cx = Context::from_waker(Waker::noop());
    // An `Io`'s store never waits, so the first poll finishes.
    loop {
        if let Poll::Ready(done) = driving.as_mut().poll(&mut cx) {
            return done;
        }
    }
}

/// [`drive`] for an [`AsyncIo`]: the same loop, awaiting the store.
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

/// An [`Io`] as an [`AsyncIo`] whose store is ready at once.
struct Ready<'a, I: ?Sized>(&'a mut I);

impl<I: Io + ?Sized> AsyncIo for Ready<'_, I> {
    type StoreError = I::StoreError;

    fn store(
        &mut self,
        state: &PersistentState,
    ) -> impl Future<Output = Result<(), Self::StoreError>> {
        core::future::ready(self.0.store(state))
    }

    fn send(&mut self, to: &PlatformId, bytes: &[u8]) {
        self.0.send(to, bytes);
    }

    fn event(&mut self, event: Event) {
        self.0.event(event);
    }
}
