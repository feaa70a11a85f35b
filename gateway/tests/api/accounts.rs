//! The account lifecycle through the REST API.

use reqwest::header;
use serde_json::json;

use crate::helpers::{Kind, etag, ok_json, problem, spawn_app};

#[tokio::test]
async fn create_then_get_returns_the_account_with_etag_and_location() {
    let app = spawn_app().await;
    let response = app
        .create(
            Kind::Accounts,
            &json!({
                "name": "Acme Corp",
                "website": "https://acme.example",
                "email": "sales@acme.example",
                "tags": ["vip", "emea"],
                "lifecycle_status": "active",
                "grade": "A"
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(etag(&response), "\"1\"");
    let created = ok_json(response, 201).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/accounts/{id}"));
    assert_eq!(created["name"], "Acme Corp");
    assert_eq!(created["tags"], json!(["vip", "emea"]));
    assert_eq!(created["lifecycle_status"], "active");
    assert_eq!(created["grade"], "A");
    assert_eq!(created["version"], 1);
    // Not given: null, not "".
    assert!(
        created["industry"].is_null() && created["phone"].is_null(),
        "{created}"
    );
    // The caller owns what it creates.
    assert_eq!(created["owner_id"], app.user_id.to_string());

    let response = app.get(Kind::Accounts, id).await;
    assert_eq!(etag(&response), "\"1\"");
    assert_eq!(ok_json(response, 200).await, created);
}

#[tokio::test]
async fn defaults_apply_to_a_minimal_account() {
    let app = spawn_app().await;
    let created = app.create_account("Minimal Ltd").await;
    assert_eq!(created["lifecycle_status"], "prospect");
    assert!(created["grade"].is_null());
    assert_eq!(created["tags"], json!([]));
}

#[tokio::test]
async fn an_unknown_account_is_a_404_problem() {
    let app = spawn_app().await;
    let body = problem(
        app.get(Kind::Accounts, &uuid::Uuid::now_v7().to_string())
            .await,
        404,
    )
    .await;
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    let app = spawn_app().await;
    for (name, tags, status) in [
        ("Acme", json!(["vip"]), "active"),
        ("Globex", json!(["vip", "emea"]), "prospect"),
        ("Initech", json!([]), "churned"),
    ] {
        let body = json!({ "name": name, "tags": tags, "lifecycle_status": status });
        ok_json(app.create(Kind::Accounts, &body).await, 201).await;
    }
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };

    let all = ok_json(app.list(Kind::Accounts, "sort=name").await, 200).await;
    assert_eq!(names(&all), ["Acme", "Globex", "Initech"]);
    assert!(all["next_page_token"].is_null());

    let desc = ok_json(app.list(Kind::Accounts, "sort=name&order=desc").await, 200).await;
    assert_eq!(names(&desc), ["Initech", "Globex", "Acme"]);

    let vip = ok_json(app.list(Kind::Accounts, "tag=vip&sort=name").await, 200).await;
    assert_eq!(names(&vip), ["Acme", "Globex"]);

    let churned = ok_json(app.list(Kind::Accounts, "status=churned").await, 200).await;
    assert_eq!(names(&churned), ["Initech"]);

    let search = ok_json(app.list(Kind::Accounts, "q=glob").await, 200).await;
    assert_eq!(names(&search), ["Globex"]);

    let mine = app.user_id;
    let owned = ok_json(
        app.list(Kind::Accounts, &format!("owner_id={mine}")).await,
        200,
    )
    .await;
    assert_eq!(owned["items"].as_array().unwrap().len(), 3);

    // Paging: two pages of 2 and 1, no record twice.
    let first = ok_json(app.list(Kind::Accounts, "sort=name&page_size=2").await, 200).await;
    assert_eq!(names(&first), ["Acme", "Globex"]);
    let token = first["next_page_token"].as_str().expect("a next page");
    let second = ok_json(
        app.list(
            Kind::Accounts,
            &format!("sort=name&page_size=2&page_token={}", urlencode(token)),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(names(&second), ["Initech"]);
    assert!(second["next_page_token"].is_null());
}

/// Minimal percent-encoding for a cursor in a query string.
fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn patch_needs_the_current_version_and_changes_only_given_fields() {
    let app = spawn_app().await;
    let created = ok_json(
        app.create(
            Kind::Accounts,
            &json!({"name": "Acme", "website": "https://acme.example", "industry": "Anvils", "grade": "B"}),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();

    // No If-Match: 428, and nothing changed.
    let body = problem(
        app.patch(Kind::Accounts, id, &json!({"name": "Acme 2"}), None)
            .await,
        428,
    )
    .await;
    assert_eq!(body["code"], "precondition_required");

    // The current version: applied. `null` clears, absent keeps.
    let response = app
        .patch(
            Kind::Accounts,
            id,
            &json!({"name": "Acme Inc", "website": null, "grade": null}),
            Some("\"1\""),
        )
        .await;
    assert_eq!(etag(&response), "\"2\"");
    let updated = ok_json(response, 200).await;
    assert_eq!(updated["name"], "Acme Inc");
    assert!(updated["website"].is_null());
    assert!(updated["grade"].is_null());
    assert_eq!(updated["industry"], "Anvils");
    assert_eq!(updated["version"], 2);

    // A stale version: 412 version_conflict, nothing changed.
    let body = problem(
        app.patch(Kind::Accounts, id, &json!({"name": "Stale"}), Some("\"1\""))
            .await,
        412,
    )
    .await;
    assert_eq!(body["code"], "version_conflict");
    assert_eq!(
        ok_json(app.get(Kind::Accounts, id).await, 200).await["name"],
        "Acme Inc"
    );

    // Weak ETags and `*` are accepted.
    let updated = ok_json(
        app.patch(Kind::Accounts, id, &json!({"tags": ["x"]}), Some("W/\"2\""))
            .await,
        200,
    )
    .await;
    assert_eq!(updated["version"], 3);
    let updated = ok_json(
        app.patch(
            Kind::Accounts,
            id,
            &json!({"lifecycle_status": "active"}),
            Some("*"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["version"], 4);
    assert_eq!(updated["lifecycle_status"], "active");
}

#[tokio::test]
async fn a_malformed_if_match_is_a_400() {
    let app = spawn_app().await;
    let id = app.create_account("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for bad in ["1", "\"one\"", "\"1\", \"2\""] {
        let body = problem(
            app.patch(Kind::Accounts, &id, &json!({"name": "X"}), Some(bad))
                .await,
            400,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "If-Match", "{bad}: {body}");
    }
    assert_eq!(
        ok_json(app.get(Kind::Accounts, &id).await, 200).await["version"],
        1
    );
}

#[tokio::test]
async fn delete_checks_if_match_when_given() {
    let app = spawn_app().await;
    let id = app.create_account("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok_json(
        app.patch(
            Kind::Accounts,
            &id,
            &json!({"industry": "Anvils"}),
            Some("\"1\""),
        )
        .await,
        200,
    )
    .await;

    let body = problem(app.delete(Kind::Accounts, &id, Some("\"1\"")).await, 412).await;
    assert_eq!(body["code"], "version_conflict");
    assert_eq!(app.get(Kind::Accounts, &id).await.status(), 200);

    let response = app.delete(Kind::Accounts, &id, Some("\"2\"")).await;
    assert_eq!(response.status(), 204);
    problem(app.get(Kind::Accounts, &id).await, 404).await;
    assert!(app.ids(Kind::Accounts, "").await.is_empty());

    // Without If-Match: deletes whatever version is current.
    let other = app.create_account("Globex").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.delete(Kind::Accounts, &other, None).await.status(), 204);
    problem(app.delete(Kind::Accounts, &other, None).await, 404).await;
}

#[tokio::test]
async fn the_gateway_drains_and_stops_cleanly() {
    let app = spawn_app().await;
    app.create_account("Acme").await;
    app.shutdown().await;
}
