//! The object auditor on erasure-coded data: a 4+2 cluster of Ringsmith object servers
//! (Swift's proxy in front) takes objects of several segments. The auditor passes every
//! real fragment archive; then one archive gets a damaged fragment header *and* metadata
//! whose ETag matches the damaged bytes (so only a look at the fragments can tell), and
//! the auditor must quarantine exactly that archive, while the object still reads whole
//! from the other nodes.

mod ec_common;
mod proxy_common;

use std::path::{Path, PathBuf};

use ec_common::*;
use md5::{Digest, Md5};
use proxy_common::*;
use ringsmith_server::object::diskfile::{read_metadata, write_metadata};

fn node0_archives(cluster: &Cluster) -> Vec<PathBuf> {
    let root = cluster.dir.path().join("srv/node0/d0/objects");
    let mut v: Vec<PathBuf> = data_files(cluster.dir.path())
        .into_iter()
        .filter(|p| p.starts_with(&root) && p.to_string_lossy().ends_with(".data"))
        .collect();
    v.sort();
    v
}

/// Runs node 0's object auditor once; gives its output.
fn audit_node0(cluster: &Cluster) -> String {
    let conf = cluster.dir.path().join("etc/object-server-0.conf");
    ringsmith_testkit::run_daemon_once(BIN, "object-auditor", &conf)
}

fn quarantined(cluster: &Cluster) -> Vec<String> {
    let q = cluster.dir.path().join("srv/node0/d0/quarantined/objects");
    std::fs::read_dir(&q)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn hash_of(archive: &Path) -> String {
    archive
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Flips a bit in the second fragment's header of `archive` and rewrites its ETag to the
/// damaged bytes' md5; gives the object's name.
fn damage_second_fragment_header(archive: &Path) -> String {
    let mut bytes = std::fs::read(archive).unwrap();
    let first = ringsmith_ec::FragmentHeader::parse(&bytes[..ringsmith_ec::HEADER_LEN]).unwrap();
    let second_header = ringsmith_ec::HEADER_LEN + first.size as usize;
    bytes[second_header + 20] ^= 0x10;
    std::fs::write(archive, &bytes).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(archive)
        .unwrap();
    let mut meta = read_metadata(&f, archive).unwrap();
    meta.insert("ETag".into(), hex::encode(Md5::digest(&bytes)));
    write_metadata(&f, archive, &meta).unwrap();
    meta["name"].rsplit('/').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_quarantines_an_archive_with_a_bad_fragment_header() {
    let cluster = ec_cluster(Storage::Ringsmith);
    let (http, token, url) = tester_with_container(&cluster.url(), "ec", TIMEOUT).await;
    let mut bodies = std::collections::BTreeMap::new();
    for n in 0..8usize {
        // Two to three segments each, so every archive has several fragments.
        let body = body_of(2 * SEGMENT + 1 + n * SEGMENT / 8, n as u8 + 1);
        let r = http
            .put(format!("{url}/ec/obj-{n}"))
            .header("x-auth-token", &token)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        bodies.insert(format!("obj-{n}"), body);
    }
    let archives = node0_archives(&cluster);
    assert!(
        archives.len() >= 2,
        "node 0 holds {} archives",
        archives.len()
    );

    // Real archives pass.
    let out = audit_node0(&cluster);
    assert!(
        quarantined(&cluster).is_empty(),
        "a sound archive was quarantined:\n{out}"
    );

    // Damage the second fragment's header of one archive, and make its metadata agree
    // with the damaged bytes.
    let victim = archives[0].clone();
    let name = damage_second_fragment_header(&victim);

    let out = audit_node0(&cluster);
    assert_eq!(
        quarantined(&cluster),
        [hash_of(&victim)],
        "exactly the damaged archive is quarantined:\n{out}"
    );
    assert!(out.contains("invalid fragment archive"), "{out}");
    assert!(!victim.exists());
    let left = node0_archives(&cluster);
    assert_eq!(left.len(), archives.len() - 1);

    // The object still reads whole from the other fragments.
    let r = http
        .get(format!("{url}/ec/{name}"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().as_ref() == bodies[&name].as_slice());

    // Swift's own auditor, on the same disk, agrees: it passes our sound archives and
    // quarantines one damaged the same way.
    let victim2 = left[0].clone();
    damage_second_fragment_header(&victim2);
    let etc = cluster.dir.path().join("etc");
    let swift_conf = etc.join("swift-object-auditor-0.conf");
    let ours = std::fs::read_to_string(etc.join("object-server-0.conf")).unwrap();
    std::fs::write(
        &swift_conf,
        ours.replacen(
            "[DEFAULT]\n",
            &format!("[DEFAULT]\nuser = {}\n", ringsmith_testkit::current_user()),
            1,
        ),
    )
    .unwrap();
    assert!(std::fs::read_to_string(&swift_conf)
        .unwrap()
        .contains("user = "));
    let mut auditor = swift_with_cluster_policies("swift-object-auditor", &etc);
    auditor.arg(&swift_conf).arg("once");
    let out = ringsmith_testkit::output_within(&mut auditor, std::time::Duration::from_secs(300))
        .unwrap_or_else(|hung| {
            panic!(
                "Swift's auditor still running after 300 s; killed:\n{}",
                String::from_utf8_lossy(&hung.stderr)
            )
        });
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "Swift's auditor failed: {text}");
    let mut q = quarantined(&cluster);
    q.sort();
    let mut want = vec![hash_of(&victim), hash_of(&victim2)];
    want.sort();
    assert_eq!(
        q, want,
        "Swift's auditor quarantined a different set:\n{text}"
    );
}
