//! Every API route needs a valid bearer token; docs do not.

use reqwest::{Method, header};
use serde_json::json;

use crate::helpers::{Kind, expired_token, forged_token, problem, spawn_app};

async fn assert_unauthorized(
    response: reqwest::Response,
    invalid_token: bool,
) -> serde_json::Value {
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(
        challenge.contains(r#"error="invalid_token""#),
        invalid_token,
        "{challenge}"
    );
    let body = problem(response, 401).await;
    assert_eq!(body["code"], "unauthenticated");
    body
}

#[tokio::test]
async fn a_request_without_a_token_is_refused_on_every_route() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7();
    for (method, path) in [
        (Method::GET, "/api/v1/accounts".to_string()),
        (Method::POST, "/api/v1/accounts".to_string()),
        (Method::GET, format!("/api/v1/accounts/{id}")),
        (Method::PATCH, format!("/api/v1/accounts/{id}")),
        (Method::DELETE, format!("/api/v1/accounts/{id}")),
        (Method::GET, "/api/v1/contacts".to_string()),
        (Method::POST, "/api/v1/contacts".to_string()),
        (Method::GET, format!("/api/v1/contacts/{id}")),
        (Method::PATCH, format!("/api/v1/contacts/{id}")),
        (Method::DELETE, format!("/api/v1/contacts/{id}")),
    ] {
        let response = app
            .http
            .request(method.clone(), app.url(&path))
            .header(header::IF_MATCH, "\"1\"")
            .json(&json!({"name": "Acme"}))
            .send()
            .await
            .unwrap();
        let body = assert_unauthorized(response, false).await;
        assert!(
            body["detail"].as_str().unwrap().contains("bearer token"),
            "{method} {path}: {body}"
        );
    }
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let token = expired_token();
    let response = app
        .http
        .post(app.url(Kind::Accounts.path()))
        .bearer_auth(&token)
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap();
    let body = assert_unauthorized(response, true).await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    assert!(!body.to_string().contains(&token), "the token was echoed");
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let app = spawn_app().await;
    let token = forged_token();
    let response = app
        .http
        .post(app.url(Kind::Accounts.path()))
        .bearer_auth(&token)
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap();
    let body = assert_unauthorized(response, true).await;
    assert!(
        body["detail"].as_str().unwrap().contains("signature"),
        "{body}"
    );
    assert!(!body.to_string().contains(&token), "the token was echoed");
    app.assert_nothing_written(Kind::Accounts).await;
}

#[tokio::test]
async fn malformed_authorization_headers_are_refused() {
    let app = spawn_app().await;
    for value in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not.a.jwt",
        "Bearer a.b",
    ] {
        let response = app
            .http
            .get(app.url(Kind::Accounts.path()))
            .header(header::AUTHORIZATION, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{value}");
        problem(response, 401).await;
    }
}

#[tokio::test]
async fn users_are_told_apart_by_their_token() {
    let app = spawn_app().await;
    let (token, someone_else) = app.admin_token("someone-else").await;
    let response = app
        .http
        .post(app.url(Kind::Accounts.path()))
        .bearer_auth(token)
        .json(&json!({"name": "Theirs"}))
        .send()
        .await
        .unwrap();
    let theirs: serde_json::Value = response.json().await.unwrap();
    assert_eq!(theirs["owner_id"], someone_else.to_string());
}

#[tokio::test]
async fn docs_need_no_token() {
    let app = spawn_app().await;
    assert_eq!(
        app.http
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(app.url("/api/v1/docs/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
