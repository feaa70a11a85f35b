//! Per-request context: the request span, the request id, metrics, the timeout, and a last
//! pass that turns any bare error response into a problem document.
//!
//! [`observe`] runs for every request after routing (so the matched route template is known):
//! - opens an `http` span whose parent is the caller's W3C `traceparent`, so the trace the
//!   client started continues through the gateway, the gRPC call (the client interceptor writes
//!   the span's context into metadata) and the service's Kafka event;
//! - makes the request id available to problem bodies ([`current_request_id`]) and to gRPC
//!   calls, through a task-local;
//! - records `http_requests_total` and `http_request_duration_seconds` labelled with the route
//!   *template* (never the raw path: ids in paths would make one time series per record);
//! - writes one access-log line per request (probes excepted).

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::error::{Error, PROBLEM_JSON, Problem};

/// The request id header, set by `SetRequestIdLayer` before [`observe`] runs.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label for requests that matched no route (404s): one series, whatever the path.
const UNMATCHED: &str = "unmatched";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `future` with `request_id` as the current request id (for work spawned off a request).
pub async fn with_request_id<F: Future>(request_id: Option<String>, future: F) -> F::Output {
    match request_id {
        Some(id) => REQUEST_ID.scope(id, future).await,
        None => future.await,
    }
}

/// Probes and scrapes: counted, but kept out of traces (they would drown real requests).
fn is_probe(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

/// The span, request id, metrics and problem normalisation of one request (see module docs).
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |p| p.as_str().to_string());
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();

    let probe = is_probe(&route);
    let span = if probe {
        tracing::Span::none()
    } else {
        tracing::info_span!(
            "http",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            method = method,
            route = %route,
            request_id = %request_id,
            trace_id = tracing::field::Empty,
            user_id = tracing::field::Empty,
            status = tracing::field::Empty,
        )
    };
    crm_telemetry::propagation::set_parent(
        &span,
        crm_telemetry::propagation::extract_http(request.headers()),
    );
    if let Some(trace_id) = span.in_scope(crm_telemetry::current_trace_id) {
        span.record("trace_id", trace_id);
    }

    let response = REQUEST_ID
        .scope(request_id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let response = REQUEST_ID.sync_scope(request_id, || problem_for_bare_error(response));

    let status = response.status();
    let elapsed = started.elapsed();
    span.record("status", status.as_u16());
    if !probe {
        // One access-log line per request; its span fields say which request it was.
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        span.in_scope(|| {
            if status.is_server_error() {
                tracing::warn!(status = status.as_u16(), elapsed_ms, "request failed");
            } else {
                tracing::info!(status = status.as_u16(), elapsed_ms, "request served");
            }
        });
    }
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    response
}

/// Standard methods by name; anything else is `OTHER`, so a client inventing methods cannot
/// create new time series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Longest client-chosen request id kept; longer or odd ones are replaced by a fresh UUID.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Drops a client's `x-request-id` that is too long or carries characters outside
/// `[A-Za-z0-9._:-]`: it goes into every log line and problem body of the request, so it must
/// stay a harmless token. `SetRequestIdLayer` then makes a new one.
pub async fn sanitize_request_id(mut request: Request, next: Next) -> Response {
    let acceptable = |v: &HeaderValue| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
    };
    let values: Vec<_> = request.headers().get_all(&X_REQUEST_ID).iter().collect();
    if values.len() > 1 || values.first().is_some_and(|v| !acceptable(v)) {
        request.headers_mut().remove(&X_REQUEST_ID);
    }
    next.run(request).await
}

/// Error responses from layers we do not control (a framework rejection, the docs UI's 404)
/// come without a body or as plain text: give them the same problem shape as ours.
fn problem_for_bare_error(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let mut problem = Problem::for_status(status).into_response();
    // Keep the headers that mean something for this status (Allow, WWW-Authenticate, …).
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// Bounds a whole request by `http.request_timeout_secs`; a request cut off answers 503.
pub async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_secs = limit.as_secs(), "request timed out");
            Error::Timeout {
                secs: limit.as_secs(),
            }
            .into_response()
        }
    }
}

/// `404` for paths that match no route.
pub async fn route_not_found() -> Error {
    Error::RouteNotFound
}

/// `405` for a known path with a method it does not serve (the router adds `Allow`).
pub async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }

    #[tokio::test]
    async fn request_ids_are_only_kept_when_harmless() {
        use axum::Router;
        use axum::routing::get;
        use tower::ServiceExt;

        let app = Router::new()
            .route(
                "/",
                get(|headers: axum::http::HeaderMap| async move {
                    headers
                        .get(&X_REQUEST_ID)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                }),
            )
            .layer(axum::middleware::from_fn(sanitize_request_id));
        for (given, kept) in [
            ("abc-123", true),
            ("3f0c6f0e-8f7b-4a43-9a39-2b8f9c5e1d11", true),
            ("has space", false),
            ("quote\"", false),
        ] {
            let request = axum::http::Request::get("/")
                .header(&X_REQUEST_ID, given)
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(body == given.as_bytes(), kept, "{given:?}");
        }
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        let request = axum::http::Request::get("/")
            .header(&X_REQUEST_ID, &long)
            .body(axum::body::Body::empty())
            .unwrap();
        let body =
            axum::body::to_bytes(app.oneshot(request).await.unwrap().into_body(), usize::MAX)
                .await
                .unwrap();
        assert!(body.is_empty());
    }
}
