//! `ring.gz` reader. An input that starts with gzip's magic is taken as the file itself
//! (gzip framing, CRC, ring magic), so real rings (`fixtures/rings/`) seed the run; any
//! other input is gzipped here first, so the fuzzer reaches the payload parsers (v1 JSON
//! and arrays, v2 sections) instead of dying on the CRC. A ring that parses must write
//! back and parse again to the same bytes.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use ringsmith::ring::format::parse_ring_bytes;

fuzz_target!(|data: &[u8]| {
    let file = if data.starts_with(&[0x1f, 0x8b]) {
        data.to_vec()
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    };
    let Ok(loaded) = parse_ring_bytes(&file) else {
        return;
    };
    // Rings that are readable but not writable (say, more devices than a v1 array can
    // name) are refused by the writer with an error, never a panic.
    let Ok(written) = loaded.data.to_gz_bytes(loaded.format, b"object.ring") else {
        return;
    };
    let again = parse_ring_bytes(&written).expect("a ring we wrote must read back");
    let rewritten = again
        .data
        .to_gz_bytes(again.format, b"object.ring")
        .expect("a ring we read back must write");
    assert!(written == rewritten, "ring round trip is not stable");
});
