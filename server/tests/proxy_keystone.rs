//! Keystone authentication through the real binaries, against a real Keystone: a Keystone
//! 30 with its SQL backend on SQLite (scripts/keystone_aio.py, from the virtualenv
//! scripts/keystone-venv.sh makes) issues the tokens; Ringsmith's proxy with `authtoken`
//! and `keystoneauth` validates them with it and authorizes, and so does Swift 2.38.3's own
//! proxy (keystonemiddleware's `auth_token` and Swift's `keystoneauth`) on the same storage
//! nodes. Every request is sent to both, and both must answer what Swift's rules say.
//! Nothing here is skipped: without Keystone the test fails and says why.

mod proxy_common;

use std::path::PathBuf;
use std::process::Command;

use proxy_common::{free_port, Cluster, Storage};
use reqwest::{Client, Method};
use serde_json::Value;

fn keystone_venv() -> PathBuf {
    let venv = match std::env::var_os("RINGSMITH_KEYSTONE_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
            .join("ringsmith/keystone-venv"),
    };
    assert!(
        venv.join("bin/keystone-manage").exists(),
        "the Keystone virtualenv is missing at {}; run scripts/keystone-venv.sh (scripts/test.sh does)",
        venv.display()
    );
    venv
}

/// A Keystone on 127.0.0.1 with the test identities; stopped on drop.
struct Keystone {
    dir: tempfile::TempDir,
    info: Value,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/keystone_aio.py")
}

impl Keystone {
    fn start() -> Keystone {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(keystone_venv().join("bin/python"))
            .arg(script())
            .args(["start", "--dir"])
            .arg(dir.path())
            .output()
            .expect("run keystone_aio.py");
        assert!(
            out.status.success(),
            "Keystone did not start: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let info: Value = serde_json::from_slice(&out.stdout).expect("keystone_aio.py's JSON");
        eprintln!("keystone up: {}", info["seconds"]);
        Keystone { dir, info }
    }

    fn url(&self) -> &str {
        self.info["auth_url"].as_str().unwrap()
    }

    fn user(&self, name: &str) -> &Value {
        &self.info["users"][name]
    }

    fn project_id(&self, name: &str) -> String {
        self.info["projects"][name]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A project-scoped token for `name` (`POST /v3/auth/tokens`).
    async fn token(&self, http: &Client, name: &str) -> String {
        let u = self.user(name);
        let domain = u["domain_id"].as_str().unwrap();
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": name, "password": u["password"], "domain": {"id": domain}}}},
            "scope": {"project": {"name": u["project"], "domain": {"id": domain}}}}});
        let r = http
            .post(format!("{}/auth/tokens", self.url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "token for {name}");
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("keystone.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "keystone.log (last lines, newest first):\n{}",
                tail.join("\n")
            );
        }
        let _ = Command::new(keystone_venv().join("bin/python"))
            .arg(script())
            .args(["stop", "--dir"])
            .arg(self.dir.path())
            .status();
    }
}

/// The pipeline both proxies run: Swift's sample one, keystone in place of tempauth.
fn proxy_body(keystone_url: &str, delay_auth_decision: bool) -> String {
    let mut body = format!(
        "[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging \
         listing_formats tempurl authtoken keystoneauth copy account-quotas dlo \
         proxy-logging proxy-server\n\n\
         [app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n\
         allow_account_management = true\nnode_timeout = 3\n\n\
         [filter:authtoken]\npaste.filter_factory = keystonemiddleware.auth_token:filter_factory\n\
         www_authenticate_uri = {keystone_url}\nauth_url = {keystone_url}\nauth_type = password\n\
         interface = public\nusername = swift\npassword = swift-pw\nproject_name = service\n\
         user_domain_id = default\nproject_domain_id = default\n\
         delay_auth_decision = {delay_auth_decision}\nservice_token_roles_required = true\n\n\
         [filter:keystoneauth]\nuse = egg:swift#keystoneauth\n\
         operator_roles = admin, swiftoperator\nreseller_admin_role = ResellerAdmin\n\n"
    );
    for f in [
        "catch_errors",
        "gatekeeper",
        "healthcheck",
        "listing_formats",
        "tempurl",
        "copy",
        "dlo",
    ] {
        body.push_str(&format!("[filter:{f}]\nuse = egg:swift#{f}\n\n"));
    }
    body.push_str("[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\n");
    body.push_str("[filter:account-quotas]\nuse = egg:swift#account_quotas\n");
    body
}

/// One request of the script: who sends it (`None`: no token), what, and the status
/// Swift's rules give.
struct Step {
    what: String,
    method: &'static str,
    path: String,
    token: Option<String>,
    headers: Vec<(&'static str, String)>,
    want: u16,
}

struct Script {
    steps: Vec<Step>,
}

impl Script {
    fn step(
        &mut self,
        what: impl Into<String>,
        method: &'static str,
        path: impl Into<String>,
        token: Option<&str>,
        headers: &[(&'static str, &str)],
        want: u16,
    ) {
        self.steps.push(Step {
            what: what.into(),
            method,
            path: path.into(),
            token: token.map(str::to_string),
            headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            want,
        });
    }
}

/// Runs the script against one proxy; every answer that is not the wanted one, and the
/// headers of each answer (for checks of their own).
async fn run(
    http: &Client,
    base: &str,
    prefix: &str,
    script: &Script,
) -> (Vec<String>, Vec<reqwest::header::HeaderMap>) {
    let mut wrong = Vec::new();
    let mut heads = Vec::new();
    for s in &script.steps {
        let path = s.path.replace("{c}", &format!("{prefix}c"));
        let mut rb = http.request(
            Method::from_bytes(s.method.as_bytes()).unwrap(),
            format!("{base}{path}"),
        );
        if let Some(t) = &s.token {
            rb = rb.header("x-auth-token", t);
        }
        for (k, v) in &s.headers {
            rb = rb.header(*k, v.replace("{c}", &format!("{prefix}c")));
        }
        if s.method == "PUT" {
            rb = rb.body("payload");
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        heads.push(r.headers().clone());
        if status != s.want {
            let body = r.text().await.unwrap_or_default();
            wrong.push(format!(
                "{}: {} {path} -> {status}, want {} ({})",
                s.what,
                s.method,
                s.want,
                body.chars().take(120).collect::<String>()
            ));
        }
    }
    (wrong, heads)
}

/// One Keystone (slow to set up) and one cluster for everything: the proxies with
/// `delay_auth_decision` run the script of roles and ACLs, those without it the refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystone_authentication_and_authorization_as_swift_does_them() {
    let ks = tokio::task::spawn_blocking(Keystone::start).await.unwrap();
    let url = ks.url().to_string();
    let mut cluster =
        tokio::task::spawn_blocking(|| Cluster::start_with(Storage::Ringsmith, 1, ""))
            .await
            .unwrap();
    // Where no Keystone listens: a port bound and let go.
    let nowhere = format!("http://127.0.0.1:{}/v3", free_port("127.0.0.1"));
    let mut port = |name: &str, swift: bool, keystone: &str, delay: bool| {
        cluster.start_proxy_with_conf(name, swift, &proxy_body(keystone, delay))
    };
    let ours = port("keystone-proxy", false, &url, true);
    let swift = port("swift-keystone-proxy", true, &url, true);
    let ours_strict = port("keystone-proxy-nodelay", false, &url, false);
    let swift_strict = port("swift-keystone-proxy-nodelay", true, &url, false);
    let ours_down = port("keystone-down-proxy", false, &nowhere, false);
    let swift_down = port("swift-keystone-down-proxy", true, &nowhere, false);
    let ours_down_delay = port("keystone-down-proxy-delay", false, &nowhere, true);
    let swift_down_delay = port("swift-keystone-down-proxy-delay", true, &nowhere, true);
    let http = Client::new();
    tokens_roles_and_acls(&ks, &http, ours, swift).await;
    refusals_without_delay_auth_decision(&ks, &http, ours_strict, swift_strict).await;

    // Keystone unreachable: 503 while authtoken decides, an anonymous caller (401) when
    // the decision is delayed.
    let op = ks.token(&http, "operator").await;
    let acct = format!("/v1/AUTH_{}", ks.project_id("proj1"));
    for (name, port, want) in [
        ("Ringsmith", ours_down, 503),
        ("Swift", swift_down, 503),
        ("Ringsmith (delay_auth_decision)", ours_down_delay, 401),
        ("Swift (delay_auth_decision)", swift_down_delay, 401),
    ] {
        let r = http
            .head(format!("http://127.0.0.1:{port}{acct}"))
            .header("x-auth-token", &op)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{name} with Keystone unreachable");
    }
}

/// Every step of the script against both proxies (Ringsmith's first: Swift's then also
/// reads the account domains Ringsmith recorded).
async fn tokens_roles_and_acls(ks: &Keystone, http: &Client, ours: u16, swift: u16) {
    let mut tok = std::collections::HashMap::new();
    for name in [
        "operator",
        "member",
        "member2",
        "operator2",
        "reseller",
        "d2user",
        "d2operator",
        "swift",
    ] {
        tok.insert(name, ks.token(http, name).await);
    }
    let t = |n: &str| Some(tok[n].clone());
    let (p1, p2, p3) = (
        ks.project_id("proj1"),
        ks.project_id("proj2"),
        ks.project_id("proj3"),
    );
    let uid = |n: &str| ks.user(n)["id"].as_str().unwrap().to_string();
    let (a1, a2, a3) = (
        format!("/v1/AUTH_{p1}"),
        format!("/v1/AUTH_{p2}"),
        format!("/v1/AUTH_{p3}"),
    );
    let dom2 = ks.info["domains"]["dom2"].as_str().unwrap().to_string();

    let mut s = Script { steps: Vec::new() };
    let obj = format!("{a1}/{{c}}/o");
    // Owners: the project's operators, and the reseller admin everywhere.
    s.step(
        "operator creates a container",
        "PUT",
        format!("{a1}/{{c}}"),
        t("operator").as_deref(),
        &[],
        201,
    );
    s.step(
        "operator writes an object",
        "PUT",
        obj.clone(),
        t("operator").as_deref(),
        &[],
        201,
    );
    s.step(
        "operator reads it",
        "GET",
        obj.clone(),
        t("operator").as_deref(),
        &[],
        200,
    );
    s.step(
        "operator heads its account",
        "HEAD",
        a1.clone(),
        t("operator").as_deref(),
        &[],
        204,
    );
    s.step(
        "a member without operator role reads",
        "GET",
        obj.clone(),
        t("member").as_deref(),
        &[],
        403,
    );
    s.step(
        "a member without operator role creates",
        "PUT",
        format!("{a1}/{{c}}x"),
        t("member").as_deref(),
        &[],
        403,
    );
    s.step(
        "another project's operator reads",
        "GET",
        obj.clone(),
        t("operator2").as_deref(),
        &[],
        403,
    );
    s.step(
        "another project's operator writes",
        "PUT",
        format!("{a1}/{{c}}/o2"),
        t("operator2").as_deref(),
        &[],
        403,
    );
    s.step(
        "another project's operator lists",
        "GET",
        format!("{a1}/{{c}}"),
        t("operator2").as_deref(),
        &[],
        403,
    );
    s.step(
        "reseller admin reads",
        "GET",
        obj.clone(),
        t("reseller").as_deref(),
        &[],
        200,
    );
    s.step(
        "reseller admin creates in another account",
        "PUT",
        format!("{a2}/{{c}}"),
        t("reseller").as_deref(),
        &[],
        201,
    );
    s.step(
        "operator2 owns what the reseller made",
        "GET",
        format!("{a2}/{{c}}"),
        t("operator2").as_deref(),
        &[],
        204,
    );
    // Tokens that do not check out, and identities a client makes up.
    s.step(
        "a bogus token",
        "GET",
        obj.clone(),
        Some("gAAAAABbogus"),
        &[],
        401,
    );
    s.step("no token", "GET", obj.clone(), None, &[], 401);
    s.step(
        "forged identity headers",
        "GET",
        obj.clone(),
        None,
        &[
            ("x-identity-status", "Confirmed"),
            ("x-project-id", &p1),
            ("x-roles", "admin"),
            ("x-user-id", "x"),
        ],
        401,
    );
    s.step(
        "a member's token with forged roles",
        "GET",
        obj.clone(),
        t("member").as_deref(),
        &[("x-roles", "swiftoperator")],
        403,
    );
    // Read ACLs by ids: one user, then the whole project.
    let one = format!("{p1}:{}", uid("member"));
    s.step(
        "ACL for one member",
        "POST",
        format!("{a1}/{{c}}"),
        t("operator").as_deref(),
        &[("x-container-read", &one)],
        204,
    );
    s.step(
        "that member reads",
        "GET",
        obj.clone(),
        t("member").as_deref(),
        &[],
        200,
    );
    s.step(
        "the other member does not",
        "GET",
        obj.clone(),
        t("member2").as_deref(),
        &[],
        403,
    );
    s.step(
        "nor another project's operator",
        "GET",
        obj.clone(),
        t("operator2").as_deref(),
        &[],
        403,
    );
    s.step(
        "a read ACL gives no listing of the account",
        "GET",
        a1.clone(),
        t("member").as_deref(),
        &[],
        403,
    );
    let all = format!("{p1}:*");
    s.step(
        "ACL for the project",
        "POST",
        format!("{a1}/{{c}}"),
        t("operator").as_deref(),
        &[("x-container-read", &all)],
        204,
    );
    s.step(
        "member reads",
        "GET",
        obj.clone(),
        t("member").as_deref(),
        &[],
        200,
    );
    s.step(
        "member2 reads",
        "GET",
        obj.clone(),
        t("member2").as_deref(),
        &[],
        200,
    );
    s.step(
        "member2 lists",
        "GET",
        format!("{a1}/{{c}}"),
        t("member2").as_deref(),
        &[],
        200,
    );
    s.step(
        "operator2 still does not",
        "GET",
        obj.clone(),
        t("operator2").as_deref(),
        &[],
        403,
    );
    // Names count where every domain is the default one.
    s.step(
        "ACL by names",
        "POST",
        format!("{a1}/{{c}}"),
        t("operator").as_deref(),
        &[("x-container-read", "proj2:operator2,proj3:d2user")],
        204,
    );
    s.step(
        "operator2 named reads",
        "GET",
        obj.clone(),
        t("operator2").as_deref(),
        &[],
        200,
    );
    s.step(
        "a user of another domain named does not",
        "GET",
        obj.clone(),
        t("d2user").as_deref(),
        &[],
        403,
    );
    let d2 = format!("{p3}:{}", uid("d2user"));
    s.step(
        "ACL with its ids",
        "POST",
        format!("{a1}/{{c}}"),
        t("operator").as_deref(),
        &[("x-container-read", &d2)],
        204,
    );
    s.step(
        "the other domain's user by ids reads",
        "GET",
        obj.clone(),
        t("d2user").as_deref(),
        &[],
        200,
    );
    // Write ACL.
    s.step(
        "write ACL for one member",
        "POST",
        format!("{a1}/{{c}}"),
        t("operator").as_deref(),
        &[("x-container-write", &one)],
        204,
    );
    s.step(
        "that member writes",
        "PUT",
        format!("{a1}/{{c}}/w"),
        t("member").as_deref(),
        &[],
        201,
    );
    s.step(
        "the other does not",
        "PUT",
        format!("{a1}/{{c}}/w"),
        t("member2").as_deref(),
        &[],
        403,
    );
    s.step(
        "members set no ACLs",
        "POST",
        format!("{a1}/{{c}}"),
        t("member").as_deref(),
        &[("x-container-read", ".r:*")],
        403,
    );
    // Referrer ACLs for anonymous callers (delay_auth_decision lets them through authtoken).
    s.step(
        "public read ACL",
        "POST",
        format!("{a1}/{{c}}"),
        t("operator").as_deref(),
        &[("x-container-read", ".r:*")],
        204,
    );
    s.step(
        "anonymous reads the object",
        "GET",
        obj.clone(),
        None,
        &[],
        200,
    );
    s.step(
        "a bogus token reads it too",
        "GET",
        obj.clone(),
        Some("bogus"),
        &[],
        200,
    );
    s.step(
        "anonymous lists without .rlistings",
        "GET",
        format!("{a1}/{{c}}"),
        None,
        &[],
        401,
    );
    s.step(
        "anonymous writes",
        "PUT",
        format!("{a1}/{{c}}/anon"),
        None,
        &[],
        401,
    );
    s.step(
        "public listing ACL",
        "POST",
        format!("{a1}/{{c}}"),
        t("operator").as_deref(),
        &[("x-container-read", ".r:*,.rlistings")],
        204,
    );
    s.step(
        "anonymous lists",
        "GET",
        format!("{a1}/{{c}}"),
        None,
        &[],
        200,
    );
    // The other domain's account: its domain is recorded when it is made, so names in
    // its ACLs do not count.
    s.step(
        "d2operator creates (account made)",
        "PUT",
        format!("{a3}/{{c}}"),
        t("d2operator").as_deref(),
        &[],
        201,
    );
    s.step(
        "d2operator writes",
        "PUT",
        format!("{a3}/{{c}}/o"),
        t("d2operator").as_deref(),
        &[],
        201,
    );
    s.step(
        "d2 ACL by names",
        "POST",
        format!("{a3}/{{c}}"),
        t("d2operator").as_deref(),
        &[("x-container-read", "proj1:member")],
        204,
    );
    s.step(
        "named default-domain member does not read",
        "GET",
        format!("{a3}/{{c}}/o"),
        t("member").as_deref(),
        &[],
        403,
    );
    let m = format!("{p1}:{}", uid("member"));
    s.step(
        "d2 ACL by ids",
        "POST",
        format!("{a3}/{{c}}"),
        t("d2operator").as_deref(),
        &[("x-container-read", &m)],
        204,
    );
    s.step(
        "the member by ids reads",
        "GET",
        format!("{a3}/{{c}}/o"),
        t("member").as_deref(),
        &[],
        200,
    );
    s.step(
        "d2operator heads its account",
        "HEAD",
        a3.clone(),
        t("d2operator").as_deref(),
        &[],
        204,
    );
    let domain_head = s.steps.len() - 1;
    // Service tokens: a valid one with the service role passes, others make the request
    // anonymous (asked of the account, which no container ACL opens).
    for (what, service, want) in [
        ("with the swift service token", tok["swift"].as_str(), 204),
        (
            "with a service token lacking the role",
            tok["member"].as_str(),
            401,
        ),
        ("with a bogus service token", "bogus", 401),
    ] {
        s.step(
            what,
            "HEAD",
            a1.clone(),
            t("operator").as_deref(),
            &[("x-service-token", service)],
            want,
        );
    }
    // Accounts: only a reseller may delete one.
    s.step(
        "operator deletes its account",
        "DELETE",
        a1.clone(),
        t("operator").as_deref(),
        &[],
        403,
    );
    s.step(
        "operator posts its account's metadata",
        "POST",
        a1.clone(),
        t("operator").as_deref(),
        &[("x-account-meta-k", "v")],
        204,
    );

    for (name, port, prefix) in [("Ringsmith", ours, "rs"), ("Swift", swift, "sw")] {
        let (wrong, heads) = run(http, &format!("http://127.0.0.1:{port}"), prefix, &s).await;
        assert!(
            wrong.is_empty(),
            "{name}'s proxy answered {} of {} requests otherwise than Swift's rules:\n{}",
            wrong.len(),
            s.steps.len(),
            wrong.join("\n")
        );
        assert_eq!(
            heads[domain_head]
                .get("x-account-project-domain-id")
                .map(|v| v.to_str().unwrap()),
            Some(dom2.as_str()),
            "{name}: the account's recorded domain"
        );
        eprintln!(
            "{name}: {} requests answered as Swift's rules say",
            s.steps.len()
        );
    }
}

/// Without `delay_auth_decision`, authtoken itself refuses a missing or bad token, even
/// where a container's ACL would let anyone in.
async fn refusals_without_delay_auth_decision(ks: &Keystone, http: &Client, ours: u16, swift: u16) {
    let url = ks.url();
    let op = ks.token(http, "operator").await;
    let acct = format!("/v1/AUTH_{}", ks.project_id("proj1"));
    for (name, port, c) in [("Ringsmith", ours, "nd-rs"), ("Swift", swift, "nd-sw")] {
        let base = format!("http://127.0.0.1:{port}{acct}/{c}");
        let r = http
            .put(&base)
            .header("x-auth-token", &op)
            .header("x-container-read", ".r:*")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}");
        let r = http
            .put(format!("{base}/o"))
            .header("x-auth-token", &op)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name}");
        for token in [None, Some("bogus")] {
            let mut rb = http.get(format!("{base}/o"));
            if let Some(t) = token {
                rb = rb.header("x-auth-token", t);
            }
            let r = rb.send().await.unwrap();
            assert_eq!(r.status(), 401, "{name}: {token:?}");
            let www: Vec<&str> = r
                .headers()
                .get_all("www-authenticate")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(www, [format!("Keystone uri=\"{url}\"")], "{name}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], 401, "{name}");
        }
    }
}
