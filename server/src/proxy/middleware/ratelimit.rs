//! ratelimit as Swift 2.38.3 does it: writes to an account's containers
//! (`account_ratelimit`), writes to objects of a container by its size
//! (`container_ratelimit_<size>`), and container listings by size
//! (`container_listing_ratelimit_<size>`), in requests per second, with rates between the
//! configured sizes interpolated. A request over the rate sleeps until its turn; one that
//! would sleep `max_sleep_time_seconds` or more gets `498 Rate Limited`. Blacklisted
//! accounts (`account_blacklist`, or `X-Account-Sysmeta-Global-Write-Ratelimit:
//! BLACKLIST`) get `497 Blacklisted` after a second; whitelisted ones are never limited.
//!
//! The counters are Swift's: per key, the time (in 1/`clock_accuracy` seconds) at which
//! the next request may run, advanced by one request's share on every request with an
//! `incr` of the shared cache, so proxies on one memcached limit together. A cache that
//! cannot count lets the request through.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use ringsmith::swift::conf::ConfError;

use crate::proxy::backend::set;
use crate::proxy::env::ApiPath;
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::Proxy;

/// How long a blacklisted account waits for its 497 (Swift's `BLACK_LIST_SLEEP`).
const BLACKLIST_SLEEP: Duration = Duration::from_secs(1);

/// A rate by container size: from `size` on, `rate` at `size` along the line to the next.
#[derive(Clone, Debug, PartialEq)]
struct SizeRate {
    size: u64,
    rate: f64,
    slope: f64,
}

#[derive(Clone, Debug)]
pub struct RateLimitOptions {
    account_ratelimit: f64,
    max_sleep_time_seconds: f64,
    log_sleep_time_seconds: f64,
    clock_accuracy: f64,
    rate_buffer_seconds: f64,
    whitelist: Vec<String>,
    blacklist: Vec<String>,
    container_rates: Vec<SizeRate>,
    listing_rates: Vec<SizeRate>,
}

pub struct RateLimit {
    next: App,
    proxy: Arc<Proxy>,
    opts: RateLimitOptions,
}

/// Rates by size, and the `[size, rate]` pairs `/info` lists.
type SizeRates = (Vec<SizeRate>, Vec<(u64, f64)>);

/// Swift's `interpret_conf_limits`: `<prefix><size> = <rate>` options, sorted by size,
/// each with the slope to the next. Also the `[size, rate]` pairs for `/info`.
fn size_rates(ctx: &FilterContext<'_>, prefix: &str) -> Result<SizeRates, ConfError> {
    let mut pairs = Vec::new();
    for (key, value) in &ctx.section.values {
        let Some(size) = key.strip_prefix(prefix) else {
            continue;
        };
        let size: u64 = size
            .parse()
            .map_err(|_| ctx.bad_option(key, format!("{size:?} is not a container size")))?;
        let rate: f64 = value
            .trim()
            .parse()
            .map_err(|_| ctx.bad_option(key, format!("{value:?} is not a rate")))?;
        pairs.push((size, rate));
    }
    pairs.sort_by(|a, b| a.partial_cmp(b).expect("rates are numbers"));
    let rates = pairs
        .iter()
        .enumerate()
        .map(|(i, &(size, rate))| {
            let slope = match pairs.get(i + 1) {
                Some(&(next_size, next_rate)) => (next_rate - rate) / (next_size - size) as f64,
                None => 0.0,
            };
            SizeRate { size, rate, slope }
        })
        .collect();
    Ok((rates, pairs))
}

/// Swift's `get_maxrate`: the rate for a container of `size` objects, `None` below the
/// smallest configured size (and for an empty container).
fn max_rate(rates: &[SizeRate], size: u64) -> Option<f64> {
    if size == 0 {
        return None;
    }
    let last = rates.iter().take_while(|r| size >= r.size).last()?;
    Some((size - last.size) as f64 * last.slope + last.rate)
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let s = &ctx.section;
    let list = |k: &str| -> Vec<String> {
        s.get(k)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (container_rates, container_info) = size_rates(ctx, "container_ratelimit_")?;
    let (listing_rates, listing_info) = size_rates(ctx, "container_listing_ratelimit_")?;
    let clock_accuracy: u64 = s.parse_or("clock_accuracy", 1000)?;
    if clock_accuracy == 0 {
        return Err(ctx.bad_option("clock_accuracy", "must be positive"));
    }
    let opts = RateLimitOptions {
        account_ratelimit: s.parse_or("account_ratelimit", 0.0)?,
        max_sleep_time_seconds: s.parse_or("max_sleep_time_seconds", 60.0)?,
        log_sleep_time_seconds: s.parse_or("log_sleep_time_seconds", 0.0)?,
        clock_accuracy: clock_accuracy as f64,
        rate_buffer_seconds: s.parse_or::<u64>("rate_buffer_seconds", 5)? as f64,
        whitelist: list("account_whitelist"),
        blacklist: list("account_blacklist"),
        container_rates,
        listing_rates,
    };
    ctx.info.register(
        "ratelimit",
        serde_json::json!({
            "account_ratelimit": opts.account_ratelimit,
            "max_sleep_time_seconds": opts.max_sleep_time_seconds,
            "container_ratelimits": container_info,
            "container_listing_ratelimits": listing_info,
        }),
    );
    Ok(Arc::new(RateLimit {
        next,
        proxy: ctx.proxy.clone(),
        opts,
    }))
}

impl RateLimit {
    /// The counters this request counts against, with their rates, in Swift's order.
    async fn keys(
        &self,
        method: &Method,
        path: &ApiPath,
        global_write: Option<&str>,
    ) -> Vec<(String, f64)> {
        let write = matches!(method.as_str(), "PUT" | "DELETE" | "POST" | "COPY");
        let a = &path.account;
        let mut keys = Vec::new();
        match (&path.container, &path.object) {
            (Some(_), None) if self.opts.account_ratelimit > 0.0 => {
                if matches!(*method, Method::PUT | Method::DELETE) {
                    keys.push((format!("ratelimit/{a}"), self.opts.account_ratelimit));
                }
            }
            _ => {}
        }
        match (&path.container, &path.object) {
            (Some(c), Some(_)) if write => {
                let size = self.proxy.container_info(a, c).await.object_count;
                if let Some(rate) = max_rate(&self.opts.container_rates, size) {
                    keys.push((format!("ratelimit/{a}/{c}"), rate));
                }
            }
            (Some(c), None) if *method == Method::GET => {
                let size = self.proxy.container_info(a, c).await.object_count;
                if let Some(rate) = max_rate(&self.opts.listing_rates, size) {
                    keys.push((format!("ratelimit_listing/{a}/{c}"), rate));
                }
            }
            _ => {}
        }
        if write {
            if let Some(rate) = global_write.and_then(|g| g.trim().parse::<f64>().ok()) {
                if rate > 0.0 {
                    keys.push((format!("ratelimit/global-write/{a}"), rate));
                }
            }
        }
        keys
    }

    /// Swift's `_get_sleep_time`: takes this request's turn on `key`; how long to wait
    /// for it, or (as the error) the wait that would pass `max_sleep_time_seconds`, whose
    /// turn is then given back.
    async fn take_turn(&self, key: &str, max_rate: f64) -> Result<f64, f64> {
        let acc = self.opts.clock_accuracy;
        let cache = self.proxy.cache();
        let now_m = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            * acc)
            .round() as i64;
        let per_request_m = (acc / max_rate).round() as i64;
        let Ok(running_m) = cache.incr(key, per_request_m, 0).await else {
            return Ok(0.0);
        };
        let running_m = running_m as i64;
        let mut sleep_m = 0;
        if now_m - running_m > (self.opts.rate_buffer_seconds * acc) as i64 {
            // Idle for longer than the buffer: start counting from now.
            let next_available = serde_json::Value::from(now_m + per_request_m);
            let _ = cache.set(key, &next_available, 0).await;
        } else {
            sleep_m = (running_m - now_m - per_request_m).max(0);
        }
        let max_sleep_m = self.opts.max_sleep_time_seconds * acc;
        if max_sleep_m - sleep_m as f64 <= acc * 0.01 {
            let _ = cache.incr(key, -per_request_m, 0).await;
            return Err(sleep_m as f64 / acc);
        }
        Ok(sleep_m as f64 / acc)
    }
}

fn answer(code: u16, reason: &'static str, body: &'static str) -> Response {
    let mut r = crate::proxy::text(
        StatusCode::from_u16(code).expect("a valid status code"),
        body,
    );
    set(r.headers_mut(), "content-type", "text/html; charset=UTF-8");
    r.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
    r
}

impl Handler for RateLimit {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()) else {
                return self.next.call(req).await;
            };
            let method = req.method().clone();
            let global_write = self
                .proxy
                .account_info(&path.account)
                .await
                .sysmeta
                .get("global-write-ratelimit")
                .cloned();
            let account = path.account.as_str();
            if self.opts.whitelist.iter().any(|a| a == account)
                || global_write.as_deref() == Some("WHITELIST")
            {
                return self.next.call(req).await;
            }
            if self.opts.blacklist.iter().any(|a| a == account)
                || global_write.as_deref() == Some("BLACKLIST")
            {
                tracing::error!("Returning 497 because of blacklisting: {account}");
                tokio::time::sleep(BLACKLIST_SLEEP).await;
                return answer(497, "Blacklisted", "Your account has been blacklisted");
            }
            for (key, rate) in self.keys(&method, &path, global_write.as_deref()).await {
                match self.take_turn(&key, rate).await {
                    Ok(sleep) => {
                        if self.opts.log_sleep_time_seconds > 0.0
                            && sleep > self.opts.log_sleep_time_seconds
                        {
                            tracing::warn!("Ratelimit sleep log: {sleep} for {}", req.uri().path());
                        }
                        if sleep > 0.0 {
                            tokio::time::sleep(Duration::from_secs_f64(sleep)).await;
                        }
                    }
                    Err(secs) => {
                        tracing::error!(
                            "Returning 498 for {method} to {}. Ratelimit (Max Sleep) Max Sleep Time Exceeded: {secs:.2}",
                            req.uri().path()
                        );
                        return answer(498, "Rate Limited", "Slow down");
                    }
                }
            }
            self.next.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(pairs: &[(u64, f64)]) -> Vec<SizeRate> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, &(size, rate))| SizeRate {
                size,
                rate,
                slope: pairs
                    .get(i + 1)
                    .map(|&(ns, nr)| (nr - rate) / (ns - size) as f64)
                    .unwrap_or(0.0),
            })
            .collect()
    }

    #[test]
    fn rates_interpolate_between_sizes_as_swift_does() {
        // Swift's sample: 100 -> 100/s, 200 -> 50/s, 500 -> 20/s.
        let r = rates(&[(100, 100.0), (200, 50.0), (500, 20.0)]);
        assert_eq!(max_rate(&r, 0), None);
        assert_eq!(max_rate(&r, 99), None);
        assert_eq!(max_rate(&r, 100), Some(100.0));
        assert_eq!(max_rate(&r, 150), Some(75.0));
        assert_eq!(max_rate(&r, 350), Some(35.0));
        assert_eq!(max_rate(&r, 5000), Some(20.0));
    }
}
