//! Symbol interning.
