//! The core's one logging facade: `defmt` frames on the service processor
//! (feature `defmt`), the `log` crate on the host (feature `log`), or
//! nothing (the arguments are still type-checked, so a log line cannot
//! rot). Every argument implements both `defmt::Format` and `Display`, and
//! format strings use only `{}`, which both back ends read alike.
//!
//! Never pass a secret or a share: secret types format as `..` anyway, but
//! nothing secret belongs in a log.

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("tq-core: enable at most one of the `defmt` and `log` features");

#[cfg(feature = "defmt")]
macro_rules! debug {
    ($($arg:tt)+) => { defmt::debug!($($arg)+) };
}
#[cfg(feature = "defmt")]
macro_rules! info {
    ($($arg:tt)+) => { defmt::info!($($arg)+) };
}
#[cfg(feature = "defmt")]
macro_rules! warning {
    ($($arg:tt)+) => { defmt::warn!($($arg)+) };
}
#[cfg(feature = "defmt")]
macro_rules! error {
    ($($arg:tt)+) => { defmt::error!($($arg)+) };
}

#[cfg(feature = "log")]
macro_rules! debug {
    ($($arg:tt)+) => { ::log::debug!(target: "tq_core", $($arg)+) };
}
#[cfg(feature = "log")]
macro_rules! info {
    ($($arg:tt)+) => { ::log::info!(target: "tq_core", $($arg)+) };
}
#[cfg(feature = "log")]
macro_rules! warning {
    ($($arg:tt)+) => { ::log::warn!(target: "tq_core", $($arg)+) };
}
#[cfg(feature = "log")]
macro_rules! error {
    ($($arg:tt)+) => { ::log::error!(target: "tq_core", $($arg)+) };
}

#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! debug {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}
#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! info {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}
#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! warning {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}
#[cfg(not(any(feature = "defmt", feature = "log")))]
macro_rules! error {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}

pub(crate) use {debug, error, info, warning};
