//! What `tq sled` does to its own process before it reads a key or a
//! share: no core dumps, and not dumpable.
//!
//! The daemon holds its shares, and while unlocking other sleds' shares
//! and the rack secret, in memory: a core file would put them on a disk
//! that outlives the process. So:
//!
//! - `RLIMIT_CORE` is set to 0, soft and hard: the kernel writes no core
//!   file, and the process cannot raise it again.
//! - `PR_SET_DUMPABLE` is set to 0: no core dump even where
//!   `fs.suid_dumpable` would dump one, `/proc/PID/mem` and the other
//!   `/proc/PID` files become root's, and processes of the same user cannot
//!   attach with ptrace. (Root still can: this is no defence against root.)
//!
//! Both through `rustix`, whose `process` module wraps the two system
//! calls safely (this crate forbids `unsafe`); it is already in the build
//! (via `tempfile`), so only a feature is added. `PR_SET_DUMPABLE` is
//! Linux's; elsewhere only the core limit is set (illumos would need
//! `coreadm`/`setpflags`, not done).

use rustix::process::{Resource, Rlimit, setrlimit};

/// Which step failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct HardeningError {
    what: &'static str,
    #[source]
    error: rustix::io::Errno,
}

/// Turns core dumps off and makes this process undumpable (see the module
/// doc). Call it first, before any secret is read.
pub fn forbid_core_dumps() -> Result<(), HardeningError> {
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    setrlimit(Resource::Core, none).map_err(|error| HardeningError {
        what: "setting RLIMIT_CORE to 0",
        error,
    })?;
    #[cfg(target_os = "linux")]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|error| HardeningError {
            what: "prctl(PR_SET_DUMPABLE, 0)",
            error,
        })?;
    Ok(())
}

/// Whether the kernel says this process is dumpable (true where it cannot
/// tell, or off Linux).
pub fn is_dumpable() -> bool {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{DumpableBehavior, dumpable_behavior};
        dumpable_behavior() != Ok(DumpableBehavior::NotDumpable)
    }
    #[cfg(not(target_os = "linux"))]
    true
}
