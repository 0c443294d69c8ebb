//! Golden tests for `ringsmith object-info | container-info | account-info` against the
//! real `swift-object-info`, `swift-container-info` and `swift-account-info` (Swift 2.38.3
//! from the test virtualenv).
//!
//! One swift directory (swift.conf with two policies, object/object-1/container/account
//! rings of 127.x devices) and files of every kind written twice: by Swift's own classes
//! (`DiskFileManager` writer, `AccountBroker`, `ContainerBroker`) and by Ringsmith's
//! server code (`write_metadata`, the account and container brokers). Each tool and ours
//! run the same command line on the same file; exit code, stdout and stderr must be equal
//! byte for byte once the program name is normalised.
//!
//! Swift's account and container tools hash paths with `/etc/swift/swift.conf` whatever
//! `-d` says (ours use `-d`'s, see docs/differences.md), so the oracle runs through a
//! wrapper that points Swift at the test's swift directory first.

mod common;

use std::path::{Path, PathBuf};

use common::{ringsmith, run_in, Out};
use ringsmith::swift::timestamp::Timestamp;

const SWIFT_CONF: &str = "[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n\n\
[storage-policy:0]\nname = gold\ndefault = yes\n\n[storage-policy:1]\nname = silver\naliases = ag\n";

/// Rings and Swift's files. argv: etc dir, devices dir, db dir.
const MAKE: &str = r#"
import sys, hashlib, logging, json, urllib.parse
from swift.common import utils
from swift.common.storage_policy import reload_storage_policies, POLICIES
etc, devices, dbs = sys.argv[1:4]
utils.set_swift_dir(etc)
reload_storage_policies()
from swift.common.ring import RingBuilder
for name in ('object', 'object-1', 'container', 'account'):
    b = RingBuilder(4, 3, 0)
    for i in range(5):
        b.add_dev({'region': 1, 'zone': i, 'ip': '127.0.0.%d' % (i + 1), 'port': 6200 + i,
                   'device': 'sd%s' % 'abcde'[i], 'weight': 100.0, 'meta': ''})
    b.rebalance(seed=7)
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
from swift.common.utils import Timestamp
from swift.obj.diskfile import DiskFileManager
mgr = DiskFileManager({'devices': devices, 'mount_check': 'false'}, logging.getLogger())
for policy, obj in ((0, 'swift obj/ü'), (1, 'swift-in-silver'), (0, 'swift-bad-crypto')):
    body = b'hello from swift'
    crypto = {} if policy else {
        'X-Object-Sysmeta-Crypto-Body-Meta': urllib.parse.quote_plus(json.dumps(
            {'iv': 'AAECAw==', 'cipher': 'AES_CTR_256',
             'body_key': {'key': 'a2V5', 'iv': 'aXY='}, 'note': 'ü'})),
        'X-Object-Transient-Sysmeta-Crypto-Meta': urllib.parse.quote_plus(json.dumps(
            {'iv': 'BBECAw==', 'cipher': 'AES_CTR_256'})) if obj != 'swift-bad-crypto' else 'x'}
    ts = Timestamp(1700000000.12345)
    df = mgr.get_diskfile('sda', '3', 'AUTH_test', 'cont', obj, policy=POLICIES[policy])
    with df.create() as w:
        w.write(body)
        w.put({'ETag': hashlib.md5(body).hexdigest(), 'X-Timestamp': ts.internal,
               'Content-Length': str(len(body)), 'Content-Type': 'text/plain',
               'X-Object-Meta-Color': 'blue', 'X-Object-Sysmeta-Owner': 'me',
               'X-Object-Transient-Sysmeta-Note': 'tmp', 'name': '/AUTH_test/cont/' + obj, **crypto})
        w.commit(ts)
from swift.container.backend import ContainerBroker
from swift.account.backend import AccountBroker
t1 = Timestamp(1700000001.5).internal
t2 = Timestamp(1700000002.25).internal
c = ContainerBroker(dbs + '/swift-container.db', account='AUTH_test', container='cont')
c.initialize(t1, storage_policy_index=1)
c.put_object('o1', t2, 5, 'text/plain', 'etag1', storage_policy_index=1)
c.put_object('o2', t2, 7, 'text/plain', 'etag2', storage_policy_index=1)
c.update_metadata({'X-Container-Meta-Color': ['blue', t2], 'X-Container-Sysmeta-Owner': ['me', t2],
                   'X-Container-Read': ['.r:*', t2]})
c.merge_syncs([{'remote_id': 'remote-1', 'sync_point': 3}], incoming=True)
from swift.common.utils import ShardRange
c.merge_shard_ranges([
    ShardRange('.shards_AUTH_test/cont-2', Timestamp(1700000003).internal, 'm', '',
               state=ShardRange.CREATED),
    ShardRange('.shards_AUTH_test/cont-1', Timestamp(1700000003).internal, '', 'm',
               object_count=3, bytes_used=30, state=ShardRange.ACTIVE),
    ShardRange('.shards_AUTH_test/cont-3', Timestamp(1700000004).internal, 'm', 'z',
               state=ShardRange.ACTIVE)])
c.get_info()
a = AccountBroker(dbs + '/swift-account.db', account='AUTH_test')
a.initialize(t1)
a.put_container('cont', t2, '0', 2, 12, 1)
a.update_metadata({'X-Account-Meta-Quota': ['1000', t2], 'X-Account-Sysmeta-Tier': ['x', t2]})
a.merge_syncs([{'remote_id': 'remote-2', 'sync_point': 9}], incoming=False)
a.get_info()
"#;

/// Runs Swift's tool `kind` (object/container/account) with `args`, swift dir `etc`.
const WRAPPER: &str = r#"
import sys
from swift.common import utils
from swift.common.storage_policy import reload_storage_policies
utils.set_swift_dir(sys.argv[1])
reload_storage_policies()
from swift.cli import info
kind = sys.argv[2]
sys.argv = ['swift-%s-info' % kind] + sys.argv[3:]
getattr(info, {'object': 'obj_main'}.get(kind, kind + '_main'))()
"#;

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    etc: String,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let etc = root.join("etc");
        for d in ["etc", "node/sda", "dbs", "empty-etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(etc.join("swift.conf"), SWIFT_CONF).unwrap();
        std::fs::write(root.join("empty-etc/swift.conf"), SWIFT_CONF).unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_string();
        ringsmith_testkit::swift_python(
            &[
                "-c",
                MAKE,
                &s(&etc),
                &s(&root.join("node")),
                &s(&root.join("dbs")),
            ],
            b"",
        );
        let env = Env {
            _tmp: tmp,
            root,
            etc: s(&etc),
        };
        env.write_ours();
        env
    }

    /// The same kinds of files, written by Ringsmith's server code.
    fn write_ours(&self) {
        use ringsmith_server::object::diskfile::write_metadata;
        let hash = ringsmith::hash::HashConfig::new("pre", "suf");
        let meta_for = |name: &str, body: &[u8], etag: &str, len: &str| {
            let mut m = std::collections::BTreeMap::new();
            m.insert("name".to_string(), name.to_string());
            m.insert("ETag".into(), etag.to_string());
            m.insert("Content-Length".into(), len.to_string());
            m.insert("Content-Type".into(), "application/octet-stream".into());
            m.insert("X-Timestamp".into(), "1700000100.00001".into());
            m.insert("X-Object-Meta-Shape".into(), "round".into());
            m.insert("X-Object-Sysmeta-Crc".into(), "abc".into());
            m.insert("X-Static-Large-Object".into(), "True".into());
            let _ = body;
            m
        };
        for (dir, obj, body, good) in [
            ("objects", "ours/obj", &b"hello from ringsmith"[..], true),
            ("objects-1", "ours-silver", &b"silver"[..], true),
            ("objects", "ours-bad", &b"damaged"[..], false),
        ] {
            let h = hash
                .hash_path("AUTH_test", Some("cont"), Some(obj))
                .unwrap();
            let d = self
                .root
                .join("node/sdb")
                .join(dir)
                .join("9")
                .join(&h[29..])
                .join(&h);
            std::fs::create_dir_all(&d).unwrap();
            let path = d.join("1700000100.00001.data");
            std::fs::write(&path, body).unwrap();
            let etag = if good {
                use md5::Digest;
                hex::encode(md5::Md5::digest(body))
            } else {
                "0123456789abcdef0123456789abcdef".into()
            };
            let len = if good {
                body.len().to_string()
            } else {
                "99".into()
            };
            let meta = meta_for(&format!("/AUTH_test/cont/{obj}"), body, &etag, &len);
            let f = std::fs::File::open(&path).unwrap();
            write_metadata(&f, &path, &meta).unwrap();
        }
        let t1 = Timestamp::parse("1700000001.50000").unwrap();
        let t2 = Timestamp::parse("1700000002.25000").unwrap();
        let dbs = self.root.join("dbs");
        let mut c = ringsmith_server::container::broker::create(
            &dbs.join("ours-container.db"),
            "AUTH_test",
            "cont",
            t1,
            1,
        )
        .unwrap();
        for (name, size) in [("o1", 5), ("o2", 7)] {
            ringsmith_server::container::broker::put_object(
                &mut c,
                &ringsmith_server::container::broker::ObjectRecord {
                    name: name.into(),
                    created_at: t2,
                    size,
                    content_type: "text/plain".into(),
                    etag: "etag".into(),
                    deleted: false,
                    policy_index: 1,
                    ctype_timestamp: None,
                    meta_timestamp: None,
                },
            )
            .unwrap();
        }
        ringsmith_server::db::broker::update_metadata::<
            ringsmith_server::container::broker::ContainerDb,
        >(
            &mut c,
            &[
                ("X-Container-Meta-Color".into(), "blue".into()),
                ("X-Container-Sysmeta-Owner".into(), "me".into()),
            ],
            t2,
            &ringsmith_server::db::MetaLimits {
                prefix: "x-container-meta-",
                max_count: 90,
                max_overall_size: 4096,
            },
        )
        .unwrap();
        let mut a = ringsmith_server::account::broker::create(
            &dbs.join("ours-account.db"),
            "AUTH_test",
            t1,
        )
        .unwrap();
        ringsmith_server::account::broker::put_container(
            &mut a,
            &ringsmith_server::account::broker::ContainerReport {
                name: "cont".into(),
                put_timestamp: t2,
                delete_timestamp: Timestamp::default(),
                object_count: 2,
                bytes_used: 12,
                policy_index: 1,
            },
        )
        .unwrap();
        ringsmith_server::db::broker::update_metadata::<ringsmith_server::account::broker::AccountDb>(
            &mut a,
            &[("X-Account-Meta-Quota".into(), "1000".into())],
            t2,
            &ringsmith_server::db::MetaLimits {
                prefix: "x-account-meta-",
                max_count: 90,
                max_overall_size: 4096,
            },
        )
        .unwrap();
    }

    /// The one `.data` file under `node/<dev>/<dir>` whose hash dir holds `obj`'s name.
    fn data_file(&self, dev: &str, dir: &str, obj: &str) -> String {
        let hash = ringsmith::hash::HashConfig::new("pre", "suf")
            .hash_path("AUTH_test", Some("cont"), Some(obj))
            .unwrap();
        let base = self.root.join("node").join(dev).join(dir);
        for part in std::fs::read_dir(&base).unwrap() {
            let d = part.unwrap().path().join(&hash[29..]).join(&hash);
            if let Ok(entries) = std::fs::read_dir(&d) {
                for e in entries {
                    let p = e.unwrap().path();
                    if p.extension().is_some_and(|x| x == "data") {
                        return p.to_str().unwrap().to_string();
                    }
                }
            }
        }
        panic!("no .data file for {obj} under {}", base.display());
    }

    fn same(&self, kind: &str, args: &[&str]) -> Out {
        self.compare(kind, args, true)
    }

    /// Where Swift dies with a traceback: same exit code and stdout; stderr is ours alone.
    fn compare(&self, kind: &str, args: &[&str], with_stderr: bool) -> Out {
        let mut py = vec!["-c", WRAPPER, &self.etc, kind];
        py.extend_from_slice(args);
        let python = ringsmith_testkit::swift_venv().join("bin/python");
        let theirs = run_in(&self.root, &python, &py, b"", &[("COLUMNS", "80")]);
        let sub = format!("{kind}-info");
        let mut full = vec![sub.as_str()];
        full.extend_from_slice(args);
        let ours = run_in(&self.root, &ringsmith(), &full, b"", &[]);
        let norm = |s: &str| {
            s.replace(&format!("ringsmith {kind}-info"), "PROG")
                .replace(&format!("swift-{kind}-info"), "PROG")
        };
        let ctx = format!("{kind} {args:?}\n=== swift\n{theirs:?}\n=== ours\n{ours:?}");
        assert_eq!(theirs.code, ours.code, "exit code differs: {ctx}");
        assert_eq!(
            norm(&theirs.stdout),
            norm(&ours.stdout),
            "stdout differs: {ctx}"
        );
        if with_stderr {
            assert_eq!(
                norm(&theirs.stderr),
                norm(&ours.stderr),
                "stderr differs: {ctx}"
            );
        }
        ours
    }
}

#[test]
fn info_tools_match_swift_byte_for_byte() {
    let env = Env::new();
    let etc = env.etc.clone();
    let d = ["-d", etc.as_str()];
    let with =
        |rest: &[&str]| -> Vec<String> { d.iter().chain(rest).map(|s| s.to_string()).collect() };
    let run = |kind: &str, args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        env.same(kind, &a)
    };

    // Objects written by Swift's DiskFile writer and by Ringsmith's, both policies.
    let swift0 = env.data_file("sda", "objects", "swift obj/ü");
    let swift1 = env.data_file("sda", "objects-1", "swift-in-silver");
    let ours0 = env.data_file("sdb", "objects", "ours/obj");
    let ours1 = env.data_file("sdb", "objects-1", "ours-silver");
    let bad = env.data_file("sdb", "objects", "ours-bad");
    for f in [&swift0, &swift1, &ours0, &ours1, &bad] {
        let out = run("object", with(&[f]));
        assert_eq!(out.code, 0);
        assert!(out.stdout.contains("curl -g -I -XHEAD"), "{out:?}");
        run("object", with(&["-n", f]));
        run("object", with(&["--drop-prefixes", f]));
    }
    run("object", with(&["-P", "silver", &swift0]));
    let bad_crypto = env.data_file("sda", "objects", "swift-bad-crypto");
    let a = with(&[&bad_crypto]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = env.compare("object", &a, false);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("Bad crypto meta 'x'"), "{out:?}");
    run("object", with(&["--policy-name=ag", &swift1]));
    run("object", with(&["-P", "nosuch", &swift0]));
    let no_rings = env.root.join("empty-etc");
    run(
        "object",
        vec![
            "-d".into(),
            no_rings.to_str().unwrap().into(),
            ours0.clone(),
        ],
    );
    assert_eq!(run("object", with(&["/no/such.data"])).code, 1);
    assert_eq!(run("object", with(&[])).code, 0);
    assert_eq!(run("object", with(&["-h"])).code, 0);
    assert_eq!(run("object", with(&["--bogus", &swift0])).code, 2);
    assert_eq!(run("object", vec!["-d".into()]).code, 2);

    // Databases written by Swift's brokers and by Ringsmith's.
    for kind in ["container", "account"] {
        for who in ["swift", "ours"] {
            let f = format!("dbs/{who}-{kind}.db");
            let out = run(kind, with(&[&f]));
            assert_eq!(out.code, 0);
            assert!(out.stdout.contains("curl -g -I -XHEAD"), "{out:?}");
            run(kind, with(&["--drop-prefixes", &f]));
            run(kind, with(&["-s", &f]));
        }
        assert_eq!(run(kind, with(&["dbs/missing.db"])).code, 1);
        assert_eq!(run(kind, with(&[&swift0])).code, 1, "not a .db");
        assert_eq!(run(kind, with(&[])).code, 0);
        assert_eq!(run(kind, with(&["-h"])).code, 0);
        assert_eq!(run(kind, with(&["-x", "a.db"])).code, 2);
    }
    assert_eq!(run("container", with(&["dbs/swift-account.db"])).code, 1);
    assert_eq!(run("account", with(&["dbs/ours-container.db"])).code, 1);
    run("container", with(&["-v", "dbs/swift-container.db"]));
}
