use std::time::Duration;

use crate::helpers::{PASSWORD, spawn_app};

/// A created user and a failed sign-in each publish exactly one event, and no event carries a
/// password or a hash.
#[tokio::test]
async fn user_created_and_login_failed_publish_one_event_each() {
    let app = spawn_app().await;
    let wrong = "an attempted wrong password";
    let user = app.create_user("rita", PASSWORD).await;
    app.login("  RITA", wrong).await.unwrap_err();

    let events =
        crm_testkit::collect_events(&app.brokers, &app.topic, 2, Duration::from_secs(60)).await;
    let mut types: Vec<_> = events.iter().map(|(e, _)| e.event_type.as_str()).collect();
    types.sort();
    assert_eq!(
        types,
        ["permission.login.failed", "permission.user.created"]
    );
    for (event, _) in &events {
        assert_eq!(event.source, "crm/permission");
        let text = serde_json::to_string(event).unwrap();
        for secret in [PASSWORD, wrong, "$argon2", "password_hash"] {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }
    let created = &events
        .iter()
        .find(|(e, _)| e.event_type == "permission.user.created")
        .unwrap()
        .0;
    assert_eq!(created.subject, user.id);
    assert_eq!(created.data["user"]["username"], "rita");
    assert_eq!(created.data["has_password"], true);
    let failed = &events
        .iter()
        .find(|(e, _)| e.event_type == "permission.login.failed")
        .unwrap()
        .0;
    assert_eq!(failed.data["username"], "  RITA", "as typed");
    assert_eq!(failed.data["user_id"], user.id.as_str());
    assert_eq!(failed.data["reason"], "wrong_password");
    assert_eq!(failed.data["client_ip"], "203.0.113.7");
    app.shutdown().await;
}

/// Sessions report their ends: login, then logout.
#[tokio::test]
async fn login_and_logout_publish_events() {
    let app = spawn_app().await;
    let user = app.create_user("sam", PASSWORD).await;
    let pair = app.login("sam", PASSWORD).await.unwrap();
    app.logout(&pair.refresh_token).await;
    let events =
        crm_testkit::collect_events(&app.brokers, &app.topic, 3, Duration::from_secs(60)).await;
    let types: Vec<_> = events.iter().map(|(e, _)| e.event_type.as_str()).collect();
    assert_eq!(types.len(), 3, "{types:?}");
    assert!(types.contains(&"permission.login.succeeded"));
    let revoked = &events
        .iter()
        .find(|(e, _)| e.event_type == "permission.session.revoked")
        .expect("a session.revoked event")
        .0;
    assert_eq!(revoked.subject, user.id);
    assert_eq!(revoked.data["reason"], "logout");
    let sid = app.verify(&pair.access_token).await.claims["sid"].clone();
    assert_eq!(revoked.data["session_ids"], serde_json::json!([sid]));
    let text = serde_json::to_string(&events.iter().map(|(e, _)| e).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(&pair.refresh_token) && !text.contains(&pair.access_token));
    app.shutdown().await;
}
