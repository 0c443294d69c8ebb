//! The proxy's request stack, built from `[pipeline:main]` as paste.deploy builds Swift's.
//!
//! `pipeline = catch_errors gatekeeper tempauth copy dlo proxy-server` names filters and,
//! last, the app. Each filter name is a section `[filter:NAME]` whose `use = egg:swift#X`
//! picks the middleware (so one middleware may appear twice, as `proxy-logging` does, with
//! its own options each time). The stack is assembled from the app outwards: every filter
//! wraps everything to its right, and may answer a request itself, change it on the way
//! down, change the answer on the way up, or make subrequests of its own to what it wraps
//! (an SLO GET asks for each segment that way).
//!
//! Like Swift's proxy, the stack always holds the filters the proxy cannot be correct
//! without: `catch_errors`, `gatekeeper`, `listing_formats`, `copy`, `dlo` and
//! `versioned_writes` are inserted where Swift inserts them when the pipeline leaves them
//! out. A name that is no known middleware, a missing section, or an option with a bad
//! value stops the proxy at start with a message naming the filter and the option.
//!
//! Each filter registers what it offers in `/info` while the stack is built
//! ([`InfoRegistry`]), so `/info` lists exactly what is loaded.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::response::Response;
use ringsmith::swift::conf::{Conf, ConfError, Section};
use ringsmith::swift::SwiftConf;
use serde_json::{Map, Value};

use super::StartError;

/// A response still being computed; borrows the handler it came from.
pub type ResponseFuture<'a> = Pin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// One layer of the stack, or the app at its bottom.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, req: Request) -> ResponseFuture<'_>;
}

/// A shared handle on a (sub)stack: what a middleware wraps and sends its subrequests to.
pub type App = Arc<dyn Handler>;

/// What `/info` says about the loaded middlewares, filled in while the stack is built.
#[derive(Clone, Default)]
pub struct InfoRegistry {
    sections: Arc<Mutex<Map<String, Value>>>,
}

impl InfoRegistry {
    /// Swift's `register_swift_info(name, **settings)`: merges into the section.
    pub fn register(&self, name: &str, settings: Value) {
        let mut sections = self.sections.lock().expect("info registry");
        let entry = sections
            .entry(name.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let (Value::Object(have), Value::Object(add)) = (entry, settings) {
            have.extend(add);
        }
    }

    pub fn snapshot(&self) -> Map<String, Value> {
        self.sections.lock().expect("info registry").clone()
    }
}

/// What a filter's constructor gets: its own options (with `[DEFAULT]`), the cluster's
/// `swift.conf`, the `/info` registry, and the stack it wraps.
pub struct FilterContext<'a> {
    /// The name in the pipeline (`proxy-logging`), which may differ from the middleware's.
    pub name: &'a str,
    pub section: Section,
    pub swift: &'a SwiftConf,
    pub info: &'a InfoRegistry,
    /// The proxy app's options, which some middlewares read as Swift's do.
    pub app_section: &'a Section,
    /// The proxy app itself, for the account and container info it caches (Swift's
    /// `get_account_info`/`get_container_info`).
    pub proxy: &'a Arc<super::Proxy>,
}

impl FilterContext<'_> {
    /// A config error naming this filter's section and the option.
    pub fn bad_option(&self, key: &str, message: impl Into<String>) -> ConfError {
        ConfError::Value {
            path: self.section.path.clone(),
            section: self.section.name.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// A middleware Ringsmith can load: its `egg:swift#` name and its constructor.
pub struct Middleware {
    pub egg: &'static str,
    pub build: fn(&FilterContext<'_>, App) -> Result<App, ConfError>,
}

/// Swift's required filters, in its order, with the filters each must come after when it
/// has to be inserted.
fn required_filters(pipe: &[(String, String)]) -> Vec<(&'static str, Vec<&'static str>)> {
    const AUTH_AND_UP: [&str; 5] = [
        "tempauth",
        "keystoneauth",
        "catch_errors",
        "gatekeeper",
        "proxy_logging",
    ];
    let starts_with_catch_errors = pipe.first().is_some_and(|(_, egg)| egg == "catch_errors");
    let mut copy_after = vec!["staticweb"];
    copy_after.extend(AUTH_AND_UP);
    let mut dlo_after = vec!["copy", "staticweb"];
    dlo_after.extend(AUTH_AND_UP);
    let mut vw_after = vec!["slo", "dlo", "copy", "staticweb"];
    vw_after.extend(AUTH_AND_UP);
    vec![
        ("catch_errors", vec![]),
        (
            "gatekeeper",
            if starts_with_catch_errors {
                vec!["catch_errors"]
            } else {
                vec![]
            },
        ),
        (
            "listing_formats",
            vec!["catch_errors", "gatekeeper", "proxy_logging", "memcache"],
        ),
        ("copy", copy_after),
        ("dlo", dlo_after),
        ("versioned_writes", vw_after),
    ]
}

/// The middleware a filter section loads: `use = egg:swift#NAME`.
fn egg_of(conf: &Conf, filter: &str) -> Result<String, ConfError> {
    let section_name = format!("filter:{filter}");
    if !conf.has_section(&section_name) {
        return Err(ConfError::Invalid {
            path: conf.path.clone(),
            message: format!(
                "pipeline names filter {filter:?}, but there is no section [{section_name}]"
            ),
        });
    }
    let section = conf.section(&section_name);
    // keystonemiddleware's filter is loaded by its factory, as paste.deploy loads it.
    if let Some(factory) = section.get("paste.filter_factory") {
        return match factory.trim() {
            "keystonemiddleware.auth_token:filter_factory" => Ok("authtoken".to_string()),
            other => Err(section_err(
                &section,
                "paste.filter_factory",
                &format!(
                    "{other:?}: the only factory Ringsmith provides is \
                     keystonemiddleware.auth_token:filter_factory"
                ),
            )),
        };
    }
    let Some(spec) = section.get("use") else {
        return Err(section_err(&section, "use", "missing (egg:swift#NAME)"));
    };
    let spec = spec.trim();
    if spec == "egg:keystonemiddleware#auth_token" {
        return Ok("authtoken".to_string());
    }
    match spec.strip_prefix("egg:swift#") {
        Some(egg) if !egg.is_empty() => Ok(egg.to_string()),
        _ => Err(section_err(
            &section,
            "use",
            &format!("{spec:?}: Ringsmith loads Swift's middlewares, egg:swift#NAME"),
        )),
    }
}

fn section_err(section: &Section, key: &str, message: &str) -> ConfError {
    ConfError::Value {
        path: section.path.clone(),
        section: section.name.clone(),
        key: key.to_string(),
        message: message.to_string(),
    }
}

/// The pipeline's filters as `(name, egg)` pairs, with Swift's required filters inserted.
/// The last word of `pipeline` (the app) is checked by the caller.
pub fn resolve(conf: &Conf) -> Result<(Vec<(String, String)>, String), ConfError> {
    let pipeline = conf.section("pipeline:main");
    let words: Vec<String> = pipeline
        .get("pipeline")
        .map(|p| p.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let Some((app, filters)) = words.split_last() else {
        return Err(ConfError::Invalid {
            path: conf.path.clone(),
            message: "no [pipeline:main] with a `pipeline = ... proxy-server` line".into(),
        });
    };
    let mut pipe = Vec::new();
    for f in filters {
        pipe.push((f.clone(), egg_of(conf, f)?));
    }
    for (name, after) in required_filters(&pipe).into_iter().rev() {
        if pipe.iter().any(|(_, egg)| egg == name) {
            continue;
        }
        let at = after
            .iter()
            .filter_map(|a| pipe.iter().position(|(_, egg)| egg == a))
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        tracing::info!("adding required filter {name} to the pipeline at position {at}");
        pipe.insert(at, (name.to_string(), name.to_string()));
    }
    Ok((pipe, app.clone()))
}

/// Builds the stack over `app` from the resolved pipeline.
pub fn build(
    conf: &Conf,
    pipe: &[(String, String)],
    swift: &SwiftConf,
    info: &InfoRegistry,
    registry: &[Middleware],
    proxy: &Arc<super::Proxy>,
    app: App,
) -> Result<App, StartError> {
    let app_section = conf.section("app:proxy-server");
    let mut stack = app;
    for (name, egg) in pipe.iter().rev() {
        let Some(mw) = registry.iter().find(|m| m.egg == egg) else {
            let known: Vec<&str> = registry.iter().map(|m| m.egg).collect();
            return Err(StartError::Other(format!(
                "{}: filter {name:?} uses egg:swift#{egg}, which Ringsmith does not provide \
                 (it provides: {})",
                conf.path.display(),
                known.join(" ")
            )));
        };
        let section = conf.section(&format!("filter:{name}"));
        let ctx = FilterContext {
            name,
            section,
            swift,
            info,
            app_section: &app_section,
            proxy,
        };
        stack = (mw.build)(&ctx, stack)?;
    }
    Ok(stack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn conf(text: &str) -> Conf {
        Conf::parse(text, Path::new("proxy-server.conf")).unwrap()
    }

    fn names(pipe: &[(String, String)]) -> Vec<&str> {
        pipe.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn required_filters_go_where_swift_puts_them() {
        let c = conf(
            "[pipeline:main]\npipeline = catch_errors tempauth proxy-server\n\
             [filter:catch_errors]\nuse = egg:swift#catch_errors\n\
             [filter:tempauth]\nuse = egg:swift#tempauth\n",
        );
        let (pipe, app) = resolve(&c).unwrap();
        assert_eq!(app, "proxy-server");
        assert_eq!(
            names(&pipe),
            [
                "catch_errors",
                "gatekeeper",
                "listing_formats",
                "tempauth",
                "copy",
                "dlo",
                "versioned_writes"
            ]
        );
    }

    #[test]
    fn a_bare_pipeline_gets_every_required_filter_in_order() {
        let c = conf("[pipeline:main]\npipeline = proxy-server\n");
        let (pipe, _) = resolve(&c).unwrap();
        assert_eq!(
            names(&pipe),
            [
                "catch_errors",
                "gatekeeper",
                "listing_formats",
                "copy",
                "dlo",
                "versioned_writes"
            ]
        );
    }

    #[test]
    fn filters_are_matched_by_egg_not_by_section_name() {
        let c = conf(
            "[pipeline:main]\npipeline = errors proxy-logging proxy-logging2 proxy-server\n\
             [filter:errors]\nuse = egg:swift#catch_errors\n\
             [filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\
             [filter:proxy-logging2]\nuse = egg:swift#proxy_logging\n",
        );
        let (pipe, _) = resolve(&c).unwrap();
        assert_eq!(pipe[0], ("errors".to_string(), "catch_errors".to_string()));
        assert_eq!(names(&pipe)[1], "gatekeeper");
        assert_eq!(names(&pipe)[2..4], ["proxy-logging", "listing_formats"]);
    }

    #[test]
    fn a_missing_section_or_foreign_egg_is_named() {
        let c = conf("[pipeline:main]\npipeline = nosuch proxy-server\n");
        let e = resolve(&c).unwrap_err().to_string();
        assert!(
            e.contains("\"nosuch\"") && e.contains("[filter:nosuch]"),
            "{e}"
        );
        let c = conf(
            "[pipeline:main]\npipeline = x proxy-server\n\
             [filter:x]\npaste.filter_factory = other.module:filter_factory\n",
        );
        let e = resolve(&c).unwrap_err().to_string();
        assert!(e.contains("paste.filter_factory"), "{e}");
        let c =
            conf("[pipeline:main]\npipeline = x proxy-server\n[filter:x]\nuse = egg:other#thing\n");
        let e = resolve(&c).unwrap_err().to_string();
        assert!(e.contains("[filter:x]") && e.contains("use"), "{e}");
        let c = conf("[app:proxy-server]\n");
        assert!(resolve(&c).unwrap_err().to_string().contains("pipeline"));
    }

    #[test]
    fn keystone_filters_load_by_factory_and_egg() {
        let c = conf(
            "[pipeline:main]\npipeline = catch_errors authtoken keystoneauth proxy-server\n\
             [filter:catch_errors]\nuse = egg:swift#catch_errors\n\
             [filter:authtoken]\n\
             paste.filter_factory = keystonemiddleware.auth_token:filter_factory\n\
             [filter:keystoneauth]\nuse = egg:swift#keystoneauth\n",
        );
        let (pipe, _) = resolve(&c).unwrap();
        assert_eq!(
            pipe.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(),
            [
                "catch_errors",
                "gatekeeper",
                "listing_formats",
                "authtoken",
                "keystoneauth",
                "copy",
                "dlo",
                "versioned_writes"
            ]
        );
    }

    #[test]
    fn info_sections_merge() {
        let r = InfoRegistry::default();
        r.register("slo", serde_json::json!({"max_manifest_segments": 1000}));
        r.register("slo", serde_json::json!({"min_segment_size": 1}));
        let s = r.snapshot();
        assert_eq!(s["slo"]["max_manifest_segments"], 1000);
        assert_eq!(s["slo"]["min_segment_size"], 1);
    }
}
