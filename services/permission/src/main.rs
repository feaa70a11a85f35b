//! `crm-permission`: the permission service process. All logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = crm_telemetry::init(crm_permission::NAME);
    let settings = crm_permission::Settings::load()?;
    let app = crm_permission::Application::build(settings).await?;
    app.run_until_stopped(crm_lifecycle::shutdown_on_signal())
        .await?;
    Ok(())
}
