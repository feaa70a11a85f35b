use crm_proto::permission as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, spawn_app, violated_fields};

#[tokio::test]
async fn create_and_get_a_user() {
    let app = spawn_app().await;
    let created = app
        .users
        .clone()
        .create_user(pb::CreateUserRequest {
            username: "  Olivia.Smith@Acme ".into(),
            display_name: " Olivia Smith ".into(),
            email: "olivia@acme.example".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.username, "olivia.smith@acme");
    assert_eq!(created.display_name, "Olivia Smith");
    assert_eq!(created.email, "olivia@acme.example");
    assert_eq!(created.status, pb::UserStatus::Active as i32);
    assert_eq!(created.version, 1);
    let got = app
        .users
        .clone()
        .get_user(pb::GetUserRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "an argon2id PHC string");
    assert!(!hash.contains(PASSWORD));

    let err = app
        .users
        .clone()
        .get_user(pb::GetUserRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .users
        .clone()
        .get_user(pb::GetUserRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["id"]);
    app.shutdown().await;
}

#[tokio::test]
async fn invalid_users_are_refused_with_every_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let err = app
        .users
        .clone()
        .create_user(pb::CreateUserRequest {
            username: "no spaces allowed".into(),
            display_name: "x".repeat(201),
            email: "not-an-email".into(),
            password: "short".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        ["username", "display_name", "email", "password"]
    );
    for (username, field) in [("ab", "username"), (&*"a".repeat(65), "username")] {
        let err = app
            .users
            .clone()
            .create_user(pb::CreateUserRequest {
                username: username.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), [field]);
    }
    let err = app
        .users
        .clone()
        .create_user(pb::CreateUserRequest {
            username: "long.password".into(),
            password: "p".repeat(257),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["password"]);
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("event_outbox").await, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn duplicate_usernames_are_refused_whatever_their_case() {
    let app = spawn_app().await;
    app.create_user("peter", PASSWORD).await;
    let err = app
        .users
        .clone()
        .create_user(pb::CreateUserRequest {
            username: "PETER".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(violated_fields(&err), ["username"]);
    assert_eq!(app.count("users").await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn set_user_status_checks_version_and_input() {
    let app = spawn_app().await;
    let user = app.create_user("quinn", PASSWORD).await;
    let set = |status: pb::UserStatus, expected_version: i64| {
        let mut client = app.users.clone();
        let id = user.id.clone();
        async move {
            client
                .set_user_status(pb::SetUserStatusRequest {
                    id,
                    status: status as i32,
                    expected_version,
                })
                .await
        }
    };
    let disabled = set(pb::UserStatus::Disabled, 1).await.unwrap().into_inner();
    assert_eq!(disabled.version, 2);

    let err = set(pb::UserStatus::Active, 1).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        crm_errors::ApiError::from_status(&err).code,
        crm_errors::Code::VersionConflict
    );
    let err = set(pb::UserStatus::Unspecified, 0).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["status", "expected_version"]);

    // Setting the status it already has changes nothing.
    let same = set(pb::UserStatus::Disabled, 2).await.unwrap().into_inner();
    assert_eq!(same.version, 2);
    let got = app
        .users
        .clone()
        .get_user(pb::GetUserRequest {
            id: user.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, pb::UserStatus::Disabled as i32);
    assert_eq!(got.version, 2, "the refused writes changed nothing");

    let err = app
        .users
        .clone()
        .set_user_status(pb::SetUserStatusRequest {
            id: uuid::Uuid::now_v7().to_string(),
            status: pb::UserStatus::Active as i32,
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.shutdown().await;
}

#[tokio::test]
async fn bootstrap_users_are_created_at_start() {
    let app = crate::helpers::spawn_with(|s| {
        let user = |username: &str, password: &str| crm_permission::settings::BootstrapUser {
            username: username.into(),
            password: password.to_string().into(),
            display_name: "Administrator".into(),
            roles: Vec::new(),
            department: None,
        };
        s.bootstrap.users = vec![user("admin", PASSWORD), user("broken", "short")];
    })
    .await;
    crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the bootstrap user signs in",
        || async { app.login("admin", PASSWORD).await.is_ok() },
    )
    .await;
    let usernames: Vec<String> = sqlx::query_scalar("SELECT username FROM users")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(usernames, ["admin"], "the invalid entry was skipped");
    app.shutdown().await;
}
