//! A copy of the log on disk: a directory of segment files,
//! `segment-<number>.jsonl` (the number in 20 decimal digits, so names
//! sort as numbers do), each a run of record lines.
//!
//! Reading a segment splits it into lines and sets apart a *torn tail*:
//! bytes after the last newline, which only a crash during an append
//! leaves (every append writes a whole line, newline last, in one write).
//! Whether a torn tail is acceptable (only at the end of the newest
//! segment) is the caller's to judge.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use std::os::unix::fs::MetadataExt;

use crate::ledger::access::{AccessProblem, Unsafe};

/// The largest segment file read: a bigger one is damaged, whatever the
/// configured cap (which is at most this).
pub const MAX_SEGMENT_FILE_LEN: u64 = 64 << 20;

const PREFIX: &str = "segment-";
const SUFFIX: &str = ".jsonl";

/// The file name of segment `number`.
pub fn file_name(number: u64) -> String {
    format!("{PREFIX}{number:020}{SUFFIX}")
}

/// The segment number a file name gives, if it is a segment's.
pub fn number_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The path of segment `number` in `dir`.
pub fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(file_name(number))
}

/// The segment numbers in `dir`, ascending. Other files are left alone.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(number) = entry.file_name().to_str().and_then(number_of) {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Why a segment could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Reading failed.
    Io(io::Error),
    /// A link, not a regular file, or open to others.
    Unsafe(Unsafe),
    /// Longer than [`MAX_SEGMENT_FILE_LEN`].
    TooLong,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "unreadable: {e}"),
            Self::Unsafe(e) => write!(f, "refused: {e}"),
            Self::TooLong => write!(f, "longer than {MAX_SEGMENT_FILE_LEN} bytes"),
        }
    }
}

/// A segment's bytes, never through a link; a file open to others is
/// refused.
pub fn read(path: &Path) -> Result<Vec<u8>, ReadError> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ReadError::Io(e.into()))?;
    let file = File::from(fd);
    let metadata = file.metadata().map_err(ReadError::Io)?;
    // Not its owner: the directory's is checked when the sled opens the
    // log (no other user can put a file in it), and `tq audit` may run as
    // another user than the sled's.
    let refuse = |problem| {
        ReadError::Unsafe(Unsafe {
            path: path.to_owned(),
            problem,
        })
    };
    if !metadata.is_file() {
        return Err(refuse(AccessProblem::WrongKind));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(refuse(AccessProblem::OpenToOthers { mode }));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SEGMENT_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_SEGMENT_FILE_LEN {
        return Err(ReadError::TooLong);
    }
    Ok(bytes)
}

/// A segment's bytes cut into lines.
pub struct Lines<'a> {
    /// Each complete line, without its newline.
    pub lines: Vec<&'a [u8]>,
    /// The bytes after the last newline (empty if none).
    pub torn_tail: &'a [u8],
}

/// Cuts `bytes` into lines and the torn tail.
pub fn lines(bytes: &[u8]) -> Lines<'_> {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |last| last + 1);
    let (body, torn_tail) = bytes.split_at(complete);
    let lines = body
        .split(|&b| b == b'\n')
        .take(body.iter().filter(|&&b| b == b'\n').count())
        .collect();
    Lines { lines, torn_tail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_as_numbers() {
        assert_eq!(number_of(&file_name(42)), Some(42));
        assert_eq!(number_of(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        assert_eq!(number_of("segment-1.jsonl"), None);
        assert_eq!(number_of("segment-00000000000000000001.jsonl.tmp"), None);
    }

    #[test]
    fn a_torn_tail_is_what_follows_the_last_newline() {
        let cut = lines(b"a\nbb\nccc");
        assert_eq!(cut.lines, [&b"a"[..], b"bb"]);
        assert_eq!(cut.torn_tail, b"ccc");
        let whole = lines(b"a\n\n");
        assert_eq!(whole.lines, [&b"a"[..], b""]);
        assert!(whole.torn_tail.is_empty());
        assert!(lines(b"").lines.is_empty());
    }
}
