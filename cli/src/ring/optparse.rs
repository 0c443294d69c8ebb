//! Option parsing the way Python's `optparse` does it, for `swift-ring-builder` compatibility.
//!
//! Operators' scripts depend on optparse's exact behaviour: options and positional arguments
//! may be interleaved (`rebalance 1 --force`), long options may be abbreviated to any unique
//! prefix (`--recalc`), `--opt=value` and `--opt value` are the same, short options cluster
//! (`-fv`) and take their value attached or as the next word (`-r1`, `-r 1`), `--` ends option
//! processing, and anything that looks like an option but is not one is an error
//! (`add r1z1-… -5` fails with `no such option: -5`). clap cannot reproduce these rules (nor
//! its error texts), so the ring command parses its arguments with this small parser and keeps
//! clap for the outer command line, completions and the man page.

use std::collections::BTreeMap;

/// What an option takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Flag,
    Int,
    Float,
    Str,
    Choice(&'static [&'static str]),
}

/// One option: `-u/--id`.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub short: Option<char>,
    pub long: &'static str,
    pub kind: Kind,
}

impl Spec {
    pub const fn new(short: Option<char>, long: &'static str, kind: Kind) -> Spec {
        Spec { short, long, kind }
    }

    /// optparse's `dest`: the long name without dashes, `-` turned into `_`.
    fn dest(&self) -> String {
        self.long.trim_start_matches('-').replace('-', "_")
    }
}

/// A parsed option value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Flag,
    Int(i64),
    Float(f64),
    Str(String),
}

/// Options (by dest; the last occurrence wins, as in optparse) and positional arguments.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub values: BTreeMap<String, Value>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn flag(&self, dest: &str) -> bool {
        matches!(self.values.get(dest), Some(Value::Flag))
    }

    pub fn int(&self, dest: &str) -> Option<i64> {
        match self.values.get(dest) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn float(&self, dest: &str) -> Option<f64> {
        match self.values.get(dest) {
            Some(Value::Float(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn str(&self, dest: &str) -> Option<&str> {
        match self.values.get(dest) {
            Some(Value::Str(v)) => Some(v.as_str()),
            _ => None,
        }
    }
}

/// A usage error, worded as optparse words it (the caller prints the usage around it).
#[derive(Clone, Debug, PartialEq)]
pub struct UsageError(pub String);

fn py_quote(s: &str) -> String {
    ringsmith::builder::syntax::py_repr(s)
}

fn convert(spec: &Spec, shown: &str, raw: &str) -> Result<Value, UsageError> {
    match spec.kind {
        Kind::Flag => Ok(Value::Flag),
        Kind::Int => raw.trim().parse::<i64>().map(Value::Int).map_err(|_| {
            UsageError(format!(
                "option {shown}: invalid integer value: {}",
                py_quote(raw)
            ))
        }),
        Kind::Float => ringsmith::builder::syntax::parse_py_float(raw)
            .map(Value::Float)
            .map_err(|_| {
                UsageError(format!(
                    "option {shown}: invalid floating-point value: {}",
                    py_quote(raw)
                ))
            }),
        Kind::Str => Ok(Value::Str(raw.to_string())),
        Kind::Choice(choices) => {
            if choices.contains(&raw) {
                Ok(Value::Str(raw.to_string()))
            } else {
                let listed: Vec<String> = choices.iter().map(|c| py_quote(c)).collect();
                Err(UsageError(format!(
                    "option {shown}: invalid choice: {} (choose from {})",
                    py_quote(raw),
                    listed.join(", ")
                )))
            }
        }
    }
}

fn match_long<'a>(specs: &'a [Spec], name: &str) -> Result<&'a Spec, UsageError> {
    if let Some(exact) = specs.iter().find(|s| s.long == name) {
        return Ok(exact);
    }
    let candidates: Vec<&Spec> = specs.iter().filter(|s| s.long.starts_with(name)).collect();
    match candidates.len() {
        0 => Err(UsageError(format!("no such option: {name}"))),
        1 => Ok(candidates[0]),
        _ => {
            let names: Vec<&str> = candidates.iter().map(|s| s.long).collect();
            Err(UsageError(format!(
                "ambiguous option: {name} ({}?)",
                names.join(", ")
            )))
        }
    }
}

/// Parses `argv` against `specs` with optparse's rules.
pub fn parse(specs: &[Spec], argv: &[String]) -> Result<Parsed, UsageError> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if arg == "--" {
            parsed.args.extend(argv[i..].iter().cloned());
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let spec = match_long(specs, &name)?;
            let value = if spec.kind == Kind::Flag {
                if inline.is_some() {
                    return Err(UsageError(format!(
                        "{} option does not take a value",
                        spec.long
                    )));
                }
                Value::Flag
            } else {
                let raw = match inline {
                    Some(v) => v,
                    None => {
                        if i >= argv.len() {
                            return Err(UsageError(format!(
                                "{} option requires 1 argument",
                                spec.long
                            )));
                        }
                        i += 1;
                        argv[i - 1].clone()
                    }
                };
                convert(spec, spec.long, &raw)?
            };
            parsed.values.insert(spec.dest(), value);
        } else if arg.len() > 1 && arg.starts_with('-') {
            let chars: Vec<char> = arg[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let shown = format!("-{c}");
                let Some(spec) = specs.iter().find(|s| s.short == Some(c)) else {
                    return Err(UsageError(format!("no such option: {shown}")));
                };
                if spec.kind == Kind::Flag {
                    parsed.values.insert(spec.dest(), Value::Flag);
                    continue;
                }
                let raw = if j < chars.len() {
                    let attached: String = chars[j..].iter().collect();
                    j = chars.len();
                    attached
                } else {
                    if i >= argv.len() {
                        return Err(UsageError(format!("{shown} option requires 1 argument")));
                    }
                    i += 1;
                    argv[i - 1].clone()
                };
                let value = convert(spec, &shown, &raw)?;
                parsed.values.insert(spec.dest(), value);
            }
        } else {
            parsed.args.push(arg.clone());
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[Spec] = &[
        Spec::new(Some('r'), "--region", Kind::Int),
        Spec::new(Some('j'), "--replication-ip", Kind::Str),
        Spec::new(Some('q'), "--replication-port", Kind::Int),
        Spec::new(Some('w'), "--weight", Kind::Float),
        Spec::new(Some('y'), "--yes", Kind::Flag),
        Spec::new(None, "--format-version", Kind::Choice(&["1", "2"])),
    ];

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn interleaved_clustered_and_abbreviated() {
        let p = parse(
            SPECS,
            &argv(&[
                "d1",
                "-yr2",
                "--weight=3.5",
                "x",
                "--replication-p",
                "7",
                "--",
                "-z",
            ]),
        )
        .unwrap();
        assert!(p.flag("yes"));
        assert_eq!(p.int("region"), Some(2));
        assert_eq!(p.float("weight"), Some(3.5));
        assert_eq!(p.int("replication_port"), Some(7));
        assert_eq!(p.args, argv(&["d1", "x", "-z"]));
    }

    #[test]
    fn optparse_error_texts() {
        let e = |a: &[&str]| parse(SPECS, &argv(a)).unwrap_err().0;
        assert_eq!(e(&["a", "-5"]), "no such option: -5");
        assert_eq!(e(&["--bogus"]), "no such option: --bogus");
        assert_eq!(
            e(&["--rep", "x"]),
            "ambiguous option: --rep (--replication-ip, --replication-port?)"
        );
        assert_eq!(e(&["-r", "x"]), "option -r: invalid integer value: 'x'");
        assert_eq!(e(&["--weight"]), "--weight option requires 1 argument");
        assert_eq!(
            e(&["--format-version=3"]),
            "option --format-version: invalid choice: '3' (choose from '1', '2')"
        );
        assert_eq!(e(&["--yes=1"]), "--yes option does not take a value");
    }
}
