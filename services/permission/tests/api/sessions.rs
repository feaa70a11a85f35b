use crm_proto::permission as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, spawn_app, violated_fields};

fn sid(claims: &serde_json::Value) -> String {
    claims["sid"].as_str().unwrap().to_string()
}

async fn assert_refused(app: &TestApp, refresh_token: &str) {
    let err = app.refresh(refresh_token).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert_eq!(err.message(), "invalid or expired refresh token");
}

/// A refresh token works once; presenting it again revokes its whole family, including the
/// token that replaced it.
#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let user = app.create_user("judy", PASSWORD).await;
    let first = app.login("judy", PASSWORD).await.unwrap();
    let second = app.refresh(&first.refresh_token).await.expect("refresh");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.user_id, user.id);
    let a = app.verify(&first.access_token).await.claims;
    let b = app.verify(&second.access_token).await.claims;
    assert_eq!(sid(&a), sid(&b), "same session");
    assert_ne!(a["jti"], b["jti"]);

    // Only hashes are stored.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    for token in [&first.refresh_token, &second.refresh_token] {
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        assert!(stored.iter().any(|h| h.as_slice() == hash.as_ref()));
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM refresh_tokens r WHERE position($1 IN r::text) > 0",
        )
        .bind(token)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(found, 0, "the token itself is never stored");
    }

    assert_refused(&app, &first.refresh_token).await;
    assert_refused(&app, &second.refresh_token).await;
    assert_eq!(
        app.revoked_reasons(&user.id).await,
        [Some("reuse".to_string()), Some("reuse".to_string())]
    );
    // Other sessions of the user are untouched.
    let other = app.login("judy", PASSWORD).await.unwrap();
    app.refresh(&other.refresh_token)
        .await
        .expect("another session");
    app.shutdown().await;
}

#[tokio::test]
async fn logout_revokes_and_is_idempotent() {
    let app = spawn_app().await;
    let user = app.create_user("kate", PASSWORD).await;
    let pair = app.login("kate", PASSWORD).await.unwrap();
    app.logout(&pair.refresh_token).await;
    assert_refused(&app, &pair.refresh_token).await;
    app.logout(&pair.refresh_token).await;
    app.logout("never-issued-token").await;
    app.logout("").await;
    assert_eq!(
        app.revoked_reasons(&user.id).await,
        [Some("logout".to_string())],
        "the refused refresh after logout is not counted as reuse"
    );
    assert_refused(&app, "never-issued-token").await;
    app.shutdown().await;
}

#[tokio::test]
async fn disabling_a_user_revokes_its_refresh_tokens() {
    let app = spawn_app().await;
    let user = app.create_user("liam", PASSWORD).await;
    let one = app.login("liam", PASSWORD).await.unwrap();
    let two = app.login("liam", PASSWORD).await.unwrap();
    let disabled = app
        .users
        .clone()
        .set_user_status(pb::SetUserStatusRequest {
            id: user.id.clone(),
            status: pb::UserStatus::Disabled as i32,
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disabled.status, pb::UserStatus::Disabled as i32);
    assert_eq!(disabled.version, 2);
    assert_refused(&app, &one.refresh_token).await;
    assert_refused(&app, &two.refresh_token).await;
    assert_eq!(
        app.revoked_reasons(&user.id).await,
        [Some("disabled".to_string()), Some("disabled".to_string())]
    );
    let err = app.login("liam", PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // Enabled again, the user signs in again (old sessions stay revoked).
    app.users
        .clone()
        .set_user_status(pb::SetUserStatusRequest {
            id: user.id.clone(),
            status: pb::UserStatus::Active as i32,
            expected_version: 2,
        })
        .await
        .unwrap();
    app.login("liam", PASSWORD).await.expect("enabled again");
    assert_refused(&app, &one.refresh_token).await;
    app.shutdown().await;
}

#[tokio::test]
async fn setting_a_password_revokes_refresh_tokens() {
    let app = spawn_app().await;
    let user = app.create_user("mia", PASSWORD).await;
    let pair = app.login("mia", PASSWORD).await.unwrap();
    let new_password = "a completely new passphrase";

    let err = app
        .users
        .clone()
        .set_password(pb::SetPasswordRequest {
            id: user.id.clone(),
            password: "too short".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["password"]);
    app.refresh(&pair.refresh_token)
        .await
        .expect("a refused password change revokes nothing");
    let pair = app.login("mia", PASSWORD).await.unwrap();

    app.users
        .clone()
        .set_password(pb::SetPasswordRequest {
            id: user.id.clone(),
            password: new_password.into(),
        })
        .await
        .unwrap();
    assert_refused(&app, &pair.refresh_token).await;
    assert!(
        app.revoked_reasons(&user.id)
            .await
            .contains(&Some("password_changed".to_string()))
    );
    assert_eq!(
        app.login("mia", PASSWORD).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    app.login("mia", new_password)
        .await
        .expect("the new password works");
    let got = app
        .users
        .clone()
        .get_user(pb::GetUserRequest {
            id: user.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.version, 2, "a password change is a new version");
    app.shutdown().await;
}

/// The same refresh token presented ten times at once: exactly one refresh wins, the others
/// count as reuse, and the reuse ends the session for the winner too.
#[tokio::test]
async fn parallel_refreshes_of_one_token_yield_one_pair_then_revoke_the_family() {
    let app = spawn_app().await;
    app.create_user("tara", PASSWORD).await;
    let pair = app.login("tara", PASSWORD).await.unwrap();
    let attempts = (0..10).map(|_| app.refresh(&pair.refresh_token));
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    }
    assert_refused(&app, &winners[0].refresh_token).await;
    app.shutdown().await;
}
