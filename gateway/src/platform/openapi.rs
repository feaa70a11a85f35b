//! The OpenAPI 3.1 document (`/api/v1/openapi.json`) and the docs page (`/api/v1/docs/`).
//!
//! Paths, bodies and parameters come from the domains' routers: the `#[utoipa::path]`
//! attributes on their handlers and the record routes ([`super::records`]), collected with the
//! routes themselves, so a route cannot be served undocumented. Which grant a route needs is
//! written by its guard (`x-crm-permission`, see [`crate::security`]).
//! The error responses are the same few problem documents everywhere, so `Conventions` adds
//! them to every operation from one table (which status each kind of operation can answer)
//! instead of repeating them on every handler, where they would drift.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::error::{PROBLEM_JSON, Problem, ProblemField};

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
pub const DOCS_PATH: &str = "/api/v1/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CRM API",
        version = "1.0.0",
        description = "The CRM's public REST API.\n\n\
            - Authenticate with `Authorization: Bearer <JWT>`.\n\
            - Errors are RFC 7807 `application/problem+json` documents with a stable `code` and, \
              for invalid input, one `errors[]` entry per field.\n\
            - Single records carry `ETag: \"<version>\"`; PATCH requires `If-Match`.\n\
            - POST accepts `Idempotency-Key` for safe retries.\n\
            - Every response carries `x-request-id` (sent back as given, or made up); quote it when \
              reporting a problem. A W3C `traceparent` header continues the caller's trace."
    ),
    components(schemas(Problem, ProblemField))
)]
pub struct ApiDoc;

/// The whole document: the API's description, every domain's operations (`domains`, as their
/// routers collected them) and the shared conventions.
pub fn document(domains: Document) -> Document {
    let mut doc = ApiDoc::openapi().merge_from(domains);
    Conventions.modify(&mut doc);
    doc
}

/// The docs UI (assets vendored into the binary, so it works offline) serving `doc`.
pub fn docs(doc: Document) -> SwaggerUi {
    SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, doc)
}

/// Adds the bearer scheme and the shared error responses (see the module docs).
struct Conventions;

/// Reusable error responses: component name, status, description.
const ERRORS: &[(&str, u16, &str)] = &[
    (
        "BadRequest",
        400,
        "Invalid input: malformed JSON, a wrong type, an unknown field or parameter, or a value the service refuses. `errors[]` names each bad field.",
    ),
    (
        "Unauthorized",
        401,
        "Missing, malformed, expired or otherwise invalid bearer token.",
    ),
    (
        "Forbidden",
        403,
        "Your roles do not grant this action on this resource, or not on this record (`permission_denied`); writes to fields you may not change name them in `errors[]`.",
    ),
    (
        "NotFound",
        404,
        "No such record, it was deleted, or it is outside what you may see (the three are not told apart).",
    ),
    (
        "Conflict",
        409,
        "The record's state forbids this (`failed_precondition`), it already exists (`already_exists`), or a request with the same `Idempotency-Key` is still running (`conflict`, with `Retry-After`).",
    ),
    (
        "PreconditionFailed",
        412,
        "`If-Match` names a version that is no longer current (`version_conflict`): reload and retry.",
    ),
    (
        "UnsupportedMediaType",
        415,
        "The body is not sent as `application/json`.",
    ),
    (
        "PayloadTooLarge",
        413,
        "The body is larger than the configured limit.",
    ),
    (
        "IdempotencyMismatch",
        422,
        "This `Idempotency-Key` was already used with a different request (`idempotency_mismatch`).",
    ),
    (
        "PreconditionRequired",
        428,
        "`If-Match` is required (`precondition_required`).",
    ),
    (
        "TooManyRequests",
        429,
        "Over the caller's request quota, or too many failed sign-ins for a username: wait the `Retry-After` seconds. Every response carries `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy`.",
    ),
    (
        "InternalError",
        500,
        "An unexpected failure; details are in the logs under the `request_id`.",
    ),
    (
        "ServiceUnavailable",
        503,
        "A service or store the request needs is unavailable, or the request timed out: retry later.",
    ),
];

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .build()
}

/// Whether an operation declares the `If-Match` header (a PUT with optimistic concurrency), and
/// whether it is required (a DELETE of a part of a record, which changes the record).
fn if_match(operation: &utoipa::openapi::path::Operation) -> Option<bool> {
    operation.parameters.iter().flatten().find_map(|p| match p {
        RefOr::T(p)
            if p.name == "If-Match"
                && matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Header) =>
        {
            Some(matches!(p.required, utoipa::openapi::Required::True))
        }
        _ => None,
    })
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Components::new);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        for (name, status, description) in ERRORS {
            let mut response = ResponseBuilder::new().description(*description).content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            );
            response = match status {
                401 => response.header(
                    "WWW-Authenticate",
                    string_header("`Bearer realm=\"crm\"`, with `error=\"invalid_token\"` and a description for a bad token"),
                ),
                409 => response.header("Retry-After", string_header("Seconds to wait, when a duplicate request is in progress")),
                429 => response.header("Retry-After", string_header("Seconds to wait before trying again")),
                _ => response,
            };
            components
                .responses
                .insert(name.to_string(), RefOr::T(response.build()));
        }

        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_id = path.contains('{');
            let operations = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                // 429: every route spends the caller's quota (see `rate_limit`).
                let mut statuses = vec![400, 401, 429, 500, 503];
                if has_id {
                    statuses.push(404);
                }
                // Guards mark every operation that needs a token (see `crate::security`).
                if operation.security.is_none() {
                    // Sign-in routes: no records, no preconditions, no idempotency keys.
                    if method == "post" {
                        statuses.extend([413, 415]);
                    }
                    statuses.retain(|s| path.starts_with("/api/") || *s >= 500);
                } else {
                    // A grant refused (`x-crm-permission`), or a field the caller may not write.
                    statuses.push(403);
                    match method {
                        "post" => statuses.extend([409, 413, 415, 422]),
                        "put" if if_match(operation).is_some() => {
                            statuses.extend([409, 412, 413, 415, 428])
                        }
                        "put" => statuses.extend([409, 413, 415]),
                        "patch" => statuses.extend([409, 412, 413, 415, 428]),
                        "delete" if if_match(operation) == Some(true) => {
                            statuses.extend([409, 412, 428])
                        }
                        "delete" => statuses.extend([409, 412]),
                        _ => {}
                    }
                }
                for status in statuses {
                    let (name, _, _) = ERRORS
                        .iter()
                        .find(|(_, s, _)| *s == status)
                        .expect("known status");
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
    use utoipa::openapi::security::SecurityRequirement;

    /// The conventions read what guards wrote: an open operation gets no 401 or 403, a guarded
    /// one gets both, a guarded PATCH the If-Match answers. (The whole document is walked
    /// against a running gateway in `tests/api/openapi.rs`.)
    #[test]
    fn errors_follow_the_guards() {
        let open = OperationBuilder::new().build();
        let guarded = OperationBuilder::new()
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            .build();
        let mut domains = Document::default();
        domains.paths = PathsBuilder::new()
            .path("/api/v1/auth/login", PathItem::new(HttpMethod::Post, open))
            .path(
                "/api/v1/things/{id}",
                PathItem::new(HttpMethod::Patch, guarded),
            )
            .build();
        let doc = serde_json::to_value(document(domains)).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let login = &doc["paths"]["/api/v1/auth/login"]["post"]["responses"];
        assert!(login["401"].is_object() && login["429"].is_object() && login["415"].is_object());
        assert!(login["403"].is_null() && login["422"].is_null());
        let patch = &doc["paths"]["/api/v1/things/{id}"]["patch"]["responses"];
        for status in ["401", "403", "404", "412", "428"] {
            assert!(patch[status].is_object(), "{status}");
        }
    }
}
