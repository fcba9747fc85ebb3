//! The core's log lines, as `tracing` events.
//!
//! The core logs through the `log` crate (its `log` feature). A process
//! that runs nodes calls [`bridge_core_logs`] once at start, before any
//! node: every `log` record then becomes a `tracing` event (target
//! `tq_core` for the core's), inside whatever span is current, so a core
//! line carries the node task's `node`, `peer` and `epoch` spans like the
//! shim's own. The `tq` binary calls it from `main`; this
//! library never installs a global logger by itself.

pub use tracing_log::log::SetLoggerError;

/// Routes the `log` crate's records into `tracing` (see the module doc).
/// Fails if a `log` logger is already installed.
pub fn bridge_core_logs() -> Result<(), SetLoggerError> {
    tracing_log::LogTracer::init()
}
