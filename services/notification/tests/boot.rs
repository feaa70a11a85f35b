//! The service boots against a fresh database, migrates it, and reports ready and SERVING.

#[tokio::test]
async fn boots_migrates_and_serves_health() {
    let db_url = crm_testkit::fresh_db_url().await;
    let settings = crm_notification::Settings {
        server: crm_testkit::server_settings(),
        database: crm_testkit::database_settings(db_url.clone()),
    };
    let app = crm_notification::Application::build(settings)
        .await
        .expect("build");
    let (grpc, http) = (app.grpc_port(), app.http_port());
    let stop = crm_lifecycle::CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
    crm_testkit::wait_ready(http, grpc).await;
    crm_testkit::assert_platform_tables(&db_url).await;
    stop.cancel();
    handle.await.expect("join").expect("clean shutdown");
}
