//! Logs: `tracing` to stderr (or a file), the core's `log` lines bridged
//! in.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The variable that sets the log filter (`tracing-subscriber`'s syntax);
/// `info` when unset.
pub const LOG_ENV: &str = "TQ_LOG";

/// Installs the subscriber and the bridge. Logging is best effort: a
/// second call or a logger installed by someone else changes nothing.
pub fn init() {
    init_with_default("info");
}

/// [`init`], with `default` as the filter when `TQ_LOG` is unset.
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let _ = tq_std::observe::bridge_core_logs();
}

/// [`init`] into `file` (appended to, no colours), with `default` as the
/// filter when `TQ_LOG` is unset: for a command whose terminal shows
/// something else (the demo's progress).
pub fn init_to_file(default: &str, file: std::fs::File) {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
    let _ = tq_std::observe::bridge_core_logs();
}
