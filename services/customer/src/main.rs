//! `crm-customer`: the customer service process. All logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = crm_telemetry::init("crm-customer");
    let settings = crm_customer::Settings::load()?;
    let app = crm_customer::Application::build(settings).await?;
    app.run_until_stopped(crm_lifecycle::shutdown_on_signal())
        .await?;
    Ok(())
}
