//! One established connection: reads frames, writes the node's frames and
//! keep-alives, and ends on the first fault, timeout or close request.
//!
//! A connection becomes *established* (its slot opened to sends, and
//! `Connected` reported) when the first frame from the peer arrives: in
//! TLS 1.3 a dialer finishes its handshake before the listener has checked
//! the dialer's certificate, so only a frame proves the peer accepted us.
//! Both sides send a keep-alive at once, so this takes one round trip.
//!
//! One task does both directions over a [`TlsConn`] (whose buffers are
//! ours, see `tls_conn`): it waits for whichever comes first of received
//! bytes, a queued frame, the keep-alive deadline and the silence deadline.
//! While it hands a frame to the node or writes a batch it does not read
//! (the kernel's socket buffers hold what arrives meanwhile) nor send
//! keep-alives: a node that leaves its event queue full for the peer's
//! inactivity timeout loses the connection.
//!
//! A keep-alive goes out only when nothing else did for a keep-alive
//! interval: its one job is to keep the peer's silence deadline away, and
//! any frame does that. Each of the two deadlines is one timer for the
//! connection's life, moved only when it fires: a frame costs a clock
//! read, not a timer (see [`Deadline`]).

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep, sleep_until, timeout};
use tq_core::ids::PlatformId;

use super::NetEvent;
use super::frame::{FRAME_PREFIX_LEN, Frame, check_header};
use super::manager::Shared;
use super::registry::Ticket;
use super::stats::{CloseReason, PeerCell, bump, lock};
use super::tls_conn::{Side, TlsConn};

/// How long a closing connection may take to send its TLS close_notify.
const CLOSE_NOTIFY_TIMEOUT: Duration = Duration::from_millis(200);

/// How a connection ended.
pub(crate) struct Ended {
    pub(crate) established: bool,
    pub(crate) reason: CloseReason,
}

/// Runs a connection whose handshake with `peer` completed, from taking its
/// slot to reporting `Disconnected`.
pub(crate) async fn run<C: Side>(shared: &Shared, peer: &PlatformId, mut tls: TlsConn<C>) -> Ended {
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
    let (queue_tx, queue_rx) = mpsc::channel(shared.config.write_queue_len.max(1));
    let mut conn = Conn {
        shared,
        peer,
        conn_id,
        cell,
        queue_tx: Some(queue_tx),
    };

    let reason = tokio::select! {
        // A close request wins over what it caused (a dropped queue).
        biased;
        reason = closer.closed() => reason,
        reason = conn.serve(&mut tls, queue_rx) => reason,
    };
    // Best effort: a peer that does not read cannot hold us here.
    let _ = timeout(CLOSE_NOTIFY_TIMEOUT, tls.close()).await;

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

/// What woke the connection up.
enum Wake {
    Read(std::io::Result<usize>),
    Send(Frame),
}

/// A deadline that something keeps pushing back (each frame received, each
/// frame sent): [`Self::push_back`] only records the new time; the one
/// timer is moved when it fires early, so a busy connection pays a clock
/// read per batch rather than a timer per frame.
struct Deadline {
    timer: Pin<Box<Sleep>>,
    /// The last time the deadline was pushed back from; `None`: never.
    since: Option<Instant>,
    period: Duration,
}

impl Deadline {
    /// A deadline at `first`, then `period` after each push.
    fn new(first: Instant, period: Duration) -> Self {
        Self {
            timer: Box::pin(sleep_until(first)),
            since: None,
            period,
        }
    }

    fn push_back(&mut self) {
        self.since = Some(Instant::now());
    }

    /// Resolves when the deadline has passed: `period` after the last push
    /// (or at `first`, with none yet).
    async fn passed(&mut self) {
        loop {
            (&mut self.timer).await;
            let due = self.since.map(|since| since + self.period);
            match due {
                Some(due) if due > self.timer.deadline() => self.timer.as_mut().reset(due),
                _ => return,
            }
        }
    }
}

impl Conn<'_> {
    async fn serve<C: Side>(
        &mut self,
        tls: &mut TlsConn<C>,
        mut queue: mpsc::Receiver<Frame>,
    ) -> CloseReason {
        let config = &self.shared.config;
        // The first keep-alive goes at once: the peer's first frame is what
        // establishes a connection, on both sides.
        let mut keep_alive = Deadline::new(Instant::now(), config.keepalive_interval);
        let mut silence = Deadline::new(
            Instant::now() + config.inactivity_timeout,
            config.inactivity_timeout,
        );
        // The queue closes when the slot is taken or removed, which also
        // fires the connection's closer: keep going until that wins.
        let mut queue_open = true;
        let mut batch = Vec::with_capacity(config.write_queue_len.max(1));
        let mut received = Vec::new();
        // Frames that came with the end of the handshake.
        let mut peer_closed = match tls.take_received(&mut received) {
            Ok(closed) => closed,
            Err(reason) => return reason,
        };
        loop {
            if !received.is_empty() {
                for frame in received.drain(..) {
                    if let Err(reason) = self.take_frame(frame).await {
                        return reason;
                    }
                }
                // From when they were handed over: time the node kept us
                // waiting is not the peer's silence.
                silence.push_back();
            }
            if peer_closed {
                return if tls.mid_frame() {
                    CloseReason::Io
                } else {
                    CloseReason::PeerClosed
                };
            }
            let wake = tokio::select! {
                biased;
                () = silence.passed() => return CloseReason::Inactivity,
                read = tls.read() => Wake::Read(read),
                frame = queue.recv(), if queue_open => match frame {
                    Some(frame) => Wake::Send(frame),
                    None => {
                        queue_open = false;
                        continue;
                    }
                },
                () = keep_alive.passed() => Wake::Send(Frame::default()),
            };
            match wake {
                Wake::Read(Err(e)) => {
                    tracing::debug!(error = %e, "read failed");
                    return CloseReason::Io;
                }
                // The TCP stream ended without close_notify.
                Wake::Read(Ok(0)) => peer_closed = true,
                Wake::Read(Ok(_)) => {
                    peer_closed = match tls.take_received(&mut received) {
                        Ok(closed) => closed,
                        Err(reason) => return reason,
                    };
                    // What rustls answered (a key update), if anything: the
                    // write and its timer only then.
                    if tls.has_output()
                        && let Err(reason) = self.within_timeout(tls.flush()).await
                    {
                        return reason;
                    }
                }
                Wake::Send(first) => {
                    // Whatever else is queued goes out with it, in one
                    // write, not one each: a burst (a prepare to every
                    // member, shares to every loader) costs one system call.
                    batch.push(first);
                    while batch.len() < batch.capacity() {
                        match queue.try_recv() {
                            Ok(frame) => batch.push(frame),
                            Err(_) => break,
                        }
                    }
                    if let Err(reason) = self.within_timeout(tls.send(&batch)).await {
                        return reason;
                    }
                    keep_alive.push_back();
                    let mut stats = lock(&self.cell);
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

    /// Runs a write, which must end within the inactivity timeout.
    async fn within_timeout(
        &self,
        write: impl Future<Output = std::io::Result<()>>,
    ) -> Result<(), CloseReason> {
        match timeout(self.shared.config.inactivity_timeout, write).await {
            Err(_) => Err(CloseReason::WriteTimeout),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
                Err(CloseReason::Io)
            }
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Counts a received frame, establishes the connection on the first,
    /// and hands every message to the node.
    async fn take_frame(&mut self, frame: Frame) -> Result<(), CloseReason> {
        let keep_alive = frame.is_empty();
        if !keep_alive {
            check_header(&frame, self.shared.config.rack_id.as_ref())?;
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
                return Err(CloseReason::Replaced);
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
        Ok(())
    }
}
