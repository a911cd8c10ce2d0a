//! SOCKS5: the pure handshake parsers (`parse_greeting`, `parse_request`) on
//! the whole input and on a prefix of it, and the whole input as the client
//! side of one connection to the real `Proxy::serve_connection`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sharkcage::proxy::socks5::{parse_greeting, parse_request, Parse, SocksError};
use sharkcage::proxy::Protocol;

mod common;

/// Check one parser on `data` and on `data[..cut]`: a `Done` never claims
/// more bytes than it got, and a prefix either needs more input or gives
/// the same answer as the whole (the parsers are used incrementally).
fn check<T: PartialEq + std::fmt::Debug>(parse: fn(&[u8]) -> Result<Parse<T>, SocksError>, data: &[u8], cut: usize) {
    let whole = parse(data);
    if let Ok(Parse::Done(_, n)) = &whole {
        assert!(*n <= data.len(), "consumed {n} of {} bytes", data.len());
        // Exactly the consumed bytes give the same result.
        assert_eq!(parse(&data[..*n]), whole);
    }
    let part = parse(&data[..cut]);
    match &part {
        Ok(Parse::Incomplete) => {}
        _ => assert_eq!(part, whole, "prefix of {cut} bytes disagrees with the whole input"),
    }
}

fuzz_target!(|data: &[u8]| {
    let cut = match data.first() {
        Some(&b) => (b as usize) % (data.len() + 1),
        None => 0,
    };
    check(parse_greeting, data, cut);
    check(parse_request, data, cut);
    // A request usually follows a greeting: parse what is left after it.
    if let Ok(Parse::Done(_, n)) = parse_greeting(data) {
        let rest = &data[n..];
        check(parse_request, rest, cut.min(rest.len()));
    }

    let answer = common::run_connection(data, Protocol::Socks5);
    // Method selection, then at most one reply; never "succeeded" (0).
    if answer.len() >= 2 + 10 && answer[..2] == [5, 0] {
        assert!(answer[3] != 0, "SOCKS5 success reply: {answer:?}");
    }
});
