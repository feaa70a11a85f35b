//! The audit trail end to end: writes through the gateway, sign-ins and permission changes end
//! up as entries (actor, record, per-field diff, address, agent, trace id), queryable by record,
//! user and time for holders of `audit:read` only, and the table refuses to change.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Kind, SIGN_IN_USER, TestApp, etag, ok_json, spawn_app, token_for};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// Waits until the trail holds at least `n` entries for `query`.
async fn entries(app: &TestApp, query: &str, n: usize) -> Vec<Value> {
    app.audit_entries(&app.token, query, |items| items.len() >= n)
        .await
}

#[tokio::test]
async fn writes_sign_ins_and_permission_changes_are_audited() {
    let app = spawn_app().await;
    let created = app
        .request(Method::POST, Kind::Accounts.path())
        .header("user-agent", "audit-test/1.0")
        .header("traceparent", format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
        .json(&json!({"name": "Audited", "phone": "13812345678"}))
        .send()
        .await
        .unwrap();
    let tag = etag(&created);
    let account = ok_json(created, 201).await;
    let id = account["id"].as_str().unwrap();
    let updated = app
        .request(Method::PATCH, &format!("/api/v1/accounts/{id}"))
        .header("If-Match", tag)
        .json(&json!({"name": "Audited Ltd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let deleted = app
        .request(Method::DELETE, &format!("/api/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // Newest first: deleted, updated, created.
    let trail = entries(&app, &format!("record_id={id}"), 3).await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["deleted", "updated", "created"]);
    for entry in &trail {
        assert_eq!(entry["resource"], "account");
        assert_eq!(entry["actor_user_id"], json!(app.user_id));
        assert_eq!(entry["client_ip"], "127.0.0.1");
    }
    let create = &trail[2];
    assert_eq!(create["user_agent"], "audit-test/1.0");
    assert_eq!(
        create["trace_id"], TRACE_ID,
        "the trace of the request that wrote it"
    );
    assert_eq!(
        create["changes"]["name"],
        json!({"old": null, "new": "Audited"})
    );
    assert_eq!(
        trail[1]["changes"],
        json!({"name": {"old": "Audited", "new": "Audited Ltd"}}),
        "only what changed"
    );
    assert_eq!(trail[0]["changes"]["name"]["old"], "Audited Ltd");

    // A failed sign-in (unknown to the gateway's token, known to the trail).
    let failed = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": SIGN_IN_USER, "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let logins = entries(&app, &format!("record_id={SIGN_IN_USER}"), 1).await;
    assert_eq!(logins[0]["event_type"], "permission.login.failed");
    assert_eq!(logins[0]["client_ip"], "127.0.0.1");
    assert_eq!(logins[0]["details"]["reason"], "wrong_password");

    // Permission changes: the test's own user was made and given a role.
    let trail = entries(&app, &format!("record_id={}", app.user_id), 2).await;
    for event_type in ["permission.user.created", "permission.assignment.added"] {
        assert!(
            trail.iter().any(|e| e["event_type"] == event_type),
            "{event_type} not in {trail:?}"
        );
    }

    // By user and time: the admin's actions, and nothing in the future.
    let mine = entries(&app, &format!("user_id={}&page_size=200", app.user_id), 3).await;
    assert!(
        mine.iter()
            .all(|e| e["actor_user_id"] == json!(app.user_id))
    );
    let future = ok_json(
        app.request(Method::GET, "/api/v1/audit?from=2999-01-01T00:00:00Z")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(future["items"], json!([]));
    let bad = app
        .request(
            Method::GET,
            "/api/v1/audit?from=2999-01-01T00:00:00Z&to=2000-01-01T00:00:00Z",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn only_holders_of_audit_read_see_the_trail_and_it_never_changes() {
    let app = spawn_app().await;
    app.create_account("Something").await;
    let rep = app
        .org
        .user("rep", &["sales_rep"], Some("East Sales"), None)
        .await;
    let refused = app
        .http
        .get(app.url("/api/v1/audit"))
        .bearer_auth(token_for(&rep.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let auditor = app.org.user("auditor", &["auditor"], None, None).await;
    let seen = app
        .http
        .get(app.url("/api/v1/audit"))
        .bearer_auth(token_for(&auditor.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), 200);

    entries(&app, "", 1).await;
    let db = sqlx::PgPool::connect(&app.permission.as_ref().unwrap().db)
        .await
        .unwrap();
    for statement in [
        "UPDATE audit_entries SET action = 'nothing'",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
    ] {
        let err = sqlx::query(statement).execute(&db).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
}
