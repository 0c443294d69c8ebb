//! Header-name conventions of Swift's WSGI layer.

/// Swift (swob) presents header names title-cased (`x-object-meta-color` →
/// `X-Object-Meta-Color`); that is how names are stored and how error messages show them.
pub fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn title_cases_each_dash_separated_word() {
        assert_eq!(
            super::title_case("x-object-meta-COLOR"),
            "X-Object-Meta-Color"
        );
        assert_eq!(super::title_case("etag"), "Etag");
    }
}
