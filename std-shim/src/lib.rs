//! placeholder
pub mod backoff;
pub mod ledger;
