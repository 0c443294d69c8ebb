use super::*;
use proptest::prelude::*;

/// `pickle.dumps(md, protocol=2)` by CPython 3.11 of a Swift object-metadata dict
/// (`_encode_metadata` output: bytes keys and values, one empty value, non-ASCII UTF-8).
const PY_METADATA_P2: &str = "80027d710028635f636f646563730a656e636f64650a710158040000006e616d65710258060000006c6174696e317103867104527105680158060000002f612f632f6f710668038671075271086801580b000000582d54696d657374616d707109680386710a52710b68015810000000313730303030303030302e3030303030710c680386710d52710e6801580e000000436f6e74656e742d4c656e677468710f6803867110527111680158010000003571126803867113527114680158040000004554616771156803867116527117635f5f6275696c74696e5f5f0a62797465730a71182952711968015815000000582d4f626a6563742d4d6574612d436166c383c2a9711a680386711b52711c68015809000000c383c2a974c383c2a9711d680386711e52711f752e";

/// One dict of assorted values pickled by CPython 3.11 with protocols 2, 0, 1, 4 and 5.
const PY_MIXED_P2: &str = "80027d71002858010000006171014b0158010000006271025d710328473ff80000000000004e88896558010000006371044b014b028671055801000000647106284b014b024b034b0474710758010000006571086361727261790a61727261790a7109580100000048710a5d710b284b014b024dffff6586710c52710d580100000066710e4afbffffff580100000067710f8a0600000000000158010000006871108a08000000000000008058010000006971118a0900000000000000004058010000006a71124a7011010058010000006b71134a00000080752e";
const PY_MIXED_P0: &str = "286470300a56610a70310a49310a7356620a70320a286c70330a46312e350a614e614930310a614930300a617356630a70340a2849310a49320a7470350a7356640a70360a2849310a49320a49330a49340a7470370a7356650a70380a6361727261790a61727261790a70390a2856480a7031300a286c7031310a49310a6149320a614936353533350a61747031320a527031330a7356660a7031340a492d350a7356670a7031350a4c313039393531313632373737364c0a7356680a7031360a4c2d393232333337323033363835343737353830384c0a7356690a7031370a4c313138303539313632303731373431313330333432344c0a73566a0a7031380a4937303030300a73566b0a7031390a492d323134373438333634380a732e";
const PY_MIXED_P1: &str = "7d71002858010000006171014b0158010000006271025d710328473ff80000000000004e4930310a4930300a655801000000637104284b014b027471055801000000647106284b014b024b034b0474710758010000006571086361727261790a61727261790a710928580100000048710a5d710b284b014b024dffff6574710c52710d580100000066710e4afbffffff580100000067710f4c313039393531313632373737364c0a58010000006871104c2d393232333337323033363835343737353830384c0a58010000006971114c313138303539313632303731373431313330333432344c0a58010000006a71124a7011010058010000006b71134a00000080752e";
const PY_MIXED_P4: &str = "800495c7000000000000007d94288c0161944b018c0162945d9428473ff80000000000004e8889658c0163944b014b0286948c016494284b014b024b034b0474948c0165948c056172726179948c145f61727261795f7265636f6e7374727563746f72949394288c056172726179948c0561727261799493948c0148944b02430601000200ffff94749452948c0166944afbffffff8c0167948a060000000000018c0168948a0800000000000000808c0169948a090000000000000000408c016a944a701101008c016b944a00000080752e";
const PY_MIXED_P5: &str = "800595c7000000000000007d94288c0161944b018c0162945d9428473ff80000000000004e8889658c0163944b014b0286948c016494284b014b024b034b0474948c0165948c056172726179948c145f61727261795f7265636f6e7374727563746f72949394288c056172726179948c0561727261799493948c0148944b02430601000200ffff94749452948c0166944afbffffff8c0167948a060000000000018c0168948a0800000000000000808c0169948a090000000000000000408c016a944a701101008c016b944a00000080752e";

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

fn b(x: &[u8]) -> Value {
    Value::Bytes(x.to_vec())
}

fn metadata() -> Value {
    Value::Dict(vec![
        (b(b"name"), b(b"/a/c/o")),
        (b(b"X-Timestamp"), b(b"1700000000.00000")),
        (b(b"Content-Length"), b(b"5")),
        (b(b"ETag"), b(b"")),
        (b("X-Object-Meta-Café".as_bytes()), b("été".as_bytes())),
    ])
}

fn mixed() -> Value {
    Value::Dict(vec![
        (s("a"), Value::Int(1)),
        (
            s("b"),
            Value::List(vec![
                Value::Float(1.5),
                Value::None,
                Value::Bool(true),
                Value::Bool(false),
            ]),
        ),
        (s("c"), Value::Tuple(vec![Value::Int(1), Value::Int(2)])),
        (s("d"), Value::Tuple((1..=4).map(Value::Int).collect())),
        (
            s("e"),
            Value::Array {
                typecode: 'H',
                items: vec![1, 2, 65535],
            },
        ),
        (s("f"), Value::Int(-5)),
        (s("g"), Value::Int(1 << 40)),
        (s("h"), Value::Int(i64::MIN)),
        (s("i"), Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 0x40])),
        (s("j"), Value::Int(70000)),
        (s("k"), Value::Int(-(1 << 31))),
    ])
}

fn unhex(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap()
}

#[test]
fn reads_python_metadata_pickle() {
    assert_eq!(loads(&unhex(PY_METADATA_P2)).unwrap(), metadata());
}

#[test]
fn writes_metadata_byte_for_byte_like_python() {
    let out = dumps(&metadata());
    assert_eq!(hex::encode(&out), PY_METADATA_P2);
    // Swift's read_metadata tells py3 pickles from py2 ones by this marker.
    assert!(out[..32].windows(14).any(|w| w == b"_codecs\nencode"));
}

#[test]
fn reads_every_protocol_python_writes() {
    for (proto, h) in [
        (0, PY_MIXED_P0),
        (1, PY_MIXED_P1),
        (2, PY_MIXED_P2),
        (4, PY_MIXED_P4),
        (5, PY_MIXED_P5),
    ] {
        let v = loads(&unhex(h)).unwrap_or_else(|e| panic!("protocol {proto}: {e}"));
        assert_eq!(v, mixed(), "protocol {proto}");
    }
}

#[test]
fn writes_mixed_dict_byte_for_byte_like_python() {
    assert_eq!(hex::encode(dumps(&mixed())), PY_MIXED_P2);
}

#[test]
fn shared_objects_keep_their_identity() {
    let dev = Value::shared(Value::Dict(vec![(s("id"), Value::Int(3))]));
    let v = Value::Dict(vec![
        (s("devs"), Value::List(vec![dev.clone()])),
        (s("_remove_devs"), Value::List(vec![dev])),
    ]);
    let bytes = dumps(&v);
    // The second occurrence is a memo fetch, not a second dict.
    assert_eq!(bytes.iter().filter(|&&c| c == op::EMPTY_DICT).count(), 2);
    let back = loads(&bytes).unwrap();
    assert_eq!(back, v);
    let a = &back.get("devs").unwrap().as_seq().unwrap()[0];
    let r = &back.get("_remove_devs").unwrap().as_seq().unwrap()[0];
    match (a, r) {
        (Value::Shared(x), Value::Shared(y)) => assert!(Arc::ptr_eq(x, y)),
        other => panic!("not shared: {other:?}"),
    }
}

#[test]
fn python_2_strings_and_legacy_instances() {
    // Python 2, protocol 2: an old RingBuilder instance with a py2 str key.
    let mut p = vec![0x80, 2];
    p.extend_from_slice(
        b"cswift.common.ring.builder\nRingBuilder\nq\x00)\x81q\x01}q\x02U\x04devsq\x03]q\x04sb.",
    );
    let v = loads(&p).unwrap();
    let Value::Object(o) = v else { panic!("{v:?}") };
    assert_eq!(
        (o.module.as_str(), o.name.as_str(), o.newobj),
        ("swift.common.ring.builder", "RingBuilder", true)
    );
    let state = o.state.unwrap();
    assert_eq!(state.get("devs"), Some(&Value::List(vec![])));
    // Written back, it reads the same.
    let again = loads(&dumps(&loads(&p).unwrap())).unwrap();
    assert_eq!(again, loads(&p).unwrap());
}

#[test]
fn python_2_arrays_of_machine_bytes() {
    // Python 2.7: pickle.dumps(array('H', [1, 258, 65535]), 2) and an array('I').
    let p = b"\x80\x02carray\narray\nq\x00U\x01HU\x06\x01\x00\x02\x01\xff\xff\x86q\x01Rq\x02.";
    assert_eq!(
        loads(p).unwrap(),
        Value::Array {
            typecode: 'H',
            items: vec![1, 258, 65535]
        }
    );
    let p = b"\x80\x02carray\narray\nU\x01IU\x08\x01\x00\x00\x00\x00\x00\x01\x00\x86R.";
    assert_eq!(
        loads(p).unwrap(),
        Value::Array {
            typecode: 'I',
            items: vec![1, 65536]
        }
    );
    let e = loads(b"\x80\x02carray\narray\nU\x01HU\x03abc\x86R.").unwrap_err();
    assert!(e.to_string().contains("whole items"), "{e}");
}

#[test]
fn protocol_0_strings_escapes_and_big_ints() {
    let p = b"(lp0\nS'a\\'b\\x41\\n'\np1\naVcaf\\u00e9\np2\naL123456789012345678901234567890L\na.";
    let v = loads(p).unwrap();
    let items = v.as_seq().unwrap();
    assert_eq!(items[0], b(b"a'bA\n"));
    assert_eq!(items[1], s("café"));
    // 123456789012345678901234567890 == 0x18ee90ff6c373e0ee4e3f0ad2
    assert_eq!(
        items[2],
        Value::BigInt(vec![
            0xd2, 0x0a, 0x3f, 0x4e, 0xee, 0xe0, 0x73, 0xc3, 0xf6, 0x0f, 0xe9, 0x8e, 0x01
        ])
    );
    let neg = loads(b"L-123456789012345678901234567890L\n.").unwrap();
    let Value::BigInt(nb) = &neg else {
        panic!("{neg:?}")
    };
    // Two's complement of the above: adding them gives zero.
    let pos = [
        0xd2u8, 0x0a, 0x3f, 0x4e, 0xee, 0xe0, 0x73, 0xc3, 0xf6, 0x0f, 0xe9, 0x8e, 0x01,
    ];
    let mut carry = 0u16;
    for (a, b) in pos.iter().zip(nb.iter()) {
        let x = *a as u16 + *b as u16 + carry;
        assert_eq!(x as u8, 0);
        carry = x >> 8;
    }
    assert!(loads(format!("L{}L\n.", "9".repeat(4301)).as_bytes()).is_err());
    // And the big int survives a round trip through protocol 2.
    assert_eq!(loads(&dumps(&v)).unwrap(), v);
}

#[test]
fn errors_name_offset_and_opcode() {
    let e = loads(b"\x80\x02}q\x00X\xff\x00\x00\x00ab").unwrap_err();
    assert_eq!(e.offset, 5);
    assert_eq!(e.opcode, Some(op::BINUNICODE));
    assert!(e.to_string().contains("BINUNICODE"), "{e}");
    assert!(e.to_string().contains("byte 5"), "{e}");

    let e = loads(b"\x80\x02h\x07.").unwrap_err();
    assert!(e.to_string().contains("memo key 7"), "{e}");
    let e = loads(b"").unwrap_err();
    assert!(e.to_string().contains("no STOP"), "{e}");
    let e = loads(b"\x80\x02N").unwrap_err();
    assert!(e.to_string().contains("no STOP"), "{e}");
    let e = loads(b"{\"json\": 1}").unwrap_err();
    assert!(e.to_string().contains("unknown opcode"), "{e}");
    let e = loads(b"\x80\x09N.").unwrap_err();
    assert!(e.to_string().contains("protocol 9"), "{e}");
}

#[test]
fn refuses_recursive_structures() {
    // l = []; l.append(l)
    let e = loads(b"\x80\x02]q\x00h\x00a.").unwrap_err();
    assert!(e.to_string().contains("recursive"), "{e}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(op::EMPTY_LIST, 100_000));
    p.extend(std::iter::repeat_n(op::APPEND, 99_999));
    p.push(op::STOP);
    let e = loads(&p).unwrap_err();
    assert!(e.to_string().contains("nested"), "{e}");
}

#[test]
fn shared_containers_do_not_blow_up_memory() {
    // Ten levels of a list holding its predecessor 100 times: 100^10 leaves if copied.
    let mut p = vec![0x80, 2, op::EMPTY_LIST, op::BINPUT, 0];
    for level in 1..=10u8 {
        p.push(op::EMPTY_LIST);
        p.push(op::MARK);
        for _ in 0..100 {
            p.extend_from_slice(&[op::BINGET, level - 1]);
        }
        p.push(op::APPENDS);
        p.extend_from_slice(&[op::BINPUT, level]);
    }
    p.push(op::STOP);
    let v = loads(&p).unwrap();
    assert_eq!(v.as_seq().unwrap().len(), 100);
}

#[test]
fn copying_shared_strings_is_bounded() {
    // One 60 kB string fetched 200,000 times would be 12 GB of copies.
    let mut p = vec![0x80, 2, op::BINUNICODE];
    p.extend_from_slice(&60_000u32.to_le_bytes());
    p.extend(std::iter::repeat_n(b'x', 60_000));
    p.extend_from_slice(&[op::BINPUT, 0, op::POP, op::EMPTY_LIST, op::MARK]);
    for _ in 0..200_000 {
        p.extend_from_slice(&[op::BINGET, 0]);
    }
    p.extend_from_slice(&[op::APPENDS, op::STOP]);
    let e = loads(&p).unwrap_err();
    assert!(e.to_string().contains("size limit"), "{e}");
}

#[test]
fn huge_declared_lengths_are_refused_before_allocating() {
    let e = loads(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f").unwrap_err();
    assert!(e.to_string().contains("runs past the end"), "{e}");
    let e = loads(b"\x80\x02\x8b\xff\xff\xff\x7f").unwrap_err();
    assert!(e.to_string().contains("runs past the end"), "{e}");
}

#[test]
fn duplicate_dict_keys_keep_first_position_and_last_value() {
    // {1: 'a', True: 'b', 1.0: 'c', 'x': 0} in Python is {1: 'c', 'x': 0}.
    let p = b"\x80\x02}(K\x01X\x01\x00\x00\x00a\x88X\x01\x00\x00\x00bG?\xf0\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00cX\x01\x00\x00\x00xK\x00u.";
    let v = loads(p).unwrap();
    assert_eq!(
        v,
        Value::Dict(vec![(Value::Int(1), s("c")), (s("x"), Value::Int(0))])
    );
}

#[test]
fn arrays_of_every_width() {
    for (tc, max) in [
        ('B', 255u64),
        ('H', 65535),
        ('I', u32::MAX as u64),
        ('Q', u64::MAX),
    ] {
        let v = Value::Array {
            typecode: tc,
            items: vec![0, 1, 255, max, max / 2],
        };
        assert_eq!(loads(&dumps(&v)).unwrap(), v, "{tc}");
    }
    // Out of range for the typecode.
    let e = loads(b"\x80\x02carray\narray\nX\x01\x00\x00\x00B]M\x00\x01a\x86R.").unwrap_err();
    assert!(e.to_string().contains("array('B')"), "{e}");
}

// --- property tests -------------------------------------------------------------------

fn arb_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        "[a-z_]{0,12}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<i128>().prop_map(|i| int_from_le_twos(&i.to_le_bytes())),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::Float),
        ".{0,20}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        (
            prop_oneof![Just('B'), Just('H'), Just('I')],
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(typecode, items)| Value::Array {
                typecode,
                items: items.into_iter().map(u64::from).collect()
            }),
        ("[a-z]{1,8}", "[A-Za-z]{1,8}").prop_map(|(module, name)| Value::Global { module, name }),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            proptest::collection::vec((arb_key(), inner.clone()), 0..6).prop_map(|pairs| {
                // Python dict keys are unique.
                let mut seen = std::collections::HashSet::new();
                Value::Dict(
                    pairs
                        .into_iter()
                        .filter(|(k, _)| seen.insert(format!("{k:?}")))
                        .collect(),
                )
            }),
            inner.clone().prop_map(|v| {
                // The same object twice in one list.
                let sh = Value::shared(Value::List(vec![v]));
                Value::List(vec![sh.clone(), Value::Int(0), sh])
            }),
            (inner.clone(), proptest::option::of(inner)).prop_map(|(arg, state)| {
                Value::Object(Box::new(PyObject {
                    module: "m".into(),
                    name: "C".into(),
                    args: vec![arg],
                    newobj: true,
                    state,
                }))
            }),
        ]
    })
}

fn valid_pickle() -> impl Strategy<Value = Vec<u8>> {
    arb_value().prop_map(|v| dumps(&v))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(v in arb_value()) {
        let bytes = dumps(&v);
        let back = loads(&bytes).unwrap();
        prop_assert_eq!(&back, &v);
        // Writing what was read gives the same bytes (shared objects stay shared).
        prop_assert_eq!(dumps(&back), bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = loads(&bytes);
    }

    #[test]
    fn random_bytes_after_a_proto_header_never_panic(
        proto in 0u8..6,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![op::PROTO, proto];
        bytes.extend(body);
        let _ = loads(&bytes);
    }

    #[test]
    fn mutated_pickles_never_panic(
        bytes in valid_pickle(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = bytes;
        for (at, byte, kind) in edits {
            if bytes.is_empty() { break; }
            let i = at % bytes.len();
            match kind {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        let _ = loads(&bytes);
    }
}
