//! `crm-gateway`: the public REST API. Configuration: see `crm_gateway::settings`.

use crm_gateway::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = crm_telemetry::init("crm-gateway");
    let settings = Settings::load()?;
    let application = Application::build(settings).await.inspect_err(|err| {
        tracing::error!(error = %err, "gateway failed to start");
    })?;
    application
        .run_until_stopped(crm_lifecycle::shutdown_on_signal())
        .await?;
    Ok(())
}
