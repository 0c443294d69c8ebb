//! Times encode and decode of one segment size for one code, for `scripts/bench-ec.sh`.
//!
//! `ec-bench <ec_type> <k> <m> <segment_bytes> <seconds> [kernel]` prints one JSON line:
//! `{"encode_mb_s": …, "encode_reuse_mb_s": …, "decode_mb_s": …}` in MB (10^6 bytes) of segment per second on one
//! thread. Decode is from the last `k` fragments, so the first `m` data fragments are
//! rebuilt, not copied. `encode_reuse` is `encode_into` with one set of buffers kept
//! across segments, as a streaming encoder would.

use std::time::{Duration, Instant};

use ringsmith_ec::{Codec, Kernel};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 && args.len() != 6 {
        eprintln!(
            "usage: ec-bench <ec_type> <k> <m> <segment_bytes> <seconds> [gfni|avx2|portable]"
        );
        std::process::exit(2);
    }
    let parse = |s: &str, what: &str| -> usize {
        s.parse().unwrap_or_else(|_| {
            eprintln!("ec-bench: {what} {s:?} is not a number");
            std::process::exit(2)
        })
    };
    let (k, m, size) = (
        parse(&args[1], "k"),
        parse(&args[2], "m"),
        parse(&args[3], "segment_bytes"),
    );
    let seconds: f64 = args[4].parse().unwrap_or(1.0);
    let codec = Codec::new(&args[0], k, m).unwrap_or_else(|e| {
        eprintln!("ec-bench: {e}");
        std::process::exit(2)
    });
    let codec = match args.get(5).map(|name| (name, Kernel::parse(name))) {
        None => codec,
        Some((_, Some(kernel))) if Kernel::available().contains(&kernel) => {
            codec.with_kernel(kernel)
        }
        Some((name, _)) => {
            eprintln!("ec-bench: kernel {name:?} is unknown or not supported by this CPU");
            std::process::exit(2)
        }
    };
    let data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let budget = Duration::from_secs_f64(seconds);
    let encode = rate(size, budget, || {
        std::hint::black_box(codec.encode(std::hint::black_box(&data)));
    });
    let mut buffers = Vec::new();
    let encode_reuse = rate(size, budget, || {
        codec.encode_into(std::hint::black_box(&data), &mut buffers);
        std::hint::black_box(&buffers);
    });
    let frags = codec.encode(&data);
    let tail = &frags[m..];
    assert_eq!(codec.decode(tail).expect("decode"), data);
    let decode = rate(size, budget, || {
        std::hint::black_box(codec.decode(std::hint::black_box(tail)).expect("decode"));
    });
    println!(
        "{{\"kernel\": \"{}\", \"encode_mb_s\": {encode:.1}, \"encode_reuse_mb_s\": {encode_reuse:.1}, \"decode_mb_s\": {decode:.1}}}",
        codec.kernel().name()
    );
}

/// Segment MB per second of `op`, run repeatedly for about `budget` after a warm-up.
fn rate(size: usize, budget: Duration, mut op: impl FnMut()) -> f64 {
    op();
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed() < budget {
        op();
        runs += 1;
    }
    (runs as f64 * size as f64) / start.elapsed().as_secs_f64() / 1e6
}
