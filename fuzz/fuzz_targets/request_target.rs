//! The request-line rewriting under the proxy's hyper (`RequestTargetIo`), from raw bytes
//! on the wire. The first two bytes choose how the client's bytes arrive (piece size)
//! and how much hyper asks for at once (window); the rest is the connection's input.
//!
//! Findings, besides a panic or a hang: output that depends on how the bytes were split
//! (the framing must be followed the same way whatever the reads), output that differs
//! from the input when the input has no byte of 0x80 or above (only such bytes change),
//! and output that, with every `%XX` this layer added decoded back, is not the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringsmith_server::common::request_target_io::read_in_pieces;

fn through(input: &[u8], piece: usize, window: usize) -> Vec<u8> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    });
    rt.block_on(read_in_pieces(input, piece, window))
}

/// The input back from the output: a `%XX` is decoded where the input has a byte of 0x80
/// or above at that place (the only bytes this layer rewrites; one it leaves raw is not a
/// `%`), anything else is taken as it is.
fn undo(output: &[u8], input: &[u8]) -> Option<Vec<u8>> {
    let mut back = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < output.len() {
        let expect = *input.get(back.len())?;
        if expect >= 0x80 && output[i] == b'%' {
            let hex = std::str::from_utf8(output.get(i + 1..i + 3)?).ok()?;
            back.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            back.push(output[i]);
            i += 1;
        }
    }
    Some(back)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let piece = usize::from(data[0] % 16) + 1;
    let window = usize::from(data[1] % 8) + 1;
    let input = &data[2..];
    let whole = through(input, input.len().max(1), 4096);
    assert_eq!(through(input, piece, window), whole, "depends on the reads");
    if input.iter().all(|b| *b < 0x80) {
        assert_eq!(whole, input, "an ASCII input changed");
    }
    assert_eq!(undo(&whole, input).as_deref(), Some(input), "not the input");
});
