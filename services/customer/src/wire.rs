//! What the gRPC edges (`accounts/grpc.rs`, `contacts/grpc.rs`, `follow_ups/grpc.rs`) share:
//! the handlers' result type, the caller's access, times, lifecycle statuses, grades and sort
//! fields on the wire, optional text in patches, and export streams.
//!
//! The wire enums are parsed by free functions over `&mut Violations` (so `Violations` keeps
//! its one `impl`, in [`crate::validation`]).

use std::pin::Pin;

use crm_access::Access;
use crm_proto::customer as pb;
use crm_record::Table;
use crm_record::page::{Page, Sort};
use futures::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::record::domain::{Grade, LifecycleStatus};
use crate::record::list::ListQuery;
use crate::validation::Violations;

/// Rows per message of an export stream.
pub const EXPORT_PAGE_SIZE: i64 = 500;

/// What a gRPC handler returns.
pub type GrpcResult<T> = Result<Response<T>, Status>;

/// A server stream of list pages.
pub type PageStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The user the call acts for, as the verified call token bound it (ADR 0012); a service
/// calling as itself gets no records.
pub fn access<T>(request: &Request<T>) -> Result<Access, Status> {
    Ok(crm_identity::user_access(request)?)
}

/// A stored time as a `google.protobuf.Timestamp`.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A `google.protobuf.Timestamp` from a request, at the precision Postgres keeps
/// (microseconds); `None` when unset. One outside what a date can be is a violation of `field`.
pub fn time(
    v: &mut Violations,
    field: &str,
    raw: Option<prost_types::Timestamp>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::SubsecRound;
    let raw = raw?;
    let parsed = u32::try_from(raw.nanos)
        .ok()
        .and_then(|nanos| chrono::DateTime::from_timestamp(raw.seconds, nanos));
    if parsed.is_none() {
        v.add(field, "is not a valid time");
    }
    parsed.map(|t| t.trunc_subsecs(6))
}

impl From<LifecycleStatus> for pb::LifecycleStatus {
    fn from(s: LifecycleStatus) -> Self {
        match s {
            LifecycleStatus::Prospect => pb::LifecycleStatus::Prospect,
            LifecycleStatus::Active => pb::LifecycleStatus::Active,
            LifecycleStatus::Inactive => pb::LifecycleStatus::Inactive,
            LifecycleStatus::Churned => pb::LifecycleStatus::Churned,
        }
    }
}

pub fn grade_pb(g: Option<Grade>) -> pb::Grade {
    match g {
        None => pb::Grade::Unspecified,
        Some(Grade::A) => pb::Grade::A,
        Some(Grade::B) => pb::Grade::B,
        Some(Grade::C) => pb::Grade::C,
        Some(Grade::D) => pb::Grade::D,
    }
}

/// `None` for UNSPECIFIED (the caller's default applies); unknown numbers are violations.
pub fn status(v: &mut Violations, field: &str, raw: i32) -> Option<LifecycleStatus> {
    match pb::LifecycleStatus::try_from(raw) {
        Ok(pb::LifecycleStatus::Unspecified) => None,
        Ok(pb::LifecycleStatus::Prospect) => Some(LifecycleStatus::Prospect),
        Ok(pb::LifecycleStatus::Active) => Some(LifecycleStatus::Active),
        Ok(pb::LifecycleStatus::Inactive) => Some(LifecycleStatus::Inactive),
        Ok(pb::LifecycleStatus::Churned) => Some(LifecycleStatus::Churned),
        Err(_) => {
            v.add(field, "unknown lifecycle status");
            None
        }
    }
}

/// A status in a patch: it can change, but not be cleared.
pub fn status_change(v: &mut Violations, raw: i32) -> Option<LifecycleStatus> {
    let parsed = status(v, "lifecycle_status", raw);
    if parsed.is_none() && raw == 0 {
        v.add("lifecycle_status", "cannot be cleared");
    }
    parsed
}

pub fn grade(v: &mut Violations, field: &str, raw: i32) -> Option<Grade> {
    match pb::Grade::try_from(raw) {
        Ok(pb::Grade::Unspecified) => None,
        Ok(pb::Grade::A) => Some(Grade::A),
        Ok(pb::Grade::B) => Some(Grade::B),
        Ok(pb::Grade::C) => Some(Grade::C),
        Ok(pb::Grade::D) => Some(Grade::D),
        Err(_) => {
            v.add(field, "unknown grade");
            None
        }
    }
}

/// A list's sort for the records of `table`: `TIME` only where they have a time of their own.
pub fn sort(raw: i32, v: &mut Violations, table: &Table) -> Sort {
    match pb::SortField::try_from(raw) {
        Ok(pb::SortField::Unspecified | pb::SortField::CreatedAt) => Sort::CreatedAt,
        Ok(pb::SortField::UpdatedAt) => Sort::UpdatedAt,
        Ok(pb::SortField::Name) => Sort::Name,
        Ok(pb::SortField::Time) if table.sorts_by_time() => Sort::Time,
        Ok(pb::SortField::Time) => {
            v.add(
                "sort",
                format!("{} have no time of their own to sort by", table.name),
            );
            Sort::CreatedAt
        }
        Err(_) => {
            v.add("sort", "unknown sort field");
            Sort::CreatedAt
        }
    }
}

/// Optional text in a patch: `None` unchanged, `Some(None)` cleared, `Some(Some(v))` set.
pub fn patch_text(
    v: &mut Violations,
    raw: Option<String>,
    check: impl FnOnce(&mut Violations, &str) -> Option<String>,
) -> Option<Option<String>> {
    raw.map(|s| check(v, &s))
}

/// A request's `id`, alone.
pub fn parse_id(raw: &str) -> Result<Uuid, Status> {
    let mut v = Violations::default();
    let id = v.id(raw);
    v.into_result()?;
    Ok(id)
}

/// An export: pages of [`EXPORT_PAGE_SIZE`] fetched one at a time, as the client reads them
/// (a slow reader holds no rows in memory and no connection between pages).
pub fn export<R, T, F, Fut>(mut query: ListQuery, fetch: F, wrap: fn(Vec<R>) -> T) -> PageStream<T>
where
    R: Send + 'static,
    T: Send + 'static,
    F: Fn(ListQuery) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = crate::error::Result<Page<R>>> + Send,
{
    query.keyset.page_size = EXPORT_PAGE_SIZE;
    Box::pin(futures::stream::unfold(Some(query), move |state| {
        let fetch = fetch.clone();
        async move {
            let query = state?;
            match fetch(query.clone()).await {
                Ok(page) => {
                    let next = page.last.as_ref().map(|last| {
                        let mut query = query;
                        query.keyset.advance(last);
                        query
                    });
                    Some((Ok(wrap(page.items)), next))
                }
                Err(err) => Some((Err(err.into()), None)),
            }
        }
    }))
}

/// Custom values sent as a JSON object (`custom_json`; empty: none). Anything else is a
/// violation of `custom`; values are checked against the definitions later, in the write.
pub fn custom_in(v: &mut Violations, raw: &str) -> crm_fields::Input {
    if raw.trim().is_empty() {
        return crm_fields::Input::new();
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => {
            v.add("custom", "must be a JSON object of custom field values");
            crm_fields::Input::new()
        }
    }
}

/// Custom values on the wire: a JSON object (`{}` when there are none).
pub fn custom_out(values: &crm_fields::Values) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "{}".into())
}
