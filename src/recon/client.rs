//! The concurrent recon fetcher (cargo feature `recon-client`).
//!
//! `swift-recon` asks 30 hosts at a time, so a cluster of a thousand hosts where a few
//! dozen are down takes many timeouts. Here every host of a check is asked at once (up to
//! [`Fetcher::concurrency`] requests in flight), and each request — connect, headers and
//! body — is bounded by one per-host deadline, so a whole check takes about one timeout
//! however many hosts hang. Bodies are read up to [`MAX_BODY`] bytes: recon answers are
//! small, and a misbehaving server must not make the client allocate without bound.
//!
//! Several checks can run at once ([`Fetcher::run_checks`]) under the same cap, so even
//! `--all` on a cluster with hung hosts takes about one timeout, not one per check.
//!
//! Every failure stays with its host as a [`HostError`]; nothing here returns early.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::Semaphore;

use super::checks::{self, CheckContext, CheckKind, CheckReport, HostAnswer, HostError};
use super::hosts::{Host, ServerType};

/// The largest recon answer read (`/recon/mounted` on a busy host is a few hundred kB).
pub const MAX_BODY: usize = 16 << 20;

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Sends recon requests to many hosts at once.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    concurrency: usize,
    /// Shared by every request of this fetcher, whichever check sends it.
    permits: Arc<Semaphore>,
}

impl Fetcher {
    /// `timeout` bounds each host's whole request; at most `concurrency` are in flight.
    pub fn new(timeout: Duration, concurrency: usize) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            // Recon talks to storage nodes directly; an http_proxy variable must not reroute it.
            .no_proxy()
            .connect_timeout(timeout)
            .user_agent(concat!("ringsmith-recon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let concurrency = concurrency.max(1);
        Ok(Fetcher {
            client,
            timeout,
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// `GET /recon/<endpoint>` on every host; answers in the order of `hosts`.
    pub async fn fetch(&self, hosts: &[Host], endpoint: &str) -> Vec<HostAnswer> {
        self.fan_out(hosts, Some(endpoint.to_string())).await
    }

    /// `OPTIONS /` on every host, keeping the `Server` header (`--validate-servers`).
    pub async fn options(&self, hosts: &[Host]) -> Vec<HostAnswer> {
        self.fan_out(hosts, None).await
    }

    async fn fan_out(&self, hosts: &[Host], endpoint: Option<String>) -> Vec<HostAnswer> {
        let permits = self.permits.clone();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, host) in hosts.iter().cloned().enumerate() {
            let me = self.clone();
            let permits = permits.clone();
            let endpoint = endpoint.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (i, me.ask(host, endpoint.as_deref()).await)
            });
        }
        let mut out: Vec<Option<HostAnswer>> = vec![None; hosts.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, answer)) = joined {
                out[i] = Some(answer);
            }
        }
        // A task can only be missing if it panicked; report that host rather than lose it.
        out.into_iter()
            .zip(hosts)
            .map(|(a, h)| {
                a.unwrap_or_else(|| {
                    HostAnswer::err(
                        h.clone(),
                        h.base_url(),
                        HostError::Unreachable("internal error while asking this host".into()),
                    )
                })
            })
            .collect()
    }

    async fn ask(&self, host: Host, endpoint: Option<&str>) -> HostAnswer {
        let url = match endpoint {
            Some(e) => host.recon_url(e),
            None => host.base_url(),
        };
        let started = unix_now();
        let outcome =
            tokio::time::timeout(self.timeout, self.request(&url, endpoint.is_none())).await;
        let finished = unix_now();
        let (result, server) = match outcome {
            Ok(Ok((body, server))) => (Ok(body), server),
            Ok(Err(e)) => (Err(e), None),
            Err(_) => (Err(HostError::Timeout(self.timeout.as_secs_f64())), None),
        };
        HostAnswer {
            host,
            url,
            result,
            server,
            started,
            finished,
        }
    }

    async fn request(
        &self,
        url: &str,
        options: bool,
    ) -> Result<(Value, Option<String>), HostError> {
        let req = if options {
            self.client.request(reqwest::Method::OPTIONS, url)
        } else {
            self.client.get(url)
        };
        let mut resp = req.send().await.map_err(|e| classify(&e, self.timeout))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(HostError::Http {
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("Unknown").to_string(),
            });
        }
        let server = resp
            .headers()
            .get(reqwest::header::SERVER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if options {
            return Ok((Value::Null, server));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e, self.timeout))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HostError::UnexpectedAnswer(format!(
                    "answer larger than {MAX_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let value = serde_json::from_slice(&body).map_err(|e| {
            let text = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
            HostError::MalformedJson(format!("{e} (body starts {text:?})"))
        })?;
        Ok((value, server))
    }

    /// Runs one check on the hosts of a server type and summarizes it.
    pub async fn run_check(
        &self,
        check: CheckKind,
        server_type: ServerType,
        hosts: &[Host],
        ctx: &CheckContext,
    ) -> CheckReport {
        let started = unix_now();
        let answers = match check.endpoint(server_type) {
            None => self.options(hosts).await,
            Some(endpoint) if check == CheckKind::DiskUsage => {
                self.fetch(&checks::one_port_per_ip(hosts), &endpoint).await
            }
            Some(endpoint) => self.fetch(hosts, &endpoint).await,
        };
        checks::summarize(check, server_type, hosts.len(), started, answers, ctx)
    }

    /// Runs several checks at once on the hosts of a server type; reports in the order of
    /// `checks`. Checks that do not apply to the server type are left out.
    pub async fn run_checks(
        &self,
        checks: &[CheckKind],
        server_type: ServerType,
        hosts: &[Host],
        ctx: &CheckContext,
    ) -> Vec<CheckReport> {
        let hosts: Arc<[Host]> = hosts.into();
        let ctx = Arc::new(ctx.clone());
        let mut tasks = tokio::task::JoinSet::new();
        let wanted: Vec<CheckKind> = checks
            .iter()
            .copied()
            .filter(|c| c.applies_to(server_type).is_ok())
            .collect();
        for (i, check) in wanted.iter().copied().enumerate() {
            let (me, hosts, ctx) = (self.clone(), hosts.clone(), ctx.clone());
            tasks.spawn(async move { (i, me.run_check(check, server_type, &hosts, &ctx).await) });
        }
        let mut out: Vec<Option<CheckReport>> = vec![None; wanted.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, report)) = joined {
                out[i] = Some(report);
            }
        }
        out.into_iter()
            .zip(wanted)
            .map(|(r, check)| {
                // Only a panicking task leaves a hole; summarize "no answers" rather than lose it.
                r.unwrap_or_else(|| {
                    checks::summarize(
                        check,
                        server_type,
                        hosts.len(),
                        unix_now(),
                        Vec::new(),
                        &ctx,
                    )
                })
            })
            .collect()
    }
}

/// The innermost cause of a transport error, in words an operator can act on.
fn classify(e: &reqwest::Error, timeout: Duration) -> HostError {
    if e.is_timeout() {
        return HostError::Timeout(timeout.as_secs_f64());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    HostError::Unreachable(format!("{what}: {cause}"))
}
