//! Sales service: leads, pipelines, opportunities, approvals, contracts/orders, reports.
//!
//! For now the process boots, creates and migrates its own database (the platform's outbox
//! tables), and serves gRPC health, reflection, `/healthz`, `/readyz` and `/metrics`
//! ([`crm_host::basic`]); its domain arrives in a later issue.

pub use crm_host::basic::{Application, Settings};

/// The process name, used in logs and traces.
pub const NAME: &str = "crm-sales";

/// Platform migrations only, until the domain brings its own schema.
pub static MIGRATORS: &[&sqlx::migrate::Migrator] = &[&crm_events::MIGRATOR];

/// Settings from the compiled-in defaults, the environment file and `CRM__` variables.
pub fn load_settings() -> Result<Settings, crm_settings::SettingsError> {
    crm_settings::load(include_str!("../config/base.yaml"))
}

pub async fn build(settings: Settings) -> Result<Application, crm_host::HostError> {
    Application::build(NAME, settings, MIGRATORS).await
}
