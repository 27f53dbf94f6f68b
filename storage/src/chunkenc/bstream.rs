//! Bit stream writer and reader used by the XOR encoding.
