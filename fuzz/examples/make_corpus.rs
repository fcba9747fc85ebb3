//! Writes the seed corpora: `cargo run --example make_corpus` (from
//! `fuzz/`) replaces `fuzz/seeds/<target>/` with real encodings of every
//! kind (see `tq_fuzz::samples`). The output is deterministic.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, seeds) in tq_fuzz::samples::all() {
        let dir = root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        for (name, bytes) in &seeds {
            fs::write(dir.join(name), bytes)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}
