//! Escaping as Swift's Python does it: URL quoting of paths (`urllib.parse.quote`) and
//! the XML escaping of ElementTree, which Swift's XML listings are made with.

use std::fmt::Write;

/// Python's `urllib.parse.quote(s, safe)`: letters, digits, `_.-~` and the bytes in
/// `safe` stay; every other UTF-8 byte becomes `%XX` (upper-case hex).
pub fn quote_with(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Python's `quote(s)` with its default `safe = "/"`: how Swift quotes a request path.
pub fn quote(s: &str) -> String {
    quote_with(s, b"/")
}

/// Python's `urllib.parse.unquote(s)`: `%XX` decoded, the bytes read as UTF-8 (invalid
/// sequences become U+FFFD); malformed escapes are kept as they are.
pub fn unquote(s: &str) -> String {
    String::from_utf8_lossy(&unquote_bytes(s)).into_owned()
}

/// `%XX` decoded to raw bytes; malformed escapes kept as they are.
pub fn unquote_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| {
                u8::from_str_radix(h, 16)
                    .ok()
                    .filter(|_| !h.starts_with('+'))
            });
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// XML character data as ElementTree writes it: `&`, `<` and `>` escaped.
pub fn xml_text(s: &str) -> String {
    xml_escape(s, false)
}

/// An XML attribute value (inside double quotes) as ElementTree writes it: also `"`,
/// and the whitespace controls that attribute normalisation would otherwise eat.
/// Quotes `'` are left alone, as ElementTree does.
pub fn xml_attr(s: &str) -> String {
    xml_escape(s, true)
}

fn xml_escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\n' if attr => out.push_str("&#10;"),
            '\r' if attr => out.push_str("&#13;"),
            '\t' if attr => out.push_str("&#09;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_like_python() {
        // Values from CPython 3.11's urllib.parse.quote.
        assert_eq!(quote("/AUTH_test/c/o n"), "/AUTH_test/c/o%20n");
        assert_eq!(quote("a+b&c=d?e#f"), "a%2Bb%26c%3Dd%3Fe%23f");
        assert_eq!(quote("caf\u{e9}/\u{2603}"), "caf%C3%A9/%E2%98%83");
        assert_eq!(quote("-_.~"), "-_.~");
        assert_eq!(quote_with("a/b", b""), "a%2Fb");
    }

    #[test]
    fn unquote_like_python() {
        assert_eq!(unquote("caf%C3%A9%2fx"), "caf\u{e9}/x");
        assert_eq!(unquote("100%"), "100%");
        assert_eq!(unquote("%zz%4"), "%zz%4");
        assert_eq!(unquote("%+1"), "%+1");
        assert_eq!(unquote("%ff"), "\u{fffd}");
        for s in ["o n", "\u{1F600}/x", "a%b"] {
            assert_eq!(unquote(&quote(s)), s);
        }
    }

    /// The two old copies disagreed on `'`; ElementTree, which Swift uses, leaves it.
    #[test]
    fn xml_like_elementtree() {
        assert_eq!(xml_text("a<b>&'\"c"), "a&lt;b&gt;&amp;'\"c");
        assert_eq!(xml_attr("a<b>&'\"\nc"), "a&lt;b&gt;&amp;'&quot;&#10;c");
    }
}
