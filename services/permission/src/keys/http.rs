//! The HTTP edge of the keys, served next to `/healthz`, `/readyz` and `/metrics`: the public
//! key set.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::KeyRing;

pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Verifiers may cache the key set this long. A key is published from the moment it is made, so
/// a verifier meeting an unknown `kid` should fetch the set again (at most this often).
pub const JWKS_MAX_AGE_SECS: u32 = 60;

pub fn router(keys: KeyRing) -> Router {
    Router::new().route(JWKS_PATH, get(jwks)).with_state(keys)
}

async fn jwks(State(keys): State<KeyRing>) -> Response {
    match keys.jwks().await {
        Ok(json) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}"))
                        .expect("a valid header value"),
                ),
            ],
            json,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot serve the key set");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
                "key set unavailable",
            )
                .into_response()
        }
    }
}
