//! A flood of refused connections writes one warning per reason, not one
//! per connection, while every refusal is still counted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tq_core::ids::SLED_PART_NUMBER;
use tq_std::net::HandshakeRefusal;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The messages of the warnings logged.
#[derive(Default, Clone)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
    }
}

/// The flood is far shorter than the log's interval (ten seconds).
const FLOOD: u64 = 40;

// One thread: the listener's tasks log through this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_refusals_logs_one_warning_per_reason() {
    let warnings = Warnings::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    let ca = Ca::new("rack");
    let listener = start(&ca.identity(&pid(SLED_PART_NUMBER, "B")), fast_config()).await;
    let addr = listener.net.local_addr();

    for _ in 0..FLOOD {
        let mut garbage = TcpStream::connect(addr).await.unwrap();
        garbage
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(closed_by_peer(&mut garbage).await);
    }
    eventually("every refusal counted", || {
        listener.net.stats().refused(HandshakeRefusal::Protocol) == FLOOD
    })
    .await;

    let refused: Vec<String> = warnings
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains("refused"))
        .cloned()
        .collect();
    assert_eq!(refused, ["handshake refused"], "{FLOOD} refusals");
}
