//! Swift's config files (paste.deploy INI: sections, `set` overrides, continuation lines,
//! `%(here)s`-style interpolation), and the typed reads the servers make of them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsmith::swift::conf::Conf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(conf) = Conf::parse(text, std::path::Path::new("/etc/swift/fuzz.conf")) else {
        return;
    };
    let names: Vec<String> = conf.section_names().map(str::to_string).collect();
    for name in names {
        let section = conf.section(&name);
        let _ = section.str_or("bind_ip", "127.0.0.1");
        let _ = section.parse_or("bind_port", 6200u16);
        let _ = section.parse_or("node_timeout", 10.0f64);
        let _ = section.parse_or("workers", 1usize);
        let _ = ringsmith_server::common::runner::connection_cap(&section);
    }
});
