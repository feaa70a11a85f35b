//! The customer service's settings: the shared blocks plus its own.

use crm_settings::{DatabaseSettings, KafkaSettings, RedisSettings, ServerSettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
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
    pub fn load() -> Result<Self, crm_settings::SettingsError> {
        crm_settings::load(include_str!("../config/base.yaml"))
    }
}
