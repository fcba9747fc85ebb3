//! Checking one copy of the log: every record parses, sequence numbers
//! follow one another, each record's `prev` is the hash of the record
//! before it (across segments), every segment starts with its
//! `SegmentOpened` record and every segment from the oldest one the
//! newest declares kept to the newest is there.
//!
//! What each damage looks like, and which record is named (the first bad
//! one, by its segment, line and sequence number):
//!
//! - **a byte changed** in a record: its line no longer parses, or its
//!   hash no longer matches the next record's `prev`: that record is
//!   named (a change in its own `prev` also breaks its link to the record
//!   before, which tells the two apart);
//! - **a record removed**: the sequence numbers jump: the first missing
//!   one is named;
//! - **two records swapped**: a sequence number goes back: the first
//!   record out of place is named;
//! - **a segment removed** from the middle: the numbers of the files
//!   jump; from the front, though the newest segment says it is kept:
//!   the missing segments are named;
//! - **a torn tail** (bytes after the last newline of the newest
//!   segment): a crash during an append, reported apart and not as
//!   damage; anywhere else it is damage.
//!
//! Segments older than the one the newest declares kept were dropped by
//! rotation: that is reported as such. What a hash chain cannot show on
//! its own is a log cut short at its end (the last records, or whole
//! newest segments, removed) or rewritten whole: the head (last sequence
//! number and hash) [`Summary::head`] gives is what to keep elsewhere to
//! catch those, and the other copy is compared at open.

use std::fmt;
use std::path::Path;

use super::event::AuditEvent;
use super::record::{GENESIS, Record, RecordHash};
use super::segment;

/// Where a record is: its segment and line (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The segment's number.
    pub segment: u64,
    /// The line, from 1.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {} line {}", self.segment, self.line)
    }
}

/// What is wrong at the first bad record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The directory or a segment could not be read.
    Unreadable(String),
    /// The line is not a record.
    Unparseable(String),
    /// The segment's first record is not its `SegmentOpened`, or that
    /// record names another segment or keeps a later one.
    BadSegmentHeader,
    /// The log's first record (segment 0, line 1) is not sequence 0 after
    /// the genesis hash.
    BadGenesis,
    /// Segments are missing that rotation did not drop.
    SegmentsMissing {
        /// The first missing.
        first: u64,
        /// The last missing.
        last: u64,
    },
    /// Records are missing: sequence numbers jump.
    RecordsMissing {
        /// The first missing.
        first: u64,
        /// The last missing.
        last: u64,
    },
    /// This record's sequence number comes after a later one's.
    OutOfOrder {
        /// The sequence number of the record before it.
        after: u64,
    },
    /// This record is not the one the chain holds: its hash is not the
    /// next record's `prev`, or its `prev` is not the previous record's
    /// hash.
    Altered,
    /// The last link of the log is broken: the named record or the one
    /// before it was altered (no later record tells which).
    LastLinkBroken,
    /// A segment file is empty.
    EmptySegment,
    /// Bytes after the last newline of a segment that is not the newest.
    TornNotAtEnd,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(e) => write!(f, "unreadable: {e}"),
            Self::Unparseable(e) => write!(f, "not a record ({e})"),
            Self::BadSegmentHeader => f.write_str("not the segment's opening record"),
            Self::BadGenesis => f.write_str("the log's first record is not seq 0 after genesis"),
            Self::SegmentsMissing { first, last } => {
                write!(f, "segments {first} to {last} missing (not rotated away)")
            }
            Self::RecordsMissing { first, last } => {
                write!(f, "records seq {first} to {last} missing")
            }
            Self::OutOfOrder { after } => write!(f, "out of order (after seq {after})"),
            Self::Altered => f.write_str("altered (the hash chain breaks at it)"),
            Self::LastLinkBroken => {
                f.write_str("the last link is broken: this record or the one before was altered")
            }
            Self::EmptySegment => f.write_str("empty segment"),
            Self::TornNotAtEnd => f.write_str("cut short, and not at the end of the log"),
        }
    }
}

/// The first bad record of a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    /// Where.
    pub at: Location,
    /// Its sequence number, if it has one.
    pub seq: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "record seq {seq} ({}): {}", self.at, self.problem),
            None => write!(f, "{}: {}", self.at, self.problem),
        }
    }
}

/// A torn tail: the end of an append a crash cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment (the newest).
    pub segment: u64,
    /// Its length up to the last newline.
    pub keep: u64,
    /// The bytes after it.
    pub bytes: u64,
}

/// What a copy holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The segments present, ascending.
    pub segments: Vec<u64>,
    /// The oldest segment the newest declares kept: those before it were
    /// dropped by rotation.
    pub oldest_kept: u64,
    /// Records read.
    pub records: u64,
    /// The last record: its sequence number (the highest read) and the
    /// hash of the last complete line.
    pub head: Option<(u64, RecordHash)>,
    /// A torn tail at the end of the newest segment.
    pub torn_tail: Option<TornTail>,
}

/// A copy's verdict: what it holds, and its first bad record if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What was read (all of it, past a bad record).
    pub summary: Summary,
    /// The first bad record.
    pub bad: Option<Bad>,
}

/// The previous record, as the chain needs it.
#[derive(Clone, Copy)]
struct Link {
    seq: u64,
    hash: RecordHash,
    at: Location,
}

/// A problem that the next record decides.
enum Pending {
    /// Sequence numbers jumped from `expected` to the record at `at`.
    Gap { expected: u64, found: Link },
    /// The record at `b` does not hold `a`'s hash.
    Break { a: Link, b: Link },
}

struct Checker {
    bad: Option<Bad>,
    pending: Option<Pending>,
    last: Option<Link>,
}

impl Checker {
    fn fail(&mut self, at: Location, seq: Option<u64>, problem: Problem) {
        if self.bad.is_none() {
            self.bad = Some(Bad { at, seq, problem });
        }
    }

    /// Settles a pending problem with the next record (`None`: the end).
    fn settle(&mut self, next: Option<(&Record, Link)>) {
        match self.pending.take() {
            None => {}
            Some(Pending::Gap { expected, found }) => match next {
                Some((record, _)) if record.seq < found.seq => {
                    let after = expected.saturating_sub(1);
                    self.fail(found.at, Some(found.seq), Problem::OutOfOrder { after });
                }
                _ => self.fail(
                    found.at,
                    Some(found.seq),
                    Problem::RecordsMissing {
                        first: expected,
                        last: found.seq.saturating_sub(1),
                    },
                ),
            },
            Some(Pending::Break { a, b }) => match next {
                Some((record, _))
                    if record.prev == b.hash && record.seq == b.seq.wrapping_add(1) =>
                {
                    self.fail(a.at, Some(a.seq), Problem::Altered);
                }
                Some(_) => self.fail(b.at, Some(b.seq), Problem::Altered),
                None => self.fail(b.at, Some(b.seq), Problem::LastLinkBroken),
            },
        }
    }

    fn record(&mut self, record: &Record, link: Link) {
        self.settle(Some((record, link)));
        match self.last {
            None if link.at.segment == 0
                && link.at.line == 1
                && (record.seq != 0 || record.prev != GENESIS) =>
            {
                self.fail(link.at, Some(record.seq), Problem::BadGenesis);
            }
            // The oldest kept segment's first record: its predecessor was
            // rotated away, so its `prev` is taken as the anchor.
            None => {}
            Some(last) if record.seq != last.seq.wrapping_add(1) => {
                if record.seq <= last.seq {
                    self.fail(
                        link.at,
                        Some(record.seq),
                        Problem::OutOfOrder { after: last.seq },
                    );
                } else if self.bad.is_none() {
                    self.pending = Some(Pending::Gap {
                        expected: last.seq.wrapping_add(1),
                        found: link,
                    });
                }
            }
            Some(last) if record.prev != last.hash && self.bad.is_none() => {
                self.pending = Some(Pending::Break { a: last, b: link });
            }
            Some(_) => {}
        }
        self.last = Some(link);
    }
}

/// Checks the copy in `dir`, calling `visit` on every record read (in
/// order, with its location and hash) so that `tq audit show` prints
/// what is checked. A directory with no segment is an empty log.
pub fn verify_dir(dir: &Path, mut visit: impl FnMut(Location, &Record, RecordHash)) -> Verdict {
    let mut summary = Summary::default();
    let mut checker = Checker {
        bad: None,
        pending: None,
        last: None,
    };
    let numbers = match segment::list(dir) {
        Ok(numbers) => numbers,
        Err(e) => {
            return Verdict {
                summary,
                bad: Some(Bad {
                    at: Location {
                        segment: 0,
                        line: 0,
                    },
                    seq: None,
                    problem: Problem::Unreadable(format!("{}: {e}", dir.display())),
                }),
            };
        }
    };
    let Some(&newest) = numbers.last() else {
        return Verdict { summary, bad: None };
    };
    // The newest segment with an opening record says what is kept (a
    // newest one left empty by a crash during rotation has none).
    let declared = numbers
        .iter()
        .rev()
        .find_map(|&number| oldest_kept_declared(dir, number));
    summary.oldest_kept = declared.unwrap_or(0);
    if let Some(&first) = numbers.first()
        && declared.is_some()
        && first > summary.oldest_kept
    {
        checker.fail(
            Location {
                segment: first,
                line: 1,
            },
            None,
            Problem::SegmentsMissing {
                first: summary.oldest_kept,
                last: first - 1,
            },
        );
    }
    let mut previous_segment: Option<u64> = None;
    for &number in &numbers {
        let start = Location {
            segment: number,
            line: 1,
        };
        if let Some(previous) = previous_segment
            && number != previous + 1
        {
            // Segments below the oldest kept may linger (a crash between
            // a rotation's new segment and its removal of the oldest).
            if number > summary.oldest_kept {
                checker.fail(
                    start,
                    None,
                    Problem::SegmentsMissing {
                        first: previous + 1,
                        last: number - 1,
                    },
                );
            }
            checker.last = None;
        }
        let bytes = match segment::read(&segment::path(dir, number)) {
            Ok(bytes) => bytes,
            Err(e) => {
                checker.fail(start, None, Problem::Unreadable(e.to_string()));
                previous_segment = Some(number);
                continue;
            }
        };
        let cut = segment::lines(&bytes);
        if !cut.torn_tail.is_empty() || bytes.is_empty() {
            if number == newest {
                summary.torn_tail = Some(TornTail {
                    segment: number,
                    keep: (bytes.len() - cut.torn_tail.len()) as u64,
                    bytes: cut.torn_tail.len() as u64,
                });
            } else {
                let problem = if bytes.is_empty() {
                    Problem::EmptySegment
                } else {
                    Problem::TornNotAtEnd
                };
                let line = cut.lines.len() + 1;
                checker.fail(
                    Location {
                        segment: number,
                        line,
                    },
                    None,
                    problem,
                );
            }
        }
        for (index, line) in cut.lines.iter().enumerate() {
            let at = Location {
                segment: number,
                line: index + 1,
            };
            let hash = RecordHash::of_line(line);
            let record = match Record::parse(line) {
                Ok(record) => record,
                Err(e) => {
                    checker.fail(at, None, Problem::Unparseable(e.to_string()));
                    // The next record's link is checked against this line.
                    let seq = checker.last.map_or(0, |l| l.seq.wrapping_add(1));
                    checker.pending = None;
                    checker.last = Some(Link { seq, hash, at });
                    summary.head = Some((seq, hash));
                    continue;
                }
            };
            if index == 0 {
                match record.event {
                    AuditEvent::SegmentOpened {
                        segment,
                        oldest_kept,
                        ..
                    } if segment == number && oldest_kept <= number => {}
                    _ => checker.fail(at, Some(record.seq), Problem::BadSegmentHeader),
                }
            }
            let link = Link {
                seq: record.seq,
                hash,
                at,
            };
            checker.record(&record, link);
            summary.records += 1;
            let highest = summary
                .head
                .map_or(record.seq, |(seq, _)| seq.max(record.seq));
            summary.head = Some((highest, hash));
            visit(at, &record, hash);
        }
        previous_segment = Some(number);
    }
    checker.settle(None);
    summary.segments = numbers;
    Verdict {
        summary,
        bad: checker.bad,
    }
}

/// The `oldest_kept` the newest segment's opening record declares.
fn oldest_kept_declared(dir: &Path, newest: u64) -> Option<u64> {
    let bytes = segment::read(&segment::path(dir, newest)).ok()?;
    let first = segment::lines(&bytes).lines.first().copied()?;
    match Record::parse(first).ok()?.event {
        AuditEvent::SegmentOpened { oldest_kept, .. } if oldest_kept <= newest => Some(oldest_kept),
        _ => None,
    }
}
