//! The customer service's settings: the shared blocks plus its own.

use std::collections::BTreeMap;

use crm_settings::{
    DatabaseSettings, KafkaSettings, RedisSettings, ServerSettings, UpstreamSettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    /// Who may call this service, and the key it signs its own calls with (ADR 0012).
    pub identity: crm_settings::IdentitySettings,
    /// The services it calls, by name: `permission`, for the scopes callers send by reference
    /// (ADR 0016).
    pub services: BTreeMap<String, String>,
    #[serde(default)]
    pub upstream: UpstreamSettings,
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
