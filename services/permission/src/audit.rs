//! The audit trail (ADR 0010): an append-only table of who did what, made from the services'
//! events by an idempotent consumer, and `AuditService` to query it.
//!
//! Every event becomes one entry, keyed by the event id (so a redelivered event changes
//! nothing). The entry takes from the event what the trail needs — the actor, the client's
//! address and agent, the record, a per-field before/after — and keeps the rest as `details`;
//! the trace id comes from the trace context the event carried. The table refuses updates and
//! deletes (a trigger), whatever the code does.
//!
//! The table keeps everything; what a reader gets is cut to their own field rules (see
//! [`FieldView`]): an entry about an account shows its fields as the reader's view of the account
//! would, hidden ones left out and masked ones masked.

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use crm_access::{Action, Resource, Scope, Visibility};
use crm_events::{Envelope, EventError};
use crm_proto::permission as pb;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::authz::{model, service::Access as Decisions};
use crate::domain::Violations;
use crate::error::Result;

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

/// Writes entries from events (inside the consumer's exactly-once transaction).
pub struct AuditHandler;

impl crm_events::consumer::Handler for AuditHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), EventError> {
        let entry = entry_from(event, crm_telemetry::current_trace_id());
        insert(tx, &entry).await.map_err(EventError::Db)
    }
}

async fn insert(conn: &mut PgConnection, e: &AuditEntry) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_entries (id, occurred_at, event_type, source, resource, record_id,
                                    action, actor_user_id, api_client_id, client_ip, user_agent,
                                    trace_id, changes, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.occurred_at)
    .bind(&e.event_type)
    .bind(&e.source)
    .bind(&e.resource)
    .bind(&e.record_id)
    .bind(&e.action)
    .bind(e.actor_user_id)
    .bind(&e.api_client_id)
    .bind(&e.client_ip)
    .bind(&e.user_agent)
    .bind(&e.trace_id)
    .bind(&e.changes)
    .bind(&e.details)
    .execute(conn)
    .await?;
    Ok(())
}

// --- queries --------------------------------------------------------------------------------

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

fn time(
    field: &str,
    t: Option<prost_types::Timestamp>,
    v: &mut Violations,
) -> Option<DateTime<Utc>> {
    let t = t?;
    let parsed = DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32);
    if parsed.is_none() {
        v.add(field, "is not a valid time");
    }
    parsed
}

impl AuditQuery {
    pub fn parse(
        r: pb::ListAuditEntriesRequest,
    ) -> std::result::Result<Self, crm_errors::ApiError> {
        let mut v = Violations::default();
        let page_size = match r.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if (1..=MAX_PAGE_SIZE as i32).contains(&n) => i64::from(n),
            _ => {
                v.add(
                    "page_size",
                    format!("must be between 1 and {MAX_PAGE_SIZE}"),
                );
                DEFAULT_PAGE_SIZE
            }
        };
        let after = (!r.page_token.is_empty())
            .then(|| {
                URL_SAFE_NO_PAD
                    .decode(&r.page_token)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
                    .map(|c| (c.t, c.id))
                    .or_else(|| {
                        v.add("page_token", "is not a valid page token");
                        None
                    })
            })
            .flatten();
        let actor_user_id = (!r.actor_user_id.is_empty())
            .then(|| v.uuid("actor_user_id", &r.actor_user_id))
            .flatten();
        let record_id = v.optional("record_id", &r.record_id, 200);
        let from = time("from", r.from, &mut v);
        let to = time("to", r.to, &mut v);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            v.add("to", "must not be before from");
        }
        v.into_result()?;
        Ok(AuditQuery {
            page_size,
            after,
            record_id,
            actor_user_id,
            from,
            to,
            visible_actors: None,
        })
    }
}

pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_page_token: Option<String>,
}

pub async fn list(pool: &PgPool, q: &AuditQuery) -> Result<AuditPage> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT id, occurred_at, event_type, source, resource, record_id, action, actor_user_id,
                api_client_id, client_ip, user_agent, trace_id, changes, details
           FROM audit_entries WHERE true",
    );
    if let Some(actors) = &q.visible_actors {
        b.push(" AND actor_user_id = ANY(")
            .push_bind(actors.clone())
            .push(")");
    }
    if let Some(record) = &q.record_id {
        b.push(" AND record_id = ").push_bind(record.clone());
    }
    if let Some(actor) = q.actor_user_id {
        b.push(" AND actor_user_id = ").push_bind(actor);
    }
    if let Some(from) = q.from {
        b.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = q.to {
        b.push(" AND occurred_at < ").push_bind(to);
    }
    if let Some((t, id)) = q.after {
        b.push(" AND (occurred_at, id) < (")
            .push_bind(t)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY occurred_at DESC, id DESC LIMIT ")
        .push_bind(q.page_size + 1);
    let mut conn = pool.acquire().await?;
    let mut entries: Vec<AuditEntry> = b.build_query_as().fetch_all(&mut *conn).await?;
    let more = entries.len() as i64 > q.page_size;
    entries.truncate(q.page_size as usize);
    let next_page_token = more.then(|| {
        let last = entries.last().expect("a full page has a last entry");
        URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Cursor {
                t: last.occurred_at,
                id: last.id,
            })
            .expect("a cursor serialises"),
        )
    });
    Ok(AuditPage {
        entries,
        next_page_token,
    })
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

// --- gRPC -----------------------------------------------------------------------------------

impl From<AuditEntry> for pb::AuditEntry {
    fn from(e: AuditEntry) -> Self {
        pb::AuditEntry {
            id: e.id.to_string(),
            occurred_at: Some(crate::grpc::timestamp(e.occurred_at)),
            event_type: e.event_type,
            source: e.source,
            resource: e.resource,
            record_id: e.record_id.unwrap_or_default(),
            action: e.action,
            actor_user_id: e.actor_user_id.map(|u| u.to_string()).unwrap_or_default(),
            api_client_id: e.api_client_id.unwrap_or_default(),
            client_ip: e.client_ip.unwrap_or_default(),
            user_agent: e.user_agent.unwrap_or_default(),
            trace_id: e.trace_id.unwrap_or_default(),
            changes_json: e.changes.0.to_string(),
            details_json: e.details.0.to_string(),
        }
    }
}

pub struct AuditApi {
    pool: PgPool,
    decisions: Decisions,
}

impl AuditApi {
    pub fn new(pool: PgPool) -> Self {
        Self {
            decisions: Decisions::new(pool.clone()),
            pool,
        }
    }

    /// The reader's view of each resource the entries are about, compiled once per resource
    /// (`CompileScope`'s own code, READ). Entries about what no grant is about (sign-ins, roles,
    /// users, …) get none: they have no field rules and pass unchanged.
    async fn field_views(
        &self,
        reader: Uuid,
        entries: &[AuditEntry],
    ) -> std::result::Result<HashMap<String, FieldView>, Status> {
        let resources: BTreeSet<&str> = entries.iter().map(|e| e.resource.as_str()).collect();
        let mut views = HashMap::with_capacity(resources.len());
        for name in resources {
            let Some(resource) = model::Resource::parse(name) else {
                continue;
            };
            let compiled = self
                .decisions
                .compile_scope(reader, resource, model::Action::Read)
                .await
                .map_err(Status::from)?;
            // The wire form services get, read back with the code they use (`Scope::show`).
            let scope = Scope::try_from(pb::CompiledScope::from(compiled))?;
            views.insert(name.to_string(), FieldView::of_read_scope(scope));
        }
        Ok(views)
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditApi {
    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> std::result::Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let access = crm_identity::user_access(&request)?;
        let scope = access.scope(Resource::Audit, Action::Read)?;
        let mut query = AuditQuery::parse(request.into_inner())?;
        if !scope.all {
            // Narrower than everything: the actions of the users the scope covers.
            query.visible_actors = Some(scope.owner_ids.clone());
        }
        let page = list(&self.pool, &query).await.map_err(Status::from)?;
        // The table keeps everything; the reader sees it through their own field rules.
        let views = self.field_views(access.user_id, &page.entries).await?;
        let entries = page
            .entries
            .into_iter()
            .map(|mut entry| {
                if let Some(view) = views.get(&entry.resource) {
                    entry.redact(view);
                }
                entry.into()
            })
            .collect();
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries,
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
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

    #[test]
    fn bad_queries_name_their_fields() {
        let err = AuditQuery::parse(pb::ListAuditEntriesRequest {
            page_size: 500,
            page_token: "garbage!".into(),
            actor_user_id: "nobody".into(),
            from: Some(prost_types::Timestamp {
                seconds: 2_000_000_000,
                nanos: 0,
            }),
            to: Some(prost_types::Timestamp {
                seconds: 1_000_000_000,
                nanos: 0,
            }),
            ..Default::default()
        })
        .unwrap_err();
        let fields: Vec<_> = err.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["page_size", "page_token", "actor_user_id", "to"]);
    }
}
