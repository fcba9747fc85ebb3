//! The input format of the stateful targets (see the module doc of
//! [`crate::cluster`]): the rack's header, then steps, each a harness
//! action or a forged message. Every byte string reads as some input.

use tq_harness::Action;

/// Reads bytes from the front of the input; past the end, zeros.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub(super) fn take(&mut self, len: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How the rack of one run looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// An LRTQ rack (else fresh).
    pub lrtq: bool,
    /// Sleds, 3 to 32 (3 to 8 for `cluster_safety`).
    pub sleds: usize,
    /// Initial members, 3 to `sleds`.
    pub members: usize,
    /// The cluster's seed.
    pub seed: u64,
}

/// Which racks a target reads from the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Racks {
    /// 3 to 8 sleds.
    Small,
    /// 3 to 32 sleds.
    Whole,
}

impl Layout {
    pub(super) fn read(input: &mut Reader<'_>, racks: Racks) -> Self {
        let rack = input.byte();
        let f = usize::from((rack >> 1) & 7);
        let (sleds, members) = if f >= 6 && racks == Racks::Whole {
            let sleds = 9 + usize::from(input.byte()) % 24;
            (sleds, sleds - usize::from(rack >> 4) % 3)
        } else {
            let sleds = 3 + f % 6;
            (sleds, 3 + usize::from(rack >> 4) % (sleds - 2))
        };
        Self {
            lrtq: rack & 1 == 1,
            sleds,
            members,
            seed: u64::from(input.byte()),
        }
    }

    /// The header bytes that read back as this layout (`sleds` and
    /// `members` must be in range: for a large rack, at most two spares).
    pub fn header(&self) -> Vec<u8> {
        let lrtq = u8::from(self.lrtq);
        if self.sleds <= 8 {
            let sleds = (self.sleds - 3) as u8;
            let members = (self.members - 3) as u8;
            vec![lrtq | sleds << 1 | members << 4, self.seed as u8]
        } else {
            let spares = (self.sleds - self.members) as u8;
            vec![
                lrtq | 6 << 1 | spares << 4,
                (self.sleds - 9) as u8,
                self.seed as u8,
            ]
        }
    }
}

/// A message put into a node as if a peer had sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// Arbitrary bytes from sled `from` to sled `to`.
    Garbage {
        /// Claimed sender.
        from: u8,
        /// Receiver.
        to: u8,
        /// The bytes (at most 255).
        bytes: Vec<u8>,
    },
    /// A corrupted copy of message `n` in flight, from its sender to its
    /// receiver: byte `at` (modulo the length) XORed with `xor`, or, if
    /// `xor` is zero, the message cut at `at`.
    Corrupt {
        /// Which message in flight (modulo the count).
        n: u8,
        /// Where (modulo the length).
        at: u16,
        /// What to XOR in; zero truncates.
        xor: u8,
    },
    /// Message `n` in flight, sent again by sled `from` to sled `to`.
    Replay {
        /// Which message in flight (modulo the count).
        n: u8,
        /// Claimed sender.
        from: u8,
        /// Receiver.
        to: u8,
    },
}

impl Forgery {
    fn read(input: &mut Reader<'_>) -> Self {
        match input.byte() % 3 {
            0 => {
                let from = input.byte();
                let to = input.byte();
                let len = usize::from(input.byte());
                Self::Garbage {
                    from,
                    to,
                    bytes: input.take(len).to_vec(),
                }
            }
            1 => Self::Corrupt {
                n: input.byte(),
                at: u16::from_le_bytes([input.byte(), input.byte()]),
                xor: input.byte(),
            },
            _ => Self::Replay {
                n: input.byte(),
                from: input.byte(),
                to: input.byte(),
            },
        }
    }

    /// Appends the bytes that read back as this forgery (selector included).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(7);
        match self {
            Self::Garbage { from, to, bytes } => {
                out.extend_from_slice(&[0, *from, *to, bytes.len() as u8]);
                out.extend_from_slice(bytes);
            }
            Self::Corrupt { n, at, xor } => {
                let [lo, hi] = at.to_le_bytes();
                out.extend_from_slice(&[1, *n, lo, hi, *xor]);
            }
            Self::Replay { n, from, to } => out.extend_from_slice(&[2, *n, *from, *to]),
        }
    }
}

/// A Nexus request no Nexus made, to sled `to` (modulo the count): a
/// `prepare_and_commit` of Nexus's latest configuration moved to the last
/// epoch there is (a commit of that epoch before anything is committed),
/// under an authenticator forged as `how % 4` says: 0, a zero tag; 1, a
/// tag under another sled's key; 2, a tag under the target's own key but
/// naming another sled as the target; 3, a tag under the target's key for
/// another rack. Each must be refused with its refusal and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestForgery {
    /// Receiver.
    pub to: u8,
    /// How the authenticator is forged.
    pub how: u8,
}

/// The selector byte of a [`RequestForgery`] (one of the `% 8 == 7`
/// selectors, which are otherwise message forgeries).
pub const REQUEST_FORGERY: u8 = 0xFF;

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A harness action.
    Act(Action),
    /// A forged message.
    Forge(Forgery),
    /// A forged Nexus request.
    ForgeRequest(RequestForgery),
}

impl Step {
    pub(super) fn read(input: &mut Reader<'_>) -> Option<Self> {
        if input.is_empty() {
            return None;
        }
        match input.byte() {
            REQUEST_FORGERY => Some(Self::ForgeRequest(RequestForgery {
                to: input.byte(),
                how: input.byte(),
            })),
            selector if selector % 8 == 7 => Some(Self::Forge(Forgery::read(input))),
            _ => Action::from_bytes(&mut input.0).map(Self::Act),
        }
    }
}
