//! The customer domain: accounts and contacts, served by the customer service.
//!
//! - [`model`]: the JSON types; [`convert`]: them ↔ the generated proto types;
//! - [`accounts`], [`contacts`]: each resource's names, scopes, export columns and gRPC calls;
//!   the routes themselves are the shared record routes ([`crate::platform::records`]).

pub mod accounts;
pub mod contacts;
pub mod convert;
pub mod model;

use axum::extract::FromRef;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::platform::records;
use crate::security::Security;
use crate::upstream::customer;

#[derive(OpenApi)]
#[openapi(tags(
    (name = "accounts", description = "Companies we sell to."),
    (name = "contacts", description = "People, usually working at an account."),
))]
struct Tags;

/// The domain's routes and their OpenAPI operations.
pub fn routes<S>(security: &Security) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    customer::Client: FromRef<S>,
{
    OpenApiRouter::with_openapi(Tags::openapi())
        .merge(records::routes::<accounts::Accounts, S>(security))
        .merge(records::routes::<contacts::Contacts, S>(security))
}
