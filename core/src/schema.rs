//! JSON Schemas of the Nexus-facing types' JSON forms (feature `schema`,
//! host only: it links `std` for `schemars`), so an HTTP API can describe
//! the core's own request, answer and error types in its OpenAPI document.
//!
//! Types whose JSON form serde derives also derive their schema (beside
//! the serde derive, so the two cannot drift apart). The types written by
//! hand in JSON (a rack id as a UUID, digests and ciphertexts as hex, the
//! counters as a map, the checked newtypes) get their schema here, with
//! the bounds the decoders enforce: lengths, ranges, character sets.

use std::borrow::Cow;
use std::boxed::Box;
use std::string::{String, ToString};
use std::vec::Vec;

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{
    ArrayValidation, InstanceType, Metadata, NumberValidation, ObjectValidation, Schema,
    SchemaObject, StringValidation,
};

use crate::api::{Counter, Counters};
use crate::config::{ConfigFields, Configuration};
use crate::crypto::sealed::SALT_LEN;
use crate::crypto::{EncryptedRackSecrets, RngError, ShareDigest};
use crate::ids::{LrtqThreshold, PlatformId, RackId, Threshold};
use crate::limits::{
    MAX_LRTQ_THRESHOLD, MAX_MEMBERS, MAX_SEALED_LEN, MAX_THRESHOLD, MIN_LRTQ_THRESHOLD,
    MIN_THRESHOLD, PLATFORM_ID_FIELD_LEN,
};
use crate::member_set::MemberSet;

/// Bytes of a sealed ciphertext's authentication tag: the shortest one.
const TAG_LEN: usize = 16;

fn described(mut schema: SchemaObject, description: &str) -> Schema {
    schema.metadata = Some(Box::new(Metadata {
        description: Some(description.to_string()),
        ..Metadata::default()
    }));
    Schema::Object(schema)
}

fn string(format: Option<&str>, validation: StringValidation) -> SchemaObject {
    SchemaObject {
        instance_type: Some(InstanceType::String.into()),
        format: format.map(str::to_string),
        string: Some(Box::new(validation)),
        ..SchemaObject::default()
    }
}

/// Lower-case hex of `min..=max` bytes.
fn hex(min: usize, max: usize) -> SchemaObject {
    string(
        None,
        StringValidation {
            min_length: u32::try_from(2 * min).ok(),
            max_length: u32::try_from(2 * max).ok(),
            pattern: Some("^([0-9a-f]{2})*$".to_string()),
        },
    )
}

fn small_integer(min: u8, max: u8) -> SchemaObject {
    SchemaObject {
        instance_type: Some(InstanceType::Integer.into()),
        format: Some("uint8".to_string()),
        number: Some(Box::new(NumberValidation {
            minimum: Some(f64::from(min)),
            maximum: Some(f64::from(max)),
            ..NumberValidation::default()
        })),
        ..SchemaObject::default()
    }
}

fn object(properties: Vec<(String, Schema)>, description: &str) -> Schema {
    let required = properties.iter().map(|(name, _)| name.clone()).collect();
    described(
        SchemaObject {
            instance_type: Some(InstanceType::Object.into()),
            object: Some(Box::new(ObjectValidation {
                properties: properties.into_iter().collect(),
                required,
                ..ObjectValidation::default()
            })),
            ..SchemaObject::default()
        },
        description,
    )
}

impl JsonSchema for RackId {
    fn schema_name() -> String {
        "RackId".to_string()
    }

    // Inline, as the plain UUID string it is: a generated client reads it
    // as its UUID type (progenitor: `uuid::Uuid`).
    fn is_referenceable() -> bool {
        false
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::ids::RackId")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        described(
            string(Some("uuid"), StringValidation::default()),
            "The rack's UUID, hyphenated.",
        )
    }
}

impl JsonSchema for Threshold {
    fn schema_name() -> String {
        "Threshold".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::ids::Threshold")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        described(
            small_integer(MIN_THRESHOLD, MAX_THRESHOLD),
            "K: how many shares rebuild a secret (below the member count).",
        )
    }
}

impl JsonSchema for LrtqThreshold {
    fn schema_name() -> String {
        "LrtqThreshold".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::ids::LrtqThreshold")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        described(
            small_integer(MIN_LRTQ_THRESHOLD, MAX_LRTQ_THRESHOLD),
            "The threshold of an LRTQ rack, as its ledger recorded it.",
        )
    }
}

impl JsonSchema for PlatformId {
    fn schema_name() -> String {
        "PlatformId".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::ids::PlatformId")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let field = || {
            Schema::Object(string(
                None,
                StringValidation {
                    min_length: Some(1),
                    max_length: u32::try_from(PLATFORM_ID_FIELD_LEN).ok(),
                    pattern: Some("^[ -~]*$".to_string()),
                },
            ))
        };
        object(
            [
                ("part_number".to_string(), field()),
                ("serial_number".to_string(), field()),
            ]
            .into(),
            "A sled's hardware identity: printable ASCII part and serial numbers.",
        )
    }
}

impl JsonSchema for MemberSet {
    fn schema_name() -> String {
        "MemberSet".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::member_set::MemberSet")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        described(
            SchemaObject {
                instance_type: Some(InstanceType::Array.into()),
                array: Some(Box::new(ArrayValidation {
                    items: Some(generator.subschema_for::<PlatformId>().into()),
                    max_items: u32::try_from(MAX_MEMBERS).ok(),
                    unique_items: Some(true),
                    ..ArrayValidation::default()
                })),
                ..SchemaObject::default()
            },
            "A set of sleds, no repeats (sorted when read).",
        )
    }
}

impl JsonSchema for Configuration {
    fn schema_name() -> String {
        "Configuration".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::config::Configuration")
    }

    // Exactly its fields' form (serde reads it through them).
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        match ConfigFields::json_schema(generator) {
            Schema::Object(fields) => described(
                fields,
                "A configuration: the members of one epoch and how to check their shares.",
            ),
            other => other,
        }
    }
}

impl JsonSchema for ShareDigest {
    fn schema_name() -> String {
        "ShareDigest".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::crypto::ShareDigest")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        described(hex(32, 32), "SHA3-256 of a share, lower-case hex.")
    }
}

impl JsonSchema for EncryptedRackSecrets {
    fn schema_name() -> String {
        "EncryptedRackSecrets".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::crypto::EncryptedRackSecrets")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        object(
            [
                ("salt".to_string(), Schema::Object(hex(SALT_LEN, SALT_LEN))),
                (
                    "ciphertext".to_string(),
                    Schema::Object(hex(TAG_LEN, MAX_SEALED_LEN)),
                ),
            ]
            .into(),
            "Retained old secrets, sealed under this epoch's secret (salt and ciphertext in lower-case hex).",
        )
    }
}

impl JsonSchema for Counters {
    fn schema_name() -> String {
        "Counters".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::node::Counters")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let count = generator.subschema_for::<u32>();
        let properties = Counter::ALL
            .iter()
            .map(|counter| (counter.name().to_string(), count.clone()))
            .collect();
        object(
            properties,
            "How often each counted event happened, by its stable name.",
        )
    }
}

/// A unit struct is JSON `null`: OpenAPI 3.0 has no null type, only a
/// nullable schema whose one value is `null`.
impl JsonSchema for RngError {
    fn schema_name() -> String {
        "RngError".to_string()
    }

    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("tq_core::crypto::RngError")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut schema = SchemaObject {
            enum_values: Some(vec![schemars::_serde_json::Value::Null]),
            ..SchemaObject::default()
        };
        schema.extensions.insert(
            "nullable".to_string(),
            schemars::_serde_json::Value::Bool(true),
        );
        described(schema, "The random number generator failed (JSON null).")
    }
}
