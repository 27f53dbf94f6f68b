//! strata's runner for Prometheus's `PromQL` test scripts (`tests/data/promqltest/*.test`): parses
//! the script language, loads data into a strata head, evaluates each `eval` (and the variants
//! Prometheus's runner derives from it) with strata's engine and compares the results.

pub mod at_modifier;
pub mod compare;
pub mod duration;
pub mod runner;
pub mod script;
pub mod series;
pub mod skips;
pub mod store;
