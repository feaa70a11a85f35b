use std::collections::HashMap;
use std::time::Duration;

use crm_proto::customer as pb;

use crate::helpers::{Options, account_request, spawn_app, spawn_with};

fn header<'a>(headers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn every_write_publishes_one_event_in_order() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let a = app.create_account("Acme").await;
    client
        .update_account(pb::UpdateAccountRequest {
            id: a.id.clone(),
            expected_version: 1,
            name: Some("Acme Group".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .delete_account(pb::DeleteAccountRequest {
            id: a.id.clone(),
            expected_version: 2,
        })
        .await
        .unwrap();

    let events =
        crm_testkit::collect_events(&app.brokers, &app.topic, 3, Duration::from_secs(60)).await;
    let types: Vec<_> = events.iter().map(|(e, _)| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "customer.account.created",
            "customer.account.updated",
            "customer.account.deleted"
        ]
    );
    for (e, headers) in &events {
        assert_eq!(e.subject, a.id, "the record id is the subject");
        assert_eq!(e.source, "crm/customer");
        assert_eq!(header(headers, "ce_id"), Some(e.id.to_string().as_str()));
        assert_eq!(
            header(headers, "content-type"),
            Some("application/cloudevents+json")
        );
    }
    let created = &events[0].0.data["account"];
    assert_eq!(created["name"], "Acme");
    assert_eq!(created["version"], 1);
    let changes = &events[1].0.data["changes"];
    assert_eq!(
        changes["name"],
        serde_json::json!({"old": "Acme", "new": "Acme Group"})
    );
    assert_eq!(
        changes.as_object().unwrap().len(),
        1,
        "only the changed field"
    );
    assert_eq!(events[2].0.data["version"], 3);
    app.shutdown().await;
}

#[tokio::test]
async fn events_carry_the_callers_trace() {
    let app = spawn_app().await;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let mut request = tonic::Request::new(account_request("Traced"));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    app.client.clone().create_account(request).await.unwrap();
    let events =
        crm_testkit::collect_events(&app.brokers, &app.topic, 1, Duration::from_secs(60)).await;
    assert_eq!(events.len(), 1);
    let traceparent = header(&events[0].1, "traceparent").expect("traceparent header");
    assert_eq!(
        crm_telemetry::propagation::trace_id_of(traceparent),
        Some(trace_id.as_str())
    );
    app.shutdown().await;
}

/// Writes made while the broker is down are kept in the outbox and published once it is back:
/// none lost, none twice, each record's events in order.
#[tokio::test]
async fn broker_outage_loses_and_doubles_nothing() {
    let mut broker = crm_testkit::TansuBroker::start().await;
    let app = spawn_with(Options {
        brokers: broker.brokers(),
        ..Default::default()
    })
    .await;
    let mut client = app.client.clone();
    let first = app.create_account("Before the outage").await;
    app.wait_published().await;

    broker.stop();
    let mut ids = vec![first.id.clone()];
    for i in 0..5 {
        let a = app.create_account(&format!("During the outage {i}")).await;
        client
            .update_account(pb::UpdateAccountRequest {
                id: a.id.clone(),
                expected_version: 1,
                grade: Some(pb::Grade::B as i32),
                ..Default::default()
            })
            .await
            .expect("writes succeed while the broker is down");
        ids.push(a.id);
    }
    // The relay has tried to publish them and failed: they are still there.
    crm_testkit::eventually(
        "the relay tried and failed while the broker was down",
        Duration::from_secs(30),
        || async { crm_testkit::metric("outbox_publish_failures_total") >= 1.0 },
    )
    .await;
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        pending, 10,
        "the outbox holds every write made during the outage"
    );

    // The broker comes back empty (in-memory storage): the relay recreates the topic and
    // publishes what is pending.
    broker.resume().await;
    app.wait_published().await;
    let events = crm_testkit::collect_events_settled(
        &broker.brokers(),
        &app.topic,
        10,
        Duration::from_secs(60),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(events.len(), 10, "each pending event exactly once");
    let mut per_subject: HashMap<&str, Vec<&str>> = HashMap::new();
    for (e, _) in &events {
        per_subject
            .entry(e.subject.as_str())
            .or_default()
            .push(e.event_type.as_str());
    }
    for id in &ids[1..] {
        assert_eq!(
            per_subject[id.as_str()],
            ["customer.account.created", "customer.account.updated"]
        );
    }
    let unique: std::collections::HashSet<_> = events.iter().map(|(e, _)| e.id).collect();
    assert_eq!(unique.len(), 10, "no event id twice");
    app.shutdown().await;
}
