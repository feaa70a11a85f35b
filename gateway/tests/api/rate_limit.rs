//! Quotas per user and per address, shared by gateway replicas through Redis.

use crm_gateway::settings::RateLimitSettings;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, TestApp, spawn_with};

async fn app_with_limit(per_user: u32, per_anonymous_ip: u32) -> TestApp {
    spawn_with(Options {
        rate_limit: Some(RateLimitSettings {
            enabled: true,
            per_user,
            per_anonymous_ip,
            window_secs: 60,
        }),
        ..Default::default()
    })
    .await
}

async fn list(app: &TestApp, base: &str, token: &str) -> reqwest::Response {
    app.http
        .get(format!("{base}/api/v1/accounts"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_user_past_the_quota_gets_429_with_retry_after() {
    let app = app_with_limit(3, 100).await;
    let token = app.admin_token("quota-user").await.0;
    for remaining in ["2", "1", "0"] {
        let response = list(&app, &app.address, &token).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit"), "3");
        assert_eq!(header(&response, "ratelimit-remaining"), remaining);
        assert_eq!(header(&response, "ratelimit-policy"), "3;w=60");
    }
    let refused = list(&app, &app.address, &token).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    // One request refills every 20 s (3 per 60 s).
    assert!(
        (1..=20).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");

    // Another user has a budget of their own.
    let other = list(&app, &app.address, &app.admin_token("someone-else").await.0).await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn replicas_share_one_budget() {
    let app = app_with_limit(4, 100).await;
    let replica = app.second_replica().await;
    let token = app.admin_token("busy-user").await.0;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            replica.clone()
        };
        statuses.push(list(&app, &base, &token).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_counted_per_address() {
    let app = app_with_limit(100, 2).await;
    for _ in 0..2 {
        let response = list(&app, &app.address, "not-a-token").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&response, "ratelimit-limit"), "2");
    }
    let refused = list(&app, &app.address, "not-a-token").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // A signed-in user from the same address is not affected.
    let ok = list(&app, &app.address, &app.admin_token("fine").await.0).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_redis_requests_pass_unthrottled() {
    let app = spawn_with(Options {
        redis_url: Some("redis://127.0.0.1:1".into()),
        rate_limit: Some(RateLimitSettings {
            enabled: true,
            per_user: 1,
            per_anonymous_ip: 1,
            window_secs: 60,
        }),
        ..Default::default()
    })
    .await;
    let token = app.admin_token("user").await.0;
    for _ in 0..3 {
        let response = list(&app, &app.address, &token).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "ratelimit-limit"),
            "",
            "no quota was counted"
        );
    }
}
