//! Bad input is refused with a problem that names the field, and nothing is written.

use reqwest::{Method, header};
use serde_json::json;

use crate::helpers::{Kind, Options, first_bad_field, problem, spawn_app, spawn_with};

#[tokio::test]
async fn malformed_json_is_a_400_without_field_errors() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, Kind::Accounts.path())
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"name": "Acme""#)
        .send()
        .await
        .unwrap();
    let body = problem(response, 400).await;
    assert_eq!(body["code"], "invalid_argument");
    assert!(
        body["detail"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    assert!(body.get("errors").is_none(), "{body}");
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn an_unknown_field_is_named() {
    let app = spawn_app().await;
    let response = app
        .create(Kind::Accounts, &json!({"name": "Acme", "nmae": "typo"}))
        .await;
    let body = problem(response, 400).await;
    assert_eq!(body["errors"][0]["field"], "nmae");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field"),
        "{body}"
    );
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn a_wrong_type_is_named_with_its_path() {
    let app = spawn_app().await;
    let cases = [
        (json!({"name": 42}), "name"),
        (json!({"name": "Acme", "tags": ["vip", 3]}), "tags[1]"),
        (
            json!({"name": "Acme", "lifecycle_status": "deceased"}),
            "lifecycle_status",
        ),
        (json!({"name": "Acme", "grade": "E"}), "grade"),
        (json!({"name": "Acme", "owner_id": "me"}), "owner_id"),
    ];
    for (body, field) in cases {
        assert_eq!(
            first_bad_field(app.create(Kind::Accounts, &body).await).await,
            field,
            "{body}"
        );
    }
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn an_over_long_name_is_refused_by_the_service() {
    let app = spawn_app().await;
    let response = app
        .create(Kind::Accounts, &json!({"name": "x".repeat(10_000)}))
        .await;
    assert_eq!(first_bad_field(response).await, "name");
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn an_invalid_email_is_refused_by_the_service() {
    let app = spawn_app().await;
    let response = app
        .create(
            Kind::Accounts,
            &json!({"name": "Acme", "email": "not-an-email"}),
        )
        .await;
    assert_eq!(first_bad_field(response).await, "email");
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn a_missing_name_is_refused_by_the_service() {
    let app = spawn_app().await;
    assert_eq!(
        first_bad_field(app.create(Kind::Accounts, &json!({})).await).await,
        "name"
    );
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn a_patch_that_nulls_a_required_field_is_refused() {
    let app = spawn_app().await;
    let id = app.create_account("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let field = first_bad_field(
        app.patch(Kind::Accounts, &id, &json!({"name": null}), Some("\"1\""))
            .await,
    )
    .await;
    assert_eq!(field, "name");
    let field = first_bad_field(
        app.patch(
            Kind::Accounts,
            &id,
            &json!({"email": "nope"}),
            Some("\"1\""),
        )
        .await,
    )
    .await;
    assert_eq!(field, "email");
    assert_eq!(app.ids(Kind::Accounts, "").await, [id]);
}

#[tokio::test]
async fn a_non_json_body_is_a_415() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, Kind::Accounts.path())
        .header(header::CONTENT_TYPE, "text/plain")
        .body(r#"{"name":"Acme"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(response, 415).await["code"],
        "unsupported_media_type"
    );
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = spawn_with(Options {
        body_limit_bytes: Some(4096),
        ..Options::default()
    })
    .await;
    let response = app
        .create(Kind::Accounts, &json!({"name": "x".repeat(8192)}))
        .await;
    assert_eq!(problem(response, 413).await["code"], "payload_too_large");
    // The same limit holds when the idempotency middleware buffers the body.
    let response = app
        .request(Method::POST, Kind::Accounts.path())
        .header("Idempotency-Key", "big-1")
        .json(&json!({"name": "x".repeat(8192)}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 413).await["code"], "payload_too_large");
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn query_strings_are_strict() {
    let app = spawn_app().await;
    for (query, field) in [
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("page_size=ten", "page_size"),
        ("pagesize=10", "pagesize"),
        ("sort=email", "sort"),
        ("order=up", "order"),
        ("status=dead", "status"),
        ("owner_id=me", "owner_id"),
        ("tag=a&tag=b", "tag"),
    ] {
        assert_eq!(
            first_bad_field(app.list(Kind::Accounts, query).await).await,
            field,
            "{query}"
        );
    }
    assert_eq!(
        first_bad_field(app.list(Kind::Contacts, "account_id=x").await).await,
        "account_id"
    );
}

#[tokio::test]
async fn a_bad_cursor_is_a_400() {
    let app = spawn_app().await;
    app.create_account("Acme").await;
    let body = problem(
        app.list(Kind::Accounts, "page_token=not-a-cursor").await,
        400,
    )
    .await;
    assert_eq!(body["code"], "invalid_argument");
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_a_400() {
    let app = spawn_app().await;
    assert_eq!(
        first_bad_field(app.get(Kind::Accounts, "42").await).await,
        "id"
    );
    assert_eq!(
        first_bad_field(app.delete(Kind::Contacts, "abc", None).await).await,
        "id"
    );
}
