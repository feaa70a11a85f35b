//! The permission service's settings: the shared blocks plus its own.
//!
//! Secrets (`auth.key_encryption_key`, bootstrap passwords, the database URL) are
//! [`SecretString`]s, so `Debug` output and logs never show them.

use std::collections::BTreeMap;

use crm_settings::{DatabaseSettings, KafkaSettings, ServerSettings};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    /// Who may call this service, and what each caller may do as itself (ADR 0012).
    pub identity: crm_settings::IdentitySettings,
    pub database: DatabaseSettings,
    pub kafka: KafkaSettings,
    pub events: EventsSettings,
    pub auth: AuthSettings,
    /// Users created at start when missing (development and demos only).
    #[serde(default)]
    pub bootstrap: BootstrapSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub oidc: OidcSettings,
    /// The organisation's first defaults for users' time zone and language.
    #[serde(default)]
    pub org: OrgDefaults,
    /// The time sign-in lockouts go by: the system's, or a test's manual clock. Not
    /// configuration (never read from files or the environment).
    #[serde(skip)]
    pub clock: crm_clock::Clock,
}

/// The organisation's defaults for users who chose no time zone or language of their own. Only
/// the *first* values: they are written to the database when it has none, and from then on the
/// stored settings (changed through `UpdateOrgSettings`) win over these keys.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgDefaults {
    /// An IANA time zone name (`Asia/Shanghai`); an unknown one stops the start with the key named.
    #[serde(default = "default_org_time_zone", deserialize_with = "time_zone_name")]
    pub default_time_zone: crm_access::Tz,
    /// `zh-CN` or `en`.
    #[serde(default = "default_org_locale")]
    pub default_locale: crm_access::Locale,
}

fn default_org_time_zone() -> crm_access::Tz {
    crm_access::Tz::Asia__Shanghai
}

fn default_org_locale() -> crm_access::Locale {
    crm_access::Locale::ZhCn
}

impl Default for OrgDefaults {
    fn default() -> Self {
        Self {
            default_time_zone: default_org_time_zone(),
            default_locale: default_org_locale(),
        }
    }
}

fn time_zone_name<'de, D>(deserializer: D) -> Result<crm_access::Tz, D::Error>
where
    D: Deserializer<'de>,
{
    let name = String::deserialize(deserializer)?;
    crm_access::preferences::parse_time_zone(name.trim()).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{name:?} {}",
            crm_access::preferences::TIME_ZONE_EXPECTED
        ))
    })
}

/// Single sign-on providers (see `oidc`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OidcSettings {
    #[serde(default, deserialize_with = "list_or_indexed_map")]
    pub providers: Vec<OidcProvider>,
}

/// One OpenID Connect provider the service is a relying party of.
#[derive(Debug, Clone, Deserialize)]
pub struct OidcProvider {
    /// The name in URLs: `/api/v1/auth/oidc/<name>/start`.
    pub name: String,
    /// The issuer; `<issuer>/.well-known/openid-configuration` must name exactly it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Registered with the provider: the gateway's `/api/v1/auth/oidc/<name>/callback`.
    pub redirect_uri: String,
    #[serde(default = "default_oidc_scopes", deserialize_with = "names")]
    pub scopes: Vec<String>,
    /// The claim new users' usernames are made from.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Create a user on a first sign-in (else only identities already linked may sign in).
    #[serde(default = "default_true")]
    pub create_users: bool,
    /// Roles and department from claims, given when missing at every sign-in.
    #[serde(default, deserialize_with = "list_or_indexed_map")]
    pub claim_rules: Vec<ClaimRule>,
}

/// When `claim` equals `equals` (or, for a list claim such as `groups`, contains it): these
/// roles, and this primary department if the user has none.
#[derive(Debug, Clone, Deserialize)]
pub struct ClaimRule {
    pub claim: String,
    pub equals: String,
    #[serde(default, deserialize_with = "names")]
    pub roles: Vec<String>,
    #[serde(default)]
    pub department: Option<String>,
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}

fn default_username_claim() -> String {
    "preferred_username".into()
}

fn default_true() -> bool {
    true
}

/// The audit trail's sources (see `audit`).
#[derive(Debug, Clone, Deserialize)]
pub struct AuditSettings {
    /// The other services' event topics the trail is made from; this service's own topic
    /// (`events.topic`) is always added. A list, or a comma-separated string.
    #[serde(default = "default_audit_topics", deserialize_with = "names")]
    pub topics: Vec<String>,
    /// The consumer group (one per deployment: replicas share the work).
    #[serde(default = "default_audit_group")]
    pub consumer_group: String,
}

fn default_audit_topics() -> Vec<String> {
    vec!["crm.customer.events".into()]
}

fn default_audit_group() -> String {
    "crm-permission-audit".into()
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            topics: default_audit_topics(),
            consumer_group: default_audit_group(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventsSettings {
    /// Where this service's domain events are published.
    pub topic: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// `iss` of every access token; verifiers must expect exactly this.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// `aud` of every access token (the API the tokens are for).
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Access-token lifetime. Short, because an access token cannot be revoked before it expires.
    #[serde(default = "default_access_ttl_secs")]
    pub access_ttl_secs: u64,
    /// Refresh-token lifetime; each refresh starts a new one (a session ends after this much
    /// inactivity, or at logout, reuse, disabling or a password change).
    #[serde(default = "default_refresh_ttl_secs")]
    pub refresh_ttl_secs: u64,
    /// How long one signing key signs before the next one takes over.
    #[serde(default = "default_key_rotation_secs")]
    pub key_rotation_secs: u64,
    /// Clock difference tolerated between this service and token verifiers: a retired key stays
    /// published this much longer. Verifiers' leeway must not exceed it.
    #[serde(default = "default_clock_skew_secs")]
    pub clock_skew_secs: u64,
    /// Base64 of 32 random bytes: the AES-256-GCM key that encrypts the private signing keys in
    /// the database. Required; the process refuses to start without a valid one.
    #[serde(default = "empty_secret")]
    pub key_encryption_key: SecretString,
    /// During a rotation of `key_encryption_key`: the keys used before it. Private signing keys
    /// they sealed are sealed again under the new key at start-up (and by maintenance); remove
    /// them once every replica runs with the new key.
    #[serde(default, deserialize_with = "list_or_indexed_map")]
    pub previous_key_encryption_keys: Vec<SecretString>,
    #[serde(default)]
    pub lockout: LockoutSettings,
    #[serde(default)]
    pub password_hashing: PasswordHashingSettings,
}

fn default_issuer() -> String {
    "crm".into()
}

fn default_audience() -> String {
    "crm-api".into()
}

fn default_access_ttl_secs() -> u64 {
    900
}

fn default_refresh_ttl_secs() -> u64 {
    30 * 24 * 3600
}

fn default_key_rotation_secs() -> u64 {
    30 * 24 * 3600
}

fn default_clock_skew_secs() -> u64 {
    60
}

fn empty_secret() -> SecretString {
    SecretString::from("")
}

/// Settings are seconds; anything beyond a century is a century (keeps date arithmetic finite).
pub(crate) fn secs(s: u64) -> chrono::Duration {
    const CENTURY: u64 = 100 * 366 * 24 * 3600;
    chrono::Duration::seconds(s.min(CENTURY) as i64)
}

/// Throttling of failed sign-ins, per normalised username string.
#[derive(Debug, Clone, Deserialize)]
pub struct LockoutSettings {
    /// Failures in a row that lock the username.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// Length of the first lock; each further lock doubles it.
    #[serde(default = "default_base_lock_secs")]
    pub base_lock_secs: u64,
    /// Upper bound of a lock.
    #[serde(default = "default_max_lock_secs")]
    pub max_lock_secs: u64,
    /// A username with no failure for this long starts from scratch (its row is deleted).
    #[serde(default = "default_forget_after_secs")]
    pub forget_after_secs: u64,
}

fn default_max_failures() -> u32 {
    5
}

fn default_base_lock_secs() -> u64 {
    30
}

fn default_max_lock_secs() -> u64 {
    3600
}

fn default_forget_after_secs() -> u64 {
    24 * 3600
}

impl Default for LockoutSettings {
    fn default() -> Self {
        Self {
            max_failures: default_max_failures(),
            base_lock_secs: default_base_lock_secs(),
            max_lock_secs: default_max_lock_secs(),
            forget_after_secs: default_forget_after_secs(),
        }
    }
}

/// Argon2id cost of new password hashes. The defaults are the argon2 crate's (19 MiB, 2 passes,
/// 1 lane, the OWASP minimum); tests lower them because unoptimised builds are slow. Existing
/// hashes keep the parameters they were made with (they are in the PHC string).
#[derive(Debug, Clone, Deserialize)]
pub struct PasswordHashingSettings {
    #[serde(default = "default_memory_kib")]
    pub memory_kib: u32,
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
}

fn default_memory_kib() -> u32 {
    argon2::Params::DEFAULT_M_COST
}

fn default_iterations() -> u32 {
    argon2::Params::DEFAULT_T_COST
}

fn default_parallelism() -> u32 {
    argon2::Params::DEFAULT_P_COST
}

impl Default for PasswordHashingSettings {
    fn default() -> Self {
        Self {
            memory_kib: default_memory_kib(),
            iterations: default_iterations(),
            parallelism: default_parallelism(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BootstrapSettings {
    /// From YAML a list; from environment variables `CRM__BOOTSTRAP__USERS__0__USERNAME`, … (the
    /// `config` crate turns those into a map keyed by index, accepted here too).
    #[serde(default, deserialize_with = "list_or_indexed_map")]
    pub users: Vec<BootstrapUser>,
    /// Creates the demo organisation at start when missing: departments Headquarters → Sales →
    /// {East Sales, North Sales} and Headquarters → Service, and the roles `admin`,
    /// `sales_manager`, `sales_rep`, `service_agent` and `auditor` ([`crate::seed`]).
    /// Development and demos only.
    #[serde(default)]
    pub demo_org: bool,
    /// API clients created at start when missing (an existing client is left as it is, secret
    /// included). Development and demos only: in production create them over
    /// `ApiClientService`, which makes the secret.
    #[serde(default, deserialize_with = "list_or_indexed_map")]
    pub api_clients: Vec<BootstrapApiClient>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapApiClient {
    pub client_id: String,
    #[serde(default)]
    pub name: String,
    pub secret: SecretString,
    /// `<resource>:<action>` entries; a list or a comma-separated string.
    #[serde(deserialize_with = "names")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub requests_per_window: u32,
    /// Role names given to the client's service user (as for bootstrap users).
    #[serde(default, deserialize_with = "names")]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapUser {
    pub username: String,
    pub password: SecretString,
    #[serde(default)]
    pub display_name: String,
    /// Role names given to the user at start when they do not hold them yet (never taken away).
    /// A list, or from an environment variable a comma-separated string (`admin,auditor`).
    #[serde(default, deserialize_with = "names")]
    pub roles: Vec<String>,
    /// The name of the user's primary department, set at start when the user has none. Must
    /// name exactly one department (names are unique among siblings only).
    #[serde(default)]
    pub department: Option<String>,
}

fn list_or_indexed_map<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrMap<T> {
        List(Vec<T>),
        Map(BTreeMap<String, T>),
    }
    match ListOrMap::<T>::deserialize(deserializer)? {
        ListOrMap::List(list) => Ok(list),
        ListOrMap::Map(map) => {
            let mut indexed = Vec::with_capacity(map.len());
            for (key, value) in map {
                let index: usize = key.parse().map_err(|_| {
                    serde::de::Error::custom(format!("expected a list index, got {key:?}"))
                })?;
                indexed.push((index, value));
            }
            indexed.sort_by_key(|(index, _)| *index);
            Ok(indexed.into_iter().map(|(_, value)| value).collect())
        }
    }
}

/// A list of names: a list, an indexed map (environment variables), or a comma-separated string.
fn names<'de, D>(deserializer: D) -> Result<Vec<String>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        Csv(String),
        Many(#[serde(deserialize_with = "list_or_indexed_map")] Vec<String>),
    }
    Ok(match Names::deserialize(deserializer)? {
        Names::Csv(csv) => csv
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Names::Many(list) => list,
    })
}

impl Settings {
    /// The `identity` block this service ships with: its name and its callers' grants, without
    /// keys (those come from the deployment).
    pub fn default_identity() -> crm_settings::IdentitySettings {
        crm_settings::defaults_section(include_str!("../config/base.yaml"), "identity")
            .expect("the compiled-in identity block is valid")
    }

    pub fn load() -> Result<Self, crm_settings::SettingsError> {
        crm_settings::load_with_lists(include_str!("../config/base.yaml"), &["audit.topics"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
server: { host: 127.0.0.1 }
identity: { name: permission }
database: { url: "postgres://u:dbpass@localhost/db" }
kafka: { brokers: ["localhost:9092"] }
events: { topic: t }
auth: { key_encryption_key: "c2VjcmV0LWtleS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=" }
bootstrap:
  users:
    - { username: admin, password: "bootstrap-secret-1", display_name: Admin }
"#;

    fn parse(yaml: &str) -> Settings {
        config::Config::builder()
            .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn the_shipped_grants_parse_and_name_only_this_services_methods() {
        let identity = Settings::default_identity();
        assert_eq!(identity.name, "permission");
        let gateway = &identity.callers["gateway"];
        assert!(gateway.on_behalf_of_users);
        assert!(gateway.keys.is_empty(), "keys come from the deployment");
        assert!(
            gateway
                .rpcs
                .iter()
                .all(|rpc| rpc.starts_with("crm.permission.v1.")),
            "{:?}",
            gateway.rpcs
        );
        crm_identity::Verifier::from_settings(&identity).expect("valid grants");
    }

    #[test]
    fn defaults_and_no_secrets_in_debug() {
        let s = parse(YAML);
        assert_eq!(s.auth.issuer, "crm");
        assert_eq!(s.auth.audience, "crm-api");
        assert_eq!(s.auth.access_ttl_secs, 900);
        assert_eq!(s.auth.refresh_ttl_secs, 2_592_000);
        assert_eq!(s.auth.key_rotation_secs, 2_592_000);
        assert_eq!(s.auth.clock_skew_secs, 60);
        assert_eq!(s.auth.lockout.max_failures, 5);
        assert_eq!(s.auth.lockout.base_lock_secs, 30);
        assert_eq!(s.auth.lockout.max_lock_secs, 3600);
        assert_eq!(s.bootstrap.users.len(), 1);
        let debug = format!("{s:?}");
        for secret in ["c2VjcmV0", "bootstrap-secret-1", "dbpass"] {
            assert!(!debug.contains(secret), "{secret} leaked into Debug");
        }
    }

    #[test]
    fn organisation_defaults_are_checked_at_load() {
        let s = parse(YAML);
        assert_eq!(s.org.default_time_zone, crm_access::Tz::Asia__Shanghai);
        assert_eq!(s.org.default_locale, crm_access::Locale::ZhCn);
        let s = parse(&format!(
            "{YAML}org: {{ default_time_zone: America/New_York, default_locale: EN }}\n"
        ));
        assert_eq!(s.org.default_time_zone, crm_access::Tz::America__New_York);
        assert_eq!(s.org.default_locale, crm_access::Locale::En);
        for (bad, key) in [
            (
                "org: { default_time_zone: Asia/Beijing }",
                "default_time_zone",
            ),
            ("org: { default_locale: fr }", "default_locale"),
        ] {
            let err = config::Config::builder()
                .add_source(config::File::from_str(
                    &format!("{YAML}{bad}\n"),
                    config::FileFormat::Yaml,
                ))
                .build()
                .unwrap()
                .try_deserialize::<Settings>()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
        // What the shipped configuration says.
        let shipped: OrgDefaults =
            crm_settings::defaults_section(include_str!("../config/base.yaml"), "org").unwrap();
        assert_eq!(shipped.default_time_zone.name(), "Asia/Shanghai");
        assert_eq!(shipped.default_locale.as_str(), "zh-CN");
    }

    #[test]
    fn bootstrap_users_from_an_indexed_map() {
        // What `CRM__BOOTSTRAP__USERS__1__USERNAME=…` style variables turn into.
        let s = parse(
            r#"
server: { host: 127.0.0.1 }
identity: { name: permission }
database: { url: "postgres://localhost/db" }
kafka: { brokers: ["localhost:9092"] }
events: { topic: t }
auth: {}
bootstrap:
  users:
    "1": { username: second, password: "p2" }
    "0": { username: first, password: "p1", display_name: First }
"#,
        );
        let names: Vec<_> = s
            .bootstrap
            .users
            .iter()
            .map(|u| u.username.as_str())
            .collect();
        assert_eq!(names, ["first", "second"]);
        assert!(!s.bootstrap.demo_org, "off unless asked for");
        assert!(s.bootstrap.users[0].roles.is_empty());
        assert_eq!(s.bootstrap.users[0].department, None);
    }

    #[test]
    fn bootstrap_roles_and_department() {
        let s = parse(
            r#"
server: { host: 127.0.0.1 }
identity: { name: permission }
database: { url: "postgres://localhost/db" }
kafka: { brokers: ["localhost:9092"] }
events: { topic: t }
auth: {}
bootstrap:
  demo_org: true
  users:
    - { username: a, password: "p", roles: [admin, auditor], department: Headquarters }
    - { username: b, password: "p", roles: "sales_rep, auditor" }
    - { username: c, password: "p", roles: { "1": y, "0": x } }
"#,
        );
        assert!(s.bootstrap.demo_org);
        let roles: Vec<_> = s.bootstrap.users.iter().map(|u| u.roles.clone()).collect();
        assert_eq!(
            roles,
            [
                vec!["admin", "auditor"],
                vec!["sales_rep", "auditor"],
                vec!["x", "y"]
            ]
        );
        assert_eq!(
            s.bootstrap.users[0].department.as_deref(),
            Some("Headquarters")
        );
    }
}
