//! The service boots against a fresh database, migrates it, reports ready and SERVING, and
//! drains on stop.

#[tokio::test]
async fn boots_migrates_and_serves_health() {
    crm_testkit::check_basic_service(crm_permission::build).await;
}
