use crm_permission::keys::KekError;
use crm_permission::{Application, StartError};
use secrecy::SecretString;

use crate::helpers::{spawn_app, test_settings};

/// Boots against a fresh database, migrates it (platform and own tables), turns ready and
/// SERVING, serves the HTTP endpoints, and drains on stop.
#[tokio::test]
async fn boots_migrates_and_serves_health() {
    let app = spawn_app().await;
    crm_testkit::assert_platform_tables(app.settings.database.url()).await;
    for table in ["users", "login_throttle", "signing_keys", "refresh_tokens"] {
        // Panics when the table is missing.
        app.count(table).await;
    }
    let healthz = reqwest::get(format!("http://127.0.0.1:{}/healthz", app.http_port))
        .await
        .unwrap();
    assert!(healthz.status().is_success());
    app.shutdown().await;
}

#[tokio::test]
async fn refuses_to_start_without_a_valid_key_encryption_key() {
    for (value, expected) in [
        ("", KekError::Missing),
        ("c2hvcnQ=", KekError::WrongLength(5)),
        ("this is not base64!", KekError::NotBase64),
    ] {
        let mut settings = test_settings().await;
        settings.auth.key_encryption_key = SecretString::from(value);
        match Application::build(settings).await {
            Err(StartError::KeyEncryptionKey(err)) => assert_eq!(err, expected, "{value:?}"),
            Err(other) => panic!("{value:?}: unexpected error {other}"),
            Ok(_) => panic!("{value:?}: started without a valid key-encryption key"),
        }
    }
}
