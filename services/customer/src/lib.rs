//! The customer service: accounts (companies), contacts (people at an account) and follow-ups
//! (what was done with them).
//!
//! Serves `crm.customer.v1.CustomerService` over gRPC, owns its Postgres database, publishes
//! `customer.account.*` / `customer.contact.*` / `customer.follow_up.*` events through the
//! transactional outbox, and keeps single-record reads in a versioned Redis cache.
//!
//! # Layout
//!
//! One module per aggregate, each laid out the same way (`docs/adding-a-service.md`):
//! `mod.rs` (what lives there), `domain.rs` (types and rules, no I/O), `store.rs` (all its SQL),
//! `service.rs` (use cases: transactions, outbox events, cache) and `grpc.rs` (the edge: wire ↔
//! domain, errors → `Status`).
//!
//! - [`accounts`]: the companies the organisation does business with;
//! - [`contacts`]: the people at an account;
//! - [`follow_ups`]: calls, meetings, visits, notes and e-mails with a customer (跟进记录).
//!
//! Shared by both, and neither's own: [`record`] (what every customer record is and does —
//! lifecycle status and grade, list queries, the list SQL, the cache and events of writes),
//! [`validation`] (`Violations`: the input checks), [`wire`] (the edges' helpers) and [`grpc`]
//! (`CustomerService`: one implementation handing each RPC to its aggregate's edge). Also
//! [`settings`] (typed configuration, `config/base.yaml` + environment), [`error`], and
//! [`Application`]: start-up and shutdown (`build` → `grpc_port` → `run_until_stopped`).

pub mod accounts;
pub mod contacts;
pub mod error;
pub mod follow_ups;
pub mod grpc;
pub mod record;
pub mod settings;
pub mod validation;
pub mod wire;

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
    records: record::Records,
}

impl Application {
    /// Binds the listeners (port 0 picks free ones) and prepares, without connecting to
    /// anything: Postgres, Redis and Kafka may come up later.
    pub async fn build(settings: Settings) -> Result<Self, crm_host::HostError> {
        let mut host = Host::bind(
            "crm-customer",
            settings.server.clone(),
            settings.database.clone(),
            &settings.identity,
        )
        .await?;
        let outbox = Outbox::new(EVENT_SOURCE, &settings.events.topic);
        // The permission service's registry learns of accounts and contacts and their fields
        // before this service reports ready (crm_record::registry).
        // With their custom fields, as defined in this service's database.
        let fields = crm_fields::CustomFields::new(
            host.pool().clone(),
            outbox.clone(),
            "customer",
            CUSTOM_ENTITIES,
            declaration(),
        );
        let declaring = fields.clone();
        host.warm_up(crm_record::registry::declare_at_start_with(
            host.pool().clone(),
            outbox.clone(),
            async move |conn| declaring.declaration(conn).await,
        ));
        let cache = VersionedCache::new(
            &settings.redis,
            "customer",
            record::service::cache_ttl(settings.cache.ttl_secs),
        )
        .map_err(|e| crm_host::HostError::Config(e.to_string()))?;
        crm_events::kafka::check_config(&settings.kafka)
            .map_err(|e| crm_host::HostError::Config(e.to_string()))?;
        // A caller with thousands of shared records sends its scope by reference: fetched from
        // the permission service, once per permission version (ADR 0016).
        host.fetch_scopes(&settings.services, &settings.upstream)?;
        let records = record::Records::new(host.pool().clone(), outbox.clone(), cache, fields);
        Ok(Self {
            host,
            settings,
            outbox,
            records,
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
            records,
        } = self;
        let pool = host.pool().clone();
        let routes =
            tonic::service::Routes::new(CustomerServiceServer::new(grpc::CustomerApi::new(
                accounts::Accounts::new(records.clone()),
                contacts::Contacts::new(records.clone()),
                follow_ups::FollowUps::new(records.clone()),
            )))
            .add_service(crm_fields::grpc::FieldApi::new(records.fields().clone()).server());
        let indexer = records.fields().indexer().clone();
        let start_tasks = move |tasks_stop: CancellationToken| -> Vec<Task> {
            // Durable jobs (crm-jobs): the purge of deleted custom fields' values.
            let worker = crm_jobs::Worker::new(
                pool.clone(),
                crm_jobs::Clock::system(),
                crm_jobs::WorkerOptions::default(),
            )
            .handle(crm_fields::service::PURGE_JOB, crm_fields::Purge);
            let mut tasks: Vec<Task> = vec![
                Box::pin(worker.run(tasks_stop.clone())),
                // Indexes of custom fields marked `indexed`, built online (crm_fields::index).
                Box::pin(indexer.run(tasks_stop.clone())),
            ];
            match Relay::new(pool, &settings.kafka, outbox, RelayConfig::default()) {
                Ok(relay) => tasks.push(Box::pin(relay.run(tasks_stop))),
                Err(err) => {
                    // `build` already refused what librdkafka refuses (kafka::check_config), so
                    // this is a last guard: writes still land in the outbox meanwhile.
                    tracing::error!(error = %err, "outbox relay could not start");
                }
            }
            tasks
        };
        let grpc = crm_host::GrpcServices {
            routes,
            names: &[
                customer_service_server::SERVICE_NAME,
                crm_fields::grpc::SERVICE_NAME,
            ],
            descriptor_sets: &[crm_proto::FILE_DESCRIPTOR_SET],
        };
        host.run(
            grpc,
            &[
                &crm_events::MIGRATOR,
                &crm_jobs::MIGRATOR,
                &crm_fields::MIGRATOR,
                &MIGRATOR,
            ],
            start_tasks,
            stop,
        )
        .await
    }
}

/// What this service declares to the registry: its resources with their built-in fields.
pub fn declaration() -> crm_record::registry::Declaration {
    use crm_record::Record;
    use crm_record::registry::Declaration;
    Declaration::new(
        "customer",
        &[
            (
                accounts::domain::Account::RESOURCE,
                accounts::domain::Account::TABLE,
            ),
            (
                contacts::domain::Contact::RESOURCE,
                contacts::domain::Contact::TABLE,
            ),
            (
                follow_ups::domain::FollowUp::RESOURCE,
                follow_ups::domain::FollowUp::TABLE,
            ),
        ],
    )
}

/// The entities whose records have custom fields (crm-fields).
pub static CUSTOM_ENTITIES: &[crm_fields::Entity] = &[
    crm_fields::Entity {
        resource: crm_access::Resource::ACCOUNT,
        table: &accounts::store::ACCOUNT_TABLE,
    },
    crm_fields::Entity {
        resource: crm_access::Resource::CONTACT,
        table: &contacts::store::CONTACT_TABLE,
    },
];

/// This service's own schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
