//! Sharing end to end: a record shared with one user, and rules for a department's members or a
//! role's holders (the records of another department, or matching a condition). Sharing widens
//! which records a granted action reaches — never the actions — and every change is felt by the
//! gateway at once (a new permission version).

use std::time::{Duration, Instant};

use crm_proto::permission as pb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, ok_json, spawn_app, token_for};

struct Setup {
    app: TestApp,
    east_rep: String,
    agent: String,
    east_rep_id: Uuid,
    /// A rep in North Sales, whose accounts East does not see unless shared.
    north_rep: Uuid,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let east_rep_id = app
        .org
        .user("east", &["sales_rep"], Some("East Sales"), None)
        .await;
    let agent = app
        .org
        .user("agent", &["service_agent"], Some("Service"), None)
        .await;
    let north_rep = app
        .org
        .user("north", &["sales_rep"], Some("North Sales"), None)
        .await;
    Setup {
        north_rep,
        east_rep: token_for(&east_rep_id.to_string()),
        agent: token_for(&agent.to_string()),
        east_rep_id,
        app,
    }
}

/// An account owned by a North rep, in North Sales, with `grade`.
async fn north_account(app: &TestApp, north_rep: Uuid, grade: &str) -> String {
    let body = json!({"name": format!("North {grade}"), "grade": grade,
                      "owner_id": north_rep, "department_id": app.org.department("North Sales").await});
    let created = ok_json(
        app.request(Method::POST, "/api/v1/accounts")
            .json(&body)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    created["id"].as_str().unwrap().to_string()
}

/// Waits (bounded) until `who` gets `want` for `method path`: permission changes reach the
/// gateway through its events within about a second.
async fn eventually(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    want: StatusCode,
) {
    let started = Instant::now();
    loop {
        let mut request = app
            .http
            .request(method.clone(), app.url(path))
            .bearer_auth(token);
        if let Some(body) = &body {
            request = request.header("If-Match", "*").json(body);
        }
        let status = request.send().await.unwrap().status();
        if status == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{method} {path}: {status}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn listed(app: &TestApp, token: &str) -> Vec<String> {
    let page: Value = app
        .http
        .get(app.url("/api/v1/accounts?page_size=200"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn share(record: &str, user: Uuid, access: pb::ShareAccess) -> pb::ShareRecordRequest {
    pb::ShareRecordRequest {
        resource: pb::Resource::Account as i32,
        resource_name: String::new(),
        record_id: record.into(),
        user_id: user.to_string(),
        access: access as i32,
    }
}

#[tokio::test]
async fn a_record_shared_with_a_user_is_read_then_edited_then_gone() {
    let s = setup().await;
    let app = &s.app;
    let north_rep = s.north_rep;
    let id = north_account(app, north_rep, "B").await;
    let path = format!("/api/v1/accounts/{id}");
    eventually(
        app,
        &s.east_rep,
        Method::GET,
        &path,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    let mut sharing = app.org.sharing.clone();
    sharing
        .share_record(share(&id, s.east_rep_id, pb::ShareAccess::Read))
        .await
        .unwrap();
    eventually(app, &s.east_rep, Method::GET, &path, None, StatusCode::OK).await;
    assert_eq!(listed(app, &s.east_rep).await, vec![id.clone()]);
    let rename = Some(json!({"name": "Renamed"}));
    eventually(
        app,
        &s.east_rep,
        Method::PATCH,
        &path,
        rename.clone(),
        StatusCode::FORBIDDEN,
    )
    .await;
    // Sales reps may not delete at all: sharing does not change that.
    eventually(
        app,
        &s.east_rep,
        Method::DELETE,
        &path,
        None,
        StatusCode::FORBIDDEN,
    )
    .await;

    sharing
        .share_record(share(&id, s.east_rep_id, pb::ShareAccess::Edit))
        .await
        .unwrap();
    eventually(
        app,
        &s.east_rep,
        Method::PATCH,
        &path,
        rename,
        StatusCode::OK,
    )
    .await;
    let shares = sharing
        .list_record_shares(pb::ListRecordSharesRequest {
            resource: pb::Resource::Account as i32,
            resource_name: String::new(),
            record_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .shares;
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0].access, pb::ShareAccess::Edit as i32);

    sharing
        .unshare_record(pb::UnshareRecordRequest {
            resource: pb::Resource::Account as i32,
            resource_name: String::new(),
            record_id: id.clone(),
            user_id: s.east_rep_id.to_string(),
        })
        .await
        .unwrap();
    eventually(
        app,
        &s.east_rep,
        Method::GET,
        &path,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn sharing_never_grants_an_action() {
    let s = setup().await;
    let app = &s.app;
    let north_rep = s.north_rep;
    let id = north_account(app, north_rep, "A").await;
    // Service agents hold no grant on accounts: a share gives them nothing.
    let agent_user = uuid_of(&s.agent);
    app.org
        .sharing
        .clone()
        .share_record(share(&id, agent_user, pb::ShareAccess::Edit))
        .await
        .unwrap();
    // A later share that does work: once the gateway serves it, it knows the agent's too
    // (permission versions only grow), so the 403 below is the answer after the share.
    app.org
        .sharing
        .clone()
        .share_record(share(&id, s.east_rep_id, pb::ShareAccess::Read))
        .await
        .unwrap();
    eventually(
        app,
        &s.east_rep,
        Method::GET,
        &format!("/api/v1/accounts/{id}"),
        None,
        StatusCode::OK,
    )
    .await;
    let response = app
        .http
        .get(app.url(&format!("/api/v1/accounts/{id}")))
        .bearer_auth(&s.agent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// The user id inside a test token.
fn uuid_of(token: &str) -> Uuid {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn rules_share_a_departments_records_or_those_matching_a_condition() {
    let s = setup().await;
    let app = &s.app;
    let north_rep = s.north_rep;
    let grade_a = north_account(app, north_rep, "A").await;
    let grade_b = north_account(app, north_rep, "B").await;
    assert_eq!(listed(app, &s.east_rep).await, Vec::<String>::new());
    let mut sharing = app.org.sharing.clone();

    // Sales reps see every grade-A account.
    let by_grade = sharing
        .create_sharing_rule(pb::CreateSharingRuleRequest {
            name: "grade A for all reps".into(),
            resource: pb::Resource::Account as i32,
            access: pb::ShareAccess::Read as i32,
            grantee_role_id: app.org.role("sales_rep").await,
            condition: Some(pb::RecordCondition {
                field: "grade".into(),
                equals: "A".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rule
        .unwrap();
    let a_path = format!("/api/v1/accounts/{grade_a}");
    eventually(app, &s.east_rep, Method::GET, &a_path, None, StatusCode::OK).await;
    assert_eq!(listed(app, &s.east_rep).await, vec![grade_a.clone()]);

    // Members of Sales (and so of East Sales below it) see North Sales' records.
    sharing
        .create_sharing_rule(pb::CreateSharingRuleRequest {
            name: "North for Sales".into(),
            resource: pb::Resource::Account as i32,
            access: pb::ShareAccess::Read as i32,
            grantee_department_id: app.org.department("Sales").await,
            source_department_id: app.org.department("North Sales").await,
            ..Default::default()
        })
        .await
        .unwrap();
    let b_path = format!("/api/v1/accounts/{grade_b}");
    eventually(app, &s.east_rep, Method::GET, &b_path, None, StatusCode::OK).await;
    let mut both = vec![grade_a.clone(), grade_b.clone()];
    both.sort();
    assert_eq!(listed(app, &s.east_rep).await, both);

    let rules = sharing
        .list_sharing_rules(pb::ListSharingRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(rules.len(), 2);
    sharing
        .delete_sharing_rule(pb::DeleteSharingRuleRequest { id: by_grade.id })
        .await
        .unwrap();
    // Grade A still visible through the department rule; nothing lost, nothing extra.
    assert_eq!(listed(app, &s.east_rep).await.len(), 2);
}

#[tokio::test]
async fn bad_sharing_requests_name_their_fields_and_change_nothing() {
    let s = setup().await;
    let mut sharing = s.app.org.sharing.clone();
    let fields = |err: tonic::Status| -> Vec<String> {
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        crm_errors::ApiError::from_status(&err)
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    };
    let err = sharing
        .share_record(pb::ShareRecordRequest {
            resource: 0,
            resource_name: String::new(),
            record_id: "x".into(),
            user_id: Uuid::now_v7().to_string(),
            access: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["resource", "record_id", "access"]);
    let err = sharing
        .share_record(share(
            &Uuid::now_v7().to_string(),
            Uuid::now_v7(),
            pb::ShareAccess::Read,
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["user_id"], "no such user");
    let err = sharing
        .create_sharing_rule(pb::CreateSharingRuleRequest {
            name: String::new(),
            resource: pb::Resource::Audit as i32,
            access: pb::ShareAccess::Read as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        fields(err),
        [
            "name",
            "resource",
            "grantee_department_id",
            "source_department_id"
        ]
    );
    let rules = sharing
        .list_sharing_rules(pb::ListSharingRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert!(rules.is_empty());
}

/// A user with ten thousand records shared one by one (ADR 0016): carried whole, their scope
/// would be some 400 KiB in every call's header, beyond what HTTP/2 peers accept (16 KiB by
/// default), and every call would fail. It travels by reference instead, the customer service
/// fetches it from the permission service, and sharing works as with one record.
#[tokio::test]
async fn ten_thousand_shared_records_travel_by_reference_and_still_reach_the_user() {
    let s = setup().await;
    let app = &s.app;
    let north_rep = s.north_rep;
    let read_only = north_account(app, north_rep, "A").await;
    let editable = north_account(app, north_rep, "B").await;
    let unshared = north_account(app, north_rep, "C").await;

    // 9,998 shares seeded straight into the permission database (through the API they would
    // take minutes, and how they were made does not matter here), with edit access so that the
    // update scope is as large as the read scope.
    let db = sqlx::PgPool::connect(&app.permission.as_ref().expect("permission").db)
        .await
        .expect("the permission database");
    sqlx::query(
        "INSERT INTO record_shares (resource, record_id, user_id, access, created_at)
         SELECT 'account', gen_random_uuid(), $1, 'edit', now() FROM generate_series(1, 9998)",
    )
    .bind(s.east_rep_id)
    .execute(&db)
    .await
    .expect("seed shares");
    db.close().await;
    // The last two through the API: each moves the permission version on, so the gateway
    // compiles the scope afresh.
    let mut sharing = app.org.sharing.clone();
    sharing
        .share_record(share(&read_only, s.east_rep_id, pb::ShareAccess::Read))
        .await
        .unwrap();
    sharing
        .share_record(share(&editable, s.east_rep_id, pb::ShareAccess::Edit))
        .await
        .unwrap();

    let path = |id: &str| format!("/api/v1/accounts/{id}");
    eventually(
        app,
        &s.east_rep,
        Method::GET,
        &path(&editable),
        None,
        StatusCode::OK,
    )
    .await;
    let mut both = vec![read_only.clone(), editable.clone()];
    both.sort();
    assert_eq!(listed(app, &s.east_rep).await, both);
    let get = |id: String| {
        app.http
            .get(app.url(&path(&id)))
            .bearer_auth(&s.east_rep)
            .send()
    };
    assert_eq!(get(read_only.clone()).await.unwrap().status(), 200);
    assert_eq!(get(unshared.clone()).await.unwrap().status(), 404);
    let rename = |id: &str, name: &str| {
        app.http
            .patch(app.url(&path(id)))
            .bearer_auth(&s.east_rep)
            .header("If-Match", "*")
            .json(&json!({"name": name}))
            .send()
    };
    assert_eq!(rename(&editable, "Edited").await.unwrap().status(), 200);
    assert_eq!(rename(&read_only, "Edited").await.unwrap().status(), 403);
    assert_eq!(rename(&unshared, "Edited").await.unwrap().status(), 404);
}
