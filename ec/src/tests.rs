//! Unit tests of the codec; the byte-for-byte comparison with pyeclib is in
//! `ec/tests/pyeclib_golden.rs`.

use super::*;
use proptest::prelude::*;

fn sample(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn refuses_bad_types_and_shapes_naming_them() {
    let e = Codec::new("jerasure_rs_vand", 4, 2).unwrap_err();
    assert!(e.to_string().contains("jerasure_rs_vand"), "{e}");
    assert!(Codec::new("isa_l_rs_vand", 0, 2)
        .unwrap_err()
        .to_string()
        .contains("(k)"));
    assert!(Codec::new("isa_l_rs_vand", 4, 0)
        .unwrap_err()
        .to_string()
        .contains("(m)"));
    let big = Codec::new("isa_l_rs_cauchy", 200, 60)
        .unwrap_err()
        .to_string();
    assert!(
        big.contains("isa_l_rs_cauchy") && big.contains("260"),
        "{big}"
    );
    assert!(Codec::new("isa_l_rs_cauchy", 200, 56).is_ok());
}

#[test]
fn layout_pads_to_whole_words() {
    let isa = Codec::new("isa_l_rs_vand", 4, 2).unwrap();
    let lib = Codec::new("liberasurecode_rs_vand", 4, 2).unwrap();
    for (n, isa_block, lib_block) in [(0, 0, 0), (1, 1, 2), (17, 5, 6), (100, 25, 26)] {
        assert_eq!(isa.block_size(n), isa_block, "n={n}");
        assert_eq!(lib.block_size(n), lib_block, "n={n}");
        assert!(isa
            .encode(&sample(n))
            .iter()
            .all(|f| f.len() == 80 + isa_block));
    }
}

#[test]
fn every_k_subset_decodes_and_reconstructs() {
    for ty in EC_TYPES {
        let codec = Codec::new(ty, 4, 2).unwrap();
        for n in [0, 1, 3, 17, 1000, 4099] {
            let data = sample(n);
            let frags = codec.encode(&data);
            for mask in 0u32..64 {
                if mask.count_ones() != 4 {
                    continue;
                }
                let subset: Vec<&Vec<u8>> = (0..6)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| &frags[i])
                    .collect();
                assert_eq!(
                    codec.decode(&subset).unwrap(),
                    data,
                    "{ty} n={n} mask={mask:06b}"
                );
                for (idx, want) in frags.iter().enumerate() {
                    assert_eq!(
                        &codec.reconstruct(&subset, idx).unwrap(),
                        want,
                        "{ty} n={n} idx={idx}"
                    );
                }
            }
        }
    }
}

#[test]
fn refuses_too_few_mismatched_and_corrupt_fragments() {
    let codec = Codec::new("isa_l_rs_cauchy", 4, 2).unwrap();
    let frags = codec.encode(&sample(1000));
    let three = &frags[..3];
    assert_eq!(
        codec.decode(three).unwrap_err(),
        Error::NotEnoughFragments { have: 3, need: 4 }
    );
    // Duplicates do not count twice.
    let dup = [&frags[0], &frags[0], &frags[1], &frags[2]];
    assert!(matches!(
        codec.decode(&dup),
        Err(Error::NotEnoughFragments { have: 3, .. })
    ));
    let other = codec.encode(&sample(999));
    let mixed = [&frags[0], &frags[1], &frags[2], &other[3]];
    assert!(matches!(codec.decode(&mixed), Err(Error::Mismatch(_))));
    let mut corrupt = frags.clone();
    corrupt[1][4] ^= 0x40; // payload size, under the metadata checksum
    assert!(codec
        .decode(&corrupt)
        .unwrap_err()
        .to_string()
        .contains("checksum"));
    let mut short = frags.clone();
    short[2].pop();
    assert!(matches!(codec.decode(&short), Err(Error::BadHeader(_))));
    let vand = Codec::new("isa_l_rs_vand", 4, 2).unwrap();
    assert!(vand
        .decode(&frags)
        .unwrap_err()
        .to_string()
        .contains("backend"));
    assert_eq!(
        codec.reconstruct(&frags, 6).unwrap_err(),
        Error::BadIndex { index: 6, total: 6 }
    );
}

#[test]
fn crc32_payload_checksum_is_verified_when_present() {
    let codec = Codec::new("isa_l_rs_vand", 2, 1).unwrap();
    let mut frags = codec.encode(b"hello world");
    let mut h = FragmentHeader::parse(&frags[0]).unwrap();
    h.chksum_type = CHKSUM_CRC32;
    h.chksum[0] = crc32fast::hash(&frags[0][HEADER_LEN..]);
    frags[0][..HEADER_LEN].copy_from_slice(&h.to_bytes());
    assert_eq!(codec.decode(&frags[..2]).unwrap(), b"hello world");
    frags[0][HEADER_LEN] ^= 1;
    assert!(codec
        .decode(&frags[..2])
        .unwrap_err()
        .to_string()
        .contains("CRC-32"));
}

#[test]
fn segment_info_matches_pyeclib_examples() {
    // Values printed by pyeclib 1.8.0 for k=4, m=2.
    let lib = Codec::new("liberasurecode_rs_vand", 4, 2).unwrap();
    let isa = Codec::new("isa_l_rs_vand", 4, 2).unwrap();
    let s = |c: &Codec, d, seg| {
        let i = c.segment_info(d, seg);
        (
            i.segment_size,
            i.last_segment_size,
            i.fragment_size,
            i.last_fragment_size,
            i.num_segments,
        )
    };
    assert_eq!(s(&lib, 1000, 300), (300, 100, 156, 106, 4));
    assert_eq!(s(&lib, 0, 300), (300, 300, 156, 156, 0));
    assert_eq!(
        s(&lib, 3 * 1048576 + 7, 1048576),
        (1048576, 1048583, 262224, 262226, 3)
    );
    assert_eq!(
        s(&isa, 3 * 1048576 + 7, 1048576),
        (1048576, 7, 262224, 82, 4)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decode_of_any_k_is_the_input(
        ty in 0usize..3, k in 1usize..7, m in 1usize..4,
        data in proptest::collection::vec(any::<u8>(), 0..600),
        drop_seed in any::<u64>(),
    ) {
        let codec = Codec::new(EC_TYPES[ty], k, m).unwrap();
        let frags = codec.encode(&data);
        // Drop m fragments chosen by the seed, keep the rest in a shuffled order.
        let mut order: Vec<usize> = (0..k + m).collect();
        let mut s = drop_seed;
        for i in (1..order.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (s >> 33) as usize % (i + 1));
        }
        let kept: Vec<&Vec<u8>> = order[..k].iter().map(|&i| &frags[i]).collect();
        match codec.decode(&kept) {
            Ok(out) => prop_assert_eq!(out, data),
            // ISA-L's Vandermonde matrix is not MDS for every shape; that is its only excuse.
            Err(Error::Singular(_)) => prop_assert_eq!(EC_TYPES[ty], "isa_l_rs_vand"),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    #[test]
    fn mutated_fragments_never_panic_nor_decode_to_other_lengths(
        ty in 0usize..3, data in proptest::collection::vec(any::<u8>(), 0..300),
        at in any::<usize>(), flip in 1u8..=255, cut in any::<bool>(),
    ) {
        let codec = Codec::new(EC_TYPES[ty], 4, 2).unwrap();
        let mut frags = codec.encode(&data);
        let victim = at % 6;
        let len = frags[victim].len();
        if cut {
            frags[victim].truncate(at % (len + 1));
        } else {
            frags[victim][at % len] ^= flip;
        }
        if let Ok(out) = codec.decode(&frags) {
            // Only payload bytes are unprotected (Swift writes no payload checksum).
            prop_assert_eq!(out.len(), data.len());
        }
        let _ = codec.reconstruct(&frags, at % 6);
    }
}
