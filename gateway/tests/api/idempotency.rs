//! `Idempotency-Key` on POST, with records in the real Redis.

use reqwest::{Method, Response, header};
use serde_json::{Value, json};

use crate::helpers::{Kind, Options, TestApp, ok_json, problem, spawn_app, spawn_with};

async fn post_with_key(app: &TestApp, kind: Kind, key: &str, body: &Value) -> Response {
    app.request(Method::POST, kind.path())
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("POST")
}

fn header_of(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn a_repeated_request_returns_the_first_response_and_creates_once() {
    let app = spawn_app().await;
    let body = json!({"name": "Acme", "tags": ["vip"]});

    let first = post_with_key(&app, Kind::Accounts, "create-acme-1", &body).await;
    assert_eq!(first.status(), 201);
    assert_eq!(header_of(&first, "idempotency-replayed"), None);
    let (location, etag) = (header_of(&first, "location"), header_of(&first, "etag"));
    let first_body = first.text().await.unwrap();

    let second = post_with_key(&app, Kind::Accounts, "create-acme-1", &body).await;
    assert_eq!(second.status(), 201);
    assert_eq!(
        header_of(&second, "idempotency-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(header_of(&second, "location"), location);
    assert_eq!(header_of(&second, "etag"), etag);
    assert_eq!(
        header_of(&second, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(second.text().await.unwrap(), first_body);

    assert_eq!(app.ids(Kind::Accounts, "").await.len(), 1);

    // Another key is another request.
    ok_json(
        post_with_key(&app, Kind::Accounts, "create-acme-2", &body).await,
        201,
    )
    .await;
    assert_eq!(app.ids(Kind::Accounts, "").await.len(), 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_422() {
    let app = spawn_app().await;
    ok_json(
        post_with_key(&app, Kind::Accounts, "k-1", &json!({"name": "Acme"})).await,
        201,
    )
    .await;
    let response = post_with_key(&app, Kind::Accounts, "k-1", &json!({"name": "Globex"})).await;
    assert_eq!(problem(response, 422).await["code"], "idempotency_mismatch");
    // The same key on another route is another request too.
    let acme = app.ids(Kind::Accounts, "").await.remove(0);
    let response = post_with_key(
        &app,
        Kind::Contacts,
        "k-1",
        &json!({"account_id": acme, "first_name": "Ada"}),
    )
    .await;
    assert_eq!(problem(response, 422).await["code"], "idempotency_mismatch");
    assert_eq!(app.ids(Kind::Accounts, "").await.len(), 1);
    assert!(app.ids(Kind::Contacts, "").await.is_empty());
}

#[tokio::test]
async fn refusals_are_replayed_too() {
    let app = spawn_app().await;
    let body = json!({"name": "Acme", "email": "not-an-email"});
    let first = problem(
        post_with_key(&app, Kind::Accounts, "bad-1", &body).await,
        400,
    )
    .await;
    let second = post_with_key(&app, Kind::Accounts, "bad-1", &body).await;
    assert_eq!(
        header_of(&second, "idempotency-replayed").as_deref(),
        Some("true")
    );
    let second = problem(second, 400).await;
    assert_eq!(second["errors"], first["errors"]);
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn keys_are_per_user() {
    let app = spawn_app().await;
    let body = json!({"name": "Acme"});
    ok_json(
        post_with_key(&app, Kind::Accounts, "shared", &body).await,
        201,
    )
    .await;
    let response = app
        .http
        .post(app.url(Kind::Accounts.path()))
        .bearer_auth(app.admin_token("another-user").await.0)
        .header("Idempotency-Key", "shared")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(header_of(&response, "idempotency-replayed"), None);
    assert_eq!(app.ids(Kind::Accounts, "").await.len(), 2);
}

#[tokio::test]
async fn a_key_still_in_progress_is_a_409_with_retry_after() {
    let app = spawn_app().await;
    let body = json!({"name": "Acme"});
    // Another replica is running this very request: its marker is in Redis.
    let fingerprint = crm_gateway::security::idempotency::fingerprint(
        &http::Method::POST,
        Kind::Accounts.path(),
        &serde_json::to_vec(&body).unwrap(),
    );
    let key = format!(
        "{}:idem:{}:busy-1",
        app.settings.redis.key_prefix, app.user_id
    );
    let marker = json!({"state": "in_progress", "fingerprint": fingerprint, "attempt": "other"});
    let client = redis::Client::open(crm_testkit::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(marker.to_string())
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();

    let response = post_with_key(&app, Kind::Accounts, "busy-1", &body).await;
    assert_eq!(header_of(&response, "retry-after").as_deref(), Some("1"));
    assert_eq!(problem(response, 409).await["code"], "conflict");
    // A different body under the busy key is a mismatch, not a wait.
    let response = post_with_key(&app, Kind::Accounts, "busy-1", &json!({"name": "Other"})).await;
    assert_eq!(problem(response, 422).await["code"], "idempotency_mismatch");
    app.assert_nothing_written(Kind::Accounts).await;
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_invalid_key_is_a_400() {
    let app = spawn_app().await;
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "has space"] {
        let response = post_with_key(&app, Kind::Accounts, key, &json!({"name": "Acme"})).await;
        let body = problem(response, 400).await;
        assert_eq!(body["errors"][0]["field"], "Idempotency-Key", "{key:?}");
    }
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn without_redis_keyed_requests_are_503_and_others_work() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_with(Options {
        redis_url: Some(format!("redis://127.0.0.1:{closed_port}")),
        ..Options::default()
    })
    .await;
    let response = post_with_key(&app, Kind::Accounts, "k-1", &json!({"name": "Acme"})).await;
    assert_eq!(problem(response, 503).await["code"], "unavailable");
    app.assert_nothing_written(Kind::Accounts).await;

    let response = app.create(Kind::Accounts, &json!({"name": "Acme"})).await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get(header::LOCATION).is_some());
}
