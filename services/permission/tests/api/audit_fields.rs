//! The audit trail under field security: `ListAuditEntries` shows each entry's fields through the
//! reader's own field rules for READ on the entry's resource — hidden fields left out of the diff
//! and the record snapshot (names included), masked ones masked on both sides — while the table
//! keeps everything and a reader without rules sees it all. Events are fed to the audit consumer
//! on a source topic, as the customer service publishes them.

use std::time::Duration;

use crm_access::{Access, Scope};
use crm_proto::permission as pb;
use pb::{Action, DataScope, FieldVisibility, MaskKind, Resource};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, event, eventually, publish, spawn_with};

const PHONE: &str = "13812345678";
const NEW_PHONE: &str = "13899995678";
const EMAIL: &str = "zhang@example.com";
const NEW_EMAIL: &str = "li@example.com";
const WEBSITE: &str = "https://acme.example";

/// The entries about `record` as `reader` gets them, newest first (the gateway would send the
/// reader's `audit:read` scope; `all` here).
async fn trail(app: &TestApp, reader: &pb::User, record: &str) -> Vec<pb::AuditEntry> {
    let access = Access::new(reader.id.parse().unwrap()).with(
        crm_access::Resource::AUDIT,
        crm_access::Action::Read,
        Scope::everything(),
    );
    let mut request = tonic::Request::new(pb::ListAuditEntriesRequest {
        record_id: record.into(),
        ..Default::default()
    });
    access.to_metadata(request.metadata_mut());
    app.audit
        .clone()
        .list_audit_entries(request)
        .await
        .expect("list audit entries")
        .into_inner()
        .entries
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// `(changes, details)` of the entry with `action`.
fn parts(entries: &[pb::AuditEntry], action: &str) -> (Value, Value) {
    let e = entries
        .iter()
        .find(|e| e.action == action)
        .unwrap_or_else(|| panic!("no {action} entry in {entries:?}"));
    (json_of(&e.changes_json), json_of(&e.details_json))
}

/// A role granting READ on each of `reads` to every record.
async fn role(app: &TestApp, name: &str, reads: &[Resource]) -> pb::Role {
    let role = app.create_role(name, None).await;
    for &resource in reads {
        app.grant(&role, resource, Action::Read, DataScope::All)
            .await;
    }
    role
}

async fn user_with(app: &TestApp, name: &str, role: &pb::Role) -> pb::User {
    let user = app.member(name).await;
    app.assign(&user, role).await;
    user
}

#[tokio::test]
async fn each_reader_sees_audit_entries_through_their_own_field_rules() {
    let source_topic = crm_testkit::unique("customer-events");
    let app = spawn_with(|s| s.audit.topics = vec![source_topic.clone()]).await;

    // masked: phone and e-mail masked, website hidden on accounts. full: no rules.
    // trail_only: the audit trail, no account READ at all.
    let masked = role(&app, "masked", &[Resource::Audit, Resource::Account]).await;
    for (field, visibility, mask) in [
        ("phone", FieldVisibility::ReadOnly, MaskKind::Phone),
        ("email", FieldVisibility::ReadOnly, MaskKind::Email),
        ("website", FieldVisibility::Hidden, MaskKind::Unspecified),
    ] {
        app.field_rule(&masked, Resource::Account, field, visibility, mask)
            .await;
    }
    let full = role(&app, "full", &[Resource::Audit, Resource::Account]).await;
    let trail_only = role(&app, "trail_only", &[Resource::Audit]).await;
    let reader = user_with(&app, "reader", &masked).await;
    let admin = user_with(&app, "admin", &full).await;
    let outsider = user_with(&app, "outsider", &trail_only).await;

    // An account created, changed and deleted, as the customer service publishes it; and a
    // record of a resource no grant is about.
    let source = "crm/customer";
    let account = Uuid::new_v4().to_string();
    let actor = json!({"user_id": admin.id, "client_ip": "10.0.0.1"});
    let before = json!({"id": account, "name": "Acme", "phone": PHONE, "email": EMAIL,
                        "website": WEBSITE, "industry": "Retail", "version": 1});
    let mut after = before.clone();
    after["name"] = "Acme Ltd".into();
    after["phone"] = NEW_PHONE.into();
    after["email"] = NEW_EMAIL.into();
    after["website"] = "https://new.acme.example".into();
    after["version"] = 2.into();
    let widget = Uuid::new_v4().to_string();
    publish(
        &source_topic,
        &[
            event(
                source,
                "customer.account.created",
                &account,
                json!({"account": before, "actor": actor}),
            ),
            event(
                source,
                "customer.account.updated",
                &account,
                json!({"account": after, "actor": actor, "changes": {
                    "name": {"old": "Acme", "new": "Acme Ltd"},
                    "phone": {"old": PHONE, "new": NEW_PHONE},
                    "email": {"old": EMAIL, "new": NEW_EMAIL},
                    "website": {"old": WEBSITE, "new": "https://new.acme.example"},
                }}),
            ),
            event(
                source,
                "customer.account.deleted",
                &account,
                json!({"id": account, "version": 3, "account": after, "actor": actor}),
            ),
            event(
                source,
                "customer.widget.created",
                &widget,
                json!({"widget": {"phone": PHONE, "website": WEBSITE}}),
            ),
        ],
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the account's three entries",
        || async {
            trail(&app, &admin, &account).await.len() == 3
                && trail(&app, &admin, &widget).await.len() == 1
        },
    )
    .await;

    // The admin (no rules) sees everything as stored.
    let stored = trail(&app, &admin, &account).await;
    let (changes, details) = parts(&stored, "created");
    assert_eq!(changes["phone"]["new"], PHONE);
    assert_eq!(changes["website"]["new"], WEBSITE);
    assert_eq!(details["account"]["email"], EMAIL);
    let (changes, _) = parts(&stored, "updated");
    assert_eq!(changes["phone"], json!({"old": PHONE, "new": NEW_PHONE}));

    // The reader: what `Scope::show` makes of the values with the reader's own compiled scope,
    // i.e. what the customer service shows them of the account itself.
    let scope = Scope::try_from(app.compile(&reader, Resource::Account, Action::Read).await)
        .expect("a valid scope");
    let shown = |field: &str, value: &str| Value::from(scope.show(field, Some(value.into())));
    assert_eq!(shown("phone", PHONE), "138****5678");
    assert_eq!(shown("email", NEW_EMAIL), "l***@example.com");
    assert_eq!(shown("website", WEBSITE), Value::Null, "hidden");
    let seen = trail(&app, &reader, &account).await;
    assert_eq!(
        seen.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["deleted", "updated", "created"],
        "every entry, in order"
    );
    let (changes, details) = parts(&seen, "created");
    assert_eq!(
        changes["phone"],
        json!({"old": null, "new": shown("phone", PHONE)})
    );
    assert_eq!(changes["email"]["new"], shown("email", EMAIL));
    assert_eq!(
        changes["name"]["new"], "Acme",
        "fields without rules are clear"
    );
    assert!(changes.get("website").is_none(), "{changes}");
    assert_eq!(details["account"]["phone"], shown("phone", PHONE));
    assert!(details["account"].get("website").is_none(), "{details}");
    let (changes, details) = parts(&seen, "updated");
    assert_eq!(
        changes,
        json!({
            "name": {"old": "Acme", "new": "Acme Ltd"},
            "phone": {"old": shown("phone", PHONE), "new": shown("phone", NEW_PHONE)},
            "email": {"old": shown("email", EMAIL), "new": shown("email", NEW_EMAIL)},
        })
    );
    assert_eq!(details["account"]["email"], shown("email", NEW_EMAIL));
    let (changes, details) = parts(&seen, "deleted");
    assert_eq!(changes["phone"]["old"], shown("phone", NEW_PHONE));
    assert!(changes.get("website").is_none());
    assert_eq!(details["id"], json!(account));
    for entry in &seen {
        let text = format!("{}{}", entry.changes_json, entry.details_json);
        for secret in [
            PHONE,
            NEW_PHONE,
            EMAIL,
            NEW_EMAIL,
            "acme.example",
            "website",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(entry.actor_user_id, admin.id, "who acted stays");
    }

    // A resource without field rules passes unchanged.
    let widget_seen = trail(&app, &reader, &widget).await;
    assert_eq!(
        json_of(&widget_seen[0].details_json)["widget"],
        json!({"phone": PHONE, "website": WEBSITE})
    );

    // Without READ on accounts: who did what to which record and when, but no field at all.
    let bare = trail(&app, &outsider, &account).await;
    assert_eq!(bare.len(), 3);
    for entry in &bare {
        assert_eq!(
            (entry.changes_json.as_str(), entry.details_json.as_str()),
            ("{}", "{}")
        );
        assert_eq!(
            (entry.actor_user_id.as_str(), entry.record_id.as_str()),
            (admin.id.as_str(), account.as_str())
        );
    }

    // The table keeps everything.
    let stored: Value = sqlx::query_scalar(
        "SELECT changes FROM audit_entries WHERE record_id = $1 AND action = 'updated'",
    )
    .bind(&account)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored["website"]["old"], WEBSITE);
    assert_eq!(stored["phone"]["new"], NEW_PHONE);

    // The rules are read at each request: unmasking the phone shows it at once.
    app.field_rule(
        &masked,
        Resource::Account,
        "phone",
        FieldVisibility::Editable,
        MaskKind::Unspecified,
    )
    .await;
    let (changes, _) = parts(&trail(&app, &reader, &account).await, "updated");
    assert_eq!(changes["phone"], json!({"old": PHONE, "new": NEW_PHONE}));
    assert_eq!(changes["email"]["new"], shown("email", NEW_EMAIL));
    assert!(changes.get("website").is_none());
}
