//! Bugs planted on purpose, each behind its own `planted-bug-*` feature, so
//! the model checker (`tq-model`) can show that it finds a broken core and
//! prints the shortest path to the broken invariant. No build that ships
//! enables one: only `tq-model`'s planted-bug test does, and the core
//! refuses to build with one for a target without an operating system
//! (the service processor).
//!
//! | feature | the bug | the invariant it breaks (PROTOCOL.md 8) |
//! |---|---|---|
//! | `planted-bug-ack-stale-prepare` | a `Prepare` older than a stored configuration is acked, though nothing of it is stored | 2: an ack leaves for a prepare that is not on the disk |
//! | `planted-bug-ack-any-epoch` | the coordinator counts a `PrepareAck` without checking its epoch | 2: a coordinator counts an ack its sender never sent for that epoch |

#[cfg(all(
    target_os = "none",
    any(
        feature = "planted-bug-ack-stale-prepare",
        feature = "planted-bug-ack-any-epoch"
    )
))]
compile_error!("planted bugs are for tq-model's tests on the host only");

/// The planted bug this build carries, by feature name; `None` in every
/// real build.
pub const PLANTED_BUG: Option<&str> = if cfg!(feature = "planted-bug-ack-stale-prepare") {
    Some("planted-bug-ack-stale-prepare")
} else if cfg!(feature = "planted-bug-ack-any-epoch") {
    Some("planted-bug-ack-any-epoch")
} else {
    None
};
