//! Prints the RAM the core's types take and the largest encodings, the
//! figures a firmware engineer budgets with:
//!
//!     cargo run -p tq-core --example sizes
//!
//! (Sizes are for the host; `size_of` on the Cortex-M7 is the same or
//! smaller, since `usize` is 4 bytes there.)

use core::mem::size_of;

use tq_core::config::Configuration;
use tq_core::messages::PeerMsg;
use tq_core::node::{Node, NodeCtx};
use tq_core::persistent::PersistentState;
use tq_core::wire;

fn main() {
    let node = size_of::<Node>();
    let state = size_of::<PersistentState>();
    println!("size_of::<Node>()              {node:>6} bytes");
    println!("size_of::<PersistentState>()   {state:>6} bytes");
    println!("  node + persistent state      {:>6} bytes", node + state);
    let ctx = size_of::<NodeCtx>();
    println!("size_of::<NodeCtx>()           {ctx:>6} bytes (holds the persistent state)");
    println!(
        "  node + context               {:>6} bytes (with the deepest stack, goal 32768)",
        node + ctx
    );
    println!(
        "size_of::<Configuration>()     {:>6} bytes",
        size_of::<Configuration>()
    );
    println!(
        "size_of::<PeerMsg>() (decoded) {:>6} bytes",
        size_of::<PeerMsg>()
    );
    println!(
        "MAX_PEER_MSG_LEN               {:>6} bytes",
        wire::MAX_PEER_MSG_LEN
    );
    println!(
        "MAX_PERSISTENT_STATE_LEN       {:>6} bytes",
        wire::MAX_PERSISTENT_STATE_LEN
    );
    println!(
        "MAX_RECONFIGURE_MSG_LEN        {:>6} bytes",
        wire::MAX_RECONFIGURE_MSG_LEN
    );
    println!(
        "MAX_LRTQ_UPGRADE_MSG_LEN       {:>6} bytes",
        wire::MAX_LRTQ_UPGRADE_MSG_LEN
    );
    println!(
        "MAX_LRTQ_SHARE_DATA_LEN        {:>6} bytes",
        wire::MAX_LRTQ_SHARE_DATA_LEN
    );
    for (name, len) in [
        ("MAX_COMMIT_REQUEST_LEN", wire::MAX_COMMIT_REQUEST_LEN),
        ("MAX_CONFIGURATION_LEN", wire::MAX_CONFIGURATION_LEN),
        ("MAX_ANSWER_LEN", wire::MAX_ANSWER_LEN),
        (
            "MAX_COORDINATOR_STATUS_LEN",
            wire::MAX_COORDINATOR_STATUS_LEN,
        ),
        ("MAX_NODE_STATUS_LEN", wire::MAX_NODE_STATUS_LEN),
    ] {
        println!("{name:<30} {len:>6} bytes");
    }
}
