//! Account and container listing formats, as Swift's `listing_formats` middleware
//! produces them: the proxy always asks the backend for JSON and renders plain text,
//! JSON or XML itself, choosing by `?format=` first and the `Accept` header second.

use ringsmith::swift::escape::{xml_attr, xml_text};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Plain,
    Json,
    Xml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Plain => "text/plain; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
        }
    }
}

/// `None` means 406 Not Acceptable.
pub fn choose(format_param: Option<&str>, accept: Option<&str>) -> Option<Format> {
    if let Some(f) = format_param {
        return Some(match f.to_ascii_lowercase().as_str() {
            "json" => Format::Json,
            "xml" => Format::Xml,
            _ => Format::Plain,
        });
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Format::Plain);
    };
    // Highest q wins; ties go to the order of our offers (plain, json, xml).
    let mut best: Option<(f32, usize, Format)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|v| v.parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let offers: &[(usize, Format)] = match mime.as_str() {
            "text/plain" => &[(0, Format::Plain)],
            "application/json" => &[(1, Format::Json)],
            "application/xml" | "text/xml" => &[(2, Format::Xml)],
            "*/*" => &[(0, Format::Plain)],
            "text/*" => &[(0, Format::Plain)],
            "application/*" => &[(1, Format::Json)],
            _ => &[],
        };
        for &(rank, f) in offers {
            let better = match best {
                None => true,
                Some((bq, br, _)) => q > bq || (q == bq && rank < br),
            };
            if better {
                best = Some((q, rank, f));
            }
        }
    }
    best.map(|b| b.2)
}

fn field(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Renders a backend JSON listing. `container` is `Some` for object listings.
pub fn render(listing: &[Value], format: Format, account: &str, container: Option<&str>) -> String {
    match format {
        Format::Json => serde_json::to_string(listing).unwrap_or_else(|_| "[]".into()),
        Format::Plain => {
            let mut out = String::new();
            for rec in listing {
                let name = rec.get("name").or_else(|| rec.get("subdir"));
                if let Some(n) = name {
                    out.push_str(&field(n));
                    out.push('\n');
                }
            }
            out
        }
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            match container {
                Some(c) => {
                    out.push_str(&format!("<container name=\"{}\">", xml_attr(c)));
                    for rec in listing {
                        if let Some(sub) = rec.get("subdir") {
                            let s = field(sub);
                            out.push_str(&format!(
                                "<subdir name=\"{}\"><name>{}</name></subdir>",
                                xml_attr(&s),
                                xml_text(&s)
                            ));
                        } else {
                            out.push_str("<object>");
                            for k in ["name", "hash", "bytes", "content_type", "last_modified"] {
                                let v = rec.get(k).map(field).unwrap_or_default();
                                out.push_str(&format!("<{k}>{}</{k}>", xml_text(&v)));
                            }
                            out.push_str("</object>");
                        }
                    }
                    out.push_str("</container>");
                }
                None => {
                    out.push_str(&format!("<account name=\"{}\">\n", xml_attr(account)));
                    for rec in listing {
                        if let Some(sub) = rec.get("subdir") {
                            out.push_str(&format!(
                                "<subdir name=\"{}\" />\n",
                                xml_attr(&field(sub))
                            ));
                        } else {
                            out.push_str("<container>");
                            for k in ["name", "count", "bytes", "last_modified", "storage_policy"] {
                                if let Some(v) = rec.get(k) {
                                    out.push_str(&format!("<{k}>{}</{k}>", xml_text(&field(v))));
                                }
                            }
                            out.push_str("</container>\n");
                        }
                    }
                    out.push_str("</account>");
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(choose(None, None), Some(Format::Plain));
        assert_eq!(choose(Some("JSON"), Some("text/xml")), Some(Format::Json));
        assert_eq!(choose(None, Some("application/json")), Some(Format::Json));
        assert_eq!(
            choose(None, Some("text/plain;q=0.5, application/xml")),
            Some(Format::Xml)
        );
        assert_eq!(choose(None, Some("image/png")), None);
    }

    #[test]
    fn renders_like_swift() {
        let l: Vec<Value> = serde_json::from_str(
            r#"[{"subdir":"a/"},{"bytes":10,"hash":"0af9","name":"c.txt","content_type":"text/plain","last_modified":"2026-11-22T02:10:27.050530"}]"#,
        )
        .unwrap();
        assert_eq!(
            render(&l, Format::Plain, "AUTH_t", Some("c")),
            "a/\nc.txt\n"
        );
        let xml = render(&l, Format::Xml, "AUTH_t", Some("cont2"));
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"cont2\"><subdir name=\"a/\"><name>a/</name></subdir><object><name>c.txt</name><hash>0af9</hash><bytes>10</bytes><content_type>text/plain</content_type><last_modified>2026-11-22T02:10:27.050530</last_modified></object></container>"
        );
    }
}
