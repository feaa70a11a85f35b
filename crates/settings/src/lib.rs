//! Typed, layered settings shared by every CRM process.
//!
//! Each process ships a defaults file (compiled in with `include_str!`, so a binary runs from any
//! directory). On top of it come, in order:
//!
//! 1. `$CRM_CONFIG_DIR/<environment>.yaml` (optional; `CRM_CONFIG_DIR` defaults to `./config`,
//!    `<environment>` is `CRM_ENVIRONMENT`, default `local`);
//! 2. environment variables `CRM__SECTION__KEY` (double underscore between levels), e.g.
//!    `CRM__DATABASE__URL=postgres://…` or `CRM__SERVER__GRPC_PORT=0`.
//!
//! Secrets are [`secrecy::SecretString`]s: they never appear in `Debug` output or logs.
//!
//! The blocks every service has (`server`, `identity`, `database`, `redis`, `kafka`) live here so that all
//! services are configured the same way; a service adds its own sections next to them.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use secrecy;

mod identity;
mod security;
pub use identity::{CallerSettings, IdentitySettings};
pub use security::{ClientCert, KafkaProtocol, KafkaSecurity, Sasl, SaslMechanism, TlsFiles};

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("unknown CRM_ENVIRONMENT {0:?}: use `local` or `production`")]
    UnknownEnvironment(String),
}

/// Loads `T` from the compiled-in `defaults` YAML, the environment file and `CRM__` variables.
pub fn load<T: DeserializeOwned>(defaults: &str) -> Result<T, SettingsError> {
    load_with_lists(defaults, &[])
}

/// [`load`], where the variables of `list_keys` (besides `kafka.brokers`) are comma-separated
/// lists, e.g. `CRM__AUDIT__TOPICS=a,b` for the key `audit.topics`.
pub fn load_with_lists<T: DeserializeOwned>(
    defaults: &str,
    list_keys: &[&str],
) -> Result<T, SettingsError> {
    load_layers(defaults, list_keys, None)
}

/// [`load`] with `variables` standing in for the process environment's `CRM__` variables: what
/// a test uses to check that a deployment's variables reach the settings they should.
pub fn load_with_variables<T: DeserializeOwned>(
    defaults: &str,
    variables: &[(&str, &str)],
) -> Result<T, SettingsError> {
    let map = variables
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_layers(defaults, &[], Some(map))
}

fn load_layers<T: DeserializeOwned>(
    defaults: &str,
    list_keys: &[&str],
    source: Option<config::Map<String, String>>,
) -> Result<T, SettingsError> {
    let environment = std::env::var("CRM_ENVIRONMENT").unwrap_or_else(|_| "local".into());
    if !matches!(environment.as_str(), "local" | "production") {
        return Err(SettingsError::UnknownEnvironment(environment));
    }
    let dir = std::env::var("CRM_CONFIG_DIR").unwrap_or_else(|_| "config".into());
    let mut variables = config::Environment::with_prefix("CRM")
        .prefix_separator("__")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("kafka.brokers")
        .try_parsing(true)
        .source(source);
    for key in list_keys {
        variables = variables.with_list_parse_key(key);
    }
    let settings = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Yaml))
        .add_source(
            config::File::with_name(&format!("{dir}/{environment}"))
                .format(config::FileFormat::Yaml)
                .required(false),
        )
        .add_source(variables)
        .build()?;
    Ok(settings.try_deserialize()?)
}

/// The section `key` of a compiled-in defaults file alone, without the environment's layers:
/// what a process ships with (tests start services with their shipped grants, for example).
pub fn defaults_section<T: DeserializeOwned>(
    defaults: &str,
    key: &str,
) -> Result<T, SettingsError> {
    let settings = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Yaml))
        .build()?;
    Ok(settings.get(key)?)
}

/// Where a process listens.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    /// gRPC port; 0 picks a free one (tests).
    #[serde(default)]
    pub grpc_port: u16,
    /// HTTP port for `/healthz`, `/readyz`, `/metrics` (the gateway serves its API here too).
    #[serde(default)]
    pub http_port: u16,
    /// How long SIGTERM waits for in-flight work before giving up.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// After SIGTERM, how long the process goes on taking new calls while it already reports
    /// not-ready/NOT_SERVING, so that callers (the gateway's balancer, kube-proxy, ingresses) stop
    /// sending before the listener closes. Counted before `shutdown_grace_secs`.
    #[serde(default)]
    pub drain_delay_ms: u64,
    /// Migrate the database and exit without serving (a Kubernetes migration Job runs the
    /// service's image with `CRM__SERVER__MIGRATE_ONLY=true`).
    #[serde(default)]
    pub migrate_only: bool,
}

fn default_shutdown_grace_secs() -> u64 {
    20
}

/// How a process reaches the services it calls (its `services` map: name → one gRPC endpoint
/// or a comma-separated list, extended by `CRM__SERVICES__<NAME>`).
#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamSettings {
    /// How often endpoint host names are resolved again, so replicas added or removed are seen.
    #[serde(default = "default_resolve_interval_secs")]
    pub resolve_interval_secs: u64,
    /// Bounds opening a connection to one replica.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Bounds each call a service makes to another (the gateway bounds its calls by its request
    /// timeout instead).
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            resolve_interval_secs: default_resolve_interval_secs(),
            connect_timeout_ms: default_connect_timeout_ms(),
            call_timeout_ms: default_call_timeout_ms(),
        }
    }
}

fn default_resolve_interval_secs() -> u64 {
    5
}

fn default_connect_timeout_ms() -> u64 {
    3_000
}

fn default_call_timeout_ms() -> u64 {
    5_000
}

/// This service's own Postgres database.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/database`; a secret because it may hold the password.
    pub url: SecretString,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_acquire_timeout_secs")]
    pub acquire_timeout_secs: u64,
    /// Create the database at start when it is missing (local and test set-ups; off in production,
    /// where the database is provisioned by the operator with its own credentials).
    #[serde(default)]
    pub create_if_missing: bool,
}

fn default_max_connections() -> u32 {
    10
}

fn default_acquire_timeout_secs() -> u64 {
    5
}

impl DatabaseSettings {
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// Redis, used for caches, idempotency keys and rate limits.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// `redis://host:port/db`, or `rediss://` for TLS; a secret because it may carry a password.
    pub url: SecretString,
    /// For `rediss://`: the CA that signed the server's certificate (default: the system's
    /// roots) and a client certificate for mutual TLS.
    #[serde(default)]
    pub tls: TlsFiles,
    /// Upper bound for one command: a slow or dead Redis must not slow requests down.
    #[serde(default = "default_redis_timeout_ms")]
    pub timeout_ms: u64,
    /// Prefix for every key, so several deployments can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

fn default_redis_timeout_ms() -> u64 {
    200
}

fn default_key_prefix() -> String {
    "crm".into()
}

impl RedisSettings {
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }
}

/// The Kafka-protocol broker.
#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    pub brokers: Vec<String>,
    /// Create this service's topics at start when missing (off where the platform team owns topics).
    #[serde(default)]
    pub create_topics: bool,
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// How long one publish may take before the outbox relay counts it as failed and backs off.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// How long a consumer may go silent before the group gives its partitions to the others:
    /// how soon a crashed (SIGKILLed, lost) replica's share is taken over. A replica that stops
    /// cleanly leaves its group at once and does not wait for this.
    #[serde(
        default = "default_session_timeout_ms",
        deserialize_with = "session_timeout_ms"
    )]
    pub session_timeout_ms: u64,
    /// TLS and SASL towards the brokers (`protocol`, `tls.*`, `sasl.*`).
    #[serde(default)]
    pub security: KafkaSecurity,
    /// Extra librdkafka properties, passed through as given and applied last (an escape hatch,
    /// e.g. `ssl.endpoint.identification.algorithm`).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

fn default_partitions() -> i32 {
    6
}

fn default_replication() -> i32 {
    1
}

fn default_message_timeout_ms() -> u64 {
    10_000
}

fn default_session_timeout_ms() -> u64 {
    // librdkafka's own default.
    45_000
}

/// librdkafka's range, refused at load: out of it the consumer could not even be created, and
/// the service would run without it.
fn session_timeout_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let ms = u64::deserialize(d)?;
    if !(1_000..=3_600_000).contains(&ms) {
        return Err(serde::de::Error::custom(format!(
            "kafka.session_timeout_ms must be between 1000 and 3600000, not {ms}"
        )));
    }
    Ok(ms)
}

impl KafkaSettings {
    pub fn bootstrap_servers(&self) -> String {
        self.brokers.join(",")
    }
}

#[cfg(test)]
// `std::env::set_var` is unsafe: one test, alone in its binary, sets the variables it reads.
#[allow(unsafe_code)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        server: ServerSettings,
        database: DatabaseSettings,
        kafka: KafkaSettings,
    }

    const DEFAULTS: &str = r#"
server: { host: 127.0.0.1, grpc_port: 50051, http_port: 9101 }
database: { url: "postgres://u:hunter2@localhost/db" }
kafka: { brokers: ["localhost:9092"] }
"#;

    // One test touches the process environment, so the layering checks run in sequence.
    #[test]
    fn layering_and_secrets() {
        let s: Sample = load(DEFAULTS).unwrap();
        assert_eq!(s.server.grpc_port, 50051);
        assert_eq!(s.database.max_connections, 10);
        assert!(
            !format!("{:?}", s.database).contains("hunter2"),
            "secret leaked into Debug"
        );

        // SAFETY: this is the only test in this binary that reads or writes the environment.
        unsafe {
            std::env::set_var("CRM__SERVER__GRPC_PORT", "0");
            std::env::set_var("CRM__KAFKA__BROKERS", "a:1,b:2");
        }
        let s: Sample = load(DEFAULTS).unwrap();
        assert_eq!(s.server.grpc_port, 0);
        assert_eq!(s.kafka.bootstrap_servers(), "a:1,b:2");
        assert_eq!(s.kafka.session_timeout_ms, 45_000);

        // A list variable, for the keys a service names.
        #[derive(Debug, Deserialize)]
        struct Audit {
            topics: Vec<String>,
        }
        #[derive(Debug, Deserialize)]
        struct WithList {
            audit: Audit,
        }
        unsafe { std::env::set_var("CRM__AUDIT__TOPICS", "x,y") };
        let s: WithList = load_with_lists("audit: { topics: [a] }", &["audit.topics"]).unwrap();
        assert_eq!(s.audit.topics, ["x", "y"]);
        unsafe { std::env::remove_var("CRM__AUDIT__TOPICS") };

        // Callers' keys and grants from variables: the map key is the principal's name, lists
        // come as one comma-separated value.
        #[derive(Debug, Deserialize)]
        struct WithIdentity {
            identity: IdentitySettings,
        }
        unsafe {
            std::env::set_var("CRM__IDENTITY__CALLERS__GATEWAY__KEYS", "k1, k2");
            std::env::set_var(
                "CRM__IDENTITY__CALLERS__GATEWAY__ON_BEHALF_OF_USERS",
                "true",
            );
        }
        let s: WithIdentity = load(
            "identity: { name: customer, callers: { gateway: { rpcs: [a.B/C] }, erp: { keys: [k3] } } }",
        )
        .unwrap();
        let gateway = &s.identity.callers["gateway"];
        assert_eq!(gateway.keys, ["k1", "k2"]);
        assert!(gateway.on_behalf_of_users);
        assert_eq!(gateway.rpcs, ["a.B/C"]);
        assert_eq!(s.identity.callers["erp"].keys, ["k3"]);
        assert_eq!(s.identity.token_ttl_secs, 60);
        unsafe {
            std::env::remove_var("CRM__IDENTITY__CALLERS__GATEWAY__KEYS");
            std::env::remove_var("CRM__IDENTITY__CALLERS__GATEWAY__ON_BEHALF_OF_USERS");
        }

        for bad in ["0", "999", "3600001"] {
            unsafe { std::env::set_var("CRM__KAFKA__SESSION_TIMEOUT_MS", bad) };
            let err = load::<Sample>(DEFAULTS).unwrap_err().to_string();
            assert!(err.contains("kafka.session_timeout_ms"), "{bad}: {err}");
        }
        unsafe { std::env::remove_var("CRM__KAFKA__SESSION_TIMEOUT_MS") };

        unsafe { std::env::set_var("CRM_ENVIRONMENT", "staging") };
        assert!(matches!(
            load::<Sample>(DEFAULTS),
            Err(SettingsError::UnknownEnvironment(_))
        ));
        unsafe {
            std::env::remove_var("CRM_ENVIRONMENT");
            std::env::remove_var("CRM__SERVER__GRPC_PORT");
            std::env::remove_var("CRM__KAFKA__BROKERS");
        }
    }
}
