//! Audit entries under field security, end to end: an account written through the gateway, then
//! read by users whose field rules mask and hide some of its fields. What `GET /api/v1/audit`
//! shows each of them of the account's diffs and snapshots is exactly what `GET
//! /api/v1/accounts/{id}` showed them of the account at that time: hidden fields absent (names
//! included), masked ones masked; the admin sees clear values, and a reader who may not read
//! accounts sees no field at all.

use crm_proto::permission as ppb;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Kind, TestApp, etag, ok_json, spawn_app, token_for};

const PHONE: &str = "13812345678";
const NEW_PHONE: &str = "13899995678";
const EMAIL: &str = "zhang@example.com";
const NEW_EMAIL: &str = "li@example.com";
const WEBSITE: &str = "https://acme.example";
const NEW_WEBSITE: &str = "https://new.acme.example";
/// The account fields the test writes; the update changes all but the last.
const FIELDS: [&str; 5] = ["name", "phone", "email", "website", "industry"];

/// `token`'s view of the trail of `record`, newest first, once it holds `n` entries.
async fn trail(app: &TestApp, token: &str, record: &str, n: usize) -> Vec<Value> {
    app.audit_entries(token, &format!("record_id={record}"), |items| {
        items.len() >= n
    })
    .await
}

/// A new role: `parent`'s grants and rules, plus READ on `reads` (all records) and `hidden`
/// fields of accounts hidden.
async fn role(
    app: &TestApp,
    name: &str,
    parent: Option<&str>,
    reads: &[ppb::Resource],
    hidden: &[&str],
) {
    let parent_role_id = match parent {
        Some(parent) => app.org.role(parent).await,
        None => String::new(),
    };
    let mut org = app.org.org.clone();
    let role = org
        .create_role(ppb::CreateRoleRequest {
            name: name.into(),
            description: String::new(),
            parent_role_id,
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    let mut version = role.version;
    for &resource in reads {
        version = org
            .set_grant(ppb::SetGrantRequest {
                role_id: role.id.clone(),
                expected_version: version,
                grant: Some(ppb::Grant {
                    resource: resource as i32,
                    resource_name: String::new(),
                    action: ppb::Action::Read as i32,
                    scope: ppb::DataScope::All as i32,
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .role
            .unwrap()
            .version;
    }
    for field in hidden {
        version = org
            .set_field_rule(ppb::SetFieldRuleRequest {
                role_id: role.id.clone(),
                expected_version: version,
                rule: Some(ppb::FieldRule {
                    resource: ppb::Resource::Account as i32,
                    resource_name: String::new(),
                    field: field.to_string(),
                    visibility: ppb::FieldVisibility::Hidden as i32,
                    mask: ppb::MaskKind::Unspecified as i32,
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .role
            .unwrap()
            .version;
    }
}

async fn view(app: &TestApp, token: &str, id: &str) -> Value {
    ok_json(
        app.http
            .get(app.url(&format!("/api/v1/accounts/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await
}

fn entry<'a>(trail: &'a [Value], action: &str) -> &'a Value {
    trail
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} entry in {trail:?}"))
}

/// Asserts that `reader`'s trail shows each field of the account as `before` and `after` (their
/// views of the account after the create and after the update) show it.
fn assert_trail_matches_views(reader: &str, trail: &[Value], before: &Value, after: &Value) {
    let created = entry(trail, "created");
    let updated = entry(trail, "updated");
    let deleted = entry(trail, "deleted");
    for field in FIELDS {
        let at = |e: &Value| {
            (
                e["changes"].get(field).cloned(),
                e["details"]["account"].get(field).cloned(),
            )
        };
        match (before.get(field), after.get(field)) {
            (Some(b), Some(a)) => {
                assert_eq!(
                    at(created),
                    (Some(json!({"old": null, "new": b})), Some(b.clone())),
                    "{reader}: created {field}"
                );
                // Changed in truth, even where both masks read the same (`138****5678`).
                let change = (field != "industry").then(|| json!({"old": b, "new": a}));
                assert_eq!(
                    updated["changes"].get(field).cloned(),
                    change,
                    "{reader}: updated {field}"
                );
                assert_eq!(
                    updated["details"]["account"].get(field),
                    Some(a),
                    "{reader}: updated {field}"
                );
                assert_eq!(
                    at(deleted),
                    (Some(json!({"old": a, "new": null})), Some(a.clone())),
                    "{reader}: deleted {field}"
                );
            }
            (None, None) => {
                for e in [created, updated, deleted] {
                    assert_eq!(
                        at(e),
                        (None, None),
                        "{reader}: {} shows hidden {field}: {e}",
                        e["action"]
                    );
                }
            }
            other => panic!("{reader}: {field} is hidden in one view only: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_audit_view_masks_and_hides_what_the_record_view_does() {
    let app = spawn_app().await;
    // The demo auditor reads everything (the trail too) with phone and e-mail masked; below it,
    // one that also has accounts' website hidden; and one that reads the trail only.
    role(&app, "blind_auditor", Some("auditor"), &[], &["website"]).await;
    role(&app, "trail_only", None, &[ppb::Resource::Audit], &[]).await;
    let mut tokens = Vec::new();
    for (name, role) in [
        ("auditor", "auditor"),
        ("blind", "blind_auditor"),
        ("trail", "trail_only"),
    ] {
        let user = app.org.user(name, &[role], None, None).await;
        tokens.push((name, token_for(&user.to_string())));
    }
    let token = |name: &str| tokens.iter().find(|(n, _)| *n == name).unwrap().1.clone();

    // Written by the admin through the normal path, read by each reader after every write.
    let created = app
        .create(
            Kind::Accounts,
            &json!({"name": "Acme", "phone": PHONE, "email": EMAIL, "website": WEBSITE,
                    "industry": "Retail"}),
        )
        .await;
    let tag = etag(&created);
    let id = ok_json(created, 201).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut before = Vec::new();
    for reader in ["auditor", "blind"] {
        before.push(view(&app, &token(reader), &id).await);
    }
    let updated = app
        .request(Method::PATCH, &format!("/api/v1/accounts/{id}"))
        .header("If-Match", tag)
        .json(
            &json!({"name": "Acme Ltd", "phone": NEW_PHONE, "email": NEW_EMAIL,
                      "website": NEW_WEBSITE}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let mut after = Vec::new();
    for reader in ["auditor", "blind"] {
        after.push(view(&app, &token(reader), &id).await);
    }
    let deleted = app
        .request(Method::DELETE, &format!("/api/v1/accounts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // The admin: everything in clear.
    let full = trail(&app, &app.token, &id, 3).await;
    assert_eq!(
        entry(&full, "updated")["changes"]["phone"],
        json!({"old": PHONE, "new": NEW_PHONE})
    );
    assert_eq!(
        entry(&full, "created")["details"]["account"]["website"],
        WEBSITE
    );

    // What the views say, spelled out once, so a change on both sides cannot pass unnoticed.
    assert_eq!(before[0]["phone"], "138****5678");
    assert_eq!(after[0]["email"], "l***@example.com");
    assert_eq!(
        after[0]["website"], NEW_WEBSITE,
        "not masked for the auditor"
    );
    assert!(before[1].get("website").is_none(), "{}", before[1]);
    assert_eq!(before[1]["email"], "z***@example.com");

    for (i, reader) in ["auditor", "blind"].into_iter().enumerate() {
        let seen = trail(&app, &token(reader), &id, 3).await;
        let actions: Vec<&str> = seen.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["deleted", "updated", "created"], "{reader}");
        assert_trail_matches_views(reader, &seen, &before[i], &after[i]);
        let text = serde_json::to_string(&seen).unwrap();
        for secret in [PHONE, NEW_PHONE, EMAIL, NEW_EMAIL] {
            assert!(!text.contains(secret), "{reader}: {secret} in {text}");
        }
        if reader == "blind" {
            for hidden in ["website", "acme.example"] {
                assert!(!text.contains(hidden), "{reader}: {hidden} in {text}");
            }
        }
    }

    // Who reads the trail but not accounts: who did what to which record and when, no fields.
    let bare = trail(&app, &token("trail"), &id, 3).await;
    for e in &bare {
        assert_eq!(
            (&e["changes"], &e["details"]),
            (&json!({}), &json!({})),
            "{e}"
        );
        assert_eq!(e["actor_user_id"], json!(app.user_id));
        assert_eq!(e["record_id"], json!(id));
    }
}
