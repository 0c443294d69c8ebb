//! `.builder` reader (Swift's pickled RingBuilder dict). A builder that loads must save
//! and load again to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsmith::builder::RingBuilder;

fuzz_target!(|data: &[u8]| {
    let Ok(builder) = RingBuilder::from_pickle_bytes(data) else {
        return;
    };
    let saved = builder.to_pickle_bytes();
    let again = RingBuilder::from_pickle_bytes(&saved).expect("a builder we saved must load");
    assert!(
        again.to_pickle_bytes() == saved,
        "builder round trip is not stable"
    );
});
