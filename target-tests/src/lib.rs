//! Support for the trust quorum core's target binaries (Cortex-M7 under
//! QEMU's `mps2-an500`): what every binary needs besides its scenario.
//!
//! - [`exit`]: the exit code back to the host through semihosting, and the
//!   panic handler (a panic exits non-zero; with the `no-panic` feature it
//!   fails to link instead, see the module).
//! - [`stack`]: stack high-water marks by painting.
//! - [`lrtq`]: the LRTQ racks the build script set up on the host.
//! - [`log`]: the defmt logger. Logs and reports leave as defmt frames on
//!   semihosting's stdout; the host decodes them with `defmt-print`.
#![no_std]

// The critical section defmt's logger takes (single core, privileged).
use cortex_m as _;

pub mod exit;
pub mod icount;
pub mod log;
pub mod lrtq;
pub mod stack;
pub mod worst;

pub use exit::{fail, pass};
