//! One established connection: reads frames, writes the node's frames and
//! keep-alives, and ends on the first fault, timeout or close request.
//!
//! A connection becomes *established* (its slot opened to sends, and
//! `Connected` reported) when the first frame from the peer arrives: in
//! TLS 1.3 a dialer finishes its handshake before the listener has checked
//! the dialer's certificate, so only a frame proves the peer accepted us.
//! Both sides send a keep-alive at once, so this takes one round trip.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval, timeout};
use tq_core::ids::PlatformId;

use super::NetEvent;
use super::frame::{FRAME_PREFIX_LEN, Frame, ReadError, check_header, read_frame, write_frames};
use super::manager::Shared;
use super::registry::Ticket;
use super::stats::{CloseReason, PeerCell, bump, lock};

/// How long a closing connection may take to send its TLS close_notify.
const CLOSE_NOTIFY_TIMEOUT: Duration = Duration::from_millis(200);

/// How a connection ended.
pub(crate) struct Ended {
    pub(crate) established: bool,
    pub(crate) reason: CloseReason,
}

/// Runs a connection whose handshake with `peer` completed, from taking its
/// slot to reporting `Disconnected`.
pub(crate) async fn run<S>(shared: &Shared, peer: &PlatformId, stream: S) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ticket = shared.take_slot(peer);
    let Ticket {
        conn_id,
        closer,
        done,
        predecessor,
    } = ticket;
    if let Some(predecessor) = predecessor {
        // The old connection was closed when we took the slot; wait for it
        // to report `Disconnected` so the node sees the two in order.
        let _ = predecessor.await;
    }
    let cell = shared.stats.peer(peer);
    let write_cell = cell.clone();
    let (queue_tx, queue_rx) = mpsc::channel(shared.config.write_queue_len.max(1));
    let mut conn = Conn {
        shared,
        peer,
        conn_id,
        cell,
        queue_tx: Some(queue_tx),
    };

    let (mut reader, mut writer) = tokio::io::split(stream);
    let reason = tokio::select! {
        // A close request wins over what it caused (a dropped queue).
        biased;
        reason = closer.closed() => reason,
        reason = conn.read_loop(&mut reader) => reason,
        reason = write_loop(shared, &write_cell, &mut writer, queue_rx) => reason,
    };
    // Best effort: a peer that does not read cannot hold us here.
    let _ = timeout(CLOSE_NOTIFY_TIMEOUT, writer.shutdown()).await;

    let established = conn.queue_tx.is_none();
    shared.registry.release(peer, conn_id);
    // Counted for every connection past the handshake: the peer is known.
    bump(&mut lock(&conn.cell).closes, reason as usize);
    if established {
        tracing::info!(reason = reason.label(), "disconnected");
        shared.report(NetEvent::Disconnected(peer.clone())).await;
    } else {
        tracing::debug!(reason = reason.label(), "ended before the first frame");
    }
    drop(done);
    Ended {
        established,
        reason,
    }
}

struct Conn<'a> {
    shared: &'a Shared,
    peer: &'a PlatformId,
    conn_id: u64,
    cell: PeerCell,
    /// Present until the connection is established.
    queue_tx: Option<mpsc::Sender<Frame>>,
}

impl Conn<'_> {
    async fn read_loop<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> CloseReason {
        let inactivity = self.shared.config.inactivity_timeout;
        loop {
            let frame = match timeout(inactivity, read_frame(reader)).await {
                Err(_) => return CloseReason::Inactivity,
                Ok(Ok(None)) => return CloseReason::PeerClosed,
                Ok(Err(ReadError::Oversize)) => return CloseReason::Oversize,
                Ok(Err(ReadError::Io(e))) => {
                    tracing::debug!(error = %e, "read failed");
                    return CloseReason::Io;
                }
                Ok(Ok(Some(frame))) => frame,
            };
            let keep_alive = frame.is_empty();
            if !keep_alive
                && let Err(reason) = check_header(&frame, self.shared.config.rack_id.as_ref())
            {
                return reason;
            }
            {
                let mut stats = lock(&self.cell);
                stats.bytes_in += (FRAME_PREFIX_LEN + frame.len()) as u64;
                if keep_alive {
                    stats.pings_in += 1;
                } else {
                    stats.frames_in += 1;
                }
            }
            if let Some(queue) = self.queue_tx.take() {
                if !self
                    .shared
                    .registry
                    .establish(self.peer, self.conn_id, queue)
                {
                    return CloseReason::Replaced;
                }
                {
                    let mut stats = lock(&self.cell);
                    if stats.connects > 0 {
                        stats.reconnects += 1;
                    }
                    stats.connects += 1;
                }
                tracing::info!("connected");
                self.shared
                    .report(NetEvent::Connected(self.peer.clone()))
                    .await;
            }
            if !keep_alive {
                self.shared
                    .report(NetEvent::Frame(self.peer.clone(), frame))
                    .await;
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    shared: &Shared,
    cell: &PeerCell,
    writer: &mut W,
    mut queue: mpsc::Receiver<Frame>,
) -> CloseReason {
    let mut keep_alive = interval(shared.config.keepalive_interval);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The queue closes when the slot is taken or removed, which also fires
    // the connection's closer: keep going until that wins the race.
    let mut queue_open = true;
    let mut batch = Vec::with_capacity(shared.config.write_queue_len.max(1));
    loop {
        let first = tokio::select! {
            biased;
            frame = queue.recv(), if queue_open => match frame {
                Some(frame) => frame,
                None => {
                    queue_open = false;
                    continue;
                }
            },
            _ = keep_alive.tick() => Frame::default(),
        };
        // Whatever else is queued goes out with it, in one flush (one TLS
        // write), not one each: a burst (a prepare to every member, shares
        // to every loader) costs one system call.
        batch.push(first);
        while batch.len() < batch.capacity() {
            match queue.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(_) => break,
            }
        }
        let sent = timeout(
            shared.config.inactivity_timeout,
            write_frames(writer, &batch),
        )
        .await;
        match sent {
            Err(_) => return CloseReason::WriteTimeout,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
                return CloseReason::Io;
            }
            Ok(Ok(())) => {
                let mut stats = lock(cell);
                for frame in batch.drain(..) {
                    stats.bytes_out += (FRAME_PREFIX_LEN + frame.len()) as u64;
                    if frame.is_empty() {
                        stats.pings_out += 1;
                    } else {
                        stats.frames_out += 1;
                    }
                }
            }
        }
    }
}
