//! The gRPC edge of the audit trail: `crm.permission.v1.AuditService`. The reader's access
//! context and query are checked here, every violation at once; entries go back as wire
//! messages.

use chrono::{DateTime, Utc};
use crm_access::{Action, Resource};
use crm_proto::permission as pb;
use tonic::{Request, Response, Status};

use super::domain::{AuditEntry, AuditQuery, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, parse_page_token};
use super::service::Audit;
use crate::validation::Violations;
use crate::wire::timestamp;

impl From<AuditEntry> for pb::AuditEntry {
    fn from(e: AuditEntry) -> Self {
        pb::AuditEntry {
            id: e.id.to_string(),
            occurred_at: Some(timestamp(e.occurred_at)),
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

/// A validated query from the wire: every bad field reported at once.
pub fn query(r: pb::ListAuditEntriesRequest) -> Result<AuditQuery, crm_errors::ApiError> {
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
            parse_page_token(&r.page_token).or_else(|| {
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

pub struct AuditApi {
    audit: Audit,
}

impl AuditApi {
    pub fn new(audit: Audit) -> Self {
        Self { audit }
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditApi {
    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> std::result::Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let access = crm_identity::user_access(&request)?;
        let scope = access.scope(Resource::AUDIT, Action::Read)?;
        let query = query(request.into_inner())?;
        let page = self
            .audit
            .list(access.user_id, scope, query)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: page.entries.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_queries_name_their_fields() {
        let err = query(pb::ListAuditEntriesRequest {
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
