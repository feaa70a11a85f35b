//! Follow-ups (跟进记录) over gRPC: the lifecycle with its event, every bad input named, the
//! account and contact checked against the caller's scope, and scopes and field rules applied
//! to reads and lists as for every record.

use crm_access::{Access, Action, FieldAccess, Resource, Scope, Visibility};
use crm_proto::customer as pb;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{OWNER, TestApp, as_caller, spawn_app, violated_fields};

const FOLLOW_UP: Resource = Resource::named("follow_up");

fn at(rfc3339: &str) -> prost_types::Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn visit(account: &str) -> pb::CreateFollowUpRequest {
    pb::CreateFollowUpRequest {
        account_id: account.into(),
        kind: pb::FollowUpKind::Visit as i32,
        subject: "Site visit".into(),
        content: "Walked the plant.\nThey want a quote by Friday.".into(),
        occurred_at: Some(at("2026-11-30T09:00:00Z")),
        next_follow_up_at: Some(at("2026-12-04T09:00:00Z")),
        ..Default::default()
    }
}

async fn create(app: &TestApp, request: pb::CreateFollowUpRequest) -> pb::FollowUp {
    app.client
        .clone()
        .create_follow_up(request)
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_follow_up_is_recorded_changed_and_deleted_with_its_events() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let acme = app.create_account("Acme").await;
    let ada = app.create_contact(&acme.id, "Ada").await;

    let created = create(
        &app,
        pb::CreateFollowUpRequest {
            contact_id: ada.id.clone(),
            ..visit(&acme.id)
        },
    )
    .await;
    assert_eq!(
        (created.version, created.owner_id.as_str(), created.kind),
        (1, OWNER, pb::FollowUpKind::Visit as i32)
    );
    assert_eq!(
        created.content,
        "Walked the plant.\nThey want a quote by Friday."
    );
    assert_eq!(created.next_follow_up_at, Some(at("2026-12-04T09:00:00Z")));

    let updated = client
        .update_follow_up(pb::UpdateFollowUpRequest {
            id: created.id.clone(),
            expected_version: 1,
            outcome: Some("Quote requested".into()),
            clear_next_follow_up: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            updated.version,
            updated.outcome.as_str(),
            updated.next_follow_up_at
        ),
        (2, "Quote requested", None)
    );
    let got = client
        .get_follow_up(pb::GetFollowUpRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, updated);

    // A stale version changes nothing.
    let err = client
        .update_follow_up(pb::UpdateFollowUpRequest {
            id: created.id.clone(),
            expected_version: 1,
            subject: Some("Lost update".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    let listed = client
        .list_follow_ups(pb::ListFollowUpsRequest {
            account_id: acme.id.clone(),
            query: "quote".into(),
            include_total: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    assert_eq!(listed.follow_ups, std::slice::from_ref(&updated));

    client
        .delete_follow_up(pb::DeleteFollowUpRequest {
            id: created.id.clone(),
            expected_version: 2,
        })
        .await
        .unwrap();
    let err = client
        .get_follow_up(pb::GetFollowUpRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Each write enqueued its event in its transaction; the next follow-up date travels with
    // it, for the reminders that will go by it.
    let events: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT event_type, data FROM event_outbox WHERE subject = $1 ORDER BY seq")
            .bind(&created.id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "customer.follow_up.created",
            "customer.follow_up.updated",
            "customer.follow_up.deleted"
        ]
    );
    let created_data = &events[0].1;
    assert_eq!(
        created_data["follow_up"]["next_follow_up_at"],
        "2026-12-04T09:00:00Z"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn bad_follow_ups_name_every_field_and_write_nothing() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let acme = app.create_account("Acme").await;
    let globex = app.create_account("Globex").await;
    let bob = app.create_contact(&globex.id, "Bob").await;

    let err = client
        .create_follow_up(pb::CreateFollowUpRequest {
            account_id: "x".into(),
            contact_id: "y".into(),
            kind: 0,
            subject: " ".into(),
            content: "bell\u{7}".into(),
            outcome: "o".repeat(201),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            owner_id: "z".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "account_id",
            "contact_id",
            "kind",
            "subject",
            "content",
            "outcome",
            "occurred_at",
            "owner_id"
        ]
    );

    // Times: not in the future, and the next follow-up after this one.
    let err = client
        .create_follow_up(pb::CreateFollowUpRequest {
            occurred_at: Some(at("2099-01-01T00:00:00Z")),
            next_follow_up_at: None,
            ..visit(&acme.id)
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["occurred_at"]);
    let err = client
        .create_follow_up(pb::CreateFollowUpRequest {
            next_follow_up_at: Some(at("2026-11-29T09:00:00Z")),
            ..visit(&acme.id)
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["next_follow_up_at"]);

    // An account that does not exist; a contact of another account.
    let err = client
        .create_follow_up(visit(&Uuid::now_v7().to_string()))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["account_id"]);
    let err = client
        .create_follow_up(pb::CreateFollowUpRequest {
            contact_id: bob.id.clone(),
            ..visit(&acme.id)
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["contact_id"]);

    // A change that would put the next follow-up before the visit.
    let f = create(&app, visit(&acme.id)).await;
    let err = client
        .update_follow_up(pb::UpdateFollowUpRequest {
            id: f.id.clone(),
            expected_version: 1,
            next_follow_up_at: Some(at("2026-11-29T09:00:00Z")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["next_follow_up_at"]);
    let err = client
        .update_follow_up(pb::UpdateFollowUpRequest {
            id: f.id.clone(),
            expected_version: 1,
            kind: Some(42),
            contact_id: Some(bob.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["kind"]);
    let err = client
        .update_follow_up(pb::UpdateFollowUpRequest {
            id: f.id.clone(),
            expected_version: 1,
            contact_id: Some(bob.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["contact_id"]);

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM follow_ups")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1, "only the good one was written");
    let version: i64 = sqlx::query_scalar("SELECT version FROM follow_ups")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(version, 1, "and never changed");
    app.shutdown().await;
}

/// Records owned by `owners`.
fn own(owners: &[Uuid]) -> Scope {
    Scope {
        owner_ids: owners.to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn follow_ups_obey_scopes_and_field_rules_and_reveal_no_account() {
    let app = spawn_app().await;
    let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
    let acme = app.create_account("Acme").await;
    let theirs = create(
        &app,
        pb::CreateFollowUpRequest {
            owner_id: other.to_string(),
            ..visit(&acme.id)
        },
    )
    .await;

    // My own follow-ups; accounts I may read: only those I own (not Acme).
    let mut hidden_content = own(&[me]);
    hidden_content.fields.insert(
        "content".into(),
        FieldAccess {
            visibility: Visibility::Hidden,
            mask: None,
        },
    );
    let access = Access::new(me)
        .with(FOLLOW_UP, Action::Read, hidden_content.clone())
        .with(FOLLOW_UP, Action::Create, own(&[me]))
        .with(Resource::ACCOUNT, Action::Read, own(&[me]));
    let mut client = app.raw.clone();

    // Another's follow-up is not there, in a read or in a list's total.
    let err = client
        .get_follow_up(as_caller(
            &access,
            pb::GetFollowUpRequest {
                id: theirs.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let list = client
        .list_follow_ups(as_caller(
            &access,
            pb::ListFollowUpsRequest {
                include_total: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((list.total_size, list.follow_ups.len()), (0, 0));

    // An account I may not read is "no such account": no follow-up reveals it.
    let err = client
        .create_follow_up(as_caller(&access, visit(&acme.id)))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["account_id"]);

    // On my own account, mine; what field rules hide is not in the answer.
    let mine = app
        .client
        .clone()
        .create_account(pb::CreateAccountRequest {
            owner_id: me.to_string(),
            ..crate::helpers::account_request("Mine")
        })
        .await
        .unwrap()
        .into_inner();
    let created = client
        .create_follow_up(as_caller(&access, visit(&mine.id)))
        .await
        .unwrap()
        .into_inner();
    let got = client
        .get_follow_up(as_caller(
            &access,
            pb::GetFollowUpRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (got.subject.as_str(), got.content.as_str()),
        ("Site visit", "")
    );

    // Reading is not changing: no UPDATE grant, no update.
    let err = client
        .update_follow_up(as_caller(
            &access,
            pb::UpdateFollowUpRequest {
                id: created.id.clone(),
                expected_version: 1,
                subject: Some("Mine now".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    app.shutdown().await;
}

/// Newest first by when it happened, as a timeline shows them, whatever order they were
/// recorded in, across pages; accounts have no time of their own to sort by.
#[tokio::test]
async fn follow_ups_sort_by_when_they_happened_across_pages() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let acme = app.create_account("Acme").await;
    for (day, subject) in [
        ("28", "second"),
        ("30", "newest"),
        ("27", "oldest"),
        ("29", "third"),
    ] {
        create(
            &app,
            pb::CreateFollowUpRequest {
                subject: subject.into(),
                occurred_at: Some(at(&format!("2026-11-{day}T09:00:00Z"))),
                next_follow_up_at: None,
                ..visit(&acme.id)
            },
        )
        .await;
    }
    let request = |page_token: String| pb::ListFollowUpsRequest {
        account_id: acme.id.clone(),
        sort: pb::SortField::Time as i32,
        descending: true,
        page_size: 3,
        page_token,
        ..Default::default()
    };
    let first = client
        .list_follow_ups(request(String::new()))
        .await
        .unwrap()
        .into_inner();
    let second = client
        .list_follow_ups(request(first.next_page_token.clone()))
        .await
        .unwrap()
        .into_inner();
    let subjects: Vec<String> = first
        .follow_ups
        .iter()
        .chain(&second.follow_ups)
        .map(|f| f.subject.clone())
        .collect();
    assert_eq!(subjects, ["newest", "third", "second", "oldest"]);
    assert!(second.next_page_token.is_empty());

    let err = client
        .list_accounts(pb::ListAccountsRequest {
            sort: pb::SortField::Time as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["sort"]);
    app.shutdown().await;
}

/// Follow-ups filter by kind and date with the condition language (a timeline's "visits this
/// month"), within the caller's scope like any list.
#[tokio::test]
async fn follow_ups_filter_by_kind_and_date() {
    let app = spawn_app().await;
    let account = app.create_account("Acme").await;
    create(&app, visit(&account.id)).await;
    let mut call = visit(&account.id);
    call.kind = pb::FollowUpKind::Call as i32;
    call.occurred_at = Some(at("2026-11-02T09:00:00Z"));
    call.next_follow_up_at = None;
    create(&app, call).await;
    let list = |filter: &str| {
        let mut client = app.client.clone();
        let filter = filter.to_string();
        async move {
            client
                .list_follow_ups(pb::ListFollowUpsRequest {
                    account_id: String::new(),
                    filter,
                    include_total: true,
                    ..Default::default()
                })
                .await
        }
    };
    let kinds = |page: pb::ListFollowUpsResponse| -> Vec<i32> {
        page.follow_ups.iter().map(|f| f.kind).collect()
    };
    let visits = list("kind = 'visit'").await.unwrap().into_inner();
    assert_eq!(kinds(visits), [pb::FollowUpKind::Visit as i32]);
    let november = list("occurred_at between '2026-11-01' and '2026-11-15'")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kinds(november), [pb::FollowUpKind::Call as i32]);
    let planned = list("next_follow_up_at is not empty and kind in ('visit', 'meeting')")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(planned.total_size, 1);
    let err = list("kind = 'fax'").await.unwrap_err();
    assert_eq!(violated_fields(&err), ["filter"]);
    app.shutdown().await;
}
