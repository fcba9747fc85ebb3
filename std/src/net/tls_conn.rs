//! A TLS connection over TCP whose buffers are ours, so that what they held
//! can be zeroized.
//!
//! rustls's buffered connections (and tokio-rustls over them) decrypt each
//! received record in place in a receive buffer of rustls's own and never
//! clear it: the plaintext of the last records, shares included, stays
//! there while the connection lives. Here rustls's unbuffered API does the
//! TLS and we do the I/O: received bytes go into a [`RecvBuf`] that rustls
//! decrypts in place and that is zeroized as soon as a record is consumed;
//! frames to send are staged next to their length prefix in a zeroizing
//! buffer, encrypted into our outgoing buffer and wiped at once. Neither
//! buffer ever grows (fixed sizes below), so no reallocation leaves a copy.
//!
//! What rustls still copies: each received record's plaintext into a vector
//! of its own, which it frees once we have copied it into a [`Frame`]. That
//! vector is cleared only if the process's allocator zeroes freed memory,
//! as `tq sled`'s does (see the crate doc, on zeroization).

use std::io;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncryptError, UnbufferedStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::{Zeroize, Zeroizing};

use super::frame::{FRAME_PREFIX_LEN, Frame, FrameReader, MAX_FRAME_LEN, prefix_of};
use super::stats::CloseReason;

/// Largest TLS 1.3 record on the wire: a 5-byte header and at most 2^14
/// plaintext bytes plus 256 of expansion (RFC 8446, section 5.2).
const MAX_RECORD_LEN: usize = 5 + (1 << 14) + 256;

/// Largest handshake message rustls accepts (it refuses larger ones).
const MAX_HANDSHAKE_MESSAGE_LEN: usize = 0xffff;

/// Received bytes: room for the largest handshake message rustls accepts
/// (joined in this buffer from its records) and one more record.
const INCOMING_LEN: usize = MAX_HANDSHAKE_MESSAGE_LEN + MAX_RECORD_LEN;

/// Bytes of the largest frame with its prefix.
const MAX_STAGED_LEN: usize = FRAME_PREFIX_LEN + MAX_FRAME_LEN;

/// Bytes to send: the largest frame as records (each at most 2^14
/// plaintext bytes), or a handshake flight, whichever is larger.
const OUTGOING_LEN: usize = {
    let records = MAX_STAGED_LEN.div_ceil(1 << 14);
    let frame = MAX_STAGED_LEN + records * MAX_RECORD_LEN;
    if frame > INCOMING_LEN {
        frame
    } else {
        INCOMING_LEN
    }
};

/// The two ends of the unbuffered API: the listener's and the dialer's.
pub(crate) trait Side: Send {
    /// rustls's per-side state.
    type Data;

    /// Hands rustls the received bytes; see
    /// `UnbufferedConnectionCommon::process_tls_records`.
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;

    /// The state both sides share (the peer's certificates).
    fn common(&self) -> &rustls::CommonState;
}

impl Side for UnbufferedServerConnection {
    type Data = ServerConnectionData;

    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }

    fn common(&self) -> &rustls::CommonState {
        self
    }
}

impl Side for UnbufferedClientConnection {
    type Data = ClientConnectionData;

    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }

    fn common(&self) -> &rustls::CommonState {
        self
    }
}

/// Received TLS bytes, of a fixed size; every byte past the ones still to
/// be processed is zero.
struct RecvBuf {
    buf: Zeroizing<Vec<u8>>,
    used: usize,
}

impl RecvBuf {
    fn new() -> Self {
        Self {
            buf: Zeroizing::new(vec![0; INCOMING_LEN]),
            used: 0,
        }
    }

    fn filled(&mut self) -> &mut [u8] {
        self.buf.get_mut(..self.used).unwrap_or_default()
    }

    fn spare(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.used..).unwrap_or_default()
    }

    /// Drops the first `n` bytes (rustls is done with them: they may be
    /// plaintext it decrypted in place) and zeroes what they leave behind.
    fn discard(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let old = self.used;
        let n = n.min(old);
        self.buf.copy_within(n..old, 0);
        self.used = old - n;
        if let Some(stale) = self.buf.get_mut(self.used..old) {
            stale.zeroize();
        }
    }
}

/// Why a handshake failed.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// rustls refused: a verifier, an alert, a protocol error.
    Tls(rustls::Error),
    /// The connection failed or closed, or a flight did not fit.
    Io(io::Error),
}

/// An established TLS connection over TCP.
pub(crate) struct TlsConn<C> {
    tcp: TcpStream,
    conn: C,
    incoming: RecvBuf,
    /// Ciphertext to send: `outgoing[..out_len]`. Not secret, but of a
    /// fixed size like the rest.
    outgoing: Vec<u8>,
    out_len: usize,
    /// Frames with their prefixes, between being copied and encrypted;
    /// zeroed after every encryption.
    staging: Zeroizing<Vec<u8>>,
    /// Cuts the received plaintext into frames.
    frames: FrameReader,
    /// Whole frames not yet taken ([`Self::take_received`]).
    received: Vec<Frame>,
    /// rustls returned an error: it must not be given the received bytes
    /// again (it would process the bad record again and send a second
    /// fatal alert, which it refuses with a panic).
    failed: bool,
}

/// Why processing what was received failed.
enum Failure {
    Tls(rustls::Error),
    /// A frame's length prefix is above [`MAX_FRAME_LEN`].
    Oversize,
}

/// What one call to rustls asked of us.
enum Step {
    /// Nothing more can happen without reading.
    NeedRead,
    /// Keep calling rustls.
    Again,
    /// The handshake is over.
    Established,
    /// The peer sent close_notify.
    PeerClosed,
}

impl<C: Side> TlsConn<C> {
    /// Runs the handshake of `conn` over `tcp`. On a refusal, the alert
    /// rustls made is sent (best effort) before the error is returned.
    pub(crate) async fn handshake(tcp: TcpStream, conn: C) -> Result<Self, HandshakeError> {
        let mut tls = Self {
            tcp,
            conn,
            incoming: RecvBuf::new(),
            outgoing: vec![0; OUTGOING_LEN],
            out_len: 0,
            staging: Zeroizing::new(vec![0; MAX_STAGED_LEN]),
            frames: FrameReader::default(),
            received: Vec::new(),
            failed: false,
        };
        loop {
            let step = match tls.step() {
                Ok(step) => step,
                Err(Failure::Tls(error)) => {
                    tls.send_alert().await;
                    return Err(HandshakeError::Tls(error));
                }
                // Application data came with the end of the handshake.
                Err(Failure::Oversize) => {
                    return Err(HandshakeError::Io(io::Error::other("oversize frame")));
                }
            };
            match step {
                Step::Again => {}
                Step::Established => break,
                Step::PeerClosed => {
                    return Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Step::NeedRead => {
                    tls.flush().await.map_err(HandshakeError::Io)?;
                    if tls.incoming.spare().is_empty() {
                        return Err(HandshakeError::Io(io::Error::other(
                            "handshake message too large",
                        )));
                    }
                    if tls.read().await.map_err(HandshakeError::Io)? == 0 {
                        return Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
        tls.flush().await.map_err(HandshakeError::Io)?;
        Ok(tls)
    }

    /// The state both sides share (the peer's certificates).
    pub(crate) fn common(&self) -> &rustls::CommonState {
        self.conn.common()
    }

    /// Reads what the peer sent (cancel safe). `Ok(0)` is the end of the
    /// TCP stream.
    pub(crate) async fn read(&mut self) -> io::Result<usize> {
        let spare = self.incoming.spare();
        if spare.is_empty() {
            // Only partial records stay after processing: cannot happen.
            return Err(io::Error::other("receive buffer full"));
        }
        let n = self.tcp.read(spare).await?;
        // Only here, after the read completed: cancel safe.
        self.incoming.used += n;
        Ok(n)
    }

    /// Processes what was read: whole frames go to `out`, what rustls
    /// wants to send goes to the outgoing buffer ([`Self::flush`]).
    /// `Ok(true)` if the peer sent close_notify.
    pub(crate) fn take_received(&mut self, out: &mut Vec<Frame>) -> Result<bool, CloseReason> {
        let closed = loop {
            match self.step() {
                Ok(Step::Again) => {}
                Ok(Step::NeedRead | Step::Established) => break false,
                Ok(Step::PeerClosed) => break true,
                Err(Failure::Oversize) => return Err(CloseReason::Oversize),
                Err(Failure::Tls(error)) => {
                    tracing::debug!(%error, "TLS error");
                    return Err(CloseReason::Io);
                }
            }
        };
        out.append(&mut self.received);
        Ok(closed)
    }

    /// Whether the stream stopped inside a frame.
    pub(crate) fn mid_frame(&self) -> bool {
        self.frames.mid_frame()
    }

    /// One call to rustls, and what it asked done. Received application
    /// data is cut into frames into `self.received`.
    fn step(&mut self) -> Result<Step, Failure> {
        if self.failed {
            return Err(Failure::Tls(rustls::Error::General(
                "connection failed".into(),
            )));
        }
        let UnbufferedStatus { mut discard, state } = self.conn.process(self.incoming.filled());
        let state = match state {
            Ok(state) => state,
            Err(error) => {
                self.failed = true;
                self.incoming.discard(discard);
                return Err(Failure::Tls(error));
            }
        };
        let step = match state {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(|error| {
                        self.failed = true;
                        Failure::Tls(error)
                    })?;
                    discard += record.discard;
                    self.frames
                        .push(record.payload, &mut self.received)
                        .map_err(|_| Failure::Oversize)?;
                }
                Step::Again
            }
            ConnectionState::EncodeTlsData(mut data) => {
                let spare = self.outgoing.get_mut(self.out_len..).unwrap_or_default();
                let written = data
                    .encode(spare)
                    .map_err(|e| Failure::Tls(rustls::Error::General(e.to_string())))?;
                self.out_len += written;
                Step::Again
            }
            ConnectionState::TransmitTlsData(data) => {
                // Sent by the next flush, before anything is read again.
                data.done();
                Step::Again
            }
            ConnectionState::BlockedHandshake => Step::NeedRead,
            ConnectionState::WriteTraffic(_) => Step::Established,
            ConnectionState::PeerClosed | ConnectionState::Closed => Step::PeerClosed,
            // Early data is never accepted (no resumption); anything else
            // is a state this code does not know.
            _ => {
                return Err(Failure::Tls(rustls::Error::General(
                    "unexpected TLS state".into(),
                )));
            }
        };
        self.incoming.discard(discard);
        Ok(step)
    }

    /// Encrypts `frames`, each after its length prefix, and sends them.
    /// Frames are staged together as long as they fit, and each staging's
    /// worth is encrypted at once: a burst becomes one record (or a few),
    /// not a record per frame. Every frame must be at most
    /// [`MAX_FRAME_LEN`] bytes ([`super::Net::send`] checks).
    pub(crate) async fn send(&mut self, frames: &[Frame]) -> io::Result<()> {
        let mut staged = 0;
        for frame in frames {
            let len = FRAME_PREFIX_LEN + frame.len();
            if staged + len > self.staging.len() {
                self.encrypt_and_wipe_staged(staged).await?;
                staged = 0;
            }
            let Some(staging) = self.staging.get_mut(staged..staged + len) else {
                self.wipe_staged(staged);
                return Err(io::Error::other("frame too long"));
            };
            let (prefix, body) = staging.split_at_mut(FRAME_PREFIX_LEN);
            prefix.copy_from_slice(&prefix_of(frame.len()));
            body.copy_from_slice(frame);
            staged += len;
        }
        self.encrypt_and_wipe_staged(staged).await?;
        self.flush().await
    }

    /// Encrypts `staging[..len]` (nothing if empty), then zeroes it.
    async fn encrypt_and_wipe_staged(&mut self, len: usize) -> io::Result<()> {
        let encrypted = if len == 0 {
            Ok(())
        } else {
            self.encrypt_staged(len).await
        };
        self.wipe_staged(len);
        encrypted
    }

    fn wipe_staged(&mut self, len: usize) {
        if let Some(staged) = self.staging.get_mut(..len) {
            staged.zeroize();
        }
    }

    /// Encrypts `staging[..len]` into the outgoing buffer, sending what is
    /// there first if it does not fit. TLS messages rustls queued first (a
    /// key update) go first.
    async fn encrypt_staged(&mut self, len: usize) -> io::Result<()> {
        let mut flushed = false;
        // A few queued TLS messages at most, then the frame.
        for _ in 0..8 {
            let plaintext = self.staging.get(..len).unwrap_or_default();
            let spare = self.outgoing.get_mut(self.out_len..).unwrap_or_default();
            let UnbufferedStatus { discard, state } = self.conn.process(self.incoming.filled());
            let state = match state {
                Ok(state) => state,
                Err(error) => {
                    self.failed = true;
                    return Err(io::Error::other(error));
                }
            };
            let result = match state {
                ConnectionState::WriteTraffic(mut traffic) => traffic.encrypt(plaintext, spare),
                ConnectionState::EncodeTlsData(mut data) => {
                    let written = data.encode(spare).map_err(io::Error::other)?;
                    self.out_len += written;
                    self.incoming.discard(discard);
                    continue;
                }
                ConnectionState::TransmitTlsData(data) => {
                    data.done();
                    self.incoming.discard(discard);
                    continue;
                }
                // Everything received was processed before this call.
                other => {
                    return Err(io::Error::other(format!("cannot send in state {other:?}")));
                }
            };
            self.incoming.discard(discard);
            match result {
                Ok(written) => {
                    self.out_len += written;
                    return Ok(());
                }
                Err(EncryptError::InsufficientSize(_)) if !flushed => {
                    self.flush().await?;
                    flushed = true;
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        Err(io::Error::other("TLS would not take the frame"))
    }

    /// Whether rustls left bytes to send (see [`Self::flush`]).
    pub(crate) fn has_output(&self) -> bool {
        self.out_len > 0
    }

    /// Sends everything in the outgoing buffer.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if self.out_len > 0 {
            let pending = self.outgoing.get(..self.out_len).unwrap_or_default();
            self.tcp.write_all(pending).await?;
            self.out_len = 0;
        }
        Ok(())
    }

    /// Sends close_notify (best effort) and shuts the TCP stream down.
    pub(crate) async fn close(&mut self) {
        if !self.failed {
            let UnbufferedStatus { discard, state } = self.conn.process(self.incoming.filled());
            if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
                let spare = self.outgoing.get_mut(self.out_len..).unwrap_or_default();
                if let Ok(written) = traffic.queue_close_notify(spare) {
                    self.out_len += written;
                }
            }
            self.incoming.discard(discard);
        }
        let _ = self.flush().await;
        let _ = self.tcp.shutdown().await;
    }

    /// After a refusal: sends the alert rustls queued, if it did. One call
    /// only: the alert is the one message queued since the last call
    /// (queued messages come out before any received byte is looked at),
    /// and a second call would process the bad record again.
    async fn send_alert(&mut self) {
        let UnbufferedStatus { discard, state } = self.conn.process(self.incoming.filled());
        if let Ok(ConnectionState::EncodeTlsData(mut data)) = state {
            let spare = self.outgoing.get_mut(self.out_len..).unwrap_or_default();
            if let Ok(written) = data.encode(spare) {
                self.out_len += written;
            }
        }
        self.incoming.discard(discard);
        let _ = self.flush().await;
    }
}
