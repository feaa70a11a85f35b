//! Follow-ups (跟进记录) through the REST API: their lifecycle, lists and exports, input errors
//! naming the field, and scopes (a follow-up outside the caller's scope is 404 and never
//! counted).
//!
//! `follow_up` is a resource the customer service declares to the registry, not one of the
//! well-known ones the demo roles are seeded with: each test first waits for the declaration,
//! then grants the test's admin role every action on it.

use chrono::{DateTime, Utc};
use crm_proto::permission::{Action, DataScope};
use reqwest::{Method, RequestBuilder, Response, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, etag, first_bad_field, ok_json, problem, spawn_app, token_for};

const PATH: &str = "/api/v1/follow-ups";

const EVERY_ACTION: &[Action] = &[
    Action::Read,
    Action::Create,
    Action::Update,
    Action::Delete,
    Action::Export,
    Action::Assign,
];

/// An app whose admin role (the test user's) may do everything with follow-ups.
async fn spawn_app_with_follow_ups() -> TestApp {
    let app = spawn_app().await;
    app.wait_declared("follow_up").await;
    app.org
        .grant("admin", "follow_up", EVERY_ACTION, DataScope::All)
        .await;
    app
}

fn call(app: &TestApp, token: &str, method: Method, path: &str) -> RequestBuilder {
    app.http.request(method, app.url(path)).bearer_auth(token)
}

async fn create(app: &TestApp, body: &Value) -> Response {
    call(app, &app.token, Method::POST, PATH)
        .json(body)
        .send()
        .await
        .expect("POST")
}

async fn get(app: &TestApp, id: &str) -> Response {
    call(app, &app.token, Method::GET, &format!("{PATH}/{id}"))
        .send()
        .await
        .expect("GET")
}

async fn patch(app: &TestApp, id: &str, body: &Value, if_match: Option<&str>) -> Response {
    let mut request = call(app, &app.token, Method::PATCH, &format!("{PATH}/{id}")).json(body);
    if let Some(tag) = if_match {
        request = request.header(header::IF_MATCH, tag);
    }
    request.send().await.expect("PATCH")
}

async fn delete(app: &TestApp, id: &str, if_match: Option<&str>) -> Response {
    let mut request = call(app, &app.token, Method::DELETE, &format!("{PATH}/{id}"));
    if let Some(tag) = if_match {
        request = request.header(header::IF_MATCH, tag);
    }
    request.send().await.expect("DELETE")
}

/// One page of `GET /api/v1/follow-ups?{query}` as `token`'s user.
async fn list_as(app: &TestApp, token: &str, query: &str) -> Value {
    ok_json(
        call(app, token, Method::GET, &format!("{PATH}?{query}"))
            .send()
            .await
            .expect("list"),
        200,
    )
    .await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_string()
}

/// Creates a follow-up about `account_id` and returns its JSON.
async fn follow_up(app: &TestApp, account_id: &str, kind: &str, subject: &str) -> Value {
    let body = json!({"account_id": account_id, "kind": kind, "subject": subject});
    ok_json(create(app, &body).await, 201).await
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
async fn follow_up_create_get_patch_delete() {
    let app = spawn_app_with_follow_ups().await;
    let acme = id(&app.create_account("Acme").await);
    let ada = id(&app.create_contact(&acme, "Ada").await);

    let response = call(&app, &app.token, Method::POST, PATH)
        .header("Idempotency-Key", "follow-up-1")
        .json(&json!({
            "account_id": acme,
            "contact_id": ada,
            "kind": "visit",
            "subject": "Site visit",
            "content": "Toured the plant.",
            "occurred_at": "2025-03-01T09:30:00+08:00",
            "next_follow_up_at": "2025-03-08T10:00:00+08:00"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(etag(&response), "\"1\"");
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let visit = ok_json(response, 201).await;
    let visit_id = id(&visit);
    assert_eq!(location, format!("{PATH}/{visit_id}"));
    assert_eq!(visit["account_id"], acme);
    assert_eq!(visit["contact_id"], ada);
    assert_eq!(visit["kind"], "visit");
    assert_eq!(visit["subject"], "Site visit");
    assert_eq!(visit["content"], "Toured the plant.");
    // Times come back in UTC, RFC 3339.
    assert_eq!(visit["occurred_at"], "2025-03-01T01:30:00Z");
    assert_eq!(visit["next_follow_up_at"], "2025-03-08T02:00:00Z");
    assert!(visit["outcome"].is_null(), "{visit}");
    assert_eq!(visit["owner_id"], app.user_id.to_string());
    assert_eq!(visit["version"], 1);

    // A retry with the same key is the first answer, not a second follow-up.
    let replayed = call(&app, &app.token, Method::POST, PATH)
        .header("Idempotency-Key", "follow-up-1")
        .json(&json!({
            "account_id": acme,
            "contact_id": ada,
            "kind": "visit",
            "subject": "Site visit",
            "content": "Toured the plant.",
            "occurred_at": "2025-03-01T09:30:00+08:00",
            "next_follow_up_at": "2025-03-08T10:00:00+08:00"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.headers()["idempotency-replayed"], "true");
    assert_eq!(ok_json(replayed, 201).await["id"], visit_id);

    let response = get(&app, &visit_id).await;
    assert_eq!(etag(&response), "\"1\"");
    assert_eq!(ok_json(response, 200).await, visit);

    // The minimal follow-up: about the account as a whole, happening now.
    let before = Utc::now();
    let call_ = follow_up(&app, &acme, "call", "Intro call").await;
    let occurred: DateTime<Utc> = call_["occurred_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (occurred - before).num_seconds().abs() < 60,
        "occurred_at defaults to now: {call_}"
    );
    for unset in ["contact_id", "content", "outcome", "next_follow_up_at"] {
        assert!(call_[unset].is_null(), "{unset}: {call_}");
    }

    // Changes need the version they were made to.
    problem(
        patch(&app, &visit_id, &json!({"outcome": "Won"}), None).await,
        428,
    )
    .await;
    let response = patch(
        &app,
        &visit_id,
        &json!({
            "kind": "meeting",
            "outcome": "Asked for a quote",
            "contact_id": null,
            "next_follow_up_at": null
        }),
        Some("\"1\""),
    )
    .await;
    assert_eq!(etag(&response), "\"2\"");
    let changed = ok_json(response, 200).await;
    assert_eq!(changed["kind"], "meeting");
    assert_eq!(changed["outcome"], "Asked for a quote");
    assert!(changed["contact_id"].is_null(), "{changed}");
    assert!(changed["next_follow_up_at"].is_null(), "{changed}");
    // Absent fields stay.
    assert_eq!(changed["subject"], "Site visit");
    assert_eq!(changed["content"], "Toured the plant.");
    assert_eq!(changed["occurred_at"], "2025-03-01T01:30:00Z");
    assert_eq!(changed["version"], 2);
    assert_eq!(ok_json(get(&app, &visit_id).await, 200).await, changed);

    let body = problem(
        patch(&app, &visit_id, &json!({"subject": "Late"}), Some("\"1\"")).await,
        412,
    )
    .await;
    assert_eq!(body["code"], "version_conflict");
    // A follow-up stays with its account: there is no field to move it.
    let globex = id(&app.create_account("Globex").await);
    let field = first_bad_field(
        patch(
            &app,
            &visit_id,
            &json!({"account_id": globex}),
            Some("\"2\""),
        )
        .await,
    )
    .await;
    assert_eq!(field, "account_id");

    let body = problem(delete(&app, &visit_id, Some("\"1\"")).await, 412).await;
    assert_eq!(body["code"], "version_conflict");
    assert_eq!(delete(&app, &visit_id, Some("\"2\"")).await.status(), 204);
    problem(get(&app, &visit_id).await, 404).await;
    assert_eq!(
        ids(&list_as(&app, &app.token, "").await),
        [id(&call_)],
        "a deleted follow-up is not listed"
    );
}

#[tokio::test]
async fn follow_ups_list_by_account_page_and_export() {
    let app = spawn_app_with_follow_ups().await;
    let acme = id(&app.create_account("Acme").await);
    let globex = id(&app.create_account("Globex").await);
    let mut at_acme = Vec::new();
    for (kind, subject) in [
        ("call", "A call"),
        ("meeting", "B meeting"),
        ("email", "C e-mail"),
    ] {
        at_acme.push(id(&follow_up(&app, &acme, kind, subject).await));
    }
    let at_globex = id(&follow_up(&app, &globex, "note", "D note").await);

    let token = app.token.clone();
    let all = list_as(&app, &token, "include_total=true").await;
    assert_eq!(all["total_size"], 4);
    assert_eq!(ids(&all).len(), 4);
    let acme_only = list_as(&app, &token, &format!("account_id={acme}&sort=subject")).await;
    assert_eq!(ids(&acme_only), at_acme);
    // Not asked to count: no total (not a total of 0).
    assert!(acme_only.get("total_size").is_none(), "{acme_only}");
    let desc = list_as(
        &app,
        &token,
        &format!("account_id={acme}&sort=subject&order=desc"),
    )
    .await;
    assert_eq!(
        ids(&desc),
        at_acme.iter().rev().cloned().collect::<Vec<_>>()
    );
    // Newest first by when they happened (here, the order they were recorded in).
    let timeline = list_as(
        &app,
        &token,
        &format!("account_id={acme}&sort=occurred_at&order=desc"),
    )
    .await;
    assert_eq!(
        ids(&timeline),
        at_acme.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&list_as(&app, &token, &format!("account_id={globex}")).await),
        std::slice::from_ref(&at_globex)
    );
    assert_eq!(
        ids(&list_as(&app, &token, "q=MEETING").await),
        at_acme[1..2]
    );
    assert_eq!(
        ids(&list_as(&app, &token, &format!("owner_id={}", app.user_id)).await).len(),
        4
    );

    // Paging: 2 + 1 at Acme, no record twice, the total on every page.
    let query = format!("account_id={acme}&sort=subject&page_size=2&include_total=true");
    let first = list_as(&app, &token, &query).await;
    assert_eq!(ids(&first), at_acme[..2]);
    assert_eq!(first["total_size"], 3);
    let cursor = first["next_page_token"].as_str().expect("a next page");
    let second = list_as(
        &app,
        &token,
        &format!("{query}&page_token={}", urlencode(cursor)),
    )
    .await;
    assert_eq!(ids(&second), at_acme[2..]);
    assert!(second["next_page_token"].is_null());

    // CSV: the header row, then one row per follow-up at Acme.
    let csv = call(
        &app,
        &token,
        Method::GET,
        &format!("{PATH}/export?format=csv&account_id={acme}&sort=subject"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers()["content-disposition"],
        "attachment; filename=\"follow-ups.csv\""
    );
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,account_id,contact_id,kind,subject,content,outcome,occurred_at,\
         next_follow_up_at,owner_id,department_id,version,created_at,updated_at"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{csv}");
    for (row, want) in rows.iter().zip(&at_acme) {
        assert!(row.starts_with(&format!("{want},{acme},,")), "{row}");
    }
    assert!(rows[1].contains(",meeting,B meeting,"), "{}", rows[1]);

    // NDJSON (the default): every follow-up, each line one record as the API shows it.
    let ndjson = call(&app, &token, Method::GET, &format!("{PATH}/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson.status(), 200);
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let ndjson = ndjson.text().await.unwrap();
    let mut exported: Vec<String> = ndjson
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            assert!(record["kind"].is_string() && record["occurred_at"].is_string());
            id(&record)
        })
        .collect();
    exported.sort();
    let mut want: Vec<String> = at_acme.iter().chain([&at_globex]).cloned().collect();
    want.sort();
    assert_eq!(exported, want);
}

#[tokio::test]
async fn follow_up_input_errors_name_the_field() {
    let app = spawn_app_with_follow_ups().await;
    let acme = id(&app.create_account("Acme").await);
    let globex = id(&app.create_account("Globex").await);
    let grace = id(&app.create_contact(&globex, "Grace").await);
    let nowhere = uuid::Uuid::now_v7().to_string();
    let cases = [
        // The gateway's: shape, types, known fields.
        (
            json!({"account_id": acme, "kind": "fax", "subject": "Hi"}),
            "kind",
        ),
        (
            json!({"account_id": "acme", "kind": "call", "subject": "Hi"}),
            "account_id",
        ),
        (
            json!({"account_id": acme, "kind": "call", "subject": "Hi", "occurred_at": "yesterday"}),
            "occurred_at",
        ),
        (
            json!({"account_id": acme, "kind": "call", "subject": "Hi",
                   "next_follow_up_at": "2025-13-01T00:00:00Z"}),
            "next_follow_up_at",
        ),
        (
            json!({"account_id": acme, "kind": "call", "subjet": "Hi"}),
            "subjet",
        ),
        (
            json!({"account_id": acme, "kind": "call", "subject": ["Hi"]}),
            "subject",
        ),
        // The service's: what is required, what exists, what makes sense.
        (json!({"account_id": acme, "kind": "call"}), "subject"),
        (json!({"account_id": acme, "subject": "Hi"}), "kind"),
        (json!({"kind": "call", "subject": "Hi"}), "account_id"),
        (
            json!({"account_id": nowhere, "kind": "call", "subject": "Hi"}),
            "account_id",
        ),
        (
            json!({"account_id": acme, "contact_id": grace, "kind": "call", "subject": "Hi"}),
            "contact_id",
        ),
        (
            json!({"account_id": acme, "kind": "call", "subject": "Hi",
                   "occurred_at": "2025-03-01T10:00:00Z",
                   "next_follow_up_at": "2025-03-01T09:00:00Z"}),
            "next_follow_up_at",
        ),
        (
            json!({"account_id": acme, "kind": "call", "subject": "Hi",
                   "occurred_at": "2999-01-01T00:00:00Z"}),
            "occurred_at",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(
            first_bad_field(create(&app, &body).await).await,
            field,
            "{body}"
        );
    }
    assert_eq!(
        ids(&list_as(&app, &app.token, "").await),
        Vec::<String>::new(),
        "a refused request wrote a follow-up"
    );

    let written = id(&follow_up(&app, &acme, "note", "Noted").await);
    for (body, field) in [
        (json!({"subject": null}), "subject"),
        (json!({"kind": "fax"}), "kind"),
        (json!({"occurred_at": null}), "occurred_at"),
        (json!({"next_follow_up_at": "soon"}), "next_follow_up_at"),
        (json!({"contact_id": "grace"}), "contact_id"),
        (json!({"contact_id": grace}), "contact_id"),
    ] {
        assert_eq!(
            first_bad_field(patch(&app, &written, &body, Some("\"1\"")).await).await,
            field,
            "{body}"
        );
    }
    assert_eq!(ok_json(get(&app, &written).await, 200).await["version"], 1);

    for (query, field) in [
        ("account_id=acme", "account_id"),
        ("sort=name", "sort"),
        ("status=active", "status"),
    ] {
        let response = call(&app, &app.token, Method::GET, &format!("{PATH}?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(first_bad_field(response).await, field, "{query}");
    }
    problem(get(&app, "not-a-uuid").await, 400).await;
    problem(get(&app, &nowhere).await, 404).await;
}

#[tokio::test]
async fn follow_ups_out_of_scope_are_not_found_and_not_counted() {
    let app = spawn_app_with_follow_ups().await;
    // Sales reps work their own follow-ups, as they do their own accounts.
    app.org
        .grant(
            "sales_rep",
            "follow_up",
            &[Action::Read, Action::Create, Action::Update],
            DataScope::Own,
        )
        .await;
    let rep = app
        .org
        .user("follow_up.rep", &["sales_rep"], None, None)
        .await;
    let rep_token = token_for(&rep.to_string());

    // The admin's account (which the rep may not read) and a follow-up about it.
    let acme = id(&app.create_account("Acme").await);
    let theirs = id(&follow_up(&app, &acme, "visit", "Admin's visit").await);

    // The rep's own account and follow-up.
    let own_account = ok_json(
        call(&app, &rep_token, Method::POST, "/api/v1/accounts")
            .json(&json!({"name": "Rep Co"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let mine = ok_json(
        call(&app, &rep_token, Method::POST, PATH)
            .json(&json!({"account_id": id(&own_account), "kind": "call", "subject": "Mine"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(mine["owner_id"], rep.to_string());

    // The admin's follow-up does not exist for the rep: not by id, not in lists or totals.
    let body = problem(
        call(&app, &rep_token, Method::GET, &format!("{PATH}/{theirs}"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(body["code"], "not_found");
    let page = list_as(&app, &rep_token, "include_total=true").await;
    assert_eq!(ids(&page), [id(&mine)]);
    assert_eq!(page["total_size"], 1);
    let page = list_as(
        &app,
        &rep_token,
        &format!("account_id={acme}&include_total=true"),
    )
    .await;
    assert_eq!(ids(&page), Vec::<String>::new());
    assert_eq!(page["total_size"], 0);
    problem(
        call(&app, &rep_token, Method::PATCH, &format!("{PATH}/{theirs}"))
            .header(header::IF_MATCH, "\"1\"")
            .json(&json!({"subject": "Mine now"}))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    // Nor can the rep record a follow-up about the account they may not read: it is "no such
    // account", exactly like an id that does not exist.
    let field = first_bad_field(
        call(&app, &rep_token, Method::POST, PATH)
            .json(&json!({"account_id": acme, "kind": "call", "subject": "Sneaky"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(field, "account_id");

    // No grant, no route: reps may not export or delete follow-ups.
    for (method, path) in [
        (Method::GET, format!("{PATH}/export")),
        (Method::DELETE, format!("{PATH}/{}", id(&mine))),
    ] {
        let body = problem(
            call(&app, &rep_token, method.clone(), &path)
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
        assert_eq!(body["code"], "permission_denied", "{method} {path}");
    }

    // The admin still sees both, and the admin's follow-up is unchanged.
    assert_eq!(
        ids(&list_as(&app, &app.token, "").await).len(),
        2,
        "the admin sees every follow-up"
    );
    assert_eq!(
        ok_json(get(&app, &theirs).await, 200).await["subject"],
        "Admin's visit"
    );
}

/// The six operations are documented under the `follow-ups` tag, each guarded by its
/// `follow_up` grant, with snake-case operation ids.
#[tokio::test]
async fn follow_up_routes_are_documented_and_guarded() {
    let app = spawn_app().await;
    let doc = ok_json(
        app.http
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let paths = &doc["paths"];
    for (path, method, grant, operation) in [
        (PATH, "post", "follow_up:create", "create_follow_up"),
        (PATH, "get", "follow_up:read", "list_follow_ups"),
        (
            "/api/v1/follow-ups/export",
            "get",
            "follow_up:export",
            "export_follow_ups",
        ),
        (
            "/api/v1/follow-ups/{id}",
            "get",
            "follow_up:read",
            "get_follow_up",
        ),
        (
            "/api/v1/follow-ups/{id}",
            "patch",
            "follow_up:update",
            "update_follow_up",
        ),
        (
            "/api/v1/follow-ups/{id}",
            "delete",
            "follow_up:delete",
            "delete_follow_up",
        ),
    ] {
        let op = &paths[path][method];
        assert_eq!(op["x-crm-permission"], grant, "{method} {path}");
        assert_eq!(op["operationId"], operation, "{method} {path}");
        assert_eq!(op["tags"], json!(["follow-ups"]), "{method} {path}");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "FollowUp",
        "NewFollowUp",
        "FollowUpPatch",
        "FollowUpList",
        "FollowUpKind",
    ] {
        assert!(schemas[schema].is_object(), "schema {schema} missing");
    }
    assert_eq!(
        schemas["FollowUpKind"]["enum"],
        json!(["call", "meeting", "visit", "note", "email"])
    );
    let params = paths[PATH]["get"]["parameters"].as_array().unwrap();
    for name in [
        "account_id",
        "owner_id",
        "q",
        "sort",
        "order",
        "page_size",
        "page_token",
    ] {
        assert!(
            params
                .iter()
                .any(|p| p["name"] == name && p["in"] == "query"),
            "{name} undocumented"
        );
    }
}
