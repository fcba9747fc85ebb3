//! placeholder
pub mod backoff;
pub mod ledger;
pub mod net;
