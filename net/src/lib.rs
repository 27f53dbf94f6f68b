//! strata's edges: the HTTP server and its routes, the remote-write and remote-read codecs
//! (protobuf + snappy), and the Prometheus JSON encoding.

pub mod api;
pub mod http;
pub mod remote_write;
