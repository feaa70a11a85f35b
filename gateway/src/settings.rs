//! The gateway's settings: the shared `server` and `redis` blocks plus its own sections.
//!
//! Every field is `pub` so tests build settings literally instead of going through files and
//! environment variables. Semantic checks (allowed algorithms, key sources) happen in
//! [`crate::security::auth::Authenticator::new`] at start-up, so a bad value stops the process
//! before it takes traffic.

use std::collections::BTreeMap;

use crm_settings::{RedisSettings, ServerSettings};
use serde::{Deserialize, Deserializer};

/// Everything the gateway is configured with.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `http_port` is the API port (also `/healthz`, `/readyz`, `/metrics`); `grpc_port` is unused.
    pub server: ServerSettings,
    /// The key the gateway signs its gRPC calls with (ADR 0012).
    pub identity: crm_settings::IdentitySettings,
    /// Idempotency records, shared by every gateway replica.
    pub redis: RedisSettings,
    /// Where the services listen, by name (`customer`, `permission`, …): one gRPC endpoint or a
    /// comma-separated list each. Calls are balanced over every SERVING replica behind them, and
    /// a host name counts every address it resolves to (in Kubernetes, a headless Service: one
    /// address per ready pod). A domain whose service is missing stops the gateway at start-up;
    /// `permission` is always needed (sign-in and every authorisation decision).
    pub services: BTreeMap<String, String>,
    #[serde(default)]
    pub upstream: UpstreamSettings,
    pub auth: AuthSettings,
    #[serde(default)]
    pub idempotency: IdempotencySettings,
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    /// The broker, to follow the permission service's events (a disabled user is refused within
    /// a second on every replica). Without it, user status is refreshed by TTL only.
    #[serde(default)]
    pub kafka: Option<crm_settings::KafkaSettings>,
    #[serde(default)]
    pub principals: PrincipalsSettings,
    #[serde(default)]
    pub authz: AuthzSettings,
}

/// How the gateway learns whether a token's user may still act (see `principals`).
#[derive(Debug, Clone, Deserialize)]
pub struct PrincipalsSettings {
    /// The permission service's event topic.
    #[serde(default = "default_permission_topic")]
    pub permission_topic: String,
    /// How long a user's status is trusted without an event saying it changed.
    #[serde(default = "default_status_ttl_secs")]
    pub status_ttl_secs: u64,
}

fn default_permission_topic() -> String {
    "crm.permission.events".into()
}

fn default_status_ttl_secs() -> u64 {
    60
}

impl Default for PrincipalsSettings {
    fn default() -> Self {
        Self {
            permission_topic: default_permission_topic(),
            status_ttl_secs: default_status_ttl_secs(),
        }
    }
}

impl Settings {
    /// Loads `config/base.yaml` (compiled in), then the environment file, then `CRM__…` variables.
    pub fn load() -> Result<Self, crm_settings::SettingsError> {
        crm_settings::load(include_str!("../config/base.yaml"))
    }
}

/// How the gateway reaches the services named in `services` (shared with the services).
pub use crm_settings::UpstreamSettings;

/// How authorisation decisions are cached (see `authz`).
#[derive(Debug, Clone, Deserialize)]
pub struct AuthzSettings {
    /// How long a cached scope lives in Redis. Entries are keyed by permission version, so this
    /// only bounds memory: a change of permissions is seen at once, whatever the TTL.
    #[serde(default = "default_authz_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// How often the current permission version is asked for, in case events are missed (or
    /// no broker is configured): the longest a revocation can go unnoticed then.
    #[serde(default = "default_version_poll_secs")]
    pub version_poll_secs: u64,
}

fn default_authz_cache_ttl_secs() -> u64 {
    600
}

fn default_version_poll_secs() -> u64 {
    5
}

impl Default for AuthzSettings {
    fn default() -> Self {
        Self {
            cache_ttl_secs: default_authz_cache_ttl_secs(),
            version_poll_secs: default_version_poll_secs(),
        }
    }
}

/// How bearer tokens are verified.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim (one of the token's audiences).
    pub audience: String,
    /// Accepted `alg` header values. Only asymmetric algorithms: a symmetric (`HS*`) or `none`
    /// entry stops start-up, because with a public key anyone could forge HS tokens. Accepts a
    /// YAML list or a comma-separated string (`CRM__AUTH__ALGORITHMS=RS256,ES256`).
    #[serde(default = "default_algorithms", deserialize_with = "list_or_csv")]
    pub algorithms: Vec<String>,
    /// A PEM public key (RSA, EC P-256/P-384 or Ed25519), valid for any `kid`.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// A file holding such a PEM key (a mounted Secret or ConfigMap).
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// An identity provider's JWKS; keys are cached by `kid` and refetched on an unknown `kid`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
}

fn default_algorithms() -> Vec<String> {
    ["RS256", "ES256", "EdDSA"].map(String::from).to_vec()
}

fn default_leeway_secs() -> u64 {
    30
}

fn list_or_csv<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match ListOrCsv::deserialize(deserializer)? {
        ListOrCsv::List(list) => list,
        ListOrCsv::Csv(csv) => csv
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// `Idempotency-Key` handling on POST.
#[derive(Debug, Clone, Deserialize)]
pub struct IdempotencySettings {
    /// How long a completed response is kept for replay.
    #[serde(default = "default_idempotency_ttl_secs")]
    pub ttl_secs: u64,
}

fn default_idempotency_ttl_secs() -> u64 {
    86_400
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            ttl_secs: default_idempotency_ttl_secs(),
        }
    }
}

/// Request quotas, counted in Redis so every gateway replica enforces the same budget.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// Off: no quotas and no RateLimit headers.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Requests per `window_secs` for one authenticated user (bursts up to the whole budget).
    #[serde(default = "default_user_limit")]
    pub per_user: u32,
    /// Requests per `window_secs` for one client address without a valid token (sign-in).
    #[serde(default = "default_anonymous_limit")]
    pub per_anonymous_ip: u32,
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
}

fn default_true() -> bool {
    true
}

fn default_user_limit() -> u32 {
    1200
}

fn default_anonymous_limit() -> u32 {
    120
}

fn default_window_secs() -> u64 {
    60
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            per_user: default_user_limit(),
            per_anonymous_ip: default_anonymous_limit(),
            window_secs: default_window_secs(),
        }
    }
}

/// Limits on every request.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    /// Largest request body accepted (413 above it).
    #[serde(default = "default_body_limit_bytes")]
    pub body_limit_bytes: usize,
    /// Upper bound for one request, including the calls it makes to services (503 after it).
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
}

fn default_body_limit_bytes() -> usize {
    1024 * 1024
}

fn default_request_timeout_secs() -> u64 {
    30
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: default_body_limit_bytes(),
            request_timeout_secs: default_request_timeout_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_defaults_parse() {
        let settings: Settings =
            crm_settings::load(include_str!("../config/base.yaml")).expect("base.yaml loads");
        assert_eq!(settings.auth.algorithms, ["RS256", "ES256", "EdDSA"]);
        assert_eq!(settings.auth.leeway_secs, 30);
        assert_eq!(settings.idempotency.ttl_secs, 86_400);
        assert_eq!(settings.http.body_limit_bytes, 1024 * 1024);
        assert_eq!(settings.http.request_timeout_secs, 30);
        assert!(settings.auth.public_key_pem.is_none());
        let services: Vec<&str> = settings.services.keys().map(String::as_str).collect();
        assert_eq!(services, ["customer", "permission"]);
        assert_eq!(settings.upstream.resolve_interval_secs, 5);
    }

    /// What `./dev`, kustomize and Helm set (`CRM__SERVICES__<NAME>`) reaches the map, and a
    /// service the defaults do not name can be added the same way.
    #[test]
    fn services_are_a_map_the_environment_extends() {
        let settings: Settings = crm_settings::load_with_variables(
            include_str!("../config/base.yaml"),
            &[
                ("CRM__SERVICES__CUSTOMER", "http://crm-customer:50051"),
                ("CRM__SERVICES__SALES", "http://crm-sales:50052"),
                ("CRM__UPSTREAM__RESOLVE_INTERVAL_SECS", "7"),
            ],
        )
        .expect("loads");
        assert_eq!(settings.services["customer"], "http://crm-customer:50051");
        assert_eq!(settings.services["sales"], "http://crm-sales:50052");
        assert_eq!(settings.services["permission"], "http://127.0.0.1:50054");
        assert_eq!(settings.upstream.resolve_interval_secs, 7);
    }

    #[test]
    fn algorithms_accept_a_comma_separated_string() {
        let auth: AuthSettings = serde_json::from_value(serde_json::json!({
            "issuer": "i", "audience": "a", "algorithms": "RS256, ES256"
        }))
        .unwrap();
        assert_eq!(auth.algorithms, ["RS256", "ES256"]);
    }
}
