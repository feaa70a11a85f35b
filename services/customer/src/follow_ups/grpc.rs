//! The gRPC edge of follow-ups: the follow-up RPCs of `crm.customer.v1.CustomerService`, as
//! functions the service's one implementation ([`crate::grpc::CustomerApi`]) delegates to.
//! Converts wire types into validated domain values (all violations of a request reported at
//! once), calls [`FollowUps`] and converts the answer back.

use crm_access::Action;
use crm_proto::customer as pb;
use crm_record::Record;
use tonic::{Request, Response};

use super::domain::{FollowUp, FollowUpKind, FollowUpPatch, NewFollowUp};
use super::service::FollowUps;
use crate::record::list::{ListQuery, RawListQuery};
use crate::validation::{MAX_LONG, MAX_NAME, Violations};
use crate::wire::{
    self, GrpcResult, PageStream, access, parse_id, patch_text, sort, time, timestamp,
};

impl From<FollowUpKind> for pb::FollowUpKind {
    fn from(k: FollowUpKind) -> Self {
        match k {
            FollowUpKind::Call => pb::FollowUpKind::Call,
            FollowUpKind::Meeting => pb::FollowUpKind::Meeting,
            FollowUpKind::Visit => pb::FollowUpKind::Visit,
            FollowUpKind::Note => pb::FollowUpKind::Note,
            FollowUpKind::Email => pb::FollowUpKind::Email,
        }
    }
}

/// A kind from the wire: required (UNSPECIFIED and unknown numbers are violations).
fn kind(v: &mut Violations, raw: i32) -> Option<FollowUpKind> {
    let kind = match pb::FollowUpKind::try_from(raw) {
        Ok(pb::FollowUpKind::Call) => Some(FollowUpKind::Call),
        Ok(pb::FollowUpKind::Meeting) => Some(FollowUpKind::Meeting),
        Ok(pb::FollowUpKind::Visit) => Some(FollowUpKind::Visit),
        Ok(pb::FollowUpKind::Note) => Some(FollowUpKind::Note),
        Ok(pb::FollowUpKind::Email) => Some(FollowUpKind::Email),
        Ok(pb::FollowUpKind::Unspecified) | Err(_) => None,
    };
    if kind.is_none() {
        v.add("kind", "must be one of call, meeting, visit, note, email");
    }
    kind
}

impl From<FollowUp> for pb::FollowUp {
    fn from(f: FollowUp) -> Self {
        pb::FollowUp {
            id: f.id.to_string(),
            account_id: f.account_id.to_string(),
            contact_id: f.contact_id.map(|c| c.to_string()).unwrap_or_default(),
            kind: pb::FollowUpKind::from(f.kind) as i32,
            subject: f.subject,
            content: f.content.unwrap_or_default(),
            outcome: f.outcome.unwrap_or_default(),
            occurred_at: Some(timestamp(f.occurred_at)),
            next_follow_up_at: f.next_follow_up_at.map(timestamp),
            owner_id: f.owner_id.to_string(),
            department_id: f.department_id.map(|d| d.to_string()).unwrap_or_default(),
            version: f.version,
            created_at: Some(timestamp(f.created_at)),
            updated_at: Some(timestamp(f.updated_at)),
        }
    }
}

pub async fn create(
    follow_ups: &FollowUps,
    request: Request<pb::CreateFollowUpRequest>,
) -> GrpcResult<pb::FollowUp> {
    let access = access(&request)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let new = NewFollowUp {
        account_id: v.uuid("account_id", &r.account_id).unwrap_or_default(),
        contact_id: v.optional_id("contact_id", &r.contact_id),
        kind: kind(&mut v, r.kind).unwrap_or(FollowUpKind::Note),
        subject: v.required("subject", &r.subject, MAX_NAME),
        content: v.long_text("content", &r.content, MAX_LONG),
        outcome: v.optional("outcome", &r.outcome, MAX_NAME),
        occurred_at: time(&mut v, "occurred_at", r.occurred_at),
        next_follow_up_at: time(&mut v, "next_follow_up_at", r.next_follow_up_at),
        owner_id: v.owner(&r.owner_id, access.user_id),
        department_id: v.optional_id("department_id", &r.department_id),
    };
    v.into_result()?;
    Ok(Response::new(follow_ups.create(&access, new).await?.into()))
}

pub async fn get(
    follow_ups: &FollowUps,
    request: Request<pb::GetFollowUpRequest>,
) -> GrpcResult<pb::FollowUp> {
    let access = access(&request)?;
    let id = parse_id(&request.get_ref().id)?;
    Ok(Response::new(follow_ups.get(&access, id).await?.into()))
}

pub async fn update(
    follow_ups: &FollowUps,
    request: Request<pb::UpdateFollowUpRequest>,
) -> GrpcResult<pb::FollowUp> {
    let access = access(&request)?;
    let r = request.into_inner();
    let mut v = Violations::default();
    let id = v.id(&r.id);
    let expected = v.version("expected_version", r.expected_version);
    let next_follow_up_at = match (r.clear_next_follow_up, r.next_follow_up_at) {
        (true, _) => Some(None),
        (false, Some(t)) => time(&mut v, "next_follow_up_at", Some(t)).map(Some),
        (false, None) => None,
    };
    let patch = FollowUpPatch {
        contact_id: r.contact_id.map(|c| v.optional_id("contact_id", &c)),
        kind: r.kind.and_then(|k| kind(&mut v, k)),
        subject: r.subject.map(|s| v.required("subject", &s, MAX_NAME)),
        content: patch_text(&mut v, r.content, |v, s| {
            v.long_text("content", s, MAX_LONG)
        }),
        outcome: patch_text(&mut v, r.outcome, |v, s| v.optional("outcome", s, MAX_NAME)),
        occurred_at: time(&mut v, "occurred_at", r.occurred_at),
        next_follow_up_at,
        owner_id: r
            .owner_id
            .map(|o| v.uuid("owner_id", &o).unwrap_or_default()),
        department_id: r.department_id.map(|d| v.optional_id("department_id", &d)),
    };
    v.into_result()?;
    Ok(Response::new(
        follow_ups
            .update(&access, id, expected, patch)
            .await?
            .into(),
    ))
}

pub async fn delete(
    follow_ups: &FollowUps,
    request: Request<pb::DeleteFollowUpRequest>,
) -> GrpcResult<pb::DeleteFollowUpResponse> {
    let access = access(&request)?;
    let r = request.into_inner();
    let id = parse_id(&r.id)?;
    let expected = (r.expected_version != 0).then_some(r.expected_version);
    let version = follow_ups.delete(&access, id, expected).await?;
    Ok(Response::new(pb::DeleteFollowUpResponse {
        id: id.to_string(),
        version,
    }))
}

/// The filters and paging of a list (an export is a list without paging): no tags or
/// statuses, which follow-ups have neither of.
fn query(r: &pb::ListFollowUpsRequest) -> Result<ListQuery, tonic::Status> {
    let mut v = Violations::default();
    let sort = sort(r.sort, &mut v, &super::store::FOLLOW_UP_TABLE);
    v.into_result()?;
    Ok(ListQuery::parse(RawListQuery {
        page_size: r.page_size,
        page_token: &r.page_token,
        owner_id: &r.owner_id,
        tag: "",
        status: None,
        text: &r.query,
        sort,
        descending: r.descending,
        account_id: &r.account_id,
        filter: &r.filter,
    })?)
}

pub async fn list(
    follow_ups: &FollowUps,
    request: Request<pb::ListFollowUpsRequest>,
) -> GrpcResult<pb::ListFollowUpsResponse> {
    let access = access(&request)?;
    let r = request.into_inner();
    let query = query(&r)?;
    let page = follow_ups
        .list(&access, Action::Read, &query, r.include_total)
        .await?;
    Ok(Response::new(pb::ListFollowUpsResponse {
        follow_ups: page.items.into_iter().map(Into::into).collect(),
        next_page_token: page.next_page_token.unwrap_or_default(),
        total_size: page.total.unwrap_or_default(),
    }))
}

pub async fn export(
    follow_ups: &FollowUps,
    request: Request<pb::ExportFollowUpsRequest>,
) -> GrpcResult<PageStream<pb::ListFollowUpsResponse>> {
    let access = access(&request)?;
    access.scope(FollowUp::RESOURCE, Action::Export)?;
    let r = request.into_inner();
    let query = query(&pb::ListFollowUpsRequest {
        account_id: r.account_id,
        owner_id: r.owner_id,
        query: r.query,
        sort: r.sort,
        descending: r.descending,
        filter: r.filter,
        ..Default::default()
    })?;
    let follow_ups = follow_ups.clone();
    Ok(Response::new(wire::export(
        query,
        move |q| {
            let (follow_ups, access) = (follow_ups.clone(), access.clone());
            async move { follow_ups.list(&access, Action::Export, &q, false).await }
        },
        |items| pb::ListFollowUpsResponse {
            follow_ups: items.into_iter().map(Into::into).collect(),
            ..Default::default()
        },
    )))
}
