//! How this crate's errors are built and shown.
//!
//! Every error is a typed value (`thiserror`), one enum per job, whose
//! `Display` says only what its own layer knows ("cannot read
//! /etc/tq/sled.toml") and whose cause stays reachable through
//! [`std::error::Error::source`], never pasted into the message as well.
//! [`Chain`] shows an error with all its causes on one line, joined by
//! `": "`: that is what the command line prints (`tq sled: config: cannot
//! read /etc/tq/sled.toml: No such file or directory`).
//!
//! No message holds a secret: errors name files, addresses, platform ids
//! and epochs, never a share, a key or a secret's bytes.

use std::error::Error;
use std::fmt;
use std::net::SocketAddr;

/// An error and its causes on one line: `error: cause: cause's cause`.
/// A line break inside a message (TOML's, a peer's) becomes a space, so
/// one error is always one line.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut next: Option<&(dyn Error + 'static)> = Some(self.0);
        let mut first = true;
        while let Some(error) = next {
            if !first {
                f.write_str(": ")?;
            }
            first = false;
            let text = error.to_string();
            f.write_str(text.trim().replace('\n', " ").as_str())?;
            next = error.source();
        }
        Ok(())
    }
}

/// A listener that could not bind (the peer network's, the API's).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {listen}")]
pub struct ListenError {
    /// The address.
    pub listen: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner\nsecond line\n")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn every_cause_on_one_line() {
        let error = Outer(Inner(std::io::Error::other("the root")));
        assert_eq!(
            Chain(&error).to_string(),
            "outer: inner second line: the root"
        );
    }
}
