use super::*;

fn dev(id: u32, zone: u32, ip: &str, weight: f64, parts: u64) -> BuilderDevice {
    BuilderDevice {
        dev: Device {
            id,
            region: 1,
            zone,
            ip: ip.to_string(),
            port: 6200,
            replication_ip: ip.to_string(),
            replication_port: 6200,
            device: "sda".to_string(),
            weight,
            meta: String::new(),
            extra: BTreeMap::new(),
        },
        parts,
        parts_wanted: Some(0.0),
    }
}

/// A small rebalanced-looking builder: 3 replicas over devices 0, 2 and 3 (1 is a hole),
/// device 3 pending removal, one slot unassigned.
fn sample() -> RingBuilder {
    let mut d3 = dev(3, 3, "10.0.0.3", 0.0, 4);
    d3.dev
        .extra
        .insert("custom".into(), serde_json::json!({"rack": 7}));
    d3.parts_wanted = Some(-4.5);
    let mut graph = BTreeMap::new();
    graph.insert(Tier::Region(1), vec![0, 0, 0, 4]);
    graph.insert(Tier::Zone(1, 1), vec![0, 4, 0, 0]);
    graph.insert(Tier::Server(1, 1, "10.0.0.1".into()), vec![0, 4, 0, 0]);
    graph.insert(Tier::Device(1, 1, "10.0.0.1".into(), 0), vec![0, 4, 0, 0]);
    RingBuilder {
        part_power: 2,
        next_part_power: None,
        replicas: 3.0,
        min_part_hours: 1,
        devs: vec![
            Some(dev(0, 1, "10.0.0.1", 100.0, 4)),
            None,
            Some(dev(2, 2, "10.0.0.2", 100.0, 3)),
            Some(d3),
        ],
        devs_changed: false,
        version: 9,
        overload: 0.1,
        replica2part2dev: Some(vec![
            vec![0, 0, 0, 0],
            vec![2, 2, 2, NONE_DEV],
            vec![3, 3, 3, 3],
        ]),
        dev_id_bytes: 2,
        last_part_moves_epoch: 1_795_313_052,
        last_part_moves: vec![0, 1, 255, 3],
        last_part_moves_is_list: false,
        last_part_gather_start: 2,
        dispersion_graph: graph,
        dispersion: Some(12.5),
        remove_devs: vec![3],
        id: Some("c6db7b48fc8548e3b60bfd6b7407ff1b".into()),
    }
}

#[test]
fn round_trips_through_bytes() {
    let b = sample();
    let bytes = b.to_pickle_bytes();
    assert_eq!(RingBuilder::from_pickle_bytes(&bytes).unwrap(), b);

    let mut list_moves = b.clone();
    list_moves.last_part_moves_is_list = true;
    list_moves.dev_id_bytes = 4;
    let back = RingBuilder::from_pickle_bytes(&list_moves.to_pickle_bytes()).unwrap();
    assert_eq!(back, list_moves);
}

#[test]
fn writes_to_dict_keys_in_order_with_shared_removed_devices() {
    let v = sample().to_pickle_value();
    let keys: Vec<&str> = v
        .as_dict()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, TO_DICT_KEYS);
    let bytes = sample().to_pickle_bytes();
    // Three device dicts, the top-level dict and the graph: the removed device's dict is
    // fetched from the memo in _remove_devs, not written again.
    let back = pickle::loads(&bytes).unwrap();
    let in_devs = &back.get("devs").unwrap().as_seq().unwrap()[3];
    let in_rm = &back.get("_remove_devs").unwrap().as_seq().unwrap()[0];
    match (in_devs, in_rm) {
        (Value::Shared(a), Value::Shared(b)) => assert!(std::sync::Arc::ptr_eq(a, b)),
        other => panic!("not one object: {other:?}"),
    }
    // Unassigned slots are 0xFFFF on disk in a 2-byte table.
    let table = back.get("_replica2part2dev").unwrap().as_seq().unwrap();
    assert_eq!(
        table[1],
        Value::Array {
            typecode: 'H',
            items: vec![2, 2, 2, 0xFFFF]
        }
    );
}

#[test]
fn dev_id_bytes_without_a_table_follows_the_device_count() {
    let mut b = sample();
    b.replica2part2dev = None;
    let v = b.to_pickle_value();
    assert_eq!(v.get("dev_id_bytes"), Some(&Value::Int(2)));
    b.devs.resize(70_000, None);
    let v = b.to_pickle_value();
    assert_eq!(v.get("dev_id_bytes"), Some(&Value::Int(4)));
}

#[test]
fn save_is_atomic_and_load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.builder");
    let b = sample();
    b.save(&path).unwrap();
    assert_eq!(RingBuilder::load(&path).unwrap(), b);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let backup = b.save_with_backup(&path, 1_700_000_000).unwrap();
    assert_eq!(backup, dir.path().join("backups/1700000000.object.builder"));
    assert_eq!(RingBuilder::load(&backup).unwrap(), b);

    // Saving into a missing directory fails and says where.
    let e = b.save(dir.path().join("nope/x.builder")).unwrap_err();
    assert!(e.to_string().contains("nope/x.builder"), "{e}");
}

#[test]
fn save_writes_through_symlinks_and_keeps_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rings")).unwrap();
    let real = dir.path().join("rings/object.builder");
    std::fs::write(&real, b"old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path().join("object.builder");
    std::os::unix::fs::symlink("rings/object.builder", &link).unwrap();

    let b = sample();
    b.save(&link).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(RingBuilder::load(&real).unwrap(), b);
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn save_keeps_the_owner_when_it_can() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.builder");
    std::fs::write(&path, b"old").unwrap();
    // /proc/self is owned by the effective uid.
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if root {
        std::os::unix::fs::chown(&path, Some(4321), Some(4322)).unwrap();
    }
    let before = std::fs::metadata(&path).unwrap();
    sample().save(&path).unwrap();
    let after = std::fs::metadata(&path).unwrap();
    assert_ne!(
        before.ino(),
        after.ino(),
        "replaced, not rewritten in place"
    );
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    if root {
        assert_eq!((after.uid(), after.gid()), (4321, 4322));
    }
}

#[test]
fn backup_path_is_beside_the_builder() {
    assert_eq!(
        backup_path(Path::new("/etc/swift/object.builder"), 1_700_000_123),
        PathBuf::from("/etc/swift/backups/1700000123.object.builder")
    );
    assert_eq!(
        backup_path(Path::new("account.builder"), 5),
        PathBuf::from("./backups/5.account.builder")
    );
}

#[test]
fn clear_errors_for_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.builder");
    let e = RingBuilder::load(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Ring Builder file does not exist: {}", missing.display())
    );

    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let good = sample().to_pickle_bytes();

    let p = write("empty.builder", b"");
    let e = RingBuilder::load(&p).unwrap_err().to_string();
    assert!(e.starts_with("Ring Builder file is invalid: "), "{e}");
    assert!(e.contains("empty.builder") && e.contains("empty"), "{e}");

    let p = write("truncated.builder", &good[..good.len() / 2]);
    let e = RingBuilder::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("truncated.builder") && e.contains("truncated"),
        "{e}"
    );

    let mut corrupt = good.clone();
    corrupt[40] = 0xff;
    let p = write("corrupt.builder", &corrupt);
    let e = RingBuilder::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("corrupt.builder") && e.contains("invalid pickle"),
        "{e}"
    );

    let p = write(
        "composite.builder",
        br#"{"version": 1, "components": [], "component_builder_files": {}}"#,
    );
    let e = RingBuilder::load(&p).unwrap_err().to_string();
    assert!(
        e.ends_with("(it appears to be a composite ring builder file?)"),
        "{e}"
    );

    let p = write("list.builder", &pickle::dumps(&Value::List(vec![])));
    let e = RingBuilder::load(&p).unwrap_err().to_string();
    assert!(e.contains("holds a list, not a ring builder"), "{e}");

    let p = write(
        "dict.builder",
        &pickle::dumps(&Value::Dict(vec![(Value::Str("x".into()), Value::None)])),
    );
    let e = RingBuilder::load(&p).unwrap_err().to_string();
    assert!(e.contains("missing key 'part_power'"), "{e}");
}

fn with_key(b: &RingBuilder, key: &str, v: Value) -> Vec<u8> {
    let Value::Dict(mut entries) = b.to_pickle_value() else {
        unreachable!()
    };
    for (k, old) in entries.iter_mut() {
        if k.as_str() == Some(key) {
            *old = v.clone();
        }
    }
    pickle::dumps(&Value::Dict(entries))
}

#[test]
fn inconsistent_state_is_refused_with_the_key_named() {
    let b = sample();
    let table_to_hole = Value::List(vec![Value::Array {
        typecode: 'H',
        items: vec![1, 0, 0, 0],
    }]);
    let e = RingBuilder::from_pickle_bytes(&with_key(&b, "_replica2part2dev", table_to_hole))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("_replica2part2dev[0][0]") && e.contains("device 1"),
        "{e}"
    );

    let short_moves = Value::Array {
        typecode: 'B',
        items: vec![0, 0],
    };
    let e = RingBuilder::from_pickle_bytes(&with_key(&b, "_last_part_moves", short_moves))
        .unwrap_err()
        .to_string();
    assert!(e.contains("_last_part_moves has 2 entries for 4"), "{e}");

    let e = RingBuilder::from_pickle_bytes(&with_key(&b, "replicas", Value::Float(0.5)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("replicas must be at least 1"), "{e}");

    let e = RingBuilder::from_pickle_bytes(&with_key(&b, "part_power", Value::Int(33)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("part_power must be at most 32"), "{e}");

    let e = RingBuilder::from_pickle_bytes(&with_key(&b, "devs", Value::Str("x".into())))
        .unwrap_err()
        .to_string();
    assert!(e.contains("devs must be a list"), "{e}");

    // A tiny file claiming 2^32 partitions with no move list allocates nothing big.
    let mut huge = b.clone();
    huge.part_power = 32;
    huge.replica2part2dev = None;
    let mut bytes = with_key(&huge, "_last_part_moves", Value::None);
    let Value::Dict(mut entries) = pickle::loads(&bytes).unwrap() else {
        unreachable!()
    };
    for (k, v) in entries.iter_mut() {
        if k.as_str() == Some("parts") {
            *v = Value::Int(1 << 32);
        }
    }
    bytes = pickle::dumps(&Value::Dict(entries));
    let e = RingBuilder::from_pickle_bytes(&bytes)
        .unwrap_err()
        .to_string();
    assert!(e.contains("too small"), "{e}");
}

#[test]
fn legacy_shapes_load() {
    // write_builder-era dict: no id/overload/dispersion keys, None epoch and moves, devices
    // without meta/region/replication keys, weights and replicas as ints.
    let dev = Value::Dict(vec![
        (Value::Str("id".into()), Value::Int(0)),
        (Value::Str("zone".into()), Value::Int(1)),
        (Value::Str("ip".into()), Value::Str("10.0.0.1".into())),
        (Value::Str("port".into()), Value::Int(6000)),
        (Value::Str("device".into()), Value::Bytes(b"sdb1".to_vec())),
        (Value::Str("weight".into()), Value::Int(100)),
        (Value::Str("parts".into()), Value::Int(4)),
        (Value::Str("parts_wanted".into()), Value::Int(0)),
    ]);
    let state = |instance: bool| {
        let k = |s: &str| Value::Str(s.to_string());
        let mut e = vec![
            (k("part_power"), Value::Int(2)),
            (k("replicas"), Value::Int(1)),
            (k("min_part_hours"), Value::Int(24)),
            (k("parts"), Value::Int(4)),
            (k("devs"), Value::List(vec![dev.clone()])),
            (k("devs_changed"), Value::Bool(false)),
            (k("version"), Value::Int(3)),
            (
                k("_replica2part2dev"),
                Value::List(vec![Value::Array {
                    typecode: 'H',
                    items: vec![0; 4],
                }]),
            ),
            (k("_last_part_moves_epoch"), Value::None),
            (k("_last_part_moves"), Value::None),
            (k("_last_part_gather_start"), Value::Int(0)),
            (k("_remove_devs"), Value::List(vec![])),
        ];
        if instance {
            e.push((k("_id"), Value::Str("abc".into())));
        }
        Value::Dict(e)
    };
    let b = RingBuilder::from_pickle_bytes(&pickle::dumps(&state(false))).unwrap();
    let d = b.devs[0].as_ref().unwrap();
    assert_eq!(d.dev.region, 1);
    assert_eq!(d.dev.replication_ip, "10.0.0.1");
    assert_eq!(d.dev.replication_port, 6000);
    assert_eq!(d.dev.meta, "");
    assert_eq!(d.dev.device, "sdb1");
    assert_eq!(d.dev.weight, 100.0);
    assert_eq!(b.replicas, 1.0);
    assert_eq!(b.overload, 0.0);
    assert_eq!(b.last_part_moves, vec![0; 4]);
    assert_eq!(b.last_part_moves_epoch, 0);
    assert_eq!((b.id.as_deref(), b.dispersion), (None, None));

    let instance = Value::Object(Box::new(pickle::PyObject {
        module: "swift.common.ring.builder".into(),
        name: "RingBuilder".into(),
        args: vec![],
        newobj: true,
        state: Some(state(true)),
    }));
    let b = RingBuilder::from_pickle_bytes(&pickle::dumps(&instance)).unwrap();
    assert_eq!(b.id.as_deref(), Some("abc"));
}

#[test]
fn ensure_id_assigns_a_uuid4_once() {
    let mut b = sample();
    b.id = None;
    assert!(b.ensure_id());
    let id = b.id.clone().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(&id[12..13], "4");
    assert!("89ab".contains(&id[16..17]));
    assert!(!b.ensure_id());
    assert_eq!(b.id.as_deref(), Some(id.as_str()));
    let mut other = sample();
    other.id = None;
    other.ensure_id();
    assert_ne!(other.id, b.id);
}

#[test]
fn get_ring_and_from_ring() {
    let b = sample();
    let ring = b.get_ring();
    assert_eq!(ring.part_shift, 30);
    assert_eq!(ring.version, Some(9));
    assert_eq!(ring.devs.len(), 4);
    assert!(ring.devs[1].is_none());
    assert_eq!(ring.devs[3].as_ref().unwrap().extra["custom"]["rack"], 7);
    assert_eq!(ring.replica2part2dev, b.replica2part2dev.clone().unwrap());

    let back = RingBuilder::from_ring(&ring, 24);
    assert_eq!(back.part_power, 2);
    assert_eq!(back.min_part_hours, 24);
    assert_eq!(back.version, 9);
    assert_eq!(back.replicas, 2.0 + 4.0 / 4.0);
    // parts counted from the table; the unassigned slot counts for nobody.
    let parts: Vec<Option<u64>> = back
        .devs
        .iter()
        .map(|d| d.as_ref().map(|d| d.parts))
        .collect();
    assert_eq!(parts, vec![Some(4), None, Some(3), Some(4)]);
    assert_eq!(back.last_part_moves, vec![0; 4]);

    let mut fractional = ring.clone();
    fractional.replica2part2dev[2].truncate(2);
    assert_eq!(RingBuilder::from_ring(&fractional, 1).replicas, 2.5);

    let mut never = b.clone();
    never.replica2part2dev = None;
    let r = never.get_ring();
    assert!(r.replica2part2dev.is_empty());
    assert_eq!(r.dev_id_bytes, 2);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn arb_dev(id: u32) -> impl Strategy<Value = BuilderDevice> {
        (
            (1u32..4, 1u32..5, 0u8..4, 6000u32..6300),
            (
                prop_oneof![Just(0.0), 0.0f64..1000.0],
                "[a-z]{0,6}",
                0u64..500,
                -500.0f64..500.0,
            ),
            proptest::option::of(prop_oneof![
                any::<i64>().prop_map(serde_json::Value::from),
                "[ -~]{0,8}".prop_map(serde_json::Value::from),
            ]),
        )
            .prop_map(
                move |((region, zone, host, port), (weight, meta, parts, pw), extra)| {
                    let ip = format!("10.0.{zone}.{host}");
                    let mut dev = dev(id, zone, &ip, weight, parts);
                    dev.dev.region = region;
                    dev.dev.port = port;
                    dev.dev.replication_port = port + 1;
                    dev.dev.meta = meta;
                    dev.parts_wanted = Some(pw);
                    if let Some(x) = extra {
                        dev.dev.extra.insert("rack".into(), x);
                    }
                    dev
                },
            )
    }

    fn arb_builder() -> impl Strategy<Value = RingBuilder> {
        (0u32..6, 1usize..10, any::<u64>())
            .prop_flat_map(|(part_power, ndevs, seed)| {
                let devs =
                    proptest::collection::vec(proptest::option::weighted(0.8, Just(())), ndevs)
                        .prop_flat_map(|present| {
                            present
                                .into_iter()
                                .enumerate()
                                .map(|(id, p)| match p {
                                    Some(()) => arb_dev(id as u32).prop_map(Some).boxed(),
                                    None => Just(None).boxed(),
                                })
                                .collect::<Vec<_>>()
                        });
                (
                    Just(part_power),
                    devs,
                    (1usize..5, 0usize..=(1usize << part_power), any::<bool>()),
                    proptest::collection::vec(any::<u8>(), 1usize << part_power),
                    (
                        any::<bool>(),
                        any::<bool>(),
                        proptest::option::of(0.0f64..100.0),
                    ),
                    (any::<u64>(), 0u64..(1 << 40), any::<bool>()),
                    Just(seed),
                )
            })
            .prop_map(
                |(
                    part_power,
                    mut devs,
                    (rows, last_len, rebalanced),
                    last_part_moves,
                    (is_list, wide, dispersion),
                    (version, epoch, with_id),
                    seed,
                )| {
                    use rand::{Rng, SeedableRng};
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                    let parts = 1usize << part_power;
                    let present: Vec<u32> = devs.iter().flatten().map(|d| d.dev.id).collect();
                    let table = (rebalanced && !present.is_empty()).then(|| {
                        (0..rows)
                            .map(|r| {
                                let len = if r + 1 == rows && last_len > 0 {
                                    last_len
                                } else {
                                    parts
                                };
                                (0..len)
                                    .map(|_| {
                                        if rng.gen_ratio(1, 20) {
                                            NONE_DEV
                                        } else {
                                            present[rng.gen_range(0..present.len())]
                                        }
                                    })
                                    .collect()
                            })
                            .collect::<Vec<Vec<u32>>>()
                    });
                    if table.is_none() {
                        // Never rebalanced: Swift's devices have no parts_wanted yet.
                        for d in devs.iter_mut().flatten() {
                            d.parts_wanted = None;
                        }
                    }
                    let remove_devs: Vec<u32> = present
                        .iter()
                        .copied()
                        .filter(|_| rng.gen_ratio(1, 3))
                        .collect();
                    let mut graph = BTreeMap::new();
                    for d in devs.iter().flatten() {
                        for t in d.dev.tiers() {
                            graph.insert(t, (0..4).map(|_| rng.gen_range(0..300)).collect());
                        }
                    }
                    let dev_id_bytes = if table.is_some() && wide { 4 } else { 2 };
                    RingBuilder {
                        part_power,
                        next_part_power: rng.gen_ratio(1, 4).then_some(part_power + 1),
                        replicas: rows as f64 - 1.0 + rng.gen_range(0.0..1.0),
                        min_part_hours: rng.gen_range(0..48),
                        devs,
                        devs_changed: rng.gen(),
                        version,
                        overload: rng.gen_range(0.0..1.0),
                        replica2part2dev: table,
                        dev_id_bytes,
                        last_part_moves_epoch: epoch,
                        last_part_moves,
                        last_part_moves_is_list: is_list,
                        last_part_gather_start: rng.gen_range(0..parts as u64),
                        dispersion_graph: graph,
                        dispersion,
                        remove_devs,
                        id: with_id.then(|| format!("{:032x}", rng.gen::<u128>())),
                    }
                },
            )
            .prop_filter("Swift needs at least one replica", |b| b.replicas >= 1.0)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn builders_round_trip(b in arb_builder()) {
            let bytes = b.to_pickle_bytes();
            let back = RingBuilder::from_pickle_bytes(&bytes).unwrap();
            prop_assert_eq!(&back, &b);
            prop_assert_eq!(back.to_pickle_bytes(), bytes);
        }

        #[test]
        fn damaged_builders_give_errors_not_panics(
            b in arb_builder(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4),
        ) {
            let mut bytes = b.to_pickle_bytes();
            crate::pickle::damage_for_tests(&mut bytes, &edits);
            if let Err(e) = RingBuilder::from_pickle_bytes(&bytes) {
                prop_assert!(e.to_string().starts_with("Ring Builder file is invalid: "));
            }
        }
    }
}

/// Writes a value the way Python 2.7's protocol-2 pickler did: `str` as
/// SHORT_BINSTRING/BINSTRING, arrays as `array(typecode, machine bytes)`.
fn py2_pickle(v: &Value, out: &mut Vec<u8>, memo: &mut Vec<*const Value>) {
    let bin_str = |b: &[u8], out: &mut Vec<u8>| {
        if b.len() < 256 {
            out.extend_from_slice(&[b'U', b.len() as u8]);
        } else {
            out.push(b'T');
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(b);
    };
    match v {
        Value::None => out.push(b'N'),
        Value::Bool(b) => out.push(if *b { 0x88 } else { 0x89 }),
        Value::Int(i) if *i >= i32::MIN as i64 && *i <= i32::MAX as i64 => {
            out.push(b'J');
            out.extend_from_slice(&(*i as i32).to_le_bytes());
        }
        Value::Int(i) => {
            out.extend_from_slice(&[0x8a, 8]);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(b'G');
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => bin_str(s.as_bytes(), out),
        Value::List(items) => {
            out.extend_from_slice(b"](");
            for it in items {
                py2_pickle(it, out, memo);
            }
            out.push(b'e');
        }
        Value::Tuple(items) => {
            out.push(b'(');
            for it in items {
                py2_pickle(it, out, memo);
            }
            out.push(b't');
        }
        Value::Dict(entries) => {
            out.extend_from_slice(b"}(");
            for (k, v) in entries {
                py2_pickle(k, out, memo);
                py2_pickle(v, out, memo);
            }
            out.push(b'u');
        }
        Value::Array { typecode, items } => {
            out.extend_from_slice(b"carray\narray\n");
            bin_str(typecode.to_string().as_bytes(), out);
            let raw: Vec<u8> = match typecode {
                'B' => items.iter().map(|&x| x as u8).collect(),
                'H' => items
                    .iter()
                    .flat_map(|&x| (x as u16).to_le_bytes())
                    .collect(),
                _ => items
                    .iter()
                    .flat_map(|&x| (x as u32).to_le_bytes())
                    .collect(),
            };
            bin_str(&raw, out);
            out.extend_from_slice(&[0x86, b'R']);
        }
        Value::Shared(inner) => {
            let ptr = std::sync::Arc::as_ptr(inner);
            match memo.iter().position(|&p| p == ptr) {
                Some(i) => out.extend_from_slice(&[b'h', i as u8]),
                None => {
                    py2_pickle(inner, out, memo);
                    out.extend_from_slice(&[b'q', memo.len() as u8]);
                    memo.push(ptr);
                }
            }
        }
        other => panic!("not in a builder: {other:?}"),
    }
}

#[test]
fn python_2_builders_load() {
    // Swift under Python 3 cannot read these (py2 str and raw array bytes); Ringsmith can.
    let b = sample();
    let mut bytes = vec![0x80, 2];
    py2_pickle(&b.to_pickle_value(), &mut bytes, &mut Vec::new());
    bytes.push(b'.');
    let back = RingBuilder::from_pickle_bytes(&bytes).unwrap();
    assert_eq!(back, b);
}
