//! The worst figure (most stack, most instructions) seen for each kind of
//! call, and how many calls of that kind were seen: what the budget lines
//! report.

/// Up to `N` kinds of call, in the order first seen.
pub struct Worst<const N: usize>(heapless::Vec<(&'static str, u64, u32), N>);

impl<const N: usize> Worst<N> {
    pub const fn new() -> Self {
        Self(heapless::Vec::new())
    }

    /// Records one call of `kind`; false if the table is full.
    pub fn record(&mut self, kind: &'static str, figure: u64) -> bool {
        if let Some(entry) = self.0.iter_mut().find(|(k, _, _)| *k == kind) {
            entry.1 = entry.1.max(figure);
            entry.2 = entry.2.saturating_add(1);
            true
        } else {
            self.0.push((kind, figure, 1)).is_ok()
        }
    }

    /// Each kind: its worst figure and its number of calls.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64, u32)> + '_ {
        self.0.iter().copied()
    }

    /// The kind with the worst figure (the first seen among equals), or
    /// `("none", 0)`.
    pub fn worst(&self) -> (&'static str, u64) {
        self.iter().fold(("none", 0), |worst, (kind, figure, _)| {
            if figure > worst.1 {
                (kind, figure)
            } else {
                worst
            }
        })
    }
}

impl<const N: usize> Default for Worst<N> {
    fn default() -> Self {
        Self::new()
    }
}
