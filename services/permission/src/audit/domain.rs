//! The audit trail as values: an entry and how an event becomes one ([`entry_from`]), a
//! validated query with its page tokens, and what a reader may see of an entry
//! ([`FieldView`], [`AuditEntry::redact`]). No I/O. (An entry is its stored row as it is:
//! it derives `sqlx::FromRow` and keeps its JSON as `sqlx::types::Json`.)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use crm_access::{Scope, Visibility};
use crm_events::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub event_type: String,
    pub source: String,
    pub resource: String,
    pub record_id: Option<String>,
    pub action: String,
    pub actor_user_id: Option<Uuid>,
    pub api_client_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub trace_id: Option<String>,
    pub changes: sqlx::types::Json<Value>,
    pub details: sqlx::types::Json<Value>,
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Per field `{old, new}`: a created record's fields as new, a deleted one's as old.
fn whole(record: &Map<String, Value>, created: bool) -> Value {
    let fields = record
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let change = if created {
                serde_json::json!({ "old": null, "new": v })
            } else {
                serde_json::json!({ "old": v, "new": null })
            };
            (k.clone(), change)
        })
        .collect();
    Value::Object(fields)
}

/// The entry an event makes. `trace_id`: of the request that caused it.
pub fn entry_from(event: &Envelope, trace_id: Option<String>) -> AuditEntry {
    // `<service>.<resource>.<action…>`: `customer.account.updated`, `permission.login.failed`.
    let mut parts = event.event_type.splitn(3, '.');
    let _service = parts.next();
    let resource = parts.next().unwrap_or("unknown").to_string();
    let action = parts.next().unwrap_or("unknown").to_string();
    let mut details = event.data.as_object().cloned().unwrap_or_default();
    // The actor: service events carry `actor`; in sign-in events the user signing in acts
    // (elsewhere `user_id` is the user acted upon, not the actor).
    let actor = details.remove("actor").unwrap_or(Value::Null);
    let signs_in = matches!(
        event.event_type.as_str(),
        "permission.login.succeeded"
            | "permission.login.failed"
            | "permission.api_client.token_issued"
    ) || (event.event_type == "permission.session.revoked"
        && details.get("reason").and_then(Value::as_str) == Some("logout"));
    let actor_user_id = text(actor.get("user_id"))
        .or_else(|| signs_in.then(|| text(details.get("user_id"))).flatten())
        .and_then(|s| Uuid::parse_str(&s).ok());
    let api_client_id = text(actor.get("api_client_id")).or_else(|| text(details.get("client_id")));
    let client_ip = text(actor.get("client_ip")).or_else(|| text(details.get("client_ip")));
    let user_agent = text(actor.get("user_agent")).or_else(|| text(details.get("user_agent")));
    let changes = match details.remove("changes") {
        Some(Value::Object(changes)) => Value::Object(changes),
        _ => match (action.as_str(), details.get(&resource)) {
            ("created", Some(Value::Object(record))) => whole(record, true),
            ("deleted", Some(Value::Object(record))) => whole(record, false),
            _ => Value::Object(Map::new()),
        },
    };
    AuditEntry {
        id: event.id,
        occurred_at: event.time,
        event_type: event.event_type.clone(),
        source: event.source.clone(),
        resource,
        record_id: (!event.subject.is_empty()).then(|| event.subject.clone()),
        action,
        actor_user_id,
        api_client_id,
        client_ip,
        user_agent,
        trace_id: trace_id.filter(|t| !t.is_empty() && t.chars().any(|c| c != '0')),
        changes: sqlx::types::Json(changes),
        details: sqlx::types::Json(Value::Object(details)),
    }
}

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// Where the previous page ended (newest first: `(occurred_at, id)` descending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    t: DateTime<Utc>,
    id: Uuid,
}

/// A validated query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub page_size: i64,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub record_id: Option<String>,
    pub actor_user_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// From the caller's scope: only entries of these actors (`None`: every entry).
    pub visible_actors: Option<Vec<Uuid>>,
}

/// The page token of a page that ends at `(t, id)`.
pub fn page_token(t: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Cursor { t, id }).expect("a cursor serialises"))
}

/// Where the page of `token` ended; `None` for a token this service did not make.
pub fn parse_page_token(token: &str) -> Option<(DateTime<Utc>, Uuid)> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
        .map(|c| (c.t, c.id))
}

pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_page_token: Option<String>,
}

// --- field security -------------------------------------------------------------------------

/// What one reader may see of the entries about one resource: their field rules for READ on it,
/// the ones the owning service applies to the record itself (ADR 0009).
///
/// A rule applies to its field name wherever the name occurs in an entry: as a key of `changes`
/// (so both the old and the new value), in the record snapshot `details` carries (`details.account`
/// of an account event), at the top of `details`, and inside nested values. A hidden field is
/// left out entirely, name included; a masked one keeps its name and has every value masked with
/// [`Scope::show`] (the record view's code), whatever its JSON type: strings are masked, numbers
/// and booleans are masked as text, and arrays and objects are masked value by value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldView {
    /// The reader's compiled READ scope for the resource; only its field rules are used.
    Rules(Scope),
    /// The reader may not read the resource at all (no grant, or a disabled or unknown user):
    /// the entry keeps who did what to which record and when, but no field and no value.
    Withheld,
}

impl FieldView {
    /// From the reader's compiled READ scope for the entry's resource.
    pub fn of_read_scope(scope: Scope) -> Self {
        if scope.is_empty() {
            FieldView::Withheld
        } else {
            FieldView::Rules(scope)
        }
    }
}

impl AuditEntry {
    /// The entry as a reader with `view` may see it.
    pub fn redact(&mut self, view: &FieldView) {
        match view {
            FieldView::Withheld => {
                self.changes.0 = Value::Object(Map::new());
                self.details.0 = Value::Object(Map::new());
            }
            FieldView::Rules(scope) if scope.fields.is_empty() => {}
            FieldView::Rules(scope) => {
                redact_changes(scope, &mut self.changes.0);
                redact_fields(scope, &mut self.details.0);
            }
        }
    }
}

fn is_hidden(scope: &Scope, field: &str) -> bool {
    scope.field(field).visibility == Visibility::Hidden
}

fn is_masked(scope: &Scope, field: &str) -> bool {
    scope.field(field).mask.is_some()
}

/// `{field: {old, new}}`: hidden fields leave, masked ones have both sides masked, and the
/// values of the others are walked for nested fields (`old` and `new` are not field names).
fn redact_changes(scope: &Scope, changes: &mut Value) {
    let Value::Object(fields) = changes else {
        redact_fields(scope, changes);
        return;
    };
    fields.retain(|field, _| !is_hidden(scope, field));
    for (field, change) in fields.iter_mut() {
        if is_masked(scope, field) {
            mask_all(scope, field, change);
        } else if let Value::Object(sides) = change {
            sides
                .values_mut()
                .for_each(|side| redact_fields(scope, side));
        } else {
            redact_fields(scope, change);
        }
    }
}

/// Every object in `value`, however deep: hidden keys left out, masked keys' values masked.
fn redact_fields(scope: &Scope, value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|field, _| !is_hidden(scope, field));
            for (field, v) in fields.iter_mut() {
                if is_masked(scope, field) {
                    mask_all(scope, field, v);
                } else {
                    redact_fields(scope, v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_fields(scope, v)),
        _ => {}
    }
}

/// Masks every value in `value` with `field`'s mask; `null` stays `null` (there is nothing to
/// show), object keys stay (they are structure: `old`, `new`).
fn mask_all(scope: &Scope, field: &str, value: &mut Value) {
    let text = match value {
        Value::Null => return,
        Value::Array(items) => {
            items.iter_mut().for_each(|v| mask_all(scope, field, v));
            return;
        }
        Value::Object(fields) => {
            fields.values_mut().for_each(|v| mask_all(scope, field, v));
            return;
        }
        Value::String(s) => std::mem::take(s),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
    };
    *value = scope
        .show(field, Some(text))
        .map_or(Value::Null, Value::String);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, subject: &str, data: Value) -> Envelope {
        Envelope::new(
            Uuid::now_v7(),
            "crm/customer",
            event_type,
            subject,
            Utc::now(),
            data,
        )
    }

    #[test]
    fn an_update_keeps_its_diff_and_its_actor() {
        let actor = Uuid::now_v7();
        let e = entry_from(
            &event(
                "customer.account.updated",
                "a1",
                serde_json::json!({
                    "account": {"name": "New"},
                    "changes": {"name": {"old": "Old", "new": "New"}},
                    "actor": {"user_id": actor, "client_ip": "10.1.2.3", "user_agent": "curl",
                              "api_client_id": null},
                }),
            ),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        );
        assert_eq!(
            (e.resource.as_str(), e.action.as_str()),
            ("account", "updated")
        );
        assert_eq!(e.record_id.as_deref(), Some("a1"));
        assert_eq!(e.actor_user_id, Some(actor));
        assert_eq!(e.client_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(e.api_client_id, None);
        assert_eq!(e.changes.0["name"]["old"], "Old");
        assert!(e.details.0.get("actor").is_none());
        assert_eq!(
            e.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn creates_and_deletes_show_the_whole_record() {
        let created = entry_from(
            &event(
                "customer.contact.created",
                "c1",
                serde_json::json!({"contact": {"first_name": "Li", "title": null}}),
            ),
            None,
        );
        assert_eq!(created.changes.0["first_name"]["new"], "Li");
        assert!(created.changes.0.get("title").is_none());
        let deleted = entry_from(
            &event(
                "customer.contact.deleted",
                "c1",
                serde_json::json!({"id": "c1", "contact": {"first_name": "Li"}}),
            ),
            Some("00000000000000000000000000000000".into()),
        );
        assert_eq!(deleted.changes.0["first_name"]["old"], "Li");
        assert_eq!(deleted.trace_id, None, "an all-zero trace id is no trace");
    }

    #[test]
    fn sign_in_events_name_user_and_client() {
        let user = Uuid::now_v7();
        let e = entry_from(
            &event(
                "permission.login.failed",
                "alice",
                serde_json::json!({"user_id": user, "client_ip": "192.0.2.1",
                                   "reason": "wrong_password"}),
            ),
            None,
        );
        assert_eq!(
            (e.resource.as_str(), e.action.as_str()),
            ("login", "failed")
        );
        assert_eq!(e.actor_user_id, Some(user));
        assert_eq!(e.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(e.details.0["reason"], "wrong_password");
    }

    #[test]
    fn signing_out_is_the_users_own_act() {
        let user = Uuid::now_v7();
        let e = entry_from(
            &event(
                "permission.session.revoked",
                &user.to_string(),
                serde_json::json!({"user_id": user, "reason": "logout", "session_ids": []}),
            ),
            None,
        );
        assert_eq!(
            (e.resource.as_str(), e.action.as_str()),
            ("session", "revoked")
        );
        assert_eq!(e.actor_user_id, Some(user));
        let revoked_by_reuse = entry_from(
            &event(
                "permission.session.revoked",
                &user.to_string(),
                serde_json::json!({"user_id": user, "reason": "reuse"}),
            ),
            None,
        );
        assert_eq!(revoked_by_reuse.actor_user_id, None);
    }

    #[test]
    fn the_user_acted_upon_is_not_the_actor() {
        let e = entry_from(
            &event(
                "permission.assignment.added",
                "u1",
                serde_json::json!({"user_id": Uuid::now_v7(), "role_name": "admin"}),
            ),
            None,
        );
        assert_eq!(e.actor_user_id, None);
        assert_eq!(e.record_id.as_deref(), Some("u1"));
    }

    /// Phone and e-mail masked, website hidden: what the field-security tests read with.
    fn rules() -> Scope {
        let mut scope = Scope::everything();
        for (field, visibility, mask) in [
            (
                "phone",
                Visibility::ReadOnly,
                Some(crm_access::MaskKind::Phone),
            ),
            (
                "email",
                Visibility::ReadOnly,
                Some(crm_access::MaskKind::Email),
            ),
            ("website", Visibility::Hidden, None),
        ] {
            scope
                .fields
                .insert(field.into(), crm_access::FieldAccess { visibility, mask });
        }
        scope
    }

    fn account() -> Value {
        serde_json::json!({
            "id": "a1", "name": "Acme", "phone": "13812345678", "email": "zhang@example.com",
            "website": "https://acme.example", "tags": ["vip"], "version": 1,
        })
    }

    /// No clear value of a restricted field and no hidden name, anywhere in what is returned.
    fn assert_nothing_leaks(e: &AuditEntry) {
        let text = format!("{}{}", e.changes.0, e.details.0);
        for secret in [
            "13812345678",
            "13899995678",
            "zhang@",
            "li@",
            "acme.example",
            "website",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn a_created_record_shows_masked_fields_masked_and_hidden_ones_not_at_all() {
        let mut e = entry_from(
            &event(
                "customer.account.created",
                "a1",
                serde_json::json!({"account": account()}),
            ),
            None,
        );
        e.redact(&FieldView::Rules(rules()));
        assert_eq!(
            e.changes.0["phone"],
            serde_json::json!({"old": null, "new": "138****5678"})
        );
        assert_eq!(e.changes.0["email"]["new"], "z***@example.com");
        assert_eq!(e.changes.0["name"]["new"], "Acme", "no rule: clear");
        assert_eq!(e.changes.0["tags"]["new"], serde_json::json!(["vip"]));
        assert!(e.changes.0.get("website").is_none(), "not even the name");
        let record = &e.details.0["account"];
        assert_eq!(record["phone"], "138****5678");
        assert_eq!(record["email"], "z***@example.com");
        assert!(record.get("website").is_none());
        assert_eq!(record["name"], "Acme");
        assert_nothing_leaks(&e);
    }

    #[test]
    fn an_update_masks_both_sides_and_drops_hidden_changes() {
        let mut after = account();
        after["phone"] = "13899995678".into();
        after["email"] = "li@example.com".into();
        after["website"] = "https://new.acme.example".into();
        let mut e = entry_from(
            &event(
                "customer.account.updated",
                "a1",
                serde_json::json!({
                    "account": after,
                    "changes": {
                        "phone": {"old": "13812345678", "new": "13899995678"},
                        "email": {"old": "zhang@example.com", "new": "li@example.com"},
                        "website": {"old": "https://acme.example", "new": "https://new.acme.example"},
                        "name": {"old": "Acme", "new": "Acme Ltd"},
                    },
                }),
            ),
            None,
        );
        e.redact(&FieldView::Rules(rules()));
        assert_eq!(
            e.changes.0,
            serde_json::json!({
                "phone": {"old": "138****5678", "new": "138****5678"},
                "email": {"old": "z***@example.com", "new": "l***@example.com"},
                "name": {"old": "Acme", "new": "Acme Ltd"},
            })
        );
        assert_eq!(e.details.0["account"]["phone"], "138****5678");
        assert_nothing_leaks(&e);

        // Only a hidden field changed: the entry stays (the record's version says as much),
        // with nothing in it.
        let mut e = entry_from(
            &event(
                "customer.account.updated",
                "a1",
                serde_json::json!({"changes": {"website": {"old": "https://acme.example",
                                                             "new": null}}}),
            ),
            None,
        );
        e.redact(&FieldView::Rules(rules()));
        assert_eq!(e.changes.0, serde_json::json!({}));
    }

    #[test]
    fn a_deleted_record_shows_its_old_values_masked() {
        let mut e = entry_from(
            &event(
                "customer.account.deleted",
                "a1",
                serde_json::json!({"id": "a1", "version": 2, "account": account()}),
            ),
            None,
        );
        e.redact(&FieldView::Rules(rules()));
        assert_eq!(
            e.changes.0["phone"],
            serde_json::json!({"old": "138****5678", "new": null})
        );
        assert_eq!(e.changes.0["email"]["old"], "z***@example.com");
        assert!(e.changes.0.get("website").is_none());
        assert_eq!(e.details.0["id"], "a1");
        assert_eq!(e.details.0["version"], 2);
        assert!(e.details.0["account"].get("website").is_none());
        assert_nothing_leaks(&e);
    }

    #[test]
    fn nested_and_non_text_values_are_masked_too() {
        let mut e = entry_from(
            &event(
                "customer.account.updated",
                "a1",
                serde_json::json!({
                    "website": "https://acme.example",
                    "account": {"addresses": [{"phone": "13812345678",
                                               "website": "https://acme.example"}]},
                    "changes": {
                        "phone": {"old": 13812345678_u64, "new": ["13899995678", null]},
                        "email": {"old": {"work": "zhang@example.com"}, "new": true},
                        "addresses": {"old": [{"phone": "13812345678",
                                               "website": "https://acme.example"}],
                                      "new": []},
                    },
                }),
            ),
            None,
        );
        e.redact(&FieldView::Rules(rules()));
        assert_eq!(
            e.changes.0["phone"],
            serde_json::json!({"old": "138****5678", "new": ["138****5678", null]})
        );
        assert_eq!(
            e.changes.0["email"],
            serde_json::json!({"old": {"work": "z***@example.com"}, "new": "t***"})
        );
        assert_eq!(
            e.changes.0["addresses"]["old"],
            serde_json::json!([{"phone": "138****5678"}])
        );
        assert!(e.details.0.get("website").is_none(), "top level of details");
        assert_eq!(
            e.details.0["account"]["addresses"],
            serde_json::json!([{"phone": "138****5678"}])
        );
        assert_nothing_leaks(&e);
    }

    #[test]
    fn a_reader_without_rules_sees_the_entry_as_stored() {
        let stored = entry_from(
            &event(
                "customer.account.deleted",
                "a1",
                serde_json::json!({"id": "a1", "account": account()}),
            ),
            None,
        );
        let mut e = stored.clone();
        e.redact(&FieldView::Rules(Scope::everything()));
        assert_eq!(e, stored);
    }

    #[test]
    fn a_reader_who_may_not_read_the_resource_sees_no_field_at_all() {
        let mut e = entry_from(
            &event(
                "customer.account.updated",
                "a1",
                serde_json::json!({"account": account(),
                                   "changes": {"name": {"old": "A", "new": "B"}}}),
            ),
            None,
        );
        let (actor, record) = (e.actor_user_id, e.record_id.clone());
        assert_eq!(
            FieldView::of_read_scope(Scope::default()),
            FieldView::Withheld,
            "an empty READ scope: no grant"
        );
        e.redact(&FieldView::Withheld);
        assert_eq!(e.changes.0, serde_json::json!({}));
        assert_eq!(e.details.0, serde_json::json!({}));
        assert_eq!(
            (e.actor_user_id, e.record_id),
            (actor, record),
            "who and what stay"
        );
    }
}
