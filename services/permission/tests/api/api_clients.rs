//! API clients configured at start-up (`bootstrap.api_clients`, how `./dev up` makes the demo
//! ERP client): created once with their roles, their secret working, left alone by a restart.

use crm_permission::settings::BootstrapApiClient;
use crm_proto::permission as pb;
use secrecy::SecretString;

use crate::helpers::spawn_with;

const SECRET: &str = "a-demo-secret-of-enough-length-0123456789";

fn erp() -> BootstrapApiClient {
    BootstrapApiClient {
        client_id: "erp".into(),
        name: "Demo ERP".into(),
        secret: SecretString::from(SECRET),
        scopes: vec!["account:read".into(), "contact:read".into()],
        requests_per_window: 600,
        roles: vec!["admin".into()],
    }
}

#[tokio::test]
async fn bootstrap_clients_are_created_with_their_roles_and_secret() {
    let app = spawn_with(|s| {
        s.bootstrap.demo_org = true;
        s.bootstrap.api_clients = vec![erp()];
    })
    .await;
    let token = app
        .auth
        .clone()
        .client_credentials(pb::ClientCredentialsRequest {
            client_id: "erp".into(),
            client_secret: SECRET.into(),
            ..Default::default()
        })
        .await
        .expect("the configured secret works")
        .into_inner();
    assert_eq!(token.scope, "account:read contact:read");
    assert_eq!(token.token_type, "Bearer");

    let user: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'api.erp'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let check = app
        .access
        .clone()
        .check(pb::CheckRequest {
            user_id: user.to_string(),
            resource: pb::Resource::Account as i32,
            resource_name: String::new(),
            action: pb::Action::Delete as i32,
            record: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(check.allowed, "the service user holds the configured role");

    let wrong = app
        .auth
        .clone()
        .client_credentials(pb::ClientCredentialsRequest {
            client_id: "erp".into(),
            client_secret: "not-the-secret".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM event_outbox
          WHERE event_type = 'permission.api_client.authentication_failed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 1, "failed client sign-ins are on record");

    // Start again over the same database: nothing is made twice.
    let settings = app.settings.clone();
    app.shutdown().await;
    let again = spawn_with(|s| *s = settings).await;
    let clients: i64 = sqlx::query_scalar("SELECT count(*) FROM api_clients")
        .fetch_one(&again.db)
        .await
        .unwrap();
    assert_eq!(clients, 1);
    again.shutdown().await;
}
