//! The bytes are the client side of ONE connection to the HTTP proxy
//! listener (absolute-form requests and CONNECT, keep-alive pipelining
//! included), served by the real `Proxy::serve_connection` over an
//! in-memory duplex stream. See `common/mod.rs` for why nothing can reach
//! the network.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sharkcage::proxy::Protocol;

mod common;

fuzz_target!(|data: &[u8]| {
    let answer = common::run_connection(data, Protocol::Http);
    // No request can succeed: every status line the proxy wrote must be an
    // error (hyper's own 400/431/… or the proxy's 400/403/502).
    for line in answer.split(|&b| b == b'\n') {
        if line.starts_with(b"HTTP/1.") && line.len() >= 10 {
            assert!(line[9] != b'1' && line[9] != b'2', "success status from the proxy: {:?}", String::from_utf8_lossy(line));
        }
    }
});
