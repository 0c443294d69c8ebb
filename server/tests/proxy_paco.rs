//! PACO: with `object_in_process`, object requests for the local node are served by the
//! object server code inside the proxy — shown by killing the object server *process*:
//! the in-process proxy keeps storing and serving objects, the HTTP one cannot.

mod proxy_common;

use proxy_common::{login, Cluster, Storage};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_object_path_needs_no_object_server_process() {
    let mut c = tokio::task::spawn_blocking(|| Cluster::start_with(Storage::Ringsmith, 1, ""))
        .await
        .unwrap();
    let obj_conf = c.etc().join("object-server-0.conf");
    let paco_port = c.start_another_proxy(
        "paco-proxy",
        &format!(
            "[app:proxy-server]\nobject_in_process = true\nobject_server_conf = {}\n",
            obj_conf.display()
        ),
    );
    let paco = format!("http://127.0.0.1:{paco_port}");
    let http = reqwest::Client::new();
    let (tok, url) = login(&paco, "test:tester", "testing").await;
    let r = http
        .put(format!("{url}/box"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Stop the object server process (children: object, container, account).
    let mut object_server = c.nodes[0].children.remove(0);
    object_server.kill().unwrap();
    object_server.wait().unwrap();

    let r = http
        .put(format!("{url}/box/hello"))
        .header("x-auth-token", &tok)
        .body("in-process hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", c.proxy_log());
    let r = http
        .get(format!("{url}/box/hello"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "in-process hello");
    // The container listing (over HTTP to the container server) saw the update the
    // in-process object server sent.
    let r = http
        .get(format!("{url}/box"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "hello\n");
    // The data is on the node's device, in Swift's layout.
    let objects = c.dir.path().join("srv/node0/d0/objects");
    assert!(objects.is_dir(), "no objects directory on the device");

    // The plain proxy, which goes over HTTP, cannot reach the dead object server.
    let (tok2, url2) = login(&c.url(), "test:tester", "testing").await;
    let r = http
        .get(format!("{url2}/box/hello"))
        .header("x-auth-token", &tok2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}
