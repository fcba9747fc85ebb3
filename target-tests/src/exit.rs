//! How a target binary ends: semihosting's exit call carries the code to
//! QEMU, which exits with it, so `cargo run` (and CI) see pass or fail.

/// Ends the run successfully.
pub fn pass() -> ! {
    semihosting::process::exit(0)
}

/// Ends the run with a failure after logging why.
pub fn fail(why: &str) -> ! {
    defmt::error!("FAILED: {}", why);
    semihosting::process::exit(1)
}

/// The test binaries' panic handler: log the panic and exit non-zero.
#[cfg(not(feature = "no-panic"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    defmt::error!("panicked: {}", defmt::Display2Format(info));
    semihosting::process::exit(101)
}

/// The link-time no-panic check (hubris's `no-panic` policy): the handler
/// calls a function that exists nowhere. If any panic path survives
/// optimisation the handler is kept, and the link fails on this symbol;
/// if the link succeeds, the binary cannot panic.
#[cfg(feature = "no-panic")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    unsafe extern "C" {
        fn a_panic_path_survived_optimisation() -> !;
    }
    // SAFETY: never runs: the program only links if this call is
    // unreachable.
    unsafe { a_panic_path_survived_optimisation() }
}

/// A fault (a stack overflow into the statics, a bad access) would
/// otherwise spin forever in cortex-m-rt's default handler: report it and
/// exit non-zero instead.
#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!(
        "HardFault: pc {=u32:#x}, lr {=u32:#x}",
        frame.pc(),
        frame.lr()
    );
    semihosting::process::exit(102)
}
