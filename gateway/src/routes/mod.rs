//! The `/api/v1` routes and the response helpers they share.

pub mod accounts;
pub mod auth;
pub mod contacts;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    Router::new()
        .route(
            "/api/v1/accounts",
            post(accounts::create)
                .route_layer(idem())
                .get(accounts::list),
        )
        .route(
            "/api/v1/accounts/{id}",
            get(accounts::get)
                .patch(accounts::update)
                .delete(accounts::delete),
        )
        .route(
            "/api/v1/contacts",
            post(contacts::create)
                .route_layer(idem())
                .get(contacts::list),
        )
        .route(
            "/api/v1/contacts/{id}",
            get(contacts::get)
                .patch(contacts::update)
                .delete(contacts::delete),
        )
        // Sign-in: no bearer token, no Idempotency-Key (see `auth`).
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .layer(from_fn_with_state(state, crate::rate_limit::rate_limit))
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
