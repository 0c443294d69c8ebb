//! Listing parameters (`limit`, `marker`, `end_marker`, `prefix`, `delimiter`, `path`,
//! `format`, `reverse`, and `Accept`), container ACLs (`X-Container-Read`/`-Write`:
//! referrers and groups) and account ACLs (`X-Account-Access-Control` JSON). The input is
//! split on the first two NUL bytes into a query, an `Accept` header and an ACL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsmith_server::db::listing::listing_params_reserved;
use ringsmith_server::proxy::{account_acl, auth};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let query = parts.next().unwrap_or("");
    let accept = parts.next();
    let acl = parts.next().unwrap_or(query);

    if let Ok(p) = listing_params_reserved(Some(query), accept, 10_000, false) {
        assert!(p.limit <= 10_000, "listing limit past the maximum");
    }
    let _ = listing_params_reserved(Some(query), accept, 10_000, true);

    let parsed = auth::parse_acl(Some(acl));
    let _ = parsed;
    for header in ["x-container-read", "x-container-write"] {
        if let Ok(clean) = auth::clean_acl(header, acl) {
            // A cleaned ACL is stable: cleaning it again changes nothing.
            assert_eq!(
                auth::clean_acl(header, &clean).as_deref(),
                Ok(clean.as_str()),
                "clean_acl is not idempotent"
            );
        }
    }
    if account_acl::validate(acl).is_ok() {
        let _ = account_acl::AccountAcls::parse(acl);
    }
});
