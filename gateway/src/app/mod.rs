//! Building and running the gateway: [`Application::build`] → [`Application::port`] →
//! [`Application::run_until_stopped`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::middleware::{from_fn, from_fn_with_state};
use crm_lifecycle::{CancellationToken, Readiness};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::domains::{customer, customization, identity};
use crate::platform::error::Error;
use crate::platform::{observability, openapi};
use crate::security::Security;
use crate::security::auth::Authenticator;
use crate::security::authz::Authorizer;
use crate::security::idempotency::IdempotencyStore;
use crate::security::principals::Principals;
use crate::security::rate_limit::RateLimiter;
use crate::settings::Settings;
use crate::upstream::permission::PermissionService;
use crate::upstream::{self, Redis, Upstreams};

/// What handlers and middleware share; each domain takes its part through `FromRef`. Cheap to
/// clone.
#[derive(Clone)]
pub struct AppState {
    pub security: Security,
    pub customer: upstream::customer::Client,
    pub fields: upstream::fields::Fields,
    pub permission: PermissionService,
}

impl FromRef<AppState> for upstream::fields::Fields {
    fn from_ref(state: &AppState) -> Self {
        state.fields.clone()
    }
}

impl FromRef<AppState> for upstream::customer::Client {
    fn from_ref(state: &AppState) -> Self {
        state.customer.clone()
    }
}

impl FromRef<AppState> for PermissionService {
    fn from_ref(state: &AppState) -> Self {
        state.permission.clone()
    }
}

impl FromRef<AppState> for Security {
    fn from_ref(state: &AppState) -> Self {
        state.security.clone()
    }
}

/// A bound, configured gateway, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    readiness: Readiness,
    port: u16,
    grace: Duration,
    drain_delay: Duration,
    /// The permission-events follower, started with the server.
    listener_task: Option<(Principals, crm_settings::KafkaSettings, String)>,
    /// The permission-version poll, started with the server.
    version_poll: (Authorizer, Duration),
}

impl Application {
    /// Validates the settings, prepares clients (none connects yet: the gateway starts while
    /// services and Redis are still coming up) and binds the listener (`http_port: 0` picks a
    /// free port).
    pub async fn build(settings: Settings) -> Result<Self, Error> {
        // Install the recorder before the first request records anything.
        let _ = crm_lifecycle::metrics_handle();
        let request_timeout = Duration::from_secs(settings.http.request_timeout_secs.max(1));

        let balance = crm_grpc::balance::BalanceOptions {
            connect_timeout: Duration::from_millis(settings.upstream.connect_timeout_ms.max(1)),
            timeout: request_timeout,
            resolve_interval: Duration::from_secs(settings.upstream.resolve_interval_secs.max(1)),
        };
        // Every call to a service is signed (ADR 0012): without a key the gateway cannot call.
        let signer = crm_identity::Signer::from_settings(&settings.identity)
            .map_err(|e| Error::Config(e.to_string()))?
            .ok_or_else(|| {
                Error::Config(
                    "identity.signing_key (or identity.signing_key_file) is required: the \
                     gateway signs every call to the services"
                        .into(),
                )
            })?;
        let upstreams = Upstreams::new(&settings.services, &balance, Arc::new(signer))?;
        let permission = PermissionService::new(&upstreams)?;
        let principals = Principals::new(
            permission.channel(),
            Duration::from_secs(settings.principals.status_ttl_secs),
        );
        let redis = Redis::lazy(&settings.redis)?;
        let authz = Authorizer::new(
            permission.channel(),
            &redis,
            Duration::from_secs(settings.authz.cache_ttl_secs),
        );
        let authenticator = Authenticator::new(&settings.auth)?.with_principals(principals.clone());
        if let Some(kafka) = &settings.kafka {
            crm_events::kafka::check_config(kafka)
                .map_err(|e| Error::Config(format!("kafka: {e}")))?;
        }
        // Followed from run_until_stopped: (what, broker, topic).
        let follower = settings.kafka.as_ref().map(|kafka| {
            (
                principals.with_versions(authz.version()),
                kafka.clone(),
                settings.principals.permission_topic.clone(),
            )
        });
        let version_poll = (
            authz.clone(),
            Duration::from_secs(settings.authz.version_poll_secs.max(1)),
        );
        let state = AppState {
            security: Security {
                auth: Arc::new(authenticator),
                authz,
                idempotency: IdempotencyStore::new(
                    &redis,
                    Duration::from_secs(settings.idempotency.ttl_secs),
                    request_timeout,
                ),
                rate_limiter: RateLimiter::new(&redis, settings.rate_limit.clone()),
                body_limit: settings.http.body_limit_bytes,
            },
            customer: upstream::customer::client(&upstreams)?,
            fields: upstream::fields::Fields::new(&upstreams)?,
            permission,
        };
        let readiness = Readiness::default();
        let router = router(
            state,
            readiness.clone(),
            request_timeout,
            settings.http.body_limit_bytes,
        );

        let addr = format!("{}:{}", settings.server.host, settings.server.http_port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let port = listener.local_addr().map_err(Error::Serve)?.port();
        Ok(Self {
            listener,
            router,
            readiness,
            port,
            grace: Duration::from_secs(settings.server.shutdown_grace_secs),
            drain_delay: Duration::from_millis(settings.server.drain_delay_ms),
            listener_task: follower,
            version_poll,
        })
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the gateway reports ready (for tests and embedding).
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serves until `stop` is cancelled, then turns not-ready at once, goes on serving for
    /// `drain_delay_ms` (load balancers take the pod out meanwhile), stops accepting connections
    /// and lets in-flight requests finish, for at most `shutdown_grace_secs`.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> Result<(), Error> {
        let Self {
            listener,
            router,
            readiness,
            port,
            grace,
            drain_delay,
            listener_task,
            version_poll,
        } = self;
        let poller = tokio::spawn(version_poll.0.poll_version(version_poll.1, stop.clone()));
        let following = listener_task
            .as_ref()
            .map(|(principals, _, _)| principals.clone());
        let follower = listener_task.map(|(principals, kafka, topic)| {
            tokio::spawn(principals.listen(kafka, topic, stop.clone()))
        });
        let shutdown = {
            let stop = stop.clone();
            let readiness = readiness.clone();
            async move {
                stop.cancelled().await;
                readiness.set(false);
                if !drain_delay.is_zero() {
                    tracing::info!(delay_ms = ?drain_delay, "not ready; still serving while load balancers move away");
                    tokio::time::sleep(drain_delay).await;
                }
                tracing::info!("shutting down: draining in-flight requests");
            }
        };
        let server = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown);
        let server = tokio::spawn(async move { server.await });
        // Ready once the permission events are followed (so no revocation is missed), or after a
        // bound, so a broker outage does not keep the API down (status then refreshes by TTL).
        if let Some(principals) = following
            && !principals.wait_following(Duration::from_secs(15)).await
        {
            tracing::warn!(
                "not following permission events yet; user status refreshes by TTL until then"
            );
        }
        readiness.set(!stop.is_cancelled());
        tracing::info!(port, "gateway serving");

        stop.cancelled().await;
        match tokio::time::timeout(grace + drain_delay, server).await {
            Ok(Ok(result)) => result.map_err(Error::Serve)?,
            Ok(Err(join)) => return Err(Error::internal(anyhow::anyhow!("server task: {join}"))),
            Err(_) => tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown grace period over; dropping remaining connections"
            ),
        }
        if let Some(follower) = follower {
            let _ = follower.await;
        }
        let _ = poller.await;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// Every domain's routes with their OpenAPI operations: the only place that knows them all.
fn domains(security: &Security) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(customer::routes(security))
        .merge(customization::routes(security))
        .merge(identity::routes(security))
}

/// The whole HTTP surface with its middleware (order documented in the crate docs).
fn router(state: AppState, readiness: Readiness, timeout: Duration, body_limit: usize) -> Router {
    let (api, doc) = domains(&state.security).split_for_parts();
    let api = api
        .layer(from_fn_with_state(
            state.security.clone(),
            crate::security::rate_limit::rate_limit,
        ))
        .fallback(observability::route_not_found)
        .method_not_allowed_fallback(observability::method_not_allowed)
        .with_state(state);

    api.merge(openapi::docs(openapi::document(doc)))
        .merge(crm_lifecycle::health_router(readiness))
        .layer(
            // Outermost first.
            ServiceBuilder::new()
                .layer(from_fn(observability::sanitize_request_id))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(from_fn(observability::observe))
                .layer(from_fn_with_state(timeout, observability::timeout))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
}
