//! What the benches print: medians with their spread, in milliseconds.

use std::time::Duration;

/// The median of `values`, then the least and the greatest. Panics on
/// none.
pub fn median<T: Ord + Copy>(values: &[T]) -> (T, T, T) {
    let mut sorted = values.to_vec();
    sorted.sort();
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}

/// `d` in milliseconds, one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// The median of `values` and their range: `12.3 (10.1..15.0)` (ms).
pub fn span(values: &[Duration]) -> String {
    let (m, lo, hi) = median(values);
    format!("{} ({}..{})", ms(m), ms(lo), ms(hi))
}
