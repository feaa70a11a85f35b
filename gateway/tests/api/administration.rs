//! Administering the organisation over REST (`/api/v1/admin`): departments, roles with their
//! grants and field rules, a user's departments, manager and password, record shares, sharing
//! rules and API clients — what used to need a trusted gRPC caller. Each change is proved by its
//! effect through the API (what a user then lists and sees, whether a client gets a token), and
//! every route is held to the API's rules: 400 naming the field, 404 for unknown ids, 412/428
//! for `If-Match`, 403 without the organisation grant.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Options, SIGN_IN_PASSWORD, SIGN_IN_USER, TestApp, etag, first_bad_field, ok_json, problem,
    spawn_app, spawn_with, token_for,
};

const WAIT: Duration = Duration::from_secs(15);

/// `method path` as `token`'s user, with `body` (JSON) and `If-Match` when given.
fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> RequestBuilder {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(tag) = if_match {
        request = request.header(header::IF_MATCH, tag);
    }
    request
}

/// The same as the test's admin.
async fn admin(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Response {
    send(app, &app.token, method, path, body.as_ref(), if_match)
        .send()
        .await
        .expect("request")
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_string()
}

/// The id of the department named `name`, read over REST.
async fn department(app: &TestApp, name: &str) -> String {
    let list = ok_json(
        admin(app, Method::GET, "/api/v1/admin/departments", None, None).await,
        200,
    )
    .await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .map(id)
        .unwrap_or_else(|| panic!("no department {name} in {list}"))
}

/// The id of the role named `name`, read over REST.
async fn role(app: &TestApp, token: &str, name: &str) -> String {
    let list = ok_json(
        send(app, token, Method::GET, "/api/v1/admin/roles", None, None)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .map(id)
        .unwrap_or_else(|| panic!("no role {name} in {list}"))
}

/// Waits until `token`'s user lists exactly the accounts `want` (permission changes reach the
/// gateway within about a second) and returns the items.
async fn lists_accounts(app: &TestApp, token: &str, want: &[&str]) -> Vec<Value> {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let want = &want;
    crm_testkit::wait_for(WAIT, move || async move {
        let response = app
            .http
            .get(app.url("/api/v1/accounts?page_size=200"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let page: Value = response.json().await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            return Err(format!("{status}: {page}"));
        }
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let mut ids: Vec<String> = items
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        if &ids == want {
            Ok(items)
        } else {
            Err(format!("lists {ids:?}, want {want:?}"))
        }
    })
    .await
}

/// Waits until `token`'s user reads account `id` with `phone` present or left out, and
/// returns it.
async fn reads_account(app: &TestApp, token: &str, id: &str, phone_shown: bool) -> Value {
    let path = format!("/api/v1/accounts/{id}");
    let path = &path;
    crm_testkit::wait_for(WAIT, move || async move {
        let response = app
            .http
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let account: Value = response.json().await.map_err(|e| e.to_string())?;
        if status == StatusCode::OK && account.get("phone").is_some() == phone_shown {
            Ok(account)
        } else {
            Err(format!("{status}: {account}"))
        }
    })
    .await
}

async fn account_in(app: &TestApp, name: &str, department_id: &str) -> String {
    let body = json!({"name": name, "phone": "13812345678", "department_id": department_id});
    id(&ok_json(
        admin(app, Method::POST, "/api/v1/accounts", Some(body), None).await,
        201,
    )
    .await)
}

#[tokio::test]
async fn departments_roles_and_field_rules_set_over_rest_decide_what_a_user_sees() {
    let app = spawn_app().await;
    let headquarters = department(&app, "Headquarters").await;

    // Two departments; the second moves under the first.
    let created = admin(
        &app,
        Method::POST,
        "/api/v1/admin/departments",
        Some(json!({"name": "West"})),
        None,
    )
    .await;
    assert_eq!(etag(&created), "\"1\"");
    let location = created.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let west = ok_json(created, 201).await;
    assert_eq!(location, format!("/api/v1/admin/departments/{}", id(&west)));
    assert_eq!(west["parent_id"], Value::Null);
    let west = id(&west);
    let inbound = id(&ok_json(
        admin(
            &app,
            Method::POST,
            "/api/v1/admin/departments",
            Some(json!({"name": "Inbound", "parent_id": headquarters})),
            None,
        )
        .await,
        201,
    )
    .await);
    let moved = admin(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/departments/{inbound}"),
        Some(json!({"parent_id": west})),
        Some("\"1\""),
    )
    .await;
    assert_eq!(etag(&moved), "\"2\"");
    let moved = ok_json(moved, 200).await;
    assert_eq!(moved["parent_id"], json!(west));
    assert_eq!(moved["name"], "Inbound");
    let got = admin(
        &app,
        Method::GET,
        &format!("/api/v1/admin/departments/{inbound}"),
        None,
        None,
    )
    .await;
    assert_eq!(etag(&got), "\"2\"");
    let list = ok_json(
        admin(&app, Method::GET, "/api/v1/admin/departments", None, None).await,
        200,
    )
    .await;
    let order: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    let position = |id: &str| order.iter().position(|d| *d == id).unwrap();
    assert!(
        position(&west) < position(&inbound),
        "parents first: {list}"
    );

    // A role reading accounts of its holders' departments, with the phone hidden.
    let created = admin(
        &app,
        Method::POST,
        "/api/v1/admin/roles",
        Some(json!({"name": "inbound_reader", "description": "Reads its department's accounts."})),
        None,
    )
    .await;
    assert_eq!(etag(&created), "\"1\"");
    let reader = ok_json(created, 201).await;
    assert_eq!(reader["grants"], json!([]));
    assert_eq!(reader["parent_role_id"], Value::Null);
    let reader = id(&reader);
    let grants = format!("/api/v1/admin/roles/{reader}/grants/account/read");
    let granted = admin(
        &app,
        Method::PUT,
        &grants,
        Some(json!({"scope": "department"})),
        Some("\"1\""),
    )
    .await;
    assert_eq!(etag(&granted), "\"2\"", "a grant is a change of its role");
    assert_eq!(
        ok_json(granted, 200).await["grants"],
        json!([{"resource": "account", "action": "read", "scope": "department"}])
    );
    let phone_rule = format!("/api/v1/admin/roles/{reader}/field-rules/account/phone");
    let hidden = admin(
        &app,
        Method::PUT,
        &phone_rule,
        Some(json!({"visibility": "hidden"})),
        Some("\"2\""),
    )
    .await;
    assert_eq!(etag(&hidden), "\"3\"");
    assert_eq!(
        ok_json(hidden, 200).await["field_rules"],
        json!([{"resource": "account", "field": "phone", "visibility": "hidden", "mask": null}])
    );

    // A new user, given the role and placed in Inbound, with the admin as manager.
    let user = ok_json(
        admin(
            &app,
            Method::POST,
            "/api/v1/admin/users",
            Some(json!({"username": "inbound.agent", "password": "a long enough password"})),
            None,
        )
        .await,
        201,
    )
    .await;
    let user = id(&user);
    let assigned = ok_json(
        admin(
            &app,
            Method::POST,
            &format!("/api/v1/admin/users/{user}/roles"),
            Some(json!({"role_id": reader})),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(assigned["role_ids"], json!([reader]));
    let org_path = format!("/api/v1/admin/users/{user}/org");
    let org = admin(&app, Method::GET, &org_path, None, None).await;
    let version = etag(&org);
    let org = ok_json(org, 200).await;
    assert_eq!(org["primary_department_id"], Value::Null);
    assert_eq!(version, format!("\"{}\"", org["version"]));
    let placed = admin(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/users/{user}/departments"),
        Some(json!({"primary_department_id": inbound, "other_department_ids": []})),
        Some(&version),
    )
    .await;
    let version = etag(&placed);
    let placed = ok_json(placed, 200).await;
    assert_eq!(placed["primary_department_id"], json!(inbound));
    assert_eq!(placed["department_ids"], json!([inbound]));
    let managed = ok_json(
        admin(
            &app,
            Method::PUT,
            &format!("/api/v1/admin/users/{user}/manager"),
            Some(json!({"manager_id": app.user_id})),
            Some(&version),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(managed["manager_id"], json!(app.user_id));
    assert_eq!(managed["primary_department_id"], json!(inbound));

    // The effect: the user lists only Inbound's account, and never sees its phone.
    let in_inbound = account_in(&app, "Inbound customer", &inbound).await;
    let in_north = account_in(
        &app,
        "North customer",
        &department(&app, "North Sales").await,
    )
    .await;
    let token = token_for(&user);
    let items = lists_accounts(&app, &token, &[&in_inbound]).await;
    assert!(items[0].get("phone").is_none(), "{items:?}");
    assert_eq!(items[0]["name"], "Inbound customer");
    reads_account(&app, &token, &in_inbound, false).await;
    let outside = send(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/accounts/{in_north}"),
        None,
        None,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(outside.status(), 404);

    // Without the rule, the phone shows.
    let unhidden = admin(&app, Method::DELETE, &phone_rule, None, Some("\"3\"")).await;
    assert_eq!(etag(&unhidden), "\"4\"");
    assert_eq!(ok_json(unhidden, 200).await["field_rules"], json!([]));
    let account = reads_account(&app, &token, &in_inbound, true).await;
    assert_eq!(account["phone"], "13812345678");

    // Moved to West, the user no longer reaches Inbound's account with `department` …
    let org = admin(&app, Method::GET, &org_path, None, None).await;
    let version = etag(&org);
    ok_json(
        admin(
            &app,
            Method::PUT,
            &format!("/api/v1/admin/users/{user}/departments"),
            Some(json!({"primary_department_id": west})),
            Some(&version),
        )
        .await,
        200,
    )
    .await;
    lists_accounts(&app, &token, &[]).await;
    // … but does with `department_and_children`: Inbound is below West since the move.
    let widened = admin(
        &app,
        Method::PUT,
        &grants,
        Some(json!({"scope": "department_and_children"})),
        Some("\"4\""),
    )
    .await;
    assert_eq!(etag(&widened), "\"5\"");
    lists_accounts(&app, &token, &[&in_inbound]).await;
    let role_now = ok_json(
        admin(
            &app,
            Method::GET,
            &format!("/api/v1/admin/roles/{reader}"),
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(role_now["grants"][0]["scope"], "department_and_children");
    assert_eq!(role_now["version"], 5);
    // Without the grant, nothing at all.
    let revoked = admin(&app, Method::DELETE, &grants, None, Some("*")).await;
    assert_eq!(etag(&revoked), "\"6\"");
    crm_testkit::eventually("the user loses account:read", WAIT, || async {
        send(&app, &token, Method::GET, "/api/v1/accounts", None, None)
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::FORBIDDEN
    })
    .await;

    // A renamed role; a new password the user signs in with.
    let renamed = ok_json(
        admin(
            &app,
            Method::PATCH,
            &format!("/api/v1/admin/roles/{reader}"),
            Some(json!({"name": "west_reader", "description": null})),
            Some("\"6\""),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "west_reader");
    assert_eq!(renamed["description"], "");
    let set = admin(
        &app,
        Method::PUT,
        &format!("/api/v1/admin/users/{user}/password"),
        Some(json!({"password": "a brand new passphrase"})),
        None,
    )
    .await;
    assert_eq!(set.status(), 204);
    let login = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "inbound.agent", "password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    // Taking things apart: a role held or a department with members or children stays.
    let held = admin(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/roles/{reader}"),
        None,
        None,
    )
    .await;
    assert_eq!(problem(held, 409).await["code"], "failed_precondition");
    let unassigned = admin(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/users/{user}/roles/{reader}"),
        None,
        None,
    )
    .await;
    assert_eq!(unassigned.status(), 204);
    let stale = admin(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/roles/{reader}"),
        None,
        Some("\"1\""),
    )
    .await;
    assert_eq!(problem(stale, 412).await["code"], "version_conflict");
    let deleted = admin(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/roles/{reader}"),
        None,
        Some("\"7\""),
    )
    .await;
    assert_eq!(deleted.status(), 204);
    let gone = admin(
        &app,
        Method::GET,
        &format!("/api/v1/admin/roles/{reader}"),
        None,
        None,
    )
    .await;
    assert_eq!(problem(gone, 404).await["code"], "not_found");

    let parent = admin(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/departments/{west}"),
        None,
        None,
    )
    .await;
    assert_eq!(problem(parent, 409).await["code"], "failed_precondition");
    let org = admin(&app, Method::GET, &org_path, None, None).await;
    let version = etag(&org);
    let out = ok_json(
        admin(
            &app,
            Method::PUT,
            &format!("/api/v1/admin/users/{user}/departments"),
            Some(json!({"primary_department_id": null})),
            Some(&version),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(out["department_ids"], json!([]));
    for department in [&inbound, &west] {
        let deleted = admin(
            &app,
            Method::DELETE,
            &format!("/api/v1/admin/departments/{department}"),
            None,
            None,
        )
        .await;
        assert_eq!(deleted.status(), 204, "{department}");
    }
}

#[tokio::test]
async fn admin_routes_name_bad_fields_and_refuse_unknown_ids_and_stale_versions() {
    let app = spawn_app().await;
    let sales = department(&app, "Sales").await;
    let dept = ok_json(
        admin(
            &app,
            Method::POST,
            "/api/v1/admin/departments",
            Some(json!({"name": "Projects", "parent_id": sales})),
            None,
        )
        .await,
        201,
    )
    .await;
    let dept = id(&dept);
    let role = id(&ok_json(
        admin(
            &app,
            Method::POST,
            "/api/v1/admin/roles",
            Some(json!({"name": "project_lead"})),
            None,
        )
        .await,
        201,
    )
    .await);
    let user = app.org.user("member", &[], Some("Sales"), None).await;

    // Bad input: a 400 naming the field (or the path parameter), nothing changed.
    let bad: Vec<(Method, String, Value, Option<&str>, &str)> = vec![
        (
            Method::POST,
            "/api/v1/admin/departments".into(),
            json!({"name": 5}),
            None,
            "name",
        ),
        (
            Method::POST,
            "/api/v1/admin/departments".into(),
            json!({"name": "x", "nmae": "y"}),
            None,
            "nmae",
        ),
        (
            Method::POST,
            "/api/v1/admin/departments".into(),
            json!({"name": "x", "parent_id": "nope"}),
            None,
            "parent_id",
        ),
        (
            Method::POST,
            "/api/v1/admin/departments".into(),
            json!({"name": ""}),
            None,
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/departments/{dept}"),
            json!({"name": null}),
            Some("*"),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/admin/roles".into(),
            json!({"name": "Not A Key"}),
            None,
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/roles/{role}"),
            json!({"parent_role_id": "x"}),
            Some("*"),
            "parent_role_id",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/grants/planet/read"),
            json!({"scope": "all"}),
            Some("*"),
            "resource",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/grants/account/fly"),
            json!({"scope": "all"}),
            Some("*"),
            "action",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/grants/account/read"),
            json!({"scope": "everything"}),
            Some("*"),
            "scope",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/grants/account/read"),
            json!({}),
            Some("*"),
            "scope",
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/not-a-uuid/grants/account/read".into(),
            json!({"scope": "all"}),
            Some("*"),
            "id",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/phone"),
            json!({"visibility": "invisible"}),
            Some("*"),
            "visibility",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/phone"),
            json!({"visibility": "hidden", "mask": "phone"}),
            Some("*"),
            "mask",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/phone"),
            json!({"visibility": "read_only", "mask": "blur"}),
            Some("*"),
            "mask",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/Bad-Field"),
            json!({"visibility": "hidden"}),
            Some("*"),
            "field",
        ),
        // Well-formed, but the registry (what the customer service declared) has no such field,
        // or no rule may govern it, or it cannot be masked, or no such resource.
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/shoe_size"),
            json!({"visibility": "hidden"}),
            Some("*"),
            "field",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/owner_id"),
            json!({"visibility": "hidden"}),
            Some("*"),
            "field",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/grade"),
            json!({"visibility": "read_only", "mask": "phone"}),
            Some("*"),
            "field",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/grants/planet/read"),
            json!({"scope": "all"}),
            Some("*"),
            "resource",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/departments"),
            json!({"other_department_ids": []}),
            Some("*"),
            "primary_department_id",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/departments"),
            json!({"primary_department_id": null, "other_department_ids": [dept]}),
            Some("*"),
            "primary_department_id",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/departments"),
            json!({"primary_department_id": dept, "other_department_ids": ["x"]}),
            Some("*"),
            "other_department_ids[0]",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/manager"),
            json!({}),
            Some("*"),
            "manager_id",
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/password"),
            json!({"password": "short"}),
            None,
            "password",
        ),
        (
            Method::GET,
            "/api/v1/admin/shares/planet/00000000-0000-4000-8000-000000000001".into(),
            Value::Null,
            None,
            "resource",
        ),
        (
            Method::GET,
            "/api/v1/admin/shares/account/nope".into(),
            Value::Null,
            None,
            "record_id",
        ),
        (
            Method::POST,
            "/api/v1/admin/shares".into(),
            json!({"resource": "account", "record_id": dept, "user_id": user, "access": "own"}),
            None,
            "access",
        ),
        (
            Method::POST,
            "/api/v1/admin/sharing-rules".into(),
            json!({"name": "both", "resource": "account", "access": "read", "grantee_department_id": dept, "grantee_role_id": role, "source_department_id": sales}),
            None,
            "grantee_department_id",
        ),
        (
            Method::POST,
            "/api/v1/admin/sharing-rules".into(),
            json!({"name": "cond", "resource": "account", "access": "read", "grantee_role_id": role, "condition": {"field": "grade"}}),
            None,
            "condition.equals",
        ),
        (
            Method::POST,
            "/api/v1/admin/api-clients".into(),
            json!({"client_id": "9 bad", "name": "ERP", "scopes": ["account:read"]}),
            None,
            "client_id",
        ),
        (
            Method::POST,
            "/api/v1/admin/api-clients".into(),
            json!({"client_id": "erp", "name": "ERP", "scopes": ["account:fly"]}),
            None,
            "scopes[0]",
        ),
        (
            Method::POST,
            "/api/v1/admin/api-clients".into(),
            json!({"client_id": "erp", "name": "ERP", "scopes": [], "requests_per_window": -1}),
            None,
            "requests_per_window",
        ),
        (
            Method::GET,
            "/api/v1/admin/api-clients/erp".into(),
            Value::Null,
            None,
            "id",
        ),
    ];
    for (method, path, body, if_match, field) in bad {
        let body = (!body.is_null()).then_some(&body);
        let response = send(&app, &app.token, method.clone(), &path, body, if_match)
            .send()
            .await
            .unwrap();
        assert_eq!(
            first_bad_field(response).await,
            field,
            "{method} {path} {body:?}"
        );
    }
    let dept_now = ok_json(
        admin(
            &app,
            Method::GET,
            &format!("/api/v1/admin/departments/{dept}"),
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (dept_now["name"].as_str(), dept_now["version"].as_i64()),
        (Some("Projects"), Some(1))
    );

    // Unknown ids: 404, for reads and writes alike (If-Match `*` and a version alike).
    let nobody = Uuid::new_v4();
    let unknown: Vec<(Method, String, Value, Option<&str>)> = vec![
        (
            Method::GET,
            format!("/api/v1/admin/departments/{nobody}"),
            Value::Null,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/departments/{nobody}"),
            json!({"name": "x"}),
            Some("\"1\""),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/departments/{nobody}"),
            json!({"name": "x"}),
            Some("*"),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/departments/{nobody}"),
            Value::Null,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/roles/{nobody}"),
            Value::Null,
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/roles/{nobody}"),
            json!({"name": "x_y"}),
            Some("\"1\""),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/roles/{nobody}"),
            Value::Null,
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{nobody}/grants/account/read"),
            json!({"scope": "all"}),
            Some("\"1\""),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/roles/{nobody}/grants/account/read"),
            Value::Null,
            Some("*"),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{nobody}/field-rules/account/phone"),
            json!({"visibility": "hidden"}),
            Some("\"1\""),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/roles/{nobody}/field-rules/account/phone"),
            Value::Null,
            Some("\"1\""),
        ),
        (
            Method::GET,
            format!("/api/v1/admin/users/{nobody}/org"),
            Value::Null,
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{nobody}/departments"),
            json!({"primary_department_id": dept}),
            Some("\"1\""),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{nobody}/manager"),
            json!({"manager_id": null}),
            Some("*"),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{nobody}/password"),
            json!({"password": "a long enough password"}),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/sharing-rules/{nobody}"),
            Value::Null,
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/api-clients/{nobody}"),
            Value::Null,
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/api-clients/{nobody}/secret"),
            Value::Null,
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/api-clients/{nobody}/status"),
            json!({"status": "disabled"}),
            None,
        ),
    ];
    for (method, path, body, if_match) in unknown {
        let body = (!body.is_null()).then_some(&body);
        let response = send(&app, &app.token, method.clone(), &path, body, if_match)
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem(response, 404).await["code"],
            "not_found",
            "{method} {path}"
        );
    }

    // Stale If-Match: 412; missing where a change needs it: 428. Nothing changes.
    let stale: Vec<(Method, String, Value)> = vec![
        (
            Method::PATCH,
            format!("/api/v1/admin/departments/{dept}"),
            json!({"name": "Renamed"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/departments/{dept}"),
            Value::Null,
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/roles/{role}"),
            json!({"description": "x"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/grants/account/read"),
            json!({"scope": "own"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/phone"),
            json!({"visibility": "hidden"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/departments"),
            json!({"primary_department_id": dept}),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/manager"),
            json!({"manager_id": app.user_id}),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{user}/roles"),
            json!({"role_id": role}),
        ),
    ];
    for (method, path, body) in &stale {
        let body = (!body.is_null()).then_some(body);
        let response = send(&app, &app.token, method.clone(), path, body, Some("\"99\""))
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem(response, 412).await["code"],
            "version_conflict",
            "{method} {path}"
        );
    }
    let needs_if_match: Vec<(Method, String, Value)> = vec![
        (
            Method::PATCH,
            format!("/api/v1/admin/departments/{dept}"),
            json!({"name": "Renamed"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/roles/{role}"),
            json!({"description": "x"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/grants/account/read"),
            json!({"scope": "own"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/roles/{role}/grants/account/read"),
            Value::Null,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{role}/field-rules/account/phone"),
            json!({"visibility": "hidden"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/roles/{role}/field-rules/account/phone"),
            Value::Null,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/departments"),
            json!({"primary_department_id": dept}),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{user}/manager"),
            json!({"manager_id": app.user_id}),
        ),
    ];
    for (method, path, body) in &needs_if_match {
        let body = (!body.is_null()).then_some(body);
        let response = send(&app, &app.token, method.clone(), path, body, None)
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem(response, 428).await["code"],
            "precondition_required",
            "{method} {path}"
        );
    }
    let role_now = ok_json(
        admin(
            &app,
            Method::GET,
            &format!("/api/v1/admin/roles/{role}"),
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(role_now["version"], 1, "{role_now}");
    assert_eq!(role_now["grants"], json!([]));
    let org_now = ok_json(
        admin(
            &app,
            Method::GET,
            &format!("/api/v1/admin/users/{user}/org"),
            None,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(org_now["manager_id"], Value::Null);
    assert_eq!(org_now["role_ids"], json!([]));

    // Structural refusals are conflicts: a department under its own child, a role its own
    // ancestor.
    let child = id(&ok_json(
        admin(
            &app,
            Method::POST,
            "/api/v1/admin/departments",
            Some(json!({"name": "Sub-project", "parent_id": dept})),
            None,
        )
        .await,
        201,
    )
    .await);
    let cycle = admin(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/departments/{dept}"),
        Some(json!({"parent_id": child})),
        Some("*"),
    )
    .await;
    assert_eq!(problem(cycle, 409).await["code"], "failed_precondition");
    let own_parent = admin(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/roles/{role}"),
        Some(json!({"parent_role_id": role})),
        Some("*"),
    )
    .await;
    assert_eq!(
        problem(own_parent, 409).await["code"],
        "failed_precondition"
    );
    let taken = admin(
        &app,
        Method::POST,
        "/api/v1/admin/roles",
        Some(json!({"name": "project_lead"})),
        None,
    )
    .await;
    assert_eq!(problem(taken, 409).await["code"], "already_exists");
}

#[tokio::test]
async fn every_admin_route_needs_its_organisation_grant() {
    let app = spawn_app().await;
    let rep = app
        .org
        .user("rep", &["sales_rep"], Some("East Sales"), None)
        .await;
    let auditor = app
        .org
        .user("auditor", &["auditor"], Some("Headquarters"), None)
        .await;
    let some = Uuid::new_v4();
    let routes: Vec<(Method, String, Value, bool)> = vec![
        // (method, path, body, only reads)
        (
            Method::GET,
            "/api/v1/admin/departments".into(),
            Value::Null,
            true,
        ),
        (
            Method::POST,
            "/api/v1/admin/departments".into(),
            json!({"name": "Sneaky"}),
            false,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/departments/{some}"),
            Value::Null,
            true,
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/departments/{some}"),
            json!({"name": "x"}),
            false,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/departments/{some}"),
            Value::Null,
            false,
        ),
        (Method::GET, "/api/v1/admin/roles".into(), Value::Null, true),
        (
            Method::POST,
            "/api/v1/admin/roles".into(),
            json!({"name": "sneaky"}),
            false,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/roles/{some}"),
            Value::Null,
            true,
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/roles/{some}"),
            json!({"name": "x_y"}),
            false,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/roles/{some}"),
            Value::Null,
            false,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{some}/grants/account/read"),
            json!({"scope": "all"}),
            false,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/roles/{some}/grants/account/read"),
            Value::Null,
            false,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/roles/{some}/field-rules/account/phone"),
            json!({"visibility": "editable"}),
            false,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/roles/{some}/field-rules/account/phone"),
            Value::Null,
            false,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/users/{some}/org"),
            Value::Null,
            true,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{some}/departments"),
            json!({"primary_department_id": null}),
            false,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{some}/manager"),
            json!({"manager_id": null}),
            false,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{rep}/password"),
            json!({"password": "a long enough password"}),
            false,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{rep}/roles"),
            json!({"role_id": some}),
            false,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{rep}/roles/{some}"),
            Value::Null,
            false,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/shares/account/{some}"),
            Value::Null,
            true,
        ),
        (
            Method::POST,
            "/api/v1/admin/shares".into(),
            json!({"resource": "account", "record_id": some, "user_id": rep, "access": "edit"}),
            false,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/shares/account/{some}/{rep}"),
            Value::Null,
            false,
        ),
        (
            Method::GET,
            "/api/v1/admin/sharing-rules".into(),
            Value::Null,
            true,
        ),
        (
            Method::POST,
            "/api/v1/admin/sharing-rules".into(),
            json!({"name": "x", "resource": "account", "access": "read", "grantee_department_id": some, "source_department_id": some}),
            false,
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/sharing-rules/{some}"),
            Value::Null,
            false,
        ),
        (
            Method::POST,
            "/api/v1/admin/api-clients".into(),
            json!({"client_id": "sneaky", "name": "x", "scopes": []}),
            false,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/api-clients/{some}"),
            Value::Null,
            true,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/api-clients/{some}/secret"),
            Value::Null,
            false,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/api-clients/{some}/status"),
            json!({"status": "disabled"}),
            false,
        ),
    ];
    let rep_token = token_for(&rep.to_string());
    let auditor_token = token_for(&auditor.to_string());
    for (method, path, body, read) in &routes {
        let body = (!body.is_null()).then_some(body);
        // No organisation grant at all.
        let response = send(&app, &rep_token, method.clone(), path, body, Some("*"))
            .send()
            .await
            .unwrap();
        let refused = problem(response, 403).await;
        assert_eq!(refused["code"], "permission_denied", "{method} {path}");
        // organisation:read only (the auditor): reads pass the guard, changes do not.
        let response = send(&app, &auditor_token, method.clone(), path, body, Some("*"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        if *read {
            assert!(
                status == 200 || status == 404,
                "{method} {path} as a reader: {status}"
            );
        } else {
            assert_eq!(status, 403, "{method} {path} as a reader");
        }
    }
    // Nothing was made.
    let departments = ok_json(
        admin(&app, Method::GET, "/api/v1/admin/departments", None, None).await,
        200,
    )
    .await;
    assert!(
        !departments["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "Sneaky")
    );
    let rules = ok_json(
        admin(&app, Method::GET, "/api/v1/admin/sharing-rules", None, None).await,
        200,
    )
    .await;
    assert_eq!(rules["items"], json!([]));
}

#[tokio::test]
async fn shares_and_sharing_rules_are_administered_over_rest() {
    let app = spawn_app().await;
    let east_rep = app
        .org
        .user("east", &["sales_rep"], Some("East Sales"), None)
        .await;
    let north_rep = app
        .org
        .user("north", &["sales_rep"], Some("North Sales"), None)
        .await;
    let east_sales = department(&app, "East Sales").await;
    let north_sales = department(&app, "North Sales").await;
    let east = token_for(&east_rep.to_string());
    let body = json!({"name": "North grade A", "grade": "A", "owner_id": north_rep,
                      "department_id": north_sales});
    let record = id(&ok_json(
        admin(&app, Method::POST, "/api/v1/accounts", Some(body), None).await,
        201,
    )
    .await);
    lists_accounts(&app, &east, &[]).await;

    // One record shared with one user, listed, then unshared.
    let shared = admin(
        &app,
        Method::POST,
        "/api/v1/admin/shares",
        Some(
            json!({"resource": "account", "record_id": record, "user_id": east_rep,
                    "access": "read"}),
        ),
        None,
    )
    .await;
    assert_eq!(shared.status(), 204);
    let shares_path = format!("/api/v1/admin/shares/account/{record}");
    let shares = ok_json(
        admin(&app, Method::GET, &shares_path, None, None).await,
        200,
    )
    .await;
    assert_eq!(shares["items"].as_array().unwrap().len(), 1, "{shares}");
    let share = &shares["items"][0];
    assert_eq!(
        (
            &share["resource"],
            &share["record_id"],
            &share["user_id"],
            &share["access"]
        ),
        (
            &json!("account"),
            &json!(record),
            &json!(east_rep),
            &json!("read")
        )
    );
    assert!(share["created_at"].is_string());
    lists_accounts(&app, &east, &[&record]).await;
    let unshared = admin(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/shares/account/{record}/{east_rep}"),
        None,
        None,
    )
    .await;
    assert_eq!(unshared.status(), 204);
    let shares = ok_json(
        admin(&app, Method::GET, &shares_path, None, None).await,
        200,
    )
    .await;
    assert_eq!(shares["items"], json!([]));
    lists_accounts(&app, &east, &[]).await;

    // A rule: East Sales' members read North Sales' records.
    let created = admin(
        &app,
        Method::POST,
        "/api/v1/admin/sharing-rules",
        Some(
            json!({"name": "North for East", "resource": "account", "access": "read",
                    "grantee_department_id": east_sales, "source_department_id": north_sales}),
        ),
        None,
    )
    .await;
    let rule = ok_json(created, 201).await;
    assert_eq!(rule["grantee_department_id"], json!(east_sales));
    assert_eq!(rule["source_department_id"], json!(north_sales));
    assert_eq!(
        (&rule["grantee_role_id"], &rule["condition"]),
        (&Value::Null, &Value::Null)
    );
    let rule_id = id(&rule);
    lists_accounts(&app, &east, &[&record]).await;
    // … and one by condition, for a role's holders.
    let rep_role = role(&app, &app.token, "sales_rep").await;
    let by_grade = ok_json(
        admin(
            &app,
            Method::POST,
            "/api/v1/admin/sharing-rules",
            Some(
                json!({"name": "Grade A", "resource": "contact", "access": "edit",
                        "grantee_role_id": rep_role,
                        "condition": {"field": "grade", "equals": "A"}}),
            ),
            None,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        by_grade["condition"],
        json!({"field": "grade", "equals": "A"})
    );
    assert_eq!(by_grade["access"], "edit");
    let rules = ok_json(
        admin(&app, Method::GET, "/api/v1/admin/sharing-rules", None, None).await,
        200,
    )
    .await;
    let names: Vec<&str> = rules["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["North for East", "Grade A"],
        "by resource, then name"
    );

    let deleted = admin(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/sharing-rules/{rule_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(deleted.status(), 204);
    lists_accounts(&app, &east, &[]).await;
    let again = admin(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/sharing-rules/{rule_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(problem(again, 404).await["code"], "not_found");
}

/// Form-encoded client credentials at the token endpoint.
async fn client_token(app: &TestApp, client_id: &str, secret: &str) -> Response {
    app.http
        .post(app.url("/api/v1/auth/token"))
        .basic_auth(client_id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_api_client_made_over_rest_gets_tokens_until_rotated_or_disabled() {
    // Tokens as deployed (the permission service's), so the client's token is accepted; the
    // administrator signs in like anyone.
    let app = spawn_with(Options {
        with_permission: true,
        ..Default::default()
    })
    .await;
    let signed_in = ok_json(
        app.http
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": SIGN_IN_USER, "password": SIGN_IN_PASSWORD}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let admin_token = signed_in["access_token"].as_str().unwrap().to_string();
    let as_admin = |method: Method, path: &str, body: Option<Value>| {
        let mut request = app
            .http
            .request(method, app.url(path))
            .bearer_auth(&admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };

    let created = as_admin(
        Method::POST,
        "/api/v1/admin/api-clients",
        Some(json!({"client_id": "erp-rest", "name": "ERP", "scopes": ["account:read"]})),
    )
    .await
    .unwrap();
    assert_eq!(created.headers()[header::CACHE_CONTROL], "no-store");
    let location = created.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let made = ok_json(created, 201).await;
    let client = &made["client"];
    let record = id(client);
    assert_eq!(location, format!("/api/v1/admin/api-clients/{record}"));
    assert_eq!(client["client_id"], "erp-rest");
    assert_eq!(client["scopes"], json!(["account:read"]));
    assert_eq!(client["status"], "active");
    assert_eq!(client["requests_per_window"], Value::Null);
    let secret = made["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 20, "a real secret");

    let read = ok_json(as_admin(Method::GET, &location, None).await.unwrap(), 200).await;
    assert_eq!(read["client_id"], "erp-rest");
    assert!(read.get("client_secret").is_none(), "{read}");

    // Its service user gets a role over REST too; then its token reads accounts.
    let admin_role = role(&app, &admin_token, "admin").await;
    ok_json(
        as_admin(
            Method::POST,
            &format!("/api/v1/admin/users/{record}/roles"),
            Some(json!({"role_id": admin_role})),
        )
        .await
        .unwrap(),
        200,
    )
    .await;
    let issued = ok_json(client_token(&app, "erp-rest", &secret).await, 200).await;
    assert_eq!(issued["scope"], "account:read");
    let token = issued["access_token"].as_str().unwrap().to_string();
    let token = &token;
    let app = &app;
    crm_testkit::eventually(
        "the client's token reads accounts",
        WAIT,
        move || async move {
            app.http
                .get(app.url("/api/v1/accounts"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                == StatusCode::OK
        },
    )
    .await;

    // Rotated: the old secret is refused at once, the new one works.
    let rotated = as_admin(Method::POST, &format!("{location}/secret"), None)
        .await
        .unwrap();
    assert_eq!(rotated.headers()[header::CACHE_CONTROL], "no-store");
    let rotated = ok_json(rotated, 200).await;
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(client_token(app, "erp-rest", &secret).await.status(), 401);
    assert_eq!(
        client_token(app, "erp-rest", &new_secret).await.status(),
        200
    );

    // Disabled: no more tokens, and the one out is refused.
    let disabled = ok_json(
        as_admin(
            Method::PUT,
            &format!("{location}/status"),
            Some(json!({"status": "disabled"})),
        )
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(
        client_token(app, "erp-rest", &new_secret).await.status(),
        401
    );
    crm_testkit::eventually(
        "the disabled client's token is refused",
        WAIT,
        move || async move {
            app.http
                .get(app.url("/api/v1/accounts"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                == StatusCode::UNAUTHORIZED
        },
    )
    .await;
    let enabled = ok_json(
        as_admin(
            Method::PUT,
            &format!("{location}/status"),
            Some(json!({"status": "active"})),
        )
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert_eq!(
        client_token(app, "erp-rest", &new_secret).await.status(),
        200
    );
}

/// The registry as the customer service declared it at start: its resources, their fields and
/// what rules may do with each; what an administrator's field-rule editor reads.
#[tokio::test]
async fn the_registry_lists_what_the_services_declared() {
    let app = spawn_app().await;
    let listed = ok_json(
        app.request(Method::GET, "/api/v1/admin/resources")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let items = listed["items"].as_array().unwrap();
    let account = items.iter().find(|r| r["name"] == "account").unwrap();
    assert_eq!(account["owner"], "customer");
    assert!(account["declared_at"].is_string(), "{account}");
    let field = |name: &str| {
        account["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {account}"))
            .clone()
    };
    assert_eq!(field("phone")["kind"], "phone");
    assert_eq!(field("phone")["governed"], true);
    assert_eq!(field("owner_id")["governed"], false);
    assert_eq!(field("grade")["condition"], true);
    assert_eq!(field("tags")["kind"], "text_list");
    let contact = items.iter().find(|r| r["name"] == "contact").unwrap();
    assert!(
        contact["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "first_name")
    );

    // Not for everyone: organisation READ.
    let rep = app
        .org
        .user("registry.rep", &["sales_rep"], None, None)
        .await;
    let response = app
        .http
        .get(app.url("/api/v1/admin/resources"))
        .bearer_auth(token_for(&rep.to_string()))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
}
