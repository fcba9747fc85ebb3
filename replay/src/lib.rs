//! `tq-replay`: event logs of harness runs, and a debugger that steps
//! through them (the job Oxide's `tqdb` does for its property test).
//!
//! - [`log`]: the event log. A harness run is a pure function of its rack
//!   and its events, so a log of those reproduces it exactly. The cluster
//!   property test writes one for every failing case it shrinks to, and
//!   the fuzz crate's `replay` example writes one for any input
//!   (`--log FILE`), forged messages included.
//! - [`session`]: the cluster at any position of a log (going back replays
//!   from the start).
//! - [`debugger`] and [`view`]: the commands (step, run to a breakpoint or
//!   the first violation, show a sled, the messages in flight or Nexus,
//!   diff two positions) and what they print: only what an operator may
//!   see of a node, never a share or a secret.
//!
//! The `tq-replay` binary reads commands from its arguments (`-e`) or from
//! standard input; `harness/README.md` has a worked example.

pub mod debugger;
pub mod log;
pub mod session;
pub mod view;

pub use debugger::{Breakpoint, Command, Debugger};
pub use log::{Check, EventLog, Rack, RunEvent};
pub use session::Session;
