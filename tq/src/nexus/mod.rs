//! Nexus over HTTP: the rack file it drives a rack from ([`rack_file`]),
//! and the Nexus driver's way to reach a sled over its API ([`http`]).
//! `tq nexus ...` and `tq demo` drive racks with `tq_driver::Driver` over
//! [`directory`].

pub mod http;
pub mod rack_file;

use std::time::Duration;

use tq_core::ids::Threshold;
use tq_driver::SledMap;

use http::HttpSled;
use rack_file::RackFile;

/// The sleds of `rack` Nexus reaches directly (those with an API
/// address), each request bounded by `timeout`.
pub fn directory(rack: &RackFile, timeout: Duration) -> Result<SledMap<HttpSled>, String> {
    let map = SledMap::new();
    for sled in &rack.sleds {
        if let Some(addr) = sled.api {
            map.insert(sled.id.clone(), HttpSled::new(addr, timeout)?);
        }
    }
    Ok(map)
}

/// The threshold of a configuration of `members` members when none is
/// given: a majority, `members / 2 + 1`, as LRTQ had.
pub fn majority(members: usize) -> Result<Threshold, String> {
    let k = u8::try_from(members / 2 + 1).map_err(|_| format!("{members} members are too many"))?;
    Threshold::new(k).map_err(|e| e.to_string())
}
