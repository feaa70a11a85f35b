//! Client-side balancing over every replica of a service.
//!
//! A gRPC client multiplexes all its calls over one HTTP/2 connection, so behind a Kubernetes
//! ClusterIP Service every call of a gateway pod would land on whichever pod that one connection
//! reached, and a rolling restart would cut it. A [`BalancedChannel`] instead:
//!
//! - takes one or several endpoints (`http://crm-customer-headless:50051`, or a comma-separated
//!   list) and resolves each host name again every `resolve_interval`: a headless Service's name
//!   answers with the address of every ready pod, so replicas added by the HPA get calls too;
//! - keeps a connection per address and watches that replica's `grpc.health.v1` status; calls go
//!   round robin to the SERVING replicas only. A replica given SIGTERM reports NOT_SERVING at once
//!   and keeps answering for its drain delay, so it stops getting calls before its listener
//!   closes: a restart under load fails no call;
//! - while no replica is SERVING (all starting, or health unreachable) calls go to every known
//!   address anyway, so they fail fast (UNAVAILABLE) instead of waiting for one to come.
//!
//! The connections are lazy: a gateway starts while its services are still down.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::{Service, ServiceExt};

/// Why a list of endpoints was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid gRPC endpoint {url:?}: {reason}")]
pub struct InvalidEndpoint {
    pub url: String,
    pub reason: String,
}

/// How a [`BalancedChannel`] connects.
#[derive(Debug, Clone)]
pub struct BalanceOptions {
    /// Bounds opening a connection to one replica.
    pub connect_timeout: Duration,
    /// Bounds each call.
    pub timeout: Duration,
    /// How often host names are resolved again (replicas come and go).
    pub resolve_interval: Duration,
}

/// A cheap-to-clone channel over every replica behind one or several endpoints (see the module
/// docs). Dropping the last clone stops its background resolution and health watching.
#[derive(Clone)]
pub struct BalancedChannel {
    shared: Arc<Shared>,
}

struct Target {
    /// As configured; also the `:authority` the replicas see.
    uri: Uri,
    host: String,
    port: u16,
}

struct Shared {
    targets: Vec<Target>,
    options: BalanceOptions,
    members: RwLock<Vec<Arc<Member>>>,
    next: AtomicUsize,
    /// True once every target has been resolved at least once.
    resolved: tokio::sync::watch::Sender<bool>,
}

/// One replica: its call connection and what its health service last said.
struct Member {
    target: usize,
    addr: SocketAddr,
    channel: Channel,
    serving: Arc<Serving>,
    watcher: tokio::task::AbortHandle,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.watcher.abort();
        // A replica that left the pool serves nobody any more.
        self.serving.set(false);
    }
}

/// Whether a replica is SERVING, mirrored in the gauge `grpc_client_serving_replicas` (labelled
/// with the configured endpoints): what an SRE watches during a rollout, and what tests wait on
/// instead of guessing how long a restarted replica takes to be back in rotation.
struct Serving {
    up: AtomicBool,
    endpoints: String,
}

impl Serving {
    fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records a health answer; says whether it changed anything.
    fn set(&self, up: bool) -> bool {
        let changed = self.up.swap(up, Ordering::Relaxed) != up;
        if changed {
            let gauge = metrics::gauge!(SERVING_REPLICAS, "endpoints" => self.endpoints.clone());
            if up {
                gauge.increment(1.0);
            } else {
                gauge.decrement(1.0);
            }
        }
        changed
    }
}

/// The gauge of SERVING replicas per configured endpoint list.
pub const SERVING_REPLICAS: &str = "grpc_client_serving_replicas";

impl BalancedChannel {
    /// A channel over the comma-separated `endpoints` (`http://host:port`). Must be called within
    /// a Tokio runtime: resolution and health watching run as background tasks.
    pub fn new(endpoints: &str, options: BalanceOptions) -> Result<Self, InvalidEndpoint> {
        let targets = endpoints
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_target)
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err(InvalidEndpoint {
                url: endpoints.to_string(),
                reason: "no endpoint given".into(),
            });
        }
        let shared = Arc::new(Shared {
            targets,
            options,
            members: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            resolved: tokio::sync::watch::channel(false).0,
        });
        tokio::spawn(resolve_forever(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }
}

fn parse_target(url: &str) -> Result<Target, InvalidEndpoint> {
    let invalid = |reason: &str| InvalidEndpoint {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    let scheme = uri.scheme_str().ok_or_else(|| invalid("no scheme"))?;
    // Refused here rather than failing every call later: the services serve plain gRPC (TLS
    // between the gateway and them is left to a service mesh for now).
    let default_port = match scheme {
        "http" => 80,
        "https" => {
            return Err(invalid(
                "TLS to the services is not supported yet; use http://",
            ));
        }
        _ => return Err(invalid("the scheme must be http")),
    };
    let host = uri.host().ok_or_else(|| invalid("no host"))?;
    Ok(Target {
        // `[::1]` in a URI is `::1` to the resolver.
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: uri.port_u16().unwrap_or(default_port),
        uri,
    })
}

impl Shared {
    /// The next replica's channel: round robin over the SERVING ones, or over all when none is.
    fn pick(&self) -> Option<Channel> {
        let members = self.members.read().expect("not poisoned");
        let serving = members.iter().filter(|m| m.serving.is_up()).count();
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let chosen = if serving > 0 {
            members
                .iter()
                .filter(|m| m.serving.is_up())
                .nth(turn % serving)
        } else if members.is_empty() {
            None
        } else {
            members.get(turn % members.len())
        };
        chosen.map(|m| m.channel.clone())
    }

    /// Replaces the replicas of the targets resolved this round; a target whose lookup failed
    /// keeps the replicas it had (a DNS hiccup must not empty the pool).
    fn update(&self, found: &[(usize, SocketAddr)], failed: &[usize]) {
        let mut members = self.members.write().expect("not poisoned");
        let before = members.len();
        members.retain(|m| failed.contains(&m.target) || found.contains(&(m.target, m.addr)));
        let removed = before - members.len();
        let mut added = 0;
        for &(target, addr) in found {
            if members.iter().any(|m| m.target == target && m.addr == addr) {
                continue;
            }
            members.push(Arc::new(self.member(target, addr)));
            added += 1;
        }
        if added + removed > 0 {
            let addrs: Vec<String> = members.iter().map(|m| m.addr.to_string()).collect();
            tracing::info!(
                endpoints = %self.describe(),
                replicas = ?addrs,
                added,
                removed,
                "gRPC replicas changed"
            );
        }
    }

    fn member(&self, target: usize, addr: SocketAddr) -> Member {
        let t = &self.targets[target];
        let uri = format!("http://{addr}");
        let endpoint = Endpoint::from_shared(uri)
            .expect("a socket address makes a valid URI")
            .origin(t.uri.clone())
            .connect_timeout(self.options.connect_timeout);
        let channel = endpoint
            .clone()
            .timeout(self.options.timeout)
            .connect_lazy();
        // Health gets a connection of its own: no call timeout (the watch stream is long-lived)
        // and keep-alive pings, so a replica that vanished without closing it is noticed.
        let health = endpoint
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .connect_lazy();
        let serving = Arc::new(Serving {
            up: AtomicBool::new(false),
            endpoints: self.describe(),
        });
        let watcher = tokio::spawn(watch_health(health, addr, serving.clone())).abort_handle();
        Member {
            target,
            addr,
            channel,
            serving,
            watcher,
        }
    }

    fn describe(&self) -> String {
        self.targets
            .iter()
            .map(|t| t.uri.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Resolves every target now and then every `resolve_interval`, until the channel is dropped.
async fn resolve_forever(shared: Weak<Shared>) {
    loop {
        let Some(targets) = shared.upgrade().map(|s| {
            s.targets
                .iter()
                .map(|t| (t.host.clone(), t.port))
                .collect::<Vec<_>>()
        }) else {
            return;
        };
        let (mut found, mut failed) = (Vec::new(), Vec::new());
        for (i, (host, port)) in targets.iter().enumerate() {
            match tokio::net::lookup_host((host.as_str(), *port)).await {
                Ok(addrs) => found.extend(addrs.map(|a| (i, a))),
                Err(err) => {
                    tracing::warn!(%host, error = %err, "cannot resolve a gRPC endpoint; keeping its known replicas");
                    failed.push(i);
                }
            }
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.update(&found, &failed);
        shared.resolved.send_replace(true);
        let interval = shared.options.resolve_interval;
        drop(shared);
        tokio::time::sleep(interval).await;
    }
}

/// Follows one replica's health: SERVING while its watch stream says so, not serving otherwise.
async fn watch_health(channel: Channel, addr: SocketAddr, serving: Arc<Serving>) {
    const RETRY_MIN: Duration = Duration::from_millis(100);
    const RETRY_MAX: Duration = Duration::from_secs(2);
    let mut retry = RETRY_MIN;
    loop {
        let mut client = HealthClient::new(channel.clone());
        let request = HealthCheckRequest {
            service: String::new(),
        };
        if let Ok(response) = client.watch(request).await {
            let mut stream = response.into_inner();
            while let Ok(Some(update)) = stream.message().await {
                let up = update.status == ServingStatus::Serving as i32;
                if serving.set(up) {
                    tracing::debug!(%addr, serving = up, "replica health changed");
                }
                if up {
                    retry = RETRY_MIN;
                } else {
                    // Starting or going away. The stream is closed rather than kept: a server
                    // shutting down waits for its open streams, and this one would never end.
                    break;
                }
            }
        }
        serving.set(false);
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<http::Request<Body>> for BalancedChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the chosen replica's, awaited in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            let channel = match shared.pick() {
                Some(channel) => Some(channel),
                None => {
                    // Only right after start, before the first resolution finished.
                    let mut resolved = shared.resolved.subscribe();
                    let _ = tokio::time::timeout(
                        shared.options.connect_timeout,
                        resolved.wait_for(|done| *done),
                    )
                    .await;
                    shared.pick()
                }
            };
            let Some(mut channel) = channel else {
                return Err(Box::new(tonic::Status::unavailable(format!(
                    "no replica of {} is known",
                    shared.describe()
                ))) as BoxError);
            };
            let channel = channel.ready().await?;
            Ok(channel.call(request).await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_with_default_ports() {
        let t = parse_target("http://crm-customer-headless:50051").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("crm-customer-headless", 50051));
        let t = parse_target("http://[::1]").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
    }

    #[test]
    fn bad_endpoints_are_refused_with_the_reason() {
        for (url, reason) in [
            ("crm-customer:50051", "scheme"),
            ("ftp://crm-customer:50051", "must be http"),
            ("https://crm-customer:50051", "TLS"),
            ("http://", "invalid"),
        ] {
            let err = parse_target(url).err().expect(url);
            assert!(err.to_string().contains(reason), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn an_empty_list_is_refused() {
        let options = BalanceOptions {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            resolve_interval: Duration::from_secs(1),
        };
        assert!(BalancedChannel::new(" , ", options).is_err());
    }
}
