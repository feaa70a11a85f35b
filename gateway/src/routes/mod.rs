//! The `/api/v1` routes and the response helpers they share.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod contacts;
pub mod export;
pub mod me;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use crm_access::{Access, Action, Resource};
use crm_errors::FieldViolation;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::idempotency::idempotency;
use crate::model::MAX_PAGE_SIZE;
use crate::startup::AppState;

/// Every API route. Idempotency wraps only the POST method routers: it needs the body, and only
/// creates are not naturally idempotent (PATCH and DELETE are guarded by `If-Match`).
pub fn api_router(state: AppState) -> Router<AppState> {
    let idem = || from_fn_with_state(state.clone(), idempotency);
    use crm_access::{Action as A, Resource as R};
    let permit =
        |resource, action, also| crate::authz::permit(state.clone(), resource, action, also);
    // What a write returns is shown with the READ field rules; moves need ASSIGN; a contact's
    // account must be one the caller may read.
    const ACCOUNT_READ: &[(R, A)] = &[(R::Account, A::Read)];
    const ACCOUNT_UPDATE: &[(R, A)] = &[(R::Account, A::Read), (R::Account, A::Assign)];
    const CONTACT_CREATE: &[(R, A)] = &[(R::Contact, A::Read), (R::Account, A::Read)];
    const CONTACT_UPDATE: &[(R, A)] = &[
        (R::Contact, A::Read),
        (R::Contact, A::Assign),
        (R::Account, A::Read),
    ];
    const CONTACT_READ: &[(R, A)] = &[(R::Contact, A::Read)];
    Router::new()
        .route(
            "/api/v1/accounts",
            post(accounts::create)
                .route_layer(idem())
                .route_layer(permit(R::Account, A::Create, ACCOUNT_READ))
                .merge(get(accounts::list).route_layer(permit(R::Account, A::Read, &[]))),
        )
        .route(
            "/api/v1/accounts/export",
            get(accounts::export).route_layer(permit(R::Account, A::Export, &[])),
        )
        .route(
            "/api/v1/accounts/{id}",
            get(accounts::get)
                .route_layer(permit(R::Account, A::Read, &[]))
                .merge(patch(accounts::update).route_layer(permit(
                    R::Account,
                    A::Update,
                    ACCOUNT_UPDATE,
                )))
                .merge(delete(accounts::delete).route_layer(permit(
                    R::Account,
                    A::Delete,
                    ACCOUNT_READ,
                ))),
        )
        .route(
            "/api/v1/contacts",
            post(contacts::create)
                .route_layer(idem())
                .route_layer(permit(R::Contact, A::Create, CONTACT_CREATE))
                .merge(get(contacts::list).route_layer(permit(R::Contact, A::Read, &[]))),
        )
        .route(
            "/api/v1/contacts/export",
            get(contacts::export).route_layer(permit(R::Contact, A::Export, &[])),
        )
        .route(
            "/api/v1/contacts/{id}",
            get(contacts::get)
                .route_layer(permit(R::Contact, A::Read, &[]))
                .merge(patch(contacts::update).route_layer(permit(
                    R::Contact,
                    A::Update,
                    CONTACT_UPDATE,
                )))
                .merge(delete(contacts::delete).route_layer(permit(
                    R::Contact,
                    A::Delete,
                    CONTACT_READ,
                ))),
        )
        .route(
            "/api/v1/audit",
            get(audit::list).route_layer(permit(R::Audit, A::Read, &[])),
        )
        .route(
            "/api/v1/admin/users",
            post(admin::create_user).route_layer(permit(R::Organisation, A::Create, &[])),
        )
        .route(
            "/api/v1/admin/users/{id}",
            get(admin::get_user)
                .route_layer(permit(R::Organisation, A::Read, &[]))
                .merge(patch(admin::update_user).route_layer(permit(
                    R::Organisation,
                    A::Update,
                    &[],
                ))),
        )
        .route(
            "/api/v1/admin/organisation/settings",
            get(admin::get_org_settings)
                .route_layer(permit(R::Organisation, A::Read, &[]))
                .merge(put(admin::update_org_settings).route_layer(permit(
                    R::Organisation,
                    A::Update,
                    &[],
                ))),
        )
        // The caller's own profile: any signed-in user, no grant (see `authz::signed_in`).
        .route(
            "/api/v1/me",
            get(me::get)
                .merge(patch(me::update))
                .route_layer(crate::authz::signed_in(state.clone())),
        )
        .route(
            "/api/v1/admin/users/{id}/status",
            put(admin::set_status).route_layer(permit(R::Organisation, A::Update, &[])),
        )
        .route(
            "/api/v1/admin/users/{id}/roles",
            post(admin::assign_role).route_layer(permit(R::Organisation, A::Update, &[])),
        )
        .route(
            "/api/v1/admin/users/{id}/roles/{role_id}",
            delete(admin::unassign_role).route_layer(permit(R::Organisation, A::Update, &[])),
        )
        .route(
            "/api/v1/admin/roles",
            get(admin::list_roles).route_layer(permit(R::Organisation, A::Read, &[])),
        )
        .route(
            "/api/v1/admin/shares",
            post(admin::share).route_layer(permit(R::Organisation, A::Update, &[])),
        )
        .route(
            "/api/v1/admin/shares/{resource}/{record_id}/{user_id}",
            delete(admin::unshare).route_layer(permit(R::Organisation, A::Update, &[])),
        )
        // Sign-in: no bearer token, no Idempotency-Key (see `auth`).
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/token", post(auth::client_token))
        .route("/api/v1/auth/oidc/{provider}/start", get(auth::oidc_start))
        .route(
            "/api/v1/auth/oidc/{provider}/callback",
            get(auth::oidc_callback),
        )
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .layer(from_fn_with_state(state, crate::rate_limit::rate_limit))
}

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
