//! Fuzzes the remote-read request decoder: snappy block decompression with the declared-length
//! check, then prost's `ReadRequest` decoding, as `POST /api/v1/read` does. Neither may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use strata_net::remote_write::proto::ReadRequest;
use strata_net::remote_write::snappy::decompress_into;

fuzz_target!(|body: &[u8]| {
    let mut buf = Vec::new();
    if let Ok(n) = decompress_into(body, &mut buf, 1 << 20) {
        let _ = ReadRequest::decode(&buf[..n]);
    }
    let _ = ReadRequest::decode(body);
});
