//! `crm-sales`: the sales service process. All logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = crm_telemetry::init(crm_sales::NAME);
    let app = crm_sales::build(crm_sales::load_settings()?).await?;
    app.run_until_stopped(crm_lifecycle::shutdown_on_signal())
        .await?;
    Ok(())
}
