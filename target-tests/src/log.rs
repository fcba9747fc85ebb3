//! The target binaries' defmt logger: frames go to the host on semihosting's
//! stdout (QEMU writes them to its own stdout, where `defmt-print` decodes
//! them), with no panic path, so that the node binary's link-time no-panic
//! check covers its logging too.
//!
//! `defmt-semihosting` panics when the logger is entered twice (a fault
//! taken while a frame is being written, say); here the nested frame is
//! dropped instead, and the outer one finishes intact. A firmware would put
//! its own transport (a UART, RTT) where [`write_out`] is.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use semihosting::fd::RawFd;
use semihosting::sys::arm_compat::syscall::{OperationNumber, ParamRegR, syscall_readonly};
use semihosting::sys::arm_compat::{OpenMode, sys_open};

#[defmt::global_logger]
struct Logger;

/// Everything the logger holds between `acquire` and `release`.
struct Channel {
    /// A frame is being written (between `acquire` and `release`).
    taken: AtomicBool,
    /// Acquires that came while a frame was being written (from a fault
    /// handler) and are not released yet: their frames are dropped.
    nested: AtomicU32,
    /// Touched only by the outer `acquire` and `release`, inside the
    /// critical section the first one takes and the second one ends.
    restore: UnsafeCell<critical_section::RestoreState>,
    encoder: UnsafeCell<defmt::Encoder>,
    /// Semihosting's stdout, opened by the first frame.
    stdout: UnsafeCell<Option<RawFd>>,
}

// SAFETY: the cells are only touched by the outer frame, inside the
// critical section `acquire` took (single core: nothing else runs but a
// fault handler, whose nested frame touches no cell).
unsafe impl Sync for Channel {}

static CHANNEL: Channel = Channel {
    taken: AtomicBool::new(false),
    nested: AtomicU32::new(0),
    restore: UnsafeCell::new(critical_section::RestoreState::invalid()),
    encoder: UnsafeCell::new(defmt::Encoder::new()),
    stdout: UnsafeCell::new(None),
};

// SAFETY: `acquire` and `release` pair up as defmt requires; `write` and
// `flush` only act between them (see `Channel`).
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        // SAFETY: paired with the `release` in `Logger::release`.
        let restore = unsafe { critical_section::acquire() };
        if CHANNEL.taken.load(Ordering::Relaxed) {
            // Entered again from a fault handler: drop this frame. The
            // critical section this call took is already held by the outer
            // frame, so leaving it nested changes nothing.
            CHANNEL.nested.fetch_add(1, Ordering::Relaxed);
            // SAFETY: releases exactly what this call acquired.
            unsafe { critical_section::release(restore) };
            return;
        }
        CHANNEL.taken.store(true, Ordering::Relaxed);
        // SAFETY: the outer frame, inside its critical section.
        unsafe {
            CHANNEL.restore.get().write(restore);
            let stdout = &mut *CHANNEL.stdout.get();
            if stdout.is_none() {
                *stdout = sys_open(c":tt", OpenMode::WRONLY_TRUNC)
                    .ok()
                    .map(|fd| fd.into_raw_fd());
            }
            let fd = *stdout;
            (*CHANNEL.encoder.get()).start_frame(|bytes| write_out(fd, bytes));
        }
    }

    unsafe fn flush() {
        // Semihosting writes are done when the call returns.
    }

    unsafe fn release() {
        if CHANNEL.nested.load(Ordering::Relaxed) > 0 {
            CHANNEL.nested.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if !CHANNEL.taken.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: the outer frame, inside its critical section, which this
        // ends with the state its `acquire` saved.
        unsafe {
            let fd = *CHANNEL.stdout.get();
            (*CHANNEL.encoder.get()).end_frame(|bytes| write_out(fd, bytes));
            let restore = CHANNEL.restore.get().read();
            CHANNEL.taken.store(false, Ordering::Relaxed);
            critical_section::release(restore);
        }
    }

    unsafe fn write(bytes: &[u8]) {
        if CHANNEL.nested.load(Ordering::Relaxed) > 0 || !CHANNEL.taken.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: the outer frame, inside its critical section.
        unsafe {
            let fd = *CHANNEL.stdout.get();
            (*CHANNEL.encoder.get()).write(bytes, |out| write_out(fd, out));
        }
    }
}

/// Writes `bytes` to semihosting's stdout: SYS_WRITE answers with how many
/// bytes it did not write, so this writes the rest until all went out or a
/// call made no progress (the host failed; the bytes are lost, as they would
/// be on a wire).
fn write_out(fd: Option<RawFd>, mut bytes: &[u8]) {
    let Some(fd) = fd else {
        return;
    };
    while !bytes.is_empty() {
        let block = [
            ParamRegR::raw_fd(fd),
            ParamRegR::buf(bytes),
            ParamRegR::usize(bytes.len()),
        ];
        // SAFETY: SYS_WRITE only reads the parameter block and the buffer,
        // both alive for the call.
        let not_written =
            unsafe { syscall_readonly(OperationNumber::SYS_WRITE, ParamRegR::block(&block)) }
                .usize();
        let written = bytes.len().saturating_sub(not_written);
        if written == 0 {
            return;
        }
        bytes = bytes.get(written..).unwrap_or_default();
    }
}
