//! JSON written exactly like Python's `json.dumps(obj, sort_keys=True, ensure_ascii=True)`.
//!
//! Swift writes every JSON blob of a ring file this way, and the decompressed bytes of a
//! ring are only identical to Swift's when ours are too. Python's default encoder differs
//! from `serde_json` in four ways, all handled here:
//!
//! * separators are `", "` and `": "` (not `,` and `:`);
//! * keys are sorted by code point (Rust's `str` ordering is the same order);
//! * everything outside printable ASCII (`' '..='~'`) is escaped as `\uXXXX` with
//!   lower-case hex, characters above U+FFFF as a surrogate pair, and `\n`, `\r`, `\t`,
//!   `\b`, `\f`, `"` and `\\` with their short escapes;
//! * floats are printed like Python's `repr(float)`: the shortest digits that round-trip,
//!   in positional notation when the decimal exponent is in `-4..16` (always with a
//!   fractional part, `100.0`), otherwise as `1e+16` / `1.5e-05` (sign and at least two
//!   exponent digits). Non-finite values print as `NaN`, `Infinity`, `-Infinity`.
//!
//! Integers and floats stay distinct: a `serde_json::Number` that was parsed from `100.0`
//! prints as `100.0`, one parsed from `100` as `100`.

use serde_json::Value;

/// `json.dumps(value, sort_keys=True, ensure_ascii=True)`.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// `json.dumps(value, indent=indent, sort_keys=True)`: one item per line, nested levels
/// indented by `indent` more spaces, `","` between items and `": "` after keys.
pub fn dumps_indent(value: &Value, indent: usize) -> String {
    let mut out = String::new();
    write_indented(&mut out, value, indent, 0);
    out
}

fn write_indented(out: &mut String, value: &Value, indent: usize, level: usize) {
    let pad = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&" ".repeat(indent * level));
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, level + 1);
                write_indented(out, item, indent, level + 1);
            }
            pad(out, level);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, level + 1);
                write_str(out, k);
                out.push_str(": ");
                write_indented(out, v, indent, level + 1);
            }
            pad(out, level);
            out.push('}');
        }
        other => write_value(out, other),
    }
}

/// Appends the Python rendering of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                write_float(out, n.as_f64().unwrap_or(f64::NAN));
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal with Python's `ensure_ascii=True` escaping.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)` (which `json.dumps` uses for finite floats).
pub fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, the same digits Python's
    // repr chooses; only the layout differs.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Python's `decpt`: the value is 0.DIGITS * 10**decpt.
    let decpt = exp + 1;
    if f.is_sign_negative() {
        out.push('-');
    }
    if !(-4 < decpt && decpt <= 16) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", e.abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in 0..(-decpt) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let point = decpt as usize;
        if digits.len() <= point {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
}

/// Python's `repr(float)` (and `str`, `%s`): the shortest text that round-trips, always
/// with a `.0` or an exponent, exponent form below 1e-4 and from 1e16 up; `nan`, `inf`.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    float_repr(f)
}

/// A float as Python's `json.dumps` writes it: `repr`, but `NaN` and `Infinity`.
pub fn float_repr(f: f64) -> String {
    let mut s = String::new();
    write_float(&mut s, f);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_like_python_repr() {
        // Expected strings are Python 3.11's repr() of the same values.
        let cases: &[(f64, &str)] = &[
            (100.0, "100.0"),
            (0.5, "0.5"),
            (3.5, "3.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (2.71, "2.71"),
            (2.0390625, "2.0390625"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(*f), *want, "repr of {f:e}");
        }
    }

    #[test]
    fn repr_spells_non_finite_values_as_python_does() {
        assert_eq!(py_float_repr(f64::NAN), "nan");
        assert_eq!(py_float_repr(f64::NEG_INFINITY), "-inf");
        assert_eq!(py_float_repr(4000.0), "4000.0");
        assert_eq!(py_float_repr(1.5e-5), "1.5e-05");
    }

    #[test]
    fn dumps_like_python() {
        let v = json!({"b": [1, 2.0, null, true, false], "a": {"z": "x", "y": []}, "c": {}});
        assert_eq!(
            dumps(&v),
            r#"{"a": {"y": [], "z": "x"}, "b": [1, 2.0, null, true, false], "c": {}}"#
        );
    }

    #[test]
    fn strings_are_ascii_escaped() {
        let v = json!("a\"b\\c\n\t\r\u{8}\u{c}\u{1}\u{7f}é€😀/");
        assert_eq!(
            dumps(&v),
            r#""a\"b\\c\n\t\r\b\f\u0001\u007f\u00e9\u20ac\ud83d\ude00/""#
        );
    }

    #[test]
    fn integers_stay_integers() {
        let v: Value = serde_json::from_str(r#"[100, 100.0, -3, 18446744073709551615]"#).unwrap();
        assert_eq!(dumps(&v), "[100, 100.0, -3, 18446744073709551615]");
    }
}
