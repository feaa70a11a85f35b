//! Custom fields through the REST API: defined by an administrator without a migration, filled
//! and read back in accounts' `custom` object, bad definitions and values named by their path,
//! changes guarded by `If-Match`, the `customization` grant required to change the data model,
//! field rules on `custom.<key>` set through the registry, and delete refused or purged.

use reqwest::{Method, RequestBuilder, Response, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, etag, ok_json, problem, spawn_app, token_for};

fn call(app: &TestApp, token: &str, method: Method, path: &str) -> RequestBuilder {
    app.http.request(method, app.url(path)).bearer_auth(token)
}

async fn define(app: &TestApp, body: Value) -> Response {
    call(
        app,
        &app.token,
        Method::POST,
        "/api/v1/admin/fields/account",
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

async fn create_account(app: &TestApp, token: &str, body: Value) -> Response {
    call(app, token, Method::POST, "/api/v1/accounts")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn paths(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_administrator_defines_fields_that_accounts_then_carry() {
    let app = spawn_app().await;
    let region = define(
        &app,
        json!({"key": "region", "type": "select", "label": {"zh": "区域", "en": "Region"},
               "options": [{"value": "east", "label": {"zh": "华东", "en": "East"}},
                           {"value": "west", "label": {"zh": "华西", "en": "West"}}]}),
    )
    .await;
    assert_eq!(
        region.headers()[header::LOCATION],
        "/api/v1/fields/account/region"
    );
    assert_eq!(etag(&region), "\"1\"");
    let region = ok_json(region, 201).await;
    assert_eq!(region["options"][1]["active"], true);
    ok_json(
        define(
            &app,
            json!({"key": "budget", "type": "currency", "currency": "CNY",
                   "label": {"zh": "预算", "en": "Budget"}, "rules": {"min": 0}}),
        )
        .await,
        201,
    )
    .await;

    // A bad definition: every mistake named.
    let bad = problem(
        define(
            &app,
            json!({"key": "Bad Key", "type": "select", "label": {}, "options": []}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(paths(&bad), ["key", "label", "options"]);
    let unknown_type = problem(
        define(&app, json!({"key": "x", "type": "colour"})).await,
        400,
    )
    .await;
    assert_eq!(paths(&unknown_type), ["type"]);
    problem(
        call(&app, &app.token, Method::GET, "/api/v1/fields/invoice")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    // Accounts carry the values, normalised; bad ones are named at custom.<key>.
    let acme = ok_json(
        create_account(
            &app,
            &app.token,
            json!({"name": "华为技术有限公司", "custom": {"region": "east", "budget": "1200.5"}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        acme["custom"],
        json!({"region": "east", "budget": "1200.50"})
    );
    let bad = problem(
        create_account(
            &app,
            &app.token,
            json!({"name": "Bad", "custom": {"region": "south", "budget": -1, "nope": 1}}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(
        paths(&bad),
        ["custom.budget", "custom.nope", "custom.region"]
    );

    // A merge patch of the values.
    let id = acme["id"].as_str().unwrap();
    let patched = call(
        &app,
        &app.token,
        Method::PATCH,
        &format!("/api/v1/accounts/{id}"),
    )
    .header(header::IF_MATCH, "\"1\"")
    .json(&json!({"custom": {"budget": null, "region": "west"}}))
    .send()
    .await
    .unwrap();
    assert_eq!(
        ok_json(patched, 200).await["custom"],
        json!({"region": "west"})
    );

    // Lists and exports filter on custom fields with the condition language.
    let filtered = |filter: &'static str| {
        call(
            &app,
            &app.token,
            Method::GET,
            &format!(
                "/api/v1/accounts?include_total=true&filter={}",
                encode(filter)
            ),
        )
        .send()
    };
    let page = ok_json(filtered("custom.region = 'west'").await.unwrap(), 200).await;
    assert_eq!(page["total_size"], 1, "{page}");
    assert_eq!(page["items"][0]["id"], id);
    let page = ok_json(filtered("custom.region = 'east'").await.unwrap(), 200).await;
    assert_eq!(page["total_size"], 0, "{page}");
    let bad = problem(filtered("custom.region = ").await.unwrap(), 400).await;
    assert_eq!(paths(&bad), ["filter"]);
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("position 16"),
        "{bad}"
    );
    let exported = call(
        &app,
        &app.token,
        Method::GET,
        &format!(
            "/api/v1/accounts/export?filter={}",
            encode("custom.region in ('west')")
        ),
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(exported.lines().count(), 1, "{exported}");

    // A stale If-Match on a definition is 412; a deactivated field hides its values.
    let stale = call(
        &app,
        &app.token,
        Method::PATCH,
        "/api/v1/admin/fields/account/region",
    )
    .header(header::IF_MATCH, "\"7\"")
    .json(&json!({"active": false}))
    .send()
    .await
    .unwrap();
    problem(stale, 412).await;
    let off = call(
        &app,
        &app.token,
        Method::PATCH,
        "/api/v1/admin/fields/account/region",
    )
    .header(header::IF_MATCH, "\"1\"")
    .json(&json!({"active": false}))
    .send()
    .await
    .unwrap();
    assert_eq!(etag(&off), "\"2\"");
    let read = ok_json(
        call(
            &app,
            &app.token,
            Method::GET,
            &format!("/api/v1/accounts/{id}"),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(read["custom"], json!({}));

    // Deleting a field that holds values needs purge=true.
    let held = call(
        &app,
        &app.token,
        Method::DELETE,
        "/api/v1/admin/fields/account/region",
    )
    .send()
    .await
    .unwrap();
    problem(held, 409).await;
    let purged = call(
        &app,
        &app.token,
        Method::DELETE,
        "/api/v1/admin/fields/account/region?purge=true",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(purged.status(), 204);
    let listed = ok_json(
        call(&app, &app.token, Method::GET, "/api/v1/fields/account")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let keys: Vec<&str> = listed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["budget"]);
    app.shutdown().await;
}

#[tokio::test]
async fn the_data_model_is_the_customization_grants_and_field_rules_govern_custom_fields() {
    let app = spawn_app().await;
    ok_json(
        define(
            &app,
            json!({"key": "hotline", "type": "phone", "label": {"zh": "热线", "en": "Hotline"}}),
        )
        .await,
        201,
    )
    .await;
    let rep = app.org.user("rep", &["sales_rep"], None, None).await;
    let rep_token = token_for(&rep.to_string());

    // A rep reads the definitions (to draw forms) but may not change them.
    let listed = ok_json(
        call(&app, &rep_token, Method::GET, "/api/v1/fields/account")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["fields"][0]["key"], "hotline");
    let refused = call(
        &app,
        &rep_token,
        Method::POST,
        "/api/v1/admin/fields/account",
    )
    .json(&json!({"key": "x", "type": "text", "label": {"en": "X"}}))
    .send()
    .await
    .unwrap();
    problem(refused, 403).await;

    // The registry knows the field as custom.hotline once declared: a rule masks it for reps.
    app.wait_declared_field("account", "custom.hotline").await;
    let role = app.org.role("sales_rep").await;
    let rule = call(
        &app,
        &app.token,
        Method::PUT,
        &format!("/api/v1/admin/roles/{role}/field-rules/account/custom.hotline"),
    )
    .header(header::IF_MATCH, "*")
    .json(&json!({"visibility": "read_only", "mask": "phone"}))
    .send()
    .await
    .unwrap();
    ok_json(rule, 200).await;
    let unknown = call(
        &app,
        &app.token,
        Method::PUT,
        &format!("/api/v1/admin/roles/{role}/field-rules/account/custom.nothing"),
    )
    .header(header::IF_MATCH, "*")
    .json(&json!({"visibility": "hidden"}))
    .send()
    .await
    .unwrap();
    problem(unknown, 400).await;

    // The admin makes the rep an account with the number; the rep sees it masked once the
    // rule has reached the gateway (permission changes travel as events).
    let made = ok_json(
        create_account(
            &app,
            &app.token,
            json!({"name": "Rep's account", "owner_id": rep,
                   "custom": {"hotline": "13800138000"}}),
        )
        .await,
        201,
    )
    .await;
    let id = made["id"].as_str().unwrap().to_string();
    let shown: String = crm_testkit::wait_for(std::time::Duration::from_secs(30), || async {
        let seen = ok_json(
            call(
                &app,
                &rep_token,
                Method::GET,
                &format!("/api/v1/accounts/{id}"),
            )
            .send()
            .await
            .unwrap(),
            200,
        )
        .await;
        let shown = seen["custom"]["hotline"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match shown.contains('*') {
            true => Ok(shown),
            false => Err(format!("not masked yet: {seen}")),
        }
    })
    .await;
    assert_ne!(shown, "13800138000");
    // Read-only for the rep: writing it is refused by name, on create and on update.
    let refused = create_account(
        &app,
        &rep_token,
        json!({"name": "Another", "custom": {"hotline": "13800138000"}}),
    )
    .await;
    let body = problem(refused, 403).await;
    assert_eq!(paths(&body), ["custom.hotline"]);
    let refused = call(
        &app,
        &rep_token,
        Method::PATCH,
        &format!("/api/v1/accounts/{id}"),
    )
    .header(header::IF_MATCH, "*")
    .json(&json!({"custom": {"hotline": "123"}}))
    .send()
    .await
    .unwrap();
    problem(refused, 403).await;
    app.shutdown().await;
}

#[tokio::test]
async fn validation_rules_are_defined_and_enforced_through_the_api() {
    let app = spawn_app().await;
    ok_json(
        define(
            &app,
            json!({"key": "close_date", "type": "date", "label": {"zh": "结束日期", "en": "Close date"}}),
        )
        .await,
        201,
    )
    .await;
    let rules = "/api/v1/admin/validation-rules/account";
    let bad = call(&app, &app.token, Method::POST, rules)
        .json(&json!({"key": "broken", "condition": "custom.close_date >",
                      "message": {"en": "x"}}))
        .send()
        .await
        .unwrap();
    let bad = problem(bad, 400).await;
    assert_eq!(paths(&bad), ["condition"]);
    let made = call(&app, &app.token, Method::POST, rules)
        .json(&json!({"key": "close_date_when_active",
                      "condition": "lifecycle_status = 'active' and custom.close_date is empty",
                      "message": {"zh": "合作中的客户必须填写结束日期",
                                  "en": "Close date is required when the account is active"},
                      "field": "custom.close_date"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        made.headers()[header::LOCATION],
        "/api/v1/admin/validation-rules/account/close_date_when_active"
    );
    ok_json(made, 201).await;

    let refused = problem(
        create_account(
            &app,
            &app.token,
            json!({"name": "Active", "lifecycle_status": "active"}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(paths(&refused), ["custom.close_date"]);
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("结束日期") || message.contains("Close date"),
        "{message}"
    );
    ok_json(
        create_account(
            &app,
            &app.token,
            json!({"name": "Active", "lifecycle_status": "active",
                   "custom": {"close_date": "2027-06-30"}}),
        )
        .await,
        201,
    )
    .await;

    // Switched off with If-Match, it no longer holds.
    let off = call(
        &app,
        &app.token,
        Method::PATCH,
        &format!("{rules}/close_date_when_active"),
    )
    .header(header::IF_MATCH, "\"1\"")
    .json(&json!({"active": false}))
    .send()
    .await
    .unwrap();
    assert_eq!(etag(&off), "\"2\"");
    ok_json(
        create_account(
            &app,
            &app.token,
            json!({"name": "Active again", "lifecycle_status": "active"}),
        )
        .await,
        201,
    )
    .await;

    // Only the data model's administrators see and change rules.
    let rep = app.org.user("rep", &["sales_rep"], None, None).await;
    let listed = call(&app, &token_for(&rep.to_string()), Method::GET, rules)
        .send()
        .await
        .unwrap();
    problem(listed, 403).await;
    let gone = call(
        &app,
        &app.token,
        Method::DELETE,
        &format!("{rules}/close_date_when_active"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(gone.status(), 204);
    let listed = ok_json(
        call(&app, &app.token, Method::GET, rules)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["rules"], json!([]));
    app.shutdown().await;
}
