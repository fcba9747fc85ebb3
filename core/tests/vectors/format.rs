//! Reading `wire.txt`, the hand-written wire vectors: shared by the host
//! test (`core/src/wire/vector_tests.rs`) and the service processor's run
//! (`target-tests/src/bin/vectors.rs`), which include this file as a
//! module. No std, no alloc. The including module must have tq-core's
//! `WireError` in scope.
//!
//! Each line is `decoder outcome rule bytes...`, `#` starts a comment:
//!
//! - decoder: `peer`, `state`, `reconfigure`, `upgrade` or `lrtq`;
//! - outcome: `ok`, `empty`, `version:N`, `malformed` or `trailing`;
//! - rule: `canonical` if only the canonical rule refuses the bytes
//!   (postcard alone reads a value from them on a 64-bit host), else `-`;
//! - bytes: hex tokens (`01`, `ac02`), each optionally repeated (`07*16`
//!   is sixteen `07` bytes); none for empty input.

use super::WireError;

/// Which decoder a vector is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    Peer,
    State,
    Reconfigure,
    Upgrade,
    Lrtq,
}

impl Decoder {
    /// Every decoder, in this order.
    pub const ALL: [Self; 5] = [
        Self::Peer,
        Self::State,
        Self::Reconfigure,
        Self::Upgrade,
        Self::Lrtq,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Peer => "peer",
            Self::State => "state",
            Self::Reconfigure => "reconfigure",
            Self::Upgrade => "upgrade",
            Self::Lrtq => "lrtq",
        }
    }

    fn parse(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == token)
    }
}

/// What decoding gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Empty,
    Version(u8),
    Malformed,
    Trailing,
    /// An error the vectors have no name for (a decoder never returns it).
    Other,
}

impl Outcome {
    /// The outcome of a decoder's result.
    pub fn of<T>(result: &Result<T, WireError>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(WireError::Empty) => Self::Empty,
            Err(WireError::UnsupportedVersion(v)) => Self::Version(*v),
            Err(WireError::Malformed) => Self::Malformed,
            Err(WireError::TrailingBytes) => Self::Trailing,
            Err(_) => Self::Other,
        }
    }

    /// The name in the file, without a version's number.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Empty => "empty",
            Self::Version(_) => "version",
            Self::Malformed => "malformed",
            Self::Trailing => "trailing",
            Self::Other => "other",
        }
    }

    fn parse(token: &str) -> Option<Self> {
        if let Some(number) = token.strip_prefix("version:") {
            return number.parse().ok().map(Self::Version);
        }
        [Self::Ok, Self::Empty, Self::Malformed, Self::Trailing]
            .into_iter()
            .find(|o| o.name() == token)
    }
}

/// A line of the file that is not a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadLine(pub usize);

/// One vector.
#[derive(Clone, Copy, Debug)]
pub struct Vector<'a> {
    /// Its line in the file, from 1.
    pub line: usize,
    pub decoder: Decoder,
    pub expected: Outcome,
    /// Only the canonical rule refuses it (see the module doc).
    pub canonical_rule: bool,
    hex: &'a str,
}

impl Vector<'_> {
    /// The bytes, written into `buf`.
    pub fn bytes_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], BadLine> {
        let bad = BadLine(self.line);
        let mut len = 0;
        for token in self.hex.split_ascii_whitespace() {
            let (hex, count) = match token.split_once('*') {
                Some((hex, count)) => (hex, count.parse::<usize>().map_err(|_| bad)?),
                None => (token, 1),
            };
            if hex.is_empty() || hex.len() % 2 != 0 {
                return Err(bad);
            }
            for _ in 0..count {
                for pair in hex.as_bytes().chunks_exact(2) {
                    let text = core::str::from_utf8(pair).map_err(|_| bad)?;
                    let byte = u8::from_str_radix(text, 16).map_err(|_| bad)?;
                    *buf.get_mut(len).ok_or(bad)? = byte;
                    len += 1;
                }
            }
        }
        buf.get(..len).ok_or(bad)
    }
}

/// The vectors of `text`, in order.
pub fn vectors(text: &str) -> impl Iterator<Item = Result<Vector<'_>, BadLine>> {
    text.lines().enumerate().filter_map(|(index, line)| {
        let line_number = index + 1;
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            return None;
        }
        let mut rest = content;
        let mut next = || {
            let field = rest.trim_start();
            let end = field.find(char::is_whitespace).unwrap_or(field.len());
            let (field, after) = field.split_at(end);
            rest = after;
            field
        };
        let (decoder, expected, rule) = (next(), next(), next());
        let hex = rest;
        let vector = (|| {
            Some(Vector {
                line: line_number,
                decoder: Decoder::parse(decoder)?,
                expected: Outcome::parse(expected)?,
                canonical_rule: match rule {
                    "canonical" => true,
                    "-" => false,
                    _ => return None,
                },
                hex,
            })
        })();
        Some(vector.ok_or(BadLine(line_number)))
    })
}
