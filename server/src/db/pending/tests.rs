use super::*;
use std::sync::Arc;

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

/// An object row as Swift's container broker pickles it.
fn object_tuple(name: &str, t: &str) -> Value {
    Value::Tuple(vec![
        s(name),
        s(t),
        Value::Int(4096),
        s("text/plain"),
        s("d41d8cd98f00b204e9800998ecf8427e"),
        Value::Int(0),
        Value::Int(0),
        Value::None,
        Value::None,
    ])
}

#[test]
fn records_are_byte_for_byte_what_swift_appends() {
    // CPython 3.11: ':' + base64.b64encode(pickle.dumps(t, protocol=2)) for the tuples.
    assert_eq!(
        encode_record(&object_tuple("o/ü", "0000000001.00000")),
        b":gAIoWAQAAABvL8O8cQBYEAAAADAwMDAwMDAwMDEuMDAwMDBxAU0AEFgKAAAAdGV4dC9wbGFpbnECWCAAAABkNDFkOGNkOThmMDBiMjA0ZTk4MDA5OThlY2Y4NDI3ZXEDSwBLAE5OdHEELg==".to_vec()
    );
    let account_row = Value::Tuple(vec![
        s("c"),
        s("0000000002.00000"),
        s("0"),
        Value::Int(3),
        Value::Int(12),
        Value::Int(0),
        Value::Int(1),
    ]);
    assert_eq!(
        encode_record(&account_row),
        b":gAIoWAEAAABjcQBYEAAAADAwMDAwMDAwMDIuMDAwMDBxAVgBAAAAMHECSwNLDEsASwF0cQMu".to_vec()
    );
}

#[test]
fn swift_records_decode_and_bad_ones_are_skipped() {
    // Swift's record with a memoised repeated timestamp (BINGET), then a torn one.
    let swift = b":gAIoWAEAAABvcQBYEAAAADAwMDAwMDAwMDEuMDAwMDBxAU0AEFgKAAAAdGV4dC9wbGFpbnECWAEAAABlcQNLAEsAWBAAAAAwMDAwMDAwMDAyLjAwMDAwcQRoBHRxBS4=";
    let mut contents = swift.to_vec();
    let whole = encode_record(&object_tuple("p", "0000000003.00000"));
    contents.extend_from_slice(&whole[..whole.len() / 2]);
    let (records, bad) = decode_records(&contents);
    assert_eq!(bad, 1);
    assert_eq!(records.len(), 1);
    let f = records[0].as_seq().unwrap();
    assert_eq!(text(f.first()).as_deref(), Some("o"));
    assert_eq!(int(f.get(2)), Some(4096));
    assert_eq!(text(f.get(7)).as_deref(), Some("0000000002.00000"));
    assert_eq!(text(f.get(8)).as_deref(), Some("0000000002.00000"));
}

#[test]
fn appends_until_the_cap_then_merges_everything_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let merged = std::cell::RefCell::new(Vec::<usize>::new());
    let mut n = 0;
    while file_len(&pending_path(&db)).unwrap() <= PENDING_CAP {
        put_record(&db, &object_tuple(&format!("o{n}"), "1"), |_| {
            panic!("no merge below the cap")
        })
        .unwrap();
        n += 1;
    }
    put_record(&db, &object_tuple("last", "1"), |rs| {
        merged.borrow_mut().push(rs.len());
        Ok(())
    })
    .unwrap();
    assert_eq!(*merged.borrow(), vec![n + 1]);
    assert_eq!(file_len(&pending_path(&db)).unwrap(), 0);
}

#[test]
fn a_failed_merge_keeps_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    put_record(&db, &object_tuple("a", "1"), |_| unreachable!()).unwrap();
    let failed = commit(&db, |_| Err(rusqlite::Error::InvalidQuery));
    assert!(failed.is_err());
    let mut seen = 0;
    commit(&db, |rs| {
        seen = rs.len();
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 1);
    // Empty now: no merge, no lock.
    commit(&db, |_| panic!("nothing to merge")).unwrap();
}

#[test]
fn concurrent_appenders_and_mergers_lose_nothing_and_merge_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(dir.path().join("x.db"));
    let merged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut threads = Vec::new();
    for w in 0..6 {
        let (db, merged) = (db.clone(), merged.clone());
        threads.push(std::thread::spawn(move || {
            for i in 0..300 {
                let sink = |rs: Vec<Value>| {
                    let mut m = merged.lock().unwrap();
                    for r in rs {
                        m.push(text(r.as_seq().unwrap().first()).unwrap());
                    }
                    Ok(())
                };
                if i % 50 == 0 {
                    commit(&db, sink).unwrap();
                }
                put_record(&db, &object_tuple(&format!("w{w}-{i}"), "1"), sink).unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    commit(&db, |rs| {
        let mut m = merged.lock().unwrap();
        for r in rs {
            m.push(text(r.as_seq().unwrap().first()).unwrap());
        }
        Ok(())
    })
    .unwrap();
    let mut all = merged.lock().unwrap().clone();
    all.sort();
    let mut want: Vec<String> = (0..6)
        .flat_map(|w| (0..300).map(move |i| format!("w{w}-{i}")))
        .collect();
    want.sort();
    assert_eq!(all, want);
}
