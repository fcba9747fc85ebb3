//! The core's one logging facade. With the `defmt` feature the macros emit
//! defmt frames; without it they compile to nothing (the arguments are still
//! type-checked, so a log line cannot rot). Never pass a secret or a share:
//! secret types format as `..` anyway, but nothing secret belongs in a log.

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

#[cfg(not(feature = "defmt"))]
macro_rules! debug {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}
#[cfg(not(feature = "defmt"))]
macro_rules! info {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}
#[cfg(not(feature = "defmt"))]
macro_rules! warning {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}
#[cfg(not(feature = "defmt"))]
macro_rules! error {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}

pub(crate) use {debug, error, info, warning};
