//! The skeleton every CRM service process shares, so each service's `Application` only adds its
//! gRPC services and background tasks.
//!
//! [`Host::bind`] binds the gRPC and HTTP listeners (port 0 picks free ones, which is how tests
//! start services), makes a lazy pool and the verifier of its callers (the `identity` settings).
//! [`Host::run`] then:
//! 1. serves `/healthz`, `/readyz`, `/metrics` at once (not ready yet);
//! 2. serves gRPC, with health reporting NOT_SERVING; every call but health and reflection must
//!    carry a verified identity (`crm_identity::VerifyLayer`, ADR 0012), scopes sent by
//!    reference are fetched before the handler runs ([`Host::fetch_scopes`], ADR 0016), and
//!    reflection lists only the services this port serves;
//! 3. creates/migrates the database, retrying until Postgres is there;
//! 4. runs the service's warm-up, if any ([`Host::warm_up`]);
//! 5. starts the background tasks (outbox relay, consumers) and turns ready;
//! 6. on `stop` (SIGTERM): turns not-ready and NOT_SERVING at once, goes on serving for
//!    `server.drain_delay_ms` while callers move away, then closes the listener, lets in-flight
//!    calls finish, stops the background tasks, and returns — bounded by the shutdown grace
//!    period.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crm_access::{Action, Resource, Scope};
use crm_errors::{ApiError, Code};
use crm_grpc::upstream::{Traced, Upstreams};
use crm_identity::scopes::ScopeFuture;
use crm_identity::{ScopeSource, Scopes, Signer, Verifier, VerifyLayer};
use crm_lifecycle::{CancellationToken, Readiness};
use crm_proto::permission::access_service_client::AccessServiceClient;
use crm_settings::{DatabaseSettings, IdentitySettings, ServerSettings, UpstreamSettings};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] crm_db::DbError),
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("reflection set-up failed: {0}")]
    Reflection(String),
    /// A setting that cannot work (an unreadable certificate, a bad URL): the process refuses to
    /// start rather than run without the part it configures.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A background task started once the database is ready; it must return when its token is
/// cancelled.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a process serves over gRPC (besides health and reflection, which every host adds).
pub struct GrpcServices {
    pub routes: tonic::service::Routes,
    /// The full names of the services in `routes` (`SERVICE_NAME` of each generated server
    /// module): reflection lists these and no others.
    pub names: &'static [&'static str],
    /// Encoded descriptor sets that define them.
    pub descriptor_sets: &'static [&'static [u8]],
}

impl GrpcServices {
    /// Nothing but health and reflection (a service whose domain has not arrived yet).
    pub fn none() -> Self {
        GrpcServices {
            routes: tonic::service::Routes::default(),
            names: &[],
            descriptor_sets: &[],
        }
    }
}

pub struct Host {
    name: &'static str,
    server: ServerSettings,
    database: DatabaseSettings,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    pool: PgPool,
    readiness: Readiness,
    /// Extra HTTP routes served next to the health endpoints (e.g. a JWKS document).
    http_routes: axum::Router,
    /// Work that must be done before the process may report ready (after migrations).
    warm_up: Option<Task>,
    /// Checks every gRPC call's identity against the callers this service trusts.
    verify: VerifyLayer,
    /// Signs the calls this process makes as itself (`identity.signing_key`), if it has a key.
    signer: Option<Arc<Signer>>,
}

async fn bind(host: &str, port: u16) -> Result<TcpListener, HostError> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr)
        .await
        .map_err(|source| HostError::Bind { addr, source })
}

impl Host {
    /// Binds the listeners. A bad `identity` setting (an unreadable key, an unknown grant) is
    /// refused here: a service must not start half-trusting its callers.
    pub async fn bind(
        name: &'static str,
        server: ServerSettings,
        database: DatabaseSettings,
        identity: &IdentitySettings,
    ) -> Result<Self, HostError> {
        let verifier =
            Verifier::from_settings(identity).map_err(|e| HostError::Config(e.to_string()))?;
        let signer = Signer::from_settings(identity)
            .map_err(|e| HostError::Config(e.to_string()))?
            .map(Arc::new);
        // Install the metrics recorder before anything counts: until it exists, counters are
        // dropped (the first scrape would otherwise miss what happened before it).
        let _ = crm_lifecycle::metrics_handle();
        let grpc_listener = bind(&server.host, server.grpc_port).await?;
        let http_listener = bind(&server.host, server.http_port).await?;
        let pool = crm_db::pool(&database)?;
        Ok(Self {
            name,
            server,
            database,
            grpc_listener,
            http_listener,
            pool,
            readiness: Readiness::default(),
            http_routes: axum::Router::new(),
            warm_up: None,
            verify: VerifyLayer::new(verifier),
            signer,
        })
    }

    /// Signed, balanced channels to the services in `services` (`crm_grpc::upstream`), calling
    /// as this process. Refused without `identity.signing_key`: every call must be signed.
    pub fn upstreams(
        &self,
        services: &BTreeMap<String, String>,
        upstream: &UpstreamSettings,
    ) -> Result<Upstreams, HostError> {
        let signer = self.signer.clone().ok_or_else(|| {
            HostError::Config(format!(
                "identity.signing_key (or identity.signing_key_file) is required: {} calls other \
                 services and signs every call",
                self.name
            ))
        })?;
        let options = crm_grpc::balance::BalanceOptions {
            connect_timeout: Duration::from_millis(upstream.connect_timeout_ms.max(1)),
            timeout: Duration::from_millis(upstream.call_timeout_ms.max(1)),
            resolve_interval: Duration::from_secs(upstream.resolve_interval_secs.max(1)),
        };
        Upstreams::new(services, &options, signer).map_err(|e| HostError::Config(e.to_string()))
    }

    /// Resolves the scopes that callers send by reference (ADR 0016) with `scopes`. Every
    /// service that serves users' records needs this; the others refuse such calls.
    pub fn resolve_scopes_with(&mut self, scopes: Scopes) {
        self.verify = self.verify.clone().with_scopes(scopes);
    }

    /// Resolves the scopes that callers send by reference by asking the permission service
    /// (`services.permission`, `AccessService/CompileScope` as this process: the permission
    /// service must grant it that method), cached per user, action and permission version.
    pub fn fetch_scopes(
        &mut self,
        services: &BTreeMap<String, String>,
        upstream: &UpstreamSettings,
    ) -> Result<(), HostError> {
        let channel = self
            .upstreams(services, upstream)?
            .channel("permission")
            .map_err(|e| HostError::Config(e.to_string()))?;
        let client = AccessServiceClient::new(crm_grpc::upstream::traced(channel));
        self.resolve_scopes_with(Scopes::new(Arc::new(PermissionScopes(client))));
        Ok(())
    }

    /// Runs `work` after the migrations and before readiness turns true (for example creating
    /// the first signing key, without which the service cannot answer). It should retry on its
    /// own until it succeeds; shutdown interrupts it.
    pub fn warm_up(&mut self, work: impl Future<Output = ()> + Send + 'static) {
        self.warm_up = Some(Box::pin(work));
    }

    /// Serves `routes` on the HTTP port too, next to `/healthz`, `/readyz` and `/metrics`.
    pub fn merge_http(&mut self, routes: axum::Router) {
        self.http_routes = std::mem::take(&mut self.http_routes).merge(routes);
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Runs the process until `stop` is cancelled (see the crate docs for the sequence).
    /// `grpc` are the service's gRPC services; `start_tasks` makes the background tasks once the
    /// database is migrated.
    pub async fn run(
        self,
        grpc: GrpcServices,
        migrators: &[&Migrator],
        start_tasks: impl FnOnce(CancellationToken) -> Vec<Task>,
        stop: CancellationToken,
    ) -> Result<(), HostError> {
        let Host {
            name,
            server,
            database,
            grpc_listener,
            http_listener,
            pool,
            readiness,
            http_routes,
            warm_up,
            verify,
            signer: _,
        } = self;
        let grace = Duration::from_secs(server.shutdown_grace_secs);

        // A migration Job (the Helm chart's pre-install / pre-upgrade hook) runs the same image
        // with CRM__SERVER__MIGRATE_ONLY=true: migrate, then exit 0 without serving anything.
        if server.migrate_only {
            drop((grpc_listener, http_listener));
            return match crm_db::migrate_until_done(&pool, &database, migrators, &stop).await {
                Ok(()) => {
                    tracing::info!(
                        service = name,
                        "database migrated; exiting (server.migrate_only)"
                    );
                    Ok(())
                }
                Err(crm_db::DbError::Cancelled) => Ok(()),
                Err(err) => Err(err.into()),
            };
        }

        // Shutdown turns readiness off before anything else closes.
        let watcher = {
            let readiness = readiness.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                readiness.set(false);
            })
        };

        let http_stop = CancellationToken::new();
        let http = tokio::spawn(crm_lifecycle::serve_http(
            http_listener,
            crm_lifecycle::health_router(readiness.clone()).merge(http_routes),
            http_stop.clone(),
        ));

        let (health_reporter, health_service) = crm_grpc::health();
        let reflection = crm_grpc::reflection(grpc.descriptor_sets, grpc.names)
            .map_err(|e| HostError::Reflection(e.to_string()))?;
        let routes = grpc
            .routes
            .add_service(health_service)
            .add_service(reflection);
        // The listener closes only after the drain delay that follows `stop` (see below).
        let grpc_stop = CancellationToken::new();
        let grpc_stopped = grpc_stop.clone();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
        let grpc = tokio::spawn(
            tonic::transport::Server::builder()
                // Bounds a call whose client set no deadline; clients with one get theirs.
                .timeout(Duration::from_secs(30))
                .trace_fn(crm_grpc::request_span)
                .layer(verify)
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    incoming,
                    async move { grpc_stopped.cancelled().await },
                ),
        );

        let tasks_stop = CancellationToken::new();
        let mut tasks = Vec::new();
        match crm_db::migrate_until_done(&pool, &database, migrators, &stop).await {
            Ok(()) => {
                tracing::info!(service = name, "database migrated");
                if let Some(work) = warm_up {
                    tokio::select! {
                        _ = work => {}
                        _ = stop.cancelled() => {}
                    }
                }
                tasks = start_tasks(tasks_stop.clone())
                    .into_iter()
                    .map(tokio::spawn)
                    .collect();
                if !stop.is_cancelled() {
                    health_reporter
                        .set_service_status("", crm_grpc::ServingStatus::Serving)
                        .await;
                    readiness.set(true);
                    tracing::info!(service = name, grpc = %server.grpc_port, "ready");
                }
            }
            Err(crm_db::DbError::Cancelled) => {}
            Err(err) => {
                stop.cancel();
                grpc_stop.cancel();
                tracing::error!(error = %err, "start-up failed");
                let _ = grpc.await;
                http_stop.cancel();
                let _ = http.await;
                return Err(err.into());
            }
        }

        stop.cancelled().await;
        health_reporter
            .set_service_status("", crm_grpc::ServingStatus::NotServing)
            .await;
        // Not ready and NOT_SERVING already (the watcher above), yet still taking calls: callers
        // that learn of it a moment late (a balancer watching health, endpoint propagation in
        // the cluster) still get answers rather than a closed connection.
        let delay = Duration::from_millis(server.drain_delay_ms);
        if !delay.is_zero() {
            tracing::info!(
                delay_ms = server.drain_delay_ms,
                "draining: still serving while callers move away"
            );
            tokio::time::sleep(delay).await;
        }
        grpc_stop.cancel();
        let drain = async {
            // In-flight gRPC calls finish first: they may still write outbox rows.
            match grpc.await {
                Ok(Err(err)) => tracing::error!(error = %err, "gRPC server error"),
                Err(err) => tracing::error!(error = %err, "gRPC server panicked"),
                Ok(Ok(())) => {}
            }
            tasks_stop.cancel();
            futures::future::join_all(tasks).await;
        };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "shutdown grace period over; exiting anyway"
            );
        }
        http_stop.cancel();
        let _ = http.await;
        watcher.abort();
        pool.close().await;
        tracing::info!(service = name, "stopped");
        Ok(())
    }
}

pub mod basic {
    //! A service that so far only hosts itself: it creates and migrates its database, serves
    //! gRPC health and reflection, `/healthz`, `/readyz` and `/metrics`, and drains on SIGTERM.
    //! Services whose domain has not arrived yet use it, so they deploy and probe like the rest.

    use crm_lifecycle::CancellationToken;
    use serde::Deserialize;
    use sqlx::migrate::Migrator;

    use super::{Host, HostError};

    #[derive(Debug, Clone, Deserialize)]
    pub struct Settings {
        pub server: crm_settings::ServerSettings,
        /// Its name; it serves no method that needs a caller yet.
        pub identity: crm_settings::IdentitySettings,
        pub database: crm_settings::DatabaseSettings,
    }

    pub struct Application {
        host: Host,
        migrators: &'static [&'static Migrator],
    }

    impl Application {
        pub async fn build(
            name: &'static str,
            settings: Settings,
            migrators: &'static [&'static Migrator],
        ) -> Result<Self, HostError> {
            let host =
                Host::bind(name, settings.server, settings.database, &settings.identity).await?;
            Ok(Self { host, migrators })
        }

        pub fn grpc_port(&self) -> u16 {
            self.host.grpc_addr().port()
        }

        pub fn http_port(&self) -> u16 {
            self.host.http_addr().port()
        }

        pub async fn run_until_stopped(self, stop: CancellationToken) -> Result<(), HostError> {
            self.host
                .run(
                    super::GrpcServices::none(),
                    self.migrators,
                    |_| Vec::new(),
                    stop,
                )
                .await
        }
    }
}

/// Scopes from the permission service's `CompileScope`, asked as this process.
struct PermissionScopes(AccessServiceClient<Traced>);

impl ScopeSource for PermissionScopes {
    fn compile(&self, user: uuid::Uuid, resource: Resource, action: Action) -> ScopeFuture<'_> {
        let mut client = self.0.clone();
        Box::pin(async move {
            let answer = client
                .compile_scope(crm_proto::permission::CompileScopeRequest {
                    user_id: user.to_string(),
                    resource: resource.to_pb() as i32,
                    resource_name: resource.as_str().to_string(),
                    action: action.to_pb() as i32,
                })
                .await
                .map_err(|status| {
                    ApiError::new(
                        Code::Unavailable,
                        format!("CompileScope: {}", status.message()),
                    )
                })?;
            Scope::try_from(answer.into_inner())
        })
    }
}
