//! `crm-sales`: the sales service process. All logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = crm_telemetry::init("crm-sales");
    let settings = crm_sales::Settings::load()?;
    let app = crm_sales::Application::build(settings).await?;
    app.run_until_stopped(crm_lifecycle::shutdown_on_signal())
        .await?;
    Ok(())
}
