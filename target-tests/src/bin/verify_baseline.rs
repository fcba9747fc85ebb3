//! The baseline of the request-verification cost binaries
//! (`verify_mac`, `verify_ed25519`): the same start, instruction count and
//! report around a call that does nothing, so that each one's flash less
//! this one's is what its verifier adds. See `verify_mac`.
#![no_std]
#![no_main]

use core::hint::black_box;

use tq_target_tests::icount;
use tq_target_tests::{fail, pass};

#[cortex_m_rt::entry]
fn main() -> ! {
    if icount::start().is_err() {
        fail("the timer does not count instructions (QEMU without -icount shift=0?)");
    }
    let (ok, instructions) = icount::count(|| black_box(true));
    if !ok {
        fail("baseline");
    }
    defmt::println!("icount: baseline: {=u64} instructions", instructions);
    pass()
}
