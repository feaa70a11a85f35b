//! The identity domain, served by the permission service: signing in ([`auth`]), one's own
//! profile ([`me`]), administering the organisation — users ([`admin`]), their place in it
//! ([`user_org`]), departments ([`departments`]), roles with their grants and field rules
//! ([`roles`]), sharing ([`sharing`]) and API clients ([`api_clients`]) — and the audit trail
//! ([`audit`]).
//!
//! Administration needs the `organisation` grants: `read` to look, `create` to make a user,
//! department, role, sharing rule or API client, `delete` to delete a department, role or
//! sharing rule, and `update` for every other change (a grant, a field rule, a membership, a
//! share, a status, a password, a secret).

pub mod admin;
pub mod api_clients;
pub mod audit;
pub mod auth;
pub mod departments;
pub mod me;
pub mod resources;
pub mod roles;
pub mod sharing;
pub mod user_org;
pub mod vocabulary;

use axum::extract::FromRef;
use crm_access::{Action as A, Resource as R};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::security::Security;
use crate::upstream::permission::PermissionService;

#[derive(OpenApi)]
#[openapi(tags(
    (name = "admin", description = "Administering the organisation: users, departments, roles with their grants and field rules, sharing, API clients, the default time zone and language. Needs the `organisation` grants."),
    (name = "me", description = "Your own profile: display name, time zone and language."),
    (name = "audit", description = "Who did what, when and from where."),
    (name = "auth", description = "Signing in and out, and the keys that verify access tokens."),
))]
struct Tags;

/// The domain's routes and their OpenAPI operations.
pub fn routes<S>(security: &Security) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    PermissionService: FromRef<S>,
{
    let s = security;
    OpenApiRouter::with_openapi(Tags::openapi())
        // Sign-in: no bearer token, no Idempotency-Key (see `auth`).
        .routes(s.public(routes!(auth::login)))
        .routes(s.public(routes!(auth::client_token)))
        .routes(s.public(routes!(auth::oidc_start)))
        .routes(s.public(routes!(auth::oidc_callback)))
        .routes(s.public(routes!(auth::refresh)))
        .routes(s.public(routes!(auth::logout)))
        .routes(s.public(routes!(auth::jwks)))
        // The caller's own profile: any signed-in user, no grant.
        .routes(s.signed_in(routes!(me::get, me::update)))
        .routes(s.permit(R::AUDIT, A::Read, &[], routes!(audit::list)))
        .merge(admin(s))
}

/// `/api/v1/admin`: everything needs an `organisation` grant (see the module docs). Creates
/// take `Idempotency-Key`, except an API client's (its answer carries the secret).
fn admin<S>(s: &Security) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    PermissionService: FromRef<S>,
{
    const O: R = R::ORGANISATION;
    let read = |routes| s.permit(O, A::Read, &[], routes);
    let create = |routes| s.permit(O, A::Create, &[], s.idempotent(routes));
    let update = |routes| s.permit(O, A::Update, &[], routes);
    let delete = |routes| s.permit(O, A::Delete, &[], routes);
    OpenApiRouter::new()
        // Users.
        .routes(s.permit(O, A::Create, &[], routes!(admin::create_user)))
        .routes(read(routes!(admin::get_user)))
        .routes(update(routes!(admin::update_user)))
        .routes(update(routes!(admin::set_status)))
        .routes(update(routes!(admin::set_password)))
        // A user's departments, manager and roles.
        .routes(read(routes!(user_org::get)))
        .routes(update(routes!(user_org::set_departments)))
        .routes(update(routes!(user_org::set_manager)))
        .routes(update(routes!(user_org::assign_role)))
        .routes(update(routes!(user_org::unassign_role)))
        // The registry of resources and fields.
        .routes(read(routes!(resources::list)))
        // Departments.
        .routes(read(routes!(departments::list)))
        .routes(create(routes!(departments::create)))
        .routes(read(routes!(departments::get)))
        .routes(update(routes!(departments::update)))
        .routes(delete(routes!(departments::delete)))
        // Roles, their grants and field rules.
        .routes(read(routes!(roles::list)))
        .routes(create(routes!(roles::create)))
        .routes(read(routes!(roles::get)))
        .routes(update(routes!(roles::update)))
        .routes(delete(routes!(roles::delete)))
        .routes(update(routes!(roles::set_grant)))
        .routes(update(routes!(roles::remove_grant)))
        .routes(update(routes!(roles::set_field_rule)))
        .routes(update(routes!(roles::remove_field_rule)))
        // Sharing.
        .routes(update(routes!(sharing::share)))
        .routes(read(routes!(sharing::list_shares)))
        .routes(update(routes!(sharing::unshare)))
        .routes(read(routes!(sharing::list_rules)))
        .routes(create(routes!(sharing::create_rule)))
        .routes(delete(routes!(sharing::delete_rule)))
        // API clients: no Idempotency-Key (see `api_clients`).
        .routes(s.permit(O, A::Create, &[], routes!(api_clients::create)))
        .routes(read(routes!(api_clients::get)))
        .routes(update(routes!(api_clients::rotate_secret)))
        .routes(update(routes!(api_clients::set_status)))
        // The organisation's settings.
        .routes(read(routes!(admin::get_org_settings)))
        .routes(update(routes!(admin::update_org_settings)))
}
