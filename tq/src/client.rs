//! The client of the sled API, generated with progenitor from the committed
//! OpenAPI document (`tq/openapi/sled.json`). What the Nexus driver uses.
