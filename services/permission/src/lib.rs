//! The permission service: authentication — local users, sign-in with username and password,
//! access and refresh tokens, and the keys that sign them — and authorisation — departments,
//! managers, roles with grants, data scopes and field rules, and the decisions made from them
//! ([`authz`], which documents the model).
//!
//! Serves `crm.permission.v1.AuthService`, `UserService`, `OrgService` and `AccessService` over
//! gRPC and the JWKS at `GET /.well-known/jwks.json` on its HTTP port, owns its Postgres
//! database, and publishes `permission.*` events through the transactional outbox.
//!
//! Layout:
//! - [`settings`]: typed configuration (`config/base.yaml` + environment);
//! - [`domain`]: users and input validation (no gRPC, no SQL);
//! - [`authz`]: the organisation and decisions (its own model, store, service, gRPC edge, seed);
//! - [`password`]: argon2id hashing and constant-work verification;
//! - [`throttle`]: the sign-in lockout rules, as pure functions;
//! - [`keys`]: signing keys — generation, encryption at rest, rotation, JWKS;
//! - [`tokens`]: access-token claims, refresh-token generation and hashing;
//! - [`store`]: the SQL;
//! - [`service`]: use cases — transactions, outbox events, session revocation;
//! - [`grpc`] and [`http`]: the wire edges;
//! - [`Application`]: start-up and shutdown (`build` → `grpc_port` → `run_until_stopped`).
//!
//! # Security decisions
//!
//! **No username enumeration.** Unknown user, wrong password, disabled user and user without a
//! password all answer UNAUTHENTICATED "invalid username or password", after the same work: one
//! argon2 verification, against a dummy hash when there is no stored one
//! ([`password::Passwords::verify`]). Audit events do say which it was; they are internal.
//!
//! **Throttling is per username string, not per user.** Failed sign-ins are counted under the
//! normalised username as typed (`login_throttle`), whether or not such a user exists. Keyed by
//! user id, unknown usernames would have no counter and would never lock — and "locks after five
//! tries" would then tell an attacker which usernames exist. Keyed by the string, existing and
//! unknown usernames behave identically, down to the RESOURCE_EXHAUSTED answer and its
//! `RetryInfo`. While a username is locked its password is not even checked, so a locked
//! account cannot be brute-forced; attempts are counted before their check under a row lock, so
//! parallel guesses cannot outrun the limit ([`throttle`]). The lock lasts `base_lock_secs`,
//! doubling with each further lock up to `max_lock_secs`; a success resets everything. (The
//! trade-off: anyone can lock a known username for a while. Per-IP limits belong in the gateway.)
//!
//! **Refresh tokens are stored as SHA-256 hashes.** A refresh token is a bearer credential for
//! weeks; a leaked table, backup or log of hashes must not be usable to sign in. The tokens are 256
//! random bits, so a fast unsalted hash suffices (nothing to brute-force) and lookups stay
//! indexed. Tokens are single-use and rotated: each refresh marks the token used and issues the
//! next one in the same *family* (one family per sign-in; its id is the `sid` claim). Presenting
//! a used or revoked token again means a copy exists somewhere, so the whole family is revoked.
//! Logout, disabling a user and setting a password revoke families as well.
//!
//! **Signing keys rotate on a timeline** ([`keys`]). Access tokens are EdDSA (Ed25519) JWTs with a
//! `kid`. A key signs for `key_rotation_secs` from its creation; it stays in the JWKS for another
//! `access_ttl_secs` + `clock_skew_secs` (60 s), so every token it signed verifies until it
//! expires; then it is retired and its private half deleted. A new key is published the moment it
//! is made, so verifiers refetch the JWKS when they meet an unknown `kid`. Private keys are stored
//! encrypted with AES-256-GCM under `auth.key_encryption_key` (with the kid as associated data)
//! and exist decrypted only in memory. The service refuses to start without a valid
//! key-encryption key, and refuses the development one when `CRM_ENVIRONMENT=production`.
//!
//! Nothing secret is logged: passwords, tokens and keys are `SecretString`s or never leave
//! their functions, and settings' `Debug` redacts them.

pub mod actor;
pub mod audit;
pub mod authz;
pub mod clients;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod http;
pub mod keys;
pub mod oidc;
pub mod password;
pub mod service;
pub mod settings;
pub mod store;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use crm_events::outbox::Outbox;
use crm_events::relay::{Relay, RelayConfig};
use crm_host::{Host, Task};
use crm_lifecycle::CancellationToken;
use crm_proto::permission::access_service_server::{self, AccessServiceServer};
use crm_proto::permission::api_client_service_server::{self, ApiClientServiceServer};
use crm_proto::permission::audit_service_server::{self, AuditServiceServer};
use crm_proto::permission::auth_service_server::{self, AuthServiceServer};
use crm_proto::permission::org_service_server::{self, OrgServiceServer};
use crm_proto::permission::sharing_service_server::{self, SharingServiceServer};
use crm_proto::permission::user_service_server::{self, UserServiceServer};
use secrecy::ExposeSecret;

pub use settings::Settings;

/// The process name, used in logs and traces.
pub const NAME: &str = "crm-permission";

/// The gRPC services this process serves (what reflection lists).
pub const SERVICE_NAMES: [&str; 7] = [
    auth_service_server::SERVICE_NAME,
    user_service_server::SERVICE_NAME,
    api_client_service_server::SERVICE_NAME,
    org_service_server::SERVICE_NAME,
    sharing_service_server::SERVICE_NAME,
    access_service_server::SERVICE_NAME,
    audit_service_server::SERVICE_NAME,
];

/// CloudEvents `source` of this service's events.
pub const EVENT_SOURCE: &str = "crm/permission";

/// The development key-encryption key in `config/base.yaml`: base64 of
/// `crm-dev-only-kek-do-not-use-prod`. Refused in production.
pub const DEV_KEY_ENCRYPTION_KEY: &str = "Y3JtLWRldi1vbmx5LWtlay1kby1ub3QtdXNlLXByb2Q=";

/// This service's own schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the service would not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Host(#[from] crm_host::HostError),
    #[error(transparent)]
    KeyEncryptionKey(#[from] keys::KekError),
    #[error(
        "auth.key_encryption_key is the development key, refused with CRM_ENVIRONMENT=production: \
         set CRM__AUTH__KEY_ENCRYPTION_KEY to base64 of 32 random bytes"
    )]
    DevelopmentKeyInProduction,
    #[error("invalid auth settings: {0}")]
    Auth(#[from] error::Error),
}

/// Refuses a missing or malformed key-encryption key, and the development one in production.
pub fn key_encryption_key(
    settings: &settings::AuthSettings,
    environment: &str,
) -> Result<keys::Kek, StartError> {
    let previous = settings
        .previous_key_encryption_keys
        .iter()
        .map(keys::Kek::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let kek = keys::Kek::parse(&settings.key_encryption_key)?.with_previous(previous);
    if environment == "production"
        && settings.key_encryption_key.expose_secret().trim() == DEV_KEY_ENCRYPTION_KEY
    {
        return Err(StartError::DevelopmentKeyInProduction);
    }
    Ok(kek)
}

/// The permission service process, bound and ready to run.
pub struct Application {
    host: Host,
    settings: Settings,
    outbox: Outbox,
    auth: service::Auth,
    users: service::Users,
    org: authz::service::Org,
    access: authz::service::Access,
    passwords: Arc<password::Passwords>,
}

impl Application {
    /// Checks the settings, binds the listeners (port 0 picks free ones) and prepares, without
    /// connecting to anything: Postgres and Kafka may come up later.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let environment = std::env::var("CRM_ENVIRONMENT").unwrap_or_else(|_| "local".into());
        let kek = key_encryption_key(&settings.auth, &environment)?;
        let passwords = Arc::new(password::Passwords::new(&settings.auth.password_hashing)?);
        crm_events::kafka::check_config(&settings.kafka)
            .map_err(|e| crm_host::HostError::Config(e.to_string()))?;
        let mut host = Host::bind(
            NAME,
            settings.server.clone(),
            settings.database.clone(),
            &settings.identity,
        )
        .await?;
        let pool = host.pool().clone();
        let outbox = Outbox::new(EVENT_SOURCE, &settings.events.topic);
        let keys = keys::KeyRing::new(
            pool.clone(),
            kek,
            throttle::secs(settings.auth.key_rotation_secs.max(1)),
            throttle::secs(settings.auth.access_ttl_secs.max(1)),
            throttle::secs(settings.auth.clock_skew_secs),
        );
        host.merge_http(http::router(keys.clone()));
        let auth = service::Auth::new(
            pool.clone(),
            outbox.clone(),
            keys,
            passwords.clone(),
            &settings.auth,
        );
        let users = service::Users::new(pool.clone(), outbox.clone(), passwords.clone())
            .with_org_defaults(settings.org.clone());
        let org = authz::service::Org::new(pool.clone(), outbox.clone());
        let access = authz::service::Access::new(pool);
        Ok(Self {
            host,
            settings,
            outbox,
            auth,
            users,
            org,
            access,
            passwords,
        })
    }

    /// The password hasher, for diagnostics and tests (e.g. how many verifications ran).
    pub fn passwords(&self) -> Arc<password::Passwords> {
        self.passwords.clone()
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
            auth,
            users,
            org,
            access,
            passwords: _,
        } = self;
        let mut host = host;
        let pool = host.pool().clone();
        // Without a signing key the service cannot sign anyone in, and bootstrap users must exist
        // before anyone tries: both happen before readiness turns true.
        host.warm_up(warm_up(
            auth.clone(),
            users.clone(),
            org.clone(),
            settings.bootstrap.clone(),
        ));
        let routes = tonic::service::Routes::new(AuthServiceServer::new(grpc::AuthApi::new(
            auth.clone(),
            oidc::Oidc::new(
                auth.clone(),
                users.clone(),
                org.clone(),
                &settings.oidc.providers,
            ),
        )))
        .add_service(UserServiceServer::new(grpc::UserApi::new(users.clone())))
        .add_service(ApiClientServiceServer::new(grpc::ApiClientApi::new(
            clients::ApiClients::new(users.clone()),
        )))
        .add_service(OrgServiceServer::new(authz::grpc::OrgApi::new(org.clone())))
        .add_service(SharingServiceServer::new(authz::sharing::SharingApi::new(
            org.clone(),
        )))
        .add_service(AccessServiceServer::new(authz::grpc::AccessApi::new(
            access,
        )))
        .add_service(AuditServiceServer::new(audit::AuditApi::new(pool.clone())));
        let interval = maintenance_interval(settings.auth.key_rotation_secs);
        let start_tasks = move |tasks_stop: CancellationToken| -> Vec<Task> {
            let mut tasks: Vec<Task> =
                vec![Box::pin(maintenance(auth, interval, tasks_stop.clone()))];
            tasks.push(Box::pin(follow_audit_sources(
                pool.clone(),
                settings.kafka.clone(),
                settings.audit.clone(),
                settings.events.topic.clone(),
                tasks_stop.clone(),
            )));
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
            names: &SERVICE_NAMES,
            descriptor_sets: &[crm_proto::FILE_DESCRIPTOR_SET],
        };
        host.run(grpc, &[&crm_events::MIGRATOR, &MIGRATOR], start_tasks, stop)
            .await
    }
}

/// Makes the audit trail from the event topics until `stop` (see `audit`). The replicas share
/// the partitions through leases in this service's database, and commit each partition's offset
/// with the audit entries (`crm_events::consumer`, ADR 0013), so a replica killed and restarted,
/// alone or not, resumes from its last entry within one `kafka.session_timeout_ms`. The topics
/// are made first (a topic that does not exist has no partitions to read yet); a broker that is
/// not there yet is retried.
async fn follow_audit_sources(
    pool: sqlx::PgPool,
    kafka: crm_settings::KafkaSettings,
    audit: settings::AuditSettings,
    own_topic: String,
    stop: CancellationToken,
) {
    let mut topics = audit.topics.clone();
    if !topics.contains(&own_topic) {
        topics.push(own_topic);
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut delay = Duration::from_millis(200);
    while let Err(err) = crm_events::kafka::ensure_topics(&kafka, &names).await {
        tracing::warn!(error = %err, "audit: cannot make sure the source topics exist yet");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    match crm_events::consumer::IdempotentConsumer::new(
        &audit.consumer_group,
        &kafka,
        &names,
        pool,
        audit::AuditHandler,
    ) {
        Ok(consumer) => consumer.run(stop).await,
        Err(err) => tracing::error!(error = %err, "audit consumer could not start"),
    }
}

/// How often maintenance runs: often enough to rotate close to on time with short rotations
/// (tests), at most once a minute. Signing rotates lazily anyway when its key is too old.
fn maintenance_interval(key_rotation_secs: u64) -> Duration {
    Duration::from_secs((key_rotation_secs / 4).clamp(1, 60))
}

/// Start-up work, retried until it is done: a signing key, the demo organisation and the
/// bootstrap users (see `settings::BootstrapSettings`).
async fn warm_up(
    auth: service::Auth,
    users: service::Users,
    org: authz::service::Org,
    bootstrap: settings::BootstrapSettings,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = async {
            auth.keys()
                .maintain()
                .await
                .map_err(|e| format!("signing keys: {e}"))?;
            if bootstrap.demo_org {
                authz::seed::seed_demo_org(&org)
                    .await
                    .map_err(|e| format!("demo organisation: {e}"))?;
            }
            if !bootstrap.users.is_empty() {
                users
                    .ensure_bootstrap(&bootstrap.users)
                    .await
                    .map_err(|e| format!("bootstrap users: {e}"))?;
                authz::seed::ensure_bootstrap_org(&org, &bootstrap.users)
                    .await
                    .map_err(|e| format!("bootstrap users' roles: {e}"))?;
            }
            if !bootstrap.api_clients.is_empty() {
                clients::ensure_bootstrap(&users, &org, &bootstrap.api_clients)
                    .await
                    .map_err(|e| format!("bootstrap API clients: {e}"))?;
            }
            Ok::<(), String>(())
        };
        match attempt.await {
            Ok(()) => return,
            Err(err) => {
                tracing::error!(error = %err, retry_in_ms = delay.as_millis() as u64, "start-up work failed")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The background task: rotates and retires signing keys and purges stale rows periodically.
async fn maintenance(auth: service::Auth, interval: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(err) = auth.keys().maintain().await {
            tracing::error!(error = %err, "signing key maintenance failed");
        }
        if let Err(err) = auth.purge().await {
            tracing::warn!(error = %err, "purging stale rows failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn auth_with_kek(kek: &str) -> settings::AuthSettings {
        let yaml = format!("key_encryption_key: \"{kek}\"");
        config::Config::builder()
            .add_source(config::File::from_str(&yaml, config::FileFormat::Yaml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn development_kek_is_refused_in_production_only() {
        let dev = auth_with_kek(DEV_KEY_ENCRYPTION_KEY);
        assert!(key_encryption_key(&dev, "local").is_ok());
        assert!(matches!(
            key_encryption_key(&dev, "production"),
            Err(StartError::DevelopmentKeyInProduction)
        ));
        let mut other = dev.clone();
        other.key_encryption_key =
            SecretString::from("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
        assert!(key_encryption_key(&other, "production").is_ok());
    }

    #[test]
    fn maintenance_runs_at_least_every_minute() {
        assert_eq!(maintenance_interval(2), Duration::from_secs(1));
        assert_eq!(maintenance_interval(20), Duration::from_secs(5));
        assert_eq!(
            maintenance_interval(30 * 24 * 3600),
            Duration::from_secs(60)
        );
    }
}
