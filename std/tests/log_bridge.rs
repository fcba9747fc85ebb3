//! The core's `log` lines arrive as `tracing` events once the bridge is
//! installed, inside the node task's spans. (Its own test binary: the
//! bridge is a process-wide logger.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::sync::{Arc, Mutex};

use common::rack::Rack;
use tq_core::api::LrtqUpgradeMsg;
use tq_core::ids::{Epoch, Threshold};
use tq_core::member_set::MemberSet;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// An event as seen: its target, its message, the names of its spans.
#[derive(Debug)]
struct Line {
    target: String,
    message: String,
    spans: Vec<String>,
}

#[derive(Default, Clone)]
struct Seen(Arc<Mutex<Vec<Line>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Seen {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name().to_owned()).collect())
            .unwrap_or_default();
        // `log` records carry their target in the normalized metadata.
        let target = tracing_log::NormalizeEvent::normalized_metadata(event)
            .map(|m| m.target().to_owned())
            .unwrap_or_else(|| event.metadata().target().to_owned());
        self.0.lock().unwrap().push(Line {
            target,
            message: message.0,
            spans,
        });
    }
}

#[test]
fn a_core_log_line_arrives_as_a_tracing_event_in_the_node_span() {
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();
    tq_std::observe::bridge_core_logs().unwrap();
    assert!(
        tq_std::observe::bridge_core_logs().is_err(),
        "installed once"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut rack = Rack::new(3, 0, 11);
        rack.start_all().await;
        let upgrade = LrtqUpgradeMsg {
            rack_id: common::rack::RACK_ID,
            epoch: Epoch(2),
            members: MemberSet::new(&rack.ids()).unwrap(),
            threshold: Threshold::new(2).unwrap(),
        };
        let auth = common::authority::authorize(&rack.ids()[0], &upgrade);
        rack.handle(0)
            .upgrade_from_lrtq(auth, upgrade)
            .await
            .unwrap()
            .answer
            .unwrap();
        rack.shutdown().await;
    });
    let seen = seen.0.lock().unwrap();
    let line = seen
        .iter()
        .find(|line| {
            line.target == "tq_core"
                && line
                    .message
                    .contains("coordinating the LRTQ upgrade at epoch 2")
        })
        .unwrap_or_else(|| panic!("no core line among {seen:#?}"));
    assert!(
        line.spans.contains(&"upgrade_from_lrtq".to_owned()),
        "{line:?}"
    );
    assert!(line.spans.contains(&"node".to_owned()), "{line:?}");
}
