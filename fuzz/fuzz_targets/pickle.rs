//! The pickle reader (protocols 0-5, as Swift's files and `.pending` records use them).
//! A value that loads must dump and load again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsmith::pickle;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = pickle::loads(data) else {
        return;
    };
    let dumped = pickle::dumps(&value);
    let again = pickle::loads(&dumped).expect("a pickle we wrote must load");
    assert!(
        pickle::dumps(&again) == dumped,
        "pickle round trip is not stable"
    );
});
