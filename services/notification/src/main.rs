//! `crm-notification`: the notification service process. All logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = crm_telemetry::init("crm-notification");
    let settings = crm_notification::Settings::load()?;
    let app = crm_notification::Application::build(settings).await?;
    app.run_until_stopped(crm_lifecycle::shutdown_on_signal())
        .await?;
    Ok(())
}
