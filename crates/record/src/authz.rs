//! The decisions of ADR 0009 over one record, the same for every record type.

use crm_access::{Access, Action, Scope};
use crm_errors::{ApiError, Code};
use uuid::Uuid;

use crate::{Place, Record};

/// `NOT_FOUND` for a record of type `R`: the same answer for "never existed", "deleted" and
/// "outside your READ scope", so walking ids reveals nothing.
pub fn not_found<R: Record>() -> ApiError {
    ApiError::not_found(R::KIND)
}

/// Whether the caller's READ scope covers `record` (sharing included): what another record
/// may point at, and what exists for them at all.
pub fn readable<R: Record>(access: &Access, record: &R) -> bool {
    access
        .get(R::RESOURCE, Action::Read)
        .is_some_and(|s| covers(s, record))
}

fn covers<R: Record>(scope: &Scope, record: &R) -> bool {
    let (owner, department) = record.place();
    scope.covers_record(record.id(), owner, department, |f| record.attribute(f))
}

/// Reads go by the READ scope: a record outside it does not exist for the caller (404, never
/// 403). Other actions then need their own scope to cover it (403).
pub fn authorize<R: Record>(access: &Access, action: Action, record: &R) -> Result<(), ApiError> {
    if !readable(access, record) {
        return Err(not_found::<R>());
    }
    if action != Action::Read && !covers(access.scope(R::RESOURCE, action)?, record) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            format!("you may not {action} this {}", R::KIND),
        ));
    }
    Ok(())
}

/// Moving a record to another owner or department is an assignment: ASSIGN must cover it
/// where it is and where it goes.
pub fn authorize_move<R: Record>(
    access: &Access,
    before: Place,
    after: Place,
) -> Result<(), ApiError> {
    if before == after {
        return Ok(());
    }
    let scope = access.scope(R::RESOURCE, Action::Assign)?;
    if !scope.covers(before.0, before.1) || !scope.covers(after.0, after.1) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            format!(
                "you may not move this {} to that owner or department",
                R::KIND
            ),
        ));
    }
    Ok(())
}

/// A new record must land inside the CREATE scope, setting editable fields only.
pub fn authorize_create<R: Record>(
    access: &Access,
    place: Place,
    fields: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<(), ApiError> {
    let scope = access.scope(R::RESOURCE, Action::Create)?;
    let fields: Vec<_> = fields.into_iter().collect();
    scope.check_writable(fields.iter().map(AsRef::as_ref))?;
    if !scope.covers(place.0, place.1) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            format!(
                "you may not create a {} for that owner or department",
                R::KIND
            ),
        ));
    }
    Ok(())
}

/// A record as the caller sees it: the READ field rules (or, for a caller who may write but
/// not read, those of the action they did).
pub fn shown<R: Record>(access: &Access, action: Action, mut record: R) -> R {
    let scope = access
        .get(R::RESOURCE, Action::Read)
        .or_else(|| access.get(R::RESOURCE, action));
    if let Some(scope) = scope {
        record.redact(scope);
    }
    record
}

/// Where the caller's new records go unless told otherwise: their primary department.
pub fn default_department<R: Record>(access: &Access, given: Option<Uuid>) -> Option<Uuid> {
    given.or_else(|| {
        access
            .get(R::RESOURCE, Action::Create)
            .and_then(|s| s.primary_department_id)
    })
}
