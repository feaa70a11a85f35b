//! Permission service: users, departments, roles, data scopes, field security, API clients, login/SSO, audit.
//!
//! For now the process boots, creates and migrates its own database (the platform's outbox
//! tables), and serves gRPC health, reflection, `/healthz`, `/readyz` and `/metrics`; its
//! domain arrives in a later issue and plugs into the same [`Application`].

use crm_host::Host;
use crm_lifecycle::CancellationToken;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: crm_settings::ServerSettings,
    pub database: crm_settings::DatabaseSettings,
}

impl Settings {
    pub fn load() -> Result<Self, crm_settings::SettingsError> {
        crm_settings::load(include_str!("../config/base.yaml"))
    }
}

pub struct Application {
    host: Host,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, crm_host::HostError> {
        Ok(Self {
            host: Host::bind("crm-permission", settings.server, settings.database).await?,
        })
    }

    pub fn grpc_port(&self) -> u16 {
        self.host.grpc_addr().port()
    }

    pub fn http_port(&self) -> u16 {
        self.host.http_addr().port()
    }

    pub async fn run_until_stopped(
        self,
        stop: CancellationToken,
    ) -> Result<(), crm_host::HostError> {
        self.host
            .run(
                tonic::service::Routes::default(),
                &[],
                &[&crm_events::MIGRATOR],
                |_| Vec::new(),
                stop,
            )
            .await
    }
}
