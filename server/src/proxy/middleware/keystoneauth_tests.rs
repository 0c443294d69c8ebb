use super::*;
use ringsmith::swift::conf::Conf;
use std::path::Path;

fn conf(extra: &str) -> Arc<KeystoneConf> {
    let c = Conf::parse(
        &format!("[filter:keystoneauth]\nuse = egg:swift#keystoneauth\n{extra}"),
        Path::new("proxy-server.conf"),
    )
    .unwrap();
    Arc::new(KeystoneConf::from_section(&c.section("filter:keystoneauth")).unwrap())
}

fn identity(project: &str, user: &str, roles: &[&str]) -> KeystoneIdentity {
    KeystoneIdentity {
        user_id: Some(format!("{user}-id")),
        user_name: Some(user.to_string()),
        project_id: Some(format!("{project}-id")),
        project_name: Some(project.to_string()),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        service_roles: Vec::new(),
        user_domain_id: Some("default".into()),
        project_domain_id: Some("default".into()),
    }
}

fn decide(
    conf: &Arc<KeystoneConf>,
    id: Option<&KeystoneIdentity>,
    method: &str,
    account: &str,
    object: bool,
    acl: Option<&str>,
) -> Decision {
    let authz = KeystoneAuthorizer {
        conf: conf.clone(),
        identity: id.cloned(),
        account_domain: None,
    };
    authz.authorize(
        None,
        &AuthzRequest {
            method,
            account,
            container: Some("c"),
            object: object.then_some("o"),
            referer: None,
            acl,
        },
    )
}

#[test]
fn options_read_as_swift_reads_them() {
    let c = conf(
        "reseller_prefix = AUTH, SERVICE\noperator_roles = Admin , SwiftOperator\n\
         SERVICE_service_roles = service\nreseller_admin_role = Boss\n",
    );
    assert_eq!(c.reseller_prefixes, ["AUTH_", "SERVICE_"]);
    assert_eq!(c.rules["AUTH_"].operator_roles, ["admin", "swiftoperator"]);
    assert!(c.rules["AUTH_"].service_roles.is_empty());
    assert_eq!(c.rules["SERVICE_"].service_roles, ["service"]);
    assert_eq!(c.reseller_admin_role, "boss");
    let d = conf("");
    assert_eq!(d.rules["AUTH_"].operator_roles, ["admin", "swiftoperator"]);
    assert_eq!(d.reseller_admin_role, "reselleradmin");
    assert!(d.allow_overrides && d.allow_names_in_acls);
}

#[test]
fn operators_own_their_projects_account_only() {
    let c = conf("");
    let op = identity("p1", "op", &["SwiftOperator"]);
    let member = identity("p1", "m", &["member"]);
    let other = identity("p2", "op2", &["swiftoperator"]);
    let reseller = identity("p9", "r", &["ResellerAdmin"]);
    assert_eq!(
        decide(&c, Some(&op), "PUT", "AUTH_p1-id", true, None),
        Decision::Owner
    );
    assert_eq!(
        decide(&c, Some(&member), "GET", "AUTH_p1-id", true, None),
        Decision::Denied
    );
    assert_eq!(
        decide(&c, Some(&other), "GET", "AUTH_p1-id", true, None),
        Decision::Denied
    );
    assert_eq!(
        decide(&c, Some(&reseller), "DELETE", "AUTH_p1-id", true, None),
        Decision::Owner
    );
    assert_eq!(
        decide(&c, None, "GET", "AUTH_p1-id", true, None),
        Decision::Denied
    );
    // Nobody but a reseller deletes an account.
    let authz = KeystoneAuthorizer {
        conf: c.clone(),
        identity: Some(op.clone()),
        account_domain: None,
    };
    let account_delete = AuthzRequest {
        method: "DELETE",
        account: "AUTH_p1-id",
        container: None,
        object: None,
        referer: None,
        acl: None,
    };
    assert_eq!(authz.authorize(None, &account_delete), Decision::Denied);
}

#[test]
fn acls_name_project_and_user_by_id_star_or_name() {
    let c = conf("");
    let member = identity("p1", "m", &["member"]);
    let acct = "AUTH_p2-id";
    for (acl, want) in [
        ("p1-id:m-id", Decision::Allowed),
        ("p1-id:*", Decision::Allowed),
        ("*:m-id", Decision::Allowed),
        ("*:*", Decision::Allowed),
        ("p1-id:other", Decision::Denied),
        ("p2-id:*", Decision::Denied),
        // A bare role name is a group the caller's roles are checked against, but only
        // on the caller's own account: on another's, the tenant check refuses first.
        ("member", Decision::Denied),
        // Names count only where the account's domain is known to be the default one.
        ("p1:m", Decision::Denied),
    ] {
        assert_eq!(
            decide(&c, Some(&member), "GET", acct, true, Some(acl)),
            want,
            "{acl}"
        );
    }
    // On its own project's account, names count and so do bare roles.
    assert_eq!(
        decide(&c, Some(&member), "GET", "AUTH_p1-id", true, Some("p1:m")),
        Decision::Allowed
    );
    assert_eq!(
        decide(&c, Some(&member), "GET", "AUTH_p1-id", true, Some("Member")),
        Decision::Allowed
    );
}

#[test]
fn names_count_on_other_accounts_only_of_the_default_domain() {
    let c = conf("");
    let member = identity("p1", "m", &["member"]);
    let with_domain = |domain: Option<&str>, exists: bool| KeystoneAuthorizer {
        conf: c.clone(),
        identity: Some(member.clone()),
        account_domain: Some(AccountDomain {
            account: "AUTH_p2-id".into(),
            exists,
            domain_id: domain.map(str::to_string),
        }),
    };
    let req = AuthzRequest {
        method: "GET",
        account: "AUTH_p2-id",
        container: Some("c"),
        object: Some("o"),
        referer: None,
        acl: Some("p1:m"),
    };
    assert_eq!(
        with_domain(Some("default"), true).authorize(None, &req),
        Decision::Allowed
    );
    assert_eq!(
        with_domain(None, true).authorize(None, &req),
        Decision::Allowed
    );
    assert_eq!(
        with_domain(Some("dom2"), true).authorize(None, &req),
        Decision::Denied
    );
    assert_eq!(
        with_domain(Some("_unknown"), true).authorize(None, &req),
        Decision::Denied
    );
    assert_eq!(
        with_domain(Some("default"), false).authorize(None, &req),
        Decision::Denied
    );
    // A caller from another domain never matches by name.
    let mut foreign = member.clone();
    foreign.user_domain_id = Some("dom2".into());
    let authz = KeystoneAuthorizer {
        identity: Some(foreign),
        ..with_domain(Some("default"), true)
    };
    assert_eq!(authz.authorize(None, &req), Decision::Denied);
}

#[test]
fn referrers_let_anonymous_callers_read_objects_and_listings_with_rlistings() {
    let c = conf("");
    assert_eq!(
        decide(&c, None, "GET", "AUTH_p1-id", true, Some(".r:*")),
        Decision::Allowed
    );
    assert_eq!(
        decide(&c, None, "GET", "AUTH_p1-id", false, Some(".r:*")),
        Decision::Denied
    );
    assert_eq!(
        decide(
            &c,
            None,
            "GET",
            "AUTH_p1-id",
            false,
            Some(".r:*,.rlistings")
        ),
        Decision::Allowed
    );
    // Not an account this keystoneauth answers for.
    assert_eq!(
        decide(&c, None, "GET", "OTHER_x", true, Some(".r:*")),
        Decision::Denied
    );
    // A member of the project with only a referrer match on a listing is refused.
    let member = identity("p1", "m", &["member"]);
    assert_eq!(
        decide(
            &c,
            Some(&member),
            "GET",
            "AUTH_p1-id",
            false,
            Some(".r:*,member")
        ),
        Decision::Denied
    );
}

#[test]
fn service_roles_require_a_service_token_with_one() {
    let c = conf("SERVICE_service_roles = service\nreseller_prefix = AUTH, SERVICE\n");
    let mut op = identity("p1", "op", &["swiftoperator"]);
    assert_eq!(
        decide(&c, Some(&op), "GET", "AUTH_p1-id", true, None),
        Decision::Owner
    );
    assert_eq!(
        decide(&c, Some(&op), "GET", "SERVICE_p1-id", true, None),
        Decision::Denied
    );
    op.service_roles = vec!["Service".into()];
    assert_eq!(
        decide(&c, Some(&op), "GET", "SERVICE_p1-id", true, None),
        Decision::Owner
    );
}

#[test]
fn project_and_system_readers_only_read() {
    let c = conf("project_reader_roles = reader\nsystem_reader_roles = auditor\n");
    let reader = identity("p1", "r", &["reader"]);
    assert_eq!(
        decide(&c, Some(&reader), "GET", "AUTH_p1-id", true, None),
        Decision::Allowed
    );
    assert_eq!(
        decide(&c, Some(&reader), "PUT", "AUTH_p1-id", true, None),
        Decision::Denied
    );
    assert_eq!(
        decide(&c, Some(&reader), "GET", "AUTH_p2-id", true, None),
        Decision::Denied
    );
    let auditor = identity("p9", "a", &["Auditor"]);
    assert_eq!(
        decide(&c, Some(&auditor), "HEAD", "AUTH_p2-id", true, None),
        Decision::Allowed
    );
    assert_eq!(
        decide(&c, Some(&auditor), "POST", "AUTH_p2-id", true, None),
        Decision::Denied
    );
}

#[test]
fn identities_come_only_from_confirmed_tokens() {
    let mut h = HeaderMap::new();
    h.insert("x-identity-status", HeaderValue::from_static("Confirmed"));
    h.insert("x-tenant-id", HeaderValue::from_static("legacy"));
    h.insert("x-roles", HeaderValue::from_static(" a, ,B "));
    h.insert("x-user-domain-id", HeaderValue::from_static("d"));
    let id = keystone_identity(&h, false).unwrap();
    assert_eq!(id.project_id.as_deref(), Some("legacy"));
    assert_eq!(id.roles, ["a", "B"]);
    assert_eq!(id.user_domain_id, None, "domains come only with a v3 token");
    assert_eq!(
        keystone_identity(&h, true)
            .unwrap()
            .user_domain_id
            .as_deref(),
        Some("d")
    );
    h.insert(
        "x-service-identity-status",
        HeaderValue::from_static("Invalid"),
    );
    assert!(keystone_identity(&h, true).is_none());
    h.remove("x-service-identity-status");
    h.insert("x-identity-status", HeaderValue::from_static("Invalid"));
    assert!(keystone_identity(&h, true).is_none());
}
