//! `proxy::framing::Framing`, the raw request-head re-check that decides
//! every request after the first on a keep-alive connection: the input is a
//! client byte stream, fed whole and split at an offset taken from its first
//! byte, and byte by byte. Invariants: no panic; the verdict on every
//! request is the same however the stream arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sharkcage::proxy::framing::Framing;

fn verdicts(chunks: &[&[u8]]) -> Vec<Result<(), &'static str>> {
    let mut f = Framing::new(8192);
    for c in chunks {
        f.feed(c);
    }
    (0..8).map(|k| f.verdict(k)).collect()
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let whole = verdicts(&[data]);
    let at = (data[0] as usize * 7) % (data.len() + 1);
    assert_eq!(whole, verdicts(&[&data[..at], &data[at..]]), "split at {at}");
    if data.len() <= 512 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(whole, verdicts(&bytes), "byte by byte");
    }
});
