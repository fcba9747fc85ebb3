//! Why setting up a rack failed.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why setting up a rack (or one sled's files) failed. Its message says
/// only its own part; the cause is its [`source`](std::error::Error::source),
/// so that a caller printing the whole chain shows each cause once.
#[derive(Debug)]
pub enum SetupError {
    /// The LRTQ rack could not be made as asked (its size, or the split).
    Lrtq(String),
    /// A certificate or key could not be made.
    #[cfg(feature = "pki")]
    Pki(rcgen::Error),
    /// A platform id was refused.
    PlatformId(tq_core::ids::PlatformIdError),
    /// A file or directory could not be made.
    Io(PathBuf, io::Error),
    /// A key file could not be made.
    Key(PathBuf, crate::keys::KeyFileError),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lrtq(why) => write!(f, "LRTQ rack: {why}"),
            #[cfg(feature = "pki")]
            Self::Pki(_) => f.write_str("rack PKI"),
            Self::PlatformId(_) => f.write_str("platform id"),
            Self::Io(path, _) => write!(f, "{}", path.display()),
            Self::Key(path, _) => write!(f, "{}", path.display()),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Lrtq(_) => None,
            #[cfg(feature = "pki")]
            Self::Pki(e) => Some(e),
            Self::PlatformId(e) => Some(e),
            Self::Io(_, e) => Some(e),
            Self::Key(_, e) => Some(e),
        }
    }
}

#[cfg(feature = "pki")]
impl From<rcgen::Error> for SetupError {
    fn from(e: rcgen::Error) -> Self {
        Self::Pki(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_the_source_not_in_the_message() {
        let error = SetupError::Io(PathBuf::from("/x"), io::Error::other("the cause"));
        assert_eq!(error.to_string(), "/x");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("the cause"));
    }
}
