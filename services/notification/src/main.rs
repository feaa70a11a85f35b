//! `crm-notification`: the notification service process. All logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = crm_telemetry::init(crm_notification::NAME);
    let app = crm_notification::build(crm_notification::load_settings()?).await?;
    app.run_until_stopped(crm_lifecycle::shutdown_on_signal())
        .await?;
    Ok(())
}
