//! Writes the seed corpora: `cargo run --example make_corpus` (from
//! `fuzz/`) replaces `fuzz/seeds/<target>/` with real encodings of every
//! kind (see `tq_fuzz::samples`) and the hand-written wire vectors (see
//! `tq_fuzz::vectors`), and `fuzz/seeds/cluster/` with runs of
//! the stateful target that reach commits (see `tq_fuzz::cluster::seeds`),
//! and `fuzz/seeds/cluster_safety/` with those of racks of up to 8 sleds.
//! The output is deterministic: run it in release mode, it plays a few
//! hundred cluster runs.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    // The cluster seeds run a `Cluster`, which is large: give it room.
    tq_test_fixtures::with_big_stack(write_all)
}

fn write_all() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut all = tq_fuzz::samples::all();
    let cluster = tq_fuzz::cluster::seeds();
    all.push(("cluster_safety", tq_fuzz::cluster::safety_seeds(&cluster)));
    all.push(("cluster", cluster));
    for (target, seeds) in all {
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
    let vectors = tq_fuzz::vectors::seeds();
    for (target, name, bytes) in &vectors {
        fs::write(root.join(target).join(name), bytes)?;
    }
    println!("wire vectors: {} more seeds", vectors.len());
    Ok(())
}
