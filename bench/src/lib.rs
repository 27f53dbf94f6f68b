//! Benchmarks live in `benches/`; the peer harness in `peers/`.
