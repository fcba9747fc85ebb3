//! Instruction counts, deterministic, under QEMU.
//!
//! The runner starts QEMU with `-icount shift=0`: the emulated CPU then
//! executes exactly one instruction per nanosecond of virtual time, and
//! every timer of the board runs on that virtual clock, so reading a timer
//! reads how many instructions ran. QEMU does not emulate the Cortex-M7's
//! cycle counter (DWT `CYCCNT`), and a real M7's cycles would not be
//! instructions anyway (dual issue, caches, wait states): these are
//! instruction counts of the code as compiled, the same on every run and
//! every host.
//!
//! The timer is the MPS2's CMSDK APB timer 0 (32 bits, counting down at the
//! board's 25 MHz APB clock, i.e. one tick per 40 instructions): counts are
//! multiples of [`RESOLUTION`]. One call may run up to 2^32 ticks (171
//! billion instructions) before the timer wraps.
//!
//! [`start`] sets the timer going and checks, with a loop of known length,
//! that the count is exact (it is not when QEMU runs without `-icount`: the
//! virtual clock then follows the host's); [`count`] measures one call.
//!
//! Besides `stack`, the only module with `unsafe`: volatile reads and writes
//! of the timer's registers.

use core::arch::asm;
use core::ptr;

/// CMSDK APB timer 0 on the MPS2 (AN500 and the other MPS2 images).
const TIMER0: usize = 0x4000_0000;
/// Control register: bit 0 enables the count.
const CTRL: usize = TIMER0;
/// Current value, counting down.
const VALUE: usize = TIMER0 + 0x4;
/// The value the count restarts from after reaching zero.
const RELOAD: usize = TIMER0 + 0x8;

/// Instructions per timer tick: 1 ns per instruction (`-icount shift=0`)
/// over the 25 MHz timer clock's 40 ns.
pub const RESOLUTION: u64 = 40;

/// Iterations of the calibration loop (two instructions each).
const CALIBRATION_LOOPS: u32 = 1_000_000;

/// What the calibration loop of `expected` instructions measured.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Calibrated {
    pub measured: u64,
    pub expected: u64,
}

/// Why instruction counts cannot be trusted: the calibration loop of
/// `expected` instructions measured `measured` (QEMU without `-icount
/// shift=0`?).
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct NotCounting {
    pub measured: u64,
    pub expected: u64,
}

/// Starts the timer from its top and checks that it counts instructions;
/// returns what the loop of known length measured.
pub fn start() -> Result<Calibrated, NotCounting> {
    // SAFETY: the timer's registers, which nothing else uses.
    unsafe {
        ptr::write_volatile(CTRL as *mut u32, 0);
        ptr::write_volatile(RELOAD as *mut u32, u32::MAX);
        ptr::write_volatile(VALUE as *mut u32, u32::MAX);
        ptr::write_volatile(CTRL as *mut u32, 1);
    }
    let empty = count(|| ()).1;
    let (_, measured) = count(|| spin(CALIBRATION_LOOPS));
    let measured = measured.saturating_sub(empty);
    let expected = 2 * u64::from(CALIBRATION_LOOPS);
    // Exact up to one tick at each end.
    if measured.abs_diff(expected) <= 2 * RESOLUTION {
        Ok(Calibrated { measured, expected })
    } else {
        Err(NotCounting { measured, expected })
    }
}

/// Ticks left on the down-counting timer.
#[inline(always)]
fn now() -> u32 {
    // SAFETY: reads the timer's current value; no side effect.
    unsafe { ptr::read_volatile(VALUE as *const u32) }
}

/// Runs `f` and returns how many instructions it ran (in steps of
/// [`RESOLUTION`], including the few of the two timer reads).
#[inline(always)]
pub fn count<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = now();
    let out = f();
    let after = now();
    (out, u64::from(before.wrapping_sub(after)) * RESOLUTION)
}

/// Exactly `2 * loops` instructions (a subtract and a branch per loop),
/// whatever the compiler does around it.
#[inline(never)]
fn spin(loops: u32) {
    if loops == 0 {
        return;
    }
    // SAFETY: touches only its own register.
    unsafe {
        asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) loops => _,
            options(nomem, nostack),
        );
    }
}
