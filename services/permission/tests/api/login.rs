use crm_proto::permission as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, spawn_app, violated_fields};

#[tokio::test]
async fn login_returns_a_jwt_that_verifies_against_the_served_jwks() {
    let app = spawn_app().await;
    let user = app.create_user("alice", PASSWORD).await;
    let pair = app.login("  Alice ", PASSWORD).await.expect("login");
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    assert_eq!(pair.refresh_expires_in, 3600);
    assert_eq!(pair.user_id, user.id);
    assert!(!pair.refresh_token.is_empty());

    let token = app.verify(&pair.access_token).await;
    let claims = &token.claims;
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["name"], "alice");
    assert_eq!(claims["iss"], "crm");
    assert_eq!(claims["aud"], "crm-api");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(claims["jti"].is_string() && claims["sid"].is_string());

    // The kid is the current key's, and GetJwks serves the same set as the HTTP endpoint.
    let kid = token.header.kid.clone().unwrap();
    let current: String = sqlx::query_scalar(
        "SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(kid, current);
    let grpc_jwks = app
        .auth
        .clone()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .json;
    let http: serde_json::Value = reqwest::get(app.jwks_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&grpc_jwks).unwrap(),
        http
    );
    let key = &http["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], kid.as_str());
    assert!(key.get("d").is_none(), "no private part in the JWKS");
    app.shutdown().await;
}

#[tokio::test]
async fn jwks_endpoint_is_cacheable_json() {
    let app = spawn_app().await;
    let response = reqwest::get(app.jwks_url()).await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=60"
    );
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    app.shutdown().await;
}

/// Wrong password, unknown user, disabled user and a user without a password are
/// indistinguishable, and each costs exactly one argon2 verification.
#[tokio::test]
async fn every_failed_login_looks_the_same() {
    let app = spawn_app().await;
    app.create_user("bob", PASSWORD).await;
    let disabled = app.create_user("carol", PASSWORD).await;
    app.users
        .clone()
        .set_user_status(pb::SetUserStatusRequest {
            id: disabled.id.clone(),
            status: pb::UserStatus::Disabled as i32,
            expected_version: 1,
        })
        .await
        .unwrap();
    let sso_only = app
        .users
        .clone()
        .create_user(pb::CreateUserRequest {
            username: "dave".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sso_only.username, "dave");

    let mut answers = Vec::new();
    for (username, password) in [
        ("bob", "wrong password here"),
        ("nobody", PASSWORD),
        ("carol", PASSWORD),
        ("dave", PASSWORD),
    ] {
        let before = app.passwords.verifications();
        let err = app.login(username, password).await.unwrap_err();
        assert_eq!(
            app.passwords.verifications(),
            before + 1,
            "{username}: exactly one argon2 verification"
        );
        let api = crm_errors::ApiError::from_status(&err);
        answers.push((
            err.code(),
            err.message().to_string(),
            api.code,
            api.violations,
        ));
    }
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(answers[0].0, Code::Unauthenticated);
    assert_eq!(answers[0].1, "invalid username or password");
    app.shutdown().await;
}

#[tokio::test]
async fn empty_credentials_are_invalid_arguments() {
    let app = spawn_app().await;
    let err = app.login("  ", "").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["username", "password"]);
    assert_eq!(
        app.count("login_throttle").await,
        0,
        "not counted as attempts"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_hash_made_with_old_parameters_is_redone_at_the_next_sign_in() {
    let app = spawn_app().await;
    app.create_user("carol", PASSWORD).await;
    let hash = || async {
        sqlx::query_scalar::<_, String>("SELECT password_hash FROM users WHERE username = 'carol'")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let before = hash().await;
    assert!(before.contains("m=64,t=1,p=1"), "{before}");

    // The same database, stronger parameters.
    let mut settings = app.settings.clone();
    settings.auth.password_hashing.memory_kib = 128;
    settings.auth.password_hashing.iterations = 2;
    app.shutdown().await;
    let app = crate::helpers::spawn_with(|s| *s = settings).await;
    let version_before: i64 =
        sqlx::query_scalar("SELECT version FROM users WHERE username = 'carol'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    app.login("carol", PASSWORD).await.expect("login");
    let after: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'carol'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(after.contains("m=128,t=2,p=1"), "{after}");
    let version_after: i64 =
        sqlx::query_scalar("SELECT version FROM users WHERE username = 'carol'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        version_after, version_before,
        "not a password change: sessions stay"
    );
    // The redone hash works, a wrong password still does not.
    app.login("carol", PASSWORD).await.expect("login again");
    assert!(app.login("carol", "wrong password!!").await.is_err());
    app.shutdown().await;
}
