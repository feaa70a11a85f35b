//! API clients (OAuth 2.0 client credentials): a token limited to the client's scopes, its own
//! quota with the RateLimit headers, one 401 for every bad credential, and a disabled client
//! losing its tokens.

use std::time::{Duration, Instant};

use crm_gateway::settings::RateLimitSettings;
use crm_proto::permission as pb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, spawn_with};

/// A client with `scopes` and `quota`, whose service user is an admin (so only the scopes
/// limit it); returns (client_id, secret, record id).
async fn client(app: &TestApp, scopes: &[&str], quota: u32) -> (String, String, String) {
    let client_id = format!("erp-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let made = app
        .org
        .clients
        .clone()
        .create_api_client(pb::CreateApiClientRequest {
            client_id: client_id.clone(),
            name: "ERP".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            requests_per_window: quota,
        })
        .await
        .expect("create API client")
        .into_inner();
    let record = made.client.unwrap();
    assert_eq!(record.client_id, client_id);
    app.org.assign(&record.id, "admin").await;
    (client_id, made.client_secret, record.id)
}

async fn token_response(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let body = form
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = app
        .http
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

/// Form-urlencodes one value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn generous_limits() -> Options {
    Options {
        rate_limit: Some(RateLimitSettings {
            enabled: true,
            per_user: 1000,
            per_anonymous_ip: 1000,
            window_secs: 60,
        }),
        // Verify the permission service's own tokens (as deployed).
        with_permission: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn an_api_client_is_limited_to_its_scopes_and_throttled_past_its_quota() {
    let app = spawn_with(generous_limits()).await;
    let (client_id, secret, _) = client(&app, &["account:read", "account:create"], 4).await;
    let issued = token_response(
        &app,
        &[("grant_type", "client_credentials")],
        Some((&client_id, &secret)),
    )
    .await;
    assert_eq!(issued.status(), StatusCode::OK);
    assert_eq!(header(&issued, "cache-control"), "no-store");
    let body: Value = issued.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "account:create account:read");
    let token = body["access_token"].as_str().unwrap().to_string();
    let call =
        |method: Method, path: &str| app.http.request(method, app.url(path)).bearer_auth(&token);

    let listed = call(Method::GET, "/api/v1/accounts").send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(
        header(&listed, "ratelimit-limit"),
        "4",
        "the client's own quota"
    );
    assert_eq!(header(&listed, "ratelimit-policy"), "4;w=60");
    let created = call(Method::POST, "/api/v1/accounts")
        .json(&json!({"name": "From the ERP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Admin roles, but the token is not scoped for these.
    let contacts = call(Method::GET, "/api/v1/contacts").send().await.unwrap();
    assert_eq!(contacts.status(), StatusCode::FORBIDDEN);
    let problem: Value = contacts.json().await.unwrap();
    assert_eq!(problem["code"], "permission_denied");
    let deleted = call(Method::DELETE, &format!("/api/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&deleted, "ratelimit-remaining"), "0");

    // Past the quota of 4 requests per window.
    let refused = call(Method::GET, "/api/v1/accounts").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=15).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(header(&refused, "ratelimit-limit"), "4");

    // A second token of the same client shares the budget.
    let again: Value = token_response(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", "account:read"),
        ],
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["scope"], "account:read");
    let second = app
        .http
        .get(app.url("/api/v1/accounts"))
        .bearer_auth(again["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn bad_client_credentials_all_get_the_same_401_and_bad_requests_a_400() {
    let app = spawn_with(generous_limits()).await;
    let (client_id, secret, _) = client(&app, &["account:read"], 0).await;
    let mut details = Vec::new();
    for (id, secret) in [
        (client_id.as_str(), "wrong-secret"),
        ("no-such-client", secret.as_str()),
        ("", secret.as_str()),
    ] {
        let response = token_response(
            &app,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ],
            None,
        )
        .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if id.is_empty() {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["errors"][0]["field"], "client_id");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            details.push(body["detail"].clone());
        }
    }
    assert_eq!(details[0], details[1], "no hint whether the client exists");

    for (form, field) in [
        (
            vec![
                ("grant_type", "password"),
                ("client_id", client_id.as_str()),
            ],
            "grant_type",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("scope", "account:delete"),
            ],
            "scope",
        ),
    ] {
        let response = token_response(&app, &form, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }

    // Invalid clients are refused field by field, and nothing is made.
    let err = app
        .org
        .clients
        .clone()
        .create_api_client(pb::CreateApiClientRequest {
            client_id: "9 bad".into(),
            name: String::new(),
            scopes: vec!["account:fly".into()],
            requests_per_window: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> = crm_errors::ApiError::from_status(&err)
        .violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["client_id", "name", "scopes[0]"]);
    let taken = app
        .org
        .clients
        .clone()
        .create_api_client(pb::CreateApiClientRequest {
            client_id: client_id.clone(),
            name: "again".into(),
            scopes: vec!["account:read".into()],
            requests_per_window: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::AlreadyExists);
}

#[tokio::test]
async fn a_disabled_or_rotated_client_loses_access() {
    let app = spawn_with(generous_limits()).await;
    let (client_id, secret, id) = client(&app, &["account:read"], 0).await;
    let token: Value = token_response(
        &app,
        &[("grant_type", "client_credentials")],
        Some((&client_id, &secret)),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let list = || async {
        app.http
            .get(app.url("/api/v1/accounts"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(list().await, StatusCode::OK);

    // A rotated secret: the old one is refused at once, the new one works.
    let rotated = app
        .org
        .clients
        .clone()
        .rotate_api_client_secret(pb::RotateApiClientSecretRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    let old = token_response(
        &app,
        &[("grant_type", "client_credentials")],
        Some((&client_id, &secret)),
    )
    .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = token_response(
        &app,
        &[("grant_type", "client_credentials")],
        Some((&client_id, &rotated.client_secret)),
    )
    .await;
    assert_eq!(new.status(), StatusCode::OK);

    // Disabled: no new tokens, and the one already out is refused by the gateway.
    app.org
        .clients
        .clone()
        .set_api_client_status(pb::SetApiClientStatusRequest {
            id: client_id.clone(),
            status: pb::UserStatus::Disabled as i32,
        })
        .await
        .unwrap();
    let refused = token_response(
        &app,
        &[("grant_type", "client_credentials")],
        Some((&client_id, &rotated.client_secret)),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let started = Instant::now();
    while list().await != StatusCode::UNAUTHORIZED {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a disabled client's token still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
