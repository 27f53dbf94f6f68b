//! Fuzzes `match[]` parsing (promql-parser, then our conversion to storage matchers, regexes
//! included) and the API's timestamp parsing: both take any string from a URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_net::api::matchers::parse_selector;
use strata_net::api::params::parse_time;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(sets) = parse_selector(s) {
            for set in &sets {
                for m in set {
                    std::hint::black_box(m.matches(s));
                }
            }
        }
        let _ = parse_time(s);
    }
});
