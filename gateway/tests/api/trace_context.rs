//! A client's W3C trace continues through the gateway and the service into the event.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Kind, ok_json, spawn_app};

#[tokio::test]
async fn the_clients_trace_id_reaches_the_published_event() {
    let app = spawn_app().await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let parent_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let traceparent = format!("00-{trace_id}-{parent_span}-01");

    let response = app
        .request(Method::POST, Kind::Accounts.path())
        .header("traceparent", &traceparent)
        .json(&json!({"name": "Traced Corp"}))
        .send()
        .await
        .unwrap();
    let account = ok_json(response, 201).await;
    let id = account["id"].as_str().unwrap();

    let events =
        crm_testkit::collect_events(&app.brokers, &app.topic, 1, Duration::from_secs(60)).await;
    let created: Vec<_> = events
        .iter()
        .filter(|(envelope, _)| envelope.event_type == "customer.account.created")
        .collect();
    assert_eq!(
        created.len(),
        1,
        "expected exactly one created event, got {events:?}"
    );
    let (envelope, headers) = created[0];
    assert_eq!(envelope.subject, id);
    let event_traceparent = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no traceparent header on the event: {headers:?}"));
    assert_eq!(
        crm_telemetry::propagation::trace_id_of(event_traceparent),
        Some(trace_id.as_str()),
        "the event does not continue the client's trace"
    );
    // The gateway and the service added their own spans: the parent is not the client's span.
    assert!(
        !event_traceparent.contains(parent_span),
        "{event_traceparent}"
    );
}
