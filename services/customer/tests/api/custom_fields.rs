//! Custom fields over gRPC against the real service: defined without migrations, values checked
//! and normalised on every write (one violation per field at `custom.<key>`), merged by
//! patches, in events and their changes, unique under concurrency-safe checks, lookups checked
//! against the caller's scope, field rules applied exactly as to built-in fields, deactivation
//! hiding values without losing them, and deletion refused or purged by a durable job.

use crm_access::{Access, Action, FieldAccess, Resource, Scope, Visibility};
use crm_fields::CUSTOMIZATION;
use crm_proto::customer as pb;
use crm_proto::fields as fpb;
use serde_json::{Value, json};
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{
    OWNER, TestApp, account_request, as_caller, spawn_app, system, violated_fields,
};

/// The system with the right to change the data model.
fn admin() -> Access {
    let mut access = system();
    for action in [Action::Read, Action::Create, Action::Update, Action::Delete] {
        access.insert(CUSTOMIZATION, action, Scope::everything());
    }
    access
}

fn labels(zh: &str, en: &str) -> Option<fpb::Labels> {
    Some(fpb::Labels {
        zh: zh.into(),
        en: en.into(),
    })
}

fn choice(value: &str) -> fpb::Choice {
    fpb::Choice {
        value: value.into(),
        label: labels(value, value),
        deactivated: false,
    }
}

async fn define(
    app: &TestApp,
    entity: &str,
    field: fpb::Field,
) -> Result<fpb::Field, tonic::Status> {
    app.fields
        .clone()
        .create_field(as_caller(
            &admin(),
            fpb::CreateFieldRequest {
                entity: entity.into(),
                field: Some(field),
                has_position: false,
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// An account's fields: a required select, an amount, a unique tax number, a phone, a lookup
/// to another account.
async fn define_account_fields(app: &TestApp) {
    let fields = [
        fpb::Field {
            key: "region".into(),
            r#type: "select".into(),
            label: labels("区域", "Region"),
            options: vec![choice("east"), choice("west")],
            ..Default::default()
        },
        fpb::Field {
            key: "budget".into(),
            r#type: "currency".into(),
            label: labels("预算", "Budget"),
            currency: Some("CNY".into()),
            rules: Some(fpb::Rules {
                min: Some("0".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        fpb::Field {
            key: "tax_no".into(),
            r#type: "text".into(),
            label: labels("税号", "Tax number"),
            unique: true,
            rules: Some(fpb::Rules {
                pattern: Some("[0-9A-Z]{18}".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        fpb::Field {
            key: "hotline".into(),
            r#type: "phone".into(),
            label: labels("热线", "Hotline"),
            ..Default::default()
        },
        fpb::Field {
            key: "parent".into(),
            r#type: "lookup".into(),
            label: labels("上级公司", "Parent company"),
            target: Some("account".into()),
            ..Default::default()
        },
    ];
    for f in fields {
        define(app, "account", f).await.expect("define the field");
    }
}

fn custom(account: &pb::Account) -> Value {
    serde_json::from_str(&account.custom_json).expect("custom_json is JSON")
}

async fn create(app: &TestApp, name: &str, values: Value) -> Result<pb::Account, tonic::Status> {
    let mut request = account_request(name);
    request.custom_json = values.to_string();
    app.client
        .clone()
        .create_account(request)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn values_are_checked_normalised_patched_and_published() {
    let app = spawn_app().await;
    define_account_fields(&app).await;

    let acme = create(
        &app,
        "华为技术有限公司",
        json!({"region": "east", "budget": "1200.5", "tax_no": "91440300MA5DC1234X",
               "hotline": "+86 400 830 8300"}),
    )
    .await
    .expect("create with custom values");
    assert_eq!(
        custom(&acme),
        json!({"region": "east", "budget": "1200.50", "tax_no": "91440300MA5DC1234X",
               "hotline": "+86 400 830 8300"})
    );
    // Stored as written, read back the same.
    let read = app
        .client
        .clone()
        .get_account(pb::GetAccountRequest {
            id: acme.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(custom(&read), custom(&acme));

    // Every bad value named, nothing written.
    let before = app.count("accounts").await;
    let err = create(
        &app,
        "Bad",
        json!({"region": "south", "budget": "-1", "tax_no": "x", "nope": 1, "parent": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "custom.budget",
            "custom.nope",
            "custom.parent",
            "custom.region",
            "custom.tax_no"
        ]
    );
    let err = create(&app, "Bad", json!([1])).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["custom"]);
    // The required-ness of a later definition is demanded of new records only.
    assert_eq!(app.count("accounts").await, before);

    // A unique value is refused for a second record, without naming the holder.
    let err = create(&app, "Copy", json!({"tax_no": "91440300MA5DC1234X"}))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["custom.tax_no"]);

    // A merge patch: one value changed, one cleared, the rest kept; the event says what changed.
    let updated = app
        .client
        .clone()
        .update_account(pb::UpdateAccountRequest {
            id: acme.id.clone(),
            expected_version: acme.version,
            custom_json: json!({"budget": 99, "hotline": null}).to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.version, acme.version + 1);
    assert_eq!(
        custom(&updated),
        json!({"region": "east", "budget": "99.00", "tax_no": "91440300MA5DC1234X"})
    );
    let changes: Value = sqlx::query_scalar(
        "SELECT data->'changes' FROM event_outbox WHERE event_type = 'customer.account.updated'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        changes,
        json!({"custom.budget": {"old": "1200.50", "new": "99.00"},
               "custom.hotline": {"old": "+86 400 830 8300", "new": null}})
    );
    let created: Value = sqlx::query_scalar(
        "SELECT data->'account'->'custom' FROM event_outbox
          WHERE event_type = 'customer.account.created'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(created["budget"], json!("1200.50"));

    // The unique (so indexed) field gets its index from the service itself, online.
    crm_testkit::eventually(
        "cf_accounts_tax_no is built",
        std::time::Duration::from_secs(30),
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                                 WHERE c.relname = 'cf_accounts_tax_no' AND i.indisvalid)",
            )
            .fetch_one(&app.db)
            .await
            .unwrap()
        },
    )
    .await;

    // The registry learns of the fields as `custom.<key>`, with kinds rules can go by.
    let declared: Value = sqlx::query_scalar(
        "SELECT data FROM event_outbox WHERE event_type = 'customer.resources.declared'
          ORDER BY occurred_at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let account = declared["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "account")
        .unwrap();
    let hotline = account["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "custom.hotline")
        .expect("custom.hotline declared");
    assert_eq!(hotline["kind"], "phone");
    assert_eq!(hotline["custom"], true);
    app.shutdown().await;
}

#[tokio::test]
async fn field_rules_and_scopes_apply_to_custom_fields() {
    let app = spawn_app().await;
    define_account_fields(&app).await;
    let mine = create(
        &app,
        "Mine",
        json!({"tax_no": "91440300MA5DC1234X", "hotline": "13800138000", "region": "west"}),
    )
    .await
    .unwrap();
    // Someone else's account, which the caller cannot see.
    let mut hidden = account_request("Theirs");
    hidden.owner_id = Uuid::now_v7().to_string();
    let theirs = app
        .client
        .clone()
        .create_account(hidden)
        .await
        .unwrap()
        .into_inner();

    let me: Uuid = OWNER.parse().unwrap();
    let mut scope = Scope {
        owner_ids: [me].into(),
        ..Default::default()
    };
    scope.fields.insert(
        "custom.tax_no".into(),
        FieldAccess {
            visibility: Visibility::Hidden,
            mask: None,
        },
    );
    scope.fields.insert(
        "custom.hotline".into(),
        FieldAccess {
            visibility: Visibility::ReadOnly,
            mask: Some(crm_access::MaskKind::Phone),
        },
    );
    let caller = Access::new(me)
        .with(Resource::ACCOUNT, Action::Read, scope.clone())
        .with(Resource::ACCOUNT, Action::Update, scope.clone())
        .with(Resource::ACCOUNT, Action::Create, scope);

    let read = app
        .raw
        .clone()
        .get_account(as_caller(
            &caller,
            pb::GetAccountRequest {
                id: mine.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let values = custom(&read);
    assert!(values.get("tax_no").is_none(), "hidden: {values}");
    assert_ne!(values["hotline"], json!("13800138000"), "masked: {values}");
    assert_eq!(values["region"], "west");

    // Writing a field the rules do not let the caller edit is refused by name.
    let err = app
        .raw
        .clone()
        .update_account(as_caller(
            &caller,
            pb::UpdateAccountRequest {
                id: mine.id.clone(),
                expected_version: mine.version,
                custom_json: json!({"hotline": "123"}).to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // A lookup may only point at a record the caller may read: theirs does not exist for them.
    let mut request = account_request("Child");
    request.custom_json = json!({"parent": theirs.id}).to_string();
    let err = app
        .raw
        .clone()
        .create_account(as_caller(&caller, request.clone()))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["custom.parent"]);
    request.custom_json = json!({"parent": mine.id}).to_string();
    let child = app
        .raw
        .clone()
        .create_account(as_caller(&caller, request))
        .await
        .expect("a lookup to a readable account");
    assert_eq!(custom(child.get_ref())["parent"], json!(mine.id));

    // Only holders of the customization grant change the data model.
    let err = app
        .fields
        .clone()
        .create_field(as_caller(
            &caller,
            fpb::CreateFieldRequest {
                entity: "account".into(),
                field: Some(fpb::Field {
                    key: "x".into(),
                    r#type: "text".into(),
                    label: labels("x", "x"),
                    ..Default::default()
                }),
                has_position: false,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Reading definitions needs only READ on the entity (clients draw forms from them).
    let listed = app
        .fields
        .clone()
        .list_fields(as_caller(
            &caller,
            fpb::ListFieldsRequest {
                entity: "account".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.fields.len(), 5);
    app.shutdown().await;
}

#[tokio::test]
async fn definitions_change_without_breaking_values() {
    let app = spawn_app().await;
    define_account_fields(&app).await;
    let acme = create(
        &app,
        "Acme",
        json!({"region": "east", "tax_no": "91440300MA5DC1234X"}),
    )
    .await
    .unwrap();

    // Bad definitions are named by their paths; keys are unique per entity.
    let err = define(
        &app,
        "account",
        fpb::Field {
            key: "Bad Key".into(),
            r#type: "colour".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&err), ["key", "type", "label"]);
    let err = define(
        &app,
        "account",
        fpb::Field {
            key: "region".into(),
            r#type: "text".into(),
            label: labels("区域", "Region"),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = define(
        &app,
        "account",
        fpb::Field {
            key: "name".into(),
            r#type: "text".into(),
            label: labels("名称", "Name"),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&err), ["key"]);

    let region = |version| fpb::UpdateFieldRequest {
        entity: "account".into(),
        key: "region".into(),
        expected_version: version,
        ..Default::default()
    };
    // Options are never dropped; deactivating one keeps the records that hold it readable.
    let mut drop = region(1);
    drop.options = Some(fpb::Choices {
        items: vec![choice("west")],
    });
    let err = app
        .fields
        .clone()
        .update_field(as_caller(&admin(), drop))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["options"]);
    let mut retire = region(1);
    let mut east = choice("east");
    east.deactivated = true;
    retire.options = Some(fpb::Choices {
        items: vec![choice("west"), east],
    });
    retire.required = Some(true);
    let changed = app
        .fields
        .clone()
        .update_field(as_caller(&admin(), retire))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.version, 2);
    let err = create(&app, "New", json!({"region": "east"}))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["custom.region"]);
    let err = create(&app, "New", json!({})).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["custom.region"], "now required");
    // The old record still reads, and still takes writes of other fields.
    let touched = app
        .client
        .clone()
        .update_account(pb::UpdateAccountRequest {
            id: acme.id.clone(),
            expected_version: acme.version,
            industry: Some("Telecom".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(custom(&touched)["region"], "east");
    // A stale version is refused.
    let err = app
        .fields
        .clone()
        .update_field(as_caller(&admin(), region(1)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Deactivating a field hides its values and refuses writes; activating brings them back.
    let mut off = region(2);
    off.active = Some(false);
    app.fields
        .clone()
        .update_field(as_caller(&admin(), off))
        .await
        .unwrap();
    let read = |id: String| {
        let mut client = app.client.clone();
        async move {
            client
                .get_account(pb::GetAccountRequest { id })
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert!(custom(&read(acme.id.clone()).await).get("region").is_none());
    let mut on = region(3);
    on.active = Some(true);
    app.fields
        .clone()
        .update_field(as_caller(&admin(), on))
        .await
        .unwrap();
    assert_eq!(custom(&read(acme.id.clone()).await)["region"], "east");

    // Deleting a field that holds values needs a purge; the values then go in the background.
    let delete = |purge| fpb::DeleteFieldRequest {
        entity: "account".into(),
        key: "tax_no".into(),
        expected_version: 0,
        purge,
        force: false,
    };
    let err = app
        .fields
        .clone()
        .delete_field(as_caller(&admin(), delete(false)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.fields
        .clone()
        .delete_field(as_caller(&admin(), delete(true)))
        .await
        .unwrap();
    assert!(custom(&read(acme.id.clone()).await).get("tax_no").is_none());
    crm_testkit::eventually(
        "the purge job removes the values",
        std::time::Duration::from_secs(30),
        || async { app.count_holding("accounts", "tax_no").await == 0 },
    )
    .await;
    let purged: Value = sqlx::query_scalar(
        "SELECT data->'purged_records' FROM event_outbox WHERE event_type = 'customer.field.deleted'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(purged, json!(1));
    // The key is never reused.
    let err = define(
        &app,
        "account",
        fpb::Field {
            key: "tax_no".into(),
            r#type: "integer".into(),
            label: labels("税号", "Tax number"),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    app.shutdown().await;
}

async fn list(
    app: &TestApp,
    access: &Access,
    filter: &str,
) -> Result<pb::ListAccountsResponse, tonic::Status> {
    app.raw
        .clone()
        .list_accounts(as_caller(
            access,
            pb::ListAccountsRequest {
                filter: filter.into(),
                include_total: true,
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

fn names(page: &pb::ListAccountsResponse) -> Vec<&str> {
    let mut names: Vec<&str> = page.accounts.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn lists_filter_on_built_in_and_custom_fields_within_the_scope() {
    let app = spawn_app().await;
    define_account_fields(&app).await;
    define(
        &app,
        "account",
        fpb::Field {
            key: "since".into(),
            r#type: "date".into(),
            label: labels("合作起始", "Customer since"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let graded = |name: &str, grade: pb::Grade, custom: Value, owner: &str| {
        let mut request = account_request(name);
        request.grade = grade as i32;
        request.custom_json = custom.to_string();
        request.owner_id = owner.into();
        let mut client = app.client.clone();
        async move { client.create_account(request).await.unwrap().into_inner() }
    };
    let other = Uuid::now_v7().to_string();
    graded(
        "A east",
        pb::Grade::A,
        json!({"region": "east", "budget": "100", "since": today}),
        OWNER,
    )
    .await;
    graded(
        "B west",
        pb::Grade::B,
        json!({"region": "west", "budget": "2000"}),
        OWNER,
    )
    .await;
    graded("C none", pb::Grade::A, json!({}), OWNER).await;
    graded("D theirs", pb::Grade::A, json!({"region": "east"}), &other).await;

    let all = system();
    let page = list(&app, &all, "custom.region = 'east'").await.unwrap();
    assert_eq!(names(&page), ["A east", "D theirs"]);
    let page = list(&app, &all, "custom.budget >= 1000").await.unwrap();
    assert_eq!(names(&page), ["B west"]);
    let page = list(&app, &all, "grade = 'A' and custom.region is empty")
        .await
        .unwrap();
    assert_eq!(names(&page), ["C none"]);
    let page = list(&app, &all, "custom.since >= today - 7d")
        .await
        .unwrap();
    assert_eq!(names(&page), ["A east"]);
    let page = list(&app, &all, "not custom.region in ('east')")
        .await
        .unwrap();
    assert_eq!(names(&page), ["B west", "C none"]);

    // A filter only narrows the caller's scope: the rep's own records, counted as such.
    let me: Uuid = OWNER.parse().unwrap();
    let mine = Scope {
        owner_ids: [me].into(),
        ..Default::default()
    };
    let rep = Access::new(me).with(Resource::ACCOUNT, Action::Read, mine.clone());
    let page = list(&app, &rep, "custom.region = 'east'").await.unwrap();
    assert_eq!(names(&page), ["A east"]);
    assert_eq!(page.total_size, 1);

    // Bad filters say where and what; nothing hidden or masked can be probed.
    for (filter, expect) in [
        ("custom.region = ", "position 16"),
        ("custom.nope = 'x'", "custom.nope"),
        ("custom.region = 'south'", "south"),
        ("grade > 'A' and", "position 15"),
        ("custom.budget > 'lots'", "position 16"),
    ] {
        let err = list(&app, &all, filter).await.unwrap_err();
        assert_eq!(violated_fields(&err), ["filter"], "{filter}");
        let message = crm_errors::ApiError::from_status(&err).violations[0]
            .message
            .clone();
        assert!(message.contains(expect), "{filter}: {message}");
    }
    let mut hiding = mine;
    hiding.fields.insert(
        "custom.budget".into(),
        FieldAccess {
            visibility: Visibility::Hidden,
            mask: None,
        },
    );
    let hider = Access::new(me).with(Resource::ACCOUNT, Action::Read, hiding);
    let err = list(&app, &hider, "custom.budget > 1000")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["filter"]);

    // Cursors are bound to the filter; pages under one filter walk all its records.
    let first = app
        .client
        .clone()
        .list_accounts(pb::ListAccountsRequest {
            filter: "grade = 'A'".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.accounts.len(), 2);
    let err = app
        .client
        .clone()
        .list_accounts(pb::ListAccountsRequest {
            filter: "grade = 'B'".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_token"]);
    let second = app
        .client
        .clone()
        .list_accounts(pb::ListAccountsRequest {
            filter: "grade = 'A'".into(),
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.accounts.len(), 1);
    assert!(second.next_page_token.is_empty());

    // Exports take the same filter.
    let mut stream = app
        .client
        .clone()
        .export_accounts(pb::ExportAccountsRequest {
            filter: "custom.region in ('east', 'west')".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut exported = Vec::new();
    while let Some(page) = stream.message().await.unwrap() {
        exported.extend(page.accounts.into_iter().map(|a| a.name));
    }
    exported.sort();
    assert_eq!(exported, ["A east", "B west", "D theirs"]);
    app.shutdown().await;
}

fn rule_request(key: &str, condition: &str, field: &str) -> fpb::CreateValidationRuleRequest {
    fpb::CreateValidationRuleRequest {
        entity: "account".into(),
        key: key.into(),
        condition: condition.into(),
        message: labels(
            "合作中的客户必须填写结束日期",
            "Close date is required when the account is active",
        ),
        field: field.into(),
        inactive: false,
    }
}

#[tokio::test]
async fn validation_rules_refuse_writes_across_fields() {
    let app = spawn_app().await;
    define(
        &app,
        "account",
        fpb::Field {
            key: "close_date".into(),
            r#type: "date".into(),
            label: labels("结束日期", "Close date"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rule = app
        .fields
        .clone()
        .create_validation_rule(as_caller(
            &admin(),
            rule_request(
                "close_date_when_active",
                "lifecycle_status = 'active' and custom.close_date is empty",
                "custom.close_date",
            ),
        ))
        .await
        .expect("define the rule")
        .into_inner();
    assert_eq!(rule.version, 1);

    // Bad rules: a condition that does not type (with its position), an unknown field, a key
    // taken, and no customization grant.
    let bad = |condition: &str, field: &str| {
        let mut fields = app.fields.clone();
        let request = rule_request("other", condition, field);
        async move {
            fields
                .create_validation_rule(as_caller(&admin(), request))
                .await
        }
    };
    let err = bad("custom.close_date > 'soon'", "").await.unwrap_err();
    assert_eq!(violated_fields(&err), ["condition"]);
    let message = crm_errors::ApiError::from_status(&err).violations[0]
        .message
        .clone();
    assert!(message.contains("position 20"), "{message}");
    let err = bad("grade = 'A'", "custom.nope").await.unwrap_err();
    assert_eq!(violated_fields(&err), ["field"]);
    let mut taken = app.fields.clone();
    let err = taken
        .create_validation_rule(as_caller(
            &admin(),
            rule_request("close_date_when_active", "grade = 'A'", ""),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = app
        .fields
        .clone()
        .create_validation_rule(as_caller(&system(), rule_request("x", "grade = 'A'", "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // A create that breaks the rule is refused at the rule's field with its message.
    let mut active = account_request("Active without a date");
    active.lifecycle_status = pb::LifecycleStatus::Active as i32;
    let before = app.count("accounts").await;
    let err = app
        .client
        .clone()
        .create_account(active.clone())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["custom.close_date"]);
    let message = crm_errors::ApiError::from_status(&err).violations[0]
        .message
        .clone();
    assert!(
        message == "合作中的客户必须填写结束日期"
            || message == "Close date is required when the account is active",
        "{message}"
    );
    assert_eq!(app.count("accounts").await, before, "nothing written");
    active.custom_json = json!({"close_date": "2027-06-30"}).to_string();
    app.client
        .clone()
        .create_account(active)
        .await
        .expect("with the date");

    // An update that would break it is refused too; one that keeps it goes through.
    let prospect = app.create_account("Prospect").await;
    let err = app
        .client
        .clone()
        .update_account(pb::UpdateAccountRequest {
            id: prospect.id.clone(),
            expected_version: prospect.version,
            lifecycle_status: Some(pb::LifecycleStatus::Active as i32),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["custom.close_date"]);
    app.client
        .clone()
        .update_account(pb::UpdateAccountRequest {
            id: prospect.id.clone(),
            expected_version: prospect.version,
            lifecycle_status: Some(pb::LifecycleStatus::Active as i32),
            custom_json: json!({"close_date": "2027-01-31"}).to_string(),
            ..Default::default()
        })
        .await
        .expect("active with a close date");

    // Deactivated, the rule no longer holds; the change is audited as an event.
    app.fields
        .clone()
        .update_validation_rule(as_caller(
            &admin(),
            fpb::UpdateValidationRuleRequest {
                entity: "account".into(),
                key: "close_date_when_active".into(),
                expected_version: 1,
                active: Some(false),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let mut active = account_request("Active, rule off");
    active.lifecycle_status = pb::LifecycleStatus::Active as i32;
    app.client
        .clone()
        .create_account(active)
        .await
        .expect("no rule");
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM event_outbox WHERE event_type LIKE 'customer.validation_rule.%'
          ORDER BY occurred_at, id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            "customer.validation_rule.defined",
            "customer.validation_rule.changed"
        ]
    );
    let listed = app
        .fields
        .clone()
        .list_validation_rules(as_caller(
            &admin(),
            fpb::ListValidationRulesRequest {
                entity: "account".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.rules.len(), 1);
    assert!(!listed.rules[0].active);

    // The field a rule uses is neither deactivated nor deleted unless forced (issue 11 §4).
    let close_date = |version: i64, force: bool| fpb::UpdateFieldRequest {
        entity: "account".into(),
        key: "close_date".into(),
        expected_version: version,
        active: Some(false),
        force,
        ..Default::default()
    };
    let err = app
        .fields
        .clone()
        .update_field(as_caller(&admin(), close_date(1, false)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .contains("validation rule close_date_when_active"),
        "{}",
        err.message()
    );
    let delete = |force| fpb::DeleteFieldRequest {
        entity: "account".into(),
        key: "close_date".into(),
        expected_version: 0,
        purge: true,
        force,
    };
    let err = app
        .fields
        .clone()
        .delete_field(as_caller(&admin(), delete(false)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.fields
        .clone()
        .update_field(as_caller(&admin(), close_date(1, true)))
        .await
        .expect("forced");
    app.fields
        .clone()
        .delete_field(as_caller(&admin(), delete(true)))
        .await
        .expect("forced");
    app.shutdown().await;
}
