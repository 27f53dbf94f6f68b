//! The XOR chunk encoding (Prometheus encoding 1).
