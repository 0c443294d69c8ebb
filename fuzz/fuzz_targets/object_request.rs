//! The object server's request handling, from raw bytes on the wire: the input is
//! written as-is to a connection of the real object server router (Swift's head limits in
//! front, as the server runs it) over an in-memory stream, so hyper parses the request
//! line, headers and (chunked) body, and the object server its path, timestamps,
//! metadata, `Range`, conditionals and `X-Backend-*` headers, against a real device
//! directory. Any response is fine; a panic, a hang or a huge allocation is a finding.
//!
//! Headers that name other hosts (container and expirer updates) are pointed at a closed
//! loopback port before the request reaches the server: a fuzzer must never make it
//! connect anywhere else.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use libfuzzer_sys::fuzz_target;
use ringsmith::swift::conf::Conf;
use ringsmith_server::object::{object_router, ObjectConfig, ObjectState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    runtime: tokio::runtime::Runtime,
    state: Arc<ObjectState>,
    _dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("srv");
        std::fs::create_dir_all(devices.join("sda")).unwrap();
        std::fs::write(
            dir.path().join("swift.conf"),
            "[swift-hash]\nswift_hash_path_prefix = fuzz\nswift_hash_path_suffix = fuzz\n\n\
             [storage-policy:0]\nname = gold\ndefault = yes\n",
        )
        .unwrap();
        let text = format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nswift_dir = {}\nfallocate_reserve = 0\n\
             log_level = ERROR\n\n[app:object-server]\nuse = egg:swift#object\n",
            devices.display(),
            dir.path().display()
        );
        let conf = Conf::parse(&text, &dir.path().join("object-server.conf")).unwrap();
        let cfg = ObjectConfig::from_conf(&conf).unwrap();
        Server {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            state: ObjectState::new(cfg),
            _dir: dir,
        }
    })
}

fn loopback_only(
    mut req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Request<hyper::body::Incoming> {
    let named: Vec<hyper::header::HeaderName> = req
        .headers()
        .keys()
        .filter(|k| k.as_str().ends_with("-host") || k.as_str().ends_with("-hosts"))
        .cloned()
        .collect();
    for k in named {
        req.headers_mut()
            .insert(k, hyper::header::HeaderValue::from_static("127.0.0.1:1"));
    }
    req
}

fuzz_target!(|data: &[u8]| {
    let s = server();
    let router = tower::ServiceExt::map_request(
        ringsmith_server::common::runner::with_head_limits(object_router(s.state.clone())),
        loopback_only,
    );
    s.runtime.block_on(async {
        let (mut client, server_io) = tokio::io::duplex(64 * 1024);
        let conn = hyper::server::conn::http1::Builder::new()
            .max_headers(ringsmith_server::common::runner::MAX_REQUEST_HEADERS)
            .serve_connection(TokioIo::new(server_io), TowerToHyperService::new(router));
        let served = tokio::spawn(conn);
        let talk = async {
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            let mut answer = Vec::new();
            let _ = client.read_to_end(&mut answer).await;
        };
        // A request the input leaves unfinished waits for more bytes: the shutdown above
        // ends it; anything still running after this is a hang.
        tokio::time::timeout(Duration::from_secs(10), talk)
            .await
            .expect("the object server hung on a request");
        let _ = tokio::time::timeout(Duration::from_secs(10), served)
            .await
            .expect("the connection did not end");
    });
});
