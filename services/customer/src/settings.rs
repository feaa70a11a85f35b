//! The customer service's settings: the shared blocks plus its own.

use crm_settings::{DatabaseSettings, KafkaSettings, RedisSettings, ServerSettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    /// Who may call this service (ADR 0012).
    pub identity: crm_settings::IdentitySettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub kafka: KafkaSettings,
    pub events: EventsSettings,
    pub cache: CacheSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventsSettings {
    /// Where this service's domain events are published.
    pub topic: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    /// Last-resort bound on how long a cache entry lives (entries are replaced on every write).
    pub ttl_secs: u64,
}

impl Settings {
    /// The `identity` block this service ships with: its name and its callers' grants, without
    /// keys (those come from the deployment).
    pub fn default_identity() -> crm_settings::IdentitySettings {
        crm_settings::defaults_section(include_str!("../config/base.yaml"), "identity")
            .expect("the compiled-in identity block is valid")
    }

    pub fn load() -> Result<Self, crm_settings::SettingsError> {
        crm_settings::load(include_str!("../config/base.yaml"))
    }
}
