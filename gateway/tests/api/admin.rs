//! Administration through the gateway: only holders of the organisation grants may, bad input
//! is a 400 naming the field, and the audit trail names the administrator who acted.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ok_json, problem, spawn_app, token_for};

#[tokio::test]
async fn an_admin_manages_users_roles_and_shares_and_is_on_record() {
    let app = spawn_app().await;
    let user = ok_json(
        app.request(Method::POST, "/api/v1/admin/users")
            .json(&json!({"username": "new.hire", "display_name": "New Hire",
                          "password": "a long enough password"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(user["status"], "active");
    let id = user["id"].as_str().unwrap().to_string();

    let roles = ok_json(
        app.request(Method::GET, "/api/v1/admin/roles")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let rep_role = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "sales_rep")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let assigned = ok_json(
        app.request(Method::POST, &format!("/api/v1/admin/users/{id}/roles"))
            .json(&json!({"role_id": rep_role}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(assigned["role_ids"], json!([rep_role]));

    // The new hire can now list accounts (a sales rep); then is disabled.
    let hire = token_for(&id);
    let started = Instant::now();
    loop {
        let status = app
            .http
            .get(app.url("/api/v1/accounts"))
            .bearer_auth(&hire)
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let disabled = ok_json(
        app.request(Method::PUT, &format!("/api/v1/admin/users/{id}/status"))
            .json(&json!({"status": "disabled"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(disabled["status"], "disabled");
    let removed = app
        .request(
            Method::DELETE,
            &format!("/api/v1/admin/users/{id}/roles/{rep_role}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);

    // Who did it: the admin, in the audit trail.
    let started = Instant::now();
    let entries = loop {
        let page = ok_json(
            app.request(
                Method::GET,
                &format!("/api/v1/audit?record_id={id}&page_size=50"),
            )
            .send()
            .await
            .unwrap(),
            200,
        )
        .await;
        let items = page["items"].as_array().unwrap().clone();
        if items
            .iter()
            .any(|e| e["event_type"] == "permission.assignment.removed")
        {
            break items;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{items:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for event_type in [
        "permission.user.created",
        "permission.assignment.added",
        "permission.user.status_changed",
        "permission.assignment.removed",
    ] {
        let entry = entries
            .iter()
            .find(|e| e["event_type"] == event_type)
            .unwrap_or_else(|| panic!("{event_type} not in {entries:?}"));
        assert_eq!(entry["actor_user_id"], json!(app.user_id), "{event_type}");
        assert_eq!(entry["client_ip"], "127.0.0.1");
    }
}

#[tokio::test]
async fn only_organisation_grants_allow_administration_and_bad_input_is_named() {
    let app = spawn_app().await;
    let rep = app
        .org
        .user("rep", &["sales_rep"], Some("East Sales"), None)
        .await;
    let rep_token = token_for(&rep.to_string());
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/admin/users".to_string(),
            json!({"username": "sneaky"}),
        ),
        (Method::GET, "/api/v1/admin/roles".to_string(), Value::Null),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{rep}/status"),
            json!({"status": "disabled"}),
        ),
        (
            Method::POST,
            "/api/v1/admin/shares".to_string(),
            json!({"resource": "account", "record_id": uuid::Uuid::now_v7(),
                   "user_id": rep, "access": "edit"}),
        ),
    ] {
        let mut request = app
            .http
            .request(method.clone(), app.url(&path))
            .bearer_auth(&rep_token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }

    for (body, field) in [
        (json!({"username": "x"}), "username"),
        (
            json!({"username": "fine.name", "password": "short"}),
            "password",
        ),
    ] {
        let response = app
            .request(Method::POST, "/api/v1/admin/users")
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = problem(response, 400).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let response = app
        .request(Method::PUT, &format!("/api/v1/admin/users/{rep}/status"))
        .json(&json!({"status": "sleeping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 400).await["errors"][0]["field"], "status");
    let response = app
        .request(Method::POST, "/api/v1/admin/shares")
        .json(
            &json!({"resource": "planet", "record_id": uuid::Uuid::now_v7(),
                      "user_id": rep, "access": "edit"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(response, 400).await["errors"][0]["field"],
        "resource"
    );
}
