//! External programs some tests run (a client or a CLI we did not write).

use std::io::{ErrorKind, Write as _};
use std::process::{Command, Stdio};

/// Whether `program` can be run here (probed as `program probe_args`; only
/// "not found" counts as missing). Where it is missing, under CI (`CI`
/// set: `.ci/run` sets it after installing every such program) the test
/// fails; on a developer's machine a `SKIPPED` line says so and the caller
/// returns having checked nothing:
///
/// ```no_run
/// if !tq_test_fixtures::tools::available("curl", &["--version"], "apt-get install curl") {
///     return;
/// }
/// ```
pub fn available(program: &str, probe_args: &[&str], install: &str) -> bool {
    let probe = Command::new(program)
        .args(probe_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have `{program}` ({install})"
            );
            // Straight to stderr, not `eprintln!`, which the test harness
            // captures and hides for a test that passes.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (not run, not passed): `{program}` is not installed ({install})"
            );
            false
        }
        _ => true,
    }
}
