//! The access context at work: scopes in SQL (reads, lists, totals, exports), 404 outside the
//! READ scope, 403 for what may be read but not written, field rules on every response shape,
//! and refused writes to fields that are not editable.

use std::collections::BTreeMap;

use crm_access::{Access, Action, FieldAccess, MaskKind, Resource, Scope, Visibility};
use crm_proto::customer as pb;
use futures::StreamExt;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{TestApp, as_caller, spawn_app};

const EAST: Uuid = Uuid::from_u128(0xe);
const NORTH: Uuid = Uuid::from_u128(0xa);

fn user() -> Uuid {
    Uuid::now_v7()
}

/// Records owned by `owners` (or in `departments`).
fn scope(owners: &[Uuid], departments: &[Uuid]) -> Scope {
    Scope {
        owner_ids: owners.to_vec(),
        department_ids: departments.to_vec(),
        ..Default::default()
    }
}

fn rules(rules: &[(&str, Visibility, Option<MaskKind>)]) -> BTreeMap<String, FieldAccess> {
    rules
        .iter()
        .map(|(f, visibility, mask)| {
            (
                f.to_string(),
                FieldAccess {
                    visibility: *visibility,
                    mask: *mask,
                },
            )
        })
        .collect()
}

/// Creates an account as the system, owned by `owner` in `department`.
async fn account(app: &TestApp, name: &str, owner: Uuid, department: Option<Uuid>) -> pb::Account {
    app.client
        .clone()
        .create_account(pb::CreateAccountRequest {
            name: name.into(),
            owner_id: owner.to_string(),
            department_id: department.map(|d| d.to_string()).unwrap_or_default(),
            phone: "13812345678".into(),
            email: "zhang@example.com".into(),
            website: "https://acme.example".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

fn names(accounts: &[pb::Account]) -> Vec<String> {
    let mut names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_unsigned_call_is_unauthenticated_and_a_service_acting_for_no_user_gets_no_records() {
    let app = spawn_app().await;
    let create = || pb::CreateAccountRequest {
        name: "Acme".into(),
        ..Default::default()
    };
    // No call token at all, even with a context claiming everything.
    let err = app
        .unsigned
        .clone()
        .list_accounts(pb::ListAccountsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let forged = as_caller(
        &crm_access::Access::system(crate::helpers::OWNER.parse().unwrap()),
        create(),
    );
    let err = app
        .unsigned
        .clone()
        .create_account(forged)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    // Signed, but acting for nobody: the customer service serves records to users only.
    let err = app.raw.clone().create_account(create()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(app.count("accounts").await, 0, "nothing written");
    app.shutdown().await;
}

#[tokio::test]
async fn reads_lists_totals_and_exports_hold_exactly_the_rows_in_scope() {
    let app = spawn_app().await;
    let (me, colleague, stranger) = (user(), user(), user());
    let mine = account(&app, "mine", me, Some(NORTH)).await;
    let east = account(&app, "east", colleague, Some(EAST)).await;
    let other = account(&app, "other", stranger, Some(NORTH)).await;
    let nowhere = account(&app, "nowhere", stranger, None).await;

    // Own records plus the East department; export only their own.
    let access = Access::new(me)
        .with(Resource::ACCOUNT, Action::Read, scope(&[me], &[EAST]))
        .with(Resource::ACCOUNT, Action::Export, scope(&[me], &[]));
    let mut client = app.raw.clone();

    let list = client
        .list_accounts(as_caller(
            &access,
            pb::ListAccountsRequest {
                include_total: true,
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total_size, 2, "the total counts only rows in scope");
    let mut seen = list.accounts;
    let mut token = list.next_page_token;
    while !token.is_empty() {
        let page = client
            .list_accounts(as_caller(
                &access,
                pb::ListAccountsRequest {
                    page_size: 1,
                    page_token: token,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.accounts);
        token = page.next_page_token;
    }
    assert_eq!(names(&seen), ["east", "mine"]);

    // A search over a field of an out-of-scope row finds nothing either.
    let found = client
        .list_accounts(as_caller(
            &access,
            pb::ListAccountsRequest {
                query: "other".into(),
                include_total: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(found.accounts.is_empty());
    assert_eq!(found.total_size, 0);

    for (record, visible) in [
        (&mine, true),
        (&east, true),
        (&other, false),
        (&nowhere, false),
    ] {
        let got = client
            .get_account(as_caller(
                &access,
                pb::GetAccountRequest {
                    id: record.id.clone(),
                },
            ))
            .await;
        match visible {
            true => assert_eq!(got.unwrap().into_inner().id, record.id),
            // Exactly what an id that never existed answers.
            false => assert_eq!(got.unwrap_err().code(), Code::NotFound, "{}", record.name),
        }
    }
    let never = client
        .get_account(as_caller(
            &access,
            pb::GetAccountRequest {
                id: Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(never.code(), Code::NotFound);

    let mut stream = client
        .export_accounts(as_caller(&access, pb::ExportAccountsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut exported = Vec::new();
    while let Some(page) = stream.next().await {
        exported.extend(page.unwrap().accounts);
    }
    assert_eq!(names(&exported), ["mine"], "exports go by the EXPORT scope");

    // No export grant at all: refused before anything streams.
    let reader = Access::new(me).with(Resource::ACCOUNT, Action::Read, scope(&[me], &[]));
    let err = client
        .export_accounts(as_caller(&reader, pb::ExportAccountsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    app.shutdown().await;
}

#[tokio::test]
async fn exports_stream_every_row_in_pages() {
    let app = spawn_app().await;
    let me = user();
    for i in 0..(crm_customer::grpc::EXPORT_PAGE_SIZE + 20) {
        account(&app, &format!("a{i:04}"), me, None).await;
    }
    account(&app, "someone else's", user(), None).await;
    let access = Access::new(me).with(Resource::ACCOUNT, Action::Export, scope(&[me], &[]));
    let mut stream = app
        .raw
        .clone()
        .export_accounts(as_caller(
            &access,
            pb::ExportAccountsRequest {
                sort: pb::SortField::Name as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut pages = 0;
    let mut exported = Vec::new();
    while let Some(page) = stream.next().await {
        pages += 1;
        exported.extend(page.unwrap().accounts.into_iter().map(|a| a.name));
    }
    assert_eq!(pages, 2);
    let expected: Vec<String> = (0..(crm_customer::grpc::EXPORT_PAGE_SIZE + 20))
        .map(|i| format!("a{i:04}"))
        .collect();
    assert_eq!(exported, expected, "every row once, in order");
    app.shutdown().await;
}

#[tokio::test]
async fn field_rules_apply_to_single_list_and_export_responses() {
    let app = spawn_app().await;
    let me = user();
    let created = account(&app, "Acme", me, None).await;
    let mut read = scope(&[me], &[]);
    read.fields = rules(&[
        ("phone", Visibility::ReadOnly, Some(MaskKind::Phone)),
        ("email", Visibility::ReadOnly, Some(MaskKind::Email)),
        ("website", Visibility::Hidden, None),
    ]);
    let access = Access::new(me)
        .with(Resource::ACCOUNT, Action::Read, read.clone())
        .with(Resource::ACCOUNT, Action::Export, read);
    let mut client = app.raw.clone();

    let single = client
        .get_account(as_caller(
            &access,
            pb::GetAccountRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let listed = client
        .list_accounts(as_caller(&access, pb::ListAccountsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .accounts
        .remove(0);
    let exported = client
        .export_accounts(as_caller(&access, pb::ExportAccountsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap()
        .accounts
        .remove(0);
    for shape in [single, listed, exported] {
        assert_eq!(shape.phone, "138****5678");
        assert_eq!(shape.email, "z***@example.com");
        assert_eq!(shape.website, "", "hidden");
        assert_eq!(shape.name, "Acme", "no rule: as stored");
    }
    // Stored unchanged: rules shape what the caller sees, never the data.
    let stored = app
        .client
        .clone()
        .get_account(pb::GetAccountRequest { id: created.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.phone, "13812345678");
    assert_eq!(stored.website, "https://acme.example");
    app.shutdown().await;
}

#[tokio::test]
async fn writes_to_fields_that_are_not_editable_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let me = user();
    let created = account(&app, "Acme", me, None).await;
    let mut update = scope(&[me], &[]);
    update.fields = rules(&[
        ("phone", Visibility::ReadOnly, Some(MaskKind::Phone)),
        ("website", Visibility::Hidden, None),
    ]);
    let access = Access::new(me)
        .with(Resource::ACCOUNT, Action::Read, scope(&[me], &[]))
        .with(Resource::ACCOUNT, Action::Update, update.clone())
        .with(Resource::ACCOUNT, Action::Create, update);
    let mut client = app.raw.clone();
    let err = client
        .update_account(as_caller(
            &access,
            pb::UpdateAccountRequest {
                id: created.id.clone(),
                expected_version: 1,
                name: Some("Renamed".into()),
                phone: Some("13900000000".into()),
                website: Some(String::new()),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let fields: Vec<String> = crm_errors::ApiError::from_status(&err)
        .violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["website", "phone"]);

    let err = client
        .create_account(as_caller(
            &access,
            pb::CreateAccountRequest {
                name: "New".into(),
                phone: "13900000000".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Editable fields alone go through.
    let renamed = client
        .update_account(as_caller(
            &access,
            pb::UpdateAccountRequest {
                id: created.id.clone(),
                expected_version: 1,
                name: Some("Renamed".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.version, 2);
    assert_eq!(renamed.phone, "13812345678", "untouched");
    assert_eq!(
        app.count("accounts").await,
        1,
        "the refused create wrote nothing"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn readable_but_not_writable_is_forbidden_and_unreadable_is_not_found() {
    let app = spawn_app().await;
    let (me, colleague, stranger) = (user(), user(), user());
    let theirs = account(&app, "theirs", colleague, Some(EAST)).await;
    let hidden = account(&app, "hidden", stranger, None).await;
    // Reads the East department; updates and deletes only their own.
    let access = Access::new(me)
        .with(Resource::ACCOUNT, Action::Read, scope(&[me], &[EAST]))
        .with(Resource::ACCOUNT, Action::Update, scope(&[me], &[]))
        .with(Resource::ACCOUNT, Action::Delete, scope(&[me], &[]));
    let mut client = app.raw.clone();
    for (record, code) in [(&theirs, Code::PermissionDenied), (&hidden, Code::NotFound)] {
        let update = client
            .update_account(as_caller(
                &access,
                pb::UpdateAccountRequest {
                    id: record.id.clone(),
                    expected_version: 1,
                    name: Some("mine now".into()),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(update.code(), code, "update {}", record.name);
        let delete = client
            .delete_account(as_caller(
                &access,
                pb::DeleteAccountRequest {
                    id: record.id.clone(),
                    expected_version: 0,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(delete.code(), code, "delete {}", record.name);
    }
    let unchanged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM accounts WHERE version = 1 AND deleted_at IS NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(unchanged, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn new_records_land_in_the_callers_department_and_inside_the_create_scope() {
    let app = spawn_app().await;
    let (me, other) = (user(), user());
    let mut create = scope(&[me], &[]);
    create.primary_department_id = Some(NORTH);
    let access = Access::new(me)
        .with(Resource::ACCOUNT, Action::Create, create)
        .with(Resource::ACCOUNT, Action::Read, scope(&[me], &[]));
    let mut client = app.raw.clone();
    let made = client
        .create_account(as_caller(
            &access,
            pb::CreateAccountRequest {
                name: "Mine".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.owner_id, me.to_string());
    assert_eq!(made.department_id, NORTH.to_string());

    let err = client
        .create_account(as_caller(
            &access,
            pb::CreateAccountRequest {
                name: "For someone else".into(),
                owner_id: other.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let no_grant = Access::new(me).with(Resource::ACCOUNT, Action::Read, scope(&[me], &[]));
    let err = client
        .create_account(as_caller(
            &no_grant,
            pb::CreateAccountRequest {
                name: "Nope".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(app.count("accounts").await, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn moving_a_record_needs_assign_on_both_sides() {
    let app = spawn_app().await;
    let (me, rep, outsider) = (user(), user(), user());
    let record = account(&app, "Acme", me, Some(EAST)).await;
    let everything_east = scope(&[me], &[EAST]);
    let updater = Access::new(me)
        .with(Resource::ACCOUNT, Action::Read, everything_east.clone())
        .with(Resource::ACCOUNT, Action::Update, everything_east.clone());
    let assigner = updater
        .clone()
        .with(Resource::ACCOUNT, Action::Assign, scope(&[me, rep], &[]));
    let mut client = app.raw.clone();
    let move_to = |access: &Access, owner: Uuid, version: i64| {
        as_caller(
            access,
            pb::UpdateAccountRequest {
                id: record.id.clone(),
                expected_version: version,
                owner_id: Some(owner.to_string()),
                ..Default::default()
            },
        )
    };
    let err = client
        .update_account(move_to(&updater, rep, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "no ASSIGN grant");
    let err = client
        .update_account(move_to(&assigner, outsider, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "target outside ASSIGN");
    let moved = client
        .update_account(move_to(&assigner, rep, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.owner_id, rep.to_string());
    assert_eq!(moved.version, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn contacts_only_attach_to_accounts_the_caller_can_read() {
    let app = spawn_app().await;
    let (me, stranger) = (user(), user());
    let visible = account(&app, "visible", me, None).await;
    let invisible = account(&app, "invisible", stranger, None).await;
    let own = scope(&[me], &[]);
    let access = Access::new(me)
        .with(Resource::ACCOUNT, Action::Read, own.clone())
        .with(Resource::CONTACT, Action::Read, own.clone())
        .with(Resource::CONTACT, Action::Create, own);
    let mut client = app.raw.clone();
    let err = client
        .create_contact(as_caller(
            &access,
            pb::CreateContactRequest {
                account_id: invisible.id.clone(),
                first_name: "Li".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        crm_errors::ApiError::from_status(&err).violations[0].message,
        "no such account",
        "the same answer as for an account that does not exist"
    );
    let made = client
        .create_contact(as_caller(
            &access,
            pb::CreateContactRequest {
                account_id: visible.id.clone(),
                first_name: "Li".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.owner_id, me.to_string());
    assert_eq!(app.count("contacts").await, 1);
    app.shutdown().await;
}

/// A scope too large to travel with the call arrives by reference (ADR 0016); with no
/// permission service to fetch it from, the call is refused as UNAVAILABLE (retriable), before
/// anything is read or written, and never served as if the caller had no scope or every scope.
#[tokio::test]
async fn a_scope_sent_by_reference_that_cannot_be_fetched_is_unavailable() {
    let app = spawn_app().await;
    let me = user();
    let mut shared = scope(&[me], &[]);
    shared.record_ids = (0..10_000)
        .map(|n| Uuid::from_u128(0x5000_0000 + n))
        .collect();
    shared.permission_version = 3;
    let access = Access::new(me)
        .with(Resource::ACCOUNT, Action::Read, shared.clone())
        .with(Resource::ACCOUNT, Action::Create, shared);
    assert!(access.encode().len() < 1024, "sent by reference");

    let mut client = app.raw.clone();
    let err = client
        .list_accounts(as_caller(&access, pb::ListAccountsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let err = client
        .create_account(as_caller(
            &access,
            pb::CreateAccountRequest {
                name: "Never written".into(),
                owner_id: me.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts WHERE name = $1")
        .bind("Never written")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(written, 0);
    app.shutdown().await;
}
