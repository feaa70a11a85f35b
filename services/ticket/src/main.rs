//! `crm-ticket`: the ticket service process. All logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = crm_telemetry::init("crm-ticket");
    let settings = crm_ticket::Settings::load()?;
    let app = crm_ticket::Application::build(settings).await?;
    app.run_until_stopped(crm_lifecycle::shutdown_on_signal())
        .await?;
    Ok(())
}
