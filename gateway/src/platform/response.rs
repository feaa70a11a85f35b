//! Response helpers every domain shares: records as the caller may see them, `ETag`s,
//! `201 Created`, the page-size check.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_access::{Access, Action, Resource};
use crm_errors::FieldViolation;
use serde::Serialize;

use super::error::{Error, Result};

/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 200;

/// Leaves out of `value` (a JSON object) the fields the READ scope hides. The service already
/// emptied them; leaving the key out says "not yours to see" rather than "empty".
fn strip_hidden(value: &mut serde_json::Value, access: &Access, resource: Resource) {
    let (Some(scope), Some(object)) = (access.get(resource, Action::Read), value.as_object_mut())
    else {
        return;
    };
    for field in scope.hidden_fields() {
        object.remove(field);
    }
}

/// A record as the caller may see it (see [`strip_hidden`]).
pub fn visible<T: Serialize>(record: &T, access: &Access, resource: Resource) -> serde_json::Value {
    let mut value = serde_json::to_value(record).unwrap_or_default();
    strip_hidden(&mut value, access, resource);
    value
}

/// A page (`{"items": [...]}`) as the caller may see it.
pub fn visible_list<T: Serialize>(
    page: &T,
    access: &Access,
    resource: Resource,
) -> serde_json::Value {
    let mut value = serde_json::to_value(page).unwrap_or_default();
    if let Some(items) = value.get_mut("items").and_then(|i| i.as_array_mut()) {
        for item in items {
            strip_hidden(item, access, resource);
        }
    }
    value
}

/// The strong ETag of a version: `"3"`.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a valid header")
}

/// A single-record JSON response with its `ETag`.
pub fn with_etag<T: Serialize>(status: StatusCode, version: i64, body: &T) -> Response {
    (status, [(header::ETAG, etag(version))], axum::Json(body)).into_response()
}

/// `201 Created` with `Location` and `ETag`.
pub fn created<T: Serialize>(location: &str, version: i64, body: &T) -> Response {
    let mut response = with_etag(StatusCode::CREATED, version, body);
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `page_size` is documented as 1..=200; the service would clamp, but a client asking for 0 or
/// 10 000 has a bug worth telling it about.
pub fn check_page_size(page_size: Option<u32>) -> Result<()> {
    match page_size {
        Some(n) if !(1..=MAX_PAGE_SIZE).contains(&n) => {
            Err(Error::invalid(vec![FieldViolation::new(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            )]))
        }
        _ => Ok(()),
    }
}
