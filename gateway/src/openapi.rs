//! The OpenAPI 3.1 document (`/api/v1/openapi.json`) and the docs page (`/api/v1/docs/`).
//!
//! Paths, bodies and parameters come from the `#[utoipa::path]` attributes on the handlers.
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

use crate::error::{PROBLEM_JSON, Problem, ProblemField};
use crate::model::{
    Account, AccountList, AccountPatch, Contact, ContactList, ContactPatch, ExportFormat, Grade,
    LifecycleStatus, NewAccount, NewContact, SortField, SortOrder,
};
use crate::routes::audit::{AuditEntry, AuditList};
use crate::routes::auth::{
    ClientCredentialsForm, ClientTokenResponse, LoginBody, RefreshBody, TokenResponse,
};
use crate::routes::{accounts, admin, audit, auth, contacts, me};

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
    paths(
        accounts::create, accounts::list, accounts::get, accounts::update, accounts::delete,
        accounts::export,
        contacts::create, contacts::list, contacts::get, contacts::update, contacts::delete,
        contacts::export,
        audit::list,
        admin::create_user, admin::get_user, admin::update_user, admin::set_status,
        admin::list_roles, admin::assign_role, admin::unassign_role, admin::share, admin::unshare,
        admin::get_org_settings, admin::update_org_settings,
        me::get, me::update,
        auth::login, auth::client_token, auth::oidc_start, auth::oidc_callback, auth::refresh, auth::logout, auth::jwks,
    ),
    components(schemas(
        Problem, ProblemField, Account, NewAccount, AccountPatch, AccountList, Contact, NewContact,
        ContactPatch, ContactList, ExportFormat, LifecycleStatus, Grade, SortField, SortOrder, LoginBody,
        RefreshBody, TokenResponse, ClientCredentialsForm, ClientTokenResponse, AuditEntry, AuditList,
        admin::AdminUser, admin::NewAdminUser, admin::StatusBody, admin::AdminRole,
        admin::AdminRoleList, admin::RoleBody, admin::UserRoles, admin::ShareBody,
        admin::ProfilePatch, admin::OrgSettings, admin::OrgSettingsBody, me::Profile,
    )),
    modifiers(&Conventions),
    tags(
        (name = "accounts", description = "Companies we sell to."),
        (name = "contacts", description = "People, usually working at an account."),
        (name = "admin", description = "Administering the organisation: users, roles, shares, the default time zone and language."),
        (name = "me", description = "Your own profile: display name, time zone and language."),
        (name = "audit", description = "Who did what, when and from where."),
        (name = "auth", description = "Signing in and out, and the keys that verify access tokens."),
    )
)]
pub struct ApiDoc;

/// The docs UI (assets vendored into the binary, so it works offline) serving [`ApiDoc`].
pub fn docs() -> SwaggerUi {
    SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, ApiDoc::openapi())
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

/// Whether an operation declares the `If-Match` header (a PUT with optimistic concurrency).
fn takes_if_match(operation: &utoipa::openapi::path::Operation) -> bool {
    operation.parameters.iter().flatten().any(|p| {
        matches!(p, RefOr::T(p) if p.name == "If-Match"
            && matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Header))
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
                if path.starts_with("/api/v1/auth/") || path.starts_with("/.well-known/") {
                    // Sign-in routes: no records, no preconditions, no idempotency keys.
                    if method == "post" {
                        statuses.extend([413, 415]);
                    }
                    statuses.retain(|s| path.starts_with("/api/") || *s >= 500);
                } else {
                    // Every API route declares a resource and action (see `authz`).
                    statuses.push(403);
                    match method {
                        "post" => statuses.extend([409, 413, 415, 422]),
                        "put" if takes_if_match(operation) => {
                            statuses.extend([409, 412, 413, 415, 428])
                        }
                        "put" => statuses.extend([409, 413, 415]),
                        "patch" => statuses.extend([409, 412, 413, 415, 428]),
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

    #[test]
    fn every_operation_documents_auth_and_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let paths = doc["paths"].as_object().unwrap();
        let mut operations = 0;
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                if path.starts_with("/api/v1/auth/") || path.starts_with("/.well-known/") {
                    // How one gets a token: no bearer token required.
                    assert!(op["security"].is_null(), "{method} {path} demands a token");
                    assert!(
                        op["responses"]["500"].is_object(),
                        "{method} {path} lacks 500"
                    );
                    continue;
                }
                assert!(op["security"].is_array(), "{method} {path} has no security");
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path} lacks 401"
                );
                assert!(
                    op["responses"]["400"].is_object(),
                    "{method} {path} lacks 400"
                );
            }
        }
        assert_eq!(operations, 33);
        let me = &paths["/api/v1/me"];
        assert!(me["get"]["security"].is_array() && me["patch"]["security"].is_array());
        assert!(me["patch"]["responses"]["428"].is_object());
        let settings = &paths["/api/v1/admin/organisation/settings"]["put"]["responses"];
        assert!(settings["412"].is_object() && settings["428"].is_object());
        assert!(
            paths["/api/v1/admin/users/{id}/status"]["put"]["responses"]["428"].is_null(),
            "no If-Match there"
        );
        assert!(paths["/api/v1/accounts"]["get"]["responses"]["403"].is_object());
        let login = &paths["/api/v1/auth/login"]["post"]["responses"];
        assert!(login["429"].is_object() && login["401"].is_object());
        assert!(login["422"].is_null(), "no idempotency keys on sign-in");
        assert!(paths["/api/v1/accounts/{id}"]["patch"]["responses"]["428"].is_object());
        assert!(paths["/api/v1/accounts"]["post"]["responses"]["422"].is_object());
        let problem = &doc["components"]["responses"]["Unauthorized"]["content"][PROBLEM_JSON];
        assert_eq!(problem["schema"]["$ref"], "#/components/schemas/Problem");
    }
}
