//! Swift-style `.conf` files (paste.deploy INI): sections, `key = value`, `[DEFAULT]`
//! values inherited by every section, and `set key = value` overrides inside a section.
//!
//! Reading an operator's existing Swift configs is the point, so the parser is lenient
//! about layout (comments, blank lines, continuation-free values) and strict about values:
//! a value that does not parse is a startup error naming the file, section and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path} [{section}] {key}: {message}")]
    Value {
        path: PathBuf,
        section: String,
        key: String,
        message: String,
    },
    #[error("{path}: no section [{section}]")]
    MissingSection { path: PathBuf, section: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A parsed configuration file.
#[derive(Clone, Debug, Default)]
pub struct Conf {
    pub path: PathBuf,
    defaults: BTreeMap<String, String>,
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

/// One section with `[DEFAULT]` merged under it.
#[derive(Clone, Debug)]
pub struct Section {
    pub path: PathBuf,
    pub name: String,
    pub values: BTreeMap<String, String>,
}

impl Conf {
    /// Reads a config file, or a directory of them as Swift's `readconf` does
    /// (`object-server.conf.d/`): every `*.conf` not starting with `.`, in lexical order,
    /// merged into one, a later file's value winning.
    pub fn load(path: &Path) -> Result<Conf, ConfError> {
        let io = |source| ConfError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !path.is_dir() {
            let text = std::fs::read_to_string(path).map_err(io)?;
            return Conf::parse(&text, path);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(".conf") && !name.starts_with('.')
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ConfError::Invalid {
                path: path.to_path_buf(),
                message: "Unable to read config from a directory without *.conf files".into(),
            });
        }
        let mut conf = Conf {
            path: path.to_path_buf(),
            ..Conf::default()
        };
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| ConfError::Io {
                path: file.clone(),
                source,
            })?;
            conf.read_text(&text, &file)?;
        }
        Ok(conf)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Conf, ConfError> {
        let mut conf = Conf {
            path: path.to_path_buf(),
            ..Conf::default()
        };
        conf.read_text(text, path)?;
        Ok(conf)
    }

    /// Adds one file's sections and keys to this config (Python's `ConfigParser.read`
    /// of several files: sections merge, later values win). An indented line continues
    /// the previous key's value, as in `ConfigParser`.
    fn read_text(&mut self, text: &str, path: &Path) -> Result<(), ConfError> {
        let conf = self;
        let mut current: Option<String> = None;
        let mut last_key: Option<String> = None;
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let indented = raw.starts_with([' ', '\t']);
            if let (true, Some(section), Some(key)) = (indented, &current, &last_key) {
                let values = if section == "DEFAULT" {
                    &mut conf.defaults
                } else {
                    conf.sections.entry(section.clone()).or_default()
                };
                if let Some(v) = values.get_mut(key) {
                    if !v.is_empty() {
                        v.push('\n');
                    }
                    v.push_str(line);
                    continue;
                }
            }
            last_key = None;
            if let Some(rest) = line.strip_prefix('[') {
                let Some(name) = rest.strip_suffix(']') else {
                    return Err(ConfError::Syntax {
                        path: path.to_path_buf(),
                        line: idx + 1,
                        message: format!("unterminated section header {line:?}"),
                    });
                };
                let name = name.trim().to_string();
                if name != "DEFAULT" {
                    conf.sections.entry(name.clone()).or_default();
                }
                current = Some(name);
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                return Err(ConfError::Syntax {
                    path: path.to_path_buf(),
                    line: idx + 1,
                    message: format!("expected 'key = value', found {line:?}"),
                });
            };
            let Some(section) = current.as_deref() else {
                return Err(ConfError::Syntax {
                    path: path.to_path_buf(),
                    line: idx + 1,
                    message: "key outside of any section".into(),
                });
            };
            let mut key = key.trim();
            // paste.deploy's `set key = value` overrides a [DEFAULT] value in this section.
            if let Some(k) = key.strip_prefix("set ") {
                key = k.trim();
            }
            let value = value.trim().to_string();
            last_key = Some(key.to_string());
            if section == "DEFAULT" {
                conf.defaults.insert(key.to_string(), value);
            } else {
                conf.sections
                    .get_mut(section)
                    .expect("section created at its header")
                    .insert(key.to_string(), value);
            }
        }
        Ok(())
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }

    /// The keys written in a section itself, without `[DEFAULT]`, sorted by key (a
    /// later duplicate wins, as in Python's `ConfigParser`).
    pub fn own_section(&self, name: &str) -> Vec<(String, String)> {
        self.sections
            .get(name)
            .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// `[DEFAULT]` alone.
    pub fn defaults(&self) -> Section {
        Section {
            path: self.path.clone(),
            name: "DEFAULT".into(),
            values: self.defaults.clone(),
        }
    }

    /// The named section over `[DEFAULT]`; an absent section is just the defaults.
    pub fn section(&self, name: &str) -> Section {
        let mut values = self.defaults.clone();
        if let Some(s) = self.sections.get(name) {
            values.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Section {
            path: self.path.clone(),
            name: name.to_string(),
            values,
        }
    }

    /// Like [`Conf::section`] but an error when the section is missing.
    pub fn require_section(&self, name: &str) -> Result<Section, ConfError> {
        if !self.has_section(name) {
            return Err(ConfError::MissingSection {
                path: self.path.clone(),
                section: name.to_string(),
            });
        }
        Ok(self.section(name))
    }
}

/// Swift's `config_true_value`.
pub fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on" | "t" | "y"
    )
}

/// The values Swift reads as false (`config_false_value`).
pub fn is_false(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "false" | "0" | "no" | "off" | "f" | "n"
    )
}

/// Swift's `list_from_csv`: comma-separated, trimmed, empty items dropped.
pub fn list_from_csv(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

impl Section {
    fn err(&self, key: &str, message: String) -> ConfError {
        ConfError::Value {
            path: self.path.clone(),
            section: self.name.clone(),
            key: key.to_string(),
            message,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn str_or(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if is_true(v) => Ok(true),
            Some(v) if is_false(v) => Ok(false),
            Some(v) => Err(self.err(key, format!("invalid boolean {v:?}"))),
        }
    }

    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, ConfError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| self.err(key, format!("invalid value {v:?}: {e}"))),
        }
    }

    /// Keys present in this section (or `[DEFAULT]`) that `known` does not list.
    pub fn unknown_keys<'a>(&'a self, known: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.values
            .keys()
            .map(String::as_str)
            .filter(move |k| !known.contains(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = 6200
mount_check = false
workers = 1
log_level = INFO

[pipeline:main]
pipeline = recon object-server

[app:object-server]
use = egg:swift#object
set log_level = DEBUG

[object-replicator]
concurrency = 4
";

    #[test]
    fn defaults_flow_into_sections_and_set_overrides() {
        let c = Conf::parse(SAMPLE, Path::new("object-server.conf")).unwrap();
        let app = c.section("app:object-server");
        assert_eq!(app.get("bind_port"), Some("6200"));
        assert_eq!(app.get("log_level"), Some("DEBUG"));
        assert_eq!(app.parse_or::<u16>("bind_port", 0).unwrap(), 6200);
        assert!(!app.bool_or("mount_check", true).unwrap());
        let rep = c.section("object-replicator");
        assert_eq!(rep.parse_or::<u32>("concurrency", 1).unwrap(), 4);
        assert_eq!(rep.get("log_level"), Some("INFO"));
    }

    #[test]
    fn bad_values_name_file_section_and_key() {
        let c = Conf::parse("[DEFAULT]\nbind_port = sixty\n", Path::new("x.conf")).unwrap();
        let e = c.defaults().parse_or::<u16>("bind_port", 0).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("x.conf") && msg.contains("bind_port") && msg.contains("sixty"),
            "{msg}"
        );
        let e = Conf::parse("[DEFAULT\n", Path::new("y.conf")).unwrap_err();
        assert!(e.to_string().contains("y.conf:1"));
        let e = Conf::parse("[a]\njunk\n", Path::new("z.conf")).unwrap_err();
        assert!(e.to_string().contains("z.conf:2"));
    }

    #[test]
    fn indented_lines_continue_a_value() {
        let c = Conf::parse(
            "[pipeline:main]\npipeline = catch_errors\n    tempauth\n\tproxy-server\n# c\nx = 1\n",
            Path::new("p.conf"),
        )
        .unwrap();
        let s = c.section("pipeline:main");
        assert_eq!(
            s.get("pipeline"),
            Some("catch_errors\ntempauth\nproxy-server")
        );
        assert_eq!(s.get("x"), Some("1"));
    }

    #[test]
    fn a_conf_d_directory_merges_its_files_in_lexical_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("object-server.conf.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("00_base.conf"), SAMPLE).unwrap();
        std::fs::write(
            d.join("20_port.conf"),
            "[DEFAULT]\nbind_port = 6210\n[object-replicator]\nconcurrency = 8\n",
        )
        .unwrap();
        std::fs::write(d.join(".10_hidden.conf"), "[DEFAULT]\nbind_port = 1\n").unwrap();
        std::fs::write(d.join("30_notes.txt"), "not a config").unwrap();
        let c = Conf::load(&d).unwrap();
        assert_eq!(c.defaults().get("bind_port"), Some("6210"));
        assert_eq!(c.section("object-replicator").get("concurrency"), Some("8"));
        assert_eq!(
            c.section("app:object-server").get("log_level"),
            Some("DEBUG")
        );
        let empty = dir.path().join("empty.conf.d");
        std::fs::create_dir(&empty).unwrap();
        assert!(Conf::load(&empty)
            .unwrap_err()
            .to_string()
            .contains("*.conf"));
    }
}
