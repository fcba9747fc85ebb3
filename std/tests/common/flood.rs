//! A flood of unauthenticated TCP connections: each of them opened from a
//! chosen source address, held silent until the listener closes it, then
//! opened again after a short pause, until the flood is stopped. Loopback
//! only: every 127.0.0.0/8 address routes to `lo` on Linux, so distinct
//! sources need no setup.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a flood connection of the tests waits before opening again
/// after it was closed, or after a connect failed: the flood is heavy, not
/// a busy loop that would starve the machine the test runs on.
pub const REOPEN_PAUSE: Duration = Duration::from_millis(50);

pub struct Flood {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    opened: Arc<AtomicU64>,
}

impl Flood {
    /// `per_target` connections to each target from each source, each
    /// opened again `pause` after it ends.
    pub fn start(
        targets: &[SocketAddr],
        sources: &[IpAddr],
        per_target: usize,
        pause: Duration,
    ) -> Self {
        let stop = CancellationToken::new();
        let opened = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for &target in targets {
            for &source in sources {
                for _ in 0..per_target {
                    tasks.spawn(hold(target, source, pause, stop.clone(), opened.clone()));
                }
            }
        }
        Self {
            stop,
            tasks,
            opened,
        }
    }

    /// TCP connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Stops every connection; returns how many were opened in all.
    pub async fn stop(mut self) -> u64 {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.opened()
    }
}

async fn hold(
    target: SocketAddr,
    source: IpAddr,
    pause: Duration,
    stop: CancellationToken,
    opened: Arc<AtomicU64>,
) {
    while !stop.is_cancelled() {
        let connected = async {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source, 0))?;
            socket.connect(target).await
        };
        let held = tokio::select! {
            _ = stop.cancelled() => return,
            connected = connected => connected,
        };
        if let Ok(mut stream) = held {
            opened.fetch_add(1, Ordering::Relaxed);
            let mut buf = [0u8; 256];
            // Silent: only read, until the listener closes it.
            let closed = async {
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = closed => {}
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
