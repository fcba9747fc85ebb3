//! Stack high-water marks by painting.
//!
//! Free stack is filled with a known word; after the code being measured
//! ran, the lowest word that no longer holds it is as deep as the stack
//! went. cortex-m-rt puts the stack at the top of RAM growing down to
//! `_stack_end`, the first free word after the statics.
//!
//! - [`measure`] gives the stack one call uses below its caller: it paints
//!   a [`WINDOW`] below the current stack pointer, runs the call, and scans.
//! - [`paint_below_here`] and [`deepest_since_paint`] give the deepest the
//!   stack went below a point of a run (the windows `measure` repaints are
//!   scanned first, so nothing it erases is lost).
//! - [`paint_whole_stack`] does the same from the top of the stack, so
//!   [`deepest_since_paint`] is the peak of the whole program (`main`'s
//!   own frame and the runtime's entry included).
//!
//! This is the only module with `unsafe`: raw writes and reads of the free
//! stack, and reading the stack pointer.

use core::arch::asm;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The paint. Any word a call writes is unlikely to be exactly this.
const PAINT: u32 = 0x5AC3_A53C;

/// How far below a measured call's caller the paint reaches. A call that
/// reaches the bottom of the window is reported as [`Measured::exhausted`].
pub const WINDOW: usize = 256 * 1024;

/// The lowest address found written, over every scan so far.
static LOWEST: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The stack pointer where [`paint_below_here`] was last called.
static BASE: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    /// cortex-m-rt: the lowest address the stack may use (end of statics).
    static _stack_end: u32;
    /// cortex-m-rt: the initial stack pointer (top of the stack).
    static _stack_start: u32;
}

/// The initial stack pointer, where the stack starts before `main`.
fn stack_start() -> usize {
    (&raw const _stack_start) as usize
}

/// The lowest address the stack may use.
fn stack_end() -> usize {
    (&raw const _stack_end) as usize
}

/// The current stack pointer.
#[inline(always)]
fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads a register; touches no memory.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// The lowest word-aligned address in `[from, to)` that does not hold the
/// paint, or `to` if all of it does.
fn lowest_written(from: usize, to: usize) -> usize {
    let mut at = (from + 3) & !3;
    while at + 4 <= to {
        // SAFETY: `[from, to)` lies between the end of the statics and the
        // stack pointer of a live frame: RAM nothing else refers to.
        if unsafe { ptr::read_volatile(at as *const u32) } != PAINT {
            return at;
        }
        at += 4;
    }
    to
}

/// Paints `[from, to)`, clamped to below this function's own frame. With
/// `scan_first`, first records how deep earlier code wrote there.
#[inline(never)]
fn paint(from: usize, to: usize, scan_first: bool) {
    let to = to.min(sp()) & !3;
    let from = (from + 3) & !3;
    if scan_first {
        LOWEST.fetch_min(lowest_written(from, to), Ordering::Relaxed);
    }
    let mut at = from;
    while at + 4 <= to {
        // SAFETY: as in `lowest_written`; and `to` is below this frame.
        unsafe { ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// Paints all of the free stack below the caller, and makes the caller's
/// stack pointer the base [`deepest_since_paint`] counts from, forgetting
/// what was measured before.
#[inline(always)]
pub fn paint_below_here() {
    let here = sp();
    BASE.store(here, Ordering::Relaxed);
    LOWEST.store(usize::MAX, Ordering::Relaxed);
    paint(stack_end(), here, false);
}

/// Paints all of the free stack below the caller, and makes the top of the
/// stack the base [`deepest_since_paint`] counts from: everything above the
/// caller's stack pointer (its own frame, its callers') counts as used.
#[inline(always)]
pub fn paint_whole_stack() {
    let here = sp();
    BASE.store(stack_start(), Ordering::Relaxed);
    LOWEST.store(usize::MAX, Ordering::Relaxed);
    paint(stack_end(), here, false);
}

/// How deep the stack went below the base set by [`paint_below_here`].
pub fn deepest_since_paint() -> usize {
    let base = BASE.load(Ordering::Relaxed);
    let lowest = LOWEST
        .load(Ordering::Relaxed)
        .min(lowest_written(stack_end(), sp()));
    base.saturating_sub(lowest)
}

/// The stack one call used.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Measured {
    /// Bytes below the caller's stack pointer.
    pub bytes: usize,
    /// The call reached the bottom of the painted window: it used at least
    /// `bytes`, maybe more.
    pub exhausted: bool,
}

/// Runs `f` and measures the stack it used below the caller's frame.
#[inline(always)]
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Measured) {
    let entry = sp();
    let bottom = entry.saturating_sub(WINDOW).max(stack_end());
    paint(bottom, entry, true);
    let out = f();
    let lowest = lowest_written(bottom, entry);
    LOWEST.fetch_min(lowest, Ordering::Relaxed);
    let measured = Measured {
        bytes: entry - lowest,
        exhausted: lowest <= bottom,
    };
    (out, measured)
}
