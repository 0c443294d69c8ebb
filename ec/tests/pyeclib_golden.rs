//! Golden vectors from real pyeclib 1.8.0 (the reference virtualenv), generated at test
//! time by `pyeclib_golden.py`: our fragments must be pyeclib's byte for byte, each side
//! must decode the other's fragments from any `k`, our reconstruction of every index must
//! equal pyeclib's, and both must refuse a corrupt header or too few fragments.
//!
//! Fails, never skips, when the virtualenv is missing (`ringsmith_testkit::swift_venv`).

use std::collections::BTreeMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use ringsmith_ec::{Codec, Error, FragmentHeader, Kernel, CHKSUM_NONE, EC_TYPES};
use serde_json::{json, Value};

const SHAPES: [(usize, usize); 5] = [(4, 2), (10, 4), (6, 3), (2, 1), (8, 4)];
const MIB: usize = 1 << 20;

struct Case {
    id: String,
    codec: Codec,
    data: Vec<u8>,
    subsets: Vec<Vec<usize>>,
    reconstruct: Vec<(usize, Vec<usize>)>,
}

fn data_for(n: usize, seed: u64) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn k_subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..1 << n)
        .filter(|mask| mask.count_ones() as usize == k)
        .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
        .collect()
}

/// Every k-subset when there are few, else the first and last k plus a seeded sample.
fn subsets(n: usize, k: usize, big: bool, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let all = k_subsets(n, k);
    let want = if big { 5 } else { 40 };
    if all.len() <= want {
        return all;
    }
    let mut picked = vec![all[0].clone(), all[all.len() - 1].clone()];
    picked.extend(all.choose_multiple(rng, want - 2).cloned());
    picked
}

fn build_cases(dir: &Path) -> (Vec<Case>, Value) {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut cases = Vec::new();
    let mut spec = Vec::new();
    for ty in EC_TYPES {
        for (k, m) in SHAPES {
            let codec = Codec::new(ty, k, m).unwrap();
            let mut sizes = vec![0, 1, k - 1, k + 1, 17, 999, 4097, MIB, MIB + 7];
            sizes.sort_unstable();
            sizes.dedup();
            for n in sizes {
                let subsets = subsets(k + m, k, n >= MIB, &mut rng);
                add_case(dir, &codec, n, subsets, &mut rng, &mut cases, &mut spec);
            }
        }
    }
    // ISA-L's Vandermonde code with 5 parities (Swift wants such policies deprecated):
    // some 6-subsets of 6+5 are singular. Every subset, so both sides' failures are seen.
    let vand = Codec::new("isa_l_rs_vand", 6, 5).unwrap();
    add_case(
        dir,
        &vand,
        1000,
        k_subsets(11, 6),
        &mut rng,
        &mut cases,
        &mut spec,
    );
    (cases, Value::Array(spec))
}

fn add_case(
    dir: &Path,
    codec: &Codec,
    n: usize,
    subsets: Vec<Vec<usize>>,
    rng: &mut ChaCha8Rng,
    cases: &mut Vec<Case>,
    spec: &mut Vec<Value>,
) {
    let (ty, k, m) = (codec.ec_type().name(), codec.k(), codec.m());
    let id = format!("{ty}-{k}-{m}-{n}");
    let data = data_for(n, (n * 31 + k * 7 + m) as u64);
    std::fs::write(dir.join(format!("{id}.data")), &data).unwrap();
    let ours = codec.encode(&data);
    let mut our_names = Vec::new();
    for (i, f) in ours.iter().enumerate() {
        let name = format!("ours-{id}-{i}.bin");
        std::fs::write(dir.join(&name), f).unwrap();
        our_names.push(name);
    }
    let reconstruct: Vec<(usize, Vec<usize>)> = (0..k + m)
        .map(|idx| {
            let mut others: Vec<usize> = (0..k + m).filter(|&i| i != idx).collect();
            others.shuffle(rng);
            others.truncate(k);
            others.sort_unstable();
            (idx, others)
        })
        .collect();
    // Corrupt sets both sides must refuse: a flipped orig_data_size byte in fragment 0's
    // header, and only k - 1 fragments.
    let mut bad = ours[0].clone();
    bad[13] ^= 0x01;
    let bad_name = format!("bad-{id}.bin");
    std::fs::write(dir.join(&bad_name), &bad).unwrap();
    let mut with_bad = our_names.clone();
    with_bad[0] = bad_name;
    let corrupt = vec![with_bad, our_names[..k - 1].to_vec()];
    let seg: Vec<(usize, usize)> = spec_segments()
        .into_iter()
        .map(|(len, size)| (if len == usize::MAX { n } else { len }, size))
        .collect();
    spec.push(json!({
        "id": id, "ec_type": ty, "k": k, "m": m, "data": format!("{id}.data"),
        "ours": our_names, "decode_subsets": subsets, "reconstruct": reconstruct,
        "corrupt": corrupt, "segment_info": seg,
    }));
    cases.push(Case {
        id,
        codec: codec.clone(),
        data,
        subsets,
        reconstruct,
    });
}

#[test]
fn fragments_decode_and_reconstruct_match_pyeclib() {
    let dir = tempfile::tempdir().unwrap();
    let (cases, spec) = build_cases(dir.path());
    std::fs::write(
        dir.path().join("cases.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyeclib_golden.py");
    let out = ringsmith_testkit::swift_python(&[script.as_os_str(), dir.path().as_os_str()], b"");
    let results: BTreeMap<String, Value> = serde_json::from_slice(&out).unwrap();
    let read = |name: String| std::fs::read(dir.path().join(name));
    let mut singular = 0;
    for case in &cases {
        let (id, codec, n) = (&case.id, &case.codec, codec_n(case));
        let r = &results[id];
        // 1. Encode: byte-identical, header included.
        let theirs: Vec<Vec<u8>> = (0..n)
            .map(|i| read(format!("py-{id}-{i}.bin")).unwrap())
            .collect();
        let ours = codec.encode(&case.data);
        for i in 0..n {
            assert!(
                ours[i] == theirs[i],
                "{id}: fragment {i} differs from pyeclib's"
            );
        }
        // Every kernel this CPU has (GFNI, AVX2, portable) encodes, decodes and rebuilds the
        // same bytes.
        for kernel in Kernel::available() {
            let alt = codec.clone().with_kernel(kernel);
            assert!(
                alt.encode(&case.data) == theirs,
                "{id}: {kernel:?} encode differs from pyeclib's"
            );
            let tail: Vec<&Vec<u8>> = theirs[n - codec.k()..].iter().collect();
            assert!(
                alt.decode(&tail).unwrap() == case.data,
                "{id}: {kernel:?} decode"
            );
            let (idx, subset) = &case.reconstruct[0];
            let pick: Vec<&Vec<u8>> = subset.iter().map(|&i| &theirs[i]).collect();
            if let Ok(f) = alt.reconstruct(&pick, *idx) {
                assert!(f == theirs[*idx], "{id}: {kernel:?} reconstruct {idx}");
            }
        }
        // 2. Decode each other's fragments from the same subsets.
        for (subset, py_said) in case
            .subsets
            .iter()
            .zip(r["decode_ours"].as_array().unwrap())
        {
            let pick: Vec<&Vec<u8>> = subset.iter().map(|&i| &theirs[i]).collect();
            match codec.decode(&pick) {
                Ok(out) => {
                    assert!(
                        out == case.data,
                        "{id}: our decode of pyeclib's {subset:?} is wrong"
                    );
                    assert_eq!(py_said, "ok", "{id}: pyeclib's decode of our {subset:?}");
                }
                // ISA-L's Vandermonde matrix is singular for some subsets; pyeclib must
                // then fail too, never return other bytes.
                Err(Error::Singular(_)) if codec.ec_type().name() == "isa_l_rs_vand" => {
                    assert!(
                        py_said.as_str().unwrap().starts_with("error"),
                        "{id}: {subset:?}: {py_said}"
                    );
                    singular += 1;
                }
                Err(e) => panic!("{id}: our decode of pyeclib's {subset:?}: {e}"),
            }
        }
        // 3. Reconstruct each index from k others: pyeclib's bytes, which are encode's.
        for (idx, subset) in &case.reconstruct {
            let pick: Vec<&Vec<u8>> = subset.iter().map(|&i| &theirs[i]).collect();
            let mine = codec.reconstruct(&pick, *idx);
            match read(format!("pyrec-{id}-{idx}.bin")) {
                Ok(py) => {
                    let mine = mine
                        .unwrap_or_else(|e| panic!("{id}: reconstruct {idx} from {subset:?}: {e}"));
                    assert!(
                        mine == py,
                        "{id}: reconstruct {idx} from {subset:?} differs from pyeclib's"
                    );
                    assert!(
                        mine == theirs[*idx],
                        "{id}: reconstruct {idx} differs from the encoded fragment"
                    );
                }
                Err(_) => {
                    let why =
                        String::from_utf8(read(format!("pyrec-{id}-{idx}.err")).unwrap()).unwrap();
                    assert!(
                        matches!(mine, Err(Error::Singular(_))),
                        "{id}: pyeclib failed to reconstruct {idx} from {subset:?} ({why}), we did not"
                    );
                }
            }
        }
        // 4. Corruption: both refuse a bad header and too few fragments.
        for (what, py_said) in ["bad header", "k - 1 fragments"]
            .iter()
            .zip(r["corrupt"].as_array().unwrap())
        {
            assert!(
                py_said.as_str().unwrap().starts_with("error"),
                "{id}: pyeclib accepted {what}"
            );
        }
        let mut bad = theirs.clone();
        bad[0][13] ^= 0x01;
        assert!(
            matches!(codec.decode(&bad), Err(Error::BadHeader(_))),
            "{id}: bad header accepted"
        );
        assert!(matches!(
            codec.decode(&theirs[..codec.k() - 1]),
            Err(Error::NotEnoughFragments { .. })
        ));
        let mut bad_sum = theirs[1].clone();
        bad_sum[68] ^= 0x80; // the metadata checksum itself
        assert!(
            matches!(codec.decode(&[&bad_sum]), Err(Error::BadHeader(_))),
            "{id}: bad checksum accepted"
        );
        // Fragments with liberasurecode's legacy metadata CRC decode too.
        let legacy: Vec<Vec<u8>> = (0..n)
            .map(|i| read(format!("legacy-{id}-{i}.bin")).unwrap())
            .collect();
        assert!(
            legacy.iter().zip(&theirs).any(|(l, t)| l != t),
            "{id}: legacy CRC headers are the same"
        );
        let tail: Vec<&Vec<u8>> = legacy[n - codec.k()..].iter().collect();
        assert!(
            codec.decode(&tail).unwrap() == case.data,
            "{id}: decode of legacy-CRC fragments"
        );
        // FragmentHeader::parse reads what pyeclib's get_metadata reads.
        for (i, meta) in [0, n - 1].iter().zip(r["metadata"].as_array().unwrap()) {
            let h = FragmentHeader::parse(&theirs[*i]).unwrap();
            assert_eq!(u64::from(h.index), meta["index"].as_u64().unwrap(), "{id}");
            assert_eq!(u64::from(h.size), meta["size"].as_u64().unwrap(), "{id}");
            assert_eq!(
                h.orig_data_size,
                meta["orig_data_size"].as_u64().unwrap(),
                "{id}"
            );
            assert_eq!(
                u64::from(h.backend_version),
                meta["backend_version"].as_u64().unwrap(),
                "{id}"
            );
            assert_eq!(
                u64::from(h.chksum_mismatch),
                meta["chksum_mismatch"].as_u64().unwrap(),
                "{id}"
            );
            assert_eq!(meta["backend_id"], codec.ec_type().name(), "{id}");
            assert_eq!(h.backend_id, codec.ec_type().backend_id(), "{id}");
            assert_eq!(
                (h.chksum_type, &meta["chksum_type"]),
                (CHKSUM_NONE, &json!("none")),
                "{id}"
            );
        }
        // 5. pyeclib's get_segment_info.
        for (seg, info) in spec_segments()
            .iter()
            .zip(r["segment_info"].as_array().unwrap())
        {
            let (len, size) = if seg.0 == usize::MAX {
                (case.data.len(), seg.1)
            } else {
                *seg
            };
            let got = codec.segment_info(len as u64, size as u64);
            let field = |k: &str| info[k].as_u64().unwrap();
            assert_eq!(
                (
                    got.segment_size,
                    got.last_segment_size,
                    got.fragment_size,
                    got.last_fragment_size,
                    got.num_segments
                ),
                (
                    field("segment_size"),
                    field("last_segment_size"),
                    field("fragment_size"),
                    field("last_fragment_size"),
                    field("num_segments")
                ),
                "{id}: get_segment_info({len}, {size})"
            );
        }
    }
    // Mismatched fragments (two segments of one code) are refused, not decoded.
    for pair in cases.windows(2).filter(|w| {
        w[0].codec.ec_type() == w[1].codec.ec_type()
            && w[0].codec.k() == w[1].codec.k()
            && w[0].data.len() != w[1].data.len()
    }) {
        let k = pair[0].codec.k();
        let a = read(format!("py-{}-0.bin", pair[0].id)).unwrap();
        let mut set = vec![a];
        set.extend((1..k + 1).map(|i| read(format!("py-{}-{i}.bin", pair[1].id)).unwrap()));
        assert!(
            matches!(pair[0].codec.decode(&set), Err(Error::Mismatch(_))),
            "{} + {}",
            pair[0].id,
            pair[1].id
        );
    }
    eprintln!(
        "{} cases; {singular} singular isa_l_rs_vand subsets refused by both",
        cases.len()
    );
}

fn codec_n(case: &Case) -> usize {
    case.codec.k() + case.codec.m()
}

/// The `segment_info` arguments of `build_cases`, with `usize::MAX` for the case's size.
fn spec_segments() -> Vec<(usize, usize)> {
    vec![
        (0, MIB),
        (1, MIB),
        (usize::MAX, MIB),
        (MIB, MIB),
        (2 * MIB, MIB),
        (MIB + 1, MIB),
        (3 * MIB + 7, MIB),
        (1000, 300),
        (1000, 7),
        (5, 2),
        (usize::MAX, 1000),
    ]
}
