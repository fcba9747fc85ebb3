//! Disk keys and secret fingerprints against vectors from an independent implementation
//! (`kat/disk_key_kat.py`, Python's `cryptography`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, RackId};
use tq_std::secrets::{derive_disk_key, fingerprint};

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn disk_keys_match_the_python_vectors() {
    let vectors = include_str!("kat/disk_key_vectors.txt");
    let mut checked = 0;
    for line in vectors.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(' ').collect();
        let [secret, rack, epoch, purpose, key] = fields[..] else {
            panic!("bad vector line: {line}")
        };
        let secret = RackSecret::from_bytes(&unhex(secret).try_into().unwrap()).unwrap();
        let rack = RackId(unhex(rack).try_into().unwrap());
        let epoch = Epoch(epoch.parse().unwrap());
        let derived = derive_disk_key(&secret, rack, epoch, &unhex(purpose)).unwrap();
        assert_eq!(derived.expose().as_slice(), unhex(key), "{line}");
        assert_eq!(derived.epoch(), epoch);
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn fingerprints_match_the_python_vectors() {
    let vectors = include_str!("kat/fingerprint_vectors.txt");
    let mut checked = 0;
    for line in vectors.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(' ').collect();
        let [secret, rack, epoch, expected] = fields[..] else {
            panic!("bad vector line: {line}")
        };
        let secret = RackSecret::from_bytes(&unhex(secret).try_into().unwrap()).unwrap();
        let rack = RackId(unhex(rack).try_into().unwrap());
        let print = fingerprint(&secret, rack, Epoch(epoch.parse().unwrap()));
        assert_eq!(print.as_slice(), unhex(expected), "{line}");
        checked += 1;
    }
    assert_eq!(checked, 3);
}
