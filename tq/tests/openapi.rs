//! The committed OpenAPI document (`tq/openapi/sled.json`) is exactly what
//! the API trait generates. When the code changes the API, regenerate it
//! and commit it with the change:
//!
//!     TQ_UPDATE_OPENAPI=1 cargo test -p tq --test openapi
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/sled.json")
}

#[test]
fn openapi_document_matches_the_code() {
    let generated = tq::api::openapi_text().unwrap();
    let path = committed_path();
    if std::env::var_os("TQ_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let diff = similar::TextDiff::from_lines(&committed, &generated);
        panic!(
            "{} differs from what the API trait generates (- committed, + generated):\n{}\n\
             If the change is meant, regenerate it with\n    \
             TQ_UPDATE_OPENAPI=1 cargo test -p tq --test openapi\nand commit it.",
            path.display(),
            diff.unified_diff().context_radius(3)
        );
    }
}
