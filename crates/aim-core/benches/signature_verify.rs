//! What a signed request's key check costs with and without decompressing the agent's public key:
//! `PublicKey::from_bytes` (point decompression and validation) + `verify`, against `verify` with
//! a key decompressed beforehand. The server keeps decompressed agent keys for this reason
//! (aim-server `agent_auth::agent_key`).

use aim_core::keys::{KeyPair, PublicKey};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn key_check(c: &mut Criterion) {
    let key = KeyPair::from_seed(&[7; 32]);
    let msg = [0x5a_u8; 200];
    let sig = key.sign(&msg);
    let bytes = key.public().to_bytes();
    let public = PublicKey::from_bytes(&bytes).expect("a valid key");
    let mut g = c.benchmark_group("signed request key check");
    g.bench_function("decompress + verify", |b| {
        b.iter(|| PublicKey::from_bytes(black_box(&bytes)).is_ok_and(|k| k.verify(&msg, &sig)))
    });
    g.bench_function("verify (key decompressed once)", |b| {
        b.iter(|| black_box(&public).verify(&msg, &sig))
    });
    g.bench_function("decompress only", |b| {
        b.iter(|| PublicKey::from_bytes(black_box(&bytes)).is_ok())
    });
    g.finish();
}

criterion_group!(benches, key_check);
criterion_main!(benches);
