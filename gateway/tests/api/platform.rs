//! Health, metrics, request ids and the problem shape of routing errors.

use reqwest::{Method, header};

use crate::helpers::{Kind, ok_json, problem, spawn_app};

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            app.http.get(app.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template() {
    let app = spawn_app().await;
    let id = app.create_account("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok_json(app.get(Kind::Accounts, &id).await, 200).await;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("http_request_duration_seconds"),
        "{metrics}"
    );
    // Other tests in the same process add series of their own: look for this one.
    let series = metrics.lines().find(|l| {
        l.starts_with("http_requests_total")
            && l.contains(r#"route="/api/v1/accounts/{id}""#)
            && l.contains(r#"method="GET""#)
            && l.contains(r#"status="200""#)
    });
    assert!(
        series.is_some(),
        "no series for the route template: {metrics}"
    );
    assert!(!metrics.contains(&id), "a raw path leaked into the metrics");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    let body = problem(
        app.request(Method::GET, "/api/v1/nothing-here")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(body["code"], "not_found");

    let response = app
        .request(Method::PUT, "/api/v1/accounts")
        .send()
        .await
        .unwrap();
    let allow = response
        .headers()
        .get(header::ALLOW)
        .map(|v| v.to_str().unwrap().to_string());
    let body = problem(response, 405).await;
    assert_eq!(body["code"], "method_not_allowed");
    let allow = allow.expect("Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn request_ids_are_made_or_kept_and_quoted_in_problems() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/v1/nothing-here")
        .send()
        .await
        .unwrap();
    let made = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    assert_eq!(problem(response, 404).await["request_id"], made);

    let response = app
        .request(Method::GET, "/api/v1/nothing-here")
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-42");
    assert_eq!(
        problem(response, 404).await["request_id"],
        "client-chosen-42"
    );

    let response = app.list(Kind::Accounts, "").await;
    assert!(response.headers().contains_key("x-request-id"));
}
