//! Unit tests of the proxy's request checks that Swift's functional tests exercise.

use super::object::{parse_delete_at, transfer_coding};
use super::*;

#[test]
fn paths_route_like_swifts_split_path() {
    let status = |p: &str| swift_path_route(p).err().map(|r| r.status().as_u16());
    assert_eq!(
        swift_path_route("/v1/a/c/o/x").ok().as_deref(),
        Some("a/c/o/x")
    );
    assert_eq!(swift_path_route("/v1.0/a").ok().as_deref(), Some("a"));
    // An empty segment before the last: 404.
    assert_eq!(status("/v1//c/o"), Some(404));
    assert_eq!(status("/v1/a//o"), Some(404));
    assert_eq!(status("/v1///o"), Some(404));
    assert_eq!(status("/"), Some(404));
    // No account: no controller, 412.
    assert_eq!(status("/v1"), Some(412));
    assert_eq!(status("/v1/"), Some(412));
    assert_eq!(status("/info%20asdf"), Some(412));
    // An account under an unknown version: 400.
    assert_eq!(status("/v2/a"), Some(400));
}

#[test]
fn delete_at_is_an_integer_capped_at_2286() {
    assert_eq!(parse_delete_at(" 1700000000 "), Some(1_700_000_000));
    assert_eq!(parse_delete_at(&"1".repeat(100)), Some(9_999_999_999));
    assert_eq!(parse_delete_at("-5"), Some(-5));
    assert_eq!(parse_delete_at("bad"), None);
    assert_eq!(parse_delete_at("1.5"), None);
    assert_eq!(parse_delete_at(""), None);
}

#[test]
fn transfer_encodings_get_swifts_answers() {
    assert!(transfer_coding("chunked").unwrap());
    assert!(transfer_coding(" Chunked ").unwrap());
    assert_eq!(transfer_coding("gzip,chunked").unwrap_err().status(), 501);
    assert_eq!(transfer_coding("gzip").unwrap_err().status(), 400);
}

#[test]
fn www_authenticate_names_the_quoted_account() {
    assert_eq!(
        super::super::www_authenticate("/v1/AUTH_haxx%22%0AContent-Length"),
        "Swift realm=\"AUTH_haxx%22%0AContent-Length\""
    );
    assert_eq!(
        super::super::www_authenticate("/v1"),
        "Swift realm=\"unknown\""
    );
    assert_eq!(
        super::super::www_authenticate("/auth/v1.0"),
        "Swift realm=\"unknown\""
    );
}

#[test]
fn x_remove_headers_become_empty_values() {
    let mut client = HeaderMap::new();
    client.insert("x-remove-container-meta-test", "yes".parse().unwrap());
    client.insert("x-remove-container-read", "x".parse().unwrap());
    client.insert("x-remove-account-meta-kept", "x".parse().unwrap());
    client.insert("x-account-meta-kept", "v".parse().unwrap());
    let mut backend = client.clone();
    apply_x_remove(&client, &mut backend);
    assert_eq!(backend["x-container-meta-test"], "");
    assert_eq!(backend["x-container-read"], "");
    assert_eq!(backend["x-account-meta-kept"], "v");
    assert!(!backend.contains_key("x-remove-container-meta-test"));
}
