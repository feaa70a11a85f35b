//! Time zone and language (ADR 0014): users change their own at `/api/v1/me`, administrators
//! anyone's and the organisation's defaults, bad input names the field, the changes are audited,
//! and the caller's effective values reach the owning services in the access context — updated
//! by events, like a user's status.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, etag, ok_json, problem, spawn_app, token_for};

fn as_user(app: &TestApp, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.http.request(method, app.url(path)).bearer_auth(token)
}

/// The first field error of a 400 problem.
async fn bad_field(response: reqwest::Response) -> String {
    let body = problem(response, 400).await;
    assert_eq!(body["code"], "invalid_argument", "{body}");
    body["errors"][0]["field"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_user_reads_and_changes_their_own_profile_at_me() {
    let app = spawn_app().await;
    let ming = app
        .org
        .user("Ming", &["sales_rep"], Some("East Sales"), None)
        .await;
    let token = token_for(&ming.to_string());

    let response = as_user(&app, &token, Method::GET, "/api/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(etag(&response), "\"1\"");
    let me = ok_json(response, 200).await;
    assert_eq!(me["id"], ming.to_string());
    assert_eq!(me["time_zone"], Value::Null, "none chosen");
    assert_eq!(me["effective_time_zone"], "Asia/Shanghai", "{me}");
    assert_eq!(me["effective_locale"], "zh-CN");

    // If-Match is required, as for every PATCH.
    let response = as_user(&app, &token, Method::PATCH, "/api/v1/me")
        .json(&json!({"locale": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(response, 428).await["code"],
        "precondition_required"
    );

    let response = as_user(&app, &token, Method::PATCH, "/api/v1/me")
        .header(header::IF_MATCH, "\"1\"")
        .json(&json!({"display_name": "Ming Li", "time_zone": "America/New_York", "locale": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(etag(&response), "\"2\"");
    let me = ok_json(response, 200).await;
    assert_eq!(me["display_name"], "Ming Li");
    assert_eq!(me["time_zone"], "America/New_York");
    assert_eq!(me["effective_time_zone"], "America/New_York");
    assert_eq!(me["effective_locale"], "en");

    // A stale ETag loses.
    let response = as_user(&app, &token, Method::PATCH, "/api/v1/me")
        .header(header::IF_MATCH, "\"1\"")
        .json(&json!({"locale": "zh-CN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 412).await["code"], "version_conflict");

    // Bad input names the field: the service's checks and the gateway's shape checks alike.
    for (body, field) in [
        (json!({"time_zone": "Asia/Beijing"}), "time_zone"),
        (json!({"time_zone": "+08:00"}), "time_zone"),
        (json!({"locale": "fr"}), "locale"),
        (json!({"locale": "zh_CN"}), "locale"),
        (json!({"display_name": "x".repeat(201)}), "display_name"),
        (json!({"time_zone": 8}), "time_zone"),
        (json!({"display_name": null}), "display_name"),
        (json!({"timezone": "UTC"}), "timezone"),
    ] {
        let response = as_user(&app, &token, Method::PATCH, "/api/v1/me")
            .header(header::IF_MATCH, "*")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(bad_field(response).await, field, "{body}");
    }
    let response = as_user(&app, &token, Method::PATCH, "/api/v1/me")
        .header(header::IF_MATCH, "*")
        .json(&json!({"time_zone": "Mars/Olympus_Mons"}))
        .send()
        .await
        .unwrap();
    let body = problem(response, 400).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("IANA time zone"),
        "{body}"
    );

    // `null` clears: the organisation's default applies again.
    let me = ok_json(
        as_user(&app, &token, Method::PATCH, "/api/v1/me")
            .header(header::IF_MATCH, "*")
            .json(&json!({"time_zone": null}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["version"], 3, "the refused requests changed nothing");
    assert_eq!(me["time_zone"], Value::Null);
    assert_eq!(me["effective_time_zone"], "Asia/Shanghai");
    assert_eq!(me["locale"], "en");

    // Signed-in users only; and /me is not a door to anyone else's record.
    let response = app.http.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(problem(response, 401).await["code"], "unauthenticated");
    for (method, path) in [
        (Method::GET, format!("/api/v1/admin/users/{}", app.user_id)),
        (
            Method::PATCH,
            format!("/api/v1/admin/users/{}", app.user_id),
        ),
        (Method::GET, "/api/v1/admin/organisation/settings".into()),
        (Method::PUT, "/api/v1/admin/organisation/settings".into()),
    ] {
        let response = as_user(&app, &token, method.clone(), &path)
            .header(header::IF_MATCH, "*")
            .json(&json!({"default_time_zone": "UTC", "default_locale": "en", "locale": "en"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn admins_change_users_and_the_organisation_defaults_on_record() {
    let app = spawn_app().await;
    let rep = app
        .org
        .user("Rep", &["sales_rep"], Some("East Sales"), None)
        .await;
    let path = format!("/api/v1/admin/users/{rep}");

    let response = app.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(etag(&response), "\"1\"");
    let user = ok_json(response, 200).await;
    assert_eq!(user["effective_locale"], "zh-CN");
    let user = ok_json(
        app.request(Method::PATCH, &path)
            .header(header::IF_MATCH, "\"1\"")
            .json(&json!({"time_zone": "Europe/London", "locale": "en"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (&user["time_zone"], &user["locale"], &user["version"]),
        (&json!("Europe/London"), &json!("en"), &json!(2))
    );
    let response = app
        .request(Method::PATCH, &path)
        .header(header::IF_MATCH, "*")
        .json(&json!({"locale": "english"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_field(response).await, "locale");
    // Nobody there: 404, as for any record.
    let response = app
        .request(
            Method::PATCH,
            &format!("/api/v1/admin/users/{}", uuid::Uuid::now_v7()),
        )
        .header(header::IF_MATCH, "\"1\"")
        .json(&json!({"locale": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 404).await["code"], "not_found");
    let response = app
        .request(Method::PATCH, "/api/v1/admin/users/not-a-uuid")
        .header(header::IF_MATCH, "\"1\"")
        .json(&json!({"locale": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_field(response).await, "id");

    // The organisation's defaults.
    let settings_path = "/api/v1/admin/organisation/settings";
    let response = app
        .request(Method::GET, settings_path)
        .send()
        .await
        .unwrap();
    let tag = etag(&response);
    let settings = ok_json(response, 200).await;
    assert_eq!(settings["default_time_zone"], "Asia/Shanghai");
    assert_eq!(settings["default_locale"], "zh-CN");
    assert_eq!(tag, format!("\"{}\"", settings["version"]));
    for (body, field) in [
        (
            json!({"default_time_zone": "Europe/Berlinn", "default_locale": "en"}),
            "default_time_zone",
        ),
        (
            json!({"default_time_zone": "Europe/Berlin", "default_locale": ""}),
            "default_locale",
        ),
        (
            json!({"default_time_zone": "Europe/Berlin"}),
            "default_locale",
        ),
    ] {
        let response = app
            .request(Method::PUT, settings_path)
            .header(header::IF_MATCH, tag.as_str())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(bad_field(response).await, field, "{body}");
    }
    let response = app
        .request(Method::PUT, settings_path)
        .json(&json!({"default_time_zone": "Europe/Berlin", "default_locale": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(response, 428).await["code"],
        "precondition_required"
    );
    let response = app
        .request(Method::PUT, settings_path)
        .header(header::IF_MATCH, tag.as_str())
        .json(&json!({"default_time_zone": "Europe/Berlin", "default_locale": "en"}))
        .send()
        .await
        .unwrap();
    let new_tag = etag(&response);
    let settings = ok_json(response, 200).await;
    assert_eq!(settings["default_time_zone"], "Europe/Berlin");
    assert_ne!(new_tag, tag);
    let response = app
        .request(Method::PUT, settings_path)
        .header(header::IF_MATCH, tag.as_str())
        .json(&json!({"default_time_zone": "UTC", "default_locale": "en"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 412).await["code"], "version_conflict");

    // Both changes are in the audit trail, with the administrator as the actor.
    for (record, event_type) in [
        (rep.to_string(), "permission.user.updated"),
        (
            "settings".to_string(),
            "permission.organisation.settings_updated",
        ),
    ] {
        let entries = app
            .audit_entries(&app.token, &format!("record_id={record}"), |items| {
                items.iter().any(|e| e["event_type"] == event_type)
            })
            .await;
        let entry = entries
            .iter()
            .find(|e| e["event_type"] == event_type)
            .unwrap();
        assert_eq!(entry["actor_user_id"], json!(app.user_id), "{entry}");
        assert!(
            entry["changes"].is_object() && entry["changes"] != json!({}),
            "{entry}"
        );
    }
    app.shutdown().await;
}

// --- what an owning service receives -----------------------------------------------------------

/// Stands in for the customer service: records the `crm-access-bin` of every call and answers
/// NOT_FOUND, so the gateway's request completes.
#[derive(Clone, Default)]
struct Capture {
    contexts: Arc<Mutex<Vec<crm_access::Access>>>,
}

impl tonic::server::NamedService for Capture {
    const NAME: &'static str = "crm.customer.v1.CustomerService";
}

impl tower::Service<http::Request<tonic::body::Body>> for Capture {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let metadata = tonic::metadata::MetadataMap::from_headers(request.headers().clone());
        if let Ok(access) = crm_access::Access::from_metadata(&metadata) {
            self.contexts.lock().unwrap().push(access);
        }
        std::future::ready(Ok(tonic::Status::not_found("captured").into_http()))
    }
}

impl Capture {
    async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (_, health) = tonic_health::server::health_reporter();
        let server = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(self.clone())
            .serve_with_incoming(tokio_stream_of(listener));
        tokio::spawn(server);
        format!("http://{address}")
    }

    fn last(&self) -> Option<crm_access::Access> {
        self.contexts.lock().unwrap().last().cloned()
    }
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}

/// The time zone and language the owning service is told for `token`'s next call.
async fn seen_by_service(
    gateway: &str,
    http: &reqwest::Client,
    token: &str,
    capture: &Capture,
) -> (String, String) {
    let response = http
        .get(format!(
            "{gateway}/api/v1/accounts/{}",
            uuid::Uuid::now_v7()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "{:?}", response.text().await);
    let access = capture.last().expect("the service got an access context");
    (
        access.time_zone().name().to_string(),
        access.locale().as_str().to_string(),
    )
}

#[tokio::test]
async fn the_callers_time_zone_reaches_the_owning_service_and_follows_changes() {
    let app = spawn_app().await;
    let capture = Capture::default();
    let customer = capture.serve().await;
    // A gateway replica whose customer service is the capture (same permission service, Redis
    // and events as the test's own gateway).
    let mut settings = app.settings.clone();
    settings.server.http_port = 0;
    settings.services.insert("customer".into(), customer);
    let gateway = crm_gateway::Application::build(settings)
        .await
        .expect("build the gateway");
    let address = format!("http://127.0.0.1:{}", gateway.port());
    let readiness = gateway.readiness();
    let stop = crm_lifecycle::CancellationToken::new();
    let handle = tokio::spawn(gateway.run_until_stopped(stop.clone()));
    crm_testkit::eventually("the gateway is ready", Duration::from_secs(30), || async {
        readiness.is_ready()
    })
    .await;

    let rep = app
        .org
        .user("Traveller", &["sales_rep"], Some("East Sales"), None)
        .await;
    let token = token_for(&rep.to_string());
    // Nothing chosen: the organisation's defaults travel with the call.
    assert_eq!(
        seen_by_service(&address, &app.http, &token, &capture).await,
        ("Asia/Shanghai".into(), "zh-CN".into())
    );
    let context = capture.last().unwrap();
    assert_eq!(context.user_id, rep);
    // At 16:30 UTC it is already tomorrow for this caller.
    let now = chrono::DateTime::parse_from_rfc3339("2025-03-10T16:30:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(context.today(now).to_string(), "2025-03-11");

    // The user changes their own (through this gateway, which has their old values cached):
    // the event makes every gateway forget them, as it would a status change.
    ok_json(
        app.http
            .patch(format!("{address}/api/v1/me"))
            .bearer_auth(&token)
            .header(header::IF_MATCH, "*")
            .json(&json!({"time_zone": "America/New_York", "locale": "en"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let wanted = ("America/New_York".to_string(), "en".to_string());
    crm_testkit::eventually(
        "the change reaches the gateway (its cache lives 60 s: the event must do it)",
        Duration::from_secs(20),
        || async { seen_by_service(&address, &app.http, &token, &capture).await == wanted },
    )
    .await;
    let context = capture.last().unwrap();
    assert_eq!(context.today(now).to_string(), "2025-03-10", "New York");

    // The organisation's default changes: users without their own value follow at once.
    let other = app
        .org
        .user("Stay-at-home", &["sales_rep"], Some("East Sales"), None)
        .await;
    let other_token = token_for(&other.to_string());
    assert_eq!(
        seen_by_service(&address, &app.http, &other_token, &capture)
            .await
            .0,
        "Asia/Shanghai"
    );
    ok_json(
        app.request(Method::PUT, "/api/v1/admin/organisation/settings")
            .header(header::IF_MATCH, "*")
            .json(&json!({"default_time_zone": "Europe/Berlin", "default_locale": "zh-CN"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    crm_testkit::eventually(
        "the new organisation default reaches the gateway",
        Duration::from_secs(20),
        || async {
            seen_by_service(&address, &app.http, &other_token, &capture)
                .await
                .0
                == "Europe/Berlin"
        },
    )
    .await;
    // … while a user with their own keeps it.
    assert_eq!(
        seen_by_service(&address, &app.http, &token, &capture).await,
        wanted
    );

    stop.cancel();
    handle.await.unwrap().unwrap();
    app.shutdown().await;
}
