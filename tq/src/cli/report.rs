//! How a subcommand fails: one line on stderr, `tq <command>: <error>:
//! <cause>: ...` (the error and its `source()` chain, see
//! [`tq::error::Chain`]), and exit code 1. Every subcommand's error goes
//! through [`Report`], so the form is the same for all of them.

use std::error::Error;
use std::fmt;
use std::process::ExitCode;

use tq::error::Chain;

/// A failed subcommand's error, named by the subcommand.
pub struct Report {
    command: &'static str,
    error: Box<dyn Error + 'static>,
}

impl Report {
    /// `error` ended `tq <command>`.
    pub fn new(command: &'static str, error: impl Error + 'static) -> Self {
        Self {
            command,
            error: Box::new(error),
        }
    }

    /// Prints the line on stderr; the process's exit code.
    pub fn exit(self) -> ExitCode {
        eprintln!("{self}");
        ExitCode::FAILURE
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tq {}: {}", self.command, Chain(self.error.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_the_command_and_every_cause() {
        let error = super::super::RuntimeError(std::io::Error::other("no threads"));
        assert_eq!(
            Report::new("nexus", error).to_string(),
            "tq nexus: cannot start the runtime: no threads"
        );
    }
}
