//! The customer service: accounts (companies) and contacts (people at an account).
//!
//! Serves `crm.customer.v1.CustomerService` over gRPC, owns its Postgres database, publishes
//! `customer.account.*` / `customer.contact.*` events through the transactional outbox, and keeps
//! single-record reads in a versioned Redis cache.
//!
//! Layout:
//! - [`settings`]: typed configuration (`config/base.yaml` + environment);
//! - [`domain`]: records, patches and input validation (no gRPC, no SQL);
//! - [`list`]: filters, sorting and keyset cursors for lists;
//! - [`store`]: the SQL;
//! - [`service`]: use cases — transactions, version checks, outbox events, cache;
//! - [`grpc`]: the wire edge, proto ↔ domain conversions;
//! - [`Application`]: start-up and shutdown (`build` → `grpc_port` → `run_until_stopped`).

pub mod domain;
pub mod error;
pub mod grpc;
pub mod list;
pub mod service;
pub mod settings;
pub mod store;

use crm_cache::VersionedCache;
use crm_events::outbox::Outbox;
use crm_events::relay::{Relay, RelayConfig};
use crm_host::{Host, Task};
use crm_lifecycle::CancellationToken;
use crm_proto::customer::customer_service_server::{self, CustomerServiceServer};

pub use settings::Settings;

/// CloudEvents `source` of this service's events.
pub const EVENT_SOURCE: &str = "crm/customer";

/// The customer service process, bound and ready to run.
pub struct Application {
    host: Host,
    settings: Settings,
    outbox: Outbox,
    customers: service::Customers,
}

impl Application {
    /// Binds the listeners (port 0 picks free ones) and prepares, without connecting to
    /// anything: Postgres, Redis and Kafka may come up later.
    pub async fn build(settings: Settings) -> Result<Self, crm_host::HostError> {
        let host = Host::bind(
            "crm-customer",
            settings.server.clone(),
            settings.database.clone(),
            &settings.identity,
        )
        .await?;
        let outbox = Outbox::new(EVENT_SOURCE, &settings.events.topic);
        let cache = VersionedCache::new(
            &settings.redis,
            "customer",
            service::cache_ttl(settings.cache.ttl_secs),
        )
        .map_err(|e| crm_host::HostError::Config(e.to_string()))?;
        crm_events::kafka::check_config(&settings.kafka)
            .map_err(|e| crm_host::HostError::Config(e.to_string()))?;
        let customers = service::Customers::new(host.pool().clone(), outbox.clone(), cache);
        Ok(Self {
            host,
            settings,
            outbox,
            customers,
        })
    }

    pub fn grpc_port(&self) -> u16 {
        self.host.grpc_addr().port()
    }

    pub fn http_port(&self) -> u16 {
        self.host.http_addr().port()
    }

    /// Serves until `stop` is cancelled, then drains (see `crm_host`).
    pub async fn run_until_stopped(
        self,
        stop: CancellationToken,
    ) -> Result<(), crm_host::HostError> {
        let Application {
            host,
            settings,
            outbox,
            customers,
        } = self;
        let pool = host.pool().clone();
        let routes = tonic::service::Routes::new(CustomerServiceServer::new(
            grpc::CustomerApi::new(customers),
        ));
        let start_tasks = move |tasks_stop: CancellationToken| -> Vec<Task> {
            match Relay::new(pool, &settings.kafka, outbox, RelayConfig::default()) {
                Ok(relay) => vec![Box::pin(relay.run(tasks_stop))],
                Err(err) => {
                    // `build` already refused what librdkafka refuses (kafka::check_config), so
                    // this is a last guard: writes still land in the outbox meanwhile.
                    tracing::error!(error = %err, "outbox relay could not start");
                    Vec::new()
                }
            }
        };
        let grpc = crm_host::GrpcServices {
            routes,
            names: &[customer_service_server::SERVICE_NAME],
            descriptor_sets: &[crm_proto::FILE_DESCRIPTOR_SET],
        };
        host.run(grpc, &[&crm_events::MIGRATOR, &MIGRATOR], start_tasks, stop)
            .await
    }
}

/// This service's own schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
