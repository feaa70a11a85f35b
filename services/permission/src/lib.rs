//! The permission service: authentication — local users, sign-in with username and password or
//! single sign-on, API clients, access and refresh tokens, and the keys that sign them — and
//! authorisation — departments, managers, roles with grants, data scopes and field rules,
//! sharing, and the decisions made from them ([`org`] documents the model, [`access`] the
//! decisions) — and the audit trail.
//!
//! Serves `crm.permission.v1.AuthService`, `UserService`, `ApiClientService`, `OrgService`,
//! `SharingService`, `AccessService` and `AuditService` over gRPC and the JWKS at
//! `GET /.well-known/jwks.json` on its HTTP port, owns its Postgres database, publishes
//! `permission.*` events through the transactional outbox, and consumes the services' events
//! into the audit trail.
//!
//! # Layout
//!
//! One module per aggregate, each laid out the same way (`docs/adding-a-service.md`):
//! `mod.rs` (what lives there), `domain.rs` (types and rules, no I/O), `store.rs` (all its SQL),
//! `service.rs` (use cases: transactions, outbox events) and `grpc.rs` (the edge: wire ↔ domain,
//! errors → `Status`).
//!
//! - [`auth`]: sign-in, refresh tokens and sessions, logout, client credentials — with the
//!   lockout rules ([`auth::throttle`]) and token formats ([`auth::tokens`]) it alone uses;
//! - [`keys`]: signing keys — encryption at rest, rotation, the JWKS (an HTTP edge, no gRPC);
//! - [`users`]: accounts, profiles, the organisation's settings;
//! - [`clients`]: API clients and their service users;
//! - [`oidc`]: single sign-on (its RPCs are `AuthService`'s, served by [`auth::grpc`]);
//! - [`org`]: departments, roles, grants, field rules, users' places; the permission version;
//! - [`sharing`]: record shares and sharing rules;
//! - [`access`]: the decision engine — snapshots, compiled scopes, explanations;
//! - [`audit`]: the audit trail, its consumer and its reading.
//!
//! Shared by all of them, and no aggregate's own: [`settings`] (typed configuration), [`error`],
//! [`password`] (argon2id hashing, used by [`users`] and [`auth`] alike), [`validation`]
//! (`Violations`), [`events`] (the outbox and the write clock), [`actor`] (who acts, checked at
//! the edges) and [`wire`] (the edges' helpers). [`seed`] is start-up work over [`org`] (the
//! demo organisation, bootstrap users' roles). [`Application`] is start-up and shutdown
//! (`build` → `grpc_port` → `run_until_stopped`).
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
//! parallel guesses cannot outrun the limit ([`auth::throttle`]). The lock lasts `base_lock_secs`,
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

pub mod access;
pub mod actor;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod error;
pub mod events;
pub mod keys;
pub mod oidc;
pub mod org;
pub mod password;
pub mod registry;
pub mod seed;
pub mod settings;
pub mod sharing;
pub mod users;
pub mod validation;
pub mod wire;

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
use crm_proto::permission::registry_service_server::{self, RegistryServiceServer};
use crm_proto::permission::sharing_service_server::{self, SharingServiceServer};
use crm_proto::permission::user_service_server::{self, UserServiceServer};
use secrecy::ExposeSecret;

pub use settings::Settings;

/// The process name, used in logs and traces.
pub const NAME: &str = "crm-permission";

/// The gRPC services this process serves (what reflection lists).
pub const SERVICE_NAMES: [&str; 8] = [
    auth_service_server::SERVICE_NAME,
    user_service_server::SERVICE_NAME,
    api_client_service_server::SERVICE_NAME,
    org_service_server::SERVICE_NAME,
    sharing_service_server::SERVICE_NAME,
    access_service_server::SERVICE_NAME,
    audit_service_server::SERVICE_NAME,
    registry_service_server::SERVICE_NAME,
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
    auth: auth::Auth,
    users: users::Users,
    org: org::Org,
    access: access::Access,
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
            settings::secs(settings.auth.key_rotation_secs.max(1)),
            settings::secs(settings.auth.access_ttl_secs.max(1)),
            settings::secs(settings.auth.clock_skew_secs),
        );
        host.merge_http(keys::http::router(keys.clone()));
        let auth = auth::Auth::new(
            pool.clone(),
            outbox.clone(),
            keys,
            passwords.clone(),
            &settings.auth,
            settings.clock.clone(),
        );
        let users = users::Users::new(pool.clone(), outbox.clone(), passwords.clone())
            .with_org_defaults(settings.org.clone());
        let org = org::Org::new(pool.clone(), outbox.clone());
        let access = access::Access::new(pool);
        host.resolve_scopes_with(crm_identity::Scopes::new(Arc::new(access.clone())));
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
        let routes = tonic::service::Routes::new(AuthServiceServer::new(auth::grpc::AuthApi::new(
            auth.clone(),
            oidc::Oidc::new(
                auth.clone(),
                users.clone(),
                org.clone(),
                &settings.oidc.providers,
            ),
        )))
        .add_service(UserServiceServer::new(users::grpc::UserApi::new(
            users.clone(),
        )))
        .add_service(ApiClientServiceServer::new(
            clients::grpc::ApiClientApi::new(clients::ApiClients::new(users.clone())),
        ))
        .add_service(OrgServiceServer::new(org::grpc::OrgApi::new(org.clone())))
        .add_service(SharingServiceServer::new(sharing::grpc::SharingApi::new(
            sharing::Sharing::new(org.clone()),
        )))
        .add_service(AccessServiceServer::new(access::grpc::AccessApi::new(
            access,
        )))
        .add_service(AuditServiceServer::new(audit::grpc::AuditApi::new(
            audit::Audit::new(pool.clone()),
        )))
        .add_service(RegistryServiceServer::new(
            registry::grpc::RegistryApi::new(registry::service::Registry::new(pool.clone())),
        ));
        let interval = maintenance_interval(settings.auth.key_rotation_secs);
        let start_tasks = move |tasks_stop: CancellationToken| -> Vec<Task> {
            let mut tasks: Vec<Task> =
                vec![Box::pin(maintenance(auth, interval, tasks_stop.clone()))];
            tasks.push(Box::pin(audit::service::follow_sources(
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

/// How often maintenance runs: often enough to rotate close to on time with short rotations
/// (tests), at most once a minute. Signing rotates lazily anyway when its key is too old.
fn maintenance_interval(key_rotation_secs: u64) -> Duration {
    Duration::from_secs((key_rotation_secs / 4).clamp(1, 60))
}

/// Start-up work, retried until it is done: a signing key, the demo organisation and the
/// bootstrap users (see `settings::BootstrapSettings`).
async fn warm_up(
    auth: auth::Auth,
    users: users::Users,
    org: org::Org,
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
                seed::seed_demo_org(&org)
                    .await
                    .map_err(|e| format!("demo organisation: {e}"))?;
            }
            if !bootstrap.users.is_empty() {
                users
                    .ensure_bootstrap(&bootstrap.users)
                    .await
                    .map_err(|e| format!("bootstrap users: {e}"))?;
                seed::ensure_bootstrap_org(&org, &bootstrap.users)
                    .await
                    .map_err(|e| format!("bootstrap users' roles: {e}"))?;
            }
            if !bootstrap.api_clients.is_empty() {
                clients::service::ensure_bootstrap(&users, &org, &bootstrap.api_clients)
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
async fn maintenance(auth: auth::Auth, interval: Duration, stop: CancellationToken) {
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
